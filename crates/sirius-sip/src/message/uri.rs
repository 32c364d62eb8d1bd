//! SIP and SIPS URIs (RFC 3261 §19.1). Escapes are kept as received: `%00`
//! stays three characters, so a URI is written back exactly as it came.

use super::grammar::{is_ws, trim_lws, trim_lws_start};
use super::types::Params;
use std::fmt;

/// The host part of a URI or Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A domain name.
    Name(String),
    /// An IPv4 address.
    V4(std::net::Ipv4Addr),
    /// An IPv6 reference (written in brackets).
    V6(std::net::Ipv6Addr),
}

impl Host {
    /// Parses `hostname`, `IPv4address` or `[IPv6address]`.
    pub fn parse(s: &str) -> Result<Host, String> {
        HostRef::parse(s).map(|h| h.to_host())
    }
}

/// A host read in place: a name borrowed, an address parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostRef<'a> {
    /// A domain name, as written.
    Name(&'a str),
    /// An IPv4 address.
    V4(std::net::Ipv4Addr),
    /// An IPv6 reference (written in brackets).
    V6(std::net::Ipv6Addr),
}

impl<'a> HostRef<'a> {
    /// Parses `hostname`, `IPv4address` or `[IPv6address]`.
    pub fn parse(s: &'a str) -> Result<HostRef<'a>, String> {
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return inner
                .parse()
                .map(HostRef::V6)
                .map_err(|_| format!("bad IPv6 reference '{s}'"));
        }
        // Only what starts with a digit can be an IPv4 address: names skip the attempt.
        if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            if let Ok(v4) = s.parse() {
                return Ok(HostRef::V4(v4));
            }
        }
        let ok = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !s.starts_with('-')
            && !s.starts_with('.');
        if ok {
            Ok(HostRef::Name(s))
        } else {
            Err(format!("bad host '{s}'"))
        }
    }

    /// The owned form.
    pub fn to_host(&self) -> Host {
        match *self {
            HostRef::Name(n) => Host::Name(n.to_string()),
            HostRef::V4(a) => Host::V4(a),
            HostRef::V6(a) => Host::V6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `sip` or `sips` (lower case).
    pub scheme: String,
    /// The user part, escapes kept; may contain `;` (RFC 4475 3.1.1.9).
    pub user: Option<String>,
    /// The password part.
    pub password: Option<String>,
    /// Host.
    pub host: Host,
    /// Port.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params,
    /// Headers part after `?`, unparsed.
    pub headers: Option<String>,
}

/// Why a URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not `sip:`/`sips:` (the request is answered 416).
    #[error("unsupported URI scheme '{0}'")]
    UnsupportedScheme(String),
    /// Malformed.
    #[error("{0}")]
    Syntax(String),
}

impl Uri {
    /// Parses a SIP/SIPS URI.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.bytes()
            .any(|b| is_ws(b) || b == b'\r' || b == b'\n' || b == b'<' || b == b'>')
        {
            return Err(UriError::Syntax(format!(
                "whitespace or brackets inside URI '{s}'"
            )));
        }
        let colon = s
            .find(':')
            .ok_or_else(|| UriError::Syntax(format!("no scheme in '{s}'")))?;
        let scheme = s[..colon].to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            let valid = scheme.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_alphabetic() || (i > 0 && (b.is_ascii_digit() || b"+-.".contains(&b)))
            });
            return Err(if valid && !scheme.is_empty() {
                UriError::UnsupportedScheme(scheme)
            } else {
                UriError::Syntax(format!("bad scheme in '{s}'"))
            });
        }
        let rest = &s[colon + 1..];
        let (rest, headers) = match rest.find('?') {
            // A '?' in the user part is legal (user-unreserved); headers follow the host.
            Some(q) if !rest[q..].contains('@') => (&rest[..q], Some(rest[q + 1..].to_string())),
            _ => (rest, None),
        };
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                if ui.is_empty() {
                    return Err(UriError::Syntax(format!("empty user part in '{s}'")));
                }
                // The password follows the first ':' not inside the user's escapes.
                match ui.find(':') {
                    Some(c) => (Some(ui[..c].to_string()), Some(ui[c + 1..].to_string())),
                    None => (Some(ui.to_string()), None),
                }
            }
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(p) => (
                &hostpart[..p],
                Params::parse(&hostpart[p..]).map_err(UriError::Syntax)?,
            ),
            None => (hostpart, Params::default()),
        };
        let (host, port) = split_hostport(hostport).map_err(UriError::Syntax)?;
        Ok(Uri {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }

    /// A plain `sip:user@host[:port]` URI.
    pub fn sip(user: Option<&str>, host: Host, port: Option<u16>) -> Uri {
        Uri {
            scheme: "sip".into(),
            user: user.map(str::to_string),
            password: None,
            host,
            port,
            params: Params::default(),
            headers: None,
        }
    }
}

