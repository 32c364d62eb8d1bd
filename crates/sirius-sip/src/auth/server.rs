//! Challenging and verifying (the registrar and inbound-call side).
//!
//! Nonces carry their issue time and an HMAC-SHA256 over it and the realm, so
//! no table of issued nonces is needed: any nonce we did not make fails the
//! MAC, and an old one is reported stale (`stale=true`: the phone retries with
//! the new nonce without asking the user). Replays are refused by tracking the
//! highest nonce-count seen per nonce (and single use for qop-less digests).

use super::params::{quote, AuthHeader};
use super::{hex, md5_hex, response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;

type HmacSha256 = Hmac<Sha256>;

/// What verification concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Credentials are right, nonce fresh, count new.
    Ok,
    /// Right password, expired nonce: challenge again with `stale=true`.
    Stale,
    /// Wrong, malformed, foreign or replayed. The reason is for the log only;
    /// the peer gets the same 401 whatever it is.
    Failed(&'static str),
}

/// Issues and verifies digest nonces for one realm.
pub struct DigestServer {
    key: [u8; 32],
    realm: String,
    lifetime_secs: u64,
    /// nonce → (highest nc accepted, issue time). nc 0 marks a used qop-less nonce.
    seen: HashMap<String, (u32, u64)>,
    inserts: u32,
}

/// Compares without an early exit, so timing does not reveal the matching prefix.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl DigestServer {
    /// A server for `realm` with a secret `key` and nonce lifetime.
    pub fn new(realm: &str, key: [u8; 32], lifetime_secs: u64) -> DigestServer {
        DigestServer {
            key,
            realm: realm.to_string(),
            lifetime_secs,
            seen: HashMap::new(),
            inserts: 0,
        }
    }

    /// A server with a random key.
    pub fn with_random_key(realm: &str, lifetime_secs: u64) -> DigestServer {
        DigestServer::new(realm, rand::random(), lifetime_secs)
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn mac(&self, ts: u64, salt: u64) -> String {
        let mut m = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(&ts.to_be_bytes());
        m.update(&salt.to_be_bytes());
        m.update(self.realm.as_bytes());
        hex(&m.finalize().into_bytes()[..16])
    }

    /// A fresh nonce at `now` (Unix seconds): 16 hex digits of time, 16 of a
    /// random salt (two challenges in the same second must differ, or the second
    /// client's nc=1 would look like a replay), 32 of MAC over both.
    pub fn nonce(&self, now: u64) -> String {
        let salt: u64 = rand::random();
        format!("{now:016x}{salt:016x}{}", self.mac(now, salt))
    }

    /// The `WWW-Authenticate` (or `Proxy-Authenticate`) value.
    pub fn challenge(&self, now: u64, stale: bool) -> String {
        let mut v = format!(
            "Digest realm={}, nonce={}, algorithm=MD5, qop=\"auth\"",
            quote(&self.realm),
            quote(&self.nonce(now))
        );
        if stale {
            v.push_str(", stale=true");
        }
        v
    }

    /// Checks a nonce: `Some(issued)` if ours, `None` otherwise.
    fn nonce_time(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != 64 || !nonce.is_ascii() {
            return None;
        }
        let ts = u64::from_str_radix(&nonce[..16], 16).ok()?;
        let salt = u64::from_str_radix(&nonce[16..32], 16).ok()?;
        ct_eq(&nonce.as_bytes()[32..], self.mac(ts, salt).as_bytes()).then_some(ts)
    }

    /// Verifies `Authorization` credentials for `method` against the user's HA1
    /// (`MD5(user:realm:password)`, so plain passwords need not be kept).
    pub fn verify(
        &mut self,
        creds: &AuthHeader,
        method: &str,
        body: &[u8],
        user_ha1: &str,
        now: u64,
    ) -> Verdict {
        if !creds.is_digest() {
            return Verdict::Failed("not a Digest authorization");
        }
        let (Some(nonce), Some(uri), Some(resp)) =
            (creds.get("nonce"), creds.get("uri"), creds.get("response"))
        else {
            return Verdict::Failed("incomplete credentials");
        };
        if creds.get("realm") != Some(self.realm.as_str()) {
            return Verdict::Failed("wrong realm");
        }
        if creds
            .get("algorithm")
            .is_some_and(|a| !a.eq_ignore_ascii_case("md5"))
        {
            return Verdict::Failed("unsupported algorithm");
        }
        let Some(issued) = self.nonce_time(nonce) else {
            return Verdict::Failed("nonce not issued by us");
        };
        let qop = creds.get("qop");
        let (nc_text, cnonce) = (
            creds.get("nc").unwrap_or(""),
            creds.get("cnonce").unwrap_or(""),
        );
        let nc = match qop {
            Some(q) if q.eq_ignore_ascii_case("auth") || q.eq_ignore_ascii_case("auth-int") => {
                match u32::from_str_radix(nc_text, 16) {
                    Ok(n) if n > 0 && nc_text.len() == 8 && !cnonce.is_empty() => n,
                    _ => return Verdict::Failed("bad nc or cnonce"),
                }
            }
            Some(_) => return Verdict::Failed("unsupported qop"),
            None => 0,
        };
        let expected = response(user_ha1, nonce, method, uri, qop, nc_text, cnonce, body);
        if !ct_eq(expected.as_bytes(), resp.to_ascii_lowercase().as_bytes()) {
            return Verdict::Failed("wrong password");
        }
        if now.saturating_sub(issued) > self.lifetime_secs {
            return Verdict::Stale;
        }
        // Replay: nc must grow; a qop-less nonce is good once.
        match self.seen.get_mut(nonce) {
            Some((last, _)) if nc == 0 || nc <= *last => {
                return Verdict::Failed("replayed nonce count")
            }
            Some((last, _)) => *last = nc,
            None => {
                self.seen.insert(nonce.to_string(), (nc, issued));
                self.inserts += 1;
                if self.inserts.is_multiple_of(1024) {
                    let life = self.lifetime_secs;
                    self.seen.retain(|_, (_, t)| now.saturating_sub(*t) <= life);
                }
            }
        }
        Verdict::Ok
    }

    /// HA1 for a user of this realm.
    pub fn ha1(&self, user: &str, password: &str) -> String {
        md5_hex(&[user, &self.realm, password])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::client::Challenge;

    fn creds(server: &DigestServer, now: u64, password: &str, nc: u32) -> AuthHeader {
        let ch = Challenge::parse(&server.challenge(now, false), false).unwrap();
        AuthHeader::parse(
            &ch.authorize(
                "alice",
                password,
                "REGISTER",
                "sip:127.0.0.1",
                b"",
                "c0ffee",
                nc,
            )
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_stale_and_replay() {
        let mut s = DigestServer::new("sirius", [7; 32], 300);
        let ha1 = s.ha1("alice", "secret");
        let c1 = creds(&s, 1000, "secret", 1);
        assert_eq!(s.verify(&c1, "REGISTER", b"", &ha1, 1001), Verdict::Ok);
        assert_eq!(
            s.verify(&c1, "REGISTER", b"", &ha1, 1002),
            Verdict::Failed("replayed nonce count")
        );
        let c2 = AuthHeader::parse(
            &Challenge {
                nonce: c1.get("nonce").unwrap().into(),
                ..Challenge::parse(&s.challenge(1000, false), false).unwrap()
            }
            .authorize(
                "alice",
                "secret",
                "REGISTER",
                "sip:127.0.0.1",
                b"",
                "c0ffee",
                2,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            s.verify(&c2, "REGISTER", b"", &ha1, 1003),
            Verdict::Ok,
            "next nc on the same nonce"
        );
        let wrong = creds(&s, 1000, "guess", 1);
        assert_eq!(
            s.verify(&wrong, "REGISTER", b"", &ha1, 1001),
            Verdict::Failed("wrong password")
        );
        let old = creds(&s, 1000, "secret", 1);
        assert_eq!(
            s.verify(&old, "REGISTER", b"", &ha1, 1000 + 301),
            Verdict::Stale
        );
        // A nonce from another key is not ours.
        let other = DigestServer::new("sirius", [8; 32], 300);
        let foreign = creds(&other, 1000, "secret", 1);
        assert_eq!(
            s.verify(&foreign, "REGISTER", b"", &ha1, 1001),
            Verdict::Failed("nonce not issued by us")
        );
        assert!(s.challenge(5, true).ends_with("stale=true"));
        // Two challenges in the same second are different nonces, both usable with nc=1.
        assert_ne!(s.nonce(2000), s.nonce(2000));
        let a = creds(&s, 2000, "secret", 1);
        let b = creds(&s, 2000, "secret", 1);
        assert_eq!(
            (
                s.verify(&a, "REGISTER", b"", &ha1, 2000),
                s.verify(&b, "REGISTER", b"", &ha1, 2000)
            ),
            (Verdict::Ok, Verdict::Ok)
        );
        // A non-ASCII nonce of the right length is refused, not a panic.
        let mut odd = a.clone();
        odd.params.iter_mut().for_each(|(k, v)| {
            if k == "nonce" {
                *v = "é".repeat(32)
            }
        });
        assert_eq!(
            s.verify(&odd, "REGISTER", b"", &ha1, 2000),
            Verdict::Failed("nonce not issued by us")
        );
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }
}
