//! The endpoint's call flows with simulated time: no socket, no clock, no
//! core. A [`Phone`]-side script feeds datagrams in, the [`Harness`] reads
//! what the endpoint sends and asks for, and time moves only when a test
//! moves it, so every timer is checked at its exact instant.

use super::*;
use crate::config::SipConfig;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, ROption, RResult, RStr, RString, RVec, Tuple2};
use sirius_abi::services::{CoreServices, CoreServices_TO, LogLevel, SchedCallbackBox};
use sirius_abi::ChannelState;
use sirius_abi::{Capabilities, Codec, Frame, Indication};
use sirius_sip::message::{build, parse_datagram, HeaderName, Limits, Message, Method};

/// A host that does nothing: the endpoint never calls it (everything it
/// tells the core is an [`Output`]); `Shared` just needs one.
#[derive(Clone)]
struct NoHost;

impl CoreServices for NoHost {
    fn log(&self, _: LogLevel, _: RStr<'_>, _: RStr<'_>) {}
    fn max_log_level(&self) -> LogLevel {
        LogLevel::Off
    }
    fn sched_add(&self, _: u32, _: SchedCallbackBox) -> u64 {
        unreachable!("the endpoint schedules nothing on the host")
    }
    fn sched_del(&self, _: u64) -> bool {
        false
    }
    fn channel_alloc(&self, _: ChannelSpec) -> RResult<ChannelInfo, Cause> {
        unreachable!("allocation goes through Env")
    }
    fn channel_set_state(&self, _: ChannelId, _: ChannelState) {
        unreachable!("a host action")
    }
    fn channel_set_codecs(&self, _: ChannelId, _: RVec<Codec>) {}
    fn channel_hangup(&self, _: ChannelId, _: Cause) {
        unreachable!("a host action")
    }
    fn queue_frame(&self, _: ChannelId, _: Frame) {}
    fn pbx_start(&self, _: ChannelId) -> RResult<(), Cause> {
        unreachable!("goes through Env")
    }
    fn post_event(&self, _: RStr<'_>, _: RVec<Tuple2<RString, RString>>) {
        unreachable!("a host action")
    }
    fn config_dir(&self) -> RString {
        RString::new()
    }
    fn data_dir(&self) -> RString {
        RString::new()
    }
    fn translatable(&self, _: Capabilities, _: Capabilities) -> bool {
        false
    }
    fn channel_caller_id(&self, _: ChannelId) -> ROption<Tuple2<RString, RString>> {
        ROption::RNone
    }
}

/// The module's shared state on `sip_toml`, bound to 127.0.0.1:5060.
fn shared(sip_toml: &str) -> Arc<Shared> {
    shared_over(sip_toml, 1)
}

/// The same, for `shards` endpoint shards.
fn shared_over(sip_toml: &str, shards: usize) -> Arc<Shared> {
    let cfg: SipConfig =
        sirius_conf::parse_toml(std::path::Path::new("sip.toml"), sip_toml).expect("sip.toml");
    let peers = cfg
        .resolve_peers("sip.toml")
        .expect("peers")
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let realm = cfg.general.realm.clone();
    let senders = (0..shards)
        .map(|_| tokio::sync::mpsc::unbounded_channel().0)
        .collect();
    let host =
        sirius_abi::guest::Host::new(CoreServices_TO::from_ptr(RArc::new(NoHost), TD_Opaque));
    Arc::new(Shared {
        host,
        config_path: "sip.toml".into(),
        running: parking_lot::RwLock::new(Arc::new(crate::Running { cfg, peers })),
        registrar: parking_lot::Mutex::new(crate::registrar::Registrar::new(&realm, None, 0)),
        bound: "127.0.0.1:5060".parse().unwrap(),
        tcp_bound: None,
        debug: Default::default(),
        debug_addr: Default::default(),
        stopping: Default::default(),
        qualify: Default::default(),
        outbound: Default::default(),
        shards: crate::shards::Shards::new(senders),
        in_use: Default::default(),
        mwi: Default::default(),
        lines: Default::default(),
        publications: Default::default(),
        rtp_relayed: Default::default(),
        rtcp_relayed: Default::default(),
        lag: (0..shards)
            .map(|_| parking_lot::Mutex::new(crate::lag::LagMeter::new(std::time::Instant::now())))
            .collect(),
        wait: (0..shards)
            .map(|_| parking_lot::Mutex::new(crate::lag::LagMeter::new(std::time::Instant::now())))
            .collect(),
        rtp_ports: crate::rtp_ports::RtpPorts::new(),
        stats: crate::metrics::SipStats::new(1),
    })
}

