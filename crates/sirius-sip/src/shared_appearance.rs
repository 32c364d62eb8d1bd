//! Shared appearances of an AOR in the standard form (RFC 7463): the dialog
//! event package with the `shared` parameter (`Event: dialog;shared`), whose
//! `application/dialog-info+xml` bodies (RFC 4235) carry, per dialog, the
//! appearance it holds and whether others may take it, in the
//! `urn:ietf:params:xml:ns:sa-dialog-info` namespace. The same line state the
//! BroadWorks `call-info` package shows in a `Call-Info` header, as XML.
//!
//! What the notifier (the Appearance Agent: the PBX) writes, one `<dialog>`
//! per appearance in use, in a full-state document (an appearance no dialog
//! names is idle):
//!
//! ```text
//!  appearance   <state>     direction   local target            sa:exclusive
//!  alerting     early       recipient   -                       false
//!  progressing  trying      initiator   -                       false
//!  active       confirmed   either      -                       false
//!  held         confirmed   either      +sip.rendering pval=no  false
//!  held-private confirmed   either      +sip.rendering pval=no  true
//! ```
//!
//! `call-id`, `local-tag` and `remote-tag` are the member phone's dialog as
//! the phone sees it (local = the phone, remote = the PBX), once there is one
//! dialog (answered): another member takes the call with `INVITE … Replaces:
//! <call-id>;to-tag=<remote-tag>;from-tag=<local-tag>` (RFC 3891, RFC 7463
//! §5.3). The `sa:` elements follow `<remote>`, where RFC 4235's schema lets
//! other namespaces in.
//!
//! What a member PUBLISHes (RFC 7463 §5.3.1–5.3.2) is read back by
//! [`parse`]: its dialogs' appearance, state, exclusivity, hold, and the
//! dialog a Replaces or Join is about to take.

use crate::dialog_info::escape;
use std::fmt::Write;

/// The extension's XML namespace.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:sa-dialog-info";

/// Whether an `Event` value is the dialog package with the `shared`
/// parameter (`dialog;shared`, `dialog; id=7; shared`): parameter names are
/// case-insensitive, the package name is not (RFC 6665 §8.2.1).
pub fn is_shared_dialog_event(event: &str) -> bool {
    let mut parts = event.split(';');
    parts.next().map(str::trim) == Some("dialog")
        && parts.any(|p| {
            p.split('=')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("shared"))
        })
}

/// A dialog's identifiers, as one side of it sees them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DialogIds {
    /// Call-ID.
    pub call_id: String,
    /// The tag of the side whose view this is.
    pub local_tag: String,
    /// The other side's tag.
    pub remote_tag: String,
}

/// Who started the dialog, from the member phone's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The phone called out.
    Initiator,
    /// The phone was called.
    Recipient,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Initiator => "initiator",
            Direction::Recipient => "recipient",
        }
    }
}

/// One appearance in use, as a NOTIFY shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedDialog {
    /// The dialog element's id: unique in the document, stable while the
    /// call holds the appearance.
    pub id: String,
    /// The appearance number (from 1).
    pub appearance: u32,
    /// RFC 4235 state: `trying`, `early`, `confirmed`.
    pub state: &'static str,
    /// Who called whom.
    pub direction: Direction,
    /// The member phone's dialog, once answered.
    pub ids: Option<DialogIds>,
    /// On hold: the phone does not render the media.
    pub held: bool,
    /// Others may not take or join it.
    pub exclusive: bool,
    /// The other party (a name-addr: `"Name" <sip:…>` or `<sip:…>`).
    pub remote: Option<String>,
}

