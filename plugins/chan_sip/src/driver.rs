//! The IO driver around the sans-IO [`Endpoint`] (Asterisk's `do_monitor`,
//! quinn's side of quinn-proto): one task on the plugin's runtime that owns
//! the UDP socket, the TCP connections, the clock, the RTP sockets and the
//! relay thread, and performs what the endpoint asks. It decides nothing:
//!
//! ```text
//! loop {
//!     wait for: a datagram | a TCP event | a core command | the endpoint's timer
//!     endpoint.handle(now, input, &mut env)  (or handle_timeout)
//!     while let Some(output) = endpoint.poll() { perform(output) }
//! }
//! ```

use crate::endpoint::{Endpoint, HostAction, Input, Now, Output};
use crate::host_env::HostEnv;
use crate::metrics::Direction;
use crate::relay::RelayEngine;
use crate::shards::{peek_call_id, shard_of, Home};
use crate::transport::{TcpConnections, TcpEvent};
use crate::{unix_now, Shared};
use parking_lot::Mutex;
use sirius_abi::{Cause, ChannelId};
use sirius_sip::transaction::{Transmit, Transport};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

pub use crate::endpoint::OutboundSetup;

/// Requests to the driver from the console, the module and the channel
/// technology (core threads).
pub enum Command {
    /// `sip qualify peer X`: poke now.
    QualifyNow(String),
    /// The configuration was reloaded: start, stop or restart registrations and pokes.
    Reconcile,
    /// The new `[[register]]` lines of a reload exist (their registrars'
    /// names resolved on a blocking thread, not on the driver's): the
    /// endpoint starts them and drops the lines that left.
    Reconciled,
    /// The module stops: end calls, unregister (Expires: 0), then acknowledge.
    Shutdown(std::sync::mpsc::Sender<()>),
    /// The core answers a call.
    Answer(ChannelId),
    /// The core hangs a call up.
    Hangup(ChannelId, Cause),
    /// The core signals an indication (ringing, busy…).
    Indicate(ChannelId, sirius_abi::Indication),
    /// `request_call` created an outbound channel.
    NewOutbound(OutboundSetup),
    /// `call`: send the INVITE. The answer says at once whether the call was
    /// placed (call-limit refusals are the caller's to see, as `sip_call`
    /// returning -1 is in Asterisk); later failures end the channel.
    Place(ChannelId),
    /// The core bridges two of our channels (of this shard): relay their
    /// RTP. Not waited for (`SipTech::native_bridge` says why).
    Bridge(ChannelId, ChannelId),
    /// The core ended a native bridge (or early-media link) it had asked
    /// for, the legs living on: stop relaying between them.
    Unbridge(ChannelId, ChannelId),
    /// `sip show channels`: this shard's rows, by channel.
    ShowChannels(std::sync::mpsc::Sender<Vec<(ChannelId, Vec<String>)>>),
    /// A host name the endpoint asked for, looked up.
    Resolved(String, u16, Result<SocketAddr, String>),
    /// The relay took a digit (RFC 4733) out of a stream towards this
    /// channel, whose far end takes DTMF as INFO.
    RelayDtmf(ChannelId, char, u32),
    /// The module's use count: calls in progress, from the endpoint.
    Calls(std::sync::mpsc::Sender<u32>),
    /// Datagrams shard 0 read whose Call-IDs belong here, in the order
    /// they came: one command (one wake-up of this shard) per batch read.
    Datagrams(Vec<Handed>),
    /// A message shard 0 framed from a TCP connection, whose Call-ID
    /// belongs here.
    Stream(sirius_sip::message::Message, SocketAddr),
    /// A TCP connection failed: this shard's requests waiting on it get no
    /// answer.
    TransportError(SocketAddr),
    /// Another shard's endpoint asks or tells this one about calls.
    Shard(crate::endpoint::ShardMsg),
    /// The core bridged `chan` (of this shard) with `partner` of shard
    /// `to`: lend `chan`'s media to that shard's relay.
    Lend {
        /// Ours.
        chan: ChannelId,
        /// The other leg's shard.
        to: usize,
        /// The other leg.
        partner: ChannelId,
    },
    /// Shard `from` lends us a leg: its sockets and how to relay it, to be
    /// bridged with our `partner`.
    Borrow {
        /// The leg as the relay needs it.
        leg: Box<crate::endpoint::LegMedia>,
        /// Its sockets.
        media: Box<crate::host_env::CallMedia>,
        /// Ours.
        partner: ChannelId,
        /// The lender.
        from: usize,
    },
    /// A leg we borrowed moved its media (its lender's re-INVITE).
    LentRemote(ChannelId, crate::relay::RemoteMedia),
    /// The lender takes a borrowed leg back: stop relaying it.
    Return(ChannelId),
    /// The borrower let a lent leg go.
    Returned(ChannelId),
    /// `Transfer()`: ask the far end of a call to call this instead.
    Transfer(ChannelId, String),
    /// The hint subscription `0` watches changed to state `1`.
    HintChanged(u64, i32),
    /// The mailboxes `0` watches have counts `1` now.
    MwiChanged(crate::endpoint::MwiTarget, sirius_sip::mwi::Counts),
    /// `sip show subscriptions`: this shard's rows, by Call-ID.
    ShowSubscriptions(std::sync::mpsc::Sender<Vec<(String, Vec<String>)>>),
}

