//! The RFC 3261 timers, checked instant by instant on a simulated clock.

use super::*;
use crate::message::HeaderName;
use crate::message::{build, parse_datagram, Limits, Method};
use std::time::Instant;

const PEER: &str = "127.0.0.1:5062";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn request(method: &str, branch: &str) -> Message {
    let text = format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n\
         From: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: call-{branch}\r\n\
         CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    parse_datagram(text.as_bytes(), &Limits::default()).unwrap()
}

fn reply(req: &Message, code: u16) -> Message {
    let mut r = build::response(req, code, "X", None);
    build::set_to_tag(&mut r, "b");
    r
}

/// Advances the clock to every deadline up to `until`, recording the instants
/// (ms since t0) at which something was transmitted.
fn run(layer: &mut TransactionLayer, t0: Instant, until_ms: u64) -> Vec<u64> {
    let mut sent = Vec::new();
    while let Some(at) = layer.poll_timeout() {
        if at > t0 + Duration::from_millis(until_ms) {
            break;
        }
        layer.handle_timeout(at);
        while layer.poll_transmit().is_some() {
            sent.push(at.duration_since(t0).as_millis() as u64);
        }
    }
    sent
}

fn drain(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

fn events(layer: &mut TransactionLayer) -> Vec<Event> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

#[test]
fn client_invite_retransmits_with_timer_a_and_times_out_with_b() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let tx = l
        .send_request(t0, request("INVITE", "z9hG4bK1"), peer(), Transport::Udp)
        .unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    assert_eq!(
        run(&mut l, t0, 40_000),
        vec![500, 1500, 3500, 7500, 15500, 31500]
    );
    assert_eq!(events(&mut l), vec![Event::Timeout { tx }]);
    assert!(l.is_empty());
}

#[test]
fn client_non_invite_caps_at_t2_and_times_out_with_f() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let tx = l
        .send_request(t0, request("OPTIONS", "z9hG4bK2"), peer(), Transport::Udp)
        .unwrap();
    drain(&mut l);
    assert_eq!(
        run(&mut l, t0, 40_000),
        vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(events(&mut l), vec![Event::Timeout { tx }]);
}

#[test]
fn client_non_invite_provisional_moves_retransmits_to_t2_then_k_ends_it() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("REGISTER", "z9hG4bK3");
    let tx = l
        .send_request(t0, req.clone(), peer(), Transport::Udp)
        .unwrap();
    drain(&mut l);
    assert_eq!(run(&mut l, t0, 600), vec![500]);
    l.on_message(
        t0 + Duration::from_millis(700),
        reply(&req, 100),
        peer(),
        Transport::Udp,
    );
    // Next was due at 1500 (already scheduled), then every T2.
    assert_eq!(run(&mut l, t0, 10_000), vec![1500, 5500, 9500]);
    l.on_message(
        t0 + Duration::from_millis(10_000),
        reply(&req, 200),
        peer(),
        Transport::Udp,
    );
    let ev = events(&mut l);
    assert_eq!(ev.len(), 2, "100 and 200 delivered: {ev:?}");
    // A retransmitted 200 is absorbed in Completed.
    l.on_message(
        t0 + Duration::from_millis(10_100),
        reply(&req, 200),
        peer(),
        Transport::Udp,
    );
    assert!(events(&mut l).is_empty());
    assert_eq!(run(&mut l, t0, 14_999), Vec::<u64>::new());
    assert_eq!(l.len(), 1);
    run(&mut l, t0, 15_000); // Timer K = T4
    assert!(l.is_empty());
    let _ = tx;
}

#[test]
fn client_invite_non_2xx_is_acked_by_the_layer_and_d_absorbs_retransmissions() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK4");
    let tx = l
        .send_request(t0, req.clone(), peer(), Transport::Udp)
        .unwrap();
    drain(&mut l);
    l.on_message(
        t0 + Duration::from_millis(100),
        reply(&req, 180),
        peer(),
        Transport::Udp,
    );
    assert_eq!(
        run(&mut l, t0, 5000),
        Vec::<u64>::new(),
        "no retransmission in Proceeding"
    );
    l.on_message(
        t0 + Duration::from_millis(5000),
        reply(&req, 486),
        peer(),
        Transport::Udp,
    );
    let ack = drain(&mut l);
    assert_eq!(ack.len(), 1);
    let ack = parse_datagram(&ack[0].data, &Limits::default()).unwrap();
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.headers.get(&HeaderName::CSeq), Some("1 ACK"));
    assert_eq!(ack.to_header().unwrap().tag(), Some("b"));
    assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bK4"));
    let ev = events(&mut l);
    assert!(
        matches!(&ev[..], [Event::Response { .. }, Event::Response { tx: t, msg }] if *t == tx && msg.code() == Some(486))
    );
    // The 486 again: the ACK again, nothing to the TU.
    l.on_message(
        t0 + Duration::from_millis(5500),
        reply(&req, 486),
        peer(),
        Transport::Udp,
    );
    assert_eq!(drain(&mut l).len(), 1);
    assert!(events(&mut l).is_empty());
    run(&mut l, t0, 5000 + 32_000); // Timer D = 32 s
    assert!(l.is_empty());
}

