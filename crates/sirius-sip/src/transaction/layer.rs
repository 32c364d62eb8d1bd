//! The transaction layer: every transaction of one endpoint, its timers and
//! the queues of what to send and what to tell the transaction user.
//!
//! Storage is built for the load RFC 3261 implies over UDP: each
//! transaction lingers 32 s after its final response, so at thousands of
//! calls per second hundreds of thousands are alive, nearly all of them
//! only waiting to absorb a retransmission. They sit in a chunked slab
//! ([`super::slab`]) that grows without moving anything, are found through
//! 128-bit keys hashed once without allocating ([`super::key`]), and are
//! timed by per-duration FIFO lists ([`super::timers`]). Once a transaction
//! lingers it keeps only its key, its peer, and the bytes it may have to
//! send again: the parsed request is dropped.

use super::key::{Key, KeyMap, Keyer};
use super::slab::Slab;
use super::timers::TimerLists;
use super::{Config, Event, Transmit, Transport, TxError, TxId};
use crate::message::build;
use crate::message::{Message, Method};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    // client
    Calling,
    Trying,
    Proceeding,
    Completed,
    Accepted,
    // server
    Confirmed,
}

#[derive(Debug)]
struct Tx {
    key: Key,
    client: bool,
    invite: bool,
    state: State,
    peer: SocketAddr,
    transport: Transport,
    /// The request, until the transaction only lingers to absorb
    /// retransmissions (Completed, Accepted, Confirmed): from then on only
    /// its key and the bytes it may have to send again are kept. Over UDP a
    /// transaction lingers for 64 × T1 (32 s), so at thousands of calls per
    /// second the parsed requests were most of the process's memory.
    request: Option<Box<Message>>,
    /// Client: the request bytes. Server: the last response bytes.
    outgoing: Option<Vec<u8>>,
    /// Client INVITE: the ACK bytes once sent.
    ack: Option<Vec<u8>>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    timeout_at: Option<Instant>,
    terminate_at: Option<Instant>,
    /// How long `terminate_at` was set ahead: the timer list it joins.
    linger: Duration,
    /// The deadline entered in the timer lists, if any (older entries for
    /// this transaction are stale and skipped).
    scheduled: Option<Instant>,
    /// A CANCEL waits for a provisional response (RFC 3261 §9.1), and why.
    cancel_pending: Option<CancelReason>,
    acked: bool,
    dialog_key: Option<Key>,
}

/// Why we cancel an INVITE, as its CANCEL's `Reason` (RFC 3326) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// No `Reason` header.
    None,
    /// Another branch of a forked call answered: `Reason: SIP;cause=200;
    /// text="Call completed elsewhere"` (RFC 3326 §2; phones then log no
    /// missed call).
    CompletedElsewhere,
}

impl CancelReason {
    /// The `Reason` header's value, if any.
    pub fn header(self) -> Option<&'static str> {
        match self {
            CancelReason::None => None,
            CancelReason::CompletedElsewhere => {
                Some("SIP;cause=200;text=\"Call completed elsewhere\"")
            }
        }
    }
}

impl Tx {
    /// A transaction in its first state, no timer armed yet.
    #[allow(clippy::too_many_arguments)]
    fn new(
        key: Key,
        client: bool,
        invite: bool,
        state: State,
        peer: SocketAddr,
        transport: Transport,
        request: Message,
        interval: Duration,
    ) -> Tx {
        Tx {
            key,
            client,
            invite,
            state,
            peer,
            transport,
            request: Some(Box::new(request)),
            outgoing: None,
            ack: None,
            retransmit_at: None,
            interval,
            timeout_at: None,
            terminate_at: None,
            linger: Duration::ZERO,
            scheduled: None,
            cancel_pending: None,
            acked: false,
            dialog_key: None,
        }
    }

