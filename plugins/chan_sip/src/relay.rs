//! The native RTP bridge: two legs of a call, both ours, relay each other's
//! media packets without decoding them and without any frame crossing into the
//! core (Asterisk's `bridge_p2p_rtp_write`).
//!
//! A leg's far end is taken from its SDP. With `comedia` (or when the SDP gave
//! no usable address) the far end is learned from where packets come from —
//! what a phone behind NAT needs.
//!
//! RFC 4733 events (DTMF) are relayed too. Each leg's far end chose its own
//! payload type for `telephone-event` in its SDP; when the two differ, the
//! relay renumbers event packets on the way (the payload itself is the same).

use crate::epoll::{Batch, Epoll, BATCH};
use crate::rtp_ports::RtpSocket;
use parking_lot::Mutex;
use sirius_sip::sdp::SessionDescription;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What a far end's SDP says about its audio, from its first active audio
/// stream, parsed once per body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where it receives RTP (`None` when held at 0.0.0.0 or unusable).
    pub addr: Option<SocketAddr>,
    /// Its payload type for RFC 4733 `telephone-event` (8 kHz).
    pub dtmf_pt: Option<u8>,
    /// The G.711 payload types it accepts (0 µ-law, 8 A-law).
    pub g711: Vec<u8>,
    /// Where it receives video RTP, from its first active video stream.
    pub video: Option<SocketAddr>,
}

impl RemoteMedia {
    /// Reads an SDP body; an unparsable one (or none) describes nothing.
    pub fn from_sdp(body: &[u8]) -> RemoteMedia {
        SessionDescription::parse(body).map_or_else(
            |_| RemoteMedia::default(),
            |sd| RemoteMedia::from_description(&sd),
        )
    }

    /// Reads an SDP already parsed (an offer that was checked first).
    pub fn from_description(sd: &SessionDescription) -> RemoteMedia {
        let addr_of = |m: &sirius_sip::sdp::Media| {
            sd.connection_for(m)
                .and_then(|c| {
                    c.address
                        .split('/')
                        .next()?
                        .parse::<std::net::IpAddr>()
                        .ok()
                })
                .filter(|ip| !ip.is_unspecified())
                .map(|ip| SocketAddr::new(ip, m.port))
        };
        let video = sd
            .media
            .iter()
            .find(|m| m.kind == "video" && m.port != 0)
            .and_then(addr_of);
        let Some(m) = sd.media.iter().find(|m| m.kind == "audio" && m.port != 0) else {
            return RemoteMedia {
                video,
                ..RemoteMedia::default()
            };
        };
        let addr = addr_of(m);
        let formats = m.rtp_formats();
        let dtmf_pt = formats
            .iter()
            .find(|f| f.encoding.eq_ignore_ascii_case("telephone-event") && f.clock_rate == 8000)
            .map(|f| f.pt);
        let g711 = formats
            .iter()
            .filter(|f| f.clock_rate == 8000)
            .filter_map(|f| match f.encoding.to_ascii_uppercase().as_str() {
                "PCMU" => Some(0),
                "PCMA" => Some(8),
                _ => None,
            })
            .collect();
        RemoteMedia {
            addr,
            dtmf_pt,
            g711,
            video,
        }
    }
}

/// Which G.711 law a far end needs the other law's packets translated to,
/// worked out once per SDP rather than per packet: `[µ-law packets, A-law
/// packets]`, true where the far end takes only the other law (Asterisk's
/// generic bridge with a translator, done here on the packet). Empty
/// `accepts` (unknown): relay as is.
fn g711_swaps(accepts: &[u8]) -> [bool; 2] {
    use sirius_abi::Codec;
    // The static payload types of G.711 (RFC 3551): 0 µ-law, 8 A-law.
    let pt_of = |c: Codec| if c == Codec::PCMU { 0 } else { 8 };
    let needs = |from| {
        sirius_media::translate::g711_target(from, |c| accepts.contains(&pt_of(c))).is_some()
    };
    [needs(Codec::PCMU), needs(Codec::PCMA)]
}

