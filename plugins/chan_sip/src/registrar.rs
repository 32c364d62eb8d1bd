//! The registrar: phones REGISTER here with digest auth, and we remember where
//! each dynamic peer is (Asterisk's `register_verify` + `parse_register_contact`).
//!
//! * Unknown users get exactly the challenge a wrong password gets
//!   (`alwaysauthreject`): nobody can enumerate extensions.
//! * Every failure is one greppable log line with the source address, in the
//!   wording fail2ban's Asterisk filter already matches; never a password.
//! * A username that fails too often from one address is refused there for a
//!   while ([`lockout`]): only answers to our challenges to that address
//!   count, and its neighbours behind the same NAT are not affected.
//! * Bindings are saved to `registrations.json` on every change by a writer
//!   thread ([`store`]: bursts coalesced, temp file and rename; never on the
//!   SIP thread) and read back at start, so a restart loses none.

use crate::config::{General, Peer};
use serde::{Deserialize, Serialize};
use sirius_sip::auth::params::AuthHeader;
use sirius_sip::auth::server::{DigestServer, Verdict};
use sirius_sip::message::{build, HeaderName, Message, NameAddr, Uri};
use sirius_sip::transaction::Transport;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

pub mod lockout;
pub mod store;

/// Where a registered peer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact URI the phone registered.
    pub contact: String,
    /// The address the REGISTER came from (what we send to: NAT-safe).
    pub addr: SocketAddr,
    /// Unix time the binding expires.
    pub expires_at: u64,
    /// The phone's User-Agent.
    pub useragent: String,
    /// The REGISTER came over TCP: requests to the phone go back over that
    /// connection (phones behind NAT cannot accept new ones). Absent in files
    /// written before TCP existed: UDP.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
}

impl Binding {
    /// The transport requests to the phone use.
    pub fn transport(&self) -> Transport {
        if self.tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        }
    }
}

/// Registrar state.
pub struct Registrar {
    digest: DigestServer,
    bindings: BTreeMap<String, Binding>,
    store: Option<store::Store>,
    lockout: lockout::Lockout,
}

/// What authenticating a request concluded.
pub enum AuthOutcome {
    /// Authenticated (or the peer needs no authentication).
    Ok,
    /// Send this response (401 challenge, 403 for the ACL or a lockout).
    Respond(Box<Message>),
}

/// What handling a REGISTER produced.
pub struct Outcome {
    /// The response to send.
    pub response: Message,
    /// A peer whose binding changed: (name, new binding or None if removed).
    pub changed: Option<(String, Option<Binding>)>,
}

fn aor_user(req: &Message) -> Option<String> {
    let to = req.to_header()?;
    Uri::parse(&to.uri).ok()?.user
}

/// A request's `Authorization` credentials, parsed, and the username they
/// give ("" without any).
fn credentials(req: &Message) -> (Option<AuthHeader>, String) {
    let creds = req
        .headers
        .get(&HeaderName::Authorization)
        .and_then(|v| AuthHeader::parse(v).ok());
    let user = creds
        .as_ref()
        .and_then(|c| c.get("username"))
        .unwrap_or("")
        .to_string();
    (creds, user)
}