    /// The earliest deadline, with the duration it was set ahead (the
    /// timer list it belongs to): retransmissions by their interval, Timers
    /// B/F/H/L/M by 64·T1, the linger timers (D, I, J, K) by their own.
    fn next_deadline(&self, t1: Duration) -> Option<(Instant, Duration)> {
        [
            self.retransmit_at.map(|t| (t, self.interval)),
            self.timeout_at.map(|t| (t, 64 * t1)),
            self.terminate_at.map(|t| (t, self.linger)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(t, _)| *t)
    }

    /// Ends the transaction `d` from now (at once over a reliable transport).
    fn linger(&mut self, now: Instant, d: Duration) {
        let d = if self.transport.is_reliable() {
            Duration::ZERO
        } else {
            d
        };
        self.terminate_at = Some(now + d);
        self.linger = d;
    }
}

/// All transactions of one endpoint.
#[derive(Debug)]
pub struct TransactionLayer {
    cfg: Config,
    keyer: Keyer,
    txs: Slab<Tx>,
    keys: KeyMap<TxId>,
    /// (Call-ID, CSeq) of INVITE server transactions whose 2xx awaits its ACK.
    accepted: KeyMap<TxId>,
    timers: TimerLists,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new(cfg: Config) -> TransactionLayer {
        TransactionLayer {
            cfg,
            keyer: Keyer::default(),
            txs: Slab::default(),
            keys: KeyMap::with_capacity(cfg.capacity),
            accepted: KeyMap::with_capacity(cfg.capacity / 4),
            timers: TimerLists::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The timer configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.txs.len() == 0
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Exact: stale entries never stay at a list's head (`purge`).
        self.timers.first().map(|(t, _)| t)
    }

    /// Whether `req` belongs to a server transaction we have (a
    /// retransmission, or an ACK for our final response): what a
    /// stateless answer must not pre-empt.
    pub fn has_server(&self, req: &Message) -> bool {
        self.keyer
            .server(req)
            .is_some_and(|k| self.keys.get(&k).is_some())
    }

    /// The request a transaction was created for.
    pub fn request(&self, tx: TxId) -> Option<&Message> {
        self.txs.get(tx).and_then(|t| t.request.as_deref())
    }

    /// Slab chunks allocated and key-table capacity, for tests of growth.
    #[cfg(test)]
    pub(super) fn footprint(&self) -> (usize, usize) {
        (self.txs.chunks(), self.keys.capacity())
    }

    /// Drops the timer entries that went stale at the lists' heads, so that
    /// `poll_timeout` names a real deadline.
    fn purge(&mut self) {
        let txs = &self.txs;
        self.timers
            .purge(|at, id| txs.get(id).is_some_and(|t| t.scheduled == Some(at)));
    }

    fn reschedule(&mut self, id: TxId) {
        let t1 = self.cfg.t1;
        let Some(tx) = self.txs.get_mut(id) else {
            return;
        };
        if matches!(
            tx.state,
            State::Completed | State::Accepted | State::Confirmed
        ) {
            tx.request = None;
            if tx.client {
                // A client never retransmits its request from here on.
                tx.outgoing = None;
            }
        }
        match tx.next_deadline(t1) {
            Some((at, _)) if tx.scheduled == Some(at) => {}
            Some((at, class)) => {
                tx.scheduled = Some(at);
                self.timers.add(class, at, id);
            }
            None => tx.scheduled = None,
        }
    }

    fn terminate(&mut self, id: TxId) {
        if let Some(tx) = self.txs.remove(id) {
            self.keys.remove(&tx.key);
            if let Some(dk) = tx.dialog_key {
                if self.accepted.get(&dk) == Some(&id) {
                    self.accepted.remove(&dk);
                }
            }
        }
    }

    fn send(&mut self, dest: SocketAddr, transport: Transport, data: Vec<u8>) {
        self.transmits.push_back(Transmit {
            dest,
            transport,
            data,
        });
    }

    /// Sends a message outside any transaction (the ACK for a 2xx, a stateless 400).
    pub fn send_stateless(&mut self, dest: SocketAddr, transport: Transport, msg: &Message) {
        self.send(dest, transport, msg.to_bytes());
    }

    /// Starts a client transaction for `req` (which must carry a top Via with a branch).
    pub fn send_request(
        &mut self,
        now: Instant,
        req: Message,
        dest: SocketAddr,
        transport: Transport,
    ) -> Result<TxId, TxError> {
        let key = self.keyer.client(&req).ok_or(TxError::NoBranch)?;
        if self.keys.contains_key(&key) {
            return Err(TxError::Duplicate);
        }
        let invite = req.method() == Some(&Method::Invite);
        let bytes = req.to_bytes();
        let t1 = self.cfg.t1;
        let state = if invite {
            State::Calling
        } else {
            State::Trying
        };
        let mut tx = Tx::new(key, true, invite, state, dest, transport, req, t1);
        tx.outgoing = Some(bytes.clone());
        tx.retransmit_at = (!transport.is_reliable()).then(|| now + t1);
        tx.timeout_at = Some(now + 64 * t1);
        let id = self.txs.insert(tx).ok_or(TxError::Full)?;
        self.keys.insert(key, id);
        self.reschedule(id);
        self.send(dest, transport, bytes);
        self.purge();
        Ok(id)
    }

    /// Cancels a client INVITE (§9.1). Before any provisional response the CANCEL
    /// is held and sent when one arrives; after a final response it is not sent.
    /// Returns the CANCEL's own transaction when it went out now.
    pub fn cancel(&mut self, now: Instant, invite: TxId) -> Result<Option<TxId>, TxError> {
        self.cancel_with(now, invite, CancelReason::None)
    }

    /// [`TransactionLayer::cancel`] saying why (RFC 3326 `Reason`).
    pub fn cancel_with(
        &mut self,
        now: Instant,
        invite: TxId,
        reason: CancelReason,
    ) -> Result<Option<TxId>, TxError> {
        let tx = self.txs.get_mut(invite).ok_or(TxError::Unknown(invite))?;
        if !tx.client || !tx.invite {
            return Err(TxError::WrongKind);
        }
        match tx.state {
            State::Calling => {
                tx.cancel_pending = Some(reason);
                Ok(None)
            }
            State::Proceeding => {
                let Some(request) = &tx.request else {
                    return Ok(None);
                };
                let mut c = build::cancel(request);
                if let Some(r) = reason.header() {
                    c.push(crate::message::HeaderName::Reason, r);
                }
                let (dest, transport) = (tx.peer, tx.transport);
                self.send_request(now, c, dest, transport).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Sends a response on a server transaction.
    pub fn respond(&mut self, now: Instant, id: TxId, resp: &Message) -> Result<(), TxError> {
        let t1 = self.cfg.t1;
        let tx = self.txs.get_mut(id).ok_or(TxError::Unknown(id))?;
        if tx.client {
            return Err(TxError::WrongKind);
        }
        if matches!(
            tx.state,
            State::Completed | State::Confirmed | State::Accepted
        ) {
            return Err(TxError::AlreadyFinal(id));
        }
        let code = resp.code().unwrap_or(500);
        let bytes = resp.to_bytes();
        let unreliable = !tx.transport.is_reliable();
        let (dest, transport) = (tx.peer, tx.transport);
        tx.outgoing = Some(bytes.clone());
        let mut accepted_key = None;
        if code < 200 {
            tx.state = State::Proceeding;
        } else if tx.invite && code < 300 {
            tx.state = State::Accepted;
            tx.retransmit_at = unreliable.then(|| now + t1);
            tx.interval = t1;
            tx.timeout_at = Some(now + 64 * t1);
            let request = tx.request.as_deref();
            let key = self.keyer.call(
                request.and_then(|r| r.call_id()).unwrap_or_default(),
                request.and_then(|r| r.cseq()).map_or(0, |c| c.seq),
            );
            tx.dialog_key = Some(key);
            accepted_key = Some(key);
        } else if tx.invite {
            tx.state = State::Completed;
            tx.retransmit_at = unreliable.then(|| now + t1);
            tx.interval = t1;
            tx.timeout_at = Some(now + 64 * t1);
        } else {
            tx.state = State::Completed;
            tx.linger(now, 64 * t1);
        }
        if let Some(k) = accepted_key {
            self.accepted.insert(k, id);
        }
        self.reschedule(id);
        self.send(dest, transport, bytes);
        self.purge();
        Ok(())
    }

    /// Feeds a received message.
    pub fn on_message(
        &mut self,
        now: Instant,
        msg: Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        if msg.is_request() {
            self.on_request(now, msg, source, transport);
        } else {
            self.on_response(now, msg);
        }
        self.purge();
    }

    fn on_request(&mut self, now: Instant, msg: Message, source: SocketAddr, transport: Transport) {
        let Some(key) = self.keyer.server(&msg) else {
            return;
        };
        let method = msg.method().cloned().unwrap_or(Method::Ack);
        if method == Method::Ack {
            if let Some(&id) = self.keys.get(&key) {
                // ACK for our 3xx–6xx: absorbed.
                let t4 = self.cfg.t4;
                let state = self.txs.get(id).map(|tx| tx.state);
                if state == Some(State::Completed) {
                    if let Some(tx) = self.txs.get_mut(id) {
                        tx.state = State::Confirmed;
                        tx.retransmit_at = None;
                        tx.timeout_at = None;
                        tx.linger(now, t4);
                    }
                    self.reschedule(id);
                }
                if state.is_some() && state != Some(State::Accepted) {
                    return;
                }
            }
            // ACK for a 2xx: end to end, matched by Call-ID and CSeq.
            let dk = self.keyer.call(
                msg.call_id().unwrap_or_default(),
                msg.cseq().map_or(0, |c| c.seq),
            );
            let tx = self.accepted.get(&dk).copied();
            if let Some(id) = tx {
                if let Some(t) = self.txs.get_mut(id) {
                    if t.acked {
                        return; // retransmitted ACK
                    }
                    t.acked = true;
                    t.retransmit_at = None;
                    // The 2xx is never sent again once ACKed.
                    t.outgoing = None;
                }
                self.reschedule(id);
            }
            self.events.push_back(Event::Ack { tx, msg, source });
            return;
        }
        if let Some(&id) = self.keys.get(&key) {
            // A retransmission: answer with the last response, if any.
            if let Some(tx) = self.txs.get(id) {
                if let Some(bytes) = tx.outgoing.clone() {
                    let (dest, tr) = (tx.peer, tx.transport);
                    self.send(dest, tr, bytes);
                }
            }
            return;
        }
        let invite = method == Method::Invite;
        let cancels = if method == Method::Cancel {
            self.keyer
                .invite_for_cancel(&msg)
                .and_then(|k| self.keys.get(&k).copied())
        } else {
            None
        };
        let state = if invite {
            State::Proceeding
        } else {
            State::Trying
        };
        let tx = Tx::new(
            key,
            false,
            invite,
            state,
            source,
            transport,
            msg.clone(),
            self.cfg.t1,
        );
        // No room (16 million live): unanswered, like a lost datagram.
        let Some(id) = self.txs.insert(tx) else {
            return;
        };
        self.keys.insert(key, id);
        if invite && self.cfg.auto_trying {
            let trying = build::response(&msg, 100, "Trying", Some(source));
            let _ = self.respond(now, id, &trying);
        }
        self.events.push_back(Event::Request {
            tx: id,
            msg,
            source,
            transport,
            cancels,
        });
    }

    fn on_response(&mut self, now: Instant, msg: Message) {
        let Some(key) = self.keyer.client(&msg) else {
            return;
        };
        let Some(&id) = self.keys.get(&key) else {
            return;
        };
        let code = msg.code().unwrap_or(0);
        let (t1, t2, t4) = (self.cfg.t1, self.cfg.t2, self.cfg.t4);
        let Some(tx) = self.txs.get_mut(id) else {
            return;
        };
        let mut send_cancel = None;
        let mut deliver = true;
        if tx.invite {
            match (tx.state, code) {
                (State::Calling | State::Proceeding, 100..=199) => {
                    if tx.state == State::Calling {
                        send_cancel = tx.cancel_pending;
                    }
                    tx.state = State::Proceeding;
                    tx.retransmit_at = None;
                    tx.timeout_at = None;
                }
                (State::Calling | State::Proceeding, 200..=299) => {
                    tx.state = State::Accepted;
                    tx.retransmit_at = None;
                    tx.timeout_at = Some(now + 64 * t1);
                }
                (State::Accepted, 200..=299) => {}
                (State::Calling | State::Proceeding, 300..=699) => {
                    let Some(request) = &tx.request else { return };
                    let ack = build::ack_for_non_2xx(request, &msg).to_bytes();
                    tx.ack = Some(ack.clone());
                    tx.state = State::Completed;
                    tx.retransmit_at = None;
                    tx.timeout_at = None;
                    // Timer D: "at least 32 seconds" (RFC 3261 §17.1.1.2).
                    tx.linger(now, Duration::from_secs(32));
                    let (d, tr) = (tx.peer, tx.transport);
                    self.transmits.push_back(Transmit {
                        dest: d,
                        transport: tr,
                        data: ack,
                    });
                }
                (State::Completed, 300..=699) => {
                    deliver = false;
                    if let Some(ack) = tx.ack.clone() {
                        let (d, tr) = (tx.peer, tx.transport);
                        self.transmits.push_back(Transmit {
                            dest: d,
                            transport: tr,
                            data: ack,
                        });
                    }
                }
                _ => deliver = false,
            }
        } else {
            match (tx.state, code) {
                (State::Trying | State::Proceeding, 100..=199) => {
                    tx.state = State::Proceeding;
                    if tx.retransmit_at.is_some() {
                        tx.interval = t2;
                    }
                }
                (State::Trying | State::Proceeding, 200..=699) => {
                    tx.state = State::Completed;
                    tx.retransmit_at = None;
                    tx.timeout_at = None;
                    tx.linger(now, t4);
                }
                _ => deliver = false,
            }
        }
        self.reschedule(id);
        if deliver {
            self.events.push_back(Event::Response { tx: id, msg });
        }
        if let Some(reason) = send_cancel {
            let _ = self.cancel_with(now, id, reason);
        }
    }

    /// The transport could not deliver to `dest` (a TCP connection refused or
    /// reset). Client transactions towards it that have not had a final
    /// response end now, reported as [`Event::Timeout`] (RFC 3261 §17.1.4:
    /// the TU acts as on a timeout) instead of waiting 64 × T1 for Timer B/F.
    pub fn transport_error(&mut self, dest: SocketAddr, transport: Transport) {
        let mut failed: Vec<TxId> = self
            .txs
            .iter()
            .filter(|(_, t)| {
                t.client
                    && t.peer == dest
                    && t.transport == transport
                    && matches!(t.state, State::Calling | State::Trying | State::Proceeding)
            })
            .map(|(id, _)| id)
            .collect();
        failed.sort();
        for id in failed {
            self.terminate(id);
            self.events.push_back(Event::Timeout { tx: id });
        }
        self.purge();
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, id)) = self.timers.pop_due(now) {
            match self.txs.get_mut(id) {
                Some(tx) if tx.scheduled == Some(at) => tx.scheduled = None,
                _ => continue, // stale: moved or ended since
            }
            self.fire(now, id);
            self.reschedule(id);
        }
        self.purge();
        self.shrink();
    }

    fn fire(&mut self, now: Instant, id: TxId) {
        let t2 = self.cfg.t2;
        let Some(tx) = self.txs.get_mut(id) else {
            return;
        };
        if tx.terminate_at.is_some_and(|t| t <= now) {
            self.terminate(id);
            return;
        }
        if tx.timeout_at.is_some_and(|t| t <= now) {
            let report = match (tx.client, tx.state) {
                (true, State::Accepted) => false,      // Timer M
                (true, _) => true,                     // Timer B / F
                (false, State::Completed) => true,     // Timer H: no ACK
                (false, State::Accepted) => !tx.acked, // Timer L
                _ => false,
            };
            self.terminate(id);
            if report {
                self.events.push_back(Event::Timeout { tx: id });
            }
            return;
        }
        if tx.retransmit_at.is_some_and(|t| t <= now) {
            if let Some(bytes) = tx.outgoing.clone() {
                let (d, tr) = (tx.peer, tx.transport);
                // INVITE requests double without bound (Timer A); everything else
                // doubles up to T2 (Timers E and G, and the 2xx retransmission).
                let next = if tx.client && tx.invite {
                    tx.interval * 2
                } else {
                    (tx.interval * 2).min(t2)
                };
                let due = tx.retransmit_at.unwrap_or(now);
                tx.interval = next;
                tx.retransmit_at = Some(due + next);
                self.transmits.push_back(Transmit {
                    dest: d,
                    transport: tr,
                    data: bytes,
                });
            }
        }
    }

    /// After a burst: tables that are mostly empty give their memory back
    /// (a rehash of the few entries left, a small cost once).
    fn shrink(&mut self) {
        self.keys.shrink(self.cfg.capacity);
        self.accepted.shrink(self.cfg.capacity / 4);
        self.timers.shrink();
    }
}
