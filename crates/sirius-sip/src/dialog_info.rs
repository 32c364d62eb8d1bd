//! What a busy-lamp field is told: `application/dialog-info+xml` (RFC 4235)
//! for `Event: dialog`, and how long a subscription is granted (RFC 6665
//! §4.2.1.1). The protocol half of BLF; the endpoint's subscription usage
//! sends these bodies in its NOTIFYs.
//!
//! The bodies are the ones phones have been reading from Asterisk for years
//! (chan_sip's `state_notify_build_xml`, docs/plans/subscriptions.md): one
//! `<dialog>` named after the extension, whose `<state>` is `terminated`
//! when idle or unavailable, `early` with `direction="recipient"` while it
//! rings, `confirmed` in use, and `confirmed` with a local target marked
//! `+sip.rendering=no` on hold; `state="full"` always, `version` counting
//! the subscription's NOTIFYs from 0.
//!
//! ```text
//!   extension state ─► lamp ─► <dialog id=exten [direction]><state>…</state>[hold target]</dialog>
//!   Idle/Unavailable   off     terminated
//!   Ringing            blink   early, direction="recipient"
//!   InUse/Busy         on      confirmed
//!   Hold               on/held confirmed + <local><target …+sip.rendering=no>
//! ```

use std::fmt::Write;

/// The body's MIME type.
pub const CONTENT_TYPE: &str = "application/dialog-info+xml";

/// What the lamp shows, from a hint's extension state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lamp {
    /// Nobody on it (idle, or its devices unavailable): `terminated`.
    Off,
    /// A call rings it: `early`, the extension the recipient.
    Ringing,
    /// On a call (or busy): `confirmed`.
    InUse,
    /// Holding a call: `confirmed`, its media not rendered.
    OnHold,
}

impl Lamp {
    /// From Asterisk's `AST_EXTENSION_*` bits (what `hint_watch` gives): 1
    /// in use, 2 busy, 4 unavailable, 8 ringing, 16 on hold. Ringing wins
    /// (a phone in use that rings again blinks, as chan_sip's default
    /// `notifyringing` has it); in use and on hold together is in use
    /// (chan_sip reports that one as idle, which an RFC 4235 reader cannot
    /// tell from a free line).
    pub fn from_extension_state(bits: i32) -> Lamp {
        const INUSE: i32 = 1;
        const BUSY: i32 = 2;
        const RINGING: i32 = 8;
        const ONHOLD: i32 = 16;
        if bits < 0 {
            Lamp::Off
        } else if bits & RINGING != 0 {
            Lamp::Ringing
        } else if bits & (INUSE | BUSY) != 0 {
            Lamp::InUse
        } else if bits & ONHOLD != 0 {
            Lamp::OnHold
        } else {
            Lamp::Off
        }
    }
}

/// Escapes text for an XML attribute or element.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The `application/dialog-info+xml` body of a NOTIFY: `entity` is the URI
/// subscribed to (the SUBSCRIBE's To, without parameters), `exten` the
/// extension (the dialog's id), `version` this subscription's count of
/// NOTIFYs so far (0 for the first).
pub fn body(entity: &str, exten: &str, version: u32, lamp: Lamp) -> String {
    let (entity, exten) = (escape(entity), escape(exten));
    let mut b = String::with_capacity(320);
    b.push_str("<?xml version=\"1.0\"?>\n");
    let _ = writeln!(
        b,
        "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"{version}\" state=\"full\" entity=\"{entity}\">"
    );
    match lamp {
        Lamp::Ringing => {
            let _ = writeln!(b, "<dialog id=\"{exten}\" direction=\"recipient\">");
        }
        _ => {
            let _ = writeln!(b, "<dialog id=\"{exten}\">");
        }
    }
    let state = match lamp {
        Lamp::Off => "terminated",
        Lamp::Ringing => "early",
        Lamp::InUse | Lamp::OnHold => "confirmed",
    };
    let _ = writeln!(b, "<state>{state}</state>");
    if lamp == Lamp::OnHold {
        let _ = write!(
            b,
            "<local>\n<target uri=\"{entity}\">\n<param pname=\"+sip.rendering\" pvalue=\"no\"/>\n</target>\n</local>\n"
        );
    }
    b.push_str("</dialog>\n</dialog-info>\n");
    b
}

/// Asterisk's name for an extension state given as `AST_EXTENSION_*` bits
/// (`ast_extension_state2str`), as `sip show subscriptions` and `core show
/// hints` print it.
pub fn extension_state_name(bits: i32) -> &'static str {
    match bits {
        0 => "Idle",
        1 => "InUse",
        2 => "Busy",
        4 => "Unavailable",
        8 => "Ringing",
        9 => "InUse&Ringing",
        16 => "Hold",
        17 => "InUse&Hold",
        _ => "Unknown",
    }
}

/// The bounds a notifier grants subscriptions within (Asterisk's
/// `subminexpiry`, `submaxexpiry`, and `defaultexpiry` when the SUBSCRIBE
/// names none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryBounds {
    /// Shorter requests (but 0) get `423 Interval Too Brief`.
    pub min: u32,
    /// Longer ones are cut to this.
    pub max: u32,
    /// For a SUBSCRIBE without `Expires`.
    pub default: u32,
}

