//! PUBLISH (RFC 3903) by a shared line's phones, of `call-info` (BroadWorks)
//! or `dialog;shared` (RFC 7463): a phone tells the line its own view of an
//! appearance (on hold, privately; seized for the call it is about to make;
//! the call its Replaces is about to take), and every watcher of the line
//! is told. The event state compositor keeps each publication by its
//! entity-tag, across shards (a refresh may come with another Call-ID, so to
//! another shard).
//!
//! ```text
//!  PUBLISH sip:line@pbx  Event: call-info   Call-Info: <…>;appearance-index=1;appearance-state=held-private
//!                        Event: dialog;shared   application/dialog-info+xml (sa:appearance …)
//!    │ another event ─▶ 489 (Allow-Events)    digest as for INVITE (401)
//!    │ not a shared line 404, not its phone 403    Expires below minexpiry 423
//!    │ dialog-info unreadable, an appearance in use by another call or
//!    │ past the line's number, a replaced/joined dialog not that
//!    │ appearance's ─▶ 400 (RFC 7463 §5.3.1-5.3.2)
//!    ├─ no SIP-If-Match (initial): a Call-Info (a body) is required (400) ─▶ 200 SIP-ETag, Expires
//!    ├─ SIP-If-Match unknown or expired ─▶ 412 Conditional Request Failed
//!    ├─ SIP-If-Match, no Call-Info: a refresh ─▶ 200, a new SIP-ETag
//!    ├─ SIP-If-Match with Call-Info: a modification ─▶ 200, a new SIP-ETag
//!    └─ SIP-If-Match, Expires: 0: removed ─▶ 200, Expires: 0
//! ```
//!
//! What a publication says about an appearance in use is applied to it
//! (`held`, `held-private`, `active`); `idle` and appearances no call holds
//! are the calls' to say, not a phone's, except RFC 7463's seizure: a
//! `trying` dialog with a free appearance holds it for that dialog's INVITE
//! (at most [`super::SEIZE_FOR`] seconds), and `terminated` gives it back.

use super::{ApState, Appearance, NO_LEG, SEIZE_FOR};
use crate::endpoint::{Endpoint, Now};
use parking_lot::Mutex;
use sirius_sip::message::{HeaderName, Message, Uri};
use sirius_sip::shared_appearance::{self, DialogIds, Published};
use sirius_sip::transaction::{Transport, TxId};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The events PUBLISH serves (`dialog` with the `shared` parameter only).
pub(crate) const PUBLISH_EVENTS: &str = "call-info, dialog";

/// Why a phone's RFC 7463 publication is refused (always `400`, RFC 7463
/// §5.3.1-5.3.2; the reason phrase says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Refusal {
    /// The line has fewer appearances.
    #[error("appearance {n} of a line of {max}")]
    NoSuchAppearance { n: u32, max: u32 },
    /// Another call holds (or seized) it.
    #[error("appearance {0} is another call's")]
    InUse(u32),
    /// The replaced or joined dialog named is not the one holding it.
    #[error("the dialog named does not hold appearance {0}")]
    NotThatDialog(u32),
}

impl Refusal {
    fn status(self) -> (u16, &'static str) {
        match self {
            Refusal::NoSuchAppearance { .. } => (400, "Bad Request (no such appearance)"),
            Refusal::InUse(_) => (400, "Bad Request (appearance in use)"),
            Refusal::NotThatDialog(_) => (400, "Bad Request (not that appearance's dialog)"),
        }
    }
}

/// What a publication is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    CallInfo,
    SharedDialog,
}

/// One publication.
#[derive(Debug, Clone)]
struct Publication {
    /// The line it is about.
    resource: String,
    /// When it expires (Unix seconds).
    expires_at: u64,
}

/// Every publication, by entity-tag.
#[derive(Debug, Default)]
pub struct Publications {
    inner: Mutex<HashMap<String, Publication>>,
}

impl Publications {
    /// How many are in force.
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the expired ones; how many went.
    pub fn expire(&self, now: u64) -> usize {
        let mut inner = self.inner.lock();
        let before = inner.len();
        inner.retain(|_, p| p.expires_at > now);
        before - inner.len()
    }

    /// Replaces publication `old` of `resource` (still in force at `now`)
    /// by `new` until `expires_at`; false when there is none such (412).
    fn renew(&self, old: &str, resource: &str, now: u64, new: String, expires_at: u64) -> bool {
        let mut inner = self.inner.lock();
        match inner.get(old) {
            Some(p) if p.resource == resource && p.expires_at > now => {}
            _ => return false,
        }
        inner.remove(old);
        let resource = resource.to_string();
        inner.insert(
            new,
            Publication {
                resource,
                expires_at,
            },
        );
        true
    }

    /// Removes publication `etag` of `resource`; false when there is none.
    fn remove(&self, etag: &str, resource: &str, now: u64) -> bool {
        let mut inner = self.inner.lock();
        match inner.get(etag) {
            Some(p) if p.resource == resource && p.expires_at > now => {
                inner.remove(etag);
                true
            }
            _ => false,
        }
    }

