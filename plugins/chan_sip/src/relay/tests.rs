//! The relay's tests: packets through real loopback sockets, the relay
//! thread's and the table's, and the pure per-packet rewrites.

use super::{g711_swaps, renumber, translate_g711, RemoteMedia};

#[test]
fn g711_is_translated_only_where_the_far_end_needs_it() {
    let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
    assert_eq!(RemoteMedia::from_sdp(sdp).g711, vec![8]);
    let mut pkt = vec![0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    pkt.extend_from_slice(&[0xff; 160]); // µ-law silence
    translate_g711(&mut pkt, g711_swaps(&[8]));
    assert_eq!(pkt[1], 8);
    assert!(pkt[12..].iter().all(|b| *b == 0xd5), "A-law silence");
    let mut same = pkt.clone();
    translate_g711(&mut same, g711_swaps(&[8, 0]));
    assert_eq!(same, pkt, "accepted as is: untouched");
    translate_g711(&mut same, g711_swaps(&[]));
    assert_eq!(same, pkt, "unknown: untouched");
    translate_g711(&mut same, g711_swaps(&[0]));
    assert_eq!(same[1], 0, "back to µ-law for a µ-law-only far end");
    let mut ulaw = vec![0xd5; 160];
    sirius_media::translate::transcode_g711(
        &mut ulaw,
        sirius_abi::Codec::PCMA,
        sirius_abi::Codec::PCMU,
    );
    assert_eq!(same[12..], ulaw[..], "A-law silence as µ-law");
}

#[test]
fn telephone_events_are_renumbered_between_legs_and_nothing_else_is() {
    let offer = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";
    assert_eq!(RemoteMedia::from_sdp(offer).dtmf_pt, Some(96));
    let mut event = [0x80, 0x80 | 96, 0, 1];
    renumber(&mut event, Some(96), Some(101));
    assert_eq!(event[1], 0x80 | 101, "marker bit kept");
    let mut audio = [0x80, 0, 0, 2];
    renumber(&mut audio, Some(96), Some(101));
    assert_eq!(audio[1], 0);
    let mut same = [0x80, 101, 0, 3];
    renumber(&mut same, Some(101), None);
    assert_eq!(same[1], 101, "no event type on the other side: untouched");
}

fn leg(remote: Option<std::net::SocketAddr>, learn: bool) -> super::Leg {
    super::Leg {
        socket: std::sync::Arc::new(
            crate::rtp_ports::RtpSocket::detached(
                std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            )
            .unwrap(),
        ),
        remote,
        learn,
        dtmf_pt: None,
        g711: Vec::new(),
        info_dtmf: None,
    }
}

fn phone() -> std::net::UdpSocket {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    s
}

#[test]
fn the_relay_thread_bridges_echoes_and_stops_on_removal() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let (rtp, rtcp) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let engine = super::RelayEngine::start(
        (rtp.clone(), rtcp.clone(), Arc::new(AtomicU64::new(0))),
        Box::new(|_, _, _| {}),
    )
    .unwrap();
    let (alice, bob) = (phone(), phone());
    // Alice's leg learns her address (comedia); Bob's comes from his SDP.
    let a = leg(None, true);
    let b = leg(Some(bob.local_addr().unwrap()), false);
    let (a_addr, b_addr) = (
        a.socket.local_addr().unwrap(),
        b.socket.local_addr().unwrap(),
    );
    let bridge = engine.bridge(a, b, super::Stream::Rtp);
    let mut buf = [0u8; 64];
    alice.send_to(b"\x80\x00hello", a_addr).unwrap();
    let (n, from) = bob.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"\x80\x00hello"[..], b_addr));
    bob.send_to(b"\x80\x00back", b_addr).unwrap();
    let (n, from) = alice.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"\x80\x00back"[..], a_addr));
    // Counted once the relay thread's batch is done, a moment after sending.
    let counted = |c: &AtomicU64, n: u64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while c.load(Ordering::Relaxed) < n && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        c.load(Ordering::Relaxed)
    };
    assert_eq!(counted(&rtp, 2), 2);
    assert_eq!(engine.sockets(), 2);
    engine.remove(bridge);
    assert_eq!(engine.sockets(), 0);
    alice.send_to(b"\x80\x00late", a_addr).unwrap();
    bob.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    assert!(bob.recv_from(&mut buf).is_err(), "nothing after removal");

    // Echo, counted as RTCP here to show the counter follows the stream.
    let e = leg(None, false);
    let e_addr = e.socket.local_addr().unwrap();
    let echo = engine.echo(e, super::Stream::Rtcp);
    alice.send_to(b"ping", e_addr).unwrap();
    let (n, from) = alice.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"ping"[..], e_addr));
    assert_eq!(counted(&rtcp, 1), 1);
    engine.remove(echo);

    // An echo whose SDP named another address sends there, not back to
    // the source (no comedia); with comedia, back to the source.
    let e = leg(Some(bob.local_addr().unwrap()), false);
    let e_addr = e.socket.local_addr().unwrap();
    let echo = engine.echo(e, super::Stream::Rtp);
    alice.send_to(b"\x80\x00to-sdp", e_addr).unwrap();
    let (n, from) = bob.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"\x80\x00to-sdp"[..], e_addr));
    engine.remove(echo);
    let e = leg(Some(bob.local_addr().unwrap()), true);
    let e_addr = e.socket.local_addr().unwrap();
    let echo = engine.echo(e, super::Stream::Rtp);
    alice.send_to(b"\x80\x00nat", e_addr).unwrap();
    let (n, from) = alice.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"\x80\x00nat"[..], e_addr));
    engine.remove(echo);
    drop(engine); // joins the thread
}

