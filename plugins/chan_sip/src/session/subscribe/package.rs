//! The event packages a subscription can be to, and what their NOTIFYs
//! say: `dialog` (RFC 4235 busy lamps), `presence` (RFC 3856, PIDF) and
//! `message-summary` (RFC 3842 message waiting), and a shared line's
//! appearances as `call-info` (BroadWorks) or `dialog;shared` (RFC 7463).
//! The bodies themselves are sirius-sip's (`dialog_info`, `pidf`, `mwi`,
//! `shared_appearance`); this picks one, and says when two states would read
//! the same (no NOTIFY then).

use sirius_sip::dialog_info::{self, Lamp};
use sirius_sip::message::{HeaderName, Message};
use sirius_sip::mwi::{self, Counts};
use sirius_sip::pidf::{self, Presence};
use sirius_sip::shared_appearance::{self, SharedDialog};

/// The event packages we notify, as `Allow-Events` lists them.
pub(crate) const PACKAGES: &str = "dialog, presence, message-summary, call-info";

/// An event package we notify, and its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Package {
    /// `Event: dialog`, `application/dialog-info+xml` (busy lamps).
    Dialog,
    /// `Event: presence`, `application/pidf+xml`.
    Presence,
    /// `Event: message-summary`, `application/simple-message-summary`.
    MessageSummary,
    /// `Event: call-info` (a shared line's appearances, in a `Call-Info`
    /// header; no body).
    CallInfo,
    /// `Event: dialog;shared` to a shared line (RFC 7463): its
    /// appearances as dialog-info with `sa:appearance`. To anything else,
    /// `dialog;shared` is served as plain `dialog`.
    SharedDialog,
}

/// What a subscription watches, as last heard from the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// A hint's extension state (`AST_EXTENSION_*` bits).
    Hint(i32),
    /// A peer's mailboxes' summed counts.
    Mailbox(Counts),
    /// A shared line's appearances (read from `crate::sca::Lines` when a
    /// NOTIFY is due).
    Line,
}

/// What a NOTIFY showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shown {
    Lamp(Lamp),
    Presence(Presence),
    Mwi(Counts),
    /// The `Call-Info` value.
    CallInfo(String),
    /// A shared line's appearances in use.
    Shared(Vec<SharedDialog>),
}

impl Package {
    /// The package a request names (`Event: dialog;id=1` → dialog); `None`
    /// for none or one we do not serve (case-sensitive, RFC 6665 §8.2.1).
    pub(super) fn of(msg: &Message) -> Option<Package> {
        let v = msg.headers.get(&HeaderName::Event)?;
        if shared_appearance::is_shared_dialog_event(v) {
            return Some(Package::SharedDialog);
        }
        match v.split(';').next().unwrap_or("").trim() {
            "dialog" => Some(Package::Dialog),
            "presence" => Some(Package::Presence),
            "message-summary" => Some(Package::MessageSummary),
            "call-info" => Some(Package::CallInfo),
            _ => None,
        }
    }

    /// Its `Event` value.
    pub(super) fn event(self) -> &'static str {
        match self {
            Package::Dialog | Package::SharedDialog => "dialog",
            Package::Presence => "presence",
            Package::MessageSummary => "message-summary",
            Package::CallInfo => "call-info",
        }
    }

    /// Its body's MIME type.
    pub(super) fn content_type(self) -> &'static str {
        match self {
            Package::Dialog | Package::SharedDialog => dialog_info::CONTENT_TYPE,
            Package::Presence => pidf::CONTENT_TYPE,
            Package::MessageSummary => mwi::CONTENT_TYPE,
            // No body: what any Accept takes.
            Package::CallInfo => "*/*",
        }
    }

    /// What `sip show subscriptions` calls it (chan_sip's names).
    pub(super) fn text(self) -> &'static str {
        match self {
            Package::Dialog | Package::SharedDialog => "dialog-info+xml",
            Package::Presence => "pidf+xml",
            Package::MessageSummary => "mwi",
            Package::CallInfo => "call-info",
        }
    }

    /// What a body of this package shows for `source`: two that show the
    /// same need no NOTIFY.
    pub(super) fn shown(self, source: Source) -> Shown {
        match (self, source) {
            (Package::Dialog, Source::Hint(bits)) => Shown::Lamp(Lamp::from_extension_state(bits)),
            (Package::Presence, Source::Hint(bits)) => {
                Shown::Presence(Presence::from_extension_state(bits))
            }
            (_, Source::Mailbox(c)) => Shown::Mwi(c),
            // A hint state for a mailbox subscription cannot come (each
            // watch reports its own kind); shown as no messages.
            (Package::MessageSummary, Source::Hint(_)) => Shown::Mwi(Counts::default()),
            // A line is rendered by the subscription (it reads the line);
            // these pairs do not occur.
            (_, Source::Line) | (Package::CallInfo | Package::SharedDialog, _) => {
                Shown::CallInfo(String::new())
            }
        }
    }
}

/// What a NOTIFY that shows `shown` carries: `entity` and `exten` name the
/// resource (a hint's extension), `version` counts the dialog-info NOTIFYs,
/// `account` is where messages are fetched (`Message-Account`).
pub(super) fn body(shown: Shown, entity: &str, exten: &str, version: u32, account: &str) -> String {
    match shown {
        Shown::Lamp(lamp) => dialog_info::body(entity, exten, version, lamp),
        Shown::Presence(p) => pidf::body(entity, exten, p),
        Shown::Mwi(c) => mwi::body(account, c),
        Shown::CallInfo(_) => String::new(),
        // The line's AOR is both the entity and the local identity.
        Shown::Shared(d) => shared_appearance::body(entity, version, entity, &d),
    }
}

/// The `Event` value our NOTIFYs carry: the subscriber's (its `id`
/// echoed, RFC 6665 §8.2.1), without `shared` when served as a plain busy
/// lamp (RFC 7463 phones take `;shared` in a NOTIFY to mean an Appearance
/// Agent answers).
pub(super) fn echoed_event(asked: &str, package: Package) -> String {
    let asked = asked.trim();
    if package != Package::Dialog {
        return asked.to_string();
    }
    asked
        .split(';')
        .filter(|p| !p.trim().eq_ignore_ascii_case("shared"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(";")
}

/// Whether the subscriber reads `package`'s bodies: no `Accept` (the
/// package's default, RFC 4235 §4.1, RFC 3856 §6.6, RFC 3842 §4.1), or one
/// listing its type or a wildcard.
pub(super) fn accepts(msg: &Message, package: Package) -> bool {
    if package == Package::CallInfo {
        return true; // its NOTIFYs carry no body
    }
    let mut types = msg
        .headers
        .values(&HeaderName::Accept)
        .flat_map(|v| v.split(','))
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| !t.is_empty())
        .peekable();
    if types.peek().is_none() {
        return true;
    }
    types.any(|t| t == package.content_type() || t == "application/*" || t == "*/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `;shared` stays only where an Appearance Agent answers; the `id`
    /// is echoed either way.
    #[test]
    fn the_shared_parameter_is_echoed_only_for_a_shared_line() {
        assert_eq!(
            echoed_event(" dialog;shared;id=7 ", Package::SharedDialog),
            "dialog;shared;id=7"
        );
        assert_eq!(
            echoed_event("dialog; SHARED ;id=7", Package::Dialog),
            "dialog;id=7"
        );
        assert_eq!(echoed_event("dialog", Package::Dialog), "dialog");
    }
}