/// A datagram read on shard 0 for another shard: its bytes, its source and
/// the kernel's receive stamp (the other shard's admission reads its wait).
pub struct Handed {
    data: Vec<u8>,
    src: SocketAddr,
    stamp: Option<SystemTime>,
}

/// Brings qualify pokes and outbound registrations in line with the
/// configuration in force (at load, and on reload before the endpoint's
/// [`Input::Reconcile`]): new `[[register]]` lines are created (their
/// registrar's name resolved here, not in the endpoint).
pub fn reconcile(shared: &Shared, now: Instant) {
    let running = shared.running();
    let peers: Vec<&crate::config::Peer> = running.peers.values().collect();
    let freq_ok = Duration::from_secs(u64::from(running.cfg.general.qualifyfreq.max(1)));
    crate::outbound::reconcile_qualify(&mut shared.qualify.lock(), &peers, freq_ok, now);
    let mut regs = shared.outbound.lock();
    // Lines gone from the file are unregistered by the endpoint.
    for line in &running.cfg.register {
        if regs.iter().any(|r| r.cfg == *line) {
            continue;
        }
        match crate::outbound::OutboundReg::new(line.clone(), shared) {
            Ok(r) => regs.push(r),
            Err(e) => log::error!("{e}"),
        }
    }
}

struct Driver {
    ep: Endpoint,
    env: HostEnv,
    home: Home,
    /// This shard's descriptor of the one UDP socket.
    socket: UdpSocket,
    /// SIP over TCP, when `tcpenable` is on: the listener and the
    /// connections' events on shard 0 only (it frames, then forwards by
    /// Call-ID); every shard writes through the one table of connections.
    listener: Option<TcpListener>,
    tcp: Arc<Mutex<TcpConnections>>,
    tcp_events: Option<mpsc::UnboundedReceiver<TcpEvent>>,
    /// Datagrams read here for other shards, by shard, handed over once
    /// per batch read ([`Driver::hand_over`]).
    for_shards: Vec<Vec<Handed>>,
    /// This turn's SIP datagrams, written together at its end.
    sends: crate::outbox::Outbox,
}

/// What one shard's driver runs on.
pub struct ShardIo {
    /// Which shard.
    pub home: Home,
    /// Its descriptor of the UDP socket.
    pub socket: UdpSocket,
    /// The TCP listener (shard 0, `tcpenable`).
    pub listener: Option<TcpListener>,
    /// The connections, shared by the shards.
    pub tcp: Arc<Mutex<TcpConnections>>,
    /// The connections' events (shard 0).
    pub tcp_events: Option<mpsc::UnboundedReceiver<TcpEvent>>,
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        unix: unix_now(),
    }
}

