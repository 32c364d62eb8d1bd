//! The message hot path in instructions and allocations, not in time: the
//! development machines are two shared cores where wall-clock figures move
//! by tens of percent with the neighbours' builds, while an instruction
//! count under `valgrind --tool=callgrind` and an allocation count repeat
//! exactly.
//!
//! One call's messages as chan_sip sees them on one leg (INVITE with SDP,
//! 180, 200 with SDP, ACK, BYE), each put through a phase:
//!
//! * `parse`: `parse_datagram`;
//! * `views`: parse, then the typed views the transaction layer and the
//!   dialog read (top Via and its branch, CSeq, From and To tags, Call-ID),
//!   in place; `owned_views`: the same through the owned `Via`/`NameAddr`;
//! * `serialise`: writes the parsed messages back, into one reused buffer;
//! * `respond`: builds the 180 answering the INVITE (`build::response` with
//!   the source address, a To tag) and serialises it;
//! * `all`: parse + views + serialise, the round trip of a relayed message;
//! * `call`: one call through the transaction layer as a UAS (INVITE →
//!   100/200, ACK, BYE → 200), each request parsed from bytes with its own
//!   branch and Call-ID, the answers built and serialised by the layer
//!   (figures per call: three messages in, three out).
//!
//! Run `cargo bench -p sirius-sip --bench hot_path -- [PHASE] [ITERATIONS]`
//! for allocations per message (a counting global allocator) and the
//! round trip checked byte for byte; `bench/parse_callgrind.sh` runs it
//! under callgrind at two iteration counts and divides the difference, so
//! start-up costs cancel out.

#![allow(clippy::disallowed_methods)] // a simulated clock starts from one real Instant

