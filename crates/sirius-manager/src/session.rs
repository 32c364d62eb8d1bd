//! One AMI connection's state machine, without IO: a [`Message`] in,
//! [`Output`]s out (text to write, close, a call to wait for). The server
//! (`server.rs`) owns the socket, the timers and the event queue.
//!
//! ```text
//!   connect (the server writes the banner)
//!      │
//!      ▼
//!   Unauthenticated ──Challenge (AuthType: MD5)──▶ Unauthenticated (challenge kept)
//!      │   │  any other action ─▶ "Permission denied", stays
//!      │   │  authtimeout / authlimit (server) ─▶ closed
//!      │   └─ Login refused ─▶ "Authentication failed" ─▶ closed
//!      │ Login accepted (plain Secret, or MD5 Key)
//!      ▼   + FullyBooted when the user reads `system`
//!   Authenticated ── actions (each checked against the user's `write`
//!      │               classes), events (its `read` classes ∩ the Events mask)
//!      │
//!      └── Logoff (from either state) ─▶ "Goodbye" ─▶ closed
//! ```
//!
//! Failed logins are security events (the `security` log, fail2ban), with
//! Asterisk's NOTICE line `<ip> failed to authenticate as '<user>'`.

use crate::backend::Backend;
use crate::config::{Settings, User};
use crate::message::{Message, Reply};
use crate::perms::Perms;
use md5::{Digest, Md5};
use sirius_abi::security::{log_safe, SecurityEvent, SecurityEventKind};
use sirius_abi::ChannelId;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a session asks of its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Text to write.
    Write(String),
    /// Close once everything before has been written.
    Close,
    /// Wait a second before what follows (a refused login: Asterisk
    /// sleeps before answering, which slows a password guesser down).
    Pause,
    /// Wait for an originated call's answer, then write `OriginateResponse`
    /// (and, for a synchronous Originate, the response first).
    AwaitOriginate(PendingOriginate),
}

/// An originated call whose outcome the client waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOriginate {
    /// The new channel.
    pub chan: ChannelId,
    /// Its name and uniqueid.
    pub name: String,
    /// Its uniqueid.
    pub uniqueid: String,
    /// The action (for its ActionID and the fields echoed back).
    pub action: Message,
    /// `Async: no`: the response waits for the outcome.
    pub sync: bool,
}

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Connected, not logged in.
    Unauthenticated,
    /// Logged in.
    Authenticated,
    /// Logged off or refused: nothing more is read.
    Closed,
}

/// One connection's session.
pub struct Session {
    /// `0x…`: ties its security events together (Asterisk prints the
    /// session's address).
    pub id: String,
    /// Our address the client reached.
    pub local: SocketAddr,
    /// The client's address.
    pub remote: SocketAddr,
    state: State,
    settings: Arc<Settings>,
    challenge: Option<String>,
    user: Option<User>,
    /// Classes of events sent (`read` ∩ the `Events` mask).
    mask: Perms,
}

impl Session {
    /// A new connection's session.
    pub fn new(id: u64, local: SocketAddr, remote: SocketAddr, settings: Arc<Settings>) -> Session {
        Session {
            id: format!("0x{:012x}", id),
            local,
            remote,
            state: State::Unauthenticated,
            settings,
            challenge: None,
            user: None,
            mask: Perms::NONE,
        }
    }

