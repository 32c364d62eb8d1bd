//! Transactions (RFC 3261 §17, with RFC 6026's Accepted state), sans-IO.
//!
//! The layer is driven like quinn-proto: [`TransactionLayer::on_message`] with
//! what arrived, [`TransactionLayer::handle_timeout`] when
//! [`TransactionLayer::poll_timeout`] says so, and commands
//! ([`TransactionLayer::send_request`], [`TransactionLayer::respond`],
//! [`TransactionLayer::cancel`]); it answers through
//! [`TransactionLayer::poll_transmit`] and [`TransactionLayer::poll_event`].
//! Time is always passed in; nothing here reads a clock.
//!
//! ```text
//!  client INVITE                      server INVITE
//!  Calling --1xx--> Proceeding        Proceeding --2xx--> Accepted --L--> Terminated
//!     |  \--2xx--> Accepted --M-->T      |   \--3xx-6xx--> Completed --ACK--> Confirmed --I--> T
//!     |--3xx-6xx (send ACK)--> Completed --D--> Terminated            \--H (no ACK)--> T
//!     \--B (timeout)--> Terminated
//!
//!  client non-INVITE                  server non-INVITE
//!  Trying --1xx--> Proceeding         Trying --1xx--> Proceeding
//!     \--final--> Completed --K--> T     \--final--> Completed --J--> Terminated
//!     \--F (timeout)--> Terminated
//! ```
//!
//! Retransmissions of requests are absorbed and answered with the stored
//! response; the 2xx to an INVITE is retransmitted by the layer (T1 doubling,
//! capped at T2) until the ACK arrives or 64·T1 passes (RFC 3261 §13.3.1.4).

mod key;

use crate::message::build;
use crate::message::{Message, Method};
use key::{client_key, server_key};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Timer values (RFC 3261 §17.1.1.1 and table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum duration a message remains in the network, 5 s.
    pub t4: Duration,
    /// Send `100 Trying` as soon as an INVITE arrives.
    pub auto_trying: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            auto_trying: true,
        }
    }
}

/// Transport class: timers differ for reliable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: the layer retransmits.
    Udp,
    /// TCP: no retransmissions, zero linger timers.
    Tcp,
}

impl Transport {
    /// Whether the transport is reliable.
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The Via transport token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Reads a transport name as configuration files and URI `transport=`
    /// parameters write it (any case): `udp`, `tcp`.
    pub fn parse(s: &str) -> Option<Transport> {
        if s.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else {
            None
        }
    }

    /// The URI parameter that selects this transport (`;transport=tcp`); empty
    /// for UDP, the default a URI without the parameter means.
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        }
    }
}

/// A transaction handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub dest: SocketAddr,
    /// Over what.
    pub transport: Transport,
    /// The serialised message.
    pub data: Vec<u8>,
}

/// What the transaction user (dialog layer, chan_sip) must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new request (server transaction created). For CANCEL, `cancels` names
    /// the INVITE server transaction it matches, if any (else answer 481).
    Request {
        /// The new server transaction.
        tx: TxId,
        /// The request.
        msg: Message,
        /// Where it came from.
        source: SocketAddr,
        /// Transport it came over.
        transport: Transport,
        /// For CANCEL: the INVITE transaction it cancels.
        cancels: Option<TxId>,
    },
    /// An ACK that is not part of a transaction: the ACK for a 2xx (`tx` is the
    /// INVITE server transaction whose 2xx it acknowledges), or a stray one.
    Ack {
        /// The INVITE transaction acknowledged, if known.
        tx: Option<TxId>,
        /// The ACK (may carry the answer SDP of a late offer).
        msg: Message,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A response for a client transaction (provisional, final, or a 2xx
    /// retransmission in Accepted: the TU re-sends its ACK).
    Response {
        /// The client transaction.
        tx: TxId,
        /// The response.
        msg: Message,
    },
    /// Timer B/F (client: act as on 408), H (server: no ACK for our error
    /// response) or L without ACK for our 2xx (server: send BYE).
    Timeout {
        /// The transaction.
        tx: TxId,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The request has no usable top Via branch.
    #[error("request has no Via branch")]
    NoBranch,
    /// A transaction with this key exists already.
    #[error("transaction already exists")]
    Duplicate,
    /// No such transaction (ended, or never existed).
    #[error("no transaction {0:?}")]
    Unknown(TxId),
    /// The transaction already sent its final response.
    #[error("transaction {0:?} already has a final response")]
    AlreadyFinal(TxId),
    /// Not a server transaction / not a client INVITE, as the command requires.
    #[error("wrong kind of transaction for this command")]
    WrongKind,
}

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
    key: String,
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
    request: Option<Message>,
    /// Client: the request bytes. Server: the last response bytes.
    outgoing: Option<Vec<u8>>,
    /// Client INVITE: the ACK bytes once sent.
    ack: Option<Vec<u8>>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    timeout_at: Option<Instant>,
    terminate_at: Option<Instant>,
    scheduled: Option<Instant>,
    cancel_pending: bool,
    acked: bool,
    dialog_key: Option<(String, u32)>,
}

impl Tx {
    fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.terminate_at]
            .into_iter()
            .flatten()
            .min()
    }
}