use sirius_sip::message::{build, parse_datagram, Limits, Message};
use sirius_sip::transaction::{Config, Event, TransactionLayer, Transport};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Counts allocations (alloc and realloc calls) and bytes asked for.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(size as u64, Relaxed);
        unsafe { System.realloc(p, l, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const INVITE: &str = "INVITE sip:600@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK-524287-1---2d3f1b5e1d9cfb4c;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@198.51.100.7:5062;transport=UDP>\r\n\
To: <sip:600@192.0.2.10:5060>\r\n\
From: \"Alice\" <sip:alice@192.0.2.10:5060>;tag=8f3e1c2a\r\n\
Call-ID: ZmQ3NzBkNjE5YzQyMzk0MWI2ZDc0ODY2MDk5YzE1Yjk\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Content-Type: application/sdp\r\n\
Supported: replaces, norefersub, extended-refer, timer, outbound, path, X-cisco-serviceuri\r\n\
User-Agent: Z 5.6.2 v2.10.20.1\r\n\
Allow-Events: presence, kpml, talk, as-feature-event\r\n\
Content-Length: 252\r\n\
\r\n\
v=0\r\n\
o=Z 1700000000 1 IN IP4 198.51.100.7\r\n\
s=Z\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=audio 8000 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

const RINGING: &str = "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK3c1a58e2b7f04d11;received=192.0.2.10;rport=5060\r\n\
From: \"Alice\" <sip:alice@192.0.2.10>;tag=as5f1e02c7\r\n\
To: <sip:600@203.0.113.5:5060>;tag=1928301774\r\n\
Call-ID: 6f1c3b2a0d9e4f57@192.0.2.10\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:600@203.0.113.5:5060>\r\n\
Server: Grandstream GXP2170 1.0.11.23\r\n\
P-Asserted-Identity: \"Reception\" <sip:600@203.0.113.5>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER\r\n\
Content-Length: 0\r\n\
\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK3c1a58e2b7f04d11;received=192.0.2.10;rport=5060\r\n\
From: \"Alice\" <sip:alice@192.0.2.10>;tag=as5f1e02c7\r\n\
To: <sip:600@203.0.113.5:5060>;tag=1928301774\r\n\
Call-ID: 6f1c3b2a0d9e4f57@192.0.2.10\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:600@203.0.113.5:5060>\r\n\
Server: Grandstream GXP2170 1.0.11.23\r\n\
P-Asserted-Identity: \"Reception\" <sip:600@203.0.113.5>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER\r\n\
Supported: replaces, timer\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Require: timer\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 208\r\n\
\r\n\
v=0\r\n\
o=600 8000 8001 IN IP4 203.0.113.5\r\n\
s=SIP Call\r\n\
c=IN IP4 203.0.113.5\r\n\
t=0 0\r\n\
m=audio 5004 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

const ACK: &str = "ACK sip:600@203.0.113.5:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK0a7d3e915c2b6f48;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@192.0.2.10>;tag=as5f1e02c7\r\n\
To: <sip:600@203.0.113.5:5060>;tag=1928301774\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Call-ID: 6f1c3b2a0d9e4f57@192.0.2.10\r\n\
CSeq: 102 ACK\r\n\
User-Agent: Sirius PBX\r\n\
Content-Length: 0\r\n\
\r\n";

const BYE: &str = "BYE sip:alice@198.51.100.7:5062;transport=UDP SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK77e1c0b95d3a2f16;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:600@192.0.2.10:5060>;tag=as41b7e9d0\r\n\
To: \"Alice\" <sip:alice@192.0.2.10:5060>;tag=8f3e1c2a\r\n\
Call-ID: ZmQ3NzBkNjE5YzQyMzk0MWI2ZDc0ODY2MDk5YzE1Yjk\r\n\
CSeq: 102 BYE\r\n\
User-Agent: Sirius PBX\r\n\
X-Sirius-Cause: 16\r\n\
Content-Length: 0\r\n\
\r\n";

const MESSAGES: [&str; 5] = [INVITE, RINGING, OK, ACK, BYE];

fn parse(text: &str) -> Message {
    parse_datagram(text.as_bytes(), &Limits::default()).expect("a well-formed message")
}

/// What the transaction layer and a dialog read from every message, read
/// in place (`bench/parse_callgrind.sh` builds an older revision with the
/// owned views in their place: `top_via`, `from_header`, `to_header`).
fn views(m: &Message) -> usize {
    let via = m.top_via_ref().expect("Via");
    let cseq = m.cseq().expect("CSeq");
    let from = m.from_ref().expect("From");
    let to = m.to_ref().expect("To");
    via.branch().map_or(0, str::len)
        + cseq.seq as usize
        + from.tag().map_or(0, str::len)
        + to.tag().map_or(0, str::len)
        + m.call_id().map_or(0, str::len)
}

/// The same through the owned views, which chan_sip uses where it keeps them.
fn owned_views(m: &Message) -> usize {
    let via = m.top_via().expect("Via");
    let cseq = m.cseq().expect("CSeq");
    let from = m.from_header().expect("From");
    let to = m.to_header().expect("To");
    via.branch().map_or(0, str::len)
        + cseq.seq as usize
        + from.tag().map_or(0, str::len)
        + to.tag().map_or(0, str::len)
        + m.call_id().map_or(0, str::len)
}

/// Serialises into `buf`, reused from message to message.
fn serialise(m: &Message, buf: &mut Vec<u8>) {
    buf.clear();
    m.write_to(buf);
}

/// A request's text with room for a call number: `#` marks eight digits
/// written in place each call, so that no allocation of the bench's own
/// lands in the figures.
struct Numbered {
    text: Vec<u8>,
    marks: Vec<usize>,
}

impl Numbered {
    fn new(text: &str) -> Numbered {
        let text = text.replace('#', "00000000");
        let marks = text.match_indices("00000000").map(|(i, _)| i).collect();
        Numbered {
            text: text.into_bytes(),
            marks,
        }
    }

    fn number(&mut self, mut n: u64) -> &[u8] {
        let mut digits = [b'0'; 8];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        for &m in &self.marks {
            self.text[m..m + 8].copy_from_slice(&digits);
        }
        &self.text
    }
}

/// The requests of one call to Sirius as a UAS: INVITE, ACK, BYE.
fn uas_call_requests() -> [Numbered; 3] {
    let invite = INVITE
        .replace("2d3f1b5e1d9cfb4c", "#")
        .replace("ZmQ3NzBkNjE5YzQyMzk0MWI2ZDc0ODY2MDk5YzE1Yjk", "call-#");
    let dialog = |method: &str, cseq: &str, branch: &str| {
        format!(
            "{method} sip:600@192.0.2.10:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK-{branch}-#;rport\r\n\
             Max-Forwards: 70\r\n\
             Contact: <sip:alice@198.51.100.7:5062;transport=UDP>\r\n\
             To: <sip:600@192.0.2.10:5060>;tag=as41b7e9d0\r\n\
             From: \"Alice\" <sip:alice@192.0.2.10:5060>;tag=8f3e1c2a\r\n\
             Call-ID: call-#\r\n\
             CSeq: {cseq} {method}\r\n\
             User-Agent: Z 5.6.2 v2.10.20.1\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    [
        Numbered::new(&invite),
        Numbered::new(&dialog("ACK", "1", "ack")),
        Numbered::new(&dialog("BYE", "2", "bye")),
    ]
}

fn run(phase: &str, iterations: u64) -> usize {
    let parsed: Vec<Message> = MESSAGES.iter().map(|t| parse(t)).collect();
    let source: SocketAddr = "198.51.100.7:5062".parse().expect("an address");
    let mut buf = Vec::with_capacity(2048);
    let mut n = 0;
    let mut layer = TransactionLayer::new(Config::default());
    let mut requests = uas_call_requests();
    let t0 = Instant::now();
    for i in 0..iterations {
        match phase {
            "call" => {
                // A call a simulated millisecond; answered transactions
                // linger (32 s) and are timed out as the clock passes.
                let now = t0 + Duration::from_millis(i);
                for (k, req) in requests.iter_mut().enumerate() {
                    let m = parse(std::str::from_utf8(req.number(i)).expect("text"));
                    layer.on_message(now, m, source, Transport::Udp);
                    while let Some(ev) = layer.poll_event() {
                        if let Event::Request { tx, msg, .. } = ev {
                            let mut ok = build::response(&msg, 200, "OK", Some(source));
                            if k == 0 {
                                build::set_to_tag(&mut ok, "as41b7e9d0");
                            }
                            layer.respond(now, tx, &ok).expect("a response");
                        }
                    }
                }
                while let Some(t) = layer.poll_transmit() {
                    n += t.data.len();
                }
                layer.handle_timeout(now);
            }
            "parse" => {
                for t in MESSAGES {
                    n += black_box(parse(black_box(t))).headers.len();
                }
            }
            "views" => {
                for t in MESSAGES {
                    n += views(&parse(black_box(t)));
                }
            }
            "owned_views" => {
                for t in MESSAGES {
                    n += owned_views(&parse(black_box(t)));
                }
            }
            "serialise" => {
                for m in &parsed {
                    serialise(black_box(m), &mut buf);
                    n += buf.len();
                }
            }
            "respond" => {
                let mut r = build::response(black_box(&parsed[0]), 180, "Ringing", Some(source));
                build::set_to_tag(&mut r, "as41b7e9d0");
                serialise(&r, &mut buf);
                n += buf.len();
            }
            "all" => {
                for t in MESSAGES {
                    let m = parse(black_box(t));
                    n += views(&m);
                    serialise(&m, &mut buf);
                    n += buf.len();
                }
            }
            other => panic!("unknown phase {other}: see the list in main"),
        }
    }
    n
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let phases: Vec<&str> = match args.first().map(String::as_str) {
        Some(p) if p != "every" => vec![p],
        _ => vec![
            "parse",
            "views",
            "owned_views",
            "serialise",
            "respond",
            "all",
        ],
    };
    let iterations: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    // Serialising a parsed message gives back the bytes received (the
    // messages are written in canonical form, so this is exact).
    let mut buf = Vec::new();
    for t in MESSAGES {
        serialise(&parse(t), &mut buf);
        assert_eq!(String::from_utf8_lossy(&buf), t, "round trip");
    }
    for phase in phases {
        let per = if matches!(phase, "respond" | "call") {
            1
        } else {
            MESSAGES.len() as u64
        };
        let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        let n = black_box(run(phase, iterations));
        // `run` allocates its parsed copies and buffer once: measured apart.
        let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        let setup = {
            let (s0, t0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
            black_box(run(phase, 0));
            (ALLOCS.load(Relaxed) - s0, BYTES.load(Relaxed) - t0)
        };
        let msgs = (iterations * per) as f64;
        println!(
            "{phase}: {iterations} iterations, {} messages: {:.2} allocations and {:.0} bytes allocated per message (check {n})",
            iterations * per,
            (a1 - a0 - setup.0) as f64 / msgs,
            (b1 - b0 - setup.1) as f64 / msgs,
        );
    }
}
