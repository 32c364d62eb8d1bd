//! Typed views of the header values transactions and dialogs depend on.
//! Each is parsed strictly: what RFC 4475 calls invalid is refused here.
//! They are built from the borrowed views of [`super::views`].

use super::grammar::{find_ws, is_token, trim_lws, ListIter};
use super::uri::{Host, Uri, UriError};
use super::views::{normal_span, NameAddrRef, ParamsRef, ViaRef};
use super::Method;
use std::fmt;

/// Generic parameters `;name[=value]`, in order. Names compare case-insensitively.
///
/// Held as their normalised text (`;a=1;b;c="x y"`: no LWS around `;` and
/// `=`), one string where there was a vector of owned names and values: the
/// parameters of a Via or a To cost one allocation, none when there are
/// none, and a lookup scans a few dozen bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(String);

impl Params {
    /// Parses `;a=1;b;c="x y"` (leading `;` required, LWS around `;` and `=` allowed).
    pub fn parse(s: &str) -> Result<Params, String> {
        ParamsRef::parse(s).map(|p| p.to_params())
    }

    /// From text already in normal form.
    pub(super) fn from_normalised(text: String) -> Params {
        Params(text)
    }

    /// Each parameter: where it starts in the text (after its `;`), where
    /// its name ends, where it ends.
    fn spans(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let span = normal_span(&self.0, at)?;
            at = span.2;
            Some(span)
        })
    }

    /// The parameters in order: name and value (`None` without one).
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> + '_ {
        self.spans().map(|(start, name, end)| {
            let value = (name < end).then(|| &self.0[name + 1..end]);
            (&self.0[start..name], value)
        })
    }

    fn find(&self, name: &str) -> Option<(usize, usize, usize)> {
        self.spans()
            .find(|&(start, n, _)| self.0[start..n].eq_ignore_ascii_case(name))
    }

    /// Value of a parameter (`Some("")` is impossible: valueless gives `None` here,
    /// use [`Params::has`] to test presence).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v)
    }

    /// Whether a parameter is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Sets (replacing) a parameter; a replaced one keeps its name's spelling.
    /// The value is written as given: one holding `;` must come quoted.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let assign = |s: &mut String| {
            if let Some(v) = value {
                s.push('=');
                s.push_str(v);
            }
        };
        match self.find(name) {
            Some((_, n, end)) => {
                let mut tail = String::with_capacity(value.map_or(0, |v| v.len() + 1));
                assign(&mut tail);
                self.0.replace_range(n..end, &tail);
            }
            None => {
                self.0.push(';');
                self.0.push_str(name);
                assign(&mut self.0);
            }
        }
    }

    /// Removes a parameter.
    pub fn remove(&mut self, name: &str) {
        while let Some((start, _, end)) = self.find(name) {
            self.0.replace_range(start - 1..end, "");
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.spans().count()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One Via value: `SIP/2.0/UDP host:port;branch=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport, upper case (`UDP`, `TCP`, `TLS`, `SCTP`, or unknown tokens).
    pub transport: String,
    /// sent-by host.
    pub host: Host,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (branch, received, rport…).
    pub params: Params,
}

/// The RFC 3261 branch magic cookie.
pub const BRANCH_MAGIC: &str = "z9hG4bK";

impl Via {
    /// Parses one Via value (LWS allowed around the slashes, as RFC 4475
    /// 3.1.1.1 does, and around the `:` of sent-by).
    pub fn parse(v: &str) -> Result<Via, String> {
        ViaRef::parse(v).map(|v| v.to_via())
    }

    /// A Via for a request we send.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::default();
        params.set("branch", Some(branch));
        Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        }
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch")
    }

    /// `host[:port]` as the transaction key's sent-by.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        fmt::Display::fmt(&self.params, f)
    }
}

/// `CSeq: <number> <method>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number, below 2**31 (RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `0009 INVITE` (leading zeros allowed, LWS between).
    pub fn parse(v: &str) -> Result<CSeq, String> {
        let v = trim_lws(v);
        let split = find_ws(v).ok_or_else(|| format!("bad CSeq '{v}'"))?;
        let (num, method) = (&v[..split], trim_lws(&v[split..]));
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("bad CSeq number '{num}'"));
        }
        let seq: u64 =
            num.trim_start_matches('0')
                .parse()
                .unwrap_or(if num.bytes().all(|b| b == b'0') {
                    0
                } else {
                    u64::MAX
                });
        if seq >= 1 << 31 {
            return Err(format!("CSeq number {num} out of range"));
        }
        if !is_token(method) {
            return Err(format!("bad CSeq method '{method}'"));
        }
        Ok(CSeq {
            seq: seq as u32,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// `name-addr` or `addr-spec` with header parameters: From, To, Contact,
/// Route, Record-Route, Refer-To.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name without quotes (escapes kept), if any.
    pub display: Option<String>,
    /// The URI text inside `<…>` (or the bare addr-spec).
    pub uri: String,
    /// Header parameters (`tag`, `expires`, `q`…).
    pub params: Params,
    /// `Contact: *`.
    pub star: bool,
}

impl NameAddr {
    /// Parses one value, strictly: an unterminated quote, non-token words in an
    /// unquoted display name, or spaces inside `<…>` are errors (RFC 4475 3.1.2.6,
    /// 3.1.2.14, 3.1.2.15).
    pub fn parse(v: &str) -> Result<NameAddr, String> {
        NameAddrRef::parse(v).map(|a| a.to_name_addr())
    }

    /// Parses every value of a list line (`Contact: <a>, <b>`).
    pub fn parse_list(v: &str) -> Result<Vec<NameAddr>, String> {
        ListIter::new(v).map(NameAddr::parse).collect()
    }

    /// The URI, when it is a SIP/SIPS URI.
    pub fn sip_uri(&self) -> Result<Uri, UriError> {
        Uri::parse(&self.uri)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag")
    }

    /// A name-addr for `uri`.
    pub fn new(display: Option<&str>, uri: impl Into<String>) -> NameAddr {
        NameAddr {
            display: display.map(str::to_string),
            uri: uri.into(),
            params: Params::default(),
            star: false,
        }
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.star {
            return f.write_str("*");
        }
        if let Some(d) = &self.display {
            write!(f, "\"{d}\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(
            (v.transport.as_str(), v.host.to_string(), v.branch()),
            ("UDP", "192.0.2.2".into(), Some("390skdjuw"))
        );
        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(
            (v.transport.as_str(), v.branch()),
            ("TCP", Some("z9hG4bK9ikj8"))
        );
        let v = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:5070;rport;received=10.0.0.1").unwrap();
        assert_eq!(v.sent_by(), "[2001:db8::9:1]:5070");
        assert!(v.params.has("rport"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP [2001:db8::9:1]:5070;rport;received=10.0.0.1"
        );
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(
            CSeq::parse("0009\t INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: Method::Invite
            }
        );
        assert!(CSeq::parse("36893488147419103232 INVITE").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let a = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(a.display.as_deref(), Some(r#"J Rosenberg \\\""#));
        assert_eq!(a.tag(), Some("98asjd8"));
        let a =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(
            (a.uri.as_str(), a.tag()),
            ("sip:vivekg@chair-dnrc.example.com", Some("1918181833n"))
        );
        let a = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display.as_deref(), Some("caller"));
        let a = NameAddr::parse(
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-.",
        )
        .unwrap();
        assert_eq!(a.tag(), Some("_token~1'+`*%!-."));
        assert!(NameAddr::parse(r#""Mr J. User <sip:j.user@example.com>"#).is_err());
        assert!(NameAddr::parse(r#""Watson, Thomas" < sip:t.watson@example.org >"#).is_err());
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(NameAddr::parse("*").unwrap().star);
        let list = NameAddr::parse_list("<sip:a@x>;expires=60, \"B\" <sip:b@y>").unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].params.get("expires"), Some("60"));
    }
}
