//! PUBLISH (RFC 3903) of `call-info` by a shared line's phones: a phone
//! tells the line its own view of an appearance (on hold, privately), and
//! every watcher of the line is told. The event state compositor keeps each
//! publication by its entity-tag, across shards (a refresh may come with
//! another Call-ID, so to another shard).
//!
//! ```text
//!  PUBLISH sip:line@pbx  Event: call-info   Call-Info: <…>;appearance-index=1;appearance-state=held-private
//!    │ another event ─▶ 489 (Allow-Events)    digest as for INVITE (401)
//!    │ not a shared line 404, not its phone 403    Expires below minexpiry 423
//!    ├─ no SIP-If-Match (initial): a Call-Info is required (400) ─▶ 200 SIP-ETag, Expires
//!    ├─ SIP-If-Match unknown or expired ─▶ 412 Conditional Request Failed
//!    ├─ SIP-If-Match, no Call-Info: a refresh ─▶ 200, a new SIP-ETag
//!    ├─ SIP-If-Match with Call-Info: a modification ─▶ 200, a new SIP-ETag
//!    └─ SIP-If-Match, Expires: 0: removed ─▶ 200, Expires: 0
//! ```
//!
//! What a publication says about an appearance in use is applied to it
//! (`held`, `held-private`, `active`); `idle` and appearances no call holds
//! are the calls' to say, not a phone's.

use super::ApState;
use crate::endpoint::{Endpoint, Now};
use parking_lot::Mutex;
use sirius_sip::message::{HeaderName, Message, Uri};
use sirius_sip::transaction::{Transport, TxId};
use std::collections::HashMap;
use std::net::SocketAddr;

/// The events PUBLISH serves.
pub(crate) const PUBLISH_EVENTS: &str = "call-info";

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
        let event = msg
            .headers
            .get(&HeaderName::Event)
            .map(|e| e.split(';').next().unwrap_or("").trim().to_string());
        if event.as_deref() != Some("call-info") {
            let allow = [(HeaderName::AllowEvents, PUBLISH_EVENTS.to_string())];
            return self.respond(now, tx, msg, source, (489, "Bad Event"), &allow);
        }
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
        let publications = &self.shared.publications;
        let etag = self.tokens.token();
        let expires_at = now.unix + u64::from(granted);
        let outcome = match (if_match, granted) {
            // An initial publication says something, for a while.
            (None, _) if call_info.is_empty() || granted == 0 => Err((400, "Bad Request")),
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
        if etag.is_some() {
            self.apply_call_info(&resource, &call_info);
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