/// A blind transfer asked of the core: transferor, context, exten, variables.
type Transfer = (ChannelId, String, String, Vec<(String, String)>);

/// The core and the machine as the endpoint sees them through [`Env`].
#[derive(Default)]
struct FakeEnv {
    next_chan: u64,
    /// Hints the dialplan would have: (context, exten) → extension state.
    hints: std::collections::HashMap<(String, String), i32>,
    /// Hint watches made (watch id → subscription key) and not ended.
    watches: std::collections::HashMap<u64, u64>,
    /// Mailbox counts the core would have, by mailbox as the peer names it.
    mailboxes: std::collections::HashMap<String, sirius_sip::mwi::Counts>,
    /// Mailbox watches made and not ended.
    mwi_watches: std::collections::HashMap<u64, MwiTarget>,
    next_watch: u64,
    allocated: Vec<(ChannelId, ChannelSpec)>,
    started: Vec<ChannelId>,
    refuse_pbx: Option<Cause>,
    reserved: Vec<(ChannelId, StreamKind)>,
    /// How long each channel's far end has sent no RTP (absent: not relayed).
    idle: std::collections::HashMap<ChannelId, Duration>,
    /// The relay thread did not start.
    no_relay: bool,
    /// What the relay carries, kept as the driver keeps it: from the
    /// endpoint's bridge, echo and release actions.
    bridges: std::collections::HashMap<ChannelId, ChannelId>,
    /// The event loop's lag the driver would measure.
    lag: Duration,
    /// RTP pairs left in the range (`None`: plenty).
    media_free: Option<usize>,
    /// Inbound legs with a pair set aside for their callee (or, handed
    /// over, outbound legs about to take it).
    spares: Vec<ChannelId>,
    /// Audio reservations served from a spare.
    from_spare: Vec<ChannelId>,
    /// No pair left to set aside.
    no_spare: bool,
    /// Channel variables the core would answer with.
    vars: std::collections::HashMap<(ChannelId, String), String>,
    /// Blind transfers asked for: transferor, context, exten, variables.
    transfers: Vec<Transfer>,
    /// Pickups and replacements asked for: (what, old, new).
    replaced: Vec<(&'static str, ChannelId, ChannelId)>,
    /// Attended transfers asked for: (t1, t2).
    attended: Vec<(ChannelId, ChannelId)>,
    /// What the core answers a blind transfer with (`None`: the
    /// transferor's bridge partner, from `bridges`).
    transfer_result: Option<Result<ChannelId, Cause>>,
}

impl Env for FakeEnv {
    fn channel_alloc(&mut self, spec: ChannelSpec) -> Result<ChannelInfo, Cause> {
        self.next_chan += 1;
        let id = ChannelId(self.next_chan);
        let name = format!("SIP/{}-{:08x}", spec.resource, self.next_chan);
        self.allocated.push((id, spec));
        Ok(ChannelInfo {
            id,
            name: name.into(),
            uniqueid: "1.1".into(),
        })
    }

    fn pbx_start(&mut self, chan: ChannelId) -> Result<(), Cause> {
        self.started.push(chan);
        self.refuse_pbx.map_or(Ok(()), Err)
    }

