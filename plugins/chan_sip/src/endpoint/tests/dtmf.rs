//! DTMF between a `dtmfmode = "info"` phone and the leg it is bridged with.

use super::*;

/// Alice sends DTMF by INFO; bob by RFC 4733 unless `bob_info`.
fn toml(bob_info: bool) -> String {
    let s = SIP_TOML.replace(
        "context = \"phones\"",
        "context = \"phones\"\ndtmfmode = \"info\"",
    );
    if bob_info {
        s.replace(
            "secret = \"bob-secret\"",
            "secret = \"bob-secret\"\ndtmfmode = \"info\"",
        )
    } else {
        s
    }
}

/// Alice's answered call bridged with bob's: (alice, her 200, bob, bob's INVITE).
fn bridged(h: &mut Harness) -> (ChannelId, Message, ChannelId, Message) {
    let (a, ok_a) = answered_inbound(h);
    let (b, invite_b) = answered_outbound(h, 100);
    h.media_actions(); // the answers' addresses, before any relay
    h.input(Input::Bridge(a, b));
    (a, ok_a, b, invite_b)
}

fn info(ok: &Message, cseq: u32, body: &str) -> Message {
    let mut m = in_dialog("INFO", ok, ALICE, cseq, &format!("info{cseq}"));
    m.set_body("application/dtmf-relay", body.as_bytes().to_vec());
    m
}

#[test]
fn a_digit_by_info_reaches_an_rfc4733_leg_through_the_relay() {
    let mut h = Harness::new(&toml(false));
    let (a, ok_a, b, _) = bridged(&mut h);
    match h.media_actions().as_slice() {
        [MediaAction::Bridge(la, lb)] => {
            assert!(la.info_dtmf, "alice takes INFO");
            assert!(!lb.info_dtmf);
            assert_eq!((la.chan, lb.chan), (a, b));
        }
        other => panic!("{other:?}"),
    }
    h.take();
    h.recv(&info(&ok_a, 5, "Signal=5\r\nDuration=160\r\n"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(200));
    assert_eq!(h.media_actions(), vec![MediaAction::Dtmf(b, '5', 160)]);
}

#[test]
fn a_digit_by_info_goes_on_by_info_to_an_info_leg() {
    let mut h = Harness::new(&toml(true));
    let (_, ok_a, _, invite_b) = bridged(&mut h);
    h.take();
    h.recv(&info(&ok_a, 5, "Signal=#\r\nDuration=200\r\n"), ALICE);
    let sent = h.sent();
    assert_eq!((sent[0].0, sent[0].1.code()), (addr(ALICE), Some(200)));
    let (dest, to_bob) = &sent[1];
    assert_eq!(*dest, addr(BOB));
    assert_eq!(to_bob.method(), Some(&Method::Info));
    assert_eq!(to_bob.call_id(), invite_b.call_id());
    assert_eq!(
        to_bob.headers.get(&HeaderName::ContentType),
        Some("application/dtmf-relay")
    );
    assert_eq!(to_bob.body, b"Signal=#\r\nDuration=200\r\n");
}

/// The relay took a digit out of bob's RTP for alice: she gets an INFO.
#[test]
fn a_digit_the_relay_took_for_an_info_leg_becomes_an_info() {
    let mut h = Harness::new(&toml(false));
    let (a, ok_a, _, _) = bridged(&mut h);
    h.take();
    h.input(Input::RelayDtmf(a, '7', 100));
    let to_alice = h.expect_one(ALICE);
    assert_eq!(to_alice.method(), Some(&Method::Info));
    assert_eq!(to_alice.call_id(), ok_a.call_id());
    assert_eq!(to_alice.body, b"Signal=7\r\nDuration=100\r\n");
}

/// Not bridged (the dialplan has the call): the digit goes to the core.
#[test]
fn a_digit_by_info_on_an_unbridged_call_goes_to_the_core() {
    let mut h = Harness::new(&toml(false));
    let (a, ok_a) = answered_inbound(&mut h);
    h.take();
    let mut m = in_dialog("INFO", &ok_a, ALICE, 5, "i5");
    m.set_body("application/dtmf", b"9".to_vec());
    h.recv(&m, ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(200));
    assert_eq!(h.host_actions(), vec![HostAction::Dtmf(a, '9', 250)]);
}
