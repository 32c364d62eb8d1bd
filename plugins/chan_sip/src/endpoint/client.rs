//! The endpoint's client usages that are not calls: our `[[register]]`
//! lines (sirius-sip's `Registration` state machine) and qualify pokes
//! (`Qualify`). Their state lives in `Shared` because `sip show registry`
//! and `sip show peers` read it; only the endpoint writes it. Each is a
//! [`ClientUsage`] owning its requests' transactions: [`Poke`] and
//! [`Registration`].

use super::{ClientUsage, Endpoint, Now, Owner, ACCEPT};
use sirius_sip::message::{HeaderName, Message, Method};
use sirius_sip::registration::RegState;
use sirius_sip::transaction::TxId;
use std::time::Instant;

/// An OPTIONS poke of this peer (qualify).
pub(crate) struct Poke {
    /// The peer's name in sip.toml.
    pub(crate) peer: String,
}

impl ClientUsage for Poke {
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, _: &Message, code: u16) {
        if code < 200 {
            return ep.own(tx, self);
        }
        ep.on_poke_response(&self.peer, now.mono);
    }

    /// Nothing: the poke's own timer (2 x maxms) decides reachability.
    fn on_timeout(self, _: &mut Endpoint, _: Now, _: TxId) {}
}

/// A REGISTER of a `[[register]]` line.
pub(crate) struct Registration {
    /// The line's index in `Shared::outbound` (renumbered when a reload
    /// drops lines before it).
    pub(crate) line: usize,
}

impl ClientUsage for Registration {
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, msg: &Message, code: u16) {
        if code < 200 {
            return ep.own(tx, self);
        }
        ep.on_register_response(self.line, msg, code, now);
    }

    fn on_timeout(self, ep: &mut Endpoint, now: Now, _: TxId) {
        ep.on_register_timeout(self.line, now.mono);
    }
}

/// Asterisk's wording for qualify changes.
fn log_status_change(name: &str, c: sirius_sip::qualify::StatusChange, maxms: u32) {
    use sirius_sip::qualify::PeerStatus;
    match c.to {
        PeerStatus::Ok(ms) => log::info!("Peer '{name}' is now Reachable. ({ms}ms / {maxms}ms)"),
        PeerStatus::Lagged(ms) => log::warn!("Peer '{name}' is now Lagged. ({ms}ms / {maxms}ms)"),
        PeerStatus::Unreachable => log::warn!("Peer '{name}' is now UNREACHABLE!"),
        PeerStatus::Unknown => {}
    }
}

impl Endpoint {
    fn peer_status_event(&mut self, name: &str, c: sirius_sip::qualify::StatusChange) {
        self.event(
            "PeerStatus",
            vec![
                ("Peer", format!("SIP/{name}")),
                ("PeerStatus", c.to.event_word().into()),
            ],
        );
        // The device state follows: an unreachable peer is unavailable to
        // hints and their watchers; back, it is idle or in use.
        self.device_update(name);
    }

    /// Qualify and registration timers that came due.
    pub(super) fn client_timers(&mut self, now: Instant) {
        let mut due = Vec::new();
        let mut changes = Vec::new();
        for (name, q) in self.shared.qualify.lock().iter_mut() {
            let (change, poke) = q.handle_timeout(now);
            if let Some(c) = change {
                log_status_change(name, c, q.maxms());
                changes.push((name.clone(), c));
            }
            if poke {
                due.push(name.clone());
            }
        }
        for (name, c) in changes {
            self.peer_status_event(&name, c);
        }
        for name in due {
            self.poke(&name, now);
        }
        let mut sends = Vec::new();
        for (i, r) in self.shared.outbound.lock().iter_mut().enumerate() {
            if let Some(req) = r.sm.handle_timeout(now) {
                sends.push((i, req, r.dest, r.transport));
            }
        }
        for (i, req, dest, transport) in sends {
            self.send_client(req, dest, transport, Registration { line: i }, now);
        }
    }

    /// Sends an OPTIONS poke to a peer (static address or registered contact).
    pub(super) fn poke(&mut self, name: &str, now: Instant) {
        let running = self.shared.running();
        let Some(peer) = running.peers.get(name) else {
            return;
        };
        let dest = peer.addr.map(|a| (a, peer.transports[0])).or_else(|| {
            let reg = self.shared.registrar.lock();
            reg.binding(name).map(|b| (b.addr, b.transport()))
        });
        {
            let mut qualify = self.shared.qualify.lock();
            let Some(q) = qualify.get_mut(name) else {
                return;
            };
            let Some((_, _)) = dest else {
                // An unregistered dynamic peer: nothing to poke; try again later.
                q.schedule(now + crate::outbound::FREQ_NOTOK);
                return;
            };
            q.poke_sent(now);
        }
        let Some((dest, transport)) = dest else {
            return;
        };
        let mut m = self.new_request(
            Method::Options,
            format!("sip:{}@{dest}{}", peer.username, transport.uri_param()),
            "sirius",
            transport,
        );
        m.push(HeaderName::Accept, ACCEPT);
        self.send_client(
            m,
            dest,
            transport,
            Poke {
                peer: name.to_string(),
            },
            now,
        );
    }