    fn reserve_media(&mut self, chan: ChannelId, kind: StreamKind) -> Result<u16, String> {
        if let Some(i) = self.spares.iter().position(|c| *c == chan) {
            if kind == StreamKind::Audio {
                self.spares.remove(i);
                self.from_spare.push(chan);
                return Ok(12_000 + 2 * self.from_spare.len() as u16);
            }
        }
        self.reserved.push((chan, kind));
        Ok(10_000 + 2 * self.reserved.len() as u16)
    }

    fn media_idle(&mut self, chan: ChannelId, _now: Instant) -> Option<Duration> {
        self.idle.get(&chan).copied()
    }

    fn relay_ready(&mut self) -> bool {
        !self.no_relay
    }

    fn hint_watch(&mut self, context: &str, exten: &str, key: u64) -> Option<(u64, i32)> {
        let state = *self.hints.get(&(context.to_string(), exten.to_string()))?;
        self.next_watch += 1;
        self.watches.insert(self.next_watch, key);
        Some((self.next_watch, state))
    }

    fn mwi_watch(
        &mut self,
        mailboxes: &str,
        target: MwiTarget,
    ) -> Option<(u64, sirius_sip::mwi::Counts)> {
        let counts = mailboxes
            .split(',')
            .map(|m| self.mailboxes.get(m).copied().unwrap_or_default())
            .fold(sirius_sip::mwi::Counts::default(), |a, c| {
                sirius_sip::mwi::Counts {
                    new: a.new + c.new,
                    old: a.old + c.old,
                }
            });
        self.next_watch += 1;
        self.mwi_watches.insert(self.next_watch, target);
        Some((self.next_watch, counts))
    }

    fn bridged_with(&mut self, chan: ChannelId) -> Option<ChannelId> {
        self.bridges.get(&chan).copied()
    }

    fn loop_lag(&mut self) -> Duration {
        self.lag
    }

    fn media_free(&mut self) -> usize {
        self.media_free.unwrap_or(usize::MAX)
    }

    fn set_aside(&mut self, chan: ChannelId) -> bool {
        if self.no_spare {
            return false;
        }
        self.spares.push(chan);
        true
    }

    fn hand_over(&mut self, from: ChannelId, to: ChannelId) {
        if let Some(i) = self.spares.iter().position(|c| *c == from) {
            self.spares[i] = to;
        }
    }

    fn pickup(&mut self, ringing: ChannelId, picker: ChannelId) -> Result<(), Cause> {
        self.replaced.push(("pickup", ringing, picker));
        Ok(())
    }

    fn replace(&mut self, old: ChannelId, new: ChannelId) -> Result<(), Cause> {
        self.replaced.push(("replace", old, new));
        Ok(())
    }

    fn attended_transfer(
        &mut self,
        t1: ChannelId,
        t2: ChannelId,
    ) -> Result<(ChannelId, ChannelId), Cause> {
        self.attended.push((t1, t2));
        let a = self.bridges.get(&t1).copied();
        let c = self.bridges.get(&t2).copied();
        match (a, c) {
            (Some(a), Some(c)) => Ok((a, c)),
            _ => Err(Cause::FACILITY_NOT_IMPLEMENTED),
        }
    }

    fn channel_var(&mut self, chan: ChannelId, name: &str) -> Option<String> {
        self.vars.get(&(chan, name.to_string())).cloned()
    }

    fn blind_transfer(
        &mut self,
        transferor: ChannelId,
        context: &str,
        exten: &str,
        vars: &[(&str, String)],
    ) -> Result<ChannelId, Cause> {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.clone()));
        self.transfers
            .push((transferor, context.into(), exten.into(), vars.collect()));
        match self.transfer_result {
            Some(r) => r,
            None => self
                .bridges
                .get(&transferor)
                .copied()
                .ok_or(Cause::FACILITY_NOT_IMPLEMENTED),
        }
    }
}

const ALICE: &str = "127.0.0.1:5062";
const BOB: &str = "127.0.0.1:5064";
const CAROL: &str = "127.0.0.1:5070";
const PBX: &str = "127.0.0.1:5060";

/// Alice calls in (a friend at a known address, no secret); bob is a
/// trunk we call, with a secret for its challenges.
const SIP_TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:5060"
context = "default"