/// Towards an INFO leg, telephone events are reported (once per digit)
/// and not sent; voice still is. From the other side, a digit given to
/// `send_dtmf` leaves as RFC 4733 packets with the leg's payload type.
#[test]
fn events_for_an_info_leg_are_reported_and_digits_can_be_sent_as_events() {
    use std::sync::atomic::AtomicU64;
    use std::sync::{Arc, Mutex};
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = reports.clone();
    let engine = super::RelayEngine::start(
        (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        ),
        Box::new(move |tag, digit, ms| seen.lock().unwrap().push((tag, digit, ms))),
    )
    .unwrap();
    let (alice, bob) = (phone(), phone());
    let mut a = leg(Some(alice.local_addr().unwrap()), false);
    a.dtmf_pt = Some(101);
    let mut b = leg(Some(bob.local_addr().unwrap()), false);
    b.info_dtmf = Some(9);
    let a_addr = a.socket.local_addr().unwrap();
    let bridge = engine.bridge(a, b, super::Stream::Rtp);
    for p in crate::rfc4733::packets(101, '4', 100, 1, 1, 800) {
        alice.send_to(&p, a_addr).unwrap();
    }
    alice.send_to(b"\x80\x00voice", a_addr).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = bob.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"\x80\x00voice", "only the voice reaches bob");
    assert_eq!(*reports.lock().unwrap(), vec![(9, '4', 100)]);
    // The other way: '#' sent to alice's far end as events.
    engine.send_dtmf(&bridge, 0, '#', 60);
    let (n, _) = alice.recv_from(&mut buf).unwrap();
    let e = crate::rfc4733::parse(&buf[..n]).unwrap();
    assert_eq!((buf[1] & 0x7f, e.digit, e.end), (101, '#', false));
    engine.remove(bridge);
    drop(engine);
}

