//! The auth-param syntax shared by `WWW-Authenticate`, `Proxy-Authenticate`,
//! `Authorization` and `Proxy-Authorization`: a scheme, then comma-separated
//! `name=token` or `name="quoted string"` pairs. Quoted values may hold commas
//! (`qop="auth,auth-int"`), which is where rsip 0.4 failed.

use crate::message::grammar::{is_token, quoted_string};

/// A parsed challenge or credentials header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// Scheme as received (`Digest`, `digest`, or another).
    pub scheme: String,
    /// Parameters in order, values unquoted (escapes resolved).
    pub params: Vec<(String, String)>,
}

impl AuthHeader {
    /// Parses `Digest realm="x", nonce="y", stale=false`.
    pub fn parse(v: &str) -> Result<AuthHeader, String> {
        let v = v.trim();
        let sp = v.find([' ', '\t']).unwrap_or(v.len());
        let scheme = &v[..sp];
        if !is_token(scheme) {
            return Err(format!("bad auth scheme '{scheme}'"));
        }
        let mut params = Vec::new();
        let mut rest = v[sp..].trim_start();
        while !rest.is_empty() {
            let eq = rest
                .find('=')
                .ok_or_else(|| format!("expected name=value at '{rest}'"))?;
            let name = rest[..eq].trim();
            if !is_token(name) {
                return Err(format!("bad auth-param name '{name}'"));
            }
            let after = rest[eq + 1..].trim_start();
            let (value, tail) = if after.starts_with('"') {
                let (q, tail) = quoted_string(after)
                    .ok_or_else(|| format!("unterminated quoted value for {name}"))?;
                (unescape(q), tail)
            } else {
                let end = after.find(',').unwrap_or(after.len());
                let t = after[..end].trim();
                if t.is_empty() || t.contains([' ', '\t']) {
                    return Err(format!("bad value for {name}"));
                }
                (t.to_string(), &after[end..])
            };
            params.push((name.to_ascii_lowercase(), value));
            let tail = tail.trim_start();
            rest = match tail.strip_prefix(',') {
                Some(t) => t.trim_start(),
                None if tail.is_empty() => tail,
                None => return Err(format!("expected ',' at '{tail}'")),
            };
        }
        Ok(AuthHeader {
            scheme: scheme.to_string(),
            params,
        })
    }

    /// Whether the scheme is Digest (case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("digest")
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn unescape(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    let mut chars = q.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Quotes a value for an auth header.
pub fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges_with_qop_lists() {
        let h = AuthHeader::parse(
            r#"digest realm="movistar.es", qop="auth,auth-int", nonce="abc", opaque="", stale=false, algorithm=md5"#,
        )
        .unwrap();
        assert!(h.is_digest());
        assert_eq!(h.get("qop"), Some("auth,auth-int"));
        assert_eq!(h.get("opaque"), Some(""));
        assert_eq!(h.get("STALE"), Some("false"));
        assert!(AuthHeader::parse(r#"Digest realm="x"#).is_err());
        let odd = AuthHeader::parse("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert!(!odd.is_digest());
        assert_eq!(quote(r#"a"b"#), r#""a\"b""#);
    }
}