[peers.alice]
type = "friend"
host = "127.0.0.1"
port = 5062
context = "phones"

[peers.bob]
type = "peer"
host = "127.0.0.1"
port = 5064
secret = "bob-secret"
"#;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An endpoint on simulated time and what it did.
pub(super) struct Harness {
    ep: Endpoint,
    env: FakeEnv,
    t0: Instant,
    now: Now,
    /// Everything polled so far and not yet looked at, in order.
    pending: VecDeque<Output>,
}

impl Harness {
    fn new(sip_toml: &str) -> Harness {
        let shared = shared(sip_toml);
        crate::driver::reconcile(&shared, Instant::now());
        Harness::on(shared, crate::shards::Home::SINGLE)
    }

    /// Shard `home` of the module whose shared state is `shared` (already
    /// reconciled).
    fn on(shared: Arc<Shared>, home: crate::shards::Home) -> Harness {
        Harness::on_env(shared, home, |_| {})
    }

    /// The same, with the core and the machine set up by `setup` before
    /// the endpoint starts.
    fn on_env(
        shared: Arc<Shared>,
        home: crate::shards::Home,
        setup: impl FnOnce(&mut FakeEnv),
    ) -> Harness {
        let t0 = Instant::now();
        let now = Now {
            mono: t0,
            unix: 1_800_000_000,
        };
        let ep = Endpoint::new(shared, 7 + home.index as u64, t0).with_home(home);
        let mut h = Harness {
            ep,
            env: FakeEnv::default(),
            t0,
            now,
            pending: VecDeque::new(),
        };
        setup(&mut h.env);
        h.ep.start(now, &mut h.env);
        h.collect();
        h
    }

    /// `sip reload` with `sip_toml`: the new configuration in force, then
    /// the endpoint told.
    fn reload(&mut self, sip_toml: &str) {
        let cfg: SipConfig =
            sirius_conf::parse_toml(std::path::Path::new("sip.toml"), sip_toml).expect("sip.toml");
        let peers = cfg
            .resolve_peers("sip.toml")
            .expect("peers")
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        *self.ep.shared.running.write() = Arc::new(crate::Running { cfg, peers });
        self.input(Input::Reconcile);
    }

    fn collect(&mut self) {
        while let Some(o) = self.ep.poll() {
            // The driver's side of the relay, which the endpoint asks.
            if let Output::Media(m) = &o {
                let bridges = &mut self.env.bridges;
                match m {
                    MediaAction::Bridge(a, b) => {
                        bridges.insert(a.chan, b.chan);
                        bridges.insert(b.chan, a.chan);
                    }
                    MediaAction::Echo(l) => {
                        bridges.insert(l.chan, l.chan);
                    }
                    MediaAction::Lend(l, _, partner) => {
                        bridges.insert(l.chan, *partner);
                    }
                    MediaAction::Release(c) | MediaAction::Unbridge(c) => {
                        if let Some(p) = bridges.remove(c) {
                            bridges.remove(&p);
                        }
                        if matches!(m, MediaAction::Release(_)) {
                            self.env.spares.retain(|s| s != c);
                        }
                    }
                    MediaAction::DropSpare(c) => self.env.spares.retain(|s| s != c),
                    _ => {}
                }
            }
            // The driver's side of hint watches: an unwatch ends one (an
            // unknown or second unwatch is a bug the tests must see).
            if let Output::Host(HostAction::HintUnwatch(id)) = &o {
                assert!(self.env.watches.remove(id).is_some(), "unwatch of {id}");
            }
            if let Output::Host(HostAction::MwiUnwatch(id)) = &o {
                assert!(self.env.mwi_watches.remove(id).is_some(), "unwatch of {id}");
            }
            self.pending.push_back(o);
        }
    }

    /// Milliseconds since the start.
    fn elapsed_ms(&self) -> u128 {
        (self.now.mono - self.t0).as_millis()
    }

