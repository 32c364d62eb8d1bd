//! The grammar of call transfer: `Refer-To` (RFC 3515), `Replaces` (RFC
//! 3891), the `message/sipfrag` bodies of the NOTIFYs that report a
//! transfer's progress, `Event`, `Subscription-State` (RFC 6665) and
//! `Refer-Sub` (RFC 4488). Pure functions over header values: what chan_sip
//! decides with them lives in its REFER usage.
//!
//! Why a module of its own and not more of `message`: these values carry a
//! URI whose `?` headers hold another header, escaped (`?Replaces=abc%40h
//! %3Bto-tag%3D1%3Bfrom-tag%3D2`); the URI parser keeps that part as text,
//! and only transfer needs it taken apart.

use crate::dialog::DialogId;
use crate::message::{NameAddr, Uri, UriError};
use std::fmt;

/// The header RFC 4488 adds: `Refer-Sub: false` asks for no implicit
/// subscription (the REFER's final response then says how it went).
pub const REFER_SUB: &str = "Refer-Sub";

/// Why a `Refer-To` value was refused (each answered `400 Bad Request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferToError {
    /// No `Refer-To` header, or an empty one.
    #[error("no Refer-To")]
    Missing,
    /// More than one address (RFC 3515 §2.4.1: exactly one).
    #[error("more than one Refer-To address")]
    Several,
    /// Not a well-formed name-addr or URI.
    #[error("malformed Refer-To: {0}")]
    Syntax(String),
    /// A scheme other than `sip`, `sips` and `tel` (an `http:` or `mailto:`
    /// target is nothing a PBX can call).
    #[error("Refer-To scheme '{0}' is not sip, sips or tel")]
    Scheme(String),
    /// The `Replaces` header inside the URI is malformed.
    #[error("malformed Replaces in Refer-To: {0}")]
    Replaces(#[from] ReplacesError),
}

/// Where a REFER sends the transferee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A `sip:` or `sips:` URI (its `?` headers taken out, see [`ReferTo`]).
    Sip(Uri),
    /// A `tel:` number, visual separators removed (`+1-212-555-0101` is
    /// `+12125550101`).
    Tel(String),
}

/// A parsed `Refer-To`: the target, the `Replaces` it carries (attended
/// transfer) and the URI's other headers, decoded (`body=` of an RFC 3725
/// controller, kept but not acted on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferTo {
    /// Where to.
    pub target: Target,
    /// `?Replaces=…`: the dialog the transfer target replaces.
    pub replaces: Option<Replaces>,
    /// The URI's other headers, names as written, values unescaped.
    pub other_headers: Vec<(String, String)>,
}

impl ReferTo {
    /// Parses the value of one `Refer-To` header (several headers are the
    /// caller's to refuse, as [`ReferToError::Several`]).
    pub fn parse(value: &str) -> Result<ReferTo, ReferToError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(ReferToError::Missing);
        }
        let mut list = NameAddr::parse_list(value).map_err(ReferToError::Syntax)?;
        if list.len() > 1 {
            return Err(ReferToError::Several);
        }
        let addr = list.pop().ok_or(ReferToError::Missing)?;
        let text = addr.uri.as_str();
        let scheme_end = text
            .find(':')
            .ok_or_else(|| ReferToError::Syntax(format!("no scheme in '{text}'")))?;
        let scheme = text[..scheme_end].to_ascii_lowercase();
        if scheme == "tel" {
            return Ok(ReferTo {
                target: Target::Tel(tel_number(&text[scheme_end + 1..])?),
                replaces: None,
                other_headers: Vec::new(),
            });
        }
        let mut uri = Uri::parse(text).map_err(|e| match e {
            UriError::UnsupportedScheme(s) => ReferToError::Scheme(s),
            UriError::Syntax(s) => ReferToError::Syntax(s),
        })?;
        let mut replaces = None;
        let mut other_headers = Vec::new();
        if let Some(headers) = uri.headers.take() {
            for field in headers.split('&').filter(|f| !f.is_empty()) {
                let (name, raw) = field.split_once('=').unwrap_or((field, ""));
                let decoded = unescape(raw).ok_or_else(|| {
                    ReferToError::Syntax(format!("bad escape in URI header '{field}'"))
                })?;
                if name.eq_ignore_ascii_case("replaces") {
                    if replaces.is_some() {
                        return Err(ReplacesError::Several.into());
                    }
                    replaces = Some(Replaces::parse(&decoded)?);
                } else {
                    other_headers.push((name.to_string(), decoded));
                }
            }
        }
        Ok(ReferTo {
            target: Target::Sip(uri),
            replaces,
            other_headers,
        })
    }

    /// The extension to run: the user part, unescaped (`%23` is `#`), or the
    /// `tel:` number; empty when the URI has no user (`sip:pbx.example`).
    pub fn exten(&self) -> String {
        match &self.target {
            Target::Sip(uri) => uri
                .user
                .as_deref()
                .map(|u| unescape(u).unwrap_or_else(|| u.to_string()))
                .unwrap_or_default(),
            Target::Tel(number) => number.clone(),
        }
    }
}

