//! Blind transfer by REFER (session/refer.rs): the 202, the NOTIFYs that
//! report the transferee's progress, and the transferor's end.

use super::*;

/// Alice (inbound, context `phones`) bridged with bob (outbound): their
/// channels and the 200 that set alice's dialog up.
fn bridged(h: &mut Harness) -> (ChannelId, ChannelId, Message) {
    let (a, ok_a) = answered_inbound(h);
    let (b, _) = answered_outbound(h, 100);
    h.input(Input::Bridge(a, b));
    h.take();
    (a, b, ok_a)
}

/// Alice's REFER to `target`, CSeq `cseq`.
fn refer(ok_a: &Message, cseq: u32, target: &str) -> Message {
    let mut r = in_dialog("REFER", ok_a, ALICE, cseq, &format!("refer{cseq}"));
    r.push(HeaderName::ReferTo, target);
    r.push(HeaderName::ReferredBy, "<sip:alice@127.0.0.1>");
    r
}

/// The one NOTIFY sent to alice since the last look.
fn notify(h: &mut Harness) -> Message {
    let n = h.expect_one(ALICE);
    assert_eq!(n.method(), Some(&Method::Notify), "{n:#?}");
    n
}

fn header(m: &Message, name: HeaderName) -> &str {
    m.headers.get(&name).unwrap_or_default()
}

/// Alice transfers bob to 6003: 202 with our Contact, NOTIFY 100 at once
/// (seed 002's order), the core asked for the transfer in alice's context
/// with Asterisk's variables; then bob's ringing and the target's answer are
/// reported, one NOTIFY at a time, the last one terminating the
/// subscription; alice's BYE ends her leg and nothing else is sent.
#[test]
fn a_refer_transfers_the_bridge_partner_and_reports_ringing_then_200() {
    let mut h = Harness::new(SIP_TOML);
    let (a, b, ok_a) = bridged(&mut h);
    h.recv(&refer(&ok_a, 2, "<sip:6003@127.0.0.1:5060>"), ALICE);
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let (accepted, first) = (&sent[0].1, &sent[1].1);
    assert_eq!(accepted.code(), Some(202));
    assert_eq!(
        header(accepted, HeaderName::Contact),
        "<sip:127.0.0.1:5060>"
    );
    assert_eq!(sent[1].0, addr(ALICE));
    assert_eq!(first.method(), Some(&Method::Notify));
    assert_eq!(first.request_uri(), Some("sip:alice@127.0.0.1:5062"));
    assert_eq!(header(first, HeaderName::Event), "refer");
    assert_eq!(
        header(first, HeaderName::SubscriptionState),
        "active;expires=180"
    );
    assert_eq!(
        header(first, HeaderName::ContentType),
        "message/sipfrag;version=2.0"
    );
    assert_eq!(first.body, b"SIP/2.0 100 Trying\r\n");
    // In alice's dialog, with our CSeq counting on from there.
    assert_eq!(first.call_id(), ok_a.call_id());
    let seq = first.cseq().unwrap().seq;
    let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        h.env.transfers,
        vec![(
            a,
            "phones".to_string(),
            "6003".to_string(),
            vars(&[
                ("SIPTRANSFER", "yes"),
                ("SIPREFERRINGCONTEXT", "phones"),
                ("SIPREFERTOHDR", "<sip:6003@127.0.0.1:5060>"),
                ("__SIPREFERREDBYHDR", "<sip:alice@127.0.0.1>"),
            ])
        )]
    );
    // The core unbridges them (native_unbridge) and runs 6003 on bob.
    h.input(Input::Unbridge(a, b));
    // Bob's new dialplan rings the target: reported only once the NOTIFY
    // in flight is answered.
    h.input(Input::Indicate(b, Indication::Ringing));
    assert!(h.sent().is_empty(), "one NOTIFY at a time");
    h.recv(&reply(first, 200, "OK", "a1"), ALICE);
    let ringing = notify(&mut h);
    assert_eq!(ringing.body, b"SIP/2.0 180 Ringing\r\n");
    assert_eq!(ringing.cseq().unwrap().seq, seq + 1);
    assert!(header(&ringing, HeaderName::SubscriptionState).starts_with("active;expires="));
    h.recv(&reply(&ringing, 200, "OK", "a1"), ALICE);

    // The target (another leg of ours) answers and Dial bridges it to bob.
    let (c, _) = answered_outbound(&mut h, 200);
    h.take();
    h.input(Input::Bridge(b, c));
    let done = notify(&mut h);
    assert_eq!(done.body, b"SIP/2.0 200 OK\r\n");
    assert_eq!(
        header(&done, HeaderName::SubscriptionState),
        "terminated;reason=noresource"
    );
    h.recv(&reply(&done, 200, "OK", "a1"), ALICE);
    // Later news about bob is nobody's business now.
    h.input(Input::Indicate(b, Indication::Ringing));
    assert!(h.sent().is_empty());

    // Alice hangs up, as the seed's flow does: 200, her channel goes.
    h.recv(&in_dialog("BYE", &ok_a, ALICE, 3, "bye"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(200));
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(a, Cause::NORMAL_CLEARING)));
    h.advance_to(60_000);
    let late: Vec<_> = h
        .sent()
        .into_iter()
        .filter(|(_, m)| m.is_request())
        .collect();
    assert!(late.is_empty(), "no BYE of ours: {late:#?}");
    assert_eq!(h.ep.refers.len(), 0);
    assert!(h.ep.dialogs.get(&dialog_of(&ok_a)).is_none(), "dialog gone");
    assert_eq!(h.ep.refers.counted_dialogs(), 0, "its REFER count too");
}