    /// Moves the clock to `ms` after the start, running every timer at the
    /// instant it falls due on the way.
    fn advance_to(&mut self, ms: u64) {
        let target = self.t0 + Duration::from_millis(ms);
        while let Some(due) = self.ep.poll_timeout().filter(|t| *t <= target) {
            self.set_time(due.max(self.now.mono));
            self.ep.handle_timeout(self.now, &mut self.env);
            self.collect();
        }
        self.set_time(target);
    }

    fn set_time(&mut self, t: Instant) {
        self.now = Now {
            mono: t,
            unix: 1_800_000_000 + (t - self.t0).as_secs(),
        };
    }

    fn input(&mut self, input: Input<'_>) {
        self.ep.handle(self.now, input, &mut self.env);
        self.collect();
    }

    fn recv(&mut self, msg: &Message, from: &str) {
        let data = msg.to_bytes();
        self.input(Input::Datagram {
            data: &data,
            src: addr(from),
        });
    }

    /// Takes every output so far.
    fn take(&mut self) -> Vec<Output> {
        self.pending.drain(..).collect()
    }

    /// Takes every message sent so far, with where it went.
    fn sent(&mut self) -> Vec<(SocketAddr, Message)> {
        let mut out = Vec::new();
        let mut rest = VecDeque::new();
        for o in self.pending.drain(..) {
            match o {
                Output::Transmit(t) => out.push((
                    t.dest,
                    parse_datagram(&t.data, &Limits::default()).expect("we send valid SIP"),
                )),
                other => rest.push_back(other),
            }
        }
        self.pending = rest;
        out
    }

    /// The one message sent to `to` since the last look, skipping 100 Trying.
    fn expect_one(&mut self, to: &str) -> Message {
        let sent: Vec<_> = self
            .sent()
            .into_iter()
            .filter(|(_, m)| m.code() != Some(100))
            .collect();
        assert_eq!(sent.len(), 1, "expected one message, got {sent:#?}");
        let (dest, m) = sent.into_iter().next().unwrap();
        assert_eq!(dest, addr(to));
        m
    }

    /// Host actions so far but device states (relay changes, messages and
    /// device states stay pending).
    fn host_actions(&mut self) -> Vec<HostAction> {
        let mut out = Vec::new();
        let mut rest = VecDeque::new();
        for o in self.pending.drain(..) {
            match o {
                Output::Host(HostAction::DeviceState(..)) => rest.push_back(o),
                Output::Host(h) => out.push(h),
                other => rest.push_back(other),
            }
        }
        self.pending = rest;
        out
    }

    /// Device states pushed so far.
    fn device_states(&mut self) -> Vec<(String, sirius_abi::DeviceState)> {
        let mut out = Vec::new();
        let mut rest = VecDeque::new();
        for o in self.pending.drain(..) {
            match o {
                Output::Host(HostAction::DeviceState(d, s)) => out.push((d, s)),
                other => rest.push_back(other),
            }
        }
        self.pending = rest;
        out
    }

    fn media_actions(&mut self) -> Vec<MediaAction> {
        let mut out = Vec::new();
        let mut rest = VecDeque::new();
        for o in self.pending.drain(..) {
            match o {
                Output::Media(m) => out.push(m),
                other => rest.push_back(other),
            }
        }
        self.pending = rest;
        out
    }
}

fn sdp(port: u16, direction: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
    )
    .into_bytes()
}

fn parse(text: &str) -> Message {
    parse_datagram(text.replace('\n', "\r\n").as_bytes(), &Limits::default()).unwrap()
}

/// Alice's INVITE to extension `exten`, with an offer.
fn alice_invite(exten: &str, call_id: &str) -> Message {
    let mut m = parse(&format!(
        "INVITE sip:{exten}@127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {ALICE};branch=z9hG4bK-{call_id}-1;rport\n\
         Max-Forwards: 70\n\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\n\
         To: <sip:{exten}@127.0.0.1>\n\
         Call-ID: {call_id}\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:alice@{ALICE}>\n\
         Content-Length: 0\n\n"
    ));
    m.set_body("application/sdp", sdp(40_000, "sendrecv"));
    m
}

