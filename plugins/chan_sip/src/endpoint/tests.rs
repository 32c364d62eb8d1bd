//! The endpoint's call flows with simulated time: no socket, no clock, no
//! core. A [`Phone`]-side script feeds datagrams in, the [`Harness`] reads
//! what the endpoint sends and asks for, and time moves only when a test
//! moves it, so every timer is checked at its exact instant.

use super::*;
use crate::config::SipConfig;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, ROption, RResult, RStr, RString, RVec, Tuple2};
use sirius_abi::services::{CoreServices, CoreServices_TO, LogLevel, SchedCallbackBox};
use sirius_abi::{Capabilities, Codec, Frame, Indication};
use sirius_sip::message::{build, parse_datagram, HeaderName, Limits, Message, Method};
use std::collections::HashSet;

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
    let cfg: SipConfig =
        sirius_conf::parse_toml(std::path::Path::new("sip.toml"), sip_toml).expect("sip.toml");
    let peers = cfg
        .resolve_peers("sip.toml")
        .expect("peers")
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let realm = cfg.general.realm.clone();
    let (commands, _) = tokio::sync::mpsc::unbounded_channel();
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
        commands,
        active_calls: Default::default(),
        inuse: Default::default(),
        rtp_relayed: Default::default(),
        rtcp_relayed: Default::default(),
        rtp_ports: crate::rtp_ports::RtpPorts::new(),
    })
}

/// The core and the machine as the endpoint sees them through [`Env`].
#[derive(Default)]
struct FakeEnv {
    next_chan: u64,
    allocated: Vec<(ChannelId, ChannelSpec)>,
    started: Vec<ChannelId>,
    refuse_pbx: Option<Cause>,
    gone: HashSet<ChannelId>,
    reserved: Vec<ChannelId>,
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

    fn channel_exists(&mut self, chan: ChannelId) -> bool {
        !self.gone.contains(&chan)
    }

    fn reserve_media(&mut self, chan: ChannelId) -> Result<u16, String> {
        self.reserved.push(chan);
        Ok(10_000 + 2 * self.reserved.len() as u16)
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
struct Harness {
    ep: Endpoint,
    env: FakeEnv,
    t0: Instant,
    now: Now,
    /// Everything polled so far and not yet looked at, in order.
    pending: VecDeque<Output>,
}

impl Harness {
    fn new(sip_toml: &str) -> Harness {
        let resolver: Resolver = Box::new(|host, _| Err(format!("no DNS in tests ({host})")));
        let shared = shared(sip_toml);
        crate::driver::reconcile(&shared, Instant::now());
        let t0 = Instant::now();
        let now = Now {
            mono: t0,
            unix: 1_800_000_000,
        };
        let mut ep = Endpoint::new(shared, 7, resolver);
        ep.start(now);
        let mut h = Harness {
            ep,
            env: FakeEnv::default(),
            t0,
            now,
            pending: VecDeque::new(),
        };
        h.collect();
        h
    }

    fn collect(&mut self) {
        while let Some(o) = self.ep.poll() {
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

    /// Host actions so far (relay changes and messages stay pending).
    fn host_actions(&mut self) -> Vec<HostAction> {
        let mut out = Vec::new();
        let mut rest = VecDeque::new();
        for o in self.pending.drain(..) {
            match o {
                Output::Host(h) => out.push(h),
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

/// A call to bob: the channel placed, its INVITE.
fn placed_outbound(h: &mut Harness, chan: u64) -> (ChannelId, Message) {
    let chan = ChannelId(chan);
    h.input(Input::NewOutbound(OutboundSetup {
        chan,
        dest: addr(BOB),
        transport: Transport::Udp,
        ruri: format!("sip:bob@{BOB}"),
        peer: Some("bob".into()),
        name: "SIP/bob-00000064".into(),
        codecs: vec![Codec::PCMU],
        caller: "100".into(),
        caller_name: "Alice".into(),
    }));
    assert_eq!(h.ep.place(h.now, chan), Ok(()));
    h.collect();
    let invite = h.expect_one(BOB);
    (chan, invite)
}

#[test]
fn an_inbound_call_rings_is_answered_and_ends_with_the_callers_bye() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "in-1"), ALICE);
    // The dialplan got a channel of alice's, in her context, for 100.
    let (chan, spec) = &h.env.allocated[0];
    let chan = *chan;
    assert_eq!(spec.resource.as_str(), "alice");
    assert_eq!(spec.context.as_str(), "phones");
    assert_eq!(spec.exten.as_str(), "100");
    assert_eq!(spec.caller_num.as_str(), "alice");
    assert_eq!(spec.caller_name.as_str(), "Alice");
    assert_eq!(h.env.started, vec![chan]);
    assert_eq!(h.ep.calls(), 1);

    h.input(Input::Indicate(chan, Indication::Ringing));
    let ringing = h.expect_one(ALICE);
    assert_eq!(ringing.code(), Some(180));
    let tag = ringing.to_header().unwrap().tag().unwrap().to_string();

    h.input(Input::Answer(chan));
    let ok = h.expect_one(ALICE);
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.to_header().unwrap().tag(), Some(tag.as_str()));
    assert_eq!(
        ok.headers.get(&HeaderName::Contact),
        Some("<sip:127.0.0.1:5060>")
    );
    let answer = String::from_utf8(ok.body.clone()).unwrap();
    assert!(answer.contains("m=audio 10002 RTP/AVP 0 101"), "{answer}");
    // Nothing claimed that is not implemented.
    assert_eq!(ok.headers.get(&HeaderName::Supported), None);

    h.recv(&in_dialog("ACK", &ok, ALICE, 1, "ack"), ALICE);
    assert!(h.sent().is_empty(), "an ACK is not answered");
    assert!(h.ep.show_channels().contains("Rx: ACK"));

    h.recv(&in_dialog("BYE", &ok, ALICE, 2, "bye"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(200));
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, Cause::NORMAL_CLEARING)]
    );
    assert_eq!(h.media_actions(), vec![MediaAction::Release(chan)]);
    assert_eq!(h.ep.calls(), 0);
}

#[test]
fn a_refused_dialplan_gets_503_with_retry_after_and_frees_the_call() {
    let mut h = Harness::new(SIP_TOML);
    h.env.refuse_pbx = Some(Cause::CONGESTION);
    h.recv(&alice_invite("100", "in-1"), ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(503));
    assert_eq!(r.headers.get(&HeaderName::RetryAfter), Some("2"));
    let chan = h.env.started[0];
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, Cause::CONGESTION)]
    );
    assert_eq!(h.media_actions(), vec![MediaAction::Release(chan)]);
    assert_eq!(h.ep.calls(), 0);
}