/// The dialog of alice's call as we hold it (our tag is the 200's To tag).
fn dialog_of(ok_a: &Message) -> sirius_sip::dialog::DialogId {
    sirius_sip::dialog::DialogId {
        call_id: ok_a.call_id().unwrap().to_string(),
        local_tag: ok_a.to_ref().unwrap().tag().unwrap().to_string(),
        remote_tag: "a1".into(),
    }
}

/// A transferor that never hangs up is hung up by us 4 s after the final
/// report was answered, with a BYE and the host told.
#[test]
fn a_transferor_that_stays_is_ended_after_its_grace() {
    let mut h = Harness::new(SIP_TOML);
    let (a, b, ok_a) = bridged(&mut h);
    h.recv(&refer(&ok_a, 2, "<sip:6003@127.0.0.1>"), ALICE);
    let trying = h.sent().pop().unwrap().1;
    let seq = trying.cseq().unwrap().seq;
    h.recv(&reply(&trying, 200, "OK", "a1"), ALICE);
    h.input(Input::Bridge(b, b)); // the target is Echo(): answered at once
    let done = notify(&mut h);
    assert_eq!(done.body, b"SIP/2.0 200 OK\r\n");
    h.advance_to(1_000);
    h.sent(); // its retransmission at 500 ms
    h.recv(&reply(&done, 200, "OK", "a1"), ALICE);
    h.advance_to(4_999);
    assert!(h.sent().is_empty());
    h.advance_to(5_000);
    let bye = h.expect_one(ALICE);
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye.cseq().unwrap().seq, seq + 2, "after the two NOTIFYs");
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(a, Cause::NORMAL_CLEARING)));
    assert_eq!(h.ep.refers.len(), 0);
    assert_eq!(h.ep.refers.counted_dialogs(), 0, "nothing left behind");
}

/// A busy target: the transferee's end is the final report (486), and the
/// transferor's leg still ends (its call was given away).
#[test]
fn a_busy_target_is_reported_as_486() {
    let mut h = Harness::new(SIP_TOML);
    let (a, b, ok_a) = bridged(&mut h);
    h.recv(&refer(&ok_a, 2, "<sip:6003@127.0.0.1>"), ALICE);
    let trying = h.sent().pop().unwrap().1;
    h.recv(&reply(&trying, 200, "OK", "a1"), ALICE);
    h.input(Input::Hangup(b, Cause::USER_BUSY));
    let sent: Vec<_> = h
        .sent()
        .into_iter()
        .filter(|(to, _)| *to == addr(ALICE))
        .collect();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0].1.body, b"SIP/2.0 486 Busy Here\r\n");
    assert_eq!(
        header(&sent[0].1, HeaderName::SubscriptionState),
        "terminated;reason=noresource"
    );
    h.recv(&reply(&sent[0].1, 200, "OK", "a1"), ALICE);
    h.advance_to(4_000);
    // Bob's leg was ended by the core's hangup (its BYE, unanswered here,
    // goes on being retransmitted); alice gets one BYE of her own.
    let to_alice: Vec<_> = h
        .sent()
        .into_iter()
        .filter(|(to, _)| *to == addr(ALICE))
        .collect();
    assert_eq!(to_alice.len(), 1, "{to_alice:#?}");
    assert_eq!(to_alice[0].1.method(), Some(&Method::Bye));
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(a, Cause::NORMAL_CLEARING)));
}