/// What to answer a SUBSCRIBE's `Expires`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granted {
    /// `200` with this many seconds.
    For(u32),
    /// `Expires: 0`: end it (200, then a NOTIFY `terminated`).
    End,
    /// `423` with `Min-Expires` of this.
    TooBrief(u32),
}

impl ExpiryBounds {
    /// Grants `requested` (`None`: no `Expires` header).
    pub fn grant(&self, requested: Option<u32>) -> Granted {
        match requested.unwrap_or(self.default) {
            0 => Granted::End,
            n if n < self.min => Granted::TooBrief(self.min),
            n => Granted::For(n.min(self.max)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lamp_reads_as_asterisk_writes_it() {
        let entity = "sip:6001@127.0.0.1:5060";
        assert_eq!(
            body(entity, "6001", 0, Lamp::Off),
            "<?xml version=\"1.0\"?>\n\
             <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"0\" state=\"full\" entity=\"sip:6001@127.0.0.1:5060\">\n\
             <dialog id=\"6001\">\n<state>terminated</state>\n</dialog>\n</dialog-info>\n"
        );
        let ringing = body(entity, "6001", 1, Lamp::Ringing);
        assert!(ringing.contains("version=\"1\""));
        assert!(ringing
            .contains("<dialog id=\"6001\" direction=\"recipient\">\n<state>early</state>\n"));
        assert!(body(entity, "6001", 2, Lamp::InUse)
            .contains("<dialog id=\"6001\">\n<state>confirmed</state>\n</dialog>"));
        assert!(body(entity, "6001", 3, Lamp::OnHold).contains(
            "<state>confirmed</state>\n<local>\n<target uri=\"sip:6001@127.0.0.1:5060\">\n\
             <param pname=\"+sip.rendering\" pvalue=\"no\"/>\n</target>\n</local>\n</dialog>"
        ));
    }

    /// roxmltree (a well-kept XML parser, a dev-dependency only) as the
    /// oracle: every body is well-formed, in RFC 4235's namespace, and
    /// says what the lamp means.
    #[test]
    fn every_body_parses_as_rfc_4235_says() {
        for (lamp, state, direction) in [
            (Lamp::Off, "terminated", None),
            (Lamp::Ringing, "early", Some("recipient")),
            (Lamp::InUse, "confirmed", None),
            (Lamp::OnHold, "confirmed", None),
        ] {
            let text = body("sip:6001@pbx;x=\"y\"", "6001&", 7, lamp);
            let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            let root = doc.root_element();
            let ns = "urn:ietf:params:xml:ns:dialog-info";
            assert_eq!(root.tag_name().namespace(), Some(ns));
            assert_eq!(root.tag_name().name(), "dialog-info");
            assert_eq!(root.attribute("version"), Some("7"));
            assert_eq!(root.attribute("state"), Some("full"));
            assert_eq!(root.attribute("entity"), Some("sip:6001@pbx;x=\"y\""));
            let dialog = root
                .children()
                .find(|n| n.has_tag_name((ns, "dialog")))
                .unwrap();
            assert_eq!(dialog.attribute("id"), Some("6001&"));
            assert_eq!(dialog.attribute("direction"), direction);
            let st = dialog
                .children()
                .find(|n| n.has_tag_name((ns, "state")))
                .unwrap();
            assert_eq!(st.text(), Some(state));
            let held = dialog.descendants().any(|n| {
                n.attribute("pname") == Some("+sip.rendering")
                    && n.attribute("pvalue") == Some("no")
            });
            assert_eq!(held, lamp == Lamp::OnHold);
        }
    }

    #[test]
    fn names_are_escaped() {
        let b = body("sip:a&b@x", "<1>", 0, Lamp::Off);
        assert!(b.contains("entity=\"sip:a&amp;b@x\""));
        assert!(b.contains("<dialog id=\"&lt;1&gt;\">"));
    }

    #[test]
    fn extension_states_light_the_lamp() {
        assert_eq!(Lamp::from_extension_state(0), Lamp::Off);
        assert_eq!(Lamp::from_extension_state(4), Lamp::Off);
        assert_eq!(Lamp::from_extension_state(-1), Lamp::Off);
        assert_eq!(Lamp::from_extension_state(1), Lamp::InUse);
        assert_eq!(Lamp::from_extension_state(2), Lamp::InUse);
        assert_eq!(Lamp::from_extension_state(8), Lamp::Ringing);
        assert_eq!(Lamp::from_extension_state(9), Lamp::Ringing);
        assert_eq!(Lamp::from_extension_state(16), Lamp::OnHold);
        assert_eq!(Lamp::from_extension_state(17), Lamp::InUse);
    }

    #[test]
    fn expiry_is_granted_within_the_bounds() {
        let b = ExpiryBounds {
            min: 60,
            max: 3600,
            default: 120,
        };
        assert_eq!(b.grant(None), Granted::For(120));
        assert_eq!(b.grant(Some(600)), Granted::For(600));
        assert_eq!(b.grant(Some(86400)), Granted::For(3600));
        assert_eq!(b.grant(Some(30)), Granted::TooBrief(60));
        assert_eq!(b.grant(Some(0)), Granted::End);
    }
}
