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
use sirius_abi::security::log_safe;
use sirius_sip::auth::params::AuthHeader;
use sirius_sip::auth::server::{DigestServer, Verdict};
use sirius_sip::message::{build, HeaderName, Message, NameAddr, Uri};
use sirius_sip::transaction::Transport;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

pub mod lockout;
pub mod security;
pub mod store;

pub use security::Arrival;
use security::Failure;

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
    /// Each registered peer's contacts, newest first (at most its
    /// `max_contacts`).
    bindings: BTreeMap<String, Vec<Binding>>,
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
    /// A peer whose bindings changed: (name, its newest binding, or None
    /// when it has none left).
    pub changed: Option<(String, Option<Binding>)>,
    /// This REGISTER added or refreshed a contact (not only removed one).
    pub refreshed: bool,
}

/// Whether two Contact URIs name the same contact (RFC 3261 §10.3's
/// comparison, §19.1.4, as far as a registrar needs it: scheme, user, host
/// case-insensitively, port, not the parameters); text equality when
/// either does not parse.
fn same_contact(a: &str, b: &str) -> bool {
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(x), Ok(y)) => {
            x.scheme.eq_ignore_ascii_case(&y.scheme)
                && x.user == y.user
                && x.host.to_string().eq_ignore_ascii_case(&y.host.to_string())
                && x.port == y.port
        }
        _ => a == b,
    }
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
            .and_then(|b| store::decode(&b))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(peer, mut list)| {
                list.retain(|b| b.expires_at > now);
                (!list.is_empty()).then_some((peer, list))
            })
            .collect();
        Registrar {
            digest: DigestServer::with_random_key(realm, 300),
            bindings,
            store: store.map(store::Store::new),
            lockout: lockout::Lockout::default(),
        }
    }

    /// A peer's newest binding: where a request for it goes when one
    /// contact is enough (a poke, an MWI NOTIFY).
    pub fn binding(&self, peer: &str) -> Option<&Binding> {
        self.bindings.get(peer).and_then(|l| l.first())
    }

    /// Every contact of a peer, newest first (a call rings them all).
    pub fn contacts(&self, peer: &str) -> &[Binding] {
        self.bindings.get(peer).map_or(&[], Vec::as_slice)
    }

    /// The registered peers, each with its contacts.
    pub fn bindings(&self) -> &BTreeMap<String, Vec<Binding>> {
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

    /// Drops expired contacts; returns the peers that lost their last one.
    pub fn expire(&mut self, now: u64) -> Vec<String> {
        let mut changed = false;
        let mut gone = Vec::new();
        for (n, list) in self.bindings.iter_mut() {
            let before = list.len();
            list.retain(|b| b.expires_at > now);
            if list.len() != before {
                changed = true;
                if list.is_empty() {
                    log::info!("Registration for peer '{n}' expired");
                    gone.push(n.clone());
                } else {
                    log::info!("A contact of peer '{n}' expired");
                }
            }
        }
        for n in &gone {
            self.bindings.remove(n);
        }
        if changed {
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
                "Refusing '{}' from '{source}' - Locked out after too many failed authentications ({left} s left; logged at most once a second)",
                log_safe(user)
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
                "'{}' refused from {ip} for {} s: {n} failed authentications in 60 s",
                log_safe(user),
                g.authblocktime
            ),
            lockout::Counted::AddressLocked(n) => log::warn!(
                "Every username refused from {ip} for {} s: {n} failed authentications in 60 s over several usernames",
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
        at: Arrival,
        now: u64,
        g: &General,
        peer: Option<&Peer>,
    ) -> AuthOutcome {
        let source = at.source;
        let (creds, user) = credentials(req);
        if let Some(r) = self.refuse_locked(req, source, &user, now, g) {
            return AuthOutcome::Respond(Box::new(r));
        }
        let Some(peer) = peer else {
            if let Some(creds) = &creds {
                security::request_failed(req, method, at, Failure::UnknownPeer, &user, Some(creds));
                if self.digest.issued_for(creds, &scope(source.ip())) {
                    self.note_failure(source, &user, now, g);
                }
            }
            return AuthOutcome::Respond(Box::new(self.challenge(req, source, now, false, g)));
        };
        if !peer.acl.allows(source.ip()) {
            // Not a guess at a password: refused the same way every time,
            // never counted.
            security::request_failed(req, method, at, Failure::Acl, &peer.name, creds.as_ref());
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
            (true, Verdict::Ok) => {
                security::authenticated(req, at, &peer.name);
                AuthOutcome::Ok
            }
            (true, Verdict::Stale) => {
                AuthOutcome::Respond(Box::new(self.challenge(req, source, now, true, g)))
            }
            (_, Verdict::Rejected(why)) => {
                log::info!("{method} from '{source}' as '{user}' challenged again: {why}");
                AuthOutcome::Respond(Box::new(self.challenge(req, source, now, false, g)))
            }
            _ => {
                security::request_failed(
                    req,
                    method,
                    at,
                    Failure::WrongPassword,
                    &user,
                    Some(&creds),
                );
                self.note_failure(source, &user, now, g);
                AuthOutcome::Respond(Box::new(self.challenge(req, source, now, false, g)))
            }
        }
    }

    /// Handles one REGISTER.
    pub fn handle(
        &mut self,
        req: &Message,
        at: Arrival,
        now: u64,
        g: &General,
        peers: &HashMap<String, Peer>,
    ) -> Outcome {
        let (source, transport) = (at.source, at.transport);
        let none = |r| Outcome {
            response: r,
            changed: None,
            refreshed: false,
        };
        let (creds, user) = credentials(req);
        if let Some(r) = self.refuse_locked(req, source, &user, now, g) {
            return none(r);
        }
        let Some(aor) = aor_user(req) else {
            return none(self.reply(req, source, 404, "Not Found", g));
        };
        let peer = peers
            .get(&aor)
            .filter(|p| p.dynamic && p.kind != crate::config::PeerType::User);
        let Some(peer) = peer else {
            // Unknown (or static) peer: the same answers as a wrong password.
            if let Some(creds) = &creds {
                let account = if user.is_empty() { &aor } else { &user };
                security::register_failed(req, at, Failure::UnknownPeer, account, Some(creds));
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
            security::register_failed(req, at, Failure::Acl, &peer.name, creds.as_ref());
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
                security::register_failed(req, at, Failure::UserMismatch, &user, Some(&creds));
                self.note_failure(source, &user, now, g);
                return none(self.challenge(req, source, now, false, g));
            }
            match verdict {
                Verdict::Ok => security::authenticated(req, at, &peer.name),
                Verdict::Stale => return none(self.challenge(req, source, now, true, g)),
                Verdict::Failed(why) | Verdict::Rejected(why) => {
                    security::register_failed(req, at, Failure::WrongPassword, &user, Some(&creds));
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
        let asked = |c: &NameAddr| {
            c.params
                .get("expires")
                .and_then(|e| e.parse::<u32>().ok())
                .or(header_expires)
                .unwrap_or(g.defaultexpiry)
        };
        let mut changed = false;
        let mut refreshed = false;
        if contacts.iter().any(|c| c.star) {
            // `Contact: *` removes every contact, and only with Expires: 0
            // and alone (RFC 3261 §10.2.2).
            if header_expires != Some(0) || contacts.len() > 1 {
                return Outcome {
                    response: self.reply(req, source, 400, "Bad Request", g),
                    changed: None,
                    refreshed: false,
                };
            }
            if self.bindings.remove(&peer.name).is_some() {
                log::info!("Unregistered SIP '{}'", peer.name);
                changed = true;
            }
        } else {
            if contacts
                .iter()
                .any(|c| (1..g.minexpiry).contains(&asked(c)))
            {
                let mut r = self.reply(req, source, 423, "Interval Too Brief", g);
                r.push(HeaderName::MinExpires, g.minexpiry.to_string());
                return Outcome {
                    response: r,
                    changed: None,
                    refreshed: false,
                };
            }
            let useragent = req
                .headers
                .get(&HeaderName::UserAgent)
                .unwrap_or("")
                .to_string();
            let had = self.bindings.contains_key(&peer.name);
            let list = self.bindings.entry(peer.name.clone()).or_default();
            for c in &contacts {
                let asked = asked(c);
                let at = list.iter().position(|b| same_contact(&b.contact, &c.uri));
                if asked == 0 {
                    if let Some(i) = at {
                        list.remove(i);
                        changed = true;
                    } else if peer.max_contacts <= 1 && !list.is_empty() {
                        // One contact: Expires 0 ends the registration
                        // whatever the Contact says, as chan_sip's single
                        // binding did.
                        list.clear();
                        changed = true;
                    }
                    continue;
                }
                let b = Binding {
                    contact: c.uri.clone(),
                    addr: source,
                    expires_at: now + u64::from(asked.min(g.maxexpiry)),
                    useragent: useragent.clone(),
                    tcp: transport == Transport::Tcp,
                };
                let old = at.map(|i| list.remove(i));
                if old.as_ref().is_none_or(|o| o.addr != b.addr) {
                    log::info!("Registered SIP '{}' at {}", peer.name, source);
                }
                // Newest first; past `max_contacts` the oldest goes (a
                // phone that re-registers from a new address replaces its
                // old self, as chan_sip's one binding did).
                list.insert(0, b);
                changed = true;
                refreshed = true;
                while list.len() > peer.max_contacts.max(1) as usize {
                    if let Some(gone) = list.pop() {
                        log::info!(
                            "Peer '{}' has {} contact(s) at most (max_contacts): {} replaced",
                            peer.name,
                            peer.max_contacts.max(1),
                            gone.contact
                        );
                    }
                }
            }
            if list.is_empty() {
                self.bindings.remove(&peer.name);
                if had {
                    log::info!("Unregistered SIP '{}'", peer.name);
                }
            }
        }
        let changed = changed.then(|| (peer.name.clone(), self.binding(&peer.name).cloned()));
        if changed.is_some() {
            self.persist();
        }
        let mut r = self.reply(req, source, 200, "OK", g);
        for b in self.contacts(&peer.name) {
            let left = b.expires_at.saturating_sub(now);
            r.push(
                HeaderName::Contact,
                format!("<{}>;expires={left}", b.contact),
            );
        }
        if let Some(b) = self.binding(&peer.name) {
            let left = b.expires_at.saturating_sub(now);
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
            refreshed,
        }
    }
}

#[cfg(test)]
mod tests;
