//! The monitor: one task on the plugin's runtime that owns the socket and the
//! transaction layer (Asterisk's `do_monitor`). Datagrams in, timers, and the
//! transaction user: what to answer to each request.

use crate::causes::cause_to_sip;
use crate::config::{General, Peer, PeerType};
use crate::registrar::AuthOutcome;
use crate::transport::{TcpConnections, TcpEvent};
use crate::{unix_now, Shared};
use sirius_abi::{ChannelSpec, ChannelState, Direction};
use sirius_sip::dialog::{Classified, DialogTable};
use sirius_sip::message::{
    build, parse_datagram, HeaderName, Limits, Message, Method, ParseError, Uri,
};
use sirius_sip::registration::RegState;
use sirius_sip::sdp::negotiate::{answer as sdp_answer, LocalMedia};
use sirius_sip::sdp::{Direction as SdpDirection, SessionDescription};
use sirius_sip::transaction::{Config, Event, TransactionLayer, Transport, TxId};
use sirius_sip::validate::{inspect_request, inspect_response, Capabilities};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

/// The methods this driver answers today; others get 501 with this Allow list.
pub fn capabilities() -> Capabilities {
    use Method::*;
    Capabilities {
        methods: vec![Invite, Ack, Cancel, Options, Bye, Register],
        ..Capabilities::default()
    }
}

/// Seconds a caller refused for load (503) is asked to wait.
const RETRY_AFTER_SECS: u32 = 2;

/// `Accept`, `Supported` as we really support them.
const ACCEPT: &str = "application/sdp";
const SUPPORTED: &str = "replaces, timer";

/// Requests to the monitor from the console and the module.
pub enum Command {
    /// `sip qualify peer X`: poke now.
    QualifyNow(String),
    /// The configuration was reloaded: start, stop or restart registrations and pokes.
    Reconcile,
    /// The module stops: unregister (Expires: 0), then acknowledge.
    Shutdown(std::sync::mpsc::Sender<()>),
    /// The core answers a call.
    Answer(sirius_abi::ChannelId),
    /// The core hangs a call up.
    Hangup(sirius_abi::ChannelId, sirius_abi::Cause),
    /// The core signals an indication (ringing, busy…).
    Indicate(sirius_abi::ChannelId, sirius_abi::Indication),
    /// `request_call` created an outbound channel.
    NewOutbound(OutboundSetup),
    /// `call`: send the INVITE. The answer says at once whether the call was
    /// placed (call-limit refusals are the caller's to see, as `sip_call`
    /// returning -1 is in Asterisk); later failures end the channel.
    Place(
        sirius_abi::ChannelId,
        std::sync::mpsc::Sender<Result<(), sirius_abi::Cause>>,
    ),
    /// The core bridged two of our channels: relay their RTP.
    Bridge(sirius_abi::ChannelId, sirius_abi::ChannelId),
    /// `sip show channels`: the table, built from the monitor's own call state
    /// (the monitor owns the dialogs; a mirror in `Shared` would drift).
    ShowChannels(std::sync::mpsc::Sender<String>),
}

/// What `request_call` resolved for an outbound leg.
pub struct OutboundSetup {
    /// The core's channel.
    pub chan: sirius_abi::ChannelId,
    /// Where the INVITE goes.
    pub dest: SocketAddr,
    /// Over what: the peer's first `transport`, or the one it registered with.
    pub transport: Transport,
    /// Request-URI.
    pub ruri: String,
    /// The peer it counts against.
    pub peer: Option<String>,
    /// The channel's name (`SIP/bob-00000002`), for log lines.
    pub name: String,
    /// Codecs to offer, best first.
    pub codecs: Vec<sirius_abi::Codec>,
    /// Caller ID number for From.
    pub caller: String,
    /// The caller's name, the From display name (empty: none).
    pub caller_name: String,
}

/// A call we place (Dial).
struct OutboundCall {
    setup: OutboundSetup,
    tx: Option<TxId>,
    invite: Option<Message>,
    rtp: Arc<std::net::UdpSocket>,
    /// The RTCP socket, on the port after `rtp`.
    rtcp: Arc<std::net::UdpSocket>,
    /// The pair's place in the port range, given back with the call.
    _ports: crate::rtp_ports::PortLease,
    dialog: Option<sirius_sip::dialog::DialogId>,
    ack: Option<Message>,
    /// The callee's media as its answer in the 2xx describes it.
    remote: crate::relay::RemoteMedia,
    /// Challenges answered so far: one retry per challenge, as Asterisk does,
    /// so wrong credentials end the call instead of looping.
    auth_attempts: u8,
    /// 3xx redirects followed so far (bounded by [`MAX_REDIRECTS`]).
    redirects: u8,
    /// `Tx: INVITE`, `Rx: BYE`…: the last request either way (`sip show channels`).
    last_msg: String,
    /// The far end put us on hold.
    held: bool,
    /// Our last hold/unhold re-INVITE on this leg (its owner entry goes with the call).
    reinvite: Option<TxId>,
    /// chan_sip's auto-congest timer for peers with `qualify`: no response at
    /// all by this instant (4 × the peer's maximum round trip) congests the
    /// call. Without qualify, Timer B (64 × T1) plays this part.
    congest_at: Option<Instant>,
}

/// What an answered call keeps of its INVITE: the request line, From and
/// Call-ID, for `sip show channels`. The whole request (SDP included, about
/// 2 KB) is needed only until the final response — for provisional and
/// final responses, CANCEL, a retry after a challenge or a redirect — and
/// then for as long as the call is up, which made it the largest part of a
/// held call's memory.
fn invite_summary(invite: &Message) -> Message {
    let mut m = Message::request(Method::Invite, invite.request_uri().unwrap_or(""));
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            m.push(name, v);
        }
    }
    m
}

/// Redirects one outbound call may follow: enough for a forwarding chain,
/// few enough that two servers redirecting to each other cannot loop us.
const MAX_REDIRECTS: u8 = 5;

/// An incoming call handed to the dialplan.
struct InboundCall {
    /// The INVITE server transaction, answered when the dialplan decides.
    tx: TxId,
    invite: Message,
    source: SocketAddr,
    /// The transport the INVITE came over: our requests in the dialog use it.
    transport: Transport,
    local_tag: String,
    /// A final response went out (200, 486…).
    final_sent: bool,
    /// The RTP port reserved for the call (media relay comes with bridging).
    rtp: Arc<std::net::UdpSocket>,
    /// The RTCP socket, on the port after `rtp`.
    rtcp: Arc<std::net::UdpSocket>,
    /// The pair's place in the port range, given back with the call.
    _ports: crate::rtp_ports::PortLease,
    codecs: Vec<sirius_abi::Codec>,
    dialog: Option<sirius_sip::dialog::DialogId>,
    /// The peer the call counts against (call-limit, `sip show inuse`).
    peer: Option<String>,
    /// The caller's media as its offer (or its answer in the ACK) describes it.
    remote: crate::relay::RemoteMedia,
    /// `Rx: INVITE`, `Tx: BYE`…: the last request either way (`sip show channels`).
    last_msg: String,
    /// The far end put us on hold.
    held: bool,
    /// Our last hold/unhold re-INVITE on this leg (its owner entry goes with the call).
    reinvite: Option<TxId>,
}

/// Who started a client transaction.
enum Owner {
    Poke(String),
    Register(usize),
    /// The INVITE of an outbound call.
    Outbound(sirius_abi::ChannelId),
    /// Our BYE: nothing to do with the answer.
    Bye,
    /// Our re-INVITE passing a hold or unhold on to this leg; the ACK for
    /// its 2xx once sent, to answer the 2xx's retransmissions with.
    ReInvite {
        chan: sirius_abi::ChannelId,
        ack: Option<Message>,
    },
    /// The INVITE of an outbound call we hung up while it rang (CANCEL
    /// sent): a 2xx that crosses the CANCEL still makes a call, which we
    /// must ACK and then end with a BYE (RFC 3261 §9.1, §15).
    Cancelled {
        invite: Message,
        dest: SocketAddr,
        transport: Transport,
    },
}

/// A native bridge (or echo) as the monitor keeps it: listed under both of
/// its channels, the relay handles under the first, so that whichever leg
/// ends first removes it once.
struct NativeBridge {
    partner: sirius_abi::ChannelId,
    handles: Vec<crate::relay::RelayHandle>,
}

/// What an inbound and an outbound call have in common, for the code that
/// serves a leg either way (media, in-dialog requests): see [`Monitor::leg_view`].
struct LegView<'a> {
    dialog: Option<&'a sirius_sip::dialog::DialogId>,
    transport: Transport,
    /// Where in-dialog requests go when the route set names no first hop.
    dest: SocketAddr,
    rtp: &'a Arc<std::net::UdpSocket>,
    rtcp: &'a Arc<std::net::UdpSocket>,
    codecs: &'a [sirius_abi::Codec],
    peer: Option<&'a str>,
    remote: &'a crate::relay::RemoteMedia,
    reinvite: Option<TxId>,
}

impl LegView<'_> {
    fn rtp_port(&self) -> u16 {
        self.rtp.local_addr().map_or(0, |a| a.port())
    }
}

struct Monitor {
    shared: Arc<Shared>,
    socket: UdpSocket,
    /// SIP over TCP, when `tcpenable` is on.
    listener: Option<TcpListener>,
    tcp: TcpConnections,
    tcp_events: mpsc::UnboundedReceiver<TcpEvent>,
    layer: TransactionLayer,
    dialogs: DialogTable,
    caps: Capabilities,
    owners: std::collections::HashMap<TxId, Owner>,
    calls: std::collections::HashMap<sirius_abi::ChannelId, InboundCall>,
    outbound: std::collections::HashMap<sirius_abi::ChannelId, OutboundCall>,
    /// The packet mover of native bridges and echoes (none if its thread
    /// could not start: calls then go up without media).
    relay: Option<crate::relay::RelayEngine>,
    /// Running native bridges and echoes, by each of their channels.
    relays: std::collections::HashMap<sirius_abi::ChannelId, NativeBridge>,
    /// Inbound calls by their INVITE server transaction, and calls either way
    /// by dialog: indexes, so that no event costs a scan of every call.
    by_tx: std::collections::HashMap<TxId, sirius_abi::ChannelId>,
    by_dialog: std::collections::HashMap<sirius_sip::dialog::DialogId, sirius_abi::ChannelId>,
    /// Calls whose core channel was missing at the last sweep.
    orphans: std::collections::HashSet<sirius_abi::ChannelId>,
    /// Auto-congest deadlines, soonest first. An entry stays when its call
    /// gets an answer (or ends) and is dropped when it comes due: checked
    /// against the call's `congest_at` then. (A scan of every outbound call
    /// per event made each event cost O(calls) once calls piled up.)
    congest_timers: std::collections::BTreeSet<(Instant, sirius_abi::ChannelId)>,
}