    /// Where it is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The logged-in user's name.
    pub fn username(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.name.as_str())
    }

    /// Classes of events this session receives now.
    pub fn event_mask(&self) -> Perms {
        if self.state == State::Authenticated {
            self.mask
        } else {
            Perms::NONE
        }
    }

    /// The logged-in user's write timeout.
    pub fn writetimeout(&self) -> std::time::Duration {
        self.user
            .as_ref()
            .map_or(std::time::Duration::from_millis(100), |u| u.writetimeout)
    }

    /// Handles one action.
    pub fn handle(&mut self, m: &Message, backend: &dyn Backend) -> Vec<Output> {
        if self.state == State::Closed {
            return Vec::new();
        }
        let action = m.get("Action");
        if action.is_empty() {
            return vec![Output::Write(Reply::error(m, "Missing action in request"))];
        }
        let lower = action.to_ascii_lowercase();
        match lower.as_str() {
            "logoff" => {
                self.state = State::Closed;
                let mut r = Reply::response("Goodbye", m);
                r.kv("Message", "Thanks for all the fish.");
                return vec![Output::Write(r.end()), Output::Close];
            }
            "login" => return self.login(m, backend),
            "challenge" => return vec![Output::Write(self.challenge(m))],
            _ => {}
        }
        if self.state != State::Authenticated {
            return vec![Output::Write(Reply::error(m, "Permission denied"))];
        }
        let Some(needed) = crate::actions::class_of(&lower) else {
            return vec![Output::Write(Reply::error(
                m,
                &format!(
                    "Invalid/unknown command: {action}. Use Action: ListCommands to show available commands."
                ),
            ))];
        };
        let write = self.user.as_ref().map_or(Perms::NONE, |u| u.write);
        if needed != Perms::NONE && !write.intersects(needed) {
            return vec![Output::Write(Reply::error(m, "Permission denied"))];
        }
        if lower == "events" {
            return vec![Output::Write(self.events(m))];
        }
        crate::actions::run(&lower, m, backend)
    }

    /// `Challenge`: a random challenge for an MD5 login (kept until used).
    fn challenge(&mut self, m: &Message) -> String {
        if !m.get("AuthType").eq_ignore_ascii_case("MD5") {
            return Reply::error(m, "Must specify AuthType");
        }
        let challenge = self.challenge.get_or_insert_with(random_challenge).clone();
        let mut r = Reply::response("Success", m);
        r.kv("Challenge", &challenge);
        r.end()
    }

    /// `Events`: `EventMask: on|off|<classes>`, within the user's `read`.
    fn events(&mut self, m: &Message) -> String {
        let Some(mask) = Perms::from_mask(m.get("EventMask")) else {
            return Reply::error(m, "Invalid event mask");
        };
        let read = self.user.as_ref().map_or(Perms::NONE, |u| u.read);
        self.mask = read.and(mask);
        let mut r = Reply::response("Success", m);
        r.kv("Events", if mask == Perms::NONE { "Off" } else { "On" });
        r.end()
    }

    fn login(&mut self, m: &Message, backend: &dyn Backend) -> Vec<Output> {
        if self.state == State::Authenticated {
            return vec![Output::Write(Reply::ack(m, "Already authenticated"))];
        }
        let Some(user) = self.authenticate(m) else {
            self.state = State::Closed;
            return vec![
                Output::Pause,
                Output::Write(Reply::error(m, "Authentication failed")),
                Output::Close,
            ];
        };
        let md5 = self.used_md5(m);
        self.mask = user.read;
        if let Some(mask) = Perms::from_mask(m.get("Events")) {
            self.mask = user.read.and(mask);
        }
        let display = user
            .displayconnects
            .unwrap_or(self.settings.general.displayconnects);
        if display {
            sirius_abi::verbose!(
                2,
                "Manager '{}' logged on from {}",
                log_safe(&user.name),
                self.remote.ip()
            );
        }
        self.security(
            SecurityEventKind::SuccessfulAuth,
            &user.name,
            &[("UsingPassword", if md5 { "0" } else { "1" })],
        );
        self.user = Some(user);
        self.state = State::Authenticated;
        let mut out = vec![Output::Write(Reply::ack(m, "Authentication accepted"))];
        if self.mask.intersects(Perms::SYSTEM) {
            let (uptime, reload) = backend.uptime();
            let mut r = Reply::event("FullyBooted");
            r.kv("Privilege", &Perms::SYSTEM.privilege())
                .kv("Uptime", &uptime.to_string())
                .kv("LastReload", &reload.to_string())
                .kv("Status", "Fully Booted");
            out.push(Output::Write(r.end()));
        }
        out
    }

    fn used_md5(&self, m: &Message) -> bool {
        m.get("AuthType").eq_ignore_ascii_case("MD5")
    }

    /// Asterisk's `authenticate`: the user, its ACL, then the secret (plain
    /// or MD5 of challenge + secret). Every refusal is logged as Asterisk
    /// logs it and raised as a security event.
    fn authenticate(&self, m: &Message) -> Option<User> {
        let name = m.get("Username");
        if name.is_empty() {
            return None;
        }
        let ip = self.remote.ip();
        let safe = log_safe(name);
        let refused = |kind: SecurityEventKind, extra: &[(&str, &str)]| {
            self.security(kind, name, extra);
            log::info!("{ip} failed to authenticate as '{safe}'");
            None
        };
        let Some(user) = self.settings.users.get(name) else {
            log::info!("{ip} tried to authenticate with nonexistent user '{safe}'");
            return refused(SecurityEventKind::InvalidAccountId, &[]);
        };
        if !user.acl.allows(ip) {
            log::info!("{ip} failed to pass IP ACL as '{safe}'");
            return refused(SecurityEventKind::FailedAcl, &[]);
        }
        let Some(secret) = &user.secret else {
            return refused(SecurityEventKind::InvalidPassword, &[]);
        };
        if self.used_md5(m) {
            let key = m.get("Key");
            let Some(challenge) = self.challenge.as_deref().filter(|_| !key.is_empty()) else {
                log::debug!("MD5 authentication is not possible: no challenge or no key");
                return refused(SecurityEventKind::ChallengeResponseFailed, &[]);
            };
            if !constant_eq(
                key.to_ascii_lowercase().as_bytes(),
                md5_key(challenge, secret).as_bytes(),
            ) {
                // Asterisk also logs the expected response; that is a hash
                // of the secret an attacker could grind offline: left out.
                return refused(
                    SecurityEventKind::ChallengeResponseFailed,
                    &[("Challenge", challenge), ("Response", key)],
                );
            }
        } else if !constant_eq(m.get("Secret").as_bytes(), secret.as_bytes()) {
            return refused(SecurityEventKind::InvalidPassword, &[]);
        }
        Some(user.clone())
    }

    fn security(&self, kind: SecurityEventKind, account: &str, extra: &[(&str, &str)]) {
        SecurityEvent {
            kind,
            service: "AMI",
            account,
            session: &self.id,
            local: self.local,
            remote: self.remote,
            transport: "TCP",
            extra,
        }
        .log();
    }
}

/// md5(challenge + secret) in lower-case hex: what an MD5 login's `Key` is.
pub fn md5_key(challenge: &str, secret: &str) -> String {
    let mut h = Md5::new();
    h.update(challenge.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference (no timing hint).
fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A decimal challenge, as Asterisk's `ast_random` gives: unpredictable
/// (the process's random hash keys over the time and a counter).
fn random_challenge() -> String {
    use std::hash::{BuildHasher, Hasher};
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 1).to_string()
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