#[test]
fn client_invite_2xx_goes_to_accepted_and_retransmissions_reach_the_tu() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK5");
    let tx = l
        .send_request(t0, req.clone(), peer(), Transport::Udp)
        .unwrap();
    drain(&mut l);
    l.on_message(
        t0 + Duration::from_millis(200),
        reply(&req, 200),
        peer(),
        Transport::Udp,
    );
    l.on_message(
        t0 + Duration::from_millis(700),
        reply(&req, 200),
        peer(),
        Transport::Udp,
    );
    assert!(drain(&mut l).is_empty(), "the layer never ACKs a 2xx");
    assert_eq!(events(&mut l).len(), 2);
    assert_eq!(run(&mut l, t0, 200 + 32_000), Vec::<u64>::new());
    assert!(l.is_empty(), "Timer M ended it");
    let _ = tx;
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK6");
    let tx = l
        .send_request(t0, req.clone(), peer(), Transport::Udp)
        .unwrap();
    drain(&mut l);
    assert_eq!(l.cancel(t0, tx), Ok(None), "held until a 1xx");
    assert!(drain(&mut l).is_empty());
    l.on_message(
        t0 + Duration::from_millis(100),
        reply(&req, 180),
        peer(),
        Transport::Udp,
    );
    let out = drain(&mut l);
    assert_eq!(out.len(), 1);
    let c = parse_datagram(&out[0].data, &Limits::default()).unwrap();
    assert_eq!(c.method(), Some(&Method::Cancel));
    assert_eq!(c.headers.get(&HeaderName::CSeq), Some("1 CANCEL"));
    assert_eq!(c.top_via().unwrap().branch(), Some("z9hG4bK6"));
    assert!(c.to_header().unwrap().tag().is_none());
}

/// A CANCEL says why when asked (RFC 3326), sent at once in Proceeding or
/// held until a provisional response in Calling.
#[test]
fn a_cancel_for_a_call_completed_elsewhere_carries_its_reason() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let reason = Some("SIP;cause=200;text=\"Call completed elsewhere\"");
    for (n, held) in [(1, true), (2, false)] {
        let req = request("INVITE", &format!("z9hG4bKr{n}"));
        let tx = l
            .send_request(t0, req.clone(), peer(), Transport::Udp)
            .unwrap();
        drain(&mut l);
        if !held {
            l.on_message(t0, reply(&req, 180), peer(), Transport::Udp);
            drain(&mut l);
        }
        let sent = l.cancel_with(t0, tx, crate::transaction::CancelReason::CompletedElsewhere);
        assert_eq!(sent.unwrap().is_some(), !held);
        if held {
            assert!(drain(&mut l).is_empty());
            l.on_message(t0, reply(&req, 183), peer(), Transport::Udp);
        }
        let out = drain(&mut l);
        let c = parse_datagram(&out[0].data, &Limits::default()).unwrap();
        assert_eq!(c.method(), Some(&Method::Cancel));
        assert_eq!(c.headers.get(&HeaderName::Reason), reason);
    }
}

#[test]
fn server_invite_sends_trying_absorbs_retransmissions_and_retransmits_errors_until_ack() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK7");
    l.on_message(t0, req.clone(), peer(), Transport::Udp);
    let trying = drain(&mut l);
    assert_eq!(
        parse_datagram(&trying[0].data, &Limits::default())
            .unwrap()
            .code(),
        Some(100)
    );
    let Some(Event::Request { tx, .. }) = l.poll_event() else {
        panic!("no request event")
    };
    // The INVITE again: 100 Trying again, no new event.
    l.on_message(
        t0 + Duration::from_millis(500),
        req.clone(),
        peer(),
        Transport::Udp,
    );
    assert_eq!(drain(&mut l).len(), 1);
    assert!(l.poll_event().is_none());
    l.respond(t0 + Duration::from_millis(1000), tx, &reply(&req, 486))
        .unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    assert_eq!(
        l.respond(t0, tx, &reply(&req, 500)),
        Err(TxError::AlreadyFinal(tx))
    );
    // Timer G: 1000 + 500, +1000, +2000, +4000, +4000...
    assert_eq!(run(&mut l, t0, 12_000), vec![1500, 2500, 4500, 8500]);
    let mut ack = build::ack_for_non_2xx(&req, &reply(&req, 486));
    ack.headers.set(
        HeaderName::Via,
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK7",
    );
    l.on_message(
        t0 + Duration::from_millis(9000),
        ack.clone(),
        peer(),
        Transport::Udp,
    );
    assert!(l.poll_event().is_none(), "ACK for a non-2xx is absorbed");
    assert_eq!(
        run(&mut l, t0, 13_999),
        Vec::<u64>::new(),
        "Confirmed: no more retransmissions"
    );
    run(&mut l, t0, 14_000); // Timer I = T4 after the ACK
    assert!(l.is_empty());
}