    fn insert(&self, etag: String, resource: &str, expires_at: u64) {
        let resource = resource.to_string();
        self.inner.lock().insert(
            etag,
            Publication {
                resource,
                expires_at,
            },
        );
    }
}

impl Endpoint {
    /// A PUBLISH (see the module's diagram).
    pub(crate) fn on_publish(
        &mut self,
        now: Now,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        let event = msg.headers.get(&HeaderName::Event).unwrap_or_default();
        let event = if shared_appearance::is_shared_dialog_event(event) {
            Event::SharedDialog
        } else if event.split(';').next().unwrap_or("").trim() == "call-info" {
            Event::CallInfo
        } else {
            let allow = [(HeaderName::AllowEvents, PUBLISH_EVENTS.to_string())];
            return self.respond(now, tx, msg, source, (489, "Bad Event"), &allow);
        };
        let Some(peer) = self.authenticated_peer(now, (tx, msg), (source, transport), "PUBLISH")
        else {
            return;
        };
        let (min, max) = {
            let g = &self.shared.running().cfg.general;
            (g.minexpiry, g.maxexpiry)
        };
        let publisher = peer.name;
        let resource = Uri::parse(msg.request_uri().unwrap_or_default())
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_default();
        if self.shared_line(Some(&resource)).is_none() {
            return self.respond(now, tx, msg, source, (404, "Not Found"), &[]);
        }
        if publisher != resource {
            let status = (403, "Forbidden (not a member of the line)");
            return self.respond(now, tx, msg, source, status, &[]);
        }
        let asked = msg
            .headers
            .get(&HeaderName::Expires)
            .and_then(|e| e.trim().parse::<u32>().ok())
            .unwrap_or(3600);
        if (1..min).contains(&asked) {
            let min = [(HeaderName::MinExpires, min.to_string())];
            return self.respond(now, tx, msg, source, (423, "Interval Too Brief"), &min);
        }
        let granted = asked.min(max);
        let if_match = msg.headers.get(&HeaderName::SipIfMatch).map(str::trim);
        let call_info: Vec<&str> = msg.headers.values(&HeaderName::CallInfo).collect();
        // RFC 7463's body, read and checked before anything is kept.
        let dialogs = match (event, msg.body.is_empty()) {
            (Event::SharedDialog, false) => {
                let read = std::str::from_utf8(&msg.body)
                    .ok()
                    .and_then(|b| shared_appearance::parse(b).ok());
                let Some(dialogs) = read else {
                    let status = (400, "Bad Request (unreadable dialog-info)");
                    return self.respond(now, tx, msg, source, status, &[]);
                };
                if let Err(why) = self.check_shared(&resource, &dialogs) {
                    log::info!("PUBLISH of '{resource}' from {source} refused: {why}");
                    return self.respond(now, tx, msg, source, why.status(), &[]);
                }
                Some(dialogs)
            }
            _ => None,
        };
        let says_something = match event {
            Event::CallInfo => !call_info.is_empty(),
            Event::SharedDialog => dialogs.is_some(),
        };
        let publications = &self.shared.publications;
        let etag = self.tokens.token();
        let expires_at = now.unix + u64::from(granted);
        let outcome = match (if_match, granted) {
            // An initial publication says something, for a while.
            (None, _) if !says_something || granted == 0 => Err((400, "Bad Request")),
            (None, _) => {
                publications.insert(etag.clone(), &resource, expires_at);
                Ok(Some(etag))
            }
            (Some(tag), 0) => match publications.remove(tag, &resource, now.unix) {
                true => Ok(None),
                false => Err((412, "Conditional Request Failed")),
            },
            (Some(tag), _) => {
                match publications.renew(tag, &resource, now.unix, etag.clone(), expires_at) {
                    true => Ok(Some(etag)),
                    false => Err((412, "Conditional Request Failed")),
                }
            }
        };
        let etag = match outcome {
            Ok(e) => e,
            Err(status) => return self.respond(now, tx, msg, source, status, &[]),
        };
        if let Some(e) = &etag {
            match dialogs {
                Some(d) => {
                    let until = now.unix + SEIZE_FOR.min(granted.into());
                    if let Err(why) = self.apply_shared(&resource, &d, until) {
                        // Lost a race for the appearance: nothing is kept.
                        self.shared.publications.remove(e, &resource, now.unix);
                        log::info!("PUBLISH of '{resource}' from {source} refused: {why}");
                        return self.respond(now, tx, msg, source, why.status(), &[]);
                    }
                }
                None => self.apply_call_info(&resource, &call_info),
            }
        }
        let mut headers = vec![];
        if let Some(e) = etag {
            headers.push((HeaderName::SipETag, e));
            headers.push((HeaderName::Expires, granted.to_string()));
        } else {
            headers.push((HeaderName::Expires, "0".to_string()));
        }
        self.respond(now, tx, msg, source, (200, "OK"), &headers);
    }