/// Translates a G.711 packet into the other law where `swaps` (from
/// [`g711_swaps`]) says its far end needs it. RTP header length honours
/// CSRCs and the extension bit; anything unusual is left alone.
fn translate_g711(packet: &mut [u8], swaps: [bool; 2]) {
    use sirius_abi::Codec;
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return;
    }
    let (from, to, to_pt) = match packet[1] & 0x7f {
        0 if swaps[0] => (Codec::PCMU, Codec::PCMA, 8),
        8 if swaps[1] => (Codec::PCMA, Codec::PCMU, 0),
        _ => return,
    };
    let mut header = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let Some(ext) = packet.get(header + 2..header + 4) else {
            return;
        };
        header += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let Some(payload) = packet.get_mut(header..) else {
        return;
    };
    sirius_media::translate::transcode_g711(payload, from, to);
    packet[1] = (packet[1] & 0x80) | to_pt;
}

/// Rewrites an RTP packet's payload type `from` into `to` (marker bit kept).
fn renumber(packet: &mut [u8], from: Option<u8>, to: Option<u8>) {
    if let (Some(from), Some(to), Some(b)) = (from, to, packet.get_mut(1)) {
        if from != to && *b & 0x7f == from {
            *b = (*b & 0x80) | to;
        }
    }
}

/// One leg as the relay sees it.
pub struct Leg {
    /// Our RTP (or RTCP) socket for the leg, shared with the call that
    /// reserved its port; non-blocking (the port pool binds it so).
    pub socket: Arc<RtpSocket>,
    /// Where the leg's far end receives media.
    pub remote: Option<SocketAddr>,
    /// Learn the far end from received packets (comedia).
    pub learn: bool,
    /// The far end's `telephone-event` payload type (RTP legs only).
    pub dtmf_pt: Option<u8>,
    /// The G.711 payload types the far end accepts (RTP legs only; empty:
    /// unknown, relay as is).
    pub g711: Vec<u8>,
    /// The far end takes DTMF as SIP INFO (`dtmfmode = "info"`): telephone
    /// events relayed towards it are not sent but reported, once per
    /// digit, with this tag (the channel), for the endpoint to send INFO.
    pub info_dtmf: Option<u64>,
}

/// A digit the relay took out of an RTP stream for an INFO leg: the tag of
/// the leg it was for, the digit, its duration in ms.
pub type DtmfReport = Box<dyn Fn(u64, char, u32) + Send + Sync>;

/// Which counter a relayed packet goes to (`sip show settings`-style totals).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Rtp,
    Rtcp,
}

/// A socket the relay thread reads: its leg, and the entry whose socket the
/// packets leave by (itself for an echo).
struct Entry {
    leg: Leg,
    /// The leg's socket's descriptor, read here rather than through the
    /// `Arc` (kept in `leg`, which keeps it open): the `Arc`'s heap block
    /// was a cache miss per packet, the relay's costliest instruction.
    fd: RawFd,
    /// What packets towards this leg's far end need translated
    /// ([`g711_swaps`] of its `g711`).
    swaps: [bool; 2],
    out: usize,
    stream: Stream,
    /// When a packet last arrived (or the entry was made): `rtptimeout`.
    last_rx: Instant,
    /// The timestamp of the last telephone event reported from this leg
    /// (its end is sent three times; reported once).
    last_event: Option<u32>,
    /// The stream heard from this leg's far end (RTP legs): its SSRC and
    /// the sequence number expected next; a packet further on means the
    /// ones between were lost.
    next_seq: Option<Expected>,
}

/// Gaps in sequence numbers larger than this are a new stream (a far end
/// that restarted, another source), not losses.
const MAX_GAP: u16 = 3000;

/// A far end's RTP stream: its source (SSRC) and the sequence number due
/// next from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expected {
    pub ssrc: u32,
    pub seq: u16,
}