#[test]
fn server_invite_without_ack_times_out_with_h() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK8");
    l.on_message(t0, req.clone(), peer(), Transport::Udp);
    drain(&mut l);
    let Some(Event::Request { tx, .. }) = l.poll_event() else {
        panic!()
    };
    l.respond(t0, tx, &reply(&req, 603)).unwrap();
    drain(&mut l);
    let sent = run(&mut l, t0, 40_000);
    assert_eq!(
        sent,
        vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(events(&mut l), vec![Event::Timeout { tx }]);
}

#[test]
fn server_2xx_is_retransmitted_until_the_ack_which_reaches_the_tu() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK9");
    l.on_message(t0, req.clone(), peer(), Transport::Udp);
    drain(&mut l);
    let Some(Event::Request { tx, .. }) = l.poll_event() else {
        panic!()
    };
    l.respond(t0, tx, &reply(&req, 200)).unwrap();
    drain(&mut l);
    assert_eq!(run(&mut l, t0, 2000), vec![500, 1500]);
    // The ACK for a 2xx has its own branch.
    let mut ack = request("ACK", "z9hG4bKack");
    ack.headers.set(HeaderName::CallId, "call-z9hG4bK9");
    l.on_message(
        t0 + Duration::from_millis(2000),
        ack.clone(),
        peer(),
        Transport::Udp,
    );
    assert!(matches!(l.poll_event(), Some(Event::Ack { tx: Some(t), .. }) if t == tx));
    l.on_message(
        t0 + Duration::from_millis(2100),
        ack,
        peer(),
        Transport::Udp,
    );
    assert!(
        l.poll_event().is_none(),
        "a retransmitted ACK is not delivered twice"
    );
    assert_eq!(run(&mut l, t0, 40_000), Vec::<u64>::new());
    assert!(events(&mut l).is_empty(), "acked: no timeout at L");
    assert!(l.is_empty());
}

#[test]
fn server_2xx_never_acked_reports_timeout_at_l() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("INVITE", "z9hG4bK10");
    l.on_message(t0, req.clone(), peer(), Transport::Udp);
    drain(&mut l);
    let Some(Event::Request { tx, .. }) = l.poll_event() else {
        panic!()
    };
    l.respond(t0, tx, &reply(&req, 200)).unwrap();
    drain(&mut l);
    let sent = run(&mut l, t0, 40_000);
    assert_eq!(
        sent,
        vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert_eq!(events(&mut l), vec![Event::Timeout { tx }]);
}

#[test]
fn server_non_invite_absorbs_retransmissions_and_j_ends_it() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bK11");
    l.on_message(t0, req.clone(), peer(), Transport::Udp);
    let Some(Event::Request { tx, .. }) = l.poll_event() else {
        panic!()
    };
    assert!(drain(&mut l).is_empty(), "no 100 for non-INVITE");
    l.on_message(
        t0 + Duration::from_millis(500),
        req.clone(),
        peer(),
        Transport::Udp,
    );
    assert!(
        drain(&mut l).is_empty() && l.poll_event().is_none(),
        "retransmission in Trying is discarded"
    );
    l.respond(t0 + Duration::from_millis(600), tx, &reply(&req, 200))
        .unwrap();
    assert_eq!(drain(&mut l).len(), 1);
    l.on_message(
        t0 + Duration::from_millis(1100),
        req,
        peer(),
        Transport::Udp,
    );
    assert_eq!(drain(&mut l).len(), 1, "answered with the stored 200");
    run(&mut l, t0, 600 + 31_999);
    assert_eq!(l.len(), 1);
    run(&mut l, t0, 600 + 32_000); // Timer J = 64*T1
    assert!(l.is_empty());
}

#[test]
fn cancel_is_matched_to_its_invite() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let inv = request("INVITE", "z9hG4bK12");
    l.on_message(t0, inv.clone(), peer(), Transport::Udp);
    let Some(Event::Request { tx: inv_tx, .. }) = l.poll_event() else {
        panic!()
    };
    let cancel = build::cancel(&inv);
    l.on_message(t0, cancel, peer(), Transport::Udp);
    assert!(matches!(l.poll_event(), Some(Event::Request { cancels: Some(t), .. }) if t == inv_tx));
    let stray = build::cancel(&request("INVITE", "z9hG4bKnone"));
    l.on_message(t0, stray, peer(), Transport::Udp);
    assert!(matches!(
        l.poll_event(),
        Some(Event::Request { cancels: None, .. })
    ));
}