    /// Whether RFC 7463 dialogs a phone of `line` published may stand: each
    /// appearance within the line, free or this very call's (seized by it,
    /// or its dialog), and a replaced or joined dialog the one holding the
    /// appearance named (§5.3.2). A seizure's race with another shard's is
    /// settled when it is applied ([`Self::apply_shared`]).
    fn check_shared(&self, line: &str, dialogs: &[Published]) -> Result<(), Refusal> {
        let max = self.shared_line(Some(line)).map_or(0, |(_, m)| m);
        for d in dialogs {
            let Some(n) = d.appearance else {
                continue; // a call without a number (§5.3.1): nothing held
            };
            if n > max {
                return Err(Refusal::NoSuchAppearance { n, max });
            }
            let held_by = self.shared.lines.get(line, n);
            if let Some(target) = d.replaced.as_ref().or(d.joined.as_ref()) {
                match &held_by {
                    Some(a) if a.dialog.as_ref().is_some_and(|x| same_dialog(x, target)) => {
                        continue
                    }
                    _ => return Err(Refusal::NotThatDialog(n)),
                }
            }
            let call_id = d.ids.as_ref().map(|i| i.call_id.as_str());
            match &held_by {
                None => {}
                Some(a) if is_this_call(a, call_id) => {}
                Some(_) if d.state == "terminated" => {}
                Some(_) => return Err(Refusal::InUse(n)),
            }
        }
        Ok(())
    }

    /// Applies dialogs [`Self::check_shared`] let stand: a `trying` one on
    /// a free appearance seizes it until `seize_until` (atomically: a
    /// seizure of the same appearance that won on another shard meanwhile
    /// refuses this one, and nothing of it is kept), a `terminated` one
    /// gives its seizure back, a confirmed one sets its appearance's
    /// exclusivity (`sa:exclusive`: no other phone may take it).
    fn apply_shared(
        &mut self,
        line: &str,
        dialogs: &[Published],
        seize_until: u64,
    ) -> Result<(), Refusal> {
        let mut changed = false;
        let mut seized: Vec<(u32, &str)> = Vec::new();
        let mut outcome = Ok(());
        for d in dialogs {
            let (Some(n), Some(ids)) = (d.appearance, d.ids.as_ref()) else {
                continue;
            };
            if d.replaced.is_some() || d.joined.is_some() {
                continue; // the INVITE with Replaces/Join moves it
            }
            let lines = &self.shared.lines;
            match (d.state.as_str(), lines.get(line, n)) {
                ("terminated", _) => changed |= lines.unseize(line, n, &ids.call_id),
                ("trying", None) => {
                    let ap = Appearance {
                        state: ApState::Seized,
                        uri: None,
                        chan: NO_LEG,
                        shard: self.home.index,
                        name: "(seized)".into(),
                        taking: None,
                        outgoing: true,
                        dialog: Some(ids.clone()),
                        seized: Some((ids.call_id.clone(), seize_until)),
                        exclusive: d.exclusive,
                    };
                    if !lines.seize_exact(line, n, ap) {
                        outcome = Err(Refusal::InUse(n));
                        break;
                    }
                    seized.push((n, &ids.call_id));
                    changed = true;
                }
                ("confirmed" | "early", Some(a)) if a.chan != NO_LEG => {
                    changed |= lines.set_exclusive(line, n, d.exclusive);
                    if d.held && d.exclusive {
                        changed |= lines.set_state_at(line, n, ApState::HeldPrivate);
                    }
                }
                _ => {}
            }
        }
        if outcome.is_err() {
            // All or nothing: the seizures this PUBLISH made go again.
            for (n, call_id) in seized {
                self.shared.lines.unseize(line, n, call_id);
            }
        } else if changed {
            self.line_changed(line);
        }
        outcome
    }

    /// What a phone published about the line's appearances in use.
    fn apply_call_info(&mut self, line: &str, values: &[&str]) {
        let mut changed = false;
        for v in values {
            for (index, state) in super::appearances_of(v) {
                let state = match state.as_deref() {
                    Some("held") => ApState::Held,
                    Some("held-private") => ApState::HeldPrivate,
                    Some("active") => ApState::Active,
                    _ => continue,
                };
                changed |= self.shared.lines.set_state_at(line, index, state);
            }
        }
        if changed {
            self.line_changed(line);
        }
    }
}

/// Whether appearance `a` is the call `call_id` names: seized for it, or
/// its leg's dialog.
fn is_this_call(a: &Appearance, call_id: Option<&str>) -> bool {
    let Some(call_id) = call_id else {
        return false;
    };
    a.seized.as_ref().is_some_and(|(c, _)| c == call_id)
        || a.dialog.as_ref().is_some_and(|d| d.call_id == call_id)
}

/// Whether two views of a dialog name the same one: the Call-ID, and the
/// two tags whichever side each view takes (a phone may name the dialog as
/// its owner sees it, or as the far end does).
fn same_dialog(a: &DialogIds, b: &DialogIds) -> bool {
    a.call_id == b.call_id
        && ((a.local_tag == b.local_tag && a.remote_tag == b.remote_tag)
            || (a.local_tag == b.remote_tag && a.remote_tag == b.local_tag))
}
