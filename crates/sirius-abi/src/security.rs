//! Asterisk's security events (`res_security_log`): one line per failed (or
//! successful) authentication, in the `security` logger channel, in the
//! exact shape fail2ban's stock `asterisk` filter reads:
//!
//! ```text
//! SecurityEvent="InvalidPassword",EventTV="2026-12-03T21:00:59.123456+0000",Severity="Error",
//!   Service="SIP",EventVersion="2",AccountID="alice",SessionID="a84b4c76e66710",
//!   LocalAddress="IPV4/UDP/127.0.0.1/5060",RemoteAddress="IPV4/UDP/127.0.0.1/5061"
//! ```
//!
//! (one line; wrapped here). Field order and versions are Asterisk's
//! (`main/security_events.c`): the required fields, then the optional ones.
//!
//! Values an attacker chooses (the account name, a Call-ID) are cleaned by
//! [`log_safe`] first: Asterisk writes them raw, so an account name holding
//! `",RemoteAddress="IPV4/UDP/<victim>/5060` makes the filter ban the
//! victim, and one holding a line break forges a whole line.
//!
//! Like a verbose line ([`crate::verbose!`]) an event travels as an ordinary
//! log record, with the target [`SECURITY_TARGET`], so it needs nothing new in
//! the plugin interface: the host's logger labels it `SECURITY` and sends it
//! to the channels that asked for the `security` level.

use std::fmt::Write;
use std::net::SocketAddr;

/// The log target that marks a record as a security event.
pub const SECURITY_TARGET: &str = "security";

/// Whether a log record's target marks a security event.
pub fn is_security_target(target: &str) -> bool {
    target == SECURITY_TARGET
}

/// The kinds of event Sirius raises, with Asterisk's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEventKind {
    /// The request came from an address the account's ACL refuses.
    FailedAcl,
    /// No such account (unknown peer, unknown AMI user).
    InvalidAccountId,
    /// A digest response that does not match (wrong password).
    ChallengeResponseFailed,
    /// A wrong password (AMI's plain login, a digest with the wrong secret).
    InvalidPassword,
    /// An account authenticated.
    SuccessfulAuth,
}

impl SecurityEventKind {
    /// Asterisk's event name.
    pub fn name(self) -> &'static str {
        match self {
            Self::FailedAcl => "FailedACL",
            Self::InvalidAccountId => "InvalidAccountID",
            Self::ChallengeResponseFailed => "ChallengeResponseFailed",
            Self::InvalidPassword => "InvalidPassword",
            Self::SuccessfulAuth => "SuccessfulAuth",
        }
    }

    /// Asterisk's `EventVersion` for the event (security_events_defs.h).
    fn version(self) -> u32 {
        match self {
            Self::InvalidPassword => 2,
            _ => 1,
        }
    }

    fn severity(self) -> &'static str {
        match self {
            Self::SuccessfulAuth => "Informational",
            _ => "Error",
        }
    }
}

/// One security event. `transport` is `UDP`, `TCP`, `TLS`, `WS` or `WSS`.
#[derive(Debug, Clone)]
pub struct SecurityEvent<'a> {
    /// What happened.
    pub kind: SecurityEventKind,
    /// `SIP`, `AMI`.
    pub service: &'a str,
    /// The account named by the request (peer, user).
    pub account: &'a str,
    /// What ties the event to one exchange: the SIP Call-ID, the AMI session.
    pub session: &'a str,
    /// Our address the request reached.
    pub local: SocketAddr,
    /// Where it came from.
    pub remote: SocketAddr,
    /// The transport of both addresses.
    pub transport: &'a str,
    /// Optional fields, after the required ones (`Challenge`, `ReceivedChallenge`,
    /// `ReceivedHash`, `ACLName`, `UsingPassword`…), in Asterisk's order.
    pub extra: &'a [(&'a str, &'a str)],
}