#[test]
fn a_cancelled_inbound_call_gets_200_and_487() {
    let mut h = Harness::new(SIP_TOML);
    let invite = alice_invite("100", "in-1");
    h.recv(&invite, ALICE);
    let chan = h.env.started[0];
    h.input(Input::Indicate(chan, Indication::Ringing));
    h.sent();
    let mut cancel = build::cancel(&invite);
    cancel.headers.set(
        HeaderName::Via,
        invite.headers.get(&HeaderName::Via).unwrap(),
    );
    h.recv(&cancel, ALICE);
    let codes: Vec<_> = h.sent().iter().map(|(_, m)| m.code().unwrap()).collect();
    assert_eq!(codes, vec![200, 487]);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, Cause::NORMAL_CLEARING)]
    );
}

/// Timer H (RFC 3261 §17.2.1): an error response nobody ACKs is sent at
/// T1, 2·T1, 4·T1… capped at T2 (4 s), and given up at 64·T1 = 32 s.
#[test]
fn an_unacknowledged_busy_is_retransmitted_until_timer_h() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "in-1"), ALICE);
    let chan = h.env.started[0];
    h.input(Input::Indicate(chan, Indication::Busy));
    assert_eq!(h.expect_one(ALICE).code(), Some(486));
    let mut instants = Vec::new();
    for ms in (0..=40_000).step_by(50) {
        h.advance_to(ms);
        for (_, m) in h.sent() {
            assert_eq!(m.code(), Some(486));
            instants.push(h.elapsed_ms());
        }
    }
    assert_eq!(
        instants,
        vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(h.ep.layer.is_empty(), "Timer H ended the transaction");
}