/// The body of a NOTIFY of `Event: dialog;shared`: `entity` is the line's
/// AOR, `version` the subscription's count of NOTIFYs so far, `local` the
/// identity of the line's side (the line's URI).
pub fn body(entity: &str, version: u32, local: &str, dialogs: &[SharedDialog]) -> String {
    let mut b = String::with_capacity(256 + 420 * dialogs.len());
    b.push_str("<?xml version=\"1.0\"?>\n");
    let _ = writeln!(
        b,
        "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" xmlns:sa=\"{NAMESPACE}\" version=\"{version}\" state=\"full\" entity=\"{}\">",
        escape(entity)
    );
    let local = escape(local);
    for d in dialogs {
        let _ = write!(b, "<dialog id=\"{}\"", escape(&d.id));
        if let Some(ids) = &d.ids {
            let _ = write!(
                b,
                " call-id=\"{}\" local-tag=\"{}\" remote-tag=\"{}\"",
                escape(&ids.call_id),
                escape(&ids.local_tag),
                escape(&ids.remote_tag)
            );
        }
        let _ = writeln!(b, " direction=\"{}\">", d.direction.as_str());
        let _ = writeln!(b, "<state>{}</state>", d.state);
        let _ = write!(b, "<local>\n<identity>{local}</identity>\n");
        if d.held {
            let _ = write!(
                b,
                "<target uri=\"{local}\">\n<param pname=\"+sip.rendering\" pval=\"no\"/>\n</target>\n"
            );
        }
        b.push_str("</local>\n");
        if let Some(r) = d.remote.as_deref() {
            let (display, uri) = split_name_addr(r);
            b.push_str("<remote>\n<identity");
            if let Some(name) = display {
                let _ = write!(b, " display=\"{}\"", escape(&name));
            }
            let _ = write!(b, ">{}</identity>\n</remote>\n", escape(&uri));
        }
        let _ = writeln!(b, "<sa:appearance>{}</sa:appearance>", d.appearance);
        let _ = writeln!(b, "<sa:exclusive>{}</sa:exclusive>", d.exclusive);
        b.push_str("</dialog>\n");
    }
    b.push_str("</dialog-info>\n");
    b
}

/// A name-addr's display name (unquoted) and URI; a bare URI is all URI.
fn split_name_addr(s: &str) -> (Option<String>, String) {
    let s = s.trim();
    match (s.find('<'), s.rfind('>')) {
        (Some(open), Some(close)) if close > open => {
            let name = s[..open].trim().trim_matches('"').trim();
            let name = (!name.is_empty()).then(|| name.replace("\\\"", "\""));
            (name, s[open + 1..close].to_string())
        }
        _ => (None, s.to_string()),
    }
}

/// One dialog of a member's PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Published {
    /// The dialog's identifiers, as the phone sees them (if given).
    pub ids: Option<DialogIds>,
    /// Its RFC 4235 state (`trying`, `early`, `confirmed`, `terminated`…).
    pub state: String,
    /// The appearance it holds or seizes.
    pub appearance: Option<u32>,
    /// `<sa:exclusive>true</sa:exclusive>`.
    pub exclusive: bool,
    /// A local target with `+sip.rendering` `no`: on hold.
    pub held: bool,
    /// The dialog a Replaces INVITE of the phone's is about to take.
    pub replaced: Option<DialogIds>,
    /// The dialog a Join INVITE of the phone's is about to join.
    pub joined: Option<DialogIds>,
}

/// A body that is not a dialog-info document we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No `<dialog-info>` root element.
    #[error("not a dialog-info document")]
    NotDialogInfo,
    /// A tag or comment never closed.
    #[error("unterminated markup")]
    Unterminated,
    /// An appearance that is not a positive number.
    #[error("appearance '{0}' is not a positive number")]
    BadAppearance(String),
}