impl SecurityEvent<'_> {
    /// The event line (without the logger's prefix).
    pub fn line(&self) -> String {
        let mut s = String::with_capacity(256);
        let _ = write!(
            s,
            "SecurityEvent=\"{}\",EventTV=\"{}\",Severity=\"{}\",Service=\"{}\",EventVersion=\"{}\"",
            self.kind.name(),
            event_tv(std::time::SystemTime::now()),
            self.kind.severity(),
            log_safe(self.service),
            self.kind.version(),
        );
        let _ = write!(
            s,
            ",AccountID=\"{}\",SessionID=\"{}\",LocalAddress=\"{}\",RemoteAddress=\"{}\"",
            log_safe(self.account),
            log_safe(self.session),
            address(self.local, self.transport),
            address(self.remote, self.transport),
        );
        for (k, v) in self.extra {
            let _ = write!(s, ",{k}=\"{}\"", log_safe(v));
        }
        s
    }

    /// Logs the event (to the `security` channel, through the host logger).
    pub fn log(&self) {
        log::warn!(target: SECURITY_TARGET, "{}", self.line());
    }
}

/// `IPV4/UDP/127.0.0.1/5060`, `IPV6/TCP/::1/5060` (Asterisk's `ast_json_ipaddr`:
/// the address without brackets, the port after the last slash).
pub fn address(addr: SocketAddr, transport: &str) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => std::net::IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let family = if ip.is_ipv4() { "IPV4" } else { "IPV6" };
    format!("{family}/{}/{ip}/{}", log_safe(transport), addr.port())
}

/// Text an attacker chose, made safe for a line a log filter reads: `"`,
/// `'`, `%`, `\`, `(`, `)` and control characters become `%XX`. The quotes
/// end the fields of the security line and of chan_sip's "Registration from
/// '…' failed for '…'" line, and the parentheses end the pjsip form's
/// `(callid: …)`; a quote left in would let a caller make the filter miss
/// the line, or read an address of the caller's choosing.
pub fn log_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() || matches!(c, '"' | '\'' | '%' | '\\' | '(' | ')');
    if !text.contains(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `2026-12-03T21:00:59.123456+0000`: ISO 8601 in UTC with microseconds (the
/// shape of Asterisk's `EventTV`, which fail2ban's filter knows).
pub fn event_tv(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}+0000",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn event_time_is_iso_8601_utc() {
        let t = UNIX_EPOCH + Duration::from_micros(1_796_331_659_123_456);
        assert_eq!(event_tv(t), "2026-12-03T21:00:59.123456+0000");
        assert_eq!(event_tv(UNIX_EPOCH), "1970-01-01T00:00:00.000000+0000");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(event_tv(t), "2000-02-29T00:00:00.000000+0000");
    }

    #[test]
    fn addresses_as_asterisk_writes_them() {
        assert_eq!(
            address("127.0.0.1:5061".parse().unwrap(), "UDP"),
            "IPV4/UDP/127.0.0.1/5061"
        );
        assert_eq!(
            address("[::1]:5060".parse().unwrap(), "TCP"),
            "IPV6/TCP/::1/5060"
        );
        assert_eq!(
            address("[::ffff:10.0.0.1]:5060".parse().unwrap(), "UDP"),
            "IPV4/UDP/10.0.0.1/5060"
        );
    }

    #[test]
    fn attacker_text_cannot_add_fields_or_lines() {
        let e = SecurityEvent {
            kind: SecurityEventKind::InvalidAccountId,
            service: "SIP",
            account: "x\",RemoteAddress=\"IPV4/UDP/8.8.8.8/5060\nSECURITY",
            session: "call(1)",
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: "127.0.0.1:5061".parse().unwrap(),
            transport: "UDP",
            extra: &[],
        };
        let line = e.line();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(line.matches("RemoteAddress=\"").count(), 1, "{line}");
        assert!(line.contains(
            "AccountID=\"x%22,RemoteAddress=%22IPV4/UDP/8.8.8.8/5060%0ASECURITY\",SessionID=\"call%281%29\""
        ));
        assert!(line.starts_with("SecurityEvent=\"InvalidAccountID\",EventTV=\""));
        assert!(line.ends_with(
            "+0000\",Severity=\"Error\",Service=\"SIP\",EventVersion=\"1\",AccountID=\"x%22,RemoteAddress=%22IPV4/UDP/8.8.8.8/5060%0ASECURITY\",SessionID=\"call%281%29\",LocalAddress=\"IPV4/UDP/127.0.0.1/5060\",RemoteAddress=\"IPV4/UDP/127.0.0.1/5061\""
        ), "{line}");
        assert_eq!(log_safe("plain <sip:a@b>"), "plain <sip:a@b>");
        assert_eq!(log_safe("it's"), "it%27s");
    }
}