/// Timer L (RFC 6026): our 200 is never ACKed; at 64·T1 the call is
/// hung up with RECOVERY_ON_TIMER_EXPIRE and a BYE, not a moment before.
#[test]
fn an_answer_never_acknowledged_ends_the_call_at_timer_l() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "in-1"), ALICE);
    let chan = h.env.started[0];
    h.input(Input::Answer(chan));
    h.sent();
    h.advance_to(31_999);
    let retransmits = h.sent();
    assert!(retransmits.iter().all(|(_, m)| m.code() == Some(200)));
    assert!(h.host_actions().is_empty());
    h.advance_to(32_000);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, Cause::RECOVERY_ON_TIMER_EXPIRE)]
    );
    let bye = h.expect_one(ALICE);
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(
        bye.headers.get(&HeaderName::Reason),
        Some("Q.850;cause=102")
    );
}

#[test]
fn an_outbound_call_answers_a_401_once_and_connects() {
    outbound_challenge(401, "WWW-Authenticate", HeaderName::Authorization);
}

#[test]
fn an_outbound_call_answers_a_407_with_proxy_authorization() {
    outbound_challenge(407, "Proxy-Authenticate", HeaderName::ProxyAuthorization);
}

fn outbound_challenge(code: u16, challenge: &str, answer: HeaderName) {
    let mut h = Harness::new(SIP_TOML);
    let (chan, invite) = placed_outbound(&mut h, 100);
    assert_eq!(invite.request_uri(), Some("sip:bob@127.0.0.1:5064"));
    assert!(invite
        .headers
        .get(&HeaderName::From)
        .unwrap()
        .starts_with("\"Alice\" <sip:100@127.0.0.1:5060>;tag="));
    assert_eq!(invite.headers.get(&HeaderName::Supported), None);
    let offer = String::from_utf8(invite.body.clone()).unwrap();
    assert!(offer.contains("m=audio 10002 RTP/AVP 0 101"), "{offer}");

    let mut chal = reply(&invite, code, "Unauthorized", "b1");
    chal.push(
        HeaderName::parse(challenge),
        "Digest realm=\"trunk\", nonce=\"abc\", algorithm=MD5",
    );
    h.recv(&chal, BOB);
    let sent = h.sent();
    let methods: Vec<_> = sent.iter().map(|(_, m)| m.method().cloned()).collect();
    assert_eq!(methods, vec![Some(Method::Ack), Some(Method::Invite)]);
    let retry = &sent[1].1;
    assert_eq!(retry.cseq().unwrap().seq, invite.cseq().unwrap().seq + 1);
    assert_eq!(retry.call_id(), invite.call_id());
    let creds = retry.headers.get(&answer).expect("credentials");
    assert!(creds.contains("username=\"bob\""), "{creds}");
    assert!(creds.contains("realm=\"trunk\""), "{creds}");

    h.recv(&reply(retry, 180, "Ringing", "b2"), BOB);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::SetState(chan, ChannelState::Ringing)]
    );
    let mut ok = reply(retry, 200, "OK", "b2");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok, BOB);
    let ack = h.expect_one(BOB);
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.cseq().unwrap().seq, retry.cseq().unwrap().seq);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::SetState(chan, ChannelState::Up)]
    );
    // A retransmitted 200 gets the same ACK again.
    h.recv(&ok, BOB);
    assert_eq!(h.expect_one(BOB).to_bytes(), ack.to_bytes());

    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    let bye = h.expect_one(BOB);
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye.request_uri(), Some("sip:bob@127.0.0.1:5064"));
    assert_eq!(bye.headers.get(&HeaderName::Reason), Some("Q.850;cause=16"));
    assert_eq!(h.ep.calls(), 0);
}

#[test]
fn a_second_challenge_fails_the_call_instead_of_looping() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, invite) = placed_outbound(&mut h, 100);
    let challenge = |req: &Message| {
        let mut r = reply(req, 401, "Unauthorized", "b1");
        r.push(
            HeaderName::WwwAuthenticate,
            "Digest realm=\"trunk\", nonce=\"n\"",
        );
        r
    };
    h.recv(&challenge(&invite), BOB);
    let retry = h.sent().pop().unwrap().1;
    h.recv(&challenge(&retry), BOB);
    assert_eq!(h.sent().len(), 1, "only the ACK of the second 401");
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, crate::causes::sip_to_cause(401))]
    );
}

