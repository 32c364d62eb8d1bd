//! The registrar: phones REGISTER here with digest auth, and we remember where
//! each dynamic peer is (Asterisk's `register_verify` + `parse_register_contact`).
//!
//! * Unknown users get exactly the challenge a wrong password gets
//!   (`alwaysauthreject`): nobody can enumerate extensions.
//! * Every failure is one greppable log line with the source address, in the
//!   wording fail2ban's Asterisk filter already matches; never a password.
//! * A source that fails too often is ignored for a while.
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

#[derive(Debug, Default)]
struct Failures {
    count: u32,
    window_start: u64,
    blocked_until: u64,
}

/// Registrar state.
pub struct Registrar {
    digest: DigestServer,
    bindings: BTreeMap<String, Binding>,
    store: Option<store::Store>,
    failures: HashMap<IpAddr, Failures>,
}

/// What authenticating a request concluded.
pub enum AuthOutcome {
    /// Authenticated (or the peer needs no authentication).
    Ok,
    /// Send this response (401 challenge, 403 for the ACL).
    Respond(Box<Message>),
    /// The source is blocked: drop the request.
    Ignore,
}

/// What handling a REGISTER produced.
pub struct Outcome {
    /// The response to send (`None`: the source is blocked, drop silently).
    pub response: Option<Message>,
    /// A peer whose binding changed: (name, new binding or None if removed).
    pub changed: Option<(String, Option<Binding>)>,
}