/// The dialogs of a published dialog-info body. Elements are matched by
/// their local names (any prefix: phones write `sa:appearance`, or declare
/// the namespace as the default on the element), which in these two
/// vocabularies do not collide. Comments, CDATA sections and processing
/// instructions are skipped; a `>` inside a quoted attribute value does not
/// end its tag. Linear in the body's length.
pub fn parse(body: &str) -> Result<Vec<Published>, ParseError> {
    let mut out: Vec<Published> = Vec::new();
    let mut current: Option<Published> = None;
    let mut seen_root = false;
    // The element whose text is being read (state, appearance, exclusive),
    // and whether we are inside <local> (where a held target sits).
    let mut text_of: Option<&'static str> = None;
    let mut in_local = false;
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        let text = &rest[..lt];
        if let (Some(which), Some(d)) = (text_of, current.as_mut()) {
            let t = unescape(text.trim());
            match which {
                "state" => d.state = t,
                "appearance" => {
                    let n = t.parse::<u32>().ok().filter(|n| *n > 0);
                    d.appearance = Some(n.ok_or(ParseError::BadAppearance(t))?);
                }
                _ => d.exclusive = t.eq_ignore_ascii_case("true") || t == "1",
            }
        }
        rest = &rest[lt..];
        let skipped = [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>")]
            .into_iter()
            .find_map(|(open, close)| {
                let after = rest.strip_prefix(open)?;
                Some(after.find(close).map(|end| &after[end + close.len()..]))
            });
        if let Some(after) = skipped {
            rest = after.ok_or(ParseError::Unterminated)?;
            continue;
        }
        let gt = tag_end(rest).ok_or(ParseError::Unterminated)?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if tag.starts_with('!') {
            continue; // a DOCTYPE
        }
        let closing = tag.starts_with('/');
        let empty = tag.ends_with('/');
        let tag = tag.trim_start_matches('/').trim_end_matches('/');
        let name = tag.split_whitespace().next().unwrap_or("");
        let local = name.rsplit(':').next().unwrap_or(name);
        text_of = None;
        if closing {
            match local {
                "dialog" => out.extend(current.take()),
                "local" => in_local = false,
                _ => {}
            }
            continue;
        }
        match local {
            "dialog-info" => seen_root = true,
            "dialog" => {
                in_local = false;
                current = Some(Published {
                    ids: ids_of(tag),
                    ..Published::default()
                });
            }
            "state" => text_of = Some("state"),
            "appearance" => text_of = Some("appearance"),
            "exclusive" => text_of = Some("exclusive"),
            "local" => in_local = !empty,
            "param" if in_local => {
                let pname = attr(tag, "pname").unwrap_or_default();
                let pval = attr(tag, "pval")
                    .or_else(|| attr(tag, "pvalue"))
                    .unwrap_or_default();
                let rendering = pname.trim_start_matches('+') == "sip.rendering";
                if let (true, Some(d)) = (rendering, current.as_mut()) {
                    d.held = pval.eq_ignore_ascii_case("no");
                }
            }
            "replaced-dialog" => {
                if let Some(d) = current.as_mut() {
                    d.replaced = ids_of(tag);
                }
            }
            "joined-dialog" => {
                if let Some(d) = current.as_mut() {
                    d.joined = ids_of(tag);
                }
            }
            _ => {}
        }
    }
    if !seen_root {
        return Err(ParseError::NotDialogInfo);
    }
    Ok(out)
}

/// Where the tag `s` starts (`<…`) ends: its `>` outside quoted values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    for (i, b) in s.bytes().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), b) if b == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// The `call-id`, `local-tag`, `remote-tag` attributes of a tag, when it
/// has a `call-id`.
fn ids_of(tag: &str) -> Option<DialogIds> {
    Some(DialogIds {
        call_id: attr(tag, "call-id")?,
        local_tag: attr(tag, "local-tag").unwrap_or_default(),
        remote_tag: attr(tag, "remote-tag").unwrap_or_default(),
    })
}

/// Attribute `name` of a start tag's text (`dialog id="x" call-id='y'`),
/// read pair by pair (a name inside another attribute's value is not it).
fn attr(tag: &str, name: &str) -> Option<String> {
    // Past the element's name.
    let mut rest = tag.trim_start();
    rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
    loop {
        rest = rest.trim_start();
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let value = rest[eq + 1..].trim_start();
        let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let value = &value[1..];
        let end = value.find(quote)?;
        if key == name {
            return Some(unescape(&value[..end]));
        }
        rest = &value[end + 1..];
    }
}