/// The core refuses (no such extension in the context): the final report
/// says 404 and alice keeps her call: no BYE, ever.
#[test]
fn a_refused_transfer_is_reported_and_the_call_goes_on() {
    let mut h = Harness::new(SIP_TOML);
    let (a, _, ok_a) = bridged(&mut h);
    h.env.transfer_result = Some(Err(Cause::UNALLOCATED));
    h.env
        .vars
        .insert((a, "TRANSFER_CONTEXT".into()), "transfers".into());
    h.recv(&refer(&ok_a, 2, "<sip:%39%39@127.0.0.1>"), ALICE);
    assert_eq!(h.env.transfers[0].1, "transfers", "TRANSFER_CONTEXT wins");
    assert_eq!(h.env.transfers[0].2, "99", "the user part unescaped");
    let trying = h.sent().pop().unwrap().1;
    assert_eq!(trying.body, b"SIP/2.0 100 Trying\r\n");
    h.recv(&reply(&trying, 200, "OK", "a1"), ALICE);
    let failed = notify(&mut h);
    assert_eq!(failed.body, b"SIP/2.0 404 Not Found\r\n");
    h.recv(&reply(&failed, 200, "OK", "a1"), ALICE);
    h.advance_to(60_000);
    let requests: Vec<_> = h
        .sent()
        .into_iter()
        .filter(|(_, m)| m.is_request())
        .collect();
    assert!(requests.is_empty(), "{requests:#?}");
    assert!(!h
        .host_actions()
        .iter()
        .any(|x| matches!(x, HostAction::Hangup(..))));
    // Her call still takes requests, a second transfer included.
    h.env.transfer_result = None;
    h.recv(&refer(&ok_a, 3, "<sip:6003@127.0.0.1>"), ALICE);
    let sent = h.sent();
    assert_eq!(sent[0].1.code(), Some(202));
    assert_eq!(header(&sent[1].1, HeaderName::Event), "refer;id=3");
    h.recv(&reply(&sent[1].1, 200, "OK", "a1"), ALICE);
    // She hangs up meanwhile: the report goes on in the dialog, then the
    // dialog and its count go.
    h.recv(&in_dialog("BYE", &ok_a, ALICE, 4, "bye"), ALICE);
    assert!(
        h.ep.dialogs.get(&dialog_of(&ok_a)).is_some(),
        "kept for the NOTIFYs"
    );
    h.input(Input::Bridge(ChannelId(100), ChannelId(100)));
    for (_, m) in h.sent() {
        if m.method() == Some(&Method::Notify) {
            h.recv(&reply(&m, 200, "OK", "a1"), ALICE);
        }
    }
    assert_eq!(h.ep.refers.len(), 0);
    assert!(h.ep.dialogs.get(&dialog_of(&ok_a)).is_none());
    assert_eq!(h.ep.refers.counted_dialogs(), 0);
}

