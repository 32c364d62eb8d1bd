//! Answering a 401/407 challenge (RFC 2617 §3.2.2, RFC 3261 §22.2).

use super::params::{quote, AuthHeader};
use super::{ha1, md5_hex, response};
use crate::message::{HeaderName, Message};

/// A Digest challenge taken from a 401 or 407.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Scheme spelling as received (echoed back).
    pub scheme: String,
    /// Realm.
    pub realm: String,
    /// Nonce.
    pub nonce: String,
    /// Opaque, echoed back when non-empty.
    pub opaque: Option<String>,
    /// Algorithm token as received (`MD5`, `md5`, `MD5-sess`), if any.
    pub algorithm: Option<String>,
    /// Offered qop values.
    pub qop: Vec<String>,
    /// `stale=true`: the credentials were right, the nonce expired.
    pub stale: bool,
    /// From `Proxy-Authenticate` (answer with `Proxy-Authorization`).
    pub proxy: bool,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// No usable challenge header in the response.
    #[error("no Digest challenge in the response")]
    Missing,
    /// The header did not parse.
    #[error("bad challenge: {0}")]
    Syntax(String),
    /// An algorithm other than MD5/MD5-sess.
    #[error("unsupported digest algorithm '{0}'")]
    Algorithm(String),
    /// qop offered without auth or auth-int.
    #[error("unsupported qop '{0}'")]
    Qop(String),
}

impl Challenge {
    /// Parses one challenge header value.
    pub fn parse(value: &str, proxy: bool) -> Result<Challenge, ChallengeError> {
        let h = AuthHeader::parse(value).map_err(ChallengeError::Syntax)?;
        if !h.is_digest() {
            return Err(ChallengeError::Missing);
        }
        let realm = h
            .get("realm")
            .ok_or_else(|| ChallengeError::Syntax("no realm".into()))?
            .to_string();
        let nonce = h
            .get("nonce")
            .ok_or_else(|| ChallengeError::Syntax("no nonce".into()))?
            .to_string();
        let algorithm = h.get("algorithm").map(str::to_string);
        if let Some(a) = &algorithm {
            if !a.eq_ignore_ascii_case("md5") && !a.eq_ignore_ascii_case("md5-sess") {
                return Err(ChallengeError::Algorithm(a.clone()));
            }
        }
        let qop = h
            .get("qop")
            .map(|q| {
                q.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Challenge {
            scheme: h.scheme.clone(),
            realm,
            nonce,
            opaque: h.get("opaque").map(str::to_string),
            algorithm,
            qop,
            stale: h
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
            proxy,
        })
    }

    /// Every Digest challenge of a 401 (`WWW-Authenticate`) or 407
    /// (`Proxy-Authenticate`): one per realm when several proxies challenge.
    pub fn from_response(msg: &Message) -> Result<Vec<Challenge>, ChallengeError> {
        let (name, proxy) = match msg.code() {
            Some(407) => (HeaderName::ProxyAuthenticate, true),
            Some(401) => (HeaderName::WwwAuthenticate, false),
            _ => return Err(ChallengeError::Missing),
        };
        let mut out = Vec::new();
        for v in msg.headers.all(&name) {
            match Challenge::parse(v, proxy) {
                Ok(c) => out.push(c),
                Err(ChallengeError::Missing) => {}
                Err(e) => return Err(e),
            }
        }
        if out.is_empty() {
            return Err(ChallengeError::Missing);
        }
        Ok(out)
    }

    /// The qop to answer with: `auth` when offered, else `auth-int`, else none.
    pub fn chosen_qop(&self) -> Result<Option<&'static str>, ChallengeError> {
        if self.qop.is_empty() {
            Ok(None)
        } else if self.qop.iter().any(|q| q == "auth") {
            Ok(Some("auth"))
        } else if self.qop.iter().any(|q| q == "auth-int") {
            Ok(Some("auth-int"))
        } else {
            Err(ChallengeError::Qop(self.qop.join(",")))
        }
    }

