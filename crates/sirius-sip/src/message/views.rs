//! Borrowed typed views: a Via, a name-addr or a parameter list read in
//! place from a header value, under the same strict rules as the owned
//! types ([`Via`], [`NameAddr`], [`Params`]), which are built from them.
//!
//! Why both: matching a transaction needs the top Via's branch and sent-by,
//! validating a request needs every Via, From, To and Contact to be well
//! formed, a UAS needs to know whether To has a tag; none of them keeps the
//! value. Read in place, those cost no allocation. The owned types are for
//! values kept beyond the message or edited (a Via gaining `received`).

use super::grammar::{
    find_unquoted, find_ws, is_token, is_token_byte, is_ws, quoted_string, trim_lws, trim_lws_start,
};
use super::types::{NameAddr, Params, Via};
use super::uri::{split_hostport_ref, HostRef};
use std::fmt;

/// Parameters `;name[=value]` as written (LWS and all), validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParamsRef<'a> {
    text: &'a str,
    /// In normal form (see [`is_plain`]): read by the quick scanner.
    plain: bool,
}

impl<'a> ParamsRef<'a> {
    /// Validates `;a=1;b;c="x y"` (leading `;` required, LWS around `;` and
    /// `=` allowed), with the errors [`Params::parse`] gives.
    pub fn parse(s: &'a str) -> Result<ParamsRef<'a>, String> {
        let plain = is_plain(s);
        if !plain {
            let mut rest = trim_lws(s);
            while let Some(item) = next_item(&mut rest)? {
                check_item(item)?;
            }
        }
        Ok(ParamsRef { text: s, plain })
    }

    /// The parameters in order: name and value (`None` without one), LWS trimmed.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> {
        let (text, plain) = (self.text, self.plain);
        let (mut at, mut rest) = (0, trim_lws(text));
        std::iter::from_fn(move || {
            if plain {
                let (start, name, end) = normal_span(text, at)?;
                at = end;
                let value = (name < end).then(|| &text[name + 1..end]);
                Some((&text[start..name], value))
            } else {
                let item = next_item(&mut rest).ok()??;
                Some(split_item(item))
            }
        })
    }

    /// Value of a parameter (`None` when absent or valueless).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v)
    }

    /// Whether a parameter is present, with or without a value.
    pub fn has(&self, name: &str) -> bool {
        self.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        trim_lws(self.text).is_empty()
    }

    /// The text as written.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// The owned, normalised form (no LWS around `;` and `=`).
    pub fn to_params(&self) -> Params {
        if self.plain {
            return Params::from_normalised(self.text.to_string());
        }
        let mut out = String::with_capacity(self.text.len());
        for (name, value) in self.iter() {
            out.push(';');
            out.push_str(name);
            if let Some(v) = value {
                out.push('=');
                out.push_str(v);
            }
        }
        Params::from_normalised(out)
    }
}

/// The parameter of normal-form `text` whose `;` is at `at`: where it
/// starts (after the `;`), where its name ends, where it ends (the next
/// `;` or the end). One pass over the bytes, memchr across plain values;
/// a `;` inside a quoted value does not end it.
pub(super) fn normal_span(text: &str, at: usize) -> Option<(usize, usize, usize)> {
    let b = text.as_bytes();
    if at >= b.len() {
        return None;
    }
    let start = at + 1;
    let mut i = start;
    while i < b.len() && b[i] != b'=' && b[i] != b';' {
        i += 1;
    }
    let name = i;
    match memchr::memchr2(b';', b'"', &b[i..]) {
        None => return Some((start, name, b.len())),
        Some(k) if b[i + k] == b';' => return Some((start, name, i + k)),
        Some(k) => i += k,
    }
    let mut quoted = false;
    while i < b.len() && (quoted || b[i] != b';') {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            _ => {}
        }
        i += 1;
    }
    Some((start, name, i.min(b.len())))
}

/// Whether `s` is parameters already in normalised form, with plain
/// values: `;name[=value]`, each name a token, each value non-empty and free
/// of LWS, `,`, `;` and `"`. Such text is valid and its own normal form,
/// known after one pass; anything else takes [`next_item`] and [`check_item`].
pub(super) fn is_plain(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b';' {
            return false;
        }
        let name = i + 1;
        i = name;
        while i < b.len() && is_token_byte(b[i]) {
            i += 1;
        }
        if i == name {
            return false;
        }
        if i < b.len() && b[i] == b'=' {
            let value = i + 1;
            i = value;
            while i < b.len() && !matches!(b[i], b';' | b' ' | b'\t' | b',' | b'"') {
                i += 1;
            }
            if i == value {
                return false;
            }
        }
    }
    true
}