/// What a nonce is bound to: the address the challenge went to, so that
/// only an answer from there verifies, and counts as a failure if wrong.
fn scope(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

impl Registrar {
    /// A registrar for `realm`, persisting to `store` (and loading what is there).
    pub fn new(realm: &str, store: Option<PathBuf>, now: u64) -> Registrar {
        let bindings = store
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice::<BTreeMap<String, Binding>>(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, b)| b.expires_at > now)
            .collect();
        Registrar {
            digest: DigestServer::with_random_key(realm, 300),
            bindings,
            store: store.map(store::Store::new),
            lockout: lockout::Lockout::default(),
        }
    }

    /// The current binding of a peer.
    pub fn binding(&self, peer: &str) -> Option<&Binding> {
        self.bindings.get(peer)
    }

    /// All bindings.
    pub fn bindings(&self) -> &BTreeMap<String, Binding> {
        &self.bindings
    }

    /// Changes the realm (on reload): outstanding nonces become invalid.
    pub fn set_realm(&mut self, realm: &str) {
        if self.digest.realm() != realm {
            self.digest = DigestServer::with_random_key(realm, 300);
        }
    }

    /// Hands the bindings to the writer thread (a copy: the SIP thread
    /// never waits for the disk).
    fn persist(&self) {
        if let Some(store) = &self.store {
            store.save(self.bindings.clone());
        }
    }

    /// Waits (bounded) until the bindings saved so far are on disk.
    pub fn flush(&self) {
        if let Some(store) = &self.store {
            store.flush();
        }
    }

    /// Drops expired bindings; returns the peers that lost theirs.
    pub fn expire(&mut self, now: u64) -> Vec<String> {
        let gone: Vec<String> = self
            .bindings
            .iter()
            .filter(|(_, b)| b.expires_at <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for n in &gone {
            self.bindings.remove(n);
            log::info!("Registration for peer '{n}' expired");
        }
        if !gone.is_empty() {
            self.persist();
        }
        gone
    }

    /// The brute-force lockout (`sip show banned`, `sip unban`).
    pub fn lockout(&mut self) -> &mut lockout::Lockout {
        &mut self.lockout
    }

    /// A 403 for `user` from `source` if that pair is locked out, logged at
    /// most once a second.
    fn refuse_locked(
        &mut self,
        req: &Message,
        source: SocketAddr,
        user: &str,
        now: u64,
        g: &General,
    ) -> Option<Message> {
        // A request without credentials (every phone's first) names no
        // user: never refused here.
        if user.is_empty() {
            return None;
        }
        let left = self.lockout.locked(source.ip(), user, now)?;
        if self.lockout.log_refusal(source.ip(), user, now) {
            log::warn!(
                target: "security",
                "Refusing '{user}' from '{source}' - Locked out after too many failed authentications ({left} s left; logged at most once a second)"
            );
        }
        Some(self.reply(req, source, 403, "Forbidden", g))
    }

    /// Counts a failure of `user` from `source`: only call it for
    /// credentials that answered a challenge we sent to that address.
    fn note_failure(&mut self, source: SocketAddr, user: &str, now: u64, g: &General) {
        // Credentials without a username: nothing a lock could name (and a
        // lock on "" would refuse nobody; see `refuse_locked`).
        if user.is_empty() {
            return;
        }
        let ip = source.ip();
        match self
            .lockout
            .fail(ip, user, now, g.authfailures, g.authblocktime)
        {
            lockout::Counted::Locked(n) => log::warn!(
                target: "security",
                "SecurityEvent=\"SessionLimit\",Service=\"SIP\",AccountID=\"{user}\",RemoteAddress=\"{}/UDP/{ip}\",Reason=\"{n} failed authentications in 60 s; '{user}' refused from this address for {} s\"",
                if ip.is_ipv4() { "IPV4" } else { "IPV6" },
                g.authblocktime
            ),
            lockout::Counted::AddressLocked(n) => log::warn!(
                target: "security",
                "SecurityEvent=\"SessionLimit\",Service=\"SIP\",AccountID=\"{user}\",RemoteAddress=\"{}/UDP/{ip}\",Reason=\"{n} failed authentications in 60 s over several usernames; every username refused from this address for {} s\"",
                if ip.is_ipv4() { "IPV4" } else { "IPV6" },
                g.authblocktime
            ),
            lockout::Counted::Untracked => {
                if self.lockout.log_full(now) {
                    log::warn!(
                        "the lockout table is full ({} entries): a failure of '{user}' from '{source}' is not counted (logged at most once a second)",
                        lockout::MAX_PAIRS
                    )
                }
            }
            lockout::Counted::Counted(_) => {}
        }
    }

    fn reply(
        &self,
        req: &Message,
        source: SocketAddr,
        code: u16,
        reason: &str,
        g: &General,
    ) -> Message {
        let mut r = build::response(req, code, reason, Some(source));
        build::set_to_tag(&mut r, &sirius_sip::message::build::random_token());
        r.push(HeaderName::Server, &g.useragent);
        r
    }

    fn challenge(
        &self,
        req: &Message,
        source: SocketAddr,
        now: u64,
        stale: bool,
        g: &General,
    ) -> Message {
        let mut r = self.reply(req, source, 401, "Unauthorized", g);
        r.push(
            HeaderName::WwwAuthenticate,
            self.digest.challenge_for(now, stale, &scope(source.ip())),
        );
        r
    }

    /// Authenticates a request other than REGISTER (an INVITE) from `peer`.
    pub fn authenticate(
        &mut self,
        req: &Message,
        method: &str,
        source: SocketAddr,
        now: u64,
        g: &General,
        peer: Option<&Peer>,
    ) -> AuthOutcome {
        let (creds, user) = credentials(req);
        if let Some(r) = self.refuse_locked(req, source, &user, now, g) {
            return AuthOutcome::Respond(Box::new(r));
        }
        let from_text = req.headers.get(&HeaderName::From).unwrap_or("").to_string();
        let Some(peer) = peer else {
            if let Some(creds) = &creds {
                log::warn!(target: "security", "Failed to authenticate device {from_text} for {method} from '{source}' - No matching peer found");
                if self.digest.issued_for(creds, &scope(source.ip())) {
                    self.note_failure(source, &user, now, g);
                }
            }
            return AuthOutcome::Respond(Box::new(self.challenge(req, source, now, false, g)));
        };
        if !peer.acl.allows(source.ip()) {
            // Not a guess at a password: refused the same way every time,
            // never counted.
            log::warn!(target: "security", "Failed to authenticate device {from_text} for {method} from '{source}' - Device does not match ACL");
            return AuthOutcome::Respond(Box::new(self.reply(req, source, 403, "Forbidden", g)));
        }
        let Some(ha1) = &peer.ha1 else {
            return AuthOutcome::Ok;
        };
        let Some(creds) = creds else {
            return AuthOutcome::Respond(Box::new(self.challenge(req, source, now, false, g)));
        };
        let verdict =
            self.digest
                .verify_for(&creds, method, &req.body, ha1, now, &scope(source.ip()));
        match (user == peer.username, verdict) {
            (true, Verdict::Ok) => AuthOutcome::Ok,
            (true, Verdict::Stale) => {
                AuthOutcome::Respond(Box::new(self.challenge(req, source, now, true, g)))
            }
            (_, Verdict::Rejected(why)) => {
                log::info!("{method} from '{source}' as '{user}' challenged again: {why}");
                AuthOutcome::Respond(Box::new(self.challenge(req, source, now, false, g)))
            }
            _ => {
                log::warn!(target: "security", "Failed to authenticate device {from_text} for {method} from '{source}' - Wrong password");
                self.note_failure(source, &user, now, g);
                AuthOutcome::Respond(Box::new(self.challenge(req, source, now, false, g)))
            }
        }
    }

    /// Handles one REGISTER.
    pub fn handle(
        &mut self,
        req: &Message,
        source: SocketAddr,
        transport: Transport,
        now: u64,
        g: &General,
        peers: &HashMap<String, Peer>,
    ) -> Outcome {
        let none = |r| Outcome {
            response: r,
            changed: None,
        };
        let (creds, user) = credentials(req);
        if let Some(r) = self.refuse_locked(req, source, &user, now, g) {
            return none(r);
        }
        let to_text = req.headers.get(&HeaderName::To).unwrap_or("").to_string();
        let Some(aor) = aor_user(req) else {
            return none(self.reply(req, source, 404, "Not Found", g));
        };
        let peer = peers
            .get(&aor)
            .filter(|p| p.dynamic && p.kind != crate::config::PeerType::User);
        let Some(peer) = peer else {
            // Unknown (or static) peer: the same answers as a wrong password.
            if let Some(creds) = &creds {
                log::warn!(target: "security", "Registration from '{to_text}' failed for '{source}' - No matching peer found");
                if self.digest.issued_for(creds, &scope(source.ip())) {
                    self.note_failure(source, &user, now, g);
                }
                let r = if g.alwaysauthreject {
                    self.challenge(req, source, now, false, g)
                } else {
                    self.reply(req, source, 404, "Not Found", g)
                };
                return none(r);
            }
            return none(self.challenge(req, source, now, false, g));
        };
        if !peer.acl.allows(source.ip()) {
            // Not a guess at a password: never counted.
            log::warn!(target: "security", "Registration from '{to_text}' failed for '{source}' - Device does not match ACL");
            return none(self.reply(req, source, 403, "Forbidden", g));
        }
        if let Some(ha1) = &peer.ha1 {
            let Some(creds) = creds else {
                return none(self.challenge(req, source, now, false, g));
            };
            let verdict = self.digest.verify_for(
                &creds,
                "REGISTER",
                &req.body,
                ha1,
                now,
                &scope(source.ip()),
            );
            if let Verdict::Rejected(why) = verdict {
                log::info!("REGISTER from '{source}' as '{user}' challenged again: {why}");
                return none(self.challenge(req, source, now, false, g));
            }
            if user != peer.username {
                log::warn!(target: "security", "Registration from '{to_text}' failed for '{source}' - Username/auth name mismatch");
                self.note_failure(source, &user, now, g);
                return none(self.challenge(req, source, now, false, g));
            }
            match verdict {
                Verdict::Ok => {}
                Verdict::Stale => return none(self.challenge(req, source, now, true, g)),
                Verdict::Failed(why) | Verdict::Rejected(why) => {
                    log::warn!(target: "security", "Registration from '{to_text}' failed for '{source}' - Wrong password");
                    log::debug!("digest check for '{}' failed: {why}", peer.name);
                    self.note_failure(source, &user, now, g);
                    return none(self.challenge(req, source, now, false, g));
                }
            }
        }
        if !peer.transports.contains(&transport) {
            // Checked after authentication, so it reveals nothing to strangers.
            log::warn!(
                "Rejecting registration of peer '{}' from {source}: transport {} not allowed",
                peer.name,
                transport.as_str()
            );
            return none(self.reply(req, source, 403, "Forbidden (Bad transport)", g));
        }
        self.update_binding(req, source, transport, now, g, peer)
    }

    fn update_binding(
        &mut self,
        req: &Message,
        source: SocketAddr,
        transport: Transport,
        now: u64,
        g: &General,
        peer: &Peer,
    ) -> Outcome {
        let header_expires = req
            .headers
            .get(&HeaderName::Expires)
            .and_then(|e| e.trim().parse::<u32>().ok());
        let contacts: Vec<NameAddr> = req
            .headers
            .values(&HeaderName::Contact)
            .filter_map(|c| NameAddr::parse(c).ok())
            .collect();
        let mut changed = None;
        match contacts.first() {
            None => {} // a query: answer with the current binding
            Some(c) if c.star => {
                if header_expires != Some(0) {
                    return Outcome {
                        response: self.reply(req, source, 400, "Bad Request", g),
                        changed: None,
                    };
                }
                if self.bindings.remove(&peer.name).is_some() {
                    changed = Some((peer.name.clone(), None));
                }
            }
            Some(c) => {
                let asked = c
                    .params
                    .get("expires")
                    .and_then(|e| e.parse::<u32>().ok())
                    .or(header_expires)
                    .unwrap_or(g.defaultexpiry);
                if asked == 0 {
                    if self.bindings.remove(&peer.name).is_some() {
                        log::info!("Unregistered SIP '{}'", peer.name);
                        changed = Some((peer.name.clone(), None));
                    }
                } else {
                    if asked < g.minexpiry {
                        let mut r = self.reply(req, source, 423, "Interval Too Brief", g);
                        r.push(HeaderName::MinExpires, g.minexpiry.to_string());
                        return Outcome {
                            response: r,
                            changed: None,
                        };
                    }
                    let granted = asked.min(g.maxexpiry);
                    let b = Binding {
                        contact: c.uri.clone(),
                        addr: source,
                        expires_at: now + u64::from(granted),
                        useragent: req
                            .headers
                            .get(&HeaderName::UserAgent)
                            .unwrap_or("")
                            .to_string(),
                        tcp: transport == Transport::Tcp,
                    };
                    let is_new = self
                        .bindings
                        .get(&peer.name)
                        .is_none_or(|old| old.contact != b.contact || old.addr != b.addr);
                    if is_new {
                        log::info!("Registered SIP '{}' at {}", peer.name, source);
                    }
                    self.bindings.insert(peer.name.clone(), b.clone());
                    changed = Some((peer.name.clone(), Some(b)));
                }
            }
        }
        if changed.is_some() {
            self.persist();
        }
        let mut r = self.reply(req, source, 200, "OK", g);
        if let Some(b) = self.bindings.get(&peer.name) {
            let left = b.expires_at.saturating_sub(now);
            r.push(
                HeaderName::Contact,
                format!("<{}>;expires={left}", b.contact),
            );
            r.push(HeaderName::Expires, left.to_string());
        }
        r.push(
            HeaderName::Date,
            chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        );
        Outcome {
            response: r,
            changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SipConfig;
    use sirius_sip::auth::client::Challenge;
    use sirius_sip::message::{parse_datagram, Limits};

    fn setup() -> (General, HashMap<String, Peer>) {
        let cfg: SipConfig = sirius_conf::parse_toml(
            std::path::Path::new("sip.toml"),
            "[general]\nrealm = \"sirius\"\nauthfailures = 3\n[peers.alice]\nsecret = \"pw\"\n[peers.carol]\nsecret = \"pw2\"\n[peers.trunk]\nhost = \"127.0.0.1\"\n",
        )
        .unwrap();
        let peers = cfg
            .resolve_peers("sip.toml")
            .unwrap()
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        (cfg.general, peers)
    }

    fn register(user: &str, cseq: u32, auth: Option<String>, expires: u32) -> Message {
        let mut t = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{cseq}\r\nFrom: <sip:{user}@127.0.0.1>;tag=f\r\n\
             To: <sip:{user}@127.0.0.1>\r\nCall-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:5062>\r\nExpires: {expires}\r\n"
        );
        if let Some(a) = auth {
            t.push_str(&format!("Authorization: {a}\r\n"));
        }
        t.push_str("Content-Length: 0\r\n\r\n");
        parse_datagram(t.as_bytes(), &Limits::default()).unwrap()
    }

    /// A registrar with the settings and peers of [`setup`], and one phone
    /// at `src` sending it REGISTERs over UDP.
    struct Phone {
        reg: Registrar,
        g: General,
        peers: HashMap<String, Peer>,
        src: SocketAddr,
    }

    impl Phone {
        fn new(src: &str, store: Option<std::path::PathBuf>) -> Phone {
            let (g, peers) = setup();
            Phone {
                reg: Registrar::new("sirius", store, 1000),
                g,
                peers,
                src: src.parse().unwrap(),
            }
        }

        /// One REGISTER at `now`.
        fn ask(&mut self, req: &Message, now: u64) -> Outcome {
            self.reg
                .handle(req, self.src, Transport::Udp, now, &self.g, &self.peers)
        }

        /// The response to one REGISTER at time 1000.
        fn send(&mut self, req: &Message) -> Message {
            self.ask(req, 1000).response
        }

        /// REGISTER as `user` with CSeq `cseq` (challenged), then again with
        /// CSeq `cseq + 1` answering the challenge with `pw`: the second
        /// outcome.
        fn login(&mut self, user: &str, cseq: u32, pw: &str, expires: u32) -> Outcome {
            let ch = self.send(&register(user, cseq, None, expires));
            let auth = answer(&ch, user, pw);
            self.ask(&register(user, cseq + 1, Some(auth), expires), 1000)
        }
    }

    fn answer(ch: &Message, user: &str, pw: &str) -> String {
        let c = Challenge::from_response(ch).unwrap().remove(0);
        c.authorize(user, pw, "REGISTER", "sip:127.0.0.1", b"", "abcd", 1)
            .unwrap()
    }

    #[test]
    fn challenge_register_persist_unregister() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("registrations.json");
        let mut phone = Phone::new("127.0.0.1:5062", Some(store.clone()));
        let r = phone.send(&register("alice", 1, None, 300));
        assert_eq!(r.code(), Some(401));
        let auth = answer(&r, "alice", "pw");
        let out = phone.ask(&register("alice", 2, Some(auth), 300), 1000);
        let ok = out.response;
        assert_eq!(ok.code(), Some(200));
        assert_eq!(
            ok.headers.get(&HeaderName::Contact),
            Some("<sip:alice@127.0.0.1:5062>;expires=300")
        );
        assert!(out.changed.unwrap().1.is_some());
        // Survives a restart.
        phone.reg.flush();
        let again = Registrar::new("sirius", Some(store.clone()), 1100);
        assert_eq!(again.binding("alice").unwrap().addr, phone.src);
        // And is gone after expiry.
        let mut later = Registrar::new("sirius", Some(store.clone()), 1100);
        assert_eq!(later.expire(1300), vec!["alice".to_string()]);
        drop(later);
        assert!(Registrar::new("sirius", Some(store), 1300)
            .binding("alice")
            .is_none());
    }

    #[test]
    fn unknown_users_get_the_same_answer_as_wrong_passwords_and_a_guessed_user_is_locked_out() {
        let mut phone = Phone::new("127.0.0.1:5099", None);
        let ch = phone.send(&register("alice", 1, None, 300));
        let wrong = phone.send(&register(
            "alice",
            2,
            Some(answer(&ch, "alice", "nope")),
            300,
        ));
        let ch2 = phone.send(&register("mallory", 1, None, 300));
        let unknown = phone.send(&register(
            "mallory",
            2,
            Some(answer(&ch2, "mallory", "x")),
            300,
        ));
        for r in [&wrong, &unknown, &ch2] {
            assert_eq!(r.code(), Some(401));
            let c = Challenge::from_response(r).unwrap().remove(0);
            assert_eq!(
                (c.realm.as_str(), c.stale, c.qop.clone()),
                ("sirius", false, vec!["auth".to_string()])
            );
        }
        assert!(phone.reg.binding("alice").is_none() && phone.reg.binding("mallory").is_none());
        // A static peer cannot register either (same answer).
        let t = phone.send(&register("trunk", 1, Some(answer(&ch, "trunk", "x")), 300));
        assert_eq!(t.code(), Some(401));
        // Alice has failed once (above); two more wrong passwords follow.
        let ip = phone.src.ip();
        assert_eq!(phone.reg.lockout().locked(ip, "alice", 1000), None);
        for cseq in [3, 5] {
            let ch = phone.send(&register("alice", cseq, None, 300));
            let r = phone.send(&register(
                "alice",
                cseq + 1,
                Some(answer(&ch, "alice", "nope")),
                300,
            ));
            assert_eq!(r.code(), Some(401));
        }
        // Three wrong passwords for alice from this address (authfailures =
        // 3): her right one is now refused there with a 403 ...
        assert_eq!(phone.reg.lockout().locked(ip, "alice", 1000), Some(300));
        assert_eq!(
            phone.login("alice", 7, "pw", 300).response.code(),
            Some(403)
        );
        // ... while carol, behind the same address, registers.
        assert_eq!(
            phone.login("carol", 1, "pw2", 300).response.code(),
            Some(200)
        );
        // A request without credentials is challenged as ever.
        assert_eq!(
            phone.send(&register("alice", 9, None, 300)).code(),
            Some(401)
        );
        // The lock ends on time.
        let ch = phone.ask(&register("alice", 10, None, 300), 1301).response;
        let ok = phone.ask(
            &register("alice", 11, Some(answer(&ch, "alice", "pw")), 300),
            1301,
        );
        assert_eq!(ok.response.code(), Some(200));
    }

    #[test]
    fn an_answer_to_another_address_s_challenge_is_not_counted() {
        let mut phone = Phone::new("192.0.2.1:5060", None);
        let ch = phone.send(&register("alice", 1, None, 300));
        let wrong = answer(&ch, "alice", "nope");
        // The same credentials, from another address: challenged again,
        // never counted (a spoofer cannot lock alice out).
        phone.src = "192.0.2.2:5060".parse().unwrap();
        for cseq in 2..10 {
            let r = phone.send(&register("alice", cseq, Some(wrong.clone()), 300));
            assert_eq!(r.code(), Some(401));
        }
        assert!(phone.reg.lockout().banned(1000).is_empty());
        assert_eq!(phone.reg.lockout().len(), 0);
        // Nor is a right password through another address's nonce accepted.
        let right = answer(&ch, "alice", "pw");
        let r = phone.send(&register("alice", 11, Some(right), 300));
        assert_eq!(r.code(), Some(401));
        assert!(phone.reg.binding("alice").is_none());
    }

    #[test]
    fn expiry_rules() {
        let mut phone = Phone::new("127.0.0.1:5062", None);
        let brief = phone.login("alice", 1, "pw", 30).response;
        assert_eq!(
            (brief.code(), brief.headers.get(&HeaderName::MinExpires)),
            (Some(423), Some("60"))
        );
        let ok = phone.login("alice", 3, "pw", 99999).response;
        assert_eq!(
            ok.headers.get(&HeaderName::Expires),
            Some("3600"),
            "capped at maxexpiry"
        );
        let gone = phone.login("alice", 5, "pw", 0);
        assert_eq!(gone.response.code(), Some(200));
        assert_eq!(gone.changed, Some(("alice".into(), None)));
        assert!(phone.reg.binding("alice").is_none());
    }
}