/// All transactions of one endpoint.
#[derive(Debug)]
pub struct TransactionLayer {
    cfg: Config,
    txs: HashMap<TxId, Tx>,
    keys: HashMap<String, TxId>,
    /// (Call-ID, CSeq) of INVITE server transactions whose 2xx awaits its ACK.
    accepted: HashMap<(String, u32), TxId>,
    timers: BTreeSet<(Instant, TxId)>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new(cfg: Config) -> TransactionLayer {
        TransactionLayer {
            cfg,
            txs: HashMap::new(),
            keys: HashMap::new(),
            accepted: HashMap::new(),
            timers: BTreeSet::new(),
            next_id: 1,
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
        self.txs.is_empty()
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
        self.timers.iter().next().map(|(t, _)| *t)
    }

    /// The request a transaction was created for.
    pub fn request(&self, tx: TxId) -> Option<&Message> {
        self.txs.get(&tx).and_then(|t| t.request.as_ref())
    }

    fn alloc(&mut self) -> TxId {
        let id = TxId(self.next_id);
        self.next_id += 1;
        id
    }

    fn reschedule(&mut self, id: TxId) {
        let Some(tx) = self.txs.get_mut(&id) else {
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
        if let Some(old) = tx.scheduled.take() {
            self.timers.remove(&(old, id));
        }
        if let Some(at) = tx.next_deadline() {
            tx.scheduled = Some(at);
            self.timers.insert((at, id));
        }
    }

    fn terminate(&mut self, id: TxId) {
        if let Some(tx) = self.txs.remove(&id) {
            self.keys.remove(&tx.key);
            if let Some(s) = tx.scheduled {
                self.timers.remove(&(s, id));
            }
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
        let key = client_key(&req).ok_or(TxError::NoBranch)?;
        if self.keys.contains_key(&key) {
            return Err(TxError::Duplicate);
        }
        let invite = req.method() == Some(&Method::Invite);
        let bytes = req.to_bytes();
        let t1 = self.cfg.t1;
        let id = self.alloc();
        let tx = Tx {
            key: key.clone(),
            client: true,
            invite,
            state: if invite {
                State::Calling
            } else {
                State::Trying
            },
            peer: dest,
            transport,
            request: Some(req),
            outgoing: Some(bytes.clone()),
            ack: None,
            retransmit_at: (!transport.is_reliable()).then(|| now + t1),
            interval: t1,
            timeout_at: Some(now + 64 * t1),
            terminate_at: None,
            scheduled: None,
            cancel_pending: false,
            acked: false,
            dialog_key: None,
        };
        self.txs.insert(id, tx);
        self.keys.insert(key, id);
        self.reschedule(id);
        self.send(dest, transport, bytes);
        Ok(id)
    }

    /// Cancels a client INVITE (§9.1). Before any provisional response the CANCEL
    /// is held and sent when one arrives; after a final response it is not sent.
    /// Returns the CANCEL's own transaction when it went out now.
    pub fn cancel(&mut self, now: Instant, invite: TxId) -> Result<Option<TxId>, TxError> {
        let tx = self.txs.get_mut(&invite).ok_or(TxError::Unknown(invite))?;
        if !tx.client || !tx.invite {
            return Err(TxError::WrongKind);
        }
        match tx.state {
            State::Calling => {
                tx.cancel_pending = true;
                Ok(None)
            }
            State::Proceeding => {
                let Some(request) = &tx.request else {
                    return Ok(None);
                };
                let c = build::cancel(request);
                let (dest, transport) = (tx.peer, tx.transport);
                self.send_request(now, c, dest, transport).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Sends a response on a server transaction.
    pub fn respond(&mut self, now: Instant, id: TxId, resp: &Message) -> Result<(), TxError> {
        let t1 = self.cfg.t1;
        let tx = self.txs.get_mut(&id).ok_or(TxError::Unknown(id))?;
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
            let request = tx.request.as_ref();
            let key = (
                request
                    .and_then(|r| r.call_id())
                    .unwrap_or_default()
                    .to_string(),
                request.and_then(|r| r.cseq()).map_or(0, |c| c.seq),
            );
            tx.dialog_key = Some(key.clone());
            accepted_key = Some(key);
        } else if tx.invite {
            tx.state = State::Completed;
            tx.retransmit_at = unreliable.then(|| now + t1);
            tx.interval = t1;
            tx.timeout_at = Some(now + 64 * t1);
        } else {
            tx.state = State::Completed;
            tx.terminate_at = Some(if unreliable { now + 64 * t1 } else { now });
        }
        if let Some(k) = accepted_key {
            self.accepted.insert(k, id);
        }
        self.reschedule(id);
        self.send(dest, transport, bytes);
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
    }

    fn on_request(&mut self, now: Instant, msg: Message, source: SocketAddr, transport: Transport) {
        let Some(key) = server_key(&msg) else { return };
        let method = msg.method().cloned().unwrap_or(Method::Ack);
        if method == Method::Ack {
            if let Some(&id) = self.keys.get(&key) {
                // ACK for our 3xx–6xx: absorbed.
                let (t4, reliable) = (self.cfg.t4, transport.is_reliable());
                let state = self.txs.get(&id).map(|tx| tx.state);
                if state == Some(State::Completed) {
                    if let Some(tx) = self.txs.get_mut(&id) {
                        tx.state = State::Confirmed;
                        tx.retransmit_at = None;
                        tx.timeout_at = None;
                        tx.terminate_at = Some(if reliable { now } else { now + t4 });
                    }
                    self.reschedule(id);
                }
                if state.is_some() && state != Some(State::Accepted) {
                    return;
                }
            }
            // ACK for a 2xx: end to end, matched by Call-ID and CSeq.
            let dk = (
                msg.call_id().unwrap_or_default().to_string(),
                msg.cseq().map_or(0, |c| c.seq),
            );
            let tx = self.accepted.get(&dk).copied();
            if let Some(id) = tx {
                if let Some(t) = self.txs.get_mut(&id) {
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
            if let Some(tx) = self.txs.get(&id) {
                if let Some(bytes) = tx.outgoing.clone() {
                    let (dest, tr) = (tx.peer, tx.transport);
                    self.send(dest, tr, bytes);
                }
            }
            return;
        }
        let id = self.alloc();
        let invite = method == Method::Invite;
        let cancels = if method == Method::Cancel {
            key::invite_key_for_cancel(&msg).and_then(|k| self.keys.get(&k).copied())
        } else {
            None
        };
        self.txs.insert(
            id,
            Tx {
                key: key.clone(),
                client: false,
                invite,
                state: if invite {
                    State::Proceeding
                } else {
                    State::Trying
                },
                peer: source,
                transport,
                request: Some(msg.clone()),
                outgoing: None,
                ack: None,
                retransmit_at: None,
                interval: self.cfg.t1,
                timeout_at: None,
                terminate_at: None,
                scheduled: None,
                cancel_pending: false,
                acked: false,
                dialog_key: None,
            },
        );
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
        let Some(key) = client_key(&msg) else { return };
        let Some(&id) = self.keys.get(&key) else {
            return;
        };
        let code = msg.code().unwrap_or(0);
        let (t1, t2, t4) = (self.cfg.t1, self.cfg.t2, self.cfg.t4);
        let Some(tx) = self.txs.get_mut(&id) else {
            return;
        };
        let reliable = tx.transport.is_reliable();
        let mut send_cancel = false;
        let mut deliver = true;
        if tx.invite {
            match (tx.state, code) {
                (State::Calling | State::Proceeding, 100..=199) => {
                    if tx.state == State::Calling && tx.cancel_pending {
                        send_cancel = true;
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
                    tx.terminate_at = Some(if reliable {
                        now
                    } else {
                        now + Duration::from_secs(32)
                    });
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
                    tx.terminate_at = Some(if reliable { now } else { now + t4 });
                }
                _ => deliver = false,
            }
        }
        self.reschedule(id);
        if deliver {
            self.events.push_back(Event::Response { tx: id, msg });
        }
        if send_cancel {
            let _ = self.cancel(now, id);
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
            .map(|(id, _)| *id)
            .collect();
        failed.sort();
        for id in failed {
            self.terminate(id);
            self.events.push_back(Event::Timeout { tx: id });
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.timers.iter().next() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, id));
            if let Some(tx) = self.txs.get_mut(&id) {
                tx.scheduled = None;
            }
            self.fire(now, id);
            self.reschedule(id);
        }
    }

    fn fire(&mut self, now: Instant, id: TxId) {
        let t2 = self.cfg.t2;
        let Some(tx) = self.txs.get_mut(&id) else {
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
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // simulated clocks start from one real Instant
mod tests;