/// Splits `host[:port]`, with IPv6 references in brackets.
pub fn split_hostport(s: &str) -> Result<(Host, Option<u16>), String> {
    split_hostport_ref(s).map(|(h, p)| (h.to_host(), p))
}

/// Splits `host[:port]` in place, LWS allowed around the colon (a Via's
/// sent-by may have it; a URI never reaches here with white space).
pub fn split_hostport_ref(s: &str) -> Result<(HostRef<'_>, Option<u16>), String> {
    let (h, p) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let rest = trim_lws_start(&s[end + 1..]);
                match rest.strip_prefix(':') {
                    Some(p) => (&s[..=end], Some(trim_lws(p))),
                    None if rest.is_empty() => (&s[..=end], None),
                    None => return Err(format!("bad host:port '{s}'")),
                }
            }
            None => return Err(format!("unterminated IPv6 reference '{s}'")),
        }
    } else {
        match s.rfind(':') {
            Some(c) => (trim_lws(&s[..c]), Some(trim_lws(&s[c + 1..]))),
            None => (s, None),
        }
    };
    let host = HostRef::parse(h)?;
    let port = match p {
        None => None,
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port '{p}'"))?),
    };
    Ok((host, port))
}

impl fmt::Display for HostRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostRef::Name(n) => f.write_str(n),
            HostRef::V4(a) => write!(f, "{a}"),
            HostRef::V6(a) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_back() {
        for s in [
            "sip:alice@127.0.0.1:5060;transport=udp",
            "sips:bob@example.com",
            "sip:127.0.0.1",
            "sip:[2001:db8::1]:5061;lr",
            "sip:sips%3Auser%40example.com@example.net",
            "sip:user;par=u%40example.net@example.com",
            "sip:null-%00-null@example.com",
            "sip:alice:secret@host",
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        ] {
            let u = Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(u.to_string(), s);
        }
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert!(u.params.is_empty());
        let u = Uri::parse("sip:alice@h:5070;transport=tcp").unwrap();
        assert_eq!(
            (u.port, u.params.get("transport")),
            (Some(5070), Some("tcp"))
        );
    }

    #[test]
    fn refuses_what_it_must() {
        assert_eq!(
            Uri::parse("nobodyknowsthisscheme:totallyopaquecontent"),
            Err(UriError::UnsupportedScheme("nobodyknowsthisscheme".into()))
        );
        assert!(matches!(
            Uri::parse("soap.beep://192.0.2.103:3002"),
            Err(UriError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            Uri::parse("<sip:user@example.com>"),
            Err(UriError::Syntax(_))
        ));
        assert!(matches!(
            Uri::parse("sip:user@example.com; lr"),
            Err(UriError::Syntax(_))
        ));
        assert!(matches!(Uri::parse("sip:@host"), Err(UriError::Syntax(_))));
        assert!(matches!(
            Uri::parse("sip:a@host:99999"),
            Err(UriError::Syntax(_))
        ));
        assert!(matches!(
            Uri::parse("sip:a@ho st"),
            Err(UriError::Syntax(_))
        ));
    }
}