/// Requests that cannot be a transfer are answered before any 202.
#[test]
fn refers_that_cannot_transfer_get_a_final_response() {
    let mut h = Harness::new(SIP_TOML);
    let (_, _, ok_a) = bridged(&mut h);
    for (cseq, target, code) in [
        (2, "<mailto:bob@example.com>", 400),
        (3, "<http://example.com/>", 400),
        (4, "", 400),
        (5, "<sip:1@pbx>, <sip:2@pbx>", 400),
    ] {
        let mut r = in_dialog("REFER", &ok_a, ALICE, cseq, &format!("bad{cseq}"));
        if !target.is_empty() {
            r.push(HeaderName::ReferTo, target);
        }
        h.recv(&r, ALICE);
        assert_eq!(h.expect_one(ALICE).code(), Some(code), "{target}");
    }
    assert!(h.env.transfers.is_empty());
    // A transfer in progress: a second one waits (491).
    h.recv(&refer(&ok_a, 6, "<sip:6003@127.0.0.1>"), ALICE);
    h.sent();
    h.recv(&refer(&ok_a, 7, "<sip:6004@127.0.0.1>"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(491));
    assert_eq!(h.env.transfers.len(), 1);
}

/// `allowtransfer = false` on the peer: 603 Declined, as pjsip.
#[test]
fn a_peer_not_allowed_to_transfer_gets_603() {
    let toml = SIP_TOML.replace(
        "context = \"phones\"",
        "context = \"phones\"\nallowtransfer = false",
    );
    let mut h = Harness::new(&toml);
    let (_, _, ok_a) = bridged(&mut h);
    h.recv(&refer(&ok_a, 2, "<sip:6003@127.0.0.1>"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(603));
    assert!(h.env.transfers.is_empty());
}

/// The seed's flow holds the call first: bob was put on hold through us,
/// so once transferred he gets a re-INVITE taking the hold off.
#[test]
fn a_transferee_held_through_us_is_taken_off_hold() {
    let mut h = Harness::new(SIP_TOML);
    let (_, b, ok_a) = bridged(&mut h);
    let mut hold = in_dialog("INVITE", &ok_a, ALICE, 2, "hold");
    hold.set_body("application/sdp", sdp(40_000, "sendonly"));
    h.recv(&hold, ALICE);
    let to_bob = h
        .sent()
        .into_iter()
        .find(|(to, _)| *to == addr(BOB))
        .unwrap()
        .1;
    let mut bob_ok = reply(&to_bob, 200, "OK", "b1");
    bob_ok.set_body("application/sdp", sdp(41_000, "recvonly"));
    h.recv(&bob_ok, BOB);
    h.recv(&in_dialog("ACK", &ok_a, ALICE, 2, "hold-ack"), ALICE);
    h.take();
    assert!(h.ep.sessions.get(b).unwrap().local_hold);

    h.recv(&refer(&ok_a, 3, "<sip:6003@127.0.0.1>"), ALICE);
    let unhold = h
        .sent()
        .into_iter()
        .find(|(to, _)| *to == addr(BOB))
        .expect("a re-INVITE to bob")
        .1;
    assert_eq!(unhold.method(), Some(&Method::Invite));
    let body = String::from_utf8(unhold.body.clone()).unwrap();
    assert!(body.contains("a=sendrecv"), "{body}");
}

/// A transferor that never answers its NOTIFY: retransmitted on Timer E's
/// schedule, given up at Timer F (32 s), and the transferor's leg ended
/// after its grace with one BYE.
#[test]
fn an_unanswered_notify_is_retransmitted_then_given_up() {
    let mut h = Harness::new(SIP_TOML);
    let (a, _, ok_a) = bridged(&mut h);
    h.recv(&refer(&ok_a, 2, "<sip:6003@127.0.0.1>"), ALICE);
    let seq = h.sent().pop().unwrap().1.cseq().unwrap().seq;
    let mut at = Vec::new();
    for ms in (0..=32_000).step_by(50) {
        h.advance_to(ms);
        if h.sent()
            .iter()
            .any(|(_, m)| m.method() == Some(&Method::Notify))
        {
            at.push(ms);
        }
    }
    assert_eq!(&at[..4], &[500, 1_500, 3_500, 7_500], "{at:?}");
    h.advance_to(40_000);
    // One BYE (its own retransmissions aside), sent at 32 s + 4 s.
    let mut byes: Vec<_> = h
        .sent()
        .into_iter()
        .filter(|(_, m)| m.method() == Some(&Method::Bye))
        .map(|(_, m)| m.cseq().unwrap().seq)
        .collect();
    byes.dedup();
    assert_eq!(byes, [seq + 1], "one BYE after the one NOTIFY");
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(a, Cause::NORMAL_CLEARING)));
}

/// The target of a transfer learns who referred the call: the REFER's
/// Referred-By, read by `request_call` from the transferee, goes on the
/// INVITE (RFC 3892, as pjsip's refer_outgoing_request).
#[test]
fn a_transfer_targets_invite_carries_referred_by() {
    let mut h = Harness::new(SIP_TOML);
    let chan = ChannelId(5);
    h.input(Input::NewOutbound(OutboundSetup {
        referred_by: Some("<sip:alice@127.0.0.1>".into()),
        ..call_to("bob", chan)
    }));
    h.input(Input::Place(chan));
    let invite = h.expect_one(BOB);
    assert_eq!(
        header(&invite, HeaderName::ReferredBy),
        "<sip:alice@127.0.0.1>"
    );
    assert!(h.ep.refers.referred_by.is_empty(), "used once");
}