/// A request in a dialog whose remote party is `from`, built by hand.
fn in_dialog(method: &str, to_resp: &Message, from: &str, cseq: u32, branch: &str) -> Message {
    // to_resp is the response that fixed the dialog: its From is the
    // caller, its To (with our tag) the callee, seen from the caller.
    parse(&format!(
        "{method} sip:{PBX} SIP/2.0\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-{branch}\n\
         Max-Forwards: 70\n\
         From: {}\n\
         To: {}\n\
         Call-ID: {}\n\
         CSeq: {cseq} {method}\n\
         Contact: <sip:x@{from}>\n\
         Content-Length: 0\n\n",
        to_resp.headers.get(&HeaderName::From).unwrap(),
        to_resp.headers.get(&HeaderName::To).unwrap(),
        to_resp.call_id().unwrap(),
    ))
}

/// A response from the far end to our request, with its To tag.
fn reply(req: &Message, code: u16, reason: &str, tag: &str) -> Message {
    let mut r = build::response(req, code, reason, None);
    build::set_to_tag(&mut r, tag);
    r
}

/// Alice's call answered by the dialplan and ACKed: its channel and the 200.
fn answered_inbound(h: &mut Harness) -> (ChannelId, Message) {
    h.recv(&alice_invite("100", "in-1"), ALICE);
    let chan = h.env.started[0];
    h.input(Input::Answer(chan));
    let ok = h.expect_one(ALICE);
    let mut ack = in_dialog("ACK", &ok, ALICE, 1, "ack-1");
    ack.set_body("application/sdp", Vec::new());
    h.recv(&ack, ALICE);
    (chan, ok)
}

/// A call to bob, answered (200 with his Contact and an SDP on port
/// 41000) and ACKed: the channel and its INVITE.
fn answered_outbound(h: &mut Harness, chan: u64) -> (ChannelId, Message) {
    let (b, invite) = placed_outbound(h, chan);
    let mut ok = reply(&invite, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok, BOB);
    (b, invite)
}

/// A call to bob: the channel placed, its INVITE.
fn placed_outbound(h: &mut Harness, chan: u64) -> (ChannelId, Message) {
    let chan = ChannelId(chan);
    new_outbound_to_bob(h, chan);
    h.input(Input::Place(chan));
    let invite = h.expect_one(BOB);
    (chan, invite)
}

/// The core's `request_call` for bob: an outbound channel, not placed yet.
fn new_outbound_to_bob(h: &mut Harness, chan: ChannelId) {
    dial_bob_for(h, chan, None);
}

/// The core's `request_call` for `peer` at BOB as most tests want it: one
/// contact, PCMU, caller `100` without a name, no requestor; a test changes
/// what it is about with `OutboundSetup { field, ..call_to(peer, chan) }`.
fn call_to(peer: &str, chan: ChannelId) -> OutboundSetup {
    OutboundSetup {
        chan,
        dest: addr(BOB),
        transport: Transport::Udp,
        ruri: format!("sip:{peer}@{BOB}"),
        peer: Some(peer.into()),
        name: format!("SIP/{peer}-{:08x}", chan.0),
        codecs: vec![Codec::PCMU],
        caller: "100".into(),
        caller_name: String::new(),
        requestor: None,
        referred_by: None,
        forks: Vec::new(),
    }
}

/// The same, asked for by `requestor` (a Dial's caller).
fn dial_bob_for(h: &mut Harness, chan: ChannelId, requestor: Option<ChannelId>) {
    h.input(Input::NewOutbound(OutboundSetup {
        caller_name: "Alice".into(),
        requestor,
        ..call_to("bob", chan)
    }));
}

mod attended;
mod dialog;
mod dtmf;
mod fork;
mod liveness;
mod refer;
mod registrations;
mod replaces;
mod sca;
mod shards;
mod shared_dialog;
mod subscribe;
mod third_party;
mod uac;
mod uas;
mod usage;
mod video;
