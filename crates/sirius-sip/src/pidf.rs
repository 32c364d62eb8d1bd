//! What a presence watcher is told: `application/pidf+xml` (RFC 3863, with
//! the RPID activities of RFC 4480) for `Event: presence` (RFC 3856), from a
//! hint's extension state — the body Asterisk's chan_sip writes
//! (`state_notify_build_xml`, docs/plans/subscriptions.md), so phones that
//! read Asterisk's presence read ours.
//!
//! ```text
//!   extension state ─► (activity, note, basic)
//!   Idle               none     "Ready"         open
//!   Ringing            busy     "Ringing"       open
//!   InUse / Busy       busy     "On the phone"  open
//!   Hold               busy     "On hold"       open
//!   Unavailable        away     "Unavailable"   closed
//! ```
//!
//! One difference from chan_sip: `entity` is the presentity (the URI
//! subscribed to), as RFC 3863 §4.1.1 says, where chan_sip writes the
//! subscriber's own From URI.

use crate::dialog_info::escape;
use std::fmt::Write;

/// The body's MIME type.
pub const CONTENT_TYPE: &str = "application/pidf+xml";

/// What a presence watcher is shown, from a hint's extension state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Reachable and free.
    Ready,
    /// A call rings it.
    Ringing,
    /// On a call, or busy.
    OnThePhone,
    /// Holding a call.
    OnHold,
    /// Not reachable (unregistered, or not answering qualify).
    Unavailable,
}

impl Presence {
    /// From Asterisk's `AST_EXTENSION_*` bits: 1 in use, 2 busy, 4
    /// unavailable, 8 ringing, 16 on hold; ringing wins, as in
    /// [`crate::dialog_info::Lamp::from_extension_state`].
    pub fn from_extension_state(bits: i32) -> Presence {
        if bits < 0 || bits & 4 != 0 {
            Presence::Unavailable
        } else if bits & 8 != 0 {
            Presence::Ringing
        } else if bits & (1 | 2) != 0 {
            Presence::OnThePhone
        } else if bits & 16 != 0 {
            Presence::OnHold
        } else {
            Presence::Ready
        }
    }

    /// The RPID activity (`busy`, `away`), the note, and the basic status.
    fn parts(self) -> (Option<&'static str>, &'static str, &'static str) {
        match self {
            Presence::Ready => (None, "Ready", "open"),
            Presence::Ringing => (Some("busy"), "Ringing", "open"),
            Presence::OnThePhone => (Some("busy"), "On the phone", "open"),
            Presence::OnHold => (Some("busy"), "On hold", "open"),
            Presence::Unavailable => (Some("away"), "Unavailable", "closed"),
        }
    }
}

/// The `application/pidf+xml` body of a NOTIFY: `entity` is the URI
/// subscribed to (without parameters), `exten` the extension (the tuple's
/// id), `contact` the address the tuple names (the same URI, as chan_sip
/// puts the SUBSCRIBE's To there).
pub fn body(entity: &str, exten: &str, presence: Presence) -> String {
    let (entity, exten) = (escape(entity), escape(exten));
    let (activity, note, basic) = presence.parts();
    let mut b = String::with_capacity(512);
    b.push_str("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n");
    let _ = writeln!(
        b,
        "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \n\
         xmlns:pp=\"urn:ietf:params:xml:ns:pidf:person\"\n\
         xmlns:es=\"urn:ietf:params:xml:ns:pidf:rpid:status:rpid-status\"\n\
         xmlns:ep=\"urn:ietf:params:xml:ns:pidf:rpid:rpid-person\"\n\
         entity=\"{entity}\">"
    );
    b.push_str("<pp:person><status>\n");
    if let Some(a) = activity {
        let _ = writeln!(b, "<ep:activities><ep:{a}/></ep:activities>");
    }
    b.push_str("</status></pp:person>\n");
    let _ = writeln!(b, "<note>{note}</note>");
    let _ = writeln!(b, "<tuple id=\"{exten}\">");
    let _ = writeln!(b, "<contact priority=\"1\">{entity}</contact>");
    let _ = writeln!(b, "<status><basic>{basic}</basic></status>");
    b.push_str("</tuple>\n</presence>\n");
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reads_as_asterisk_writes_it() {
        assert_eq!(
            body("sip:6001@127.0.0.1:5060", "6001", Presence::Ready),
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n\
             <presence xmlns=\"urn:ietf:params:xml:ns:pidf\" \n\
             xmlns:pp=\"urn:ietf:params:xml:ns:pidf:person\"\n\
             xmlns:es=\"urn:ietf:params:xml:ns:pidf:rpid:status:rpid-status\"\n\
             xmlns:ep=\"urn:ietf:params:xml:ns:pidf:rpid:rpid-person\"\n\
             entity=\"sip:6001@127.0.0.1:5060\">\n\
             <pp:person><status>\n\
             </status></pp:person>\n\
             <note>Ready</note>\n\
             <tuple id=\"6001\">\n\
             <contact priority=\"1\">sip:6001@127.0.0.1:5060</contact>\n\
             <status><basic>open</basic></status>\n\
             </tuple>\n\
             </presence>\n"
        );
    }

    /// roxmltree as the oracle: well-formed, in RFC 3863's namespace, the
    /// tuple's basic status and the RPID activity as the state says.
    #[test]
    fn every_body_parses_as_rfc_3863_says() {
        let pidf = "urn:ietf:params:xml:ns:pidf";
        let rpid = "urn:ietf:params:xml:ns:pidf:rpid:rpid-person";
        for (bits, basic, activity, note) in [
            (0, "open", None, "Ready"),
            (8, "open", Some("busy"), "Ringing"),
            (9, "open", Some("busy"), "Ringing"),
            (1, "open", Some("busy"), "On the phone"),
            (2, "open", Some("busy"), "On the phone"),
            (16, "open", Some("busy"), "On hold"),
            (4, "closed", Some("away"), "Unavailable"),
        ] {
            let p = Presence::from_extension_state(bits);
            let text = body("sip:60&1@pbx", "60&1", p);
            let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            let root = doc.root_element();
            assert_eq!(root.tag_name().namespace(), Some(pidf));
            assert_eq!(root.attribute("entity"), Some("sip:60&1@pbx"));
            let tuple = root
                .children()
                .find(|n| n.has_tag_name((pidf, "tuple")))
                .unwrap();
            assert_eq!(tuple.attribute("id"), Some("60&1"));
            let b = tuple
                .descendants()
                .find(|n| n.has_tag_name((pidf, "basic")))
                .unwrap();
            assert_eq!(b.text(), Some(basic), "{bits}");
            let act = root
                .descendants()
                .find(|n| n.has_tag_name((rpid, "activities")))
                .and_then(|a| a.children().find(|c| c.is_element()))
                .map(|c| c.tag_name().name());
            assert_eq!(act, activity, "{bits}");
            let n = root
                .children()
                .find(|n| n.has_tag_name((pidf, "note")))
                .unwrap();
            assert_eq!(n.text(), Some(note));
        }
    }
}