/// The number of a `tel:` URI (RFC 3966): up to its first parameter, visual
/// separators removed; digits, `*`, `#`, `+` (first only) and `A`–`D` left.
fn tel_number(rest: &str) -> Result<String, ReferToError> {
    let number = rest.split(';').next().unwrap_or("");
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    let valid = digits.trim_start_matches('+').chars().any(|c| c != '+')
        && digits.char_indices().all(|(i, c)| {
            c.is_ascii_digit()
                || matches!(c, '*' | '#' | 'A'..='D' | 'a'..='d')
                || (c == '+' && i == 0)
        });
    if valid {
        Ok(digits)
    } else {
        Err(ReferToError::Syntax(format!("bad tel number '{number}'")))
    }
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not
/// UTF-8.
pub fn unescape(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            // Two hex digits, nothing else (from_str_radix takes a '+').
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Why a `Replaces` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplacesError {
    /// No Call-ID before the parameters.
    #[error("no Call-ID")]
    NoCallId,
    /// `to-tag` or `from-tag` missing (RFC 3891 §6.1: both are required).
    #[error("missing {0}")]
    MissingTag(&'static str),
    /// More than one Replaces (RFC 3891 §3: answered 400).
    #[error("more than one Replaces")]
    Several,
    /// A parameter that does not parse.
    #[error("malformed parameter '{0}'")]
    Syntax(String),
}

/// A `Replaces` value (RFC 3891 §6.1): the dialog a new INVITE (or the
/// INVITE a REFER triggers) takes over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    /// The dialog's Call-ID.
    pub call_id: String,
    /// The tag of the side that *received* the replaced dialog's INVITE,
    /// as seen by the sender of Replaces: for us, our local tag.
    pub to_tag: String,
    /// The other side's tag: for us, the remote tag.
    pub from_tag: String,
    /// `early-only`: replace only a dialog that is not yet confirmed.
    pub early_only: bool,
}

impl Replaces {
    /// Parses `call-id;to-tag=…;from-tag=…[;early-only]` (parameters in any
    /// order, names case-insensitive, unknown ones ignored).
    pub fn parse(value: &str) -> Result<Replaces, ReplacesError> {
        let mut parts = value.trim().split(';');
        let call_id = parts.next().unwrap_or("").trim();
        if call_id.is_empty() {
            return Err(ReplacesError::NoCallId);
        }
        let (mut to_tag, mut from_tag, mut early_only) = (None, None, false);
        for p in parts {
            let p = p.trim();
            let (name, v) = match p.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (p, None),
            };
            if name.is_empty() {
                return Err(ReplacesError::Syntax(p.to_string()));
            }
            match (name.to_ascii_lowercase().as_str(), v) {
                ("to-tag", Some(v)) if !v.is_empty() => to_tag = Some(v.to_string()),
                ("from-tag", Some(v)) if !v.is_empty() => from_tag = Some(v.to_string()),
                ("to-tag" | "from-tag", _) => return Err(ReplacesError::Syntax(p.to_string())),
                ("early-only", None) => early_only = true,
                _ => {}
            }
        }
        Ok(Replaces {
            call_id: call_id.to_string(),
            to_tag: to_tag.ok_or(ReplacesError::MissingTag("to-tag"))?,
            from_tag: from_tag.ok_or(ReplacesError::MissingTag("from-tag"))?,
            early_only,
        })
    }

    /// The dialog as the receiver of the Replaces keys it: its to-tag is our
    /// local tag (RFC 3891 §3).
    pub fn dialog_id(&self) -> DialogId {
        DialogId {
            call_id: self.call_id.clone(),
            local_tag: self.to_tag.clone(),
            remote_tag: self.from_tag.clone(),
        }
    }
}

impl fmt::Display for Replaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        )?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        Ok(())
    }
}

/// The body of a transfer NOTIFY: the status line of the triggered
/// request's latest response (RFC 3515 §2.4.5), `SIP/2.0 200 OK\r\n`.
pub fn sipfrag(code: u16, reason: &str) -> Vec<u8> {
    format!("SIP/2.0 {code} {reason}\r\n").into_bytes()
}

/// The content type of [`sipfrag`] bodies, as Asterisk and RFC 3515 send it.
pub const SIPFRAG: &str = "message/sipfrag;version=2.0";