    fn on_poke_response(&mut self, name: &str, now: Instant) {
        let change = {
            let mut qualify = self.shared.qualify.lock();
            let Some(q) = qualify.get_mut(name) else {
                return;
            };
            let c = q.on_response(now);
            if let Some(c) = c {
                log_status_change(name, c, q.maxms());
            }
            c
        };
        if let Some(c) = change {
            self.peer_status_event(name, c);
        }
    }

    /// Registers every line that is neither registered nor waiting to retry.
    pub(super) fn start_registrations(&mut self, now: Instant) {
        let mut sends = Vec::new();
        for (i, r) in self.shared.outbound.lock().iter_mut().enumerate() {
            if r.sm.state() == RegState::Unregistered && r.sm.poll_timeout().is_none() {
                sends.push((i, r.sm.start(now), r.dest, r.transport));
            }
        }
        for (i, req, dest, transport) in sends {
            self.send_client(req, dest, transport, Registration { line: i }, now);
        }
    }

    /// The configuration was reloaded (and the driver created the new
    /// lines): lines that left it are unregistered and dropped, new ones start.
    pub(super) fn reconcile(&mut self, now: Instant) {
        let wanted = self.shared.running().cfg.register.clone();
        let mut gone = Vec::new();
        // Where each line that stays moves to once the others are dropped:
        // its request in flight keeps its owner (a line whose answer went
        // nowhere would wait for it forever).
        let mut moved = std::collections::HashMap::new();
        {
            let mut regs = self.shared.outbound.lock();
            for r in regs.iter_mut().filter(|r| !wanted.contains(&r.cfg)) {
                if let Some(req) = r.sm.unregister(now) {
                    gone.push((req, r.dest, r.transport));
                }
            }
            let mut next = 0;
            for (i, r) in regs.iter().enumerate() {
                if wanted.contains(&r.cfg) {
                    moved.insert(i, next);
                    next += 1;
                }
            }
            regs.retain(|r| wanted.contains(&r.cfg));
        }
        self.owners.retain(|_, o| match o {
            Owner::Register(r) => match moved.get(&r.line) {
                Some(n) => {
                    r.line = *n;
                    true
                }
                None => false,
            },
            _ => true,
        });
        for (req, dest, transport) in gone {
            let _ = self.layer.send_request(now, req, dest, transport);
        }
        self.start_registrations(now);
    }

    /// Sends `Expires: 0` for every registered line (module unload).
    pub(super) fn unregister_all(&mut self, now: Instant) {
        let mut sends = Vec::new();
        for (i, r) in self.shared.outbound.lock().iter_mut().enumerate() {
            if let Some(req) = r.sm.unregister(now) {
                log::info!(
                    "Unregistering {}@{} (Expires: 0)",
                    r.cfg.user,
                    r.host_column()
                );
                sends.push((i, req, r.dest, r.transport));
            }
        }
        for (i, req, dest, transport) in sends {
            self.send_client(req, dest, transport, Registration { line: i }, now);
        }
    }

    fn on_register_response(&mut self, i: usize, msg: &Message, code: u16, now: Now) {
        let unix = now.unix;
        let now = now.mono;
        let mut event = None;
        let next = {
            let mut regs = self.shared.outbound.lock();
            let Some(r) = regs.get_mut(i) else { return };
            let before = r.sm.state();
            let next = r.sm.on_response(now, msg);
            let after = r.sm.state();
            if after == RegState::Registered {
                r.registered_at = Some(unix);
            }
            if before != after {
                log::info!(
                    "Registration to {} as {}: {} -> {} ({code})",
                    r.host_column(),
                    r.cfg.user,
                    before.as_str(),
                    after.as_str()
                );
                event = Some(vec![
                    ("ChannelType", "SIP".into()),
                    ("Username", r.cfg.user.clone()),
                    ("Domain", r.cfg.host.clone()),
                    ("Status", after.as_str().into()),
                ]);
            }
            next.map(|req| (req, r.dest, r.transport))
        };
        if let Some(fields) = event {
            self.event("Registry", fields);
        }
        if let Some((req, dest, transport)) = next {
            self.send_client(req, dest, transport, Registration { line: i }, now);
        }
    }

    fn on_register_timeout(&mut self, i: usize, now: Instant) {
        if let Some(r) = self.shared.outbound.lock().get_mut(i) {
            r.sm.on_timeout(now);
            log::warn!(
                "Registration to {} as {} timed out; state {}",
                r.host_column(),
                r.cfg.user,
                r.sm.state().as_str()
            );
        }
    }
}
