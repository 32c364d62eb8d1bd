//! Message waiting without a subscription (chan_sip's unsolicited MWI): a
//! peer with a `mailbox` key whose phone never subscribes to
//! `message-summary` is sent a NOTIFY outside any dialog whenever its
//! mailboxes' counts change, and when it registers, as Asterisk does for
//! phones that only listen (many desk phones).
//!
//! ```text
//!  load, sip reload ─▶ shard 0 watches each peer's `mailbox`
//!                      (Env::mwi_watch, MwiTarget::Peer)
//!  the counts change ─▶ shard 0: NOTIFY message-summary to the peer
//!  the peer registers ─▶ (its REGISTER's shard) the same NOTIFY
//!  the peer holds a message-summary subscription ─▶ nothing: the
//!                      subscription (session/subscribe) tells it
//! ```
//!
//! The NOTIFY carries no `Subscription-State` (there is none), as
//! chan_sip's; its answer changes nothing.

use crate::endpoint::{Endpoint, Env, Fire, HostAction, MwiTarget};
use parking_lot::Mutex;
use sirius_sip::message::{HeaderName, Method};
use sirius_sip::mwi::{self, Counts};
use std::collections::HashMap;

/// The peers' mailbox counts as last heard, and which peers hold a
/// message-summary subscription: what every shard reads before sending.
#[derive(Debug, Default)]
pub struct PeerMwi {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    counts: HashMap<String, Counts>,
    subscribed: HashMap<String, u32>,
}

impl PeerMwi {
    /// A message-summary subscription of `peer` began (`on`) or ended.
    pub fn subscribed(&self, peer: &str, on: bool) {
        let mut inner = self.inner.lock();
        let n = inner.subscribed.entry(peer.to_string()).or_default();
        *n = match on {
            true => *n + 1,
            false => n.saturating_sub(1),
        };
        if *n == 0 {
            inner.subscribed.remove(peer);
        }
    }

    /// Whether `peer` holds a message-summary subscription.
    pub fn is_subscribed(&self, peer: &str) -> bool {
        self.inner.lock().subscribed.contains_key(peer)
    }

    /// `peer`'s counts as last heard (`None`: no mailbox watched).
    pub fn counts(&self, peer: &str) -> Option<Counts> {
        self.inner.lock().counts.get(peer).copied()
    }

    fn set(&self, peer: &str, counts: Option<Counts>) {
        let mut inner = self.inner.lock();
        match counts {
            Some(c) => inner.counts.insert(peer.to_string(), c),
            None => inner.counts.remove(peer),
        };
    }
}

/// A peer's mailboxes watched by shard 0.
pub(crate) struct PeerWatch {
    /// The core's watch.
    id: u64,
    /// The `mailbox` key it was made for.
    boxes: String,
    /// Its generation: changes carry it, and one from a watch a reload
    /// replaced is dropped.
    generation: u64,
}

impl Endpoint {
    /// Watches the mailboxes of every peer that has some (shard 0, at load
    /// and after a reload): new or changed `mailbox` keys are watched (and
    /// the peer told the counts now), removed ones unwatched.
    pub(crate) fn mwi_reconcile(&mut self, env: &mut dyn Env) {
        // While unloading (a reload's late answer), a watch made now would
        // outlive the module.
        let stopping = self
            .shared
            .stopping
            .load(std::sync::atomic::Ordering::Relaxed);
        if !self.home.runs_clients() || stopping {
            return;
        }
        let running = self.shared.running();
        let wanted: HashMap<String, String> = running
            .peers
            .values()
            .filter_map(|p| Some((p.name.clone(), p.mailbox.clone()?)))
            .collect();
        drop(running);
        let gone: Vec<String> = self
            .mwi_watches
            .iter()
            .filter(|(peer, w)| wanted.get(*peer) != Some(&w.boxes))
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in gone {
            if let Some(w) = self.mwi_watches.remove(&peer) {
                self.host(HostAction::MwiUnwatch(w.id));
            }
            self.shared.mwi.set(&peer, None);
        }
        let mut fresh = Vec::new();
        for (peer, boxes) in wanted {
            if self.mwi_watches.contains_key(&peer) {
                continue;
            }
            self.mwi_generation += 1;
            let generation = self.mwi_generation;
            match env.mwi_watch(&boxes, MwiTarget::Peer(peer.clone(), generation)) {
                Some((id, counts)) => {
                    let w = PeerWatch {
                        id,
                        boxes,
                        generation,
                    };
                    self.mwi_watches.insert(peer.clone(), w);
                    self.shared.mwi.set(&peer, Some(counts));
                    fresh.push(peer);
                }
                None => log::warn!("peer {peer}: mailbox '{boxes}' cannot be watched"),
            }
        }
        for peer in fresh {
            self.send_unsolicited_mwi(&peer);
        }
    }

    /// A peer's mailboxes have `counts` now (as its watch of `generation`
    /// heard): it is told, unless a subscription of its own does that.
    pub(crate) fn peer_mailbox_changed(&mut self, peer: &str, generation: u64, counts: Counts) {
        if self.mwi_watches.get(peer).map(|w| w.generation) != Some(generation) {
            return; // a watch a reload ended or replaced since
        }
        self.shared.mwi.set(peer, Some(counts));
        self.send_unsolicited_mwi(peer);
    }

    /// Ends every peer's watch (the module stops).
    pub(crate) fn mwi_unwatch_all(&mut self) {
        for (_, w) in std::mem::take(&mut self.mwi_watches) {
            self.host(HostAction::MwiUnwatch(w.id));
        }
    }

    /// Sends `peer` its counts in a NOTIFY outside any dialog, if it has a
    /// mailbox, no message-summary subscription, and an address (a static
    /// host, or its registrations: every phone registered as the peer,
    /// `max-contacts`, has a light).
    pub(crate) fn send_unsolicited_mwi(&mut self, peer: &str) {
        if self.shared.mwi.is_subscribed(peer) {
            return;
        }
        let Some(counts) = self.shared.mwi.counts(peer) else {
            return;
        };
        let running = self.shared.running();
        let Some(p) = running.peers.get(peer) else {
            return;
        };
        let dests: Vec<_> = match p.addr {
            Some(a) => vec![(a, p.transports[0])],
            None => {
                let reg = self.shared.registrar.lock();
                let contacts = reg.contacts(peer).iter();
                contacts.map(|b| (b.addr, b.transport())).collect()
            }
        };
        // None: not registered, told when it registers.
        let (user, vmexten) = (p.username.clone(), p.vmexten.clone());
        drop(running);
        log::debug!(
            "MWI to {peer}: {} new, {} old (unsolicited, {} contact(s))",
            counts.new,
            counts.old,
            dests.len()
        );
        for (dest, transport) in dests {
            let ruri = format!("sip:{user}@{dest}{}", transport.uri_param());
            let mut m = self.new_request(Method::Notify, ruri, &vmexten, transport);
            m.push(HeaderName::Event, "message-summary");
            let account = self.shared.contact_uri(&vmexten, transport);
            m.set_body(mwi::CONTENT_TYPE, mwi::body(&account, counts).into_bytes());
            self.send_client(m, dest, transport, Fire, self.now);
        }
    }
}
