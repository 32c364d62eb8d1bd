//! The registrar's security log: for each refused authentication one
//! human line in the wording fail2ban's stock `asterisk` filter matches, and
//! one Asterisk security event (`SecurityEvent="…"`, the `security`
//! channel); for each success a `SuccessfulAuth` event.
//!
//! * REGISTER: chan_sip's `Registration from '<To>' failed for '<ip:port>' -
//!   Wrong password` (and `No matching peer found`, `Device does not match
//!   ACL`, `Username/auth name mismatch`).
//! * Any other request (INVITE, SUBSCRIBE, REFER…): res_pjsip's `Request
//!   'INVITE' from '<From>' failed for '<ip:port>' (callid: …) - Failed to
//!   authenticate` (and `No matching endpoint found`, `Not match Endpoint
//!   ACL`), which the same filter matches; chan_sip's own line for these
//!   names no address.
//!
//! Header text is the caller's: it goes through [`log_safe`] so that a quote
//! or parenthesis in a To header cannot make the filter miss the line.

use sirius_abi::security::{log_safe, SecurityEvent, SecurityEventKind};
use sirius_sip::auth::params::AuthHeader;
use sirius_sip::message::{HeaderName, Message};
use sirius_sip::transaction::Transport;
use std::net::SocketAddr;

/// Where a request came from and what it reached.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// The sender's address.
    pub source: SocketAddr,
    /// Our address the request reached.
    pub local: SocketAddr,
    /// Its transport.
    pub transport: Transport,
}

/// Why an authentication was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No peer of that name (or a static one, for REGISTER).
    UnknownPeer,
    /// The peer's `permit`/`deny` refuse the address.
    Acl,
    /// The digest does not match the peer's secret.
    WrongPassword,
    /// The digest's username is not the peer's.
    UserMismatch,
}

impl Failure {
    fn chan_sip_reason(self) -> &'static str {
        match self {
            Failure::UnknownPeer => "No matching peer found",
            Failure::Acl => "Device does not match ACL",
            Failure::WrongPassword => "Wrong password",
            Failure::UserMismatch => "Username/auth name mismatch",
        }
    }

    fn pjsip_reason(self) -> &'static str {
        match self {
            Failure::UnknownPeer => "No matching endpoint found",
            Failure::Acl => "Not match Endpoint ACL",
            Failure::WrongPassword | Failure::UserMismatch => "Failed to authenticate",
        }
    }

    fn kind(self) -> SecurityEventKind {
        match self {
            Failure::UnknownPeer => SecurityEventKind::InvalidAccountId,
            Failure::Acl => SecurityEventKind::FailedAcl,
            // chan_sip's choice for both (ChallengeResponseFailed would need
            // the expected response, which is not for a log).
            Failure::WrongPassword | Failure::UserMismatch => SecurityEventKind::InvalidPassword,
        }
    }
}

/// A refused REGISTER. `account`: the name tried (the digest username, or
/// the AOR's user without credentials).
pub fn register_failed(
    req: &Message,
    at: Arrival,
    why: Failure,
    account: &str,
    creds: Option<&AuthHeader>,
) {
    let to = req.headers.get(&HeaderName::To).unwrap_or("");
    log::info!(
        "Registration from '{}' failed for '{}' - {}",
        log_safe(to),
        ip_port(at.source),
        why.chan_sip_reason()
    );
    event(req, at, why, account, creds);
}

/// A refused request other than REGISTER.
pub fn request_failed(
    req: &Message,
    method: &str,
    at: Arrival,
    why: Failure,
    account: &str,
    creds: Option<&AuthHeader>,
) {
    let from = req.headers.get(&HeaderName::From).unwrap_or("");
    let call_id = req.headers.get(&HeaderName::CallId).unwrap_or("");
    log::info!(
        "Request '{}' from '{}' failed for '{}' (callid: {}) - {}",
        log_safe(method),
        log_safe(from),
        ip_port(at.source),
        log_safe(call_id),
        why.pjsip_reason()
    );
    event(req, at, why, account, creds);
}

/// `ip:port`, `[v6]:port`, without an IPv6 scope (`%2`): fail2ban's
/// `<HOST>` does not read one, and a line it cannot read bans nobody.
fn ip_port(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.to_string(),
        SocketAddr::V6(v6) => format!("[{}]:{}", v6.ip(), v6.port()),
    }
}

/// An account that authenticated (a digest answered right).
pub fn authenticated(req: &Message, at: Arrival, account: &str) {
    let session = req.headers.get(&HeaderName::CallId).unwrap_or("");
    SecurityEvent {
        kind: SecurityEventKind::SuccessfulAuth,
        service: "SIP",
        account,
        session,
        local: at.local,
        remote: at.source,
        transport: at.transport.as_str(),
        extra: &[("UsingPassword", "1")],
    }
    .log();
}

fn event(req: &Message, at: Arrival, why: Failure, account: &str, creds: Option<&AuthHeader>) {
    let session = req.headers.get(&HeaderName::CallId).unwrap_or("");
    // InvalidPassword's optional fields, as chan_sip fills them: the nonce
    // the caller answered and its hash (never the password).
    let answered = creds.and_then(|c| Some((c.get("nonce")?, c.get("response")?)));
    let extra: Vec<(&str, &str)> = match (why, answered) {
        (Failure::WrongPassword, Some((nonce, hash))) => {
            vec![("ReceivedChallenge", nonce), ("ReceivedHash", hash)]
        }
        _ => Vec::new(),
    };
    SecurityEvent {
        kind: why.kind(),
        service: "SIP",
        account,
        session,
        local: at.local,
        remote: at.source,
        transport: at.transport.as_str(),
        extra: &extra,
    }
    .log();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv6Addr, SocketAddrV6};

    #[test]
    fn addresses_without_a_scope() {
        let scoped = SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            5061,
            0,
            2,
        ));
        assert_eq!(scoped.to_string(), "[fe80::1%2]:5061");
        assert_eq!(ip_port(scoped), "[fe80::1]:5061");
        assert_eq!(ip_port("127.0.0.1:5060".parse().unwrap()), "127.0.0.1:5060");
    }
}