/// A seed for the endpoint's tokens.
fn seed() -> u64 {
    u64::from_str_radix(&sirius_sip::message::build::random_token(), 16).unwrap_or(1)
}

/// Runs one shard until `stop` turns true.
pub async fn run(
    shared: Arc<Shared>,
    io: ShardIo,
    mut stop: watch::Receiver<bool>,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let home = io.home;
    // A digit the relay took out of a stream for an INFO leg comes back
    // here as a command, and the endpoint sends the INFO.
    let relay_shared = shared.clone();
    let report: crate::relay::DtmfReport = Box::new(move |chan, digit, ms| {
        let _ = relay_shared
            .shards
            .send(home.index, Command::RelayDtmf(ChannelId(chan), digit, ms));
    });
    let relay = RelayEngine::start(
        (
            shared.rtp_relayed.clone(),
            shared.rtcp_relayed.clone(),
            shared.stats.rtp_lost.clone(),
        ),
        report,
    )
    .map_err(|e| log::error!("no native RTP bridging: cannot start the relay thread: {e}"))
    .ok();
    let mut d = Driver {
        ep: Endpoint::new(shared.clone(), seed(), Instant::now()).with_home(home),
        env: HostEnv::new(shared, home, relay),
        home,
        socket: io.socket,
        listener: io.listener,
        tcp: io.tcp,
        tcp_events: io.tcp_events,
        for_shards: (0..home.count).map(|_| Vec::new()).collect(),
        sends: crate::outbox::Outbox::default(),
    };
    let mut buf = vec![0u8; 65_536];
    d.ep.start(now(), &mut d.env);
    // Pairs bound ahead, off this thread: a cold start begins warm.
    let ahead = d.env.shared.clone();
    let _ = (home.index == 0).then(|| {
        std::thread::Builder::new()
            .name("rtp-prebind".into())
            .spawn(move || {
                let g = ahead.running().cfg.general.clone();
                ahead.rtp_ports.prebind(
                    ahead.bound.ip(),
                    g.rtpstart,
                    g.rtpend,
                    crate::rtp_ports::PREBIND,
                );
            })
    });
    d.flush();
    d.send_all().await;
    // One timer entry for the loop's life, moved when the endpoint's next
    // deadline moves: a `sleep_until` made afresh each turn registered and
    // removed a timer-wheel entry per datagram.
    let timer = tokio::time::sleep_until(tokio::time::Instant::now() + IDLE);
    tokio::pin!(timer);
    let mut armed: Option<tokio::time::Instant> = None;
    // Set once the timer has fired: it is armed again whatever the deadline.
    let mut fired = false;
    loop {
        let deadline = d.ep.poll_timeout().map(tokio::time::Instant::from_std);
        if fired || deadline != armed {
            fired = false;
            timer
                .as_mut()
                .reset(deadline.unwrap_or_else(|| tokio::time::Instant::now() + IDLE));
            armed = deadline;
        }
        tokio::select! {
            r = recv(&d.socket, &mut buf, home) => match r {
                Ok((n, src, stamp)) => {
                    d.datagram(&buf[..n], src, stamp);
                    d.flush();
                    d.read_more(&mut buf).await;
                }
                Err(e) => log::warn!("UDP receive failed: {e}"),
            },
            r = accept(&d.listener) => match r {
                Ok((stream, peer)) => {
                    let policy = crate::transport::TcpPolicy::of(&d.env.shared.running().cfg.general);
                    d.tcp.lock().adopt(stream, peer, &policy)
                }
                Err(e) => log::warn!("TCP accept failed: {e}"),
            },
            Some(ev) = tcp_event(&mut d.tcp_events) => d.tcp_event(ev),
            _ = &mut timer => {
                fired = true;
                // Nothing due (the idle timer): it only moves on.
                if let Some(due) = armed {
                    let now = now();
                    d.env.shared.lag[home.index].lock().record(due.into_std(), now.mono);
                    d.ep.handle_timeout(now, &mut d.env);
                }
            }
            Some(cmd) = commands.recv() => {
                // The rest of what is queued, up to a batch's worth of
                // inputs (a hand-over of datagrams counts each), before the
                // timers and the socket are looked at again: one wake-up of
                // this thread serves a burst.
                let mut done = d.command(cmd, &mut buf).await;
                while done < BATCH {
                    let Ok(cmd) = commands.try_recv() else { break };
                    d.flush();
                    tokio::task::consume_budget().await;
                    done += d.command(cmd, &mut buf).await;
                }
            }
            _ = stop.changed() => break,
        }
        d.flush();
        d.send_all().await;
    }
}