    /// The header carrying the answer.
    pub fn answer_header(&self) -> HeaderName {
        if self.proxy {
            HeaderName::ProxyAuthorization
        } else {
            HeaderName::Authorization
        }
    }

    /// Builds the `Authorization`/`Proxy-Authorization` value for a request.
    /// `nc` counts requests made with this nonce (1 for the first); `cnonce` is
    /// the client's random value.
    #[allow(clippy::too_many_arguments)]
    pub fn authorize(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        body: &[u8],
        cnonce: &str,
        nc: u32,
    ) -> Result<String, ChallengeError> {
        let qop = self.chosen_qop()?;
        let nc_text = format!("{nc:08x}");
        let mut h1 = ha1(username, &self.realm, password);
        if self
            .algorithm
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case("md5-sess"))
        {
            h1 = md5_hex(&[&h1, &self.nonce, cnonce]);
        }
        let resp = response(&h1, &self.nonce, method, uri, qop, &nc_text, cnonce, body);
        let mut v = format!(
            "{} username={}, realm={}, nonce={}, uri={}, response={}, algorithm={}",
            self.scheme,
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            quote(&resp),
            self.algorithm.as_deref().unwrap_or("MD5"),
        );
        if let Some(q) = qop {
            v.push_str(&format!(
                ", cnonce={}, qop={q}, nc={nc_text}",
                quote(cnonce)
            ));
        }
        if let Some(o) = self.opaque.as_deref().filter(|o| !o.is_empty()) {
            v.push_str(&format!(", opaque={}", quote(o)));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "480879ea3eae663bb2e61ec43831734064b1dfb38fa926d8244d034bd40bd66341894f85cdb79a40e394f2e514651dcca4eab581";

    /// The Authorization header of the mobile-operator registration, field for
    /// field (scheme echoed, algorithm echoed, opaque="" omitted as the seed does).
    #[test]
    fn writes_the_mobile_operator_authorization_header() {
        let ch = Challenge::parse(
            &format!(r#"digest realm="movistar.es", qop="auth", nonce="{NONCE}", opaque="", stale=false, algorithm=md5"#),
            false,
        )
        .unwrap();
        let auth = ch
            .authorize(
                "msisdn",
                "password",
                "REGISTER",
                "sip:localIP",
                b"",
                "14122",
                1,
            )
            .unwrap();
        assert_eq!(
            auth,
            format!(
                r#"digest username="msisdn", realm="movistar.es", nonce="{NONCE}", uri="sip:localIP", response="{}", algorithm=md5, cnonce="14122", qop=auth, nc=00000001"#,
                crate::auth::response(
                    &crate::auth::ha1("msisdn", "movistar.es", "password"),
                    NONCE,
                    "REGISTER",
                    "sip:localIP",
                    Some("auth"),
                    "00000001",
                    "14122",
                    b""
                )
            )
        );
        assert_eq!(ch.answer_header(), HeaderName::Authorization);
    }

    #[test]
    fn qop_choices_and_refusals() {
        let ch =
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-int,auth""#, true).unwrap();
        assert_eq!(ch.chosen_qop(), Ok(Some("auth")));
        assert_eq!(ch.answer_header(), HeaderName::ProxyAuthorization);
        let old = Challenge::parse(r#"Digest realm="r", nonce="n""#, false).unwrap();
        let v = old
            .authorize("u", "p", "INVITE", "sip:x", b"", "c", 1)
            .unwrap();
        assert!(!v.contains("qop") && !v.contains("cnonce"), "{v}");
        assert_eq!(
            Challenge::parse(
                r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#,
                false
            ),
            Err(ChallengeError::Algorithm("SHA-512-256".into()))
        );
        let stale = Challenge::parse(
            r#"Digest realm="r", nonce="n2", stale=TRUE, opaque="o""#,
            false,
        )
        .unwrap();
        assert!(stale.stale);
        assert!(stale
            .authorize("u", "p", "REGISTER", "sip:x", b"", "c", 1)
            .unwrap()
            .ends_with(r#", opaque="o""#));
    }
}