/// The status code of a sipfrag body (`SIP/2.0 180 Ringing`), if it is one.
pub fn parse_sipfrag(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let code = rest.split_whitespace().next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..700).contains(c))
}

/// `Subscription-State` (RFC 6665 §8.2.3) as a notifier sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// `active;expires=N`.
    Active {
        /// Seconds left.
        expires: u32,
    },
    /// `terminated;reason=…` (`noresource` once a transfer's outcome is
    /// final, `timeout` when the subscription ran out first).
    Terminated {
        /// Why.
        reason: String,
    },
}

impl SubState {
    /// Parses a received value (`active;expires=60`, `terminated;reason=
    /// noresource`, `pending`): `pending` counts as active; `None` for
    /// anything else.
    pub fn parse(value: &str) -> Option<SubState> {
        let mut parts = value.split(';').map(str::trim);
        let state = parts.next()?.to_ascii_lowercase();
        let mut expires = None;
        let mut reason = None;
        for p in parts {
            if let Some((n, v)) = p.split_once('=') {
                match n.trim().to_ascii_lowercase().as_str() {
                    "expires" => expires = v.trim().parse().ok(),
                    "reason" => reason = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        match state.as_str() {
            "active" | "pending" => Some(SubState::Active {
                expires: expires.unwrap_or(0),
            }),
            "terminated" => Some(SubState::Terminated {
                reason: reason.unwrap_or_default(),
            }),
            _ => None,
        }
    }
}

impl fmt::Display for SubState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubState::Active { expires } => write!(f, "active;expires={expires}"),
            SubState::Terminated { reason } if reason.is_empty() => f.write_str("terminated"),
            SubState::Terminated { reason } => write!(f, "terminated;reason={reason}"),
        }
    }
}

/// An `Event` value (RFC 6665 §8.2.1): the package, lower case, and its
/// `id` parameter (a second REFER in one dialog is `refer;id=<its CSeq>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `refer`, `message-summary`, `dialog`…
    pub package: String,
    /// `;id=…`.
    pub id: Option<String>,
}

impl Event {
    /// Parses `refer;id=93809824`; `None` when there is no package name.
    pub fn parse(value: &str) -> Option<Event> {
        let mut parts = value.split(';').map(str::trim);
        let package = parts.next()?.to_ascii_lowercase();
        if package.is_empty() || package.contains(char::is_whitespace) {
            return None;
        }
        let id = parts.find_map(|p| {
            let (n, v) = p.split_once('=')?;
            n.trim()
                .eq_ignore_ascii_case("id")
                .then(|| v.trim().to_string())
        });
        Some(Event { package, id })
    }
}