/// The next `;item` of `rest` (trimmed, without its `;`), moving `rest`
/// past it; `None` at the end. `rest` starts trimmed.
fn next_item<'a>(rest: &mut &'a str) -> Result<Option<&'a str>, String> {
    if rest.is_empty() {
        return Ok(None);
    }
    let Some(r) = rest.strip_prefix(';') else {
        return Err(format!("expected ';' before '{rest}'"));
    };
    let r = trim_lws_start(r);
    let end = find_unquoted(r, b';').unwrap_or(r.len());
    *rest = &r[end..];
    Ok(Some(trim_lws(&r[..end])))
}

/// An item's name and value, LWS around `=` trimmed.
fn split_item(item: &str) -> (&str, Option<&str>) {
    match item.bytes().position(|b| b == b'=') {
        Some(eq) => (trim_lws(&item[..eq]), Some(trim_lws(&item[eq + 1..]))),
        None => (item, None),
    }
}

/// A token name; a value that is a whole quoted string, or non-empty
/// without LWS or commas.
fn check_item(item: &str) -> Result<(), String> {
    let (name, value) = split_item(item);
    if let Some(v) = value {
        let ok = if v.starts_with('"') {
            quoted_string(v).is_some_and(|(_, rest)| rest.is_empty())
        } else {
            !v.is_empty() && !v.bytes().any(|b| is_ws(b) || b == b',')
        };
        if !ok {
            return Err(format!("bad parameter value in '{item}'"));
        }
    }
    if !is_token(name) {
        return Err(format!("bad parameter name '{name}'"));
    }
    Ok(())
}

/// One Via value read in place: `SIP/2.0/UDP host:port;branch=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViaRef<'a> {
    /// Transport as written (`UDP`, `tcp`…): compare without case.
    pub transport: &'a str,
    /// sent-by host.
    pub host: HostRef<'a>,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (branch, received, rport…).
    pub params: ParamsRef<'a>,
}