/// Packets that waited together on a leg's socket are read in one call
/// and leave together, in order, each translated (µ-law to an A-law
/// leg), a telephone event towards an INFO leg reported and left out;
/// the leg's last-packet time moves, and the count is what left.
#[test]
fn packets_waiting_together_are_relayed_together_each_as_alone() {
    use std::os::fd::AsFd;
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = reports.clone();
    let report: super::DtmfReport =
        Box::new(move |tag, digit, ms| seen.lock().unwrap().push((tag, digit, ms)));
    let (alice, bob) = (phone(), phone());
    let mut a = leg(None, true);
    a.dtmf_pt = Some(101);
    let mut b = leg(Some(bob.local_addr().unwrap()), false);
    b.g711 = vec![8];
    b.info_dtmf = Some(7);
    let a_addr = a.socket.local_addr().unwrap();
    let a_socket = a.socket.clone();
    let mut table = super::Table::default();
    let t0 = std::time::Instant::now();
    let entry = |leg: super::Leg, out| super::Entry {
        fd: std::os::fd::AsRawFd::as_raw_fd(&**leg.socket),
        swaps: g711_swaps(&leg.g711),
        leg,
        out,
        stream: super::Stream::Rtp,
        last_rx: t0,
        last_event: None,
        next_seq: None,
    };
    let ta = table.insert(entry(a, 1));
    let tb = table.insert(entry(b, 0));
    assert_eq!((ta, tb), (0, 1));
    let voice = |seq: u8| {
        let mut p = vec![0x80, 0x00, 0, seq, 0, 0, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&[0xff; 160]); // µ-law silence
        p
    };
    let event = crate::rfc4733::packets(101, '5', 100, 1, 1, 800)
        .pop()
        .unwrap();
    let sent = [voice(1), event, voice(2), voice(3)];
    for p in &sent {
        alice.send_to(p, a_addr).unwrap();
    }
    let ep = crate::epoll::Epoll::new().unwrap();
    ep.add(a_socket.as_fd(), 0).unwrap();
    let (mut events, mut batch) = (Vec::with_capacity(4), super::Batch::new());
    let (mut relayed, mut reads) = (0, 0);
    let later = t0 + std::time::Duration::from_secs(1);
    while relayed < 3 {
        ep.wait(&mut events, 2000).unwrap();
        assert!(!events.is_empty(), "the packets never came");
        // Edge-triggered: drained as the relay thread does.
        loop {
            let done = table.relay_ready(0, &mut batch, later, &report);
            relayed += done.map_or(0, |(_, n)| n);
            reads += 1;
            if batch.count() < super::BATCH {
                break;
            }
        }
    }
    assert!(reads <= 4, "one read per waiting batch");
    let mut buf = [0u8; 256];
    for seq in 1..=3 {
        let (n, _) = bob.recv_from(&mut buf).unwrap();
        assert_eq!((n, buf[1], buf[3]), (172, 8, seq), "A-law, in order");
        assert!(buf[12..n].iter().all(|b| *b == 0xd5), "A-law silence");
    }
    assert_eq!(*reports.lock().unwrap(), vec![(7, '5', 100)]);
    let a = table.slots[0].as_ref().unwrap();
    assert_eq!(a.last_rx, later);
    assert_eq!(a.leg.remote, Some(alice.local_addr().unwrap()), "learned");
}

#[test]
fn finds_the_audio_address() {
    let sdp = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 34\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert_eq!(
        RemoteMedia::from_sdp(sdp).addr,
        Some("127.0.0.1:4000".parse().unwrap())
    );
    let held = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert_eq!(RemoteMedia::from_sdp(held).addr, None);
}

#[test]
fn gaps_in_sequence_numbers_are_losses() {
    use super::{rtp_gap, Expected};
    let pkt = |b1: u8, seq: u16, ssrc: u32| {
        let mut b = vec![0x80, b1, 0, 0, 0, 0, 0, 0];
        b[2..4].copy_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&ssrc.to_be_bytes());
        b.extend_from_slice(&[0xff; 160]);
        b
    };
    let p = |seq: u16| pkt(0, seq, 7);
    let e = |seq: u16| Some(Expected { ssrc: 7, seq });
    assert_eq!(rtp_gap(None, &p(10)), (0, e(11)));
    assert_eq!(rtp_gap(e(11), &p(11)), (0, e(12)));
    assert_eq!(rtp_gap(e(12), &p(15)), (3, e(16)), "13 and 14 lost");
    assert_eq!(
        rtp_gap(e(16), &p(14)),
        (0, e(16)),
        "late: nothing counted, nothing moved"
    );
    assert_eq!(
        rtp_gap(e(65535), &p(1)),
        (2, e(2)),
        "65535 and 0 lost, across the wrap"
    );
    assert_eq!(rtp_gap(e(100), &p(40_000)), (0, e(40_001)), "a jump");
    assert_eq!(
        rtp_gap(e(100), &pkt(0, 5000, 8)),
        (0, Some(Expected { ssrc: 8, seq: 5001 })),
        "another SSRC: a new stream, nothing lost"
    );
    assert_eq!(rtp_gap(e(5), &p(5)[..11]), (0, e(5)), "too short to say");
    let mut v1 = p(9);
    v1[0] = 0x40;
    assert_eq!(rtp_gap(e(5), &v1), (0, e(5)), "not version 2");
    for pt in [200u8, 201, 202, 203, 204] {
        // RTCP on the RTP port (rtcp-mux): its packet type where RTP's
        // marker bit and payload type are.
        let rtcp = pkt(pt, 900, 7);
        assert_eq!(rtp_gap(e(5), &rtcp), (0, e(5)), "RTCP {pt} is not RTP");
    }
    assert_eq!(
        rtp_gap(e(5), &pkt(0x80 | 101, 6, 7)),
        (1, e(7)),
        "a marked event packet is RTP"
    );
}
