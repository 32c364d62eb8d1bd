//! Challenging and verifying (the registrar and inbound-call side).
//!
//! Nonces carry their issue time and an HMAC-SHA256 over it, the realm and a
//! *scope* (the registrar passes the address the challenge goes to), so no
//! table of issued nonces is needed: any nonce we did not make, or made for
//! another address, fails the MAC, and an old one is reported stale (`stale=true`: the phone retries with
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
    /// The credentials answer a challenge we sent to this scope, and they
    /// are wrong: what a brute-force lockout counts. The reason is for the
    /// log only; the peer gets the same 401 whatever it is.
    Failed(&'static str),
    /// Not an answer to a challenge of ours for this scope: malformed, a
    /// nonce we did not make (or made for another address), another realm,
    /// a replay. Challenged again like a failure, never counted as one (a
    /// spoofed packet never saw our nonce; a replay may be a retransmission).
    Rejected(&'static str),
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

    fn mac(&self, ts: u64, salt: u64, scope: &[u8]) -> String {
        let mut m = HmacSha256::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        m.update(&ts.to_be_bytes());
        m.update(&salt.to_be_bytes());
        m.update(self.realm.as_bytes());
        // Length-prefixed: realm and scope cannot trade bytes.
        m.update(&(scope.len() as u64).to_be_bytes());
        m.update(scope);
        hex(&m.finalize().into_bytes()[..16])
    }

    /// A fresh nonce at `now` (Unix seconds) with no scope.
    pub fn nonce(&self, now: u64) -> String {
        self.nonce_for(now, b"")
    }

    /// A fresh nonce at `now` (Unix seconds) for `scope`: 16 hex digits of
    /// time, 16 of a random salt (two challenges in the same second must
    /// differ, or the second client's nc=1 would look like a replay), 32 of
    /// MAC over both, the realm and the scope.
    pub fn nonce_for(&self, now: u64, scope: &[u8]) -> String {
        let salt: u64 = rand::random();
        format!("{now:016x}{salt:016x}{}", self.mac(now, salt, scope))
    }

    /// The `WWW-Authenticate` (or `Proxy-Authenticate`) value, no scope.
    pub fn challenge(&self, now: u64, stale: bool) -> String {
        self.challenge_for(now, stale, b"")
    }

    /// The `WWW-Authenticate` (or `Proxy-Authenticate`) value with a nonce
    /// only an answer checked with the same `scope` accepts (the registrar
    /// passes the source address).
    pub fn challenge_for(&self, now: u64, stale: bool, scope: &[u8]) -> String {
        let mut v = format!(
            "Digest realm={}, nonce={}, algorithm=MD5, qop=\"auth\"",
            quote(&self.realm),
            quote(&self.nonce_for(now, scope))
        );
        if stale {
            v.push_str(", stale=true");
        }
        v
    }

    /// Checks a nonce: `Some(issued)` if ours for `scope`, `None` otherwise.
    fn nonce_time(&self, nonce: &str, scope: &[u8]) -> Option<u64> {
        if nonce.len() != 64 || !nonce.is_ascii() {
            return None;
        }
        let ts = u64::from_str_radix(&nonce[..16], 16).ok()?;
        let salt = u64::from_str_radix(&nonce[16..32], 16).ok()?;
        ct_eq(
            &nonce.as_bytes()[32..],
            self.mac(ts, salt, scope).as_bytes(),
        )
        .then_some(ts)
    }

    /// Whether `creds` answer a challenge of ours for `scope` (whatever the
    /// password): for a failure the registrar cannot check otherwise (a
    /// username it does not know), to decide whether it counts.
    pub fn issued_for(&self, creds: &AuthHeader, scope: &[u8]) -> bool {
        creds.is_digest()
            && creds.get("realm") == Some(self.realm.as_str())
            && creds
                .get("nonce")
                .is_some_and(|n| self.nonce_time(n, scope).is_some())
    }

    /// Verifies `Authorization` credentials for `method` against the user's HA1
    /// (`MD5(user:realm:password)`, so plain passwords need not be kept),
    /// for a challenge made without a scope.
    pub fn verify(
        &mut self,
        creds: &AuthHeader,
        method: &str,
        body: &[u8],
        user_ha1: &str,
        now: u64,
    ) -> Verdict {
        self.verify_for(creds, method, body, user_ha1, now, b"")
    }

    /// [`DigestServer::verify`] for a challenge made for `scope`
    /// ([`DigestServer::challenge_for`]).
    pub fn verify_for(
        &mut self,
        creds: &AuthHeader,
        method: &str,
        body: &[u8],
        user_ha1: &str,
        now: u64,
        scope: &[u8],
    ) -> Verdict {
        if !creds.is_digest() {
            return Verdict::Rejected("not a Digest authorization");
        }
        let (Some(nonce), Some(uri), Some(resp)) =
            (creds.get("nonce"), creds.get("uri"), creds.get("response"))
        else {
            return Verdict::Rejected("incomplete credentials");
        };
        if creds.get("realm") != Some(self.realm.as_str()) {
            return Verdict::Rejected("wrong realm");
        }
        if creds
            .get("algorithm")
            .is_some_and(|a| !a.eq_ignore_ascii_case("md5"))
        {
            return Verdict::Rejected("unsupported algorithm");
        }
        let Some(issued) = self.nonce_time(nonce, scope) else {
            return Verdict::Rejected("nonce not issued by us (to this address)");
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
                    _ => return Verdict::Rejected("bad nc or cnonce"),
                }
            }
            Some(_) => return Verdict::Rejected("unsupported qop"),
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
                return Verdict::Rejected("replayed nonce count")
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
            Verdict::Rejected("replayed nonce count")
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
            Verdict::Rejected("nonce not issued by us (to this address)")
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
            Verdict::Rejected("nonce not issued by us (to this address)")
        );
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
    }

    #[test]
    fn a_scoped_nonce_is_good_only_for_its_scope() {
        let mut s = DigestServer::new("sirius", [9; 32], 300);
        let ha1 = s.ha1("alice", "secret");
        let answer = |s: &DigestServer, scope: &[u8], password: &str| {
            let ch = Challenge::parse(&s.challenge_for(1000, false, scope), false).unwrap();
            AuthHeader::parse(
                &ch.authorize("alice", password, "REGISTER", "sip:x", b"", "c0ffee", 1)
                    .unwrap(),
            )
            .unwrap()
        };
        let mine = answer(&s, b"192.0.2.7", "secret");
        assert!(s.issued_for(&mine, b"192.0.2.7"));
        assert!(!s.issued_for(&mine, b"192.0.2.8"));
        // The right password through another address: not an answer to
        // that address's challenge.
        assert_eq!(
            s.verify_for(&mine, "REGISTER", b"", &ha1, 1001, b"192.0.2.8"),
            Verdict::Rejected("nonce not issued by us (to this address)")
        );
        assert_eq!(
            s.verify_for(&mine, "REGISTER", b"", &ha1, 1001, b"192.0.2.7"),
            Verdict::Ok
        );
        let wrong = answer(&s, b"192.0.2.7", "guess");
        assert_eq!(
            s.verify_for(&wrong, "REGISTER", b"", &ha1, 1001, b"192.0.2.7"),
            Verdict::Failed("wrong password")
        );
        // Unscoped and scoped nonces do not mix.
        assert!(!s.issued_for(&mine, b""));
    }
}