impl<'a> ViaRef<'a> {
    /// Parses one Via value (LWS allowed around the slashes, as RFC 4475
    /// 3.1.1.1 does, and around the `:` of sent-by).
    pub fn parse(v: &'a str) -> Result<ViaRef<'a>, String> {
        let (name, rest) = v.split_once('/').ok_or_else(|| format!("bad Via '{v}'"))?;
        let (version, rest) = rest
            .split_once('/')
            .ok_or_else(|| format!("bad Via '{v}'"))?;
        if !trim_lws(name).eq_ignore_ascii_case("SIP") || trim_lws(version) != "2.0" {
            return Err(format!("bad Via protocol in '{v}'"));
        }
        let rest = trim_lws_start(rest);
        let tend = find_ws(rest).ok_or_else(|| format!("no sent-by in Via '{v}'"))?;
        let transport = &rest[..tend];
        if !is_token(transport) {
            return Err(format!("bad Via transport '{transport}'"));
        }
        let rest = trim_lws_start(&rest[tend..]);
        let pend = memchr::memchr(b';', rest.as_bytes()).unwrap_or(rest.len());
        let (host, port) = split_hostport_ref(trim_lws(&rest[..pend]))?;
        let params = ParamsRef::parse(&rest[pend..])?;
        Ok(ViaRef {
            transport,
            host,
            port,
            params,
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch")
    }

    /// The owned form (transport in upper case, parameters normalised).
    pub fn to_via(&self) -> Via {
        Via {
            transport: self.transport.to_ascii_uppercase(),
            host: self.host.to_host(),
            port: self.port,
            params: self.params.to_params(),
        }
    }
}

/// A `name-addr` or `addr-spec` with header parameters, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddrRef<'a> {
    /// Display name without quotes (escapes kept), if any.
    pub display: Option<&'a str>,
    /// The URI text inside `<…>` (or the bare addr-spec).
    pub uri: &'a str,
    /// Header parameters (`tag`, `expires`, `q`…).
    pub params: ParamsRef<'a>,
    /// `Contact: *`.
    pub star: bool,
}

impl<'a> NameAddrRef<'a> {
    /// Parses one value, strictly: an unterminated quote, non-token words in an
    /// unquoted display name, or spaces inside `<…>` are errors (RFC 4475 3.1.2.6,
    /// 3.1.2.14, 3.1.2.15).
    pub fn parse(v: &'a str) -> Result<NameAddrRef<'a>, String> {
        let v = trim_lws(v);
        if v == "*" {
            return Ok(NameAddrRef {
                display: None,
                uri: v,
                params: ParamsRef::default(),
                star: true,
            });
        }
        if v.is_empty() {
            return Err("empty address".into());
        }
        let (display, after_display) = if v.starts_with('"') {
            let (d, rest) =
                quoted_string(v).ok_or_else(|| format!("unterminated quoted string in '{v}'"))?;
            (Some(d), trim_lws_start(rest))
        } else if let Some(lt) = find_unquoted(v, b'<') {
            let words = trim_lws(&v[..lt]);
            if !words
                .split([' ', '\t'])
                .filter(|w| !w.is_empty())
                .all(is_token)
            {
                return Err(format!(
                    "display name must be a token list or quoted: '{words}'"
                ));
            }
            ((!words.is_empty()).then_some(words), &v[lt..])
        } else {
            (None, v)
        };
        if let Some(inner) = after_display.strip_prefix('<') {
            let gt = memchr::memchr(b'>', inner.as_bytes())
                .ok_or_else(|| format!("missing '>' in '{v}'"))?;
            let uri = &inner[..gt];
            if uri.is_empty() || uri.bytes().any(is_ws) {
                return Err(format!("whitespace inside <{uri}>"));
            }
            let params = ParamsRef::parse(&inner[gt + 1..])?;
            return Ok(NameAddrRef {
                display,
                uri,
                params,
                star: false,
            });
        }
        if display.is_some() {
            return Err(format!("display name without <URI> in '{v}'"));
        }
        // addr-spec: header parameters start at the first ';' (RFC 3261 §20.10).
        let end = memchr::memchr(b';', after_display.as_bytes()).unwrap_or(after_display.len());
        let uri = trim_lws(&after_display[..end]);
        if uri.is_empty() || uri.bytes().any(|b| is_ws(b) || b == b',') {
            return Err(format!("bad addr-spec '{uri}'"));
        }
        let params = ParamsRef::parse(&after_display[end..])?;
        Ok(NameAddrRef {
            display: None,
            uri,
            params,
            star: false,
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag")
    }

    /// The owned form.
    pub fn to_name_addr(&self) -> NameAddr {
        NameAddr {
            display: self.display.map(str::to_string),
            uri: self.uri.to_string(),
            params: self.params.to_params(),
            star: self.star,
        }
    }
}

impl fmt::Display for ParamsRef<'_> {
    /// The normal form: `;name=value`, no LWS.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.iter() {
            write!(f, ";{name}")?;
            if let Some(v) = value {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for NameAddrRef<'_> {
    /// As [`NameAddr`] writes it: `"display" <uri>;params`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.star {
            return f.write_str("*");
        }
        if let Some(d) = self.display {
            write!(f, "\"{d}\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn views_read_in_place_what_the_owned_types_hold() {
        let v = "SIP / 2.0 / udp 192.0.2.1 : 5060 ; branch = z9hG4bK1 ;rport";
        let r = ViaRef::parse(v).unwrap();
        assert_eq!(
            (r.transport, r.port, r.branch()),
            ("udp", Some(5060), Some("z9hG4bK1"))
        );
        assert!(r.params.has("RPORT"));
        assert_eq!(
            r.to_via().to_string(),
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport"
        );
        assert_eq!(Via::parse(v).unwrap(), r.to_via());
        let a = NameAddrRef::parse(r#""A \"B\"" <sip:a@x> ; tag = 7 ; q="0;5""#).unwrap();
        assert_eq!(
            (a.display, a.uri, a.tag(), a.params.get("q")),
            (Some(r#"A \"B\""#), "sip:a@x", Some("7"), Some("\"0;5\""))
        );
        assert_eq!(a.to_name_addr().params.to_string(), ";tag=7;q=\"0;5\"");
        assert!(NameAddrRef::parse("sip:a@x ;tag")
            .unwrap()
            .params
            .has("tag"));
        assert!(NameAddrRef::parse("<sip:a@x>;;").is_err());
        assert!(NameAddrRef::parse("<sip:a@x>;t=a b").is_err());
    }

    proptest! {
        /// The one-pass check for parameters in normal form never accepts
        /// what the general parser refuses or would write differently.
        #[test]
        fn plain_parameters_are_their_own_normal_form(
            s in "(;|=|a|b|tag|\"|,| |\\t|x=1|%|é){0,12}"
        ) {
            if is_plain(&s) {
                let mut rest = trim_lws(&s);
                let mut normal = String::new();
                while let Some(item) = next_item(&mut rest).unwrap() {
                    check_item(item).unwrap();
                    let (n, v) = split_item(item);
                    normal.push(';');
                    normal.push_str(n);
                    if let Some(v) = v {
                        normal.push('=');
                        normal.push_str(v);
                    }
                }
                prop_assert_eq!(normal, s);
            }
        }
    }
}