/// Seed 002's BYE/Also: alice hangs up naming a target; bob is
/// blind-transferred there before her leg ends. A guest's or a bad Also
/// is just a BYE.
#[test]
fn a_bye_with_also_transfers_the_other_party_first() {
    let mut h = Harness::new(SIP_TOML);
    let (a, _b, ok_a) = bridged(&mut h);
    let mut bye = in_dialog("BYE", &ok_a, ALICE, 2, "bye-also");
    bye.push(HeaderName::Other("Also".into()), "<sip:6003@127.0.0.1>");
    h.recv(&bye, ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(200));
    assert_eq!(h.env.transfers.len(), 1);
    assert_eq!(
        (
            h.env.transfers[0].0,
            &*h.env.transfers[0].1,
            &*h.env.transfers[0].2
        ),
        (a, "phones", "6003")
    );
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(a, Cause::NORMAL_CLEARING)));

    let mut h = Harness::new(SIP_TOML);
    let (_, _, ok_a) = bridged(&mut h);
    let mut bye = in_dialog("BYE", &ok_a, ALICE, 2, "bye-also");
    bye.push(HeaderName::Other("Also".into()), "<mailto:x@y>");
    h.recv(&bye, ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(200));
    assert!(h.env.transfers.is_empty());
}

/// `Transfer(600)` on alice's call: a REFER in her dialog; her 202 is a
/// success for the dialplan; her NOTIFY with a final 2xx ends our leg.
#[test]
fn transfer_sends_a_refer_and_a_notify_of_success_ends_the_call() {
    let mut h = Harness::new(SIP_TOML);
    let (a, ok_a) = answered_inbound(&mut h);
    h.take();
    h.input(Input::Transfer(a, "600".into()));
    let refer = h.expect_one(ALICE);
    assert_eq!(refer.method(), Some(&Method::Refer));
    assert_eq!(
        header(&refer, HeaderName::ReferTo),
        "<sip:600@127.0.0.1:5060>"
    );
    assert_eq!(
        header(&refer, HeaderName::ReferredBy),
        "<sip:127.0.0.1:5060>"
    );
    assert_eq!(refer.call_id(), ok_a.call_id());
    h.recv(&reply(&refer, 202, "Accepted", "a1"), ALICE);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::TransferResult(a, Ok(()))]
    );

    // Her reports: 100 (nothing happens), then 200 (our leg ends).
    for (cseq, frag, state) in [
        (2, "SIP/2.0 100 Trying\r\n", "active;expires=60"),
        (3, "SIP/2.0 200 OK\r\n", "terminated;reason=noresource"),
    ] {
        let mut n = in_dialog("NOTIFY", &ok_a, ALICE, cseq, &format!("n{cseq}"));
        n.push(HeaderName::Event, "refer");
        n.push(HeaderName::SubscriptionState, state);
        n.set_body("message/sipfrag;version=2.0", frag.as_bytes().to_vec());
        h.recv(&n, ALICE);
    }
    let sent = h.sent();
    let codes: Vec<_> = sent.iter().filter_map(|(_, m)| m.code()).collect();
    assert_eq!(codes, [200, 200]);
    assert!(
        sent.iter().any(|(_, m)| m.method() == Some(&Method::Bye)),
        "{sent:#?}"
    );
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(a, Cause::NORMAL_CLEARING)));
}