/// The most datagrams read, or commands taken, in one turn of the loop
/// before its timers and other sources are looked at again.
const BATCH: usize = 32;

/// How far ahead the loop's timer stands when the endpoint has nothing due.
const IDLE: Duration = Duration::from_secs(3600);

impl Driver {
    fn input(&mut self, input: Input<'_>) {
        self.ep.handle(now(), input, &mut self.env);
    }

    fn trace(&self, dir: &str, transport: Transport, peer: SocketAddr, data: &[u8]) {
        if self.env.shared.debug_for(peer) {
            // A VERBOSE line, as chan_sip's ast_verbose: shown whatever the
            // verbose level while `sip set debug` is on.
            sirius_abi::verbose!(
                0,
                "\n<--- SIP {dir} {}:{peer} --->\n{}\n<------------->",
                transport.as_str(),
                String::from_utf8_lossy(data)
            );
        }
    }

    /// A datagram this shard read: handled here, or put aside for the
    /// shard its Call-ID belongs to.
    fn datagram(&mut self, data: &[u8], src: SocketAddr, stamp: Option<SystemTime>) {
        if self.home.count > 1 {
            if let Some(id) = peek_call_id(data) {
                let owner = shard_of(id, self.home.count);
                if owner != self.home.index {
                    self.for_shards[owner].push(Handed {
                        data: data.to_vec(),
                        src,
                        stamp,
                    });
                    return;
                }
            }
        }
        self.datagram_here(data, src, stamp);
    }

    /// After one datagram, the ones already queued behind it (up to
    /// [`BATCH`] in all): read without going back to the runtime, each of
    /// this shard's handled at once (its answers leave with the turn's
    /// `sendmmsg`), the others' handed over together at the end. Under load
    /// a batch is full, and the other shard is woken once per batch, not
    /// once per datagram.
    async fn read_more(&mut self, buf: &mut [u8]) {
        for _ in 1..BATCH {
            let read = self.socket.try_io(tokio::io::Interest::READABLE, || {
                crate::stamped::recv(self.socket.as_fd(), buf)
            });
            match read {
                Ok((n, src, stamp)) => {
                    self.datagram(&buf[..n], src, stamp);
                    self.flush();
                    // Each datagram spends the task's cooperative budget,
                    // as the awaited read did: the runtime still gets to
                    // its timers and other tasks every hundred or so.
                    tokio::task::consume_budget().await;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::warn!("UDP receive failed: {e}");
                    break;
                }
            }
        }
        self.hand_over();
    }

    /// Sends every shard its datagrams put aside, one command each.
    fn hand_over(&mut self) {
        for (owner, batch) in self.for_shards.iter_mut().enumerate() {
            if !batch.is_empty() {
                let batch = std::mem::take(batch);
                let _ = self
                    .env
                    .shared
                    .shards
                    .send(owner, Command::Datagrams(batch));
            }
        }
    }