/// The packets missing before `packet` on a leg that expected `next`, and
/// what it expects after it. Only RTP counts: version 2, a whole header,
/// not RTCP sharing the port (RFC 5761: payload types 72–76 with the marker
/// bit are RTCP's 200–204). Another SSRC is another stream (a far end that
/// restarted, a re-INVITE's new source), which starts afresh with no loss.
/// A late or repeated packet counts nothing (and is not taken back from the
/// losses: an estimate, as RFC 3550's cumulative count is for a reordered
/// stream).
fn rtp_gap(next: Option<Expected>, packet: &[u8]) -> (u64, Option<Expected>) {
    let [b0, b1, s0, s1, _, _, _, _, i0, i1, i2, i3, ..] = *packet else {
        return (0, next);
    };
    if b0 & 0xC0 != 0x80 || (72..=76).contains(&(b1 & 0x7f)) {
        return (0, next);
    }
    let (seq, ssrc) = (
        u16::from_be_bytes([s0, s1]),
        u32::from_be_bytes([i0, i1, i2, i3]),
    );
    let after = Some(Expected {
        ssrc,
        seq: seq.wrapping_add(1),
    });
    match next {
        Some(n) if n.ssrc == ssrc => {
            let ahead = seq.wrapping_sub(n.seq);
            if ahead < MAX_GAP {
                (u64::from(ahead), after)
            } else if ahead > u16::MAX - MAX_GAP {
                (0, next) // late or repeated
            } else {
                (0, after) // a jump: a new stream
            }
        }
        _ => (0, after),
    }
}

/// The relay's sockets, indexed by epoll token.
#[derive(Default)]
struct Table {
    /// RTP packets found missing since the relay thread last took the count.
    lost: u64,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
}

impl Table {
    /// Sockets in use.
    fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Once the last bridge is gone: the room of the most sockets there
    /// were goes back (a slot is about 130 bytes, four a call: 2 MB after
    /// 4,000 calls, issue #11). No token is in use then.
    fn release(&mut self) {
        if self.is_empty() {
            *self = Table::default();
        }
    }

    fn insert(&mut self, e: Entry) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(e);
                i
            }
            None => {
                self.slots.push(Some(e));
                self.slots.len() - 1
            }
        }
    }

    /// Reads the packets waiting on `token`'s socket (one `recvmmsg`, most
    /// often one packet) and sends them on from its partner's (one
    /// `sendmmsg`): the stream they count to and how many left.
    fn relay_ready(
        &mut self,
        token: usize,
        batch: &mut Batch,
        now: Instant,
        report: &DtmfReport,
    ) -> Option<(Stream, u64)> {
        batch.clear();
        let a = self.slots.get_mut(token)?.as_mut()?;
        // SAFETY: `a.leg.socket` keeps the descriptor open while `a` lives.
        let n = batch.recv(unsafe { BorrowedFd::borrow_raw(a.fd) }).ok()?;
        if n == 0 {
            return None;
        }
        a.last_rx = now;
        if a.stream == Stream::Rtp {
            let mut next = a.next_seq;
            for i in 0..n {
                let (gap, after) = rtp_gap(next, batch.packet(i));
                self.lost += gap;
                next = after;
            }
            a.next_seq = next;
        }
        if a.leg.learn || a.leg.remote.is_none() {
            // The last packet's source, as packet by packet would leave it.
            a.leg.remote = batch.source(n - 1).or(a.leg.remote);
        }
        let (out, from_dtmf, stream) = (a.out, a.leg.dtmf_pt, a.stream);
        let echo = out == token;
        if let Some(from_pt) = from_dtmf.filter(|_| !echo) {
            // Cheapest test first: only a telephone-event packet looks at
            // whether the other leg takes DTMF as INFO.
            let is_event = |p: &[u8]| p.len() > 1 && p[1] & 0x7f == from_pt;
            if (0..n).any(|i| is_event(batch.packet(i))) {
                if let Some(tag) = self.slots.get(out)?.as_ref()?.leg.info_dtmf {
                    let a = self.slots.get_mut(token)?.as_mut()?;
                    for i in 0..n {
                        let packet = batch.packet(i);
                        if !is_event(packet) {
                            continue;
                        }
                        // An event for a leg that takes INFO: reported
                        // (once per digit), not sent.
                        if let Some(e) = crate::rfc4733::parse(packet) {
                            if e.end && a.last_event != Some(e.timestamp) {
                                a.last_event = Some(e.timestamp);
                                report(tag, e.digit, u32::from(e.duration) / 8);
                            }
                        }
                        batch.drop_packet(i);
                    }
                }
            }
        }
        let b = self.slots.get(out)?.as_ref()?;
        if !echo && (from_dtmf.is_some() || b.swaps != [false; 2]) {
            for i in 0..n {
                let packet = batch.packet_mut(i);
                renumber(packet, from_dtmf, b.leg.dtmf_pt);
                translate_g711(packet, b.swaps);
            }
        }
        // An echo goes back to where the leg's SDP says it receives, like
        // any relayed packet, not to the packet's source, unless the peer
        // is behind NAT (comedia) or gave no address: then the source it
        // was learned from above.
        let dest = b.leg.remote?;
        // SAFETY: `b.leg.socket` keeps the descriptor open while `b` lives.
        let sent = batch.send(unsafe { BorrowedFd::borrow_raw(b.fd) }, dest);
        Some((stream, sent as u64))
    }
}