/// Brings qualify pokes and outbound registrations in line with the
/// configuration in force (at load, and on reload through [`Command::Reconcile`]).
pub fn reconcile(shared: &Shared) {
    let running = shared.running();
    let peers: Vec<&crate::config::Peer> = running.peers.values().collect();
    let freq_ok = Duration::from_secs(u64::from(running.cfg.general.qualifyfreq.max(1)));
    crate::outbound::reconcile_qualify(&mut shared.qualify.lock(), &peers, freq_ok, Instant::now());
    let mut regs = shared.outbound.lock();
    // Lines gone from the file are unregistered by the monitor (see `Monitor::reconcile`).
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

/// Runs until `stop` turns true.
pub async fn run(
    shared: Arc<Shared>,
    socket: UdpSocket,
    listener: Option<TcpListener>,
    mut stop: watch::Receiver<bool>,
    mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
) {
    let t1 = Duration::from_millis(shared.running().cfg.general.t1.max(1));
    let (tcp_tx, tcp_events) = mpsc::unbounded_channel();
    let mut m = Monitor {
        shared: shared.clone(),
        socket,
        listener,
        tcp: TcpConnections::new(tcp_tx),
        tcp_events,
        layer: TransactionLayer::new(Config {
            t1,
            ..Config::default()
        }),
        dialogs: DialogTable::default(),
        caps: capabilities(),
        owners: std::collections::HashMap::new(),
        calls: std::collections::HashMap::new(),
        outbound: std::collections::HashMap::new(),
        relay: crate::relay::RelayEngine::start(
            shared.rtp_relayed.clone(),
            shared.rtcp_relayed.clone(),
        )
        .map_err(|e| log::error!("no native RTP bridging: cannot start the relay thread: {e}"))
        .ok(),
        relays: std::collections::HashMap::new(),
        by_tx: std::collections::HashMap::new(),
        by_dialog: std::collections::HashMap::new(),
        orphans: std::collections::HashSet::new(),
        congest_timers: std::collections::BTreeSet::new(),
    };
    let mut buf = vec![0u8; 65_536];
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    m.start_registrations();
    loop {
        let deadline = m.next_deadline().map(tokio::time::Instant::from_std);
        tokio::select! {
            r = m.socket.recv_from(&mut buf) => match r {
                Ok((n, src)) => m.on_datagram(&buf[..n], src),
                Err(e) => log::warn!("UDP receive failed: {e}"),
            },
            r = accept(&m.listener) => match r {
                Ok((stream, peer)) => m.tcp.adopt(stream, peer),
                Err(e) => log::warn!("TCP accept failed: {e}"),
            },
            Some(ev) = m.tcp_events.recv() => m.on_tcp_event(ev),
            _ = sleep_until(deadline) => m.on_timers(Instant::now()),
            Some(cmd) = commands.recv() => match cmd {
                Command::QualifyNow(peer) => m.poke(&peer, Instant::now()),
                Command::Reconcile => m.reconcile(),
                Command::Shutdown(ack) => {
                    // Both directions: a forced unload must not leave a far end
                    // holding a call nobody will ever end.
                    let chans: Vec<_> = m.calls.keys().chain(m.outbound.keys()).copied().collect();
                    for c in chans {
                        m.hangup_call(c, sirius_abi::Cause::NORMAL_CLEARING);
                        m.shared.host.channel_hangup(c, sirius_abi::Cause::NORMAL_CLEARING);
                    }
                    m.unregister_all(&mut buf).await;
                    m.tcp.close_all();
                    let _ = ack.send(());
                }
                Command::Answer(c) => m.answer_call(c),
                Command::Hangup(c, cause) => m.hangup_call(c, cause),
                Command::Indicate(c, ind) => m.indicate_call(c, ind),
                Command::NewOutbound(setup) => m.new_outbound(setup),
                Command::Place(c, reply) => {
                    let _ = reply.send(m.place_call(c));
                }
                Command::Bridge(a, b) => m.start_relay(a, b),
                Command::ShowChannels(reply) => {
                    let _ = reply.send(m.show_channels());
                }
            },
            _ = housekeeping.tick() => {
                let gone = m.shared.registrar.lock().expire(unix_now());
                for peer in gone {
                    m.shared.host.post_event("PeerStatus", &[("Peer", format!("SIP/{peer}")), ("PeerStatus", "Unregistered".into()), ("Cause", "Expired".into())]);
                }
                m.end_orphans();
            }
            _ = stop.changed() => break,
        }
        m.process().await;
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

/// The next connection on the TCP listener; never, without one.
async fn accept(
    listener: &Option<TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Monitor {
    fn trace(&self, dir: &str, transport: Transport, peer: SocketAddr, data: &[u8]) {
        if self.shared.debug_for(peer) {
            log::info!(
                "\n<--- SIP {dir} {}:{peer} --->\n{}\n<------------->",
                transport.as_str(),
                String::from_utf8_lossy(data)
            );
        }
    }

    fn on_datagram(&mut self, data: &[u8], src: SocketAddr) {
        self.trace("read from", Transport::Udp, src, data);
        let msg = match parse_datagram(data, &Limits::default()) {
            Ok(m) => m,
            Err(ParseError::KeepAlive) => return,
            Err(e) => {
                // Not a message we can address a response to: dropped (RFC 3261 §18.3).
                log::debug!("dropping unparseable datagram from {src}: {e}");
                return;
            }
        };
        self.on_message(msg, src, Transport::Udp);
    }

    fn on_tcp_event(&mut self, ev: TcpEvent) {
        match ev {
            TcpEvent::Message(msg, peer) => {
                if self.shared.debug_for(peer) {
                    self.trace("read from", Transport::Tcp, peer, &msg.to_bytes());
                }
                self.on_message(msg, peer, Transport::Tcp);
            }
            TcpEvent::Ping(peer) => self.tcp.send(peer, b"\r\n".to_vec()),
            TcpEvent::Closed { peer, id, error } => {
                if !self.tcp.closed(peer, id) {
                    return;
                }
                match error {
                    None => log::debug!("SIP/TCP: {peer} closed the connection"),
                    Some(e) => {
                        log::warn!("SIP/TCP connection with {peer} failed: {e}");
                        // Requests that were waiting on it will get no answer.
                        self.layer.transport_error(peer, Transport::Tcp);
                    }
                }
            }
        }
    }

    /// A parsed message from either transport: validation, then the
    /// transaction layer.
    fn on_message(&mut self, msg: Message, src: SocketAddr, transport: Transport) {
        if msg.is_request() {
            if let Err(rej) = inspect_request(&msg, &self.caps) {
                if msg.method() != Some(&Method::Ack) {
                    log::debug!(
                        "refusing {} from {src}: {} {}",
                        msg.method().map_or("?", |m| m.as_str()),
                        rej.code,
                        rej.reason
                    );
                    let mut r = build::response(&msg, rej.code, &rej.reason, Some(src));
                    build::set_to_tag(&mut r, &build::random_token());
                    for (n, v) in &rej.headers {
                        r.push(n.clone(), v);
                    }
                    self.layer.send_stateless(src, transport, &r);
                }
                return;
            }
        } else if inspect_response(&msg).is_err() {
            log::debug!("dropping malformed response from {src}");
            return;
        }
        self.layer.on_message(Instant::now(), msg, src, transport);
    }

    async fn process(&mut self) {
        while let Some(ev) = self.layer.poll_event() {
            match ev {
                Event::Request {
                    tx,
                    msg,
                    source,
                    transport,
                    cancels,
                } => self.on_request(tx, msg, source, transport, cancels),
                Event::Response { tx, msg } => self.on_client_response(tx, &msg),
                Event::Timeout { tx } => {
                    // Our 2xx never ACKed (Timer L): the call is dead (RFC 3261 §13.3.1.4).
                    if let Some(chan) = self.chan_for_tx(tx) {
                        log::warn!("no ACK for the 200 OK of {chan}; hanging up");
                        self.hangup_call(chan, sirius_abi::Cause::RECOVERY_ON_TIMER_EXPIRE);
                        self.shared
                            .host
                            .channel_hangup(chan, sirius_abi::Cause::RECOVERY_ON_TIMER_EXPIRE);
                    } else {
                        self.on_client_timeout(tx)
                    }
                }
                Event::Ack {
                    tx: Some(tx), msg, ..
                } => {
                    // Late offer: the caller's answer arrives in the ACK.
                    if let Some(chan) = self.chan_for_tx(tx) {
                        self.note_msg(chan, "Rx: ACK".into());
                        let remote = crate::relay::RemoteMedia::from_sdp(&msg.body);
                        // An ACK without a usable answer leaves the offer's view.
                        if remote.addr.is_some() {
                            if let Some(call) = self.calls.get_mut(&chan) {
                                call.remote = remote;
                            }
                        }
                    }
                }
                Event::Ack { .. } => {}
            }
        }
        while let Some(t) = self.layer.poll_transmit() {
            self.trace("send to", t.transport, t.dest, &t.data);
            match t.transport {
                Transport::Udp => {
                    if let Err(e) = self.socket.send_to(&t.data, t.dest).await {
                        log::warn!("UDP send to {} failed: {e}", t.dest);
                    }
                }
                Transport::Tcp => self.tcp.send(t.dest, t.data),
            }
        }
    }

    /// The earliest of the transaction, qualify and registration timers.
    fn next_deadline(&self) -> Option<Instant> {
        let q = self
            .shared
            .qualify
            .lock()
            .values()
            .filter_map(|q| q.poll_timeout())
            .min();
        let r = self
            .shared
            .outbound
            .lock()
            .iter()
            .filter_map(|r| r.sm.poll_timeout())
            .min();
        let congest = self.congest_timers.first().map(|(t, _)| *t);
        [self.layer.poll_timeout(), q, r, congest]
            .into_iter()
            .flatten()
            .min()
    }

    fn on_timers(&mut self, now: Instant) {
        self.layer.handle_timeout(now);
        while let Some(&(at, chan)) = self.congest_timers.first() {
            if at > now {
                break;
            }
            self.congest_timers.pop_first();
            if self
                .outbound
                .get(&chan)
                .is_some_and(|c| c.congest_at == Some(at))
            {
                self.auto_congest(chan);
            }
        }
        let mut due = Vec::new();
        for (name, q) in self.shared.qualify.lock().iter_mut() {
            let (change, poke) = q.handle_timeout(now);
            if let Some(c) = change {
                log_status_change(name, c, q.maxms());
                self.shared.host.post_event(
                    "PeerStatus",
                    &[
                        ("Peer", format!("SIP/{name}")),
                        ("PeerStatus", c.to.event_word().into()),
                    ],
                );
            }
            if poke {
                due.push(name.clone());
            }
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
            self.send_client(req, dest, transport, Owner::Register(i), now);
        }
    }

    fn send_client(
        &mut self,
        req: Message,
        dest: SocketAddr,
        transport: Transport,
        owner: Owner,
        now: Instant,
    ) -> Option<TxId> {
        match self.layer.send_request(now, req, dest, transport) {
            Ok(tx) => {
                self.owners.insert(tx, owner);
                Some(tx)
            }
            Err(e) => {
                log::warn!("cannot send request to {dest}: {e}");
                None
            }
        }
    }

    /// Sends an OPTIONS poke to a peer (static address or registered contact).
    fn poke(&mut self, name: &str, now: Instant) {
        let running = self.shared.running();
        let Some(peer) = running.peers.get(name) else {
            return;
        };
        let dest = peer.addr.map(|a| (a, peer.transports[0])).or_else(|| {
            let reg = self.shared.registrar.lock();
            reg.binding(name).map(|b| (b.addr, b.transport()))
        });
        let mut qualify = self.shared.qualify.lock();
        let Some(q) = qualify.get_mut(name) else {
            return;
        };
        let Some((dest, transport)) = dest else {
            // An unregistered dynamic peer: nothing to poke; try again later.
            q.schedule(now + crate::outbound::FREQ_NOTOK);
            return;
        };
        q.poke_sent(now);
        drop(qualify);
        let mut m = self.new_request(
            Method::Options,
            format!("sip:{}@{dest}{}", peer.username, transport.uri_param()),
            "sirius",
            transport,
        );
        m.push(HeaderName::Accept, ACCEPT);
        self.send_client(m, dest, transport, Owner::Poke(name.to_string()), now);
    }

    fn start_registrations(&mut self) {
        let now = Instant::now();
        let mut sends = Vec::new();
        for (i, r) in self.shared.outbound.lock().iter_mut().enumerate() {
            if r.sm.state() == RegState::Unregistered && r.sm.poll_timeout().is_none() {
                sends.push((i, r.sm.start(now), r.dest, r.transport));
            }
        }
        for (i, req, dest, transport) in sends {
            self.send_client(req, dest, transport, Owner::Register(i), now);
        }
    }

    fn reconcile(&mut self) {
        let now = Instant::now();
        let wanted = self.shared.running().cfg.register.clone();
        // Unregister lines that left the configuration, then drop them.
        let mut gone = Vec::new();
        {
            let mut regs = self.shared.outbound.lock();
            for r in regs.iter_mut().filter(|r| !wanted.contains(&r.cfg)) {
                if let Some(req) = r.sm.unregister(now) {
                    gone.push((req, r.dest, r.transport));
                }
            }
            regs.retain(|r| wanted.contains(&r.cfg));
        }
        // Indices shift when lines go: forget pending owners of registrations.
        self.owners.retain(|_, o| !matches!(o, Owner::Register(_)));
        for (req, dest, transport) in gone {
            let _ = self.layer.send_request(now, req, dest, transport);
        }
        reconcile(&self.shared);
        self.start_registrations();
    }

    async fn unregister_all(&mut self, buf: &mut [u8]) {
        let now = Instant::now();
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
            self.send_client(req, dest, transport, Owner::Register(i), now);
        }
        self.process().await;
        // Give the registrars a moment to confirm, bounded.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1000);
        while self
            .owners
            .values()
            .any(|o| matches!(o, Owner::Register(_)))
        {
            tokio::select! {
                r = self.socket.recv_from(buf) => if let Ok((n, src)) = r { self.on_datagram(&buf[..n], src) },
                Some(ev) = self.tcp_events.recv() => self.on_tcp_event(ev),
                _ = tokio::time::sleep_until(deadline) => break,
            }
            self.process().await;
        }
    }

    fn on_client_response(&mut self, tx: TxId, msg: &Message) {
        let code = msg.code().unwrap_or(0);
        if let Some(Owner::Outbound(chan)) = self.owners.get(&tx) {
            let chan = *chan;
            return self.on_outbound_response(chan, msg, code);
        }
        if let Some(Owner::ReInvite { chan, .. }) = self.owners.get(&tx) {
            let chan = *chan;
            return self.on_reinvite_response(tx, chan, msg, code);
        }
        if code < 200 {
            return;
        }
        let now = Instant::now();
        match self.owners.remove(&tx) {
            Some(Owner::Poke(name)) => {
                if let Some(q) = self.shared.qualify.lock().get_mut(&name) {
                    if let Some(c) = q.on_response(now) {
                        log_status_change(&name, c, q.maxms());
                        self.shared.host.post_event(
                            "PeerStatus",
                            &[
                                ("Peer", format!("SIP/{name}")),
                                ("PeerStatus", c.to.event_word().into()),
                            ],
                        );
                    }
                }
            }
            Some(Owner::Register(i)) => {
                let next = {
                    let mut regs = self.shared.outbound.lock();
                    let Some(r) = regs.get_mut(i) else { return };
                    let before = r.sm.state();
                    let next = r.sm.on_response(now, msg);
                    let after = r.sm.state();
                    if after == RegState::Registered {
                        r.registered_at = Some(chrono::Local::now());
                    }
                    if before != after {
                        log::info!(
                            "Registration to {} as {}: {} -> {} ({code})",
                            r.host_column(),
                            r.cfg.user,
                            before.as_str(),
                            after.as_str()
                        );
                        self.shared.host.post_event(
                            "Registry",
                            &[
                                ("ChannelType", "SIP".into()),
                                ("Username", r.cfg.user.clone()),
                                ("Domain", r.cfg.host.clone()),
                                ("Status", after.as_str().into()),
                            ],
                        );
                    }
                    next.map(|req| (req, r.dest, r.transport))
                };
                if let Some((req, dest, transport)) = next {
                    self.send_client(req, dest, transport, Owner::Register(i), now);
                }
            }
            Some(Owner::Cancelled {
                invite,
                dest,
                transport,
            }) if code < 300 => self.end_answered_after_cancel(&invite, msg, dest, transport),
            Some(Owner::Bye)
            | Some(Owner::Outbound(_))
            | Some(Owner::Cancelled { .. })
            | Some(Owner::ReInvite { .. })
            | None => {}
        }
    }

    fn on_client_timeout(&mut self, tx: TxId) {
        match self.owners.remove(&tx) {
            // The poke's own timer (2 x maxms) decides reachability.
            Some(Owner::Poke(_))
            | Some(Owner::Bye)
            | Some(Owner::Cancelled { .. })
            | Some(Owner::ReInvite { .. })
            | None => {}
            // Timer B: not even a provisional response in 64*T1. chan_sip's
            // auto_congest fires at the same moment (SIP_TRANS_TIMEOUT) and
            // signals congestion, so Dial ends with DIALSTATUS=CONGESTION.
            Some(Owner::Outbound(chan)) => self.auto_congest(chan),
            Some(Owner::Register(i)) => {
                if let Some(r) = self.shared.outbound.lock().get_mut(i) {
                    r.sm.on_timeout(Instant::now());
                    log::warn!(
                        "Registration to {} as {} timed out; state {}",
                        r.host_column(),
                        r.cfg.user,
                        r.sm.state().as_str()
                    );
                }
            }
        }
    }

    fn respond(
        &mut self,
        tx: TxId,
        req: &Message,
        source: SocketAddr,
        code: u16,
        reason: &str,
        extra: &[(HeaderName, String)],
    ) {
        let mut r = build::response(req, code, reason, Some(source));
        build::set_to_tag(&mut r, &build::random_token());
        r.push(
            HeaderName::Server,
            &self.shared.running().cfg.general.useragent,
        );
        for (n, v) in extra {
            r.push(n.clone(), v);
        }
        self.send_response(tx, r);
    }

    /// `481 Call/Transaction Does Not Exist` (RFC 3261 §12.2.2, §15.1.2).
    fn no_such_call(&mut self, tx: TxId, req: &Message, source: SocketAddr) {
        self.respond(tx, req, source, 481, "Call/Transaction Does Not Exist", &[]);
    }

    fn send_response(&mut self, tx: TxId, r: Message) {
        if let Err(e) = self.layer.respond(Instant::now(), tx, &r) {
            log::debug!("cannot respond on {tx:?}: {e}");
        }
    }

    fn on_request(
        &mut self,
        tx: TxId,
        msg: Message,
        source: SocketAddr,
        transport: Transport,
        cancels: Option<TxId>,
    ) {
        let method = msg.method().cloned().unwrap_or(Method::Ack);
        match (&method, self.dialogs.classify(&msg)) {
            (method, Classified::InDialog(id))
                if !matches!(method, Method::Bye | Method::Cancel) =>
            {
                self.on_in_dialog(tx, &msg, source, transport, &id)
            }
            (Method::Register, _) => self.on_register(tx, &msg, source, transport),
            (Method::Options, _) => {
                let allow = self.caps.allow();
                self.respond(
                    tx,
                    &msg,
                    source,
                    200,
                    "OK",
                    &[
                        (HeaderName::Allow, allow),
                        (HeaderName::Accept, ACCEPT.into()),
                        (HeaderName::Supported, SUPPORTED.into()),
                    ],
                );
            }
            (Method::Cancel, _) => {
                // A CANCEL for an INVITE still ringing in the dialplan: 200 for the
                // CANCEL, 487 for the INVITE, and the channel goes. Otherwise 481.
                let chan = cancels.and_then(|t| self.chan_for_tx(t));
                match chan.filter(|c| self.calls.get(c).is_some_and(|call| !call.final_sent)) {
                    Some(chan) => {
                        self.respond(tx, &msg, source, 200, "OK", &[]);
                        if let Some(call) = self.take_inbound(chan) {
                            let mut r = build::response(
                                &call.invite,
                                487,
                                "Request Terminated",
                                Some(call.source),
                            );
                            build::set_to_tag(&mut r, &call.local_tag);
                            self.send_response(call.tx, r);
                        }
                        self.shared
                            .host
                            .channel_hangup(chan, sirius_abi::Cause::NORMAL_CLEARING);
                    }
                    None => self.no_such_call(tx, &msg, source),
                }
            }
            (Method::Bye, Classified::InDialog(id)) => {
                // A BYE out of CSeq order is refused like any in-dialog request.
                if let Some(Err(e)) = self
                    .dialogs
                    .get_mut(&id)
                    .map(|d| d.accept_remote_cseq(&msg))
                {
                    let (code, reason) = e.status();
                    return self.respond(tx, &msg, source, code, reason, &[]);
                }
                self.dialogs.remove(&id);
                self.respond(tx, &msg, source, 200, "OK", &[]);
                if let Some(chan) = self.chan_for_dialog(&id) {
                    self.take_inbound(chan);
                    self.take_outbound(chan);
                    self.shared
                        .host
                        .channel_hangup(chan, sirius_abi::Cause::NORMAL_CLEARING);
                }
            }
            (Method::Invite, Classified::OutOfDialog) => {
                self.on_invite(tx, &msg, source, transport)
            }
            // Unknown dialogs, a BYE outside one, anything else left.
            _ => self.no_such_call(tx, &msg, source),
        }
    }

    fn on_register(&mut self, tx: TxId, msg: &Message, source: SocketAddr, transport: Transport) {
        let running = self.shared.running();
        let out = self.shared.registrar.lock().handle(
            msg,
            source,
            transport,
            unix_now(),
            &running.cfg.general,
            &running.peers,
        );
        if let Some((peer, binding)) = out.changed {
            let (status, addr) = match &binding {
                Some(b) => ("Registered", b.addr.to_string()),
                None => ("Unregistered", String::new()),
            };
            self.shared.host.post_event(
                "PeerStatus",
                &[
                    ("Peer", format!("SIP/{peer}")),
                    ("PeerStatus", status.into()),
                    ("Address", addr),
                ],
            );
        }
        if let Some(r) = out.response {
            self.send_response(tx, r);
        }
        // None: the source is blocked; the transaction ends unanswered.
    }

    /// Matches the peer an INVITE comes from: by From user for friends and
    /// users, by source address for static peers (port too, unless insecure=port).
    fn match_peer<'a>(
        running: &'a crate::Running,
        msg: &Message,
        source: SocketAddr,
    ) -> Option<&'a Peer> {
        let from_user = msg
            .from_header()
            .and_then(|f| Uri::parse(&f.uri).ok())
            .and_then(|u| u.user);
        if let Some(p) = from_user
            .as_deref()
            .and_then(|u| running.peers.get(u))
            .filter(|p| p.kind != PeerType::Peer)
        {
            return Some(p);
        }
        running.peers.values().find(|p| {
            p.addr.is_some_and(|a| {
                a.ip() == source.ip() && (p.insecure_port || a.port() == source.port())
            })
        })
    }

    fn on_invite(&mut self, tx: TxId, msg: &Message, source: SocketAddr, transport: Transport) {
        let running = self.shared.running();
        let g: &General = &running.cfg.general;
        let peer = Self::match_peer(&running, msg, source);
        let needs_auth =
            peer.is_some_and(|p| !p.insecure_invite) || (peer.is_none() && !g.allowguest);
        if needs_auth {
            let auth = self.shared.registrar.lock().authenticate(
                msg,
                "INVITE",
                source,
                unix_now(),
                g,
                peer,
            );
            match auth {
                AuthOutcome::Ok => {}
                AuthOutcome::Respond(r) => return self.send_response(tx, *r),
                AuthOutcome::Ignore => return,
            }
        }
        // call-limit: calls in progress with this peer, in and out (update_call_counter).
        if let Some(p) = peer.filter(|p| p.call_limit > 0) {
            let inuse = self.shared.inuse.lock().get(&p.name).copied().unwrap_or(0);
            if inuse >= p.call_limit {
                log::info!(
                    "Call from peer '{}' rejected due to usage limit of {}",
                    p.name,
                    p.call_limit
                );
                return self.respond(
                    tx,
                    msg,
                    source,
                    480,
                    "Temporarily Unavailable (Call limit)",
                    &[],
                );
            }
        }
        let mut codecs = peer.map_or_else(
            || crate::config::DEFAULT_CODECS.to_vec(),
            |p| p.codecs.clone(),
        );
        // An offer in the INVITE must share an audio codec with the peer's list.
        let mut remote = crate::relay::RemoteMedia::default();
        if !msg.body.is_empty() {
            let Ok(offer) = SessionDescription::parse(&msg.body) else {
                return self.respond(tx, msg, source, 400, "Bad Request (SDP)", &[]);
            };
            remote = crate::relay::RemoteMedia::from_description(&offer);
            let local = self.local_media(&codecs, 0, 1, SdpDirection::SendRecv);
            match sdp_answer(&offer, &local) {
                Err(_) => {
                    log::info!(
                        "Rejecting INVITE {}: no audio codec in common with {}",
                        msg.call_id().unwrap_or("?"),
                        peer.map_or("the guest codec list", |p| p.name.as_str())
                    );
                    return self.respond(tx, msg, source, 488, "Not Acceptable Here", &[]);
                }
                // The channel carries what was agreed, not all the peer
                // allows: Dial decides from it whether the far leg needs
                // translation (Asterisk's joint capabilities).
                Ok((_, neg)) => {
                    if let Some(audio) = neg.first("audio") {
                        let agreed: Vec<sirius_abi::Codec> = codecs
                            .iter()
                            .copied()
                            .filter(|c| {
                                c.kind() != sirius_abi::MediaKind::Audio
                                    || c.info().is_some_and(|i| {
                                        audio.formats.iter().any(|f| {
                                            f.encoding.eq_ignore_ascii_case(i.encoding)
                                                && f.clock_rate == i.clock_rate
                                        })
                                    })
                            })
                            .collect();
                        if agreed
                            .iter()
                            .any(|c| c.kind() == sirius_abi::MediaKind::Audio)
                        {
                            codecs = agreed;
                        }
                    }
                }
            }
        }
        let exten = Uri::parse(msg.request_uri().unwrap_or_default())
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_else(|| "s".into());
        let caller = msg
            .from_header()
            .and_then(|f| Uri::parse(&f.uri).ok())
            .and_then(|u| u.user)
            .unwrap_or_default();
        let spec = ChannelSpec {
            tech: "SIP".into(),
            resource: peer
                .map_or_else(|| source.ip().to_string(), |p| p.name.clone())
                .into(),
            state: ChannelState::Ring,
            direction: Direction::Inbound,
            context: peer
                .map_or_else(|| g.context.clone(), |p| p.context.clone())
                .into(),
            exten: exten.into(),
            caller_num: caller.into(),
            caller_name: msg
                .from_header()
                .and_then(|f| f.display)
                .unwrap_or_default()
                .into(),
            codecs: codecs.clone().into(),
            accountcode: "".into(),
        };
        let info = match self.shared.host.channel_alloc(spec) {
            Ok(i) => i,
            Err(cause) => {
                let (code, reason) = cause_to_sip(cause);
                return self.respond(tx, msg, source, code, reason, &[]);
            }
        };
        // Registered before the dialplan starts: its thread may answer at once.
        let peer_name = peer.map(|p| p.name.clone());
        let (rtp, rtcp, ports) = match self.shared.bind_media() {
            Ok(pair) => pair,
            Err(e) => {
                log::error!("no RTP port for '{}': {e}", info.name);
                self.shared
                    .host
                    .channel_hangup(info.id, sirius_abi::Cause::CONGESTION);
                return self.respond(tx, msg, source, 503, "Service Unavailable", &[]);
            }
        };
        self.put_inbound(
            info.id,
            InboundCall {
                tx,
                invite: msg.clone(),
                source,
                transport,
                local_tag: build::random_token(),
                final_sent: false,
                rtp: Arc::new(rtp),
                rtcp: Arc::new(rtcp),
                _ports: ports,
                codecs: codecs.clone(),
                dialog: None,
                peer: peer_name,
                remote,
                last_msg: "Rx: INVITE".into(),
                held: false,
                reinvite: None,
            },
        );
        if let Err(cause) = self.shared.host.pbx_start(info.id) {
            self.take_inbound(info.id);
            self.shared.host.channel_hangup(info.id, cause);
            let (code, reason) = cause_to_sip(cause);
            // A refusal for load or maxcalls is temporary: tell the caller
            // when to come back (RFC 3261 §21.5.4) instead of retrying at once.
            let retry = if code == 503 {
                vec![(HeaderName::RetryAfter, RETRY_AFTER_SECS.to_string())]
            } else {
                Vec::new()
            };
            self.respond(tx, msg, source, code, reason, &retry);
        }
    }

    /// The safety net behind the module's use count: a SIP call whose core
    /// channel is gone (a hangup lost in some race) would hold the module
    /// and a far end forever. Missing at two sweeps in a row (a second
    /// apart, so a hangup in flight is not mistaken for one), it is ended
    /// on the wire and logged.
    fn end_orphans(&mut self) {
        // The core answers caller ID only for channels it still has.
        let host = &self.shared.host;
        let missing: std::collections::HashSet<_> = self
            .calls
            .keys()
            .chain(self.outbound.keys())
            .copied()
            .filter(|c| host.channel_caller_id(*c).is_none())
            .collect();
        let confirmed: Vec<_> = missing.intersection(&self.orphans).copied().collect();
        for chan in confirmed {
            log::warn!("SIP call state for {chan} outlived its channel: ending the call");
            self.hangup_call(chan, sirius_abi::Cause::NORMAL_CLEARING);
        }
        self.orphans = missing;
    }

    /// Registers an inbound call: indexes, the peer's in-use count, the
    /// module's use count.
    fn put_inbound(&mut self, chan: sirius_abi::ChannelId, call: InboundCall) {
        self.by_tx.insert(call.tx, chan);
        self.count_peer(call.peer.as_deref(), true);
        self.calls.insert(chan, call);
        self.publish_count();
    }

    /// Registers an outbound call.
    fn put_outbound(&mut self, chan: sirius_abi::ChannelId, call: OutboundCall) {
        self.count_peer(call.setup.peer.as_deref(), true);
        self.outbound.insert(chan, call);
        self.publish_count();
    }

    /// Removes an inbound call and everything that points at it (its relay
    /// stops).
    fn take_inbound(&mut self, chan: sirius_abi::ChannelId) -> Option<InboundCall> {
        let call = self.calls.remove(&chan)?;
        self.by_tx.remove(&call.tx);
        if let Some(tx) = call.reinvite {
            self.owners.remove(&tx);
        }
        if let Some(d) = &call.dialog {
            self.by_dialog.remove(d);
        }
        self.count_peer(call.peer.as_deref(), false);
        self.call_gone(chan);
        Some(call)
    }

    /// Removes an outbound call and everything that points at it.
    fn take_outbound(&mut self, chan: sirius_abi::ChannelId) -> Option<OutboundCall> {
        let call = self.outbound.remove(&chan)?;
        if let Some(tx) = call.tx {
            self.owners.remove(&tx);
        }
        if let Some(tx) = call.reinvite {
            self.owners.remove(&tx);
        }
        if let Some(d) = &call.dialog {
            self.by_dialog.remove(d);
        }
        self.count_peer(call.setup.peer.as_deref(), false);
        self.call_gone(chan);
        Some(call)
    }

    fn call_gone(&mut self, chan: sirius_abi::ChannelId) {
        if let Some(bridge) = self.relays.remove(&chan) {
            let other = self.relays.remove(&bridge.partner);
            if let Some(engine) = &self.relay {
                for h in bridge
                    .handles
                    .into_iter()
                    .chain(other.into_iter().flat_map(|o| o.handles))
                {
                    engine.remove(h);
                }
            }
        }
        self.publish_count();
    }

    fn publish_count(&self) {
        let total = self.calls.len() + self.outbound.len();
        self.shared
            .active_calls
            .store(total as u32, Ordering::Relaxed);
    }

    /// call-limit bookkeeping (`sip show inuse`).
    fn count_peer(&self, peer: Option<&str>, up: bool) {
        let Some(peer) = peer else { return };
        let mut inuse = self.shared.inuse.lock();
        if up {
            *inuse.entry(peer.to_string()).or_default() += 1;
        } else if let Some(n) = inuse.get_mut(peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inuse.remove(peer);
            }
        }
    }

    /// A response on an inbound call's INVITE transaction, with our To tag and Contact.
    fn call_response(
        &mut self,
        chan: sirius_abi::ChannelId,
        code: u16,
        reason: &str,
    ) -> Option<Message> {
        let call = self.calls.get(&chan)?;
        let mut r = build::response(&call.invite, code, reason, Some(call.source));
        build::set_to_tag(&mut r, &call.local_tag);
        if code < 300 {
            let contact = self.shared.contact_uri("", call.transport);
            r.push(HeaderName::Contact, format!("<{contact}>"));
        }
        r.push(
            HeaderName::Server,
            &self.shared.running().cfg.general.useragent,
        );
        Some(r)
    }

    fn answer_call(&mut self, chan: sirius_abi::ChannelId) {
        let Some(call) = self.calls.get(&chan) else {
            return;
        };
        if call.final_sent {
            return;
        }
        let port = call.rtp.local_addr().map_or(0, |a| a.port());
        let local = self.local_media(&call.codecs, port, 1, SdpDirection::SendRecv);
        // An offer in the INVITE is answered; without one (late offer) we offer
        // here and the answer comes in the ACK.
        let sdp = match SessionDescription::parse(&call.invite.body) {
            Ok(offer) => sdp_answer(&offer, &local).map(|(sd, _)| sd).ok(),
            Err(_) => Some(sirius_sip::sdp::negotiate::offer(&local)),
        };
        let (tx, invite, local_tag) = (call.tx, call.invite.clone(), call.local_tag.clone());
        let contact = self.shared.contact_uri("", call.transport);
        let Some(mut ok) = self.call_response(chan, 200, "OK") else {
            return;
        };
        ok.push(HeaderName::Allow, self.caps.allow());
        ok.push(HeaderName::Supported, SUPPORTED);
        if let Some(sd) = sdp {
            ok.set_body("application/sdp", sd.to_bytes());
        }
        self.send_response(tx, ok);
        match sirius_sip::dialog::Dialog::from_uas(&invite, &local_tag, &contact) {
            Ok(mut d) => {
                d.confirm();
                if let Some(call) = self.calls.get_mut(&chan) {
                    call.dialog = Some(d.id.clone());
                    call.final_sent = true;
                    call.invite = invite_summary(&call.invite);
                    self.by_dialog.insert(d.id.clone(), chan);
                }
                self.dialogs.insert(d);
            }
            Err(e) => log::warn!("no dialog for answered call: {e}"),
        }
    }

    fn indicate_call(&mut self, chan: sirius_abi::ChannelId, ind: sirius_abi::Indication) {
        use sirius_abi::Indication::*;
        let Some(call) = self.calls.get(&chan) else {
            return;
        };
        if call.final_sent {
            return;
        }
        let tx = call.tx;
        let (code, reason, is_final) = match ind {
            Ringing => (180, "Ringing", false),
            Progress => (183, "Session Progress", false),
            Busy => (486, "Busy Here", true),
            Congestion => (503, "Service Unavailable", true),
            _ => return,
        };
        if let Some(r) = self.call_response(chan, code, reason) {
            self.send_response(tx, r);
        }
        if is_final {
            if let Some(call) = self.calls.get_mut(&chan) {
                call.final_sent = true;
                call.invite = invite_summary(&call.invite);
            }
        }
    }

    /// Ends a call on the wire: the final response if unanswered, BYE if answered.
    fn hangup_call(&mut self, chan: sirius_abi::ChannelId, cause: sirius_abi::Cause) {
        if self.outbound.contains_key(&chan) {
            return self.hangup_outbound(chan, cause);
        }
        let Some(call) = self.take_inbound(chan) else {
            return;
        };
        if !call.final_sent {
            // Asterisk sends 603 for a normal hangup of a call it never answered.
            let (code, reason) = if matches!(cause.0, 0 | 16) {
                (603, "Declined")
            } else {
                cause_to_sip(cause)
            };
            let mut r = build::response(&call.invite, code, reason, Some(call.source));
            build::set_to_tag(&mut r, &call.local_tag);
            self.send_response(call.tx, r);
            return;
        }
        let Some(id) = call.dialog else { return };
        let Some(mut d) = self.dialogs.remove(&id) else {
            return;
        };
        let mut bye = d.request(Method::Bye, &self.shared.via(call.transport), None);
        bye.push(HeaderName::Reason, format!("Q.850;cause={}", cause.0));
        let hop = first_route_hop(&bye).unwrap_or(call.source);
        self.send_client(bye, hop, call.transport, Owner::Bye, Instant::now());
    }

    /// The RTP and RTCP legs of one of our channels, for a relay. The far
    /// end's RTCP port is the one after its RTP port (RFC 3550 §11).
    fn leg(&self, chan: sirius_abi::ChannelId) -> Option<(crate::relay::Leg, crate::relay::Leg)> {
        let v = self.leg_view(chan)?;
        let learn = v
            .peer
            .and_then(|p| self.shared.running().peers.get(p).map(|p| p.comedia))
            .unwrap_or(false);
        let media = v.remote;
        let remote = media.addr;
        let remote_rtcp = remote.map(|r| SocketAddr::new(r.ip(), r.port().wrapping_add(1)));
        // The relay thread and the call share the sockets (no second
        // descriptor per leg: 10,000 calls hold 40,000 of them already).
        Some((
            crate::relay::Leg {
                socket: v.rtp.clone(),
                remote,
                learn,
                dtmf_pt: media.dtmf_pt,
                g711: media.g711.clone(),
            },
            crate::relay::Leg {
                socket: v.rtcp.clone(),
                remote: remote_rtcp,
                learn,
                dtmf_pt: None,
                g711: Vec::new(),
            },
        ))
    }

    fn start_relay(&mut self, a: sirius_abi::ChannelId, b: sirius_abi::ChannelId) {
        use crate::relay::Stream;
        let Some(engine) = &self.relay else {
            return log::warn!("cannot bridge {a} and {b} natively: no relay thread");
        };
        if self.relays.contains_key(&a) || self.relays.contains_key(&b) {
            return log::warn!("{a} or {b} is already in a native bridge");
        }
        let handles = if a == b {
            // A channel bridged with itself: Echo().
            // The media comes back; RTCP does not (a phone's own reports
            // returned to it would describe a stream it never received).
            let Some((rtp, _rtcp)) = self.leg(a) else {
                return;
            };
            vec![engine.echo(rtp, Stream::Rtp)]
        } else {
            let (Some((la, ca)), Some((lb, cb))) = (self.leg(a), self.leg(b)) else {
                return log::warn!("cannot bridge {a} and {b} natively: a leg is gone");
            };
            log::debug!(
                "native RTP bridge {a} ({:?}) <-> {b} ({:?})",
                la.remote,
                lb.remote
            );
            vec![
                engine.bridge(la, lb, Stream::Rtp),
                engine.bridge(ca, cb, Stream::Rtcp),
            ]
        };
        self.relays.insert(
            a,
            NativeBridge {
                partner: b,
                handles,
            },
        );
        if a != b {
            self.relays.insert(
                b,
                NativeBridge {
                    partner: a,
                    handles: Vec::new(),
                },
            );
        }
    }

    /// A far end's new SDP (re-INVITE): the call and its running relay
    /// follow it (new address, hold at 0.0.0.0, new payload types).
    fn media_moved(&mut self, chan: sirius_abi::ChannelId, media: crate::relay::RemoteMedia) {
        if let (Some(engine), Some(bridge)) = (&self.relay, self.relays.get(&chan)) {
            // The relay handles sit under the bridge's first channel, leg 0;
            // the second channel is leg 1 of its partner's handles.
            let (handles, index) = if bridge.handles.is_empty() {
                (self.relays.get(&bridge.partner).map(|b| &b.handles), 1)
            } else {
                (Some(&bridge.handles), 0)
            };
            let rtcp = media
                .addr
                .map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)));
            for (k, h) in handles.into_iter().flatten().enumerate() {
                let addr = if k == 0 { media.addr } else { rtcp };
                engine.set_remote(h, index, addr, media.dtmf_pt, &media.g711);
            }
        }
        if let Some(c) = self.calls.get_mut(&chan) {
            c.remote = media;
        } else if let Some(c) = self.outbound.get_mut(&chan) {
            c.remote = media;
        }
    }

    fn chan_for_tx(&self, tx: TxId) -> Option<sirius_abi::ChannelId> {
        self.by_tx.get(&tx).copied()
    }

    /// A request inside an established dialog other than BYE: CSeq order is
    /// checked (a lower one gets 500, RFC 3261 §12.2.2); a re-INVITE is answered
    /// with our SDP (hold and unhold are noticed and logged); OPTIONS and INFO get 200.
    fn on_in_dialog(
        &mut self,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
        id: &sirius_sip::dialog::DialogId,
    ) {
        let method = msg.method().cloned().unwrap_or(Method::Ack);
        if let Some(chan) = self.chan_for_dialog(id) {
            self.note_msg(chan, format!("Rx: {method}"));
        }
        let Some(d) = self.dialogs.get_mut(id) else {
            return;
        };
        if let Err(e) = d.accept_remote_cseq(msg) {
            let (code, reason) = e.status();
            return self.respond(tx, msg, source, code, reason, &[]);
        }
        if method != Method::Invite {
            return self.respond(tx, msg, source, 200, "OK", &[]);
        }
        d.refresh_target(msg);
        let local_tag = d.id.local_tag.clone();
        let Some(chan) = self.chan_for_dialog(id) else {
            return self.no_such_call(tx, msg, source);
        };
        let Some(v) = self.leg_view(chan) else {
            return self.no_such_call(tx, msg, source);
        };
        let local = self.local_media(v.codecs, v.rtp_port(), 2, SdpDirection::SendRecv);
        let sdp = if msg.body.is_empty() {
            Some(sirius_sip::sdp::negotiate::offer(&local))
        } else {
            let Ok(offer) = SessionDescription::parse(&msg.body) else {
                return self.respond(tx, msg, source, 400, "Bad Request (SDP)", &[]);
            };
            match sdp_answer(&offer, &local) {
                Ok((sd, neg)) => {
                    let held = neg.on_hold();
                    self.media_moved(chan, crate::relay::RemoteMedia::from_description(&offer));
                    let was_held = match (self.calls.get_mut(&chan), self.outbound.get_mut(&chan)) {
                        (Some(c), _) => std::mem::replace(&mut c.held, held),
                        (None, Some(c)) => std::mem::replace(&mut c.held, held),
                        (None, None) => held,
                    };
                    if was_held != held {
                        self.pass_hold_on(chan, held);
                    }
                    log::info!(
                        "{chan} {}",
                        if held {
                            "put on hold by the far end"
                        } else {
                            "active (not on hold)"
                        }
                    );
                    self.shared.host.post_event(
                        if held { "Hold" } else { "Unhold" },
                        &[("Channel", chan.to_string())],
                    );
                    Some(sd)
                }
                Err(_) => return self.respond(tx, msg, source, 488, "Not Acceptable Here", &[]),
            }
        };
        let mut ok = build::response(msg, 200, "OK", Some(source));
        build::set_to_tag(&mut ok, &local_tag);
        let contact = self.shared.contact_uri("", transport);
        ok.push(HeaderName::Contact, format!("<{contact}>"));
        if let Some(sd) = sdp {
            ok.set_body("application/sdp", sd.to_bytes());
        }
        self.send_response(tx, ok);
    }

    /// A leg put the call on hold (or took it off): the leg it is natively
    /// bridged with gets a re-INVITE saying so (`sendonly` while held,
    /// `sendrecv` after), so the other phone shows the hold too. The held
    /// leg's own re-INVITE was already answered; the two transactions are
    /// independent, as in a B2BUA.
    fn pass_hold_on(&mut self, chan: sirius_abi::ChannelId, held: bool) {
        let Some(other) = self.relays.get(&chan).map(|b| b.partner) else {
            return;
        };
        if other == chan {
            return; // Echo: nobody else to tell.
        }
        let Some(v) = self.leg_view(other) else {
            return;
        };
        let direction = if held {
            SdpDirection::SendOnly
        } else {
            SdpDirection::SendRecv
        };
        let local = self.local_media(v.codecs, v.rtp_port(), 3, direction);
        let (dialog, transport, dest, previous) =
            (v.dialog.cloned(), v.transport, v.dest, v.reinvite);
        let Some(d) = dialog.and_then(|id| self.dialogs.get_mut(&id)) else {
            return;
        };
        let mut req = d.request(Method::Invite, &self.shared.via(transport), None);
        req.push(
            HeaderName::Contact,
            format!("<{}>", self.shared.contact_uri("", transport)),
        );
        req.push(HeaderName::Allow, self.caps.allow());
        req.set_body(
            "application/sdp",
            sirius_sip::sdp::negotiate::offer(&local).to_bytes(),
        );
        let hop = first_route_hop(&req).unwrap_or(dest);
        if let Some(old) = previous {
            self.owners.remove(&old);
        }
        let owner = Owner::ReInvite {
            chan: other,
            ack: None,
        };
        let tx = self.send_client(req, hop, transport, owner, Instant::now());
        self.note_msg(other, "Tx: INVITE".into());
        match (self.calls.get_mut(&other), self.outbound.get_mut(&other)) {
            (Some(c), _) => c.reinvite = tx,
            (None, Some(c)) => c.reinvite = tx,
            (None, None) => {}
        }
        log::info!(
            "{} passed on to {other}",
            if held { "Hold" } else { "Unhold" }
        );
    }

    /// The answer to a hold/unhold re-INVITE we sent: a 2xx is ACKed (and its
    /// retransmissions get the same ACK), its SDP followed by the relay; a
    /// failure leaves the call as it was.
    fn on_reinvite_response(
        &mut self,
        tx: TxId,
        chan: sirius_abi::ChannelId,
        msg: &Message,
        code: u16,
    ) {
        if code < 200 {
            return;
        }
        if code >= 300 {
            self.owners.remove(&tx);
            return log::warn!("{chan} refused our re-INVITE: {code}");
        }
        let Some(v) = self.leg_view(chan) else {
            return;
        };
        let (dialog, transport, dest) = (v.dialog.cloned(), v.transport, v.dest);
        if let Some(Owner::ReInvite { ack: Some(ack), .. }) = self.owners.get(&tx) {
            let hop = first_route_hop(ack).unwrap_or(dest);
            return self.layer.send_stateless(hop, transport, ack);
        }
        let Some(d) = dialog.and_then(|id| self.dialogs.get_mut(&id)) else {
            return;
        };
        d.refresh_target(msg);
        let cseq = msg.cseq().map(|c| c.seq);
        let ack = d.request(Method::Ack, &self.shared.via(transport), cseq);
        let hop = first_route_hop(&ack).unwrap_or(dest);
        self.layer.send_stateless(hop, transport, &ack);
        if let Some(Owner::ReInvite { ack: slot, .. }) = self.owners.get_mut(&tx) {
            *slot = Some(ack);
        }
        self.note_msg(chan, "Tx: ACK".into());
        if !msg.body.is_empty() {
            self.media_moved(chan, crate::relay::RemoteMedia::from_sdp(&msg.body));
        }
    }

    /// One of our calls, inbound or outbound, through the fields they share.
    fn leg_view(&self, chan: sirius_abi::ChannelId) -> Option<LegView<'_>> {
        if let Some(c) = self.calls.get(&chan) {
            return Some(LegView {
                dialog: c.dialog.as_ref(),
                transport: c.transport,
                dest: c.source,
                rtp: &c.rtp,
                rtcp: &c.rtcp,
                codecs: &c.codecs,
                peer: c.peer.as_deref(),
                remote: &c.remote,
                reinvite: c.reinvite,
            });
        }
        self.outbound.get(&chan).map(|c| LegView {
            dialog: c.dialog.as_ref(),
            transport: c.setup.transport,
            dest: c.setup.dest,
            rtp: &c.rtp,
            rtcp: &c.rtcp,
            codecs: &c.setup.codecs,
            peer: c.setup.peer.as_deref(),
            remote: &c.remote,
            reinvite: c.reinvite,
        })
    }

    /// Our side of an SDP offer or answer: audio in `codecs` on `port` of our
    /// address, telephone-event, a fresh session id.
    fn local_media(
        &self,
        codecs: &[sirius_abi::Codec],
        port: u16,
        session_version: u64,
        direction: SdpDirection,
    ) -> LocalMedia {
        LocalMedia {
            address: self.shared.bound.ip().to_string(),
            session_id: u64::from(rand_u32()),
            session_version,
            audio: crate::tech::format_specs(codecs),
            video: Vec::new(),
            telephone_event: true,
            audio_port: port,
            video_port: 0,
            direction,
        }
    }

    fn chan_for_dialog(&self, id: &sirius_sip::dialog::DialogId) -> Option<sirius_abi::ChannelId> {
        self.by_dialog.get(id).copied()
    }

    /// A request outside any dialog from `from_user` at our address: fresh
    /// branch, tag and Call-ID (OPTIONS pokes, outgoing INVITEs).
    fn new_request(
        &self,
        method: Method,
        ruri: String,
        from_user: &str,
        transport: Transport,
    ) -> Message {
        let bound = self.shared.local(transport);
        let cseq = format!("102 {method}");
        let mut m = Message::request(method, ruri.clone());
        m.push(HeaderName::Via, self.shared.via_rport(transport));
        m.push(HeaderName::MaxForwards, "70");
        m.push(
            HeaderName::From,
            format!("<sip:{from_user}@{bound}>;tag={}", build::random_token()),
        );
        m.push(HeaderName::To, format!("<{ruri}>"));
        m.push(
            HeaderName::CallId,
            format!("{}@{}", build::random_token(), bound.ip()),
        );
        m.push(HeaderName::CSeq, cseq);
        let contact = self.shared.contact_uri(from_user, transport);
        m.push(HeaderName::Contact, format!("<{contact}>"));
        m.push(
            HeaderName::UserAgent,
            &self.shared.running().cfg.general.useragent,
        );
        m
    }

    fn new_outbound(&mut self, setup: OutboundSetup) {
        let chan = setup.chan;
        match self.shared.bind_media() {
            Ok((rtp, rtcp, ports)) => {
                let call = OutboundCall {
                    setup,
                    tx: None,
                    invite: None,
                    rtp: Arc::new(rtp),
                    rtcp: Arc::new(rtcp),
                    _ports: ports,
                    dialog: None,
                    ack: None,
                    remote: crate::relay::RemoteMedia::default(),
                    auth_attempts: 0,
                    redirects: 0,
                    last_msg: String::new(),
                    held: false,
                    reinvite: None,
                    congest_at: None,
                };
                self.put_outbound(chan, call);
            }
            Err(e) => {
                log::error!("no RTP port for an outbound call: {e}");
                self.shared
                    .host
                    .channel_hangup(chan, sirius_abi::Cause::CONGESTION);
            }
        }
    }

    /// `call`: checks the call-limit, then sends the INVITE with our offer.
    /// A refusal leaves the channel to the caller, which hangs it up.
    fn place_call(&mut self, chan: sirius_abi::ChannelId) -> Result<(), sirius_abi::Cause> {
        let Some(call) = self.outbound.get(&chan) else {
            log::warn!("call() for channel {chan}, which chan_sip did not create or already ended");
            return Err(sirius_abi::Cause::FAILURE);
        };
        if call.tx.is_some() {
            // chan_sip's sip_call refuses a channel that is neither Down nor
            // Reserved; a second call() must not send a second INVITE.
            log::warn!(
                "sip_call called on {}, neither down nor reserved",
                call.setup.name
            );
            return Err(sirius_abi::Cause::FAILURE);
        }
        let running = self.shared.running();
        let limited = call
            .setup
            .peer
            .as_ref()
            .and_then(|n| running.peers.get(n))
            .filter(|p| p.call_limit > 0);
        if let Some(p) = limited {
            // This leg is already counted: over the limit when the count exceeds it.
            let inuse = self.shared.inuse.lock().get(&p.name).copied().unwrap_or(0);
            if inuse > p.call_limit {
                log::warn!(
                    "Call to peer '{}' rejected due to usage limit of {}",
                    p.name,
                    p.call_limit
                );
                self.take_outbound(chan);
                return Err(sirius_abi::Cause::USER_BUSY);
            }
        }
        // Asterisk arms auto-congest at 4 × the peer's qualify maximum.
        let congest_after = call
            .setup
            .peer
            .as_ref()
            .and_then(|n| running.peers.get(n))
            .and_then(|p| p.qualify_maxms)
            .map(|ms| Duration::from_millis(u64::from(ms) * 4));
        let port = call.rtp.local_addr().map_or(0, |a| a.port());
        let local = self.local_media(&call.setup.codecs, port, 1, SdpDirection::SendRecv);
        let caller = if call.setup.caller.is_empty() {
            "sirius".to_string()
        } else {
            escape_user(&call.setup.caller)
        };
        let mut inv = self.new_request(
            Method::Invite,
            call.setup.ruri.clone(),
            &caller,
            call.setup.transport,
        );
        if !call.setup.caller_name.is_empty() {
            if let Some(from) = inv.headers.get(&HeaderName::From).map(str::to_string) {
                let name = call
                    .setup
                    .caller_name
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"");
                inv.headers
                    .set(HeaderName::From, format!("\"{name}\" {from}"));
            }
        }
        inv.push(HeaderName::Allow, self.caps.allow());
        inv.push(HeaderName::Supported, SUPPORTED);
        inv.set_body(
            "application/sdp",
            sirius_sip::sdp::negotiate::offer(&local).to_bytes(),
        );
        self.send_invite(chan, inv);
        // Still there unless the send failed (the call is then already ended).
        if let Some(c) = self.outbound.get_mut(&chan) {
            c.congest_at = congest_after.map(|d| Instant::now() + d);
            if let Some(at) = c.congest_at {
                self.congest_timers.insert((at, chan));
            }
        }
        Ok(())
    }

    fn on_outbound_response(&mut self, chan: sirius_abi::ChannelId, msg: &Message, code: u16) {
        let Some(call) = self.outbound.get_mut(&chan) else {
            return;
        };
        let transport = call.setup.transport;
        let via = self.shared.via(transport);
        // "Don't auto congest anymore since we've gotten something useful back."
        call.congest_at = None;
        let dest = call.setup.dest;
        match code {
            180 | 183 => self
                .shared
                .host
                .channel_set_state(chan, ChannelState::Ringing),
            401 | 407 if call.auth_attempts == 0 => {
                call.auth_attempts += 1;
                if let Some(retry) = self.authorized_retry(chan, msg) {
                    return self.send_invite(chan, retry);
                }
                self.fail_outbound(chan, code);
            }
            300..=399 if call.redirects < MAX_REDIRECTS => {
                if let Some(retry) = self.redirected_retry(chan, msg, code) {
                    return self.send_invite(chan, retry);
                }
                self.fail_outbound(chan, code);
            }
            200..=299 => {
                // A retransmitted 2xx: the same ACK again.
                if let Some(ack) = call.ack.clone() {
                    let dest = first_route_hop(&ack).unwrap_or(dest);
                    return self.layer.send_stateless(dest, transport, &ack);
                }
                let Some(invite) = call.invite.take() else {
                    return;
                };
                call.invite = Some(invite_summary(&invite));
                let contact = self.shared.contact_uri("", transport);
                let mut d = match sirius_sip::dialog::Dialog::from_uac(&invite, msg, &contact) {
                    Ok(d) => d,
                    Err(e) => return log::warn!("bad 2xx to our INVITE: {e}"),
                };
                // The ACK carries the CSeq of the INVITE it acknowledges
                // (a retry after a challenge or redirect has a higher one).
                let cseq = invite.cseq().map_or(102, |c| c.seq);
                let ack = d.request(Method::Ack, &via, Some(cseq));
                let dest = first_route_hop(&ack).unwrap_or(dest);
                self.layer.send_stateless(dest, transport, &ack);
                call.ack = Some(ack);
                call.last_msg = "Tx: ACK".into();
                call.dialog = Some(d.id.clone());
                call.remote = crate::relay::RemoteMedia::from_sdp(&msg.body);
                self.by_dialog.insert(d.id.clone(), chan);
                self.dialogs.insert(d);
                self.shared.host.channel_set_state(chan, ChannelState::Up);
            }
            300..=699 => self.fail_outbound(chan, code),
            _ => {}
        }
    }

    /// No response to our INVITE in time: congestion, as chan_sip's
    /// `auto_congest`. The INVITE transaction is left to run out on its own
    /// (a CANCEL must wait for a provisional response, RFC 3261 §9.1).
    fn auto_congest(&mut self, chan: sirius_abi::ChannelId) {
        let Some(call) = self.outbound.get(&chan) else {
            return;
        };
        log::info!("Auto-congesting {}", call.setup.name);
        self.end_outbound(chan, sirius_abi::Cause::CONGESTION);
    }

    /// Records the last request sent or received on a call.
    fn note_msg(&mut self, chan: sirius_abi::ChannelId, what: String) {
        if let Some(c) = self.calls.get_mut(&chan) {
            c.last_msg = what;
        } else if let Some(c) = self.outbound.get_mut(&chan) {
            c.last_msg = what;
        }
    }

    /// `sip show channels` in chan_sip's layout (`__sip_show_channels`): one row
    /// per call leg, in channel order. Asterisk also lists OPTIONS and REGISTER
    /// dialogs until they are destroyed; Sirius keeps those as transactions
    /// only, so every row here is a call.
    fn show_channels(&self) -> String {
        let row = |a: &str, b: &str, c: &str, d: &str, e: &str, f: &str, g: &str, h: &str| {
            format!(
                "{:<15.15}  {:<15.15}  {:<15.15}  {:<15.15}  {:<7.7}  {:<15.15}  {:<10.10}  {:<10.10}\n",
                a, b, c, d, e, f, g, h
            )
        };
        let formats = |codecs: &[sirius_abi::Codec]| {
            let names: Vec<&str> = codecs.iter().map(|c| c.name()).collect();
            format!("({})", names.join("|"))
        };
        let yes_no = |b: bool| if b { "Yes" } else { "No" };
        let mut out = row(
            "Peer",
            "User/ANR",
            "Call ID",
            "Format",
            "Hold",
            "Last Message",
            "Expiry",
            "Peer",
        );
        let mut legs: Vec<(sirius_abi::ChannelId, String)> = Vec::new();
        for (chan, c) in &self.calls {
            let user = c
                .invite
                .from_header()
                .and_then(|f| Uri::parse(&f.uri).ok())
                .and_then(|u| u.user)
                .unwrap_or_else(|| "(None)".into());
            legs.push((
                *chan,
                row(
                    &c.source.ip().to_string(),
                    &user,
                    c.invite.call_id().unwrap_or(""),
                    &formats(&c.codecs),
                    yes_no(c.held),
                    &c.last_msg,
                    "",
                    c.peer.as_deref().unwrap_or("<guest>"),
                ),
            ));
        }
        for (chan, c) in &self.outbound {
            let user = Uri::parse(&c.setup.ruri)
                .ok()
                .and_then(|u| u.user)
                .unwrap_or_else(|| "(None)".into());
            let call_id = c.invite.as_ref().and_then(|i| i.call_id()).unwrap_or("");
            legs.push((
                *chan,
                row(
                    &c.setup.dest.ip().to_string(),
                    &user,
                    call_id,
                    &formats(&c.setup.codecs),
                    yes_no(c.held),
                    &c.last_msg,
                    "",
                    c.setup.peer.as_deref().unwrap_or("<guest>"),
                ),
            ));
        }
        legs.sort_by_key(|(chan, _)| *chan);
        for (_, r) in &legs {
            out.push_str(r);
        }
        let n = legs.len();
        out.push_str(&format!(
            "{n} active SIP dialog{}\n",
            if n == 1 { "" } else { "s" }
        ));
        out
    }

    /// The call failed with a final response: free it and hang the channel up
    /// with the matching cause.
    fn fail_outbound(&mut self, chan: sirius_abi::ChannelId, code: u16) {
        self.end_outbound(chan, crate::causes::sip_to_cause(code));
    }

    /// Forgets an outbound call (its transactions no longer reach it) and hangs
    /// its channel up with `cause`.
    fn end_outbound(&mut self, chan: sirius_abi::ChannelId, cause: sirius_abi::Cause) {
        self.take_outbound(chan);
        self.shared.host.channel_hangup(chan, cause);
    }

    /// The INVITE again with credentials for the challenge in `resp`: same
    /// Call-ID and tags, next CSeq, new branch (RFC 3261 §22.2). `None` when
    /// the peer has no secret or the challenge cannot be answered.
    fn authorized_retry(&self, chan: sirius_abi::ChannelId, resp: &Message) -> Option<Message> {
        let call = self.outbound.get(&chan)?;
        let running = self.shared.running();
        let Some(peer) = call.setup.peer.as_ref().and_then(|n| running.peers.get(n)) else {
            log::warn!(
                "Call to {} challenged, but it is not a configured peer",
                call.setup.ruri
            );
            return None;
        };
        let Some(secret) = peer.outbound_secret.as_deref() else {
            log::warn!(
                "Peer '{}' challenged our INVITE and has no secret to answer with",
                peer.name
            );
            return None;
        };
        let challenge = match sirius_sip::auth::client::Challenge::from_response(resp) {
            Ok(c) => c.into_iter().next()?,
            Err(e) => {
                log::warn!("Peer '{}' sent an unusable challenge: {e}", peer.name);
                return None;
            }
        };
        let mut invite = call.invite.clone()?;
        let uri = invite.request_uri()?.to_string();
        let cseq = invite.cseq()?.seq + 1;
        let value = match challenge.authorize(
            &peer.username,
            secret,
            "INVITE",
            &uri,
            &invite.body,
            &build::random_token()[..8],
            1,
        ) {
            Ok(v) => v,
            Err(e) => {
                log::warn!("Cannot answer the challenge of peer '{}': {e}", peer.name);
                return None;
            }
        };
        self.next_invite(&mut invite, cseq, call.setup.transport);
        invite.push(challenge.answer_header(), value);
        Some(invite)
    }

    /// The INVITE again towards the first usable `Contact` of a 3xx (RFC 3261
    /// §8.1.3.4): same Call-ID and From tag, next CSeq, new branch, new
    /// Request-URI and destination; the target's `transport` parameter, if
    /// any, picks the transport (else the call keeps its own).
    fn redirected_retry(
        &mut self,
        chan: sirius_abi::ChannelId,
        resp: &Message,
        code: u16,
    ) -> Option<Message> {
        let call = self.outbound.get_mut(&chan)?;
        let contact = resp
            .headers
            .values(&HeaderName::Contact)
            .filter_map(|v| sirius_sip::message::NameAddr::parse_list(v).ok())
            .flatten()
            .find_map(|na| {
                let uri = na.sip_uri().ok()?;
                let addr = uri_socket_addr(&uri)?;
                let transport = uri.params.get("transport").and_then(Transport::parse);
                let target = na.uri.split('?').next().unwrap_or(&na.uri).to_string();
                Some((target, addr, transport))
            });
        let Some((target, dest, transport)) = contact else {
            log::warn!(
                "{code} from {} has no Contact we can follow (a SIP URI that resolves); call fails",
                call.setup.ruri
            );
            return None;
        };
        let mut invite = call.invite.clone()?;
        let cseq = invite.cseq()?.seq + 1;
        log::info!(
            "    -- Call to {} redirected ({code}) to {target}",
            call.setup.ruri
        );
        call.redirects += 1;
        call.auth_attempts = 0;
        call.setup.dest = dest;
        call.setup.transport = transport.unwrap_or(call.setup.transport);
        call.setup.ruri = target.clone();
        if let sirius_sip::message::StartLine::Request { uri, .. } = &mut invite.start {
            *uri = target;
        }
        let transport = call.setup.transport;
        self.next_invite(&mut invite, cseq, transport);
        Some(invite)
    }

    /// Makes `invite` the next request of the same call (RFC 3261 §8.1.3.5):
    /// new branch, CSeq `cseq`, no stale credentials.
    fn next_invite(&self, invite: &mut Message, cseq: u32, transport: Transport) {
        invite
            .headers
            .set(HeaderName::Via, self.shared.via_rport(transport));
        invite
            .headers
            .set(HeaderName::CSeq, format!("{cseq} INVITE"));
        invite.headers.remove(&HeaderName::Authorization);
        invite.headers.remove(&HeaderName::ProxyAuthorization);
    }

    /// Sends an INVITE transaction for an outbound call: the first one, or a
    /// new one after a challenge or a redirect. A send failure ends the call
    /// with FAILURE (the cause of a 500).
    fn send_invite(&mut self, chan: sirius_abi::ChannelId, invite: Message) {
        let Some(call) = self.outbound.get(&chan) else {
            return;
        };
        let (dest, transport) = (call.setup.dest, call.setup.transport);
        if let Some(previous) = call.tx {
            self.owners.remove(&previous);
        }
        match self
            .layer
            .send_request(Instant::now(), invite.clone(), dest, transport)
        {
            Ok(tx) => {
                self.owners.insert(tx, Owner::Outbound(chan));
                if let Some(c) = self.outbound.get_mut(&chan) {
                    c.tx = Some(tx);
                    c.invite = Some(invite);
                    c.last_msg = "Tx: INVITE".into();
                }
            }
            Err(e) => {
                log::warn!("cannot send INVITE to {dest}: {e}");
                self.fail_outbound(chan, 500);
            }
        }
    }

    /// A 2xx that crossed our CANCEL: the call exists at the far end, so it is
    /// acknowledged and ended at once.
    fn end_answered_after_cancel(
        &mut self,
        invite: &Message,
        ok: &Message,
        dest: SocketAddr,
        transport: Transport,
    ) {
        let contact = self.shared.contact_uri("", transport);
        let mut d = match sirius_sip::dialog::Dialog::from_uac(invite, ok, &contact) {
            Ok(d) => d,
            Err(e) => return log::warn!("bad 2xx after our CANCEL: {e}"),
        };
        log::info!(
            "{} answered after our CANCEL: sending ACK and BYE",
            invite.request_uri().unwrap_or("?")
        );
        let cseq = invite.cseq().map_or(1, |c| c.seq);
        let ack = d.request(Method::Ack, &self.shared.via(transport), Some(cseq));
        self.layer
            .send_stateless(first_route_hop(&ack).unwrap_or(dest), transport, &ack);
        let mut bye = d.request(Method::Bye, &self.shared.via(transport), None);
        bye.push(HeaderName::Reason, "Q.850;cause=16");
        let hop = first_route_hop(&bye).unwrap_or(dest);
        self.send_client(bye, hop, transport, Owner::Bye, Instant::now());
    }

    /// CANCEL while ringing, BYE once answered.
    fn hangup_outbound(&mut self, chan: sirius_abi::ChannelId, cause: sirius_abi::Cause) {
        let Some(call) = self.take_outbound(chan) else {
            return;
        };
        match (call.dialog, call.tx) {
            (Some(id), _) => {
                if let Some(mut d) = self.dialogs.remove(&id) {
                    let transport = call.setup.transport;
                    let mut bye = d.request(Method::Bye, &self.shared.via(transport), None);
                    bye.push(HeaderName::Reason, format!("Q.850;cause={}", cause.0));
                    let hop = first_route_hop(&bye).unwrap_or(call.setup.dest);
                    self.send_client(bye, hop, transport, Owner::Bye, Instant::now());
                }
            }
            (None, Some(tx)) => {
                if let Err(e) = self.layer.cancel(Instant::now(), tx) {
                    log::debug!("cannot cancel {tx:?}: {e}");
                }
                if let Some(invite) = call.invite {
                    self.owners.insert(
                        tx,
                        Owner::Cancelled {
                            invite,
                            dest: call.setup.dest,
                            transport: call.setup.transport,
                        },
                    );
                }
            }
            (None, None) => {}
        }
    }
}

