//! Typed views of the header values transactions and dialogs depend on.
//! Each is parsed strictly: what RFC 4475 calls invalid is refused here.

use super::grammar::{find_unquoted, is_token, is_ws, quoted_string, split_list};
use super::uri::{split_hostport, Host, Uri, UriError};
use super::Method;
use std::fmt;

/// Generic parameters `;name[=value]`, in order. Names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Params(Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=1;b;c="x y"` (leading `;` required, LWS around `;` and `=` allowed).
    pub fn parse(s: &str) -> Result<Params, String> {
        let mut out = Vec::new();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let Some(r) = rest.strip_prefix(';') else {
                return Err(format!("expected ';' before '{rest}'"));
            };
            let r = r.trim_start();
            let end = find_unquoted(r, b';').unwrap_or(r.len());
            let item = r[..end].trim();
            let (name, value) = match item.find('=') {
                Some(eq) => {
                    let v = item[eq + 1..].trim();
                    let v_ok = if v.starts_with('"') {
                        quoted_string(v).is_some_and(|(_, rest)| rest.is_empty())
                    } else {
                        !v.is_empty() && !v.bytes().any(is_ws) && !v.contains(',')
                    };
                    if !v_ok {
                        return Err(format!("bad parameter value in '{item}'"));
                    }
                    (item[..eq].trim(), Some(v.to_string()))
                }
                None => (item, None),
            };
            if !is_token(name) {
                return Err(format!("bad parameter name '{name}'"));
            }
            out.push((name.to_string(), value));
            rest = &r[end..];
        }
        Ok(Params(out))
    }

    /// Value of a parameter (`Some("")` is impossible: valueless gives `None` here,
    /// use [`Params::has`] to test presence).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
    }

    /// Whether a parameter is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Sets (replacing) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let v = value.map(str::to_string);
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = v,
            None => self.0.push((name.to_string(), v)),
        }
    }

    /// Removes a parameter.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
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
    /// Parses one Via value (LWS allowed around the slashes, as RFC 4475 3.1.1.1 does).
    pub fn parse(v: &str) -> Result<Via, String> {
        let mut parts = Vec::with_capacity(3);
        let mut rest = v;
        for _ in 0..2 {
            let slash = rest.find('/').ok_or_else(|| format!("bad Via '{v}'"))?;
            parts.push(rest[..slash].trim());
            rest = rest[slash + 1..].trim_start();
        }
        if !parts[0].eq_ignore_ascii_case("SIP") || parts[1] != "2.0" {
            return Err(format!("bad Via protocol in '{v}'"));
        }
        let tend = rest
            .find([' ', '\t'])
            .ok_or_else(|| format!("no sent-by in Via '{v}'"))?;
        let transport = &rest[..tend];
        if !is_token(transport) {
            return Err(format!("bad Via transport '{transport}'"));
        }
        let rest = rest[tend..].trim_start();
        let pend = rest.find(';').unwrap_or(rest.len());
        let sent_by = rest[..pend].trim();
        // LWS is allowed around the ':' of sent-by.
        let sent_by: String = sent_by
            .split(':')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(":");
        let (host, port) = split_hostport(&sent_by)?;
        let params = Params::parse(&rest[pend..])?;
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
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
        write!(
            f,
            "SIP/2.0/{} {}{}",
            self.transport,
            self.sent_by(),
            self.params
        )
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
        let v = v.trim();
        let split = v
            .find([' ', '\t'])
            .ok_or_else(|| format!("bad CSeq '{v}'"))?;
        let (num, method) = (&v[..split], v[split..].trim());
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
        let v = v.trim();
        if v == "*" {
            return Ok(NameAddr {
                display: None,
                uri: "*".into(),
                params: Params::default(),
                star: true,
            });
        }
        if v.is_empty() {
            return Err("empty address".into());
        }
        let (display, after_display) = if v.starts_with('"') {
            let (d, rest) =
                quoted_string(v).ok_or_else(|| format!("unterminated quoted string in '{v}'"))?;
            (Some(d.to_string()), rest.trim_start())
        } else if let Some(lt) = find_unquoted(v, b'<') {
            let words = v[..lt].trim();
            if !words.is_empty()
                && !words
                    .split([' ', '\t'])
                    .filter(|w| !w.is_empty())
                    .all(is_token)
            {
                return Err(format!(
                    "display name must be a token list or quoted: '{words}'"
                ));
            }
            ((!words.is_empty()).then(|| words.to_string()), &v[lt..])
        } else {
            (None, v)
        };
        if let Some(inner) = after_display.strip_prefix('<') {
            let gt = inner
                .find('>')
                .ok_or_else(|| format!("missing '>' in '{v}'"))?;
            let uri = &inner[..gt];
            if uri.is_empty() || uri.bytes().any(is_ws) {
                return Err(format!("whitespace inside <{uri}>"));
            }
            let params = Params::parse(&inner[gt + 1..])?;
            return Ok(NameAddr {
                display,
                uri: uri.to_string(),
                params,
                star: false,
            });
        }
        if display.is_some() {
            return Err(format!("display name without <URI> in '{v}'"));
        }
        // addr-spec: header parameters start at the first ';' (RFC 3261 §20.10).
        let end = after_display.find(';').unwrap_or(after_display.len());
        let uri = after_display[..end].trim();
        if uri.is_empty() || uri.bytes().any(is_ws) || uri.contains(',') {
            return Err(format!("bad addr-spec '{uri}'"));
        }
        let params = Params::parse(&after_display[end..])?;
        Ok(NameAddr {
            display: None,
            uri: uri.to_string(),
            params,
            star: false,
        })
    }

    /// Parses every value of a list line (`Contact: <a>, <b>`).
    pub fn parse_list(v: &str) -> Result<Vec<NameAddr>, String> {
        split_list(v).into_iter().map(NameAddr::parse).collect()
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