/// Token of the socket that wakes the relay thread for shutdown.
const WAKE: u64 = u64::MAX;

/// A change to what the relay thread watches. The SIP monitor only queues
/// these: `epoll_ctl`, `fcntl` and the final `close` of a call's sockets were
/// a tenth of its time per call, and the relay thread is idle for calls
/// that carry no media. Applied in order before each wait, so a socket
/// watched and unwatched in between ends up unwatched.
enum Op {
    Watch(usize, Arc<RtpSocket>),
    Unwatch(Arc<RtpSocket>),
}

/// How long the relay thread sleeps at most while it relays, and so how
/// late a new bridge's sockets are watched (packets that arrive before wait
/// in the socket's buffer; nothing is lost). With nothing to relay it sleeps
/// until woken: an idle PBX does not tick.
const TURN_MS: i32 = 10;

struct Inner {
    epoll: Epoll,
    table: Mutex<Table>,
    ops: Mutex<Vec<Op>>,
    stop: AtomicBool,
    /// The relay thread sleeps without a timeout (no bridge): whoever queues
    /// work must wake it.
    idle: AtomicBool,
    rtp_relayed: Arc<AtomicU64>,
    rtcp_relayed: Arc<AtomicU64>,
    rtp_lost: Arc<AtomicU64>,
}

/// The native bridges' packet mover: one thread of its own (per SIP shard)
/// reading every bridged socket through an edge-triggered epoll, each
/// readable socket drained with one `recvmmsg`, and sending its packets on
/// from the other leg's socket (`sendto`, or one `sendmmsg` for several).
/// Packets never touch the SIP monitor's runtime: a task per bridge there
/// cost a task wake and a second, failing `recvfrom` per packet, and competed
/// with signalling for the monitor's thread. bench/rtp_relay.sh measures it
/// against a minimal C relay (bench/c_relay.c) carrying the same streams in
/// the same run: at 1,000 calls its CPU per packet is within 1.2 × the C
/// relay's (bench/report-rtp_relay.md).
pub struct RelayEngine {
    inner: Arc<Inner>,
    wake: UnixDatagram,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The sockets of one bridge or echo in the relay, to remove it with.
#[derive(Debug)]
pub struct RelayHandle {
    tokens: Vec<usize>,
}

impl RelayEngine {
    /// Starts the relay thread; relayed packets are counted in the first two
    /// counters, RTP packets found missing in the third. Digits taken out of
    /// streams for INFO legs go to `report`.
    pub fn start(
        (rtp_relayed, rtcp_relayed, rtp_lost): (Arc<AtomicU64>, Arc<AtomicU64>, Arc<AtomicU64>),
        report: DtmfReport,
    ) -> std::io::Result<RelayEngine> {
        let (wake, wake_rx) = UnixDatagram::pair()?;
        wake_rx.set_nonblocking(true)?;
        let inner = Arc::new(Inner {
            epoll: Epoll::new()?,
            table: Mutex::new(Table::default()),
            ops: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            rtp_relayed,
            rtcp_relayed,
            rtp_lost,
        });
        inner.epoll.add(wake_rx.as_fd(), WAKE)?;
        let run = inner.clone();
        let thread = std::thread::Builder::new()
            .name("sip-rtp-relay".into())
            .spawn(move || relay_thread(&run, &wake_rx, &report))?;
        Ok(RelayEngine {
            inner,
            wake,
            thread: Some(thread),
        })
    }