/// Where an in-dialog request goes when the dialog has a route set (RFC 3261
/// §12.2.1.1): the first `Route` when it is a loose router (`;lr`); else the
/// Request-URI, which the dialog layer made the strict router's URI (the
/// remote target then rides as the last Route). `None` without a Route (or
/// with one that does not resolve): the caller then uses the leg's known address.
fn first_route_hop(req: &Message) -> Option<SocketAddr> {
    let route = req.headers.get(&HeaderName::Route)?;
    let first = sirius_sip::message::NameAddr::parse_list(route)
        .ok()?
        .into_iter()
        .next()?;
    let first = first.sip_uri().ok()?;
    if first.params.has("lr") {
        return uri_socket_addr(&first);
    }
    uri_socket_addr(&Uri::parse(req.request_uri()?).ok()?)
}

/// The address a SIP URI names (default port 5060). A host name is looked up
/// through the system resolver (A/AAAA; no NAPTR/SRV, as Asterisk without
/// `srvlookup`), inline: names appear here only in redirects and route sets,
/// rare next to the traffic the monitor carries, and chan_sip's monitor
/// resolves in its thread the same way.
fn uri_socket_addr(uri: &Uri) -> Option<SocketAddr> {
    let port = uri.port.unwrap_or(5060);
    let ip = match &uri.host {
        sirius_sip::message::Host::V4(a) => std::net::IpAddr::V4(*a),
        sirius_sip::message::Host::V6(a) => std::net::IpAddr::V6(*a),
        sirius_sip::message::Host::Name(name) => {
            return match crate::config::resolve_host(name, port) {
                Ok(addr) => Some(addr),
                Err(e) => {
                    log::warn!("{e}");
                    None
                }
            }
        }
    };
    Some(SocketAddr::new(ip, port))
}

/// A caller ID number as the user part of a SIP URI (RFC 3261 §25.1 `user`):
/// characters outside the unreserved and user-unreserved sets are %-escaped.
fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn rand_u32() -> u32 {
    u32::from_str_radix(&build::random_token()[..8], 16).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::escape_user;

    #[test]
    fn caller_ids_become_valid_uri_users() {
        assert_eq!(escape_user("+34 600-123"), "+34%20600-123");
        assert_eq!(escape_user("alice"), "alice");
        assert_eq!(escape_user("a@b:c"), "a%40b%3Ac");
        assert_eq!(escape_user("Zoë"), "Zo%C3%AB");
    }
}