#[test]
fn a_302_is_followed_to_its_contact() {
    let mut h = Harness::new(SIP_TOML);
    let (_chan, invite) = placed_outbound(&mut h, 100);
    let mut moved = reply(&invite, 302, "Moved Temporarily", "b1");
    moved.push(HeaderName::Contact, format!("<sip:carol@{CAROL}>"));
    h.recv(&moved, BOB);
    let sent = h.sent();
    assert_eq!(sent[0].1.method(), Some(&Method::Ack));
    assert_eq!(sent[0].0, addr(BOB));
    let (dest, again) = &sent[1];
    assert_eq!(*dest, addr(CAROL));
    assert_eq!(again.request_uri(), Some("sip:carol@127.0.0.1:5070"));
    assert_eq!(again.cseq().unwrap().seq, invite.cseq().unwrap().seq + 1);
    assert!(h.ep.show_channels().contains("carol"));
}

/// RFC 3261 §9.1/§15: we hang up a ringing call, and the callee's 200
/// crosses our CANCEL; the call it made is ACKed and ended with BYE.
#[test]
fn a_2xx_crossing_our_cancel_is_acked_and_ended_with_bye() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, invite) = placed_outbound(&mut h, 100);
    h.recv(&reply(&invite, 180, "Ringing", "b1"), BOB);
    h.host_actions();
    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    let cancel = h.expect_one(BOB);
    assert_eq!(cancel.method(), Some(&Method::Cancel));
    assert_eq!(h.ep.calls(), 0);
    let mut ok = reply(&invite, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    h.recv(&ok, BOB);
    let methods: Vec<_> = h
        .sent()
        .into_iter()
        .map(|(_, m)| m.method().cloned())
        .collect();
    assert_eq!(methods, vec![Some(Method::Ack), Some(Method::Bye)]);
    assert!(h.host_actions().is_empty(), "the channel was already gone");
}

/// Timer B (RFC 3261 §17.1.1.2): the INVITE is sent at 0, T1, 3·T1…
/// (doubling, no cap), and at 64·T1 the call is congested.
#[test]
fn an_invite_nobody_answers_is_retransmitted_then_congested_at_timer_b() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, _) = placed_outbound(&mut h, 100);
    let mut instants = Vec::new();
    for ms in (0..=33_000).step_by(50) {
        h.advance_to(ms);
        instants.extend(h.sent().into_iter().map(|_| h.elapsed_ms()));
        if !h.host_actions().is_empty() {
            assert_eq!(h.elapsed_ms(), 32_000);
            assert_eq!(instants, vec![500, 1500, 3500, 7500, 15500, 31500]);
            assert_eq!(h.ep.calls(), 0);
            assert_eq!(h.media_actions(), vec![MediaAction::Release(chan)]);
            return;
        }
    }
    panic!("never congested");
}

/// chan_sip's auto-congest: a qualified peer that sends nothing at all
/// within 4 × its qualify maximum congests the call then, exactly.
#[test]
fn a_qualified_peer_that_never_answers_is_auto_congested_at_four_times_maxms() {
    let toml = format!("{SIP_TOML}qualify = 100\n");
    let mut h = Harness::new(&toml);
    h.advance_to(1_000);
    h.take();
    let (chan, _) = placed_outbound(&mut h, 100);
    h.advance_to(1_399);
    assert!(h.host_actions().is_empty());
    h.advance_to(1_400);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, Cause::CONGESTION)]
    );
}

/// A response of any kind stops the auto-congest timer.
#[test]
fn a_provisional_response_stops_auto_congest() {
    let toml = format!("{SIP_TOML}qualify = 100\n");
    let mut h = Harness::new(&toml);
    let (chan, invite) = placed_outbound(&mut h, 100);
    h.recv(&reply(&invite, 180, "Ringing", "b1"), BOB);
    h.advance_to(2_000);
    assert_eq!(
        h.host_actions()
            .into_iter()
            .filter(|a| matches!(a, HostAction::Hangup(..)))
            .count(),
        0
    );
    assert_eq!(h.ep.calls(), 1, "{chan} still up");
}