    /// Relays `a` and `b` to each other until removed.
    pub fn bridge(&self, a: Leg, b: Leg, stream: Stream) -> RelayHandle {
        self.add(vec![a, b], stream)
    }

    /// Sends everything `leg` receives back to where it came from.
    pub fn echo(&self, leg: Leg, stream: Stream) -> RelayHandle {
        self.add(vec![leg], stream)
    }

    /// One leg is its own partner (echo); two are each other's.
    fn add(&self, legs: Vec<Leg>, stream: Stream) -> RelayHandle {
        let mut table = self.inner.table.lock();
        let mut ops = Vec::with_capacity(legs.len());
        // Pushed into a vector of their own size, not collected from
        // `legs.into_iter()`: that reuses the legs' allocation, about ten
        // times what the tokens need, for the bridge's life (issue #11).
        let mut tokens = Vec::with_capacity(legs.len());
        for leg in legs {
            let socket = leg.socket.clone();
            let t = table.insert(Entry {
                fd: socket.as_raw_fd(),
                swaps: g711_swaps(&leg.g711),
                leg,
                out: usize::MAX,
                stream,
                last_rx: Instant::now(),
                last_event: None,
                next_seq: None,
            });
            ops.push(Op::Watch(t, socket));
            tokens.push(t);
        }
        let n = tokens.len();
        for (i, t) in tokens.iter().enumerate() {
            if let Some(e) = table.slots[*t].as_mut() {
                e.out = tokens[(i + 1) % n];
            }
        }
        drop(table);
        self.inner.ops.lock().extend(ops);
        if self.inner.idle.swap(false, Ordering::SeqCst) {
            let _ = self.wake.send(&[1]);
        }
        RelayHandle { tokens }
    }

    /// Stops relaying a bridge or echo at once; the relay thread stops
    /// watching its sockets (and drops its references) on its next turn.
    pub fn remove(&self, handle: RelayHandle) {
        let mut table = self.inner.table.lock();
        let mut ops = Vec::with_capacity(handle.tokens.len());
        for t in handle.tokens {
            if let Some(e) = table.slots.get_mut(t).and_then(Option::take) {
                ops.push(Op::Unwatch(e.leg.socket));
                table.free.push(t);
            }
        }
        drop(table);
        self.inner.ops.lock().extend(ops);
    }

    /// A far end moved (a re-INVITE with a new SDP): leg `index` of the
    /// bridge (0 or 1, the order given to [`RelayEngine::bridge`]) now sends
    /// to `remote`, renumbering and translating for its new payload types.
    /// `None` (held at 0.0.0.0) sends it nothing until it comes back, or
    /// until a packet from it teaches the address (comedia).
    pub fn set_remote(
        &self,
        handle: &RelayHandle,
        index: usize,
        remote: Option<SocketAddr>,
        dtmf_pt: Option<u8>,
        g711: &[u8],
    ) {
        let mut table = self.inner.table.lock();
        let Some(t) = handle.tokens.get(index) else {
            return;
        };
        if let Some(e) = table.slots.get_mut(*t).and_then(Option::as_mut) {
            e.leg.remote = remote;
            // What it sends next may be another stream: losses count from
            // its first packet.
            e.next_seq = None;
            if e.stream == Stream::Rtp {
                e.leg.dtmf_pt = dtmf_pt;
                e.leg.g711 = g711.to_vec();
                e.swaps = g711_swaps(g711);
            }
        }
    }

    /// Sends a digit as RFC 4733 events to leg `index`'s far end, from its
    /// socket, with its telephone-event payload type (a digit an INFO leg
    /// sent, for a leg that expects RTP events). A stream of its own: its
    /// SSRC, sequence and timestamp are random.
    pub fn send_dtmf(&self, handle: &RelayHandle, index: usize, digit: char, duration_ms: u32) {
        let Some(t) = handle.tokens.get(index) else {
            return;
        };
        let table = self.inner.table.lock();
        let Some(e) = table.slots.get(*t).and_then(Option::as_ref) else {
            return;
        };
        let (Some(pt), Some(dest)) = (e.leg.dtmf_pt, e.leg.remote) else {
            return log::info!("no telephone-event payload type or address to send '{digit}' to");
        };
        let r = u64::from_str_radix(&sirius_sip::message::build::random_token(), 16).unwrap_or(1);
        for p in crate::rfc4733::packets(
            pt,
            digit,
            duration_ms,
            r as u32,
            (r >> 32) as u16,
            (r >> 48) as u32,
        ) {
            let _ = e.leg.socket.send_to(&p, dest);
        }
    }