fn aor_user(req: &Message) -> Option<String> {
    let to = req.to_header()?;
    Uri::parse(&to.uri).ok()?.user
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
            failures: HashMap::new(),
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

    /// Whether a source is currently ignored after too many failures.
    pub fn is_blocked(&self, ip: IpAddr, now: u64) -> bool {
        self.failures
            .get(&ip)
            .is_some_and(|f| f.blocked_until > now)
    }

    fn note_failure(&mut self, ip: IpAddr, now: u64, g: &General) {
        let f = self.failures.entry(ip).or_default();
        if now.saturating_sub(f.window_start) > 60 {
            f.count = 0;
            f.window_start = now;
        }
        f.count += 1;
        if g.authfailures > 0 && f.count >= g.authfailures && f.blocked_until <= now {
            f.blocked_until = now + u64::from(g.authblocktime);
            log::warn!(
                target: "security",
                "SecurityEvent=\"SessionLimit\",Service=\"SIP\",RemoteAddress=\"IPV4/UDP/{ip}\",Reason=\"{} failed authentications in 60 s; ignoring for {} s\"",
                f.count,
                g.authblocktime
            );
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
            self.digest.challenge(now, stale),
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
        if self.is_blocked(source.ip(), now) {
            return AuthOutcome::Ignore;
        }
        let from_text = req.headers.get(&HeaderName::From).unwrap_or("").to_string();
        let creds = req
            .headers
            .get(&HeaderName::Authorization)
            .and_then(|v| AuthHeader::parse(v).ok());
        let Some(peer) = peer else {
            if creds.is_some() {
                log::warn!(target: "security", "Failed to authenticate device {from_text} for {method} from '{source}' - No matching peer found");
                self.note_failure(source.ip(), now, g);
            }
            return AuthOutcome::Respond(Box::new(self.challenge(req, source, now, false, g)));
        };
        if !peer.acl.allows(source.ip()) {
            log::warn!(target: "security", "Failed to authenticate device {from_text} for {method} from '{source}' - Device does not match ACL");
            self.note_failure(source.ip(), now, g);
            return AuthOutcome::Respond(Box::new(self.reply(req, source, 403, "Forbidden", g)));
        }
        let Some(ha1) = &peer.ha1 else {
            return AuthOutcome::Ok;
        };
        let Some(creds) = creds else {
            return AuthOutcome::Respond(Box::new(self.challenge(req, source, now, false, g)));
        };
        let user_ok = creds.get("username") == Some(peer.username.as_str());
        match (
            user_ok,
            self.digest.verify(&creds, method, &req.body, ha1, now),
        ) {
            (true, Verdict::Ok) => AuthOutcome::Ok,
            (true, Verdict::Stale) => {
                AuthOutcome::Respond(Box::new(self.challenge(req, source, now, true, g)))
            }
            _ => {
                log::warn!(target: "security", "Failed to authenticate device {from_text} for {method} from '{source}' - Wrong password");
                self.note_failure(source.ip(), now, g);
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
            response: Some(r),
            changed: None,
        };
        if self.is_blocked(source.ip(), now) {
            return Outcome {
                response: None,
                changed: None,
            };
        }
        let to_text = req.headers.get(&HeaderName::To).unwrap_or("").to_string();
        let Some(user) = aor_user(req) else {
            return none(self.reply(req, source, 404, "Not Found", g));
        };
        let peer = peers
            .get(&user)
            .filter(|p| p.dynamic && p.kind != crate::config::PeerType::User);
        let creds = req
            .headers
            .get(&HeaderName::Authorization)
            .and_then(|v| AuthHeader::parse(v).ok());

        let Some(peer) = peer else {
            // Unknown (or static) peer: the same answers as a wrong password.
            if creds.is_some() {
                log::warn!(target: "security", "Registration from '{to_text}' failed for '{source}' - No matching peer found");
                self.note_failure(source.ip(), now, g);
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
            log::warn!(target: "security", "Registration from '{to_text}' failed for '{source}' - Device does not match ACL");
            self.note_failure(source.ip(), now, g);
            return none(self.reply(req, source, 403, "Forbidden", g));
        }
        if let Some(ha1) = &peer.ha1 {
            let Some(creds) = creds else {
                return none(self.challenge(req, source, now, false, g));
            };
            if creds.get("username") != Some(peer.username.as_str()) {
                log::warn!(target: "security", "Registration from '{to_text}' failed for '{source}' - Username/auth name mismatch");
                self.note_failure(source.ip(), now, g);
                return none(self.challenge(req, source, now, false, g));
            }
            match self.digest.verify(&creds, "REGISTER", &req.body, ha1, now) {
                Verdict::Ok => {}
                Verdict::Stale => return none(self.challenge(req, source, now, true, g)),
                Verdict::Failed(why) => {
                    log::warn!(target: "security", "Registration from '{to_text}' failed for '{source}' - Wrong password");
                    log::debug!("digest check for '{}' failed: {why}", peer.name);
                    self.note_failure(source.ip(), now, g);
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
                        response: Some(self.reply(req, source, 400, "Bad Request", g)),
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
                            response: Some(r),
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
            response: Some(r),
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
            "[general]\nrealm = \"sirius\"\nauthfailures = 3\n[peers.alice]\nsecret = \"pw\"\n[peers.trunk]\nhost = \"127.0.0.1\"\n",
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
            self.ask(req, 1000).response.unwrap()
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
        let ok = out.response.unwrap();
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
    fn unknown_users_get_the_same_answer_as_wrong_passwords_and_sources_get_blocked() {
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
        // Three failures (authfailures = 3): the source is ignored.
        let ip = phone.src.ip();
        assert!(phone.reg.is_blocked(ip, 1001));
        assert!(phone
            .ask(&register("alice", 9, None, 300), 1001)
            .response
            .is_none());
        assert!(!phone.reg.is_blocked(ip, 1000 + 301));
    }

    #[test]
    fn expiry_rules() {
        let mut phone = Phone::new("127.0.0.1:5062", None);
        let brief = phone.login("alice", 1, "pw", 30).response.unwrap();
        assert_eq!(
            (brief.code(), brief.headers.get(&HeaderName::MinExpires)),
            (Some(423), Some("60"))
        );
        let ok = phone.login("alice", 3, "pw", 99999).response.unwrap();
        assert_eq!(
            ok.headers.get(&HeaderName::Expires),
            Some("3600"),
            "capped at maxexpiry"
        );
        let gone = phone.login("alice", 5, "pw", 0);
        assert_eq!(gone.response.unwrap().code(), Some(200));
        assert_eq!(gone.changed, Some(("alice".into(), None)));
        assert!(phone.reg.binding("alice").is_none());
    }
}