#[test]
fn reliable_transports_never_retransmit_and_linger_zero() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("OPTIONS", "z9hG4bK13");
    l.send_request(t0, req.clone(), peer(), Transport::Tcp)
        .unwrap();
    drain(&mut l);
    assert_eq!(run(&mut l, t0, 10_000), Vec::<u64>::new());
    l.on_message(
        t0 + Duration::from_millis(10_000),
        reply(&req, 200),
        peer(),
        Transport::Tcp,
    );
    run(&mut l, t0, 10_000);
    assert!(l.is_empty(), "Timer K is zero on TCP");
}

#[test]
fn rfc2543_requests_without_magic_cookie_still_match() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let req = request("OPTIONS", "390skdjuw");
    l.on_message(t0, req.clone(), peer(), Transport::Udp);
    assert!(l.poll_event().is_some());
    l.on_message(t0, req, peer(), Transport::Udp);
    assert!(
        l.poll_event().is_none(),
        "retransmission recognised without a magic cookie"
    );
}

#[test]
fn a_transport_error_ends_the_client_transactions_to_that_destination_only() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let invite = l
        .send_request(t0, request("INVITE", "z9hG4bK20"), peer(), Transport::Tcp)
        .unwrap();
    let options = l
        .send_request(t0, request("OPTIONS", "z9hG4bK21"), peer(), Transport::Tcp)
        .unwrap();
    let elsewhere: SocketAddr = "127.0.0.1:5099".parse().unwrap();
    l.send_request(
        t0,
        request("OPTIONS", "z9hG4bK22"),
        elsewhere,
        Transport::Tcp,
    )
    .unwrap();
    let over_udp = l
        .send_request(t0, request("OPTIONS", "z9hG4bK23"), peer(), Transport::Udp)
        .unwrap();
    drain(&mut l);
    l.transport_error(peer(), Transport::Tcp);
    assert_eq!(
        events(&mut l),
        vec![
            Event::Timeout { tx: invite },
            Event::Timeout { tx: options }
        ]
    );
    assert_eq!(l.len(), 2, "the other destination and the UDP one live on");
    assert!(l.request(over_udp).is_some());
}

/// Under load (issue #11): tens of thousands of transactions linger at once,
/// each with its own timers; they all end on time, in order, the deadline the
/// layer reports is always a live one, and the storage shrinks after.
#[test]
fn a_burst_of_lingering_transactions_ends_on_time_and_gives_its_room_back() {
    let mut l = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let n = 20_000u64;
    // 20 BYEs a millisecond, each answered at once (Timer J ends it
    // 64·T1 after the answer); a retransmission of every tenth is absorbed.
    for i in 0..n {
        let at = t0 + ms(i / 20);
        let bye = request("BYE", &format!("z9hG4bKb{i}"));
        l.on_message(at, bye.clone(), peer(), Transport::Udp);
        let Some(Event::Request { tx, .. }) = l.poll_event() else {
            panic!("BYE {i} not delivered");
        };
        l.respond(at, tx, &reply(&bye, 200)).unwrap();
        if i % 10 == 0 {
            l.on_message(at, bye, peer(), Transport::Udp);
            assert!(l.poll_event().is_none(), "a retransmission is absorbed");
        }
    }
    let sent = drain(&mut l).len() as u64;
    assert_eq!(
        sent,
        n + n / 10,
        "each 200 once, again for each retransmission"
    );
    assert_eq!(l.len() as u64, n);
    // The first ends exactly 32 s after its answer, the last 32 s after its.
    assert_eq!(l.poll_timeout(), Some(t0 + ms(32_000)));
    l.handle_timeout(t0 + ms(32_000 + 499));
    assert_eq!(
        l.len() as u64,
        n - 500 * 20,
        "those answered in the first 500 ms"
    );
    assert_eq!(l.poll_timeout(), Some(t0 + ms(32_500)));
    l.handle_timeout(t0 + ms(32_000 + n / 20));
    assert!(l.is_empty());
    assert_eq!(l.poll_timeout(), None, "no stale deadline left behind");
    assert!(
        drain(&mut l).is_empty(),
        "lingering sends nothing over time"
    );
    let (chunks, keys) = l.footprint();
    assert!(chunks <= 2, "chunks given back: {chunks}");
    assert!(
        keys <= 2 * Config::default().capacity,
        "key table shrunk: {keys}"
    );
}