/// Whether a `Refer-Sub` value asks for no subscription (RFC 4488 §4).
pub fn refer_sub_false(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replaces_of_rfc_3891_names_the_dialog_with_our_tag_first() {
        // RFC 3891 §6.1.
        let r = Replaces::parse("98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff").unwrap();
        assert_eq!(r.call_id, "98732@sip.example.com");
        assert!(!r.early_only);
        let id = r.dialog_id();
        assert_eq!(
            (id.local_tag.as_str(), id.remote_tag.as_str()),
            ("ff87ff", "r33th4x0r")
        );
        let early =
            Replaces::parse("425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only")
                .unwrap();
        assert!(early.early_only);
        assert_eq!(
            early.to_string(),
            "425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only"
        );
        assert_eq!(
            Replaces::parse(";to-tag=a;from-tag=b"),
            Err(ReplacesError::NoCallId)
        );
        assert_eq!(
            Replaces::parse("x@y;to-tag=a"),
            Err(ReplacesError::MissingTag("from-tag"))
        );
        assert!(matches!(
            Replaces::parse("x@y;to-tag=;from-tag=b"),
            Err(ReplacesError::Syntax(_))
        ));
    }

    #[test]
    fn an_attended_transfer_refer_to_carries_an_escaped_replaces() {
        // RFC 5589 §7.1 shape.
        let r = ReferTo::parse(
            "<sips:bob@biloxi.example.com?Replaces=090459243588173445%3Bto-tag%3D7553452%3Bfrom-tag%3D31431>",
        )
        .unwrap();
        assert_eq!(r.exten(), "bob");
        let rep = r.replaces.expect("Replaces");
        assert_eq!(rep.call_id, "090459243588173445");
        assert_eq!(
            (rep.to_tag.as_str(), rep.from_tag.as_str()),
            ("7553452", "31431")
        );
        match r.target {
            Target::Sip(uri) => {
                assert_eq!(uri.scheme, "sips");
                assert_eq!(uri.headers, None, "taken apart");
            }
            Target::Tel(_) => panic!("a sips URI"),
        }
        // A Call-ID with an escaped '@' and more URI headers after it.
        let r = ReferTo::parse(
            "<sip:6003@pbx?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2&Require=replaces>",
        )
        .unwrap();
        assert_eq!(r.replaces.unwrap().call_id, "abc@host");
        assert_eq!(
            r.other_headers,
            vec![("Require".to_string(), "replaces".to_string())]
        );
    }

    #[test]
    fn seed_002_click_to_dial_refer_to_keeps_its_body_header_and_names_bob() {
        let r = ReferTo::parse("<sip:bob@foo.com?body=\"c=0.0.0.0\">").unwrap();
        assert_eq!(r.exten(), "bob");
        assert_eq!(r.replaces, None);
        assert_eq!(
            r.other_headers,
            vec![("body".to_string(), "\"c=0.0.0.0\"".to_string())]
        );
    }

    #[test]
    fn blind_targets_sip_and_tel_and_what_is_refused() {
        assert_eq!(
            ReferTo::parse("<sip:6003@127.0.0.1>").unwrap().exten(),
            "6003"
        );
        assert_eq!(
            ReferTo::parse("sip:6003@127.0.0.1").unwrap().exten(),
            "6003"
        );
        assert_eq!(
            ReferTo::parse("\"Carol\" <sip:%2A72@pbx>").unwrap().exten(),
            "*72"
        );
        assert_eq!(ReferTo::parse("<sip:pbx.example>").unwrap().exten(), "");
        let tel = ReferTo::parse("<tel:+1-212-555-0101;phone-context=example.com>").unwrap();
        assert_eq!(tel.target, Target::Tel("+12125550101".into()));
        assert_eq!(tel.exten(), "+12125550101");
        assert_eq!(
            ReferTo::parse("<mailto:bob@example.com>"),
            Err(ReferToError::Scheme("mailto".into()))
        );
        assert_eq!(
            ReferTo::parse("<http://example.com/x>"),
            Err(ReferToError::Scheme("http".into()))
        );
        assert_eq!(ReferTo::parse(""), Err(ReferToError::Missing));
        assert_eq!(
            ReferTo::parse("<sip:a@h>, <sip:b@h>"),
            Err(ReferToError::Several)
        );
        assert!(matches!(
            ReferTo::parse("<tel:12+3>"),
            Err(ReferToError::Syntax(_))
        ));
        assert!(matches!(
            ReferTo::parse("<sip:a@h?Replaces=x%ZZ>"),
            Err(ReferToError::Syntax(_))
        ));
        assert!(matches!(
            ReferTo::parse("<sip:a@h?Replaces=x%3Bto-tag%3D1>"),
            Err(ReferToError::Replaces(ReplacesError::MissingTag(
                "from-tag"
            )))
        ));
    }

    #[test]
    fn sipfrag_bodies_and_subscription_states_as_sent_and_read() {
        assert_eq!(sipfrag(100, "Trying"), b"SIP/2.0 100 Trying\r\n");
        assert_eq!(sipfrag(100, "Trying").len(), 20);
        assert_eq!(parse_sipfrag(b"SIP/2.0 486 Busy Here\r\n"), Some(486));
        assert_eq!(parse_sipfrag(b"SIP/2.0 200 OK"), Some(200));
        assert_eq!(parse_sipfrag(b"INVITE sip:a@b SIP/2.0\r\n"), None);
        assert_eq!(parse_sipfrag(b"SIP/2.0 99 Odd\r\n"), None);
        assert_eq!(parse_sipfrag(b"SIP/2.0200 OK\r\n"), None);
        let active = SubState::Active { expires: 180 };
        assert_eq!(active.to_string(), "active;expires=180");
        let done = SubState::Terminated {
            reason: "noresource".into(),
        };
        assert_eq!(done.to_string(), "terminated;reason=noresource");
        assert_eq!(SubState::parse("terminated;reason=noresource"), Some(done));
        assert_eq!(SubState::parse("Active ; expires=180"), Some(active));
        assert_eq!(
            SubState::parse("pending"),
            Some(SubState::Active { expires: 0 })
        );
        assert_eq!(SubState::parse("bogus"), None);
    }

    #[test]
    fn event_packages_and_refer_sub() {
        assert_eq!(
            Event::parse("refer;id=93809824"),
            Some(Event {
                package: "refer".into(),
                id: Some("93809824".into())
            })
        );
        assert_eq!(
            Event::parse("Refer").map(|e| e.package),
            Some("refer".into())
        );
        assert_eq!(Event::parse(""), None);
        assert!(refer_sub_false("false"));
        assert!(refer_sub_false(" FALSE ;x=1"));
        assert!(!refer_sub_false("true"));
    }
}