    /// What the core, the console or another shard asked; returns how many
    /// inputs that was (a hand-over's datagrams each count).
    async fn command(&mut self, cmd: Command, buf: &mut [u8]) -> usize {
        let home = self.home;
        match cmd {
            Command::Shutdown(ack) => {
                self.shutdown(buf).await;
                let _ = ack.send(());
            }
            Command::Place(c) => self.input(Input::Place(c)),
            Command::Calls(reply) => {
                let _ = reply.send(self.ep.calls() as u32);
            }
            Command::ShowChannels(reply) => {
                let _ = reply.send(self.ep.channel_rows());
            }
            Command::Reconcile => {
                // DNS lookups of registrar names may block for seconds:
                // off the thread that carries every call.
                let shared = self.env.shared.clone();
                tokio::task::spawn_blocking(move || {
                    reconcile(&shared, Instant::now());
                    let _ = shared.shards.send(home.index, Command::Reconciled);
                });
            }
            Command::Reconciled => self.input(Input::Reconcile),
            Command::Resolved(host, port, result) => {
                self.input(Input::Resolved { host, port, result })
            }
            Command::RelayDtmf(c, digit, ms) => self.input(Input::RelayDtmf(c, digit, ms)),
            Command::QualifyNow(peer) => self.input(Input::QualifyNow(peer)),
            Command::Answer(c) => self.input(Input::Answer(c)),
            Command::Hangup(c, cause) => self.input(Input::Hangup(c, cause)),
            Command::Indicate(c, ind) => self.input(Input::Indicate(c, ind)),
            Command::NewOutbound(setup) => self.input(Input::NewOutbound(setup)),
            Command::Bridge(a, b) => self.input(Input::Bridge(a, b)),
            Command::Unbridge(a, b) => self.input(Input::Unbridge(a, b)),
            Command::Datagrams(batch) => {
                let n = batch.len();
                for h in batch {
                    self.datagram_here(&h.data, h.src, h.stamp);
                    self.flush();
                    tokio::task::consume_budget().await;
                }
                return n;
            }
            Command::Stream(msg, src) => self.stream_here(msg, src),
            Command::Shard(msg) => self.input(Input::Shard(msg)),
            Command::Lend { chan, to, partner } => self.input(Input::Lend { chan, to, partner }),
            Command::Borrow {
                leg,
                media,
                partner,
                from,
            } => {
                self.env.borrow(leg.chan, from, *media);
                self.input(Input::Borrowed(*leg, partner));
            }
            Command::LentRemote(chan, media) => self
                .env
                .media(crate::endpoint::MediaAction::Remote(chan, media)),
            Command::Return(chan) => self.env.give_back(chan),
            Command::Returned(chan) => self.env.returned(chan),
            Command::Transfer(chan, dest) => self.input(Input::Transfer(chan, dest)),
            Command::HintChanged(key, state) => self.input(Input::HintChanged { key, state }),
            Command::MwiChanged(target, counts) => self.input(Input::MwiChanged { target, counts }),
            Command::ShowSubscriptions(reply) => {
                let _ = reply.send(self.ep.subscription_rows());
            }
            Command::TransportError(peer) => self.input(Input::TransportError {
                peer,
                transport: Transport::Tcp,
            }),
        }
        1
    }

    /// Handles a datagram of this shard's, noting how long it waited since
    /// the kernel received it (admission control reads that).
    fn datagram_here(&mut self, data: &[u8], src: SocketAddr, stamp: Option<SystemTime>) {
        self.trace("read from", Transport::Udp, src, data);
        self.env
            .shared
            .stats
            .count(self.home.index, Direction::Received, data);
        let now = now();
        if stamp.is_some() {
            let waited = crate::stamped::age(stamp);
            let received = now.mono.checked_sub(waited).unwrap_or(now.mono);
            self.env.shared.wait[self.home.index]
                .lock()
                .record(received, now.mono);
        }
        self.ep
            .handle(now, Input::Datagram { data, src }, &mut self.env);
    }

    fn stream_here(&mut self, msg: sirius_sip::message::Message, peer: SocketAddr) {
        if let Some(code) = msg.code() {
            self.env
                .shared
                .stats
                .count_code(self.home.index, Direction::Received, code);
        }
        if self.env.shared.debug_for(peer) {
            self.trace("read from", Transport::Tcp, peer, &msg.to_bytes());
        }
        self.input(Input::Stream { msg, src: peer });
    }