/// Alice holds a bridged call: her re-INVITE is answered, the relay
/// follows her SDP, and bob gets our own re-INVITE saying sendonly; bob's
/// 200 is ACKed. Unhold goes the same way back to sendrecv.
#[test]
fn hold_and_unhold_pass_through_a_native_bridge() {
    let mut h = Harness::new(SIP_TOML);
    let (a, ok_a) = answered_inbound(&mut h);
    let (b, invite_b) = placed_outbound(&mut h, 100);
    let mut ok_b = reply(&invite_b, 200, "OK", "b1");
    ok_b.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok_b.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok_b, BOB);
    h.take();
    h.input(Input::Bridge(a, b));
    match h.media_actions().as_slice() {
        [MediaAction::Bridge(la, lb)] => {
            assert_eq!((la.chan, lb.chan), (a, b));
            assert_eq!(la.remote.addr, Some(addr("127.0.0.1:40000")));
            assert_eq!(lb.remote.addr, Some(addr("127.0.0.1:41000")));
        }
        other => panic!("{other:?}"),
    }

    for (cseq, direction, ours, event) in [
        (3, "sendonly", "a=sendonly", "Hold"),
        (4, "sendrecv", "a=sendrecv", "Unhold"),
    ] {
        let mut reinvite = in_dialog("INVITE", &ok_a, ALICE, cseq, &format!("re{cseq}"));
        reinvite.set_body("application/sdp", sdp(40_100, direction));
        h.recv(&reinvite, ALICE);
        let sent: Vec<_> = h
            .sent()
            .into_iter()
            .filter(|(_, m)| m.code() != Some(100))
            .collect();
        assert_eq!(sent.len(), 2, "{sent:#?}");
        assert_eq!((sent[0].0, sent[0].1.code()), (addr(ALICE), Some(200)));
        let (dest, to_bob) = &sent[1];
        assert_eq!(*dest, addr(BOB));
        assert_eq!(to_bob.method(), Some(&Method::Invite));
        let body = String::from_utf8(to_bob.body.clone()).unwrap();
        assert!(body.contains(ours), "{body}");
        assert_eq!(to_bob.headers.values(&HeaderName::Contact).count(), 1);
        assert_eq!(
            h.media_actions(),
            vec![MediaAction::Remote(
                a,
                crate::relay::RemoteMedia::from_sdp(&sdp(40_100, direction))
            )]
        );
        assert!(h
            .host_actions()
            .iter()
            .any(|x| matches!(x, HostAction::Event { name, .. } if *name == event)));
        let mut bob_ok = reply(to_bob, 200, "OK", "b1");
        bob_ok.set_body("application/sdp", sdp(41_000, "recvonly"));
        h.recv(&bob_ok, BOB);
        let ack = h.expect_one(BOB);
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.cseq().unwrap().seq, to_bob.cseq().unwrap().seq);
        h.media_actions();
    }

    // One leg leaves: the other's relay stops with it, and both are told.
    h.recv(&in_dialog("BYE", &ok_a, ALICE, 5, "bye"), ALICE);
    assert_eq!(h.media_actions(), vec![MediaAction::Release(a)]);
    assert!(h.ep.sessions.get(b).unwrap().partner.is_none());
}

#[test]
fn a_lower_cseq_in_a_dialog_gets_500() {
    let mut h = Harness::new(SIP_TOML);
    let (_, ok) = answered_inbound(&mut h);
    h.recv(&in_dialog("OPTIONS", &ok, ALICE, 5, "i5"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(200));
    h.recv(&in_dialog("OPTIONS", &ok, ALICE, 4, "i4"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(500));
}

#[test]
fn requests_for_unknown_dialogs_get_481() {
    let mut h = Harness::new(SIP_TOML);
    let (_, ok) = answered_inbound(&mut h);
    let mut stray = in_dialog("BYE", &ok, ALICE, 9, "x");
    stray.headers.set(HeaderName::CallId, "nobody-knows");
    h.recv(&stray, ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(481));
}

/// A core channel lost in a race: after two sweeps a second apart the
/// call is ended on the wire.
#[test]
fn a_call_whose_channel_is_gone_is_ended_after_two_sweeps() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, _) = answered_inbound(&mut h);
    h.take();
    h.env.gone.insert(chan);
    h.advance_to(1_000);
    assert_eq!(h.ep.calls(), 1, "one sweep is not enough");
    h.advance_to(2_000);
    assert_eq!(h.ep.calls(), 0);
    assert_eq!(h.expect_one(ALICE).method(), Some(&Method::Bye));
}

#[test]
fn options_lists_what_we_allow_and_claims_no_extension() {
    let mut h = Harness::new(SIP_TOML);
    let options = parse(&format!(
        "OPTIONS sip:{PBX} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK-o1\nMax-Forwards: 70\n\
         From: <sip:x@127.0.0.1>;tag=o\nTo: <sip:{PBX}>\nCall-ID: o1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
    ));
    h.recv(&options, ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(200));
    assert_eq!(
        r.headers.get(&HeaderName::Allow),
        Some("INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER")
    );
    assert_eq!(r.headers.get(&HeaderName::Supported), None);
}