    /// When leg `index` of a bridge (0 or 1, as given to
    /// [`RelayEngine::bridge`]; 0 for an echo) last received a packet, or
    /// was added when it has received none.
    pub fn last_rx(&self, handle: &RelayHandle, index: usize) -> Option<Instant> {
        let t = *handle.tokens.get(index)?;
        let table = self.inner.table.lock();
        table.slots.get(t)?.as_ref().map(|e| e.last_rx)
    }

    /// Sockets the relay reads.
    #[cfg(test)]
    fn sockets(&self) -> usize {
        self.inner.table.lock().len()
    }
}

impl Drop for RelayEngine {
    /// The thread runs this plugin's code: it must be gone before the
    /// library can be unloaded.
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(&[1]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn relay_thread(inner: &Inner, wake: &UnixDatagram, report: &DtmfReport) {
    let mut events = Vec::with_capacity(256);
    let mut batch = Batch::new();
    // Memory was given back since the last bridge went (see below).
    let mut released = true;
    while !inner.stop.load(Ordering::SeqCst) {
        let ops = std::mem::take(&mut *inner.ops.lock());
        for op in ops {
            match op {
                // Non-blocking already: the port pool binds them so.
                Op::Watch(token, socket) => {
                    if let Err(e) = inner.epoll.add(socket.as_fd(), token as u64) {
                        log::error!("RTP relay cannot watch a socket: {e}");
                    }
                }
                // Not watched if its Watch failed: nothing to undo then.
                Op::Unwatch(socket) => drop(inner.epoll.delete(socket.as_fd())),
            }
        }
        // Idle (no socket to read) and nothing queued: sleep until woken. The
        // flag is set before the queue is checked, and `add` queues before
        // it reads the flag, so one of the two always sees the other.
        let mut timeout = TURN_MS;
        if inner.table.lock().is_empty() {
            inner.idle.store(true, Ordering::SeqCst);
            if inner.ops.lock().is_empty() {
                timeout = -1;
                // Going to sleep with nothing to relay: the table's room
                // and what this thread's heap holds free go back, once per
                // idle spell (the SIP thread's collection cannot reach this
                // thread's heap).
                if !std::mem::replace(&mut released, true) {
                    inner.table.lock().release();
                    crate::session::memory::collect_thread_heap();
                }
            } else {
                inner.idle.store(false, Ordering::SeqCst);
                continue;
            }
        } else {
            released = false;
        }
        let waited = inner.epoll.wait(&mut events, timeout);
        inner.idle.store(false, Ordering::SeqCst);
        if let Err(e) = waited {
            log::error!("RTP relay stopped: epoll_wait failed: {e}");
            return;
        }
        let (mut rtp, mut rtcp) = (0u64, 0u64);
        // One clock read per turn stamps every packet of the turn.
        let now = Instant::now();
        let mut table = inner.table.lock();
        for ev in &events {
            match crate::epoll::token(ev) {
                WAKE => {
                    let mut b = [0u8; 8];
                    while wake.recv(&mut b).is_ok() {}
                }
                // Edge-triggered: read until a read leaves the socket empty
                // (fewer packets than a batch holds), nearly always the first.
                t => loop {
                    match table.relay_ready(t as usize, &mut batch, now, report) {
                        Some((Stream::Rtp, n)) => rtp += n,
                        Some((Stream::Rtcp, n)) => rtcp += n,
                        None => {}
                    }
                    if batch.count() < BATCH {
                        break;
                    }
                },
            }
        }
        let lost = std::mem::take(&mut table.lost);
        drop(table);
        inner.rtp_relayed.fetch_add(rtp, Ordering::Relaxed);
        inner.rtcp_relayed.fetch_add(rtcp, Ordering::Relaxed);
        if lost > 0 {
            inner.rtp_lost.fetch_add(lost, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests;