    /// What the TCP connections report (shard 0 only).
    fn tcp_event(&mut self, ev: TcpEvent) {
        match ev {
            TcpEvent::Message(msg, peer) => {
                let owner = msg.call_id().map_or(self.home.index, |id| {
                    shard_of(id.as_bytes(), self.home.count)
                });
                if owner == self.home.index {
                    self.stream_here(msg, peer);
                } else {
                    let _ = self
                        .env
                        .shared
                        .shards
                        .send(owner, Command::Stream(msg, peer));
                }
            }
            TcpEvent::Ping(peer) => self.tcp.lock().send_on_open(peer, b"\r\n".to_vec()),
            TcpEvent::Closed { peer, id, error } => {
                if !self.tcp.lock().closed(peer, id) {
                    return;
                }
                match error {
                    None => log::debug!("SIP/TCP: {peer} closed the connection"),
                    Some(e) => {
                        log::warn!("SIP/TCP connection with {peer} failed: {e}");
                        for k in (0..self.home.count).filter(|&k| k != self.home.index) {
                            let _ = self
                                .env
                                .shared
                                .shards
                                .send(k, Command::TransportError(peer));
                        }
                        self.input(Input::TransportError {
                            peer,
                            transport: Transport::Tcp,
                        });
                    }
                }
            }
        }
    }

    /// Performs everything the endpoint asked for.
    ///
    /// What the host actions wake in the core (a dialplan in `Dial` whose
    /// callee rang or answered) runs on this thread at the end, not on a
    /// PBX worker woken for it (`sirius_core::deferred` says why): the
    /// actions are the turn, marked only around this synchronous loop so
    /// that the marking can never outlive it. The plan's requests to us
    /// come back as commands, for the next turn.
    fn flush(&mut self) {
        let mut turn = false;
        while let Some(o) = self.ep.poll() {
            match o {
                Output::Transmit(t) => self.transmit(t),
                Output::Host(h) => {
                    if !turn {
                        turn = true;
                        self.env.shared.host.turn_started();
                    }
                    self.host(h)
                }
                Output::Media(m) => self.env.media(m),
                Output::Trusted(peer) => self.tcp.lock().trust(peer),
                Output::Shard(k, msg) => {
                    if self.env.shared.shards.send(k, Command::Shard(msg)).is_err() {
                        log::warn!("SIP thread {k} is gone: a message for it is dropped");
                    }
                }
                // A lookup may block for seconds: on a blocking thread, the
                // answer back through the command queue.
                Output::Resolve { host, port } => {
                    let shared = self.env.shared.clone();
                    let home = self.home.index;
                    tokio::task::spawn_blocking(move || {
                        let result = crate::config::resolve_host(&host, port);
                        let _ = shared
                            .shards
                            .send(home, Command::Resolved(host, port, result));
                    });
                }
            }
        }
        if turn {
            self.env.shared.host.turn_ended();
        }
        self.env
            .shared
            .stats
            .set_transactions(self.home.index, self.ep.transaction_count());
    }

    fn transmit(&mut self, t: Transmit) {
        self.trace("send to", t.transport, t.dest, &t.data);
        self.env
            .shared
            .stats
            .count(self.home.index, Direction::Sent, &t.data);
        match t.transport {
            // Written at the end of the turn ([`Driver::send_all`]).
            Transport::Udp => self.sends.push(t.data, t.dest),
            Transport::Tcp => self.tcp.lock().send(t.dest, t.data),
        }
    }

