//! Parse/serialise cost of a typical INVITE with SDP, and the transaction
//! layer's cost for one call as a UAS (INVITE → 100 → 200 → ACK, BYE → 200).
//! Run: `cargo bench -p sirius-sip`.
#![allow(clippy::disallowed_methods)] // a simulated clock starts from one real Instant

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sirius_sip::message::{build, parse_datagram, HeaderName, Limits};
use sirius_sip::transaction::{Config, Event, TransactionLayer, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const INVITE: &str = "INVITE sip:600@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-524287-1---2d3f1b5e1d9cfb4c;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@127.0.0.1:5062;transport=UDP>\r\n\
To: <sip:600@127.0.0.1:5060>\r\n\
From: \"Alice\" <sip:alice@127.0.0.1:5060>;tag=8f3e1c2a\r\n\
Call-ID: ZmQ3NzBkNjE5YzQyMzk0MWI2ZDc0ODY2MDk5YzE1Yjk\r\n\
CSeq: 1 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Content-Type: application/sdp\r\n\
Supported: replaces, norefersub, extended-refer, timer, outbound, path, X-cisco-serviceuri\r\n\
User-Agent: Z 5.6.2 v2.10.20.1\r\n\
Allow-Events: presence, kpml, talk, as-feature-event\r\n\
Content-Length: 246\r\n\
\r\n\
v=0\r\n\
o=Z 1700000000 1 IN IP4 127.0.0.1\r\n\
s=Z\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 8000 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn messages(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("message");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_invite_with_sdp", |b| {
        b.iter(|| parse_datagram(black_box(INVITE.as_bytes()), &limits).unwrap())
    });
    let msg = parse_datagram(INVITE.as_bytes(), &limits).unwrap();
    g.bench_function("serialise_invite_with_sdp", |b| {
        b.iter(|| black_box(&msg).to_bytes())
    });
    g.bench_function("parse_and_read_dialog_headers", |b| {
        b.iter(|| {
            let m = parse_datagram(black_box(INVITE.as_bytes()), &limits).unwrap();
            (
                m.top_via().unwrap(),
                m.cseq().unwrap(),
                m.from_header().unwrap(),
                m.to_header().unwrap(),
            )
        })
    });
    g.finish();
}

fn transactions(c: &mut Criterion) {
    let limits = Limits::default();
    let peer: SocketAddr = "127.0.0.1:5062".parse().unwrap();
    let invite = parse_datagram(INVITE.as_bytes(), &limits).unwrap();
    let mut n: u64 = 0;
    let mut g = c.benchmark_group("transaction");
    g.throughput(Throughput::Elements(1));
    g.bench_function("uas_call_invite_200_ack_bye_200", |b| {
        let mut layer = TransactionLayer::new(Config::default());
        let t0 = Instant::now();
        b.iter(|| {
            n += 1;
            let now = t0 + Duration::from_millis(n);
            let mut inv = invite.clone();
            let branch = format!("z9hG4bK{n}");
            inv.headers.set(
                HeaderName::Via,
                format!("SIP/2.0/UDP 127.0.0.1:5062;branch={branch};rport"),
            );
            inv.headers.set(HeaderName::CallId, format!("call-{n}"));
            layer.on_message(now, inv.clone(), peer, Transport::Udp);
            let Some(Event::Request { tx, .. }) = layer.poll_event() else {
                unreachable!()
            };
            let mut ok = build::response(&inv, 200, "OK", Some(peer));
            build::set_to_tag(&mut ok, "t");
            layer.respond(now, tx, &ok).unwrap();
            let mut ack = inv.clone();
            ack.start = sirius_sip::message::StartLine::Request {
                method: sirius_sip::message::Method::Ack,
                uri: "sip:600@127.0.0.1".into(),
                version: "SIP/2.0".into(),
            };
            ack.headers.set(
                HeaderName::Via,
                format!("SIP/2.0/UDP 127.0.0.1:5062;branch={branch}a"),
            );
            ack.headers.set(HeaderName::CSeq, "1 ACK");
            layer.on_message(now, ack, peer, Transport::Udp);
            let mut bye = ack_to_bye(&inv, n);
            bye.headers.set(
                HeaderName::Via,
                format!("SIP/2.0/UDP 127.0.0.1:5062;branch={branch}b"),
            );
            layer.on_message(now, bye.clone(), peer, Transport::Udp);
            while let Some(ev) = layer.poll_event() {
                if let Event::Request { tx, msg, .. } = ev {
                    layer
                        .respond(now, tx, &build::response(&msg, 200, "OK", Some(peer)))
                        .unwrap();
                }
            }
            while layer.poll_transmit().is_some() {}
            layer.handle_timeout(now);
        })
    });
    g.finish();
}

fn ack_to_bye(inv: &sirius_sip::message::Message, _n: u64) -> sirius_sip::message::Message {
    let mut bye = inv.clone();
    bye.start = sirius_sip::message::StartLine::Request {
        method: sirius_sip::message::Method::Bye,
        uri: "sip:600@127.0.0.1".into(),
        version: "SIP/2.0".into(),
    };
    bye.headers.set(HeaderName::CSeq, "2 BYE");
    bye.headers
        .set(HeaderName::To, "<sip:600@127.0.0.1:5060>;tag=t");
    bye.body.clear();
    bye.headers.remove(&HeaderName::ContentType);
    bye
}

criterion_group!(benches, messages, transactions);
criterion_main!(benches);