/// XML's five predefined entities, and numeric character references; an
/// `&` that starts none of them is kept. Looks at most a few bytes ahead
/// for the `;`, so a body of `&`s costs its length, not its square.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        // The longest reference we read is `&#x10FFFF;` (10 bytes).
        let semi = rest.bytes().take(12).position(|b| b == b';');
        let c = semi.and_then(|semi| {
            let c = match &rest[1..semi] {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                e => e
                    .strip_prefix("#x")
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, semi))
        });
        match c {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_call() -> SharedDialog {
        SharedDialog {
            id: "17".into(),
            appearance: 1,
            state: "confirmed",
            direction: Direction::Recipient,
            ids: Some(DialogIds {
                call_id: "abc@h".into(),
                local_tag: "phone1".into(),
                remote_tag: "pbx".into(),
            }),
            held: true,
            exclusive: false,
            remote: Some("\"Ovidiu Sas\" <sip:4164542289@127.0.0.1>".into()),
        }
    }

    #[test]
    fn the_event_parameter_is_read_as_rfc_6665_says() {
        assert!(is_shared_dialog_event("dialog;shared"));
        assert!(is_shared_dialog_event("dialog ; id=7 ; SHARED"));
        assert!(!is_shared_dialog_event("dialog"));
        assert!(!is_shared_dialog_event("dialog;id=shared"));
        assert!(!is_shared_dialog_event("Dialog;shared"));
        assert!(!is_shared_dialog_event("call-info;shared"));
    }

    #[test]
    fn a_held_call_reads_as_rfc_7463_writes_it() {
        let b = body(
            "sip:line@127.0.0.1",
            3,
            "sip:line@127.0.0.1",
            &[held_call()],
        );
        assert_eq!(
            b,
            "<?xml version=\"1.0\"?>\n\
             <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" xmlns:sa=\"urn:ietf:params:xml:ns:sa-dialog-info\" version=\"3\" state=\"full\" entity=\"sip:line@127.0.0.1\">\n\
             <dialog id=\"17\" call-id=\"abc@h\" local-tag=\"phone1\" remote-tag=\"pbx\" direction=\"recipient\">\n\
             <state>confirmed</state>\n\
             <local>\n<identity>sip:line@127.0.0.1</identity>\n\
             <target uri=\"sip:line@127.0.0.1\">\n<param pname=\"+sip.rendering\" pval=\"no\"/>\n</target>\n\
             </local>\n\
             <remote>\n<identity display=\"Ovidiu Sas\">sip:4164542289@127.0.0.1</identity>\n</remote>\n\
             <sa:appearance>1</sa:appearance>\n\
             <sa:exclusive>false</sa:exclusive>\n\
             </dialog>\n\
             </dialog-info>\n"
        );
    }

    /// roxmltree (a dev-dependency) as the oracle: well-formed, the
    /// `sa:` elements in RFC 7463's namespace inside each dialog, after
    /// `<remote>` (RFC 4235's schema lets other namespaces in there only),
    /// names escaped.
    #[test]
    fn every_body_parses_as_rfc_7463_says() {
        let mut ringing = held_call();
        (ringing.state, ringing.held, ringing.ids) = ("early", false, None);
        ringing.remote = Some("\"A & B\" <sip:1@h>".into());
        let text = body("sip:line@h", 9, "sip:line@h", &[held_call(), ringing]);
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let ns = "urn:ietf:params:xml:ns:dialog-info";
        let root = doc.root_element();
        assert!(root.has_tag_name((ns, "dialog-info")));
        assert_eq!(root.attribute("version"), Some("9"));
        let dialogs: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name((ns, "dialog")))
            .collect();
        assert_eq!(dialogs.len(), 2);
        for d in &dialogs {
            let names: Vec<(Option<&str>, &str)> = d
                .children()
                .filter(|n| n.is_element())
                .map(|n| (n.tag_name().namespace(), n.tag_name().name()))
                .collect();
            let tail = &names[names.len() - 2..];
            assert_eq!(
                tail,
                [
                    (Some(NAMESPACE), "appearance"),
                    (Some(NAMESPACE), "exclusive")
                ]
            );
            assert_eq!(names[0], (Some(ns), "state"));
        }
        assert_eq!(dialogs[0].attribute("call-id"), Some("abc@h"));
        let remote = dialogs[1]
            .descendants()
            .find(|n| n.has_tag_name((ns, "identity")) && n.attribute("display").is_some())
            .unwrap();
        assert_eq!(remote.attribute("display"), Some("A & B"));
    }

    #[test]
    fn an_idle_line_is_an_empty_full_document() {
        let b = body("sip:line@h", 0, "sip:line@h", &[]);
        assert!(
            b.ends_with("entity=\"sip:line@h\">\n</dialog-info>\n"),
            "{b}"
        );
        assert_eq!(parse(&b), Ok(vec![]));
    }

    /// What we write reads back (the parser is the one PUBLISH uses).
    #[test]
    fn our_bodies_read_back() {
        let mut d = held_call();
        d.exclusive = true;
        let b = body("sip:line@h", 0, "sip:line@h", &[d]);
        let p = parse(&b).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].appearance, Some(1));
        assert_eq!(p[0].state, "confirmed");
        assert!(p[0].held && p[0].exclusive);
        assert_eq!(p[0].ids.as_ref().unwrap().call_id, "abc@h");
    }

    /// A seizure and a takeover as phones publish them: any prefix (or the
    /// namespace declared on the element), any order, `pvalue` or `pval`.
    #[test]
    fn what_phones_publish_is_read() {
        let seize = "<?xml version=\"1.0\"?>\n\
            <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"0\" state=\"partial\" entity=\"sip:line@h\">\
            <dialog id=\"x\" call-id=\"c1\" local-tag=\"t1\">\
            <appearance xmlns=\"urn:ietf:params:xml:ns:sa-dialog-info\">2</appearance>\
            <state>trying</state></dialog></dialog-info>";
        let p = parse(seize).unwrap();
        assert_eq!(p[0].appearance, Some(2));
        assert_eq!(p[0].state, "trying");
        assert_eq!(p[0].ids.as_ref().unwrap().remote_tag, "");
        let take = "<dialog-info xmlns='urn:ietf:params:xml:ns:dialog-info' xmlns:x='urn:ietf:params:xml:ns:sa-dialog-info'>\
            <!-- a comment <dialog> -->\
            <dialog id='y'><x:replaced-dialog call-id='c&amp;2' local-tag='a' remote-tag='b'/>\
            <x:appearance> 1 </x:appearance><state>trying</state>\
            <local><target uri='sip:l@h'><param pname='+sip.rendering' pvalue='no'/></target></local>\
            </dialog></dialog-info>";
        let p = parse(take).unwrap();
        let r = p[0].replaced.as_ref().unwrap();
        assert_eq!((r.call_id.as_str(), r.local_tag.as_str()), ("c&2", "a"));
        assert_eq!(p[0].appearance, Some(1));
        assert!(p[0].held);
    }

    /// What a careless reader gets wrong: a `>` in a quoted value, an
    /// attribute name inside another's value, CDATA, a `<local/>` before
    /// the remote's target.
    #[test]
    fn markup_in_values_and_empty_elements_are_read_right() {
        let b = "<dialog-info><dialog id=\"a>b call-id='no'\" call-id=\"c1\" local-tag='t'>\
            <![CDATA[<dialog id=\"x\">]]><local/>\
            <remote><target uri=\"sip:r\"><param pname=\"+sip.rendering\" pval=\"no\"/></target></remote>\
            <state>confirmed</state></dialog></dialog-info>";
        let p = parse(b).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].ids.as_ref().unwrap().call_id, "c1");
        assert!(!p[0].held, "the remote's rendering is not our hold");
        assert_eq!(p[0].state, "confirmed");
    }

    /// `&`s that start no reference are kept, each one (the reader looks
    /// a few bytes ahead for a `;`, not to the end of the body).
    #[test]
    fn bare_ampersands_are_kept() {
        let amps = "&".repeat(20_000);
        let b = format!(
            "<dialog-info><dialog call-id=\"{amps}\"><state>{amps}</state></dialog></dialog-info>"
        );
        let p = parse(&b).unwrap();
        assert_eq!(p[0].state, amps);
        assert_eq!(
            unescape("&amp;&#x1F600;&#x110000;&x"),
            "&\u{1F600}&#x110000;&x"
        );
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert_eq!(parse("hello"), Err(ParseError::NotDialogInfo));
        assert_eq!(parse("<dialog-info><dialog"), Err(ParseError::Unterminated));
        assert_eq!(parse("<dialog-info><!-- x"), Err(ParseError::Unterminated));
        assert!(matches!(
            parse("<dialog-info><dialog><sa:appearance>0</sa:appearance></dialog></dialog-info>"),
            Err(ParseError::BadAppearance(_))
        ));
        for cut in 0..120 {
            let b = body("sip:l@h", 1, "sip:l@h", &[held_call()]);
            let _ = parse(&b[..cut.min(b.len())]);
        }
        assert_eq!(unescape("a&#x41;&#66;&bogus;&"), "aAB&bogus;&");
    }
}