    /// Writes the turn's datagrams (`crate::outbox` says why together),
    /// waiting for room in the socket's buffer if it is full.
    async fn send_all(&mut self) {
        let (socket, sends) = (&self.socket, &mut self.sends);
        while !sends.is_empty() {
            // Through the runtime's readiness, so that a full buffer clears
            // it and `writable` then waits for room.
            let sent = socket.try_io(tokio::io::Interest::WRITABLE, || {
                sends.send(socket.as_fd(), &mut |dest, e| {
                    log::warn!("UDP send to {dest} failed: {e}")
                })
            });
            if sent.is_ok() {
                break;
            }
            if let Err(e) = socket.writable().await {
                log::warn!("UDP socket not writable: {e}");
                break;
            }
        }
    }

    fn host(&self, action: HostAction) {
        let host = &self.env.shared.host;
        match action {
            HostAction::SetState(c, state) => host.channel_set_state(c, state),
            HostAction::Progress(c) => host.queue_frame(
                c,
                sirius_abi::Frame::control(sirius_abi::Indication::Progress),
            ),
            HostAction::SetCodecs(c, codecs) => host.channel_set_codecs(c, &codecs),
            HostAction::Dtmf(c, digit, ms) => {
                host.queue_frame(c, sirius_abi::Frame::dtmf_end(digit, ms))
            }
            HostAction::DeviceState(device, state) => host.device_state_changed(&device, state),
            HostAction::HintUnwatch(id) => host.hint_unwatch(id),
            HostAction::MwiUnwatch(id) => host.mwi_unwatch(id),
            HostAction::Hangup(c, cause) => host.channel_hangup(c, cause),
            HostAction::TransferResult(c, result) => host.channel_transfer_result(c, result),
            HostAction::StartPbx(c) => {
                if let Err(cause) = host.pbx_start(c) {
                    // The core frees the channel; our leg ends with a BYE.
                    host.channel_hangup(c, cause);
                    let home = self.home.index;
                    let _ = self.env.shared.shards.send(home, Command::Hangup(c, cause));
                }
            }
            HostAction::Event { name, fields } => {
                let fields: Vec<(&str, String)> = fields;
                host.post_event(name, &fields);
            }
        }
    }

    /// Module unload: every call ends, every line unregisters, every
    /// subscription gets its final NOTIFY; the answers are waited for, a
    /// second at most.
    async fn shutdown(&mut self, buf: &mut [u8]) {
        self.input(Input::Shutdown);
        self.flush();
        self.send_all().await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1000);
        while self.ep.unregistering() || self.ep.subscriptions_ending() {
            tokio::select! {
                r = recv(&self.socket, buf, self.home) => if let Ok((n, src, stamp)) = r {
                    self.datagram(&buf[..n], src, stamp);
                    self.hand_over();
                },
                Some(ev) = tcp_event(&mut self.tcp_events) => self.tcp_event(ev),
                _ = tokio::time::sleep_until(deadline) => break,
            }
            self.flush();
            self.send_all().await;
        }
        if self.home.index == 0 {
            self.tcp.lock().close_all();
        }
    }
}

/// The next connection on the TCP listener; never, without one.
async fn accept(
    listener: &Option<TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The next datagram, on shard 0; never, on the others. One reader keeps
/// each call's messages in the order they came: with every shard reading,
/// a message passed on to its shard could be overtaken by the next one of
/// the same call read there directly (a 200 handled before its 180, an ACK
/// before its 200). Shard 0 pays the `recvfrom` of every datagram and the
/// hand-over of half of them, a few µs against the 25 or so each costs to
/// handle.
async fn recv(
    socket: &UdpSocket,
    buf: &mut [u8],
    home: Home,
) -> std::io::Result<(usize, SocketAddr, Option<SystemTime>)> {
    match home.index {
        0 => {
            socket
                .async_io(tokio::io::Interest::READABLE, || {
                    crate::stamped::recv(socket.as_fd(), buf)
                })
                .await
        }
        _ => std::future::pending().await,
    }
}

/// The next TCP event, on the shard that has them; never, on the others.
async fn tcp_event(events: &mut Option<mpsc::UnboundedReceiver<TcpEvent>>) -> Option<TcpEvent> {
    match events {
        Some(e) => e.recv().await,
        None => std::future::pending().await,
    }
}