/// The far end refuses the REFER: the dialplan hears the cause, the call
/// goes on. A NOTIFY of another package gets 489, one of a transfer nobody
/// waits for 481.
#[test]
fn a_refused_transfer_is_a_failure_and_other_events_get_489() {
    let mut h = Harness::new(SIP_TOML);
    let (a, ok_a) = answered_inbound(&mut h);
    h.take();
    h.input(Input::Transfer(a, "bob@example.com".into()));
    let refer = h.expect_one(ALICE);
    assert_eq!(header(&refer, HeaderName::ReferTo), "<sip:bob@example.com>");
    h.recv(&reply(&refer, 603, "Declined", "a1"), ALICE);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::TransferResult(a, Err(Cause::CALL_REJECTED))]
    );
    let mut n = in_dialog("NOTIFY", &ok_a, ALICE, 2, "n-presence");
    n.push(HeaderName::Event, "presence");
    h.recv(&n, ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(489));
    // A report of a transfer no REFER of ours waits for (this one was
    // refused): no such subscription, 481 (RFC 6665 §4.1.3).
    let mut n = in_dialog("NOTIFY", &ok_a, ALICE, 3, "n-refer");
    n.push(HeaderName::Event, "refer");
    n.push(
        HeaderName::SubscriptionState,
        "terminated;reason=noresource",
    );
    n.set_body(
        "message/sipfrag;version=2.0",
        b"SIP/2.0 200 OK\r\n".to_vec(),
    );
    h.recv(&n, ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(481));
    assert!(!h
        .host_actions()
        .iter()
        .any(|a| matches!(a, HostAction::Hangup(..))));
    // A call not answered yet cannot be transferred this way.
    h.recv(&alice_invite("100", "in-2"), ALICE);
    let ringing = *h.env.started.last().unwrap();
    h.take();
    h.input(Input::Transfer(ringing, "600".into()));
    assert_eq!(
        h.host_actions(),
        vec![HostAction::TransferResult(
            ringing,
            Err(Cause::FACILITY_NOT_IMPLEMENTED)
        )]
    );
}

/// An answered leg asked to ring (a transferee while its target rings)
/// hears ringback from the relay's side; anything else stops it. A leg
/// still ringing answers the indication with a response instead.
#[test]
fn an_answered_leg_asked_to_ring_hears_ringback() {
    let mut h = Harness::new(SIP_TOML);
    let (a, _) = answered_inbound(&mut h);
    h.take();
    h.input(Input::Indicate(a, Indication::Ringing));
    match h.media_actions().as_slice() {
        [MediaAction::Ringback(leg)] => {
            assert_eq!(leg.chan, a);
            assert_eq!(leg.remote.addr, Some(addr("127.0.0.1:40000")));
        }
        other => panic!("{other:?}"),
    }
    assert!(h.sent().is_empty(), "no SIP message for it");
    h.input(Input::Indicate(a, Indication::Progress));
    assert_eq!(h.media_actions(), vec![MediaAction::StopTone(a)]);
    // A call not answered yet gets its 180 as before.
    h.recv(&alice_invite("100", "in-2"), ALICE);
    let ringing = *h.env.started.last().unwrap();
    h.take();
    h.input(Input::Indicate(ringing, Indication::Ringing));
    assert_eq!(h.expect_one(ALICE).code(), Some(180));
    assert!(h.media_actions().is_empty());
}

/// RFC 4488: `Refer-Sub: false` asks for no subscription. The transfer is
/// made before the answer, which says so (`202` with `Refer-Sub: false`, or
/// the refusal's status); no NOTIFY is ever sent; the transferor's leg still
/// ends once the transferee reached the target (4 s later, without its BYE).
#[test]
fn a_refer_without_subscription_gets_no_notify() {
    let mut h = Harness::new(SIP_TOML);
    let (a, b, ok_a) = bridged(&mut h);
    let mut r = refer(&ok_a, 2, "<sip:6003@127.0.0.1>");
    r.push(HeaderName::parse("Refer-Sub"), "false");
    r.push(HeaderName::Require, "norefersub");
    h.recv(&r, ALICE);
    let accepted = h.expect_one(ALICE);
    assert_eq!(accepted.code(), Some(202));
    assert_eq!(header(&accepted, HeaderName::parse("Refer-Sub")), "false");
    assert_eq!(h.env.transfers.len(), 1);
    h.input(Input::Unbridge(a, b));
    h.input(Input::Bridge(b, b)); // the target answered (Echo)
    h.advance_to(3_999);
    assert!(h.sent().is_empty(), "no NOTIFY");
    h.advance_to(4_000);
    assert_eq!(h.expect_one(ALICE).method(), Some(&Method::Bye));

    // Refused: the REFER's answer carries the status, nothing else follows.
    let mut h = Harness::new(SIP_TOML);
    let (_, _, ok_a) = bridged(&mut h);
    h.env.transfer_result = Some(Err(Cause::UNALLOCATED));
    let mut r = refer(&ok_a, 2, "<sip:999@127.0.0.1>");
    r.push(HeaderName::parse("Refer-Sub"), "false");
    h.recv(&r, ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(404));
    h.advance_to(60_000);
    assert!(h.sent().iter().all(|(_, m)| !m.is_request()), "no request");
    assert_eq!(h.ep.refers.len(), 0);
}
