//! What a confirmed session does, either way, and the requests around it.

use super::*;

/// Alice holds a bridged call: her re-INVITE is answered, the relay
/// follows her SDP, and bob gets our own re-INVITE saying sendonly; bob's
/// 200 is ACKed. Unhold goes the same way back to sendrecv.
#[test]
fn hold_and_unhold_pass_through_a_native_bridge() {
    let mut h = Harness::new(SIP_TOML);
    let (a, ok_a) = answered_inbound(&mut h);
    let (b, _) = answered_outbound(&mut h, 100);
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
        // Bob's answer (recvonly while held) is where the relay sends now.
        assert_eq!(
            h.media_actions(),
            vec![MediaAction::Remote(
                b,
                crate::relay::RemoteMedia::from_sdp(&sdp(41_000, "recvonly"))
            )]
        );
    }

    // One leg leaves: the other's relay stops with it, and both are told.
    h.recv(&in_dialog("BYE", &ok_a, ALICE, 5, "bye"), ALICE);
    assert_eq!(h.media_actions(), vec![MediaAction::Release(a)]);
    assert_eq!(h.env.bridges.get(&b), None, "bob's relay stopped too");
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

#[test]
fn options_lists_what_we_allow_and_support() {
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
        Some("INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER, UPDATE, INFO, REFER, NOTIFY, SUBSCRIBE, PUBLISH")
    );
    assert_eq!(
        r.headers.get(&HeaderName::Supported),
        Some("timer, replaces, norefersub")
    );
    assert_eq!(
        r.headers.get(&HeaderName::AllowEvents),
        Some("dialog, presence, message-summary, call-info")
    );
}

/// Alice and bob, both answered and natively bridged: alice's channel,
/// her 200, bob's channel.
fn bridged(h: &mut Harness, alice: Message) -> (ChannelId, Message, ChannelId) {
    h.recv(&alice, ALICE);
    let a = *h.env.started.last().unwrap();
    h.input(Input::Answer(a));
    let ok_a = h.expect_one(ALICE);
    let (b, _) = answered_outbound(h, 100);
    h.input(Input::Bridge(a, b));
    h.take();
    (a, ok_a, b)
}

/// A late offer (INVITE without SDP): our 200 offers, the phone answers in
/// its ACK, and the running relay sends to the answer's address at once.
#[test]
fn a_late_offers_answer_in_the_ack_reaches_the_relay() {
    let mut h = Harness::new(SIP_TOML);
    let mut invite = alice_invite("100", "late-1");
    invite.set_body("application/sdp", Vec::new());
    invite.headers.remove(&HeaderName::ContentType);
    let (a, ok_a, _) = bridged(&mut h, invite);
    let offer = String::from_utf8(ok_a.body.clone()).unwrap();
    assert!(offer.contains("m=audio 10002 RTP/AVP 0 8 101"), "{offer}");
    let mut ack = in_dialog("ACK", &ok_a, ALICE, 1, "ack");
    ack.set_body("application/sdp", sdp(40_200, "sendrecv"));
    h.recv(&ack, ALICE);
    assert_eq!(
        h.media_actions(),
        vec![MediaAction::Remote(
            a,
            crate::relay::RemoteMedia::from_sdp(&sdp(40_200, "sendrecv"))
        )]
    );
}

/// RFC 3725 third-party call control: a re-INVITE without SDP gets our
/// offer in the 200, and the answer in its ACK moves the relay; the ACK is
/// the call's last message.
#[test]
fn a_re_invite_without_sdp_takes_its_answer_from_the_ack() {
    let mut h = Harness::new(SIP_TOML);
    let (a, ok_a, _) = bridged(&mut h, alice_invite("100", "3pcc-1"));
    h.recv(&in_dialog("ACK", &ok_a, ALICE, 1, "ack1"), ALICE);
    h.take();
    let reinvite = in_dialog("INVITE", &ok_a, ALICE, 2, "re2");
    h.recv(&reinvite, ALICE);
    let ok = h.expect_one(ALICE);
    assert_eq!(ok.code(), Some(200));
    assert!(String::from_utf8(ok.body.clone())
        .unwrap()
        .contains("m=audio 10002"));
    let mut ack = in_dialog("ACK", &ok_a, ALICE, 2, "ack2");
    ack.set_body("application/sdp", sdp(40_300, "sendrecv"));
    h.recv(&ack, ALICE);
    assert_eq!(
        h.media_actions(),
        vec![MediaAction::Remote(
            a,
            crate::relay::RemoteMedia::from_sdp(&sdp(40_300, "sendrecv"))
        )]
    );
    let row =
        h.ep.show_channels()
            .lines()
            .find(|l| l.contains("3pcc-1"))
            .unwrap()
            .to_string();
    assert!(row.contains("Rx: ACK"), "{row}");
}

/// An option tag we do not implement in Require gets 420 naming it.
#[test]
fn require_of_an_extension_we_lack_gets_420() {
    let mut h = Harness::new(SIP_TOML);
    let mut invite = alice_invite("100", "req-1");
    invite.push(HeaderName::Require, "100rel, timer");
    h.recv(&invite, ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(420));
    assert_eq!(r.headers.get(&HeaderName::Unsupported), Some("100rel"));
    assert!(h.env.allocated.is_empty());
}

/// `sip show inuse` counts calls, ringing and held calls per peer. A call
/// the peer makes and hears ringback on is not its phone ringing (chan_sip
/// counts `inRinging` on calls to the peer); a call to it is
/// (`uac::a_callee_ringing_shows_in_its_device_state`).
#[test]
fn sip_show_inuse_counts_ringing_and_held_calls() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "use-1"), ALICE);
    let a = h.env.started[0];
    h.input(Input::Indicate(a, Indication::Ringing));
    let row = |h: &Harness| {
        h.ep.show_inuse(false)
            .lines()
            .find(|l| l.starts_with("alice"))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
    };
    assert_eq!(row(&h).as_deref(), Some("1/0/0"));
    h.sent();
    h.input(Input::Answer(a));
    let ok = h.expect_one(ALICE);
    assert_eq!(row(&h).as_deref(), Some("1/0/0"));
    let mut hold = in_dialog("INVITE", &ok, ALICE, 2, "hold");
    hold.set_body("application/sdp", sdp(40_000, "sendonly"));
    h.recv(&hold, ALICE);
    assert_eq!(row(&h).as_deref(), Some("1/0/1"));
    h.recv(&in_dialog("BYE", &ok, ALICE, 3, "bye"), ALICE);
    assert_eq!(row(&h), None, "no call-limit and no call: not listed");
}

/// A peer's device state follows its calls: InUse with the first, NotInUse
/// when the last ends, nothing in between.
#[test]
fn a_peers_device_state_follows_its_calls() {
    use sirius_abi::DeviceState::{InUse, NotInUse};
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "ds-1"), ALICE);
    h.recv(&alice_invite("100", "ds-2"), ALICE);
    assert_eq!(h.device_states(), vec![("SIP/alice".to_string(), InUse)]);
    let (first, second) = (h.env.started[0], h.env.started[1]);
    h.input(Input::Hangup(first, Cause::NORMAL_CLEARING));
    assert_eq!(h.device_states(), vec![]);
    h.input(Input::Hangup(second, Cause::NORMAL_CLEARING));
    assert_eq!(h.device_states(), vec![("SIP/alice".to_string(), NotInUse)]);
}

/// Early media: the callee's 183 carries SDP; the core hears of the
/// progress, the two legs are bridged before the answer with the callee's
/// early address, the 200's address moves the relay, and the bridge the
/// answer makes is the one already running.
#[test]
fn a_183_with_sdp_gives_early_media_and_the_answer_keeps_the_bridge() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "em-1"), ALICE);
    let a = h.env.started[0];
    let (b, invite_b) = placed_outbound(&mut h, 100);
    let mut progress = reply(&invite_b, 183, "Session Progress", "b1");
    progress.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&progress, BOB);
    assert_eq!(
        h.host_actions(),
        vec![
            HostAction::SetState(b, ChannelState::Ringing),
            HostAction::Progress(b)
        ]
    );
    // Dial passes it on: 183 with our answer to alice, and early media.
    h.input(Input::Indicate(a, Indication::Progress));
    let p = h.expect_one(ALICE);
    assert_eq!(p.code(), Some(183));
    assert!(String::from_utf8_lossy(&p.body).contains("m=audio 10002 RTP/AVP 0 101"));
    h.media_actions(); // the 183's address, not relayed yet
    h.input(Input::Bridge(a, b));
    match h.media_actions().as_slice() {
        [MediaAction::Bridge(la, lb)] => {
            assert_eq!(lb.chan, b);
            assert_eq!(lb.remote.addr, Some(addr("127.0.0.1:41000")));
            assert_eq!(la.remote.addr, Some(addr("127.0.0.1:40000")));
        }
        other => panic!("{other:?}"),
    }
    let mut ok = reply(&invite_b, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.set_body("application/sdp", sdp(41_100, "sendrecv"));
    h.recv(&ok, BOB);
    assert_eq!(
        h.media_actions(),
        vec![MediaAction::Remote(
            b,
            crate::relay::RemoteMedia::from_sdp(&sdp(41_100, "sendrecv"))
        )]
    );
    h.input(Input::Answer(a));
    h.input(Input::Bridge(a, b));
    assert_eq!(
        h.media_actions(),
        vec![MediaAction::DropSpare(a)],
        "the early bridge stays; alice's spare pair (bob's leg took none) goes back"
    );
}

/// Early media the core ends without an answer (the callee lost to
/// another, Dial gave up on it…): the relay between the legs stops, both
/// calls go on; a second notice changes nothing, and the pair can be
/// bridged again.
#[test]
fn the_cores_unbridge_stops_the_relay_and_keeps_the_legs() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "ub-1"), ALICE);
    let a = h.env.started[0];
    let (b, invite_b) = placed_outbound(&mut h, 100);
    let mut progress = reply(&invite_b, 183, "Session Progress", "b1");
    progress.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&progress, BOB);
    h.input(Input::Indicate(a, Indication::Progress));
    h.input(Input::Bridge(a, b));
    assert_eq!(h.env.bridges.get(&a), Some(&b));
    h.take();

    h.input(Input::Unbridge(a, b));
    assert_eq!(h.media_actions(), vec![MediaAction::Unbridge(a)]);
    assert!(h.take().is_empty(), "no hangup, no message");
    assert!(h.env.bridges.is_empty(), "the relay is gone on both legs");
    assert_eq!(h.ep.calls(), 2);

    h.input(Input::Unbridge(a, b));
    assert!(h.take().is_empty(), "a pair not relayed: nothing");
    h.input(Input::Bridge(a, b));
    assert!(matches!(
        h.media_actions().as_slice(),
        [MediaAction::Bridge(..)]
    ));
}

/// An INVITE without an offer gets a 183 without SDP (our offer can only
/// go in the 200: no PRACK here).
#[test]
fn progress_to_a_late_offer_carries_no_sdp() {
    let mut h = Harness::new(SIP_TOML);
    let mut invite = alice_invite("100", "em-2");
    invite.set_body("application/sdp", Vec::new());
    invite.headers.remove(&HeaderName::ContentType);
    h.recv(&invite, ALICE);
    let a = h.env.started[0];
    h.input(Input::Indicate(a, Indication::Progress));
    let p = h.expect_one(ALICE);
    assert_eq!(p.code(), Some(183));
    assert!(p.body.is_empty());
}

/// RFC 3264 §8: one session id for the whole session; the 183 and the 200
/// carry the very answer negotiated when the INVITE came; each new
/// description (a re-INVITE's answer) has the next version.
#[test]
fn our_sdp_keeps_its_session_id_and_counts_versions() {
    let o_line = |m: &Message| {
        String::from_utf8_lossy(&m.body)
            .lines()
            .find(|l| l.starts_with("o="))
            .unwrap()
            .to_string()
    };
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "o-1"), ALICE);
    let a = h.env.started[0];
    h.input(Input::Indicate(a, Indication::Progress));
    let progress = h.expect_one(ALICE);
    h.input(Input::Answer(a));
    let ok = h.expect_one(ALICE);
    assert_eq!(progress.body, ok.body, "the same answer");
    let first: Vec<String> = o_line(&ok).split(' ').map(str::to_string).collect();
    assert_eq!(first[2], "1");
    let mut reinvite = in_dialog("INVITE", &ok, ALICE, 2, "re");
    reinvite.set_body("application/sdp", sdp(40_000, "sendonly"));
    h.recv(&reinvite, ALICE);
    let second: Vec<String> = o_line(&h.expect_one(ALICE))
        .split(' ')
        .map(str::to_string)
        .collect();
    assert_eq!(second[1], first[1], "same session id");
    assert_eq!(second[2], "2", "next version");
}

/// A reload while a REGISTER is in flight keeps its owner: the answer
/// still reaches the line, which registers (it used to wait forever).
#[test]
fn a_reload_while_registering_keeps_the_lines_answer() {
    let toml = format!(
        "{SIP_TOML}\n[[register]]\nuser = \"carol\"\nsecret = \"pw\"\nhost = \"127.0.0.1\"\nport = 5070\n"
    );
    let mut h = Harness::new(&toml);
    let register = h.expect_one(CAROL);
    assert_eq!(register.method(), Some(&Method::Register));
    h.input(Input::Reconcile);
    assert!(
        h.sent().is_empty(),
        "the line is neither dropped nor restarted"
    );
    let mut ok = reply(&register, 200, "OK", "r1");
    ok.push(HeaderName::Expires, "120");
    ok.push(
        HeaderName::Contact,
        format!(
            "{};expires=120",
            register.headers.get(&HeaderName::Contact).unwrap()
        ),
    );
    h.recv(&ok, CAROL);
    assert!(h.ep.shared.outbound.lock()[0].registered());
}

/// Alice (answered, ACKed) natively bridged with bob (answered): her 200.
fn glare_setup(h: &mut Harness) -> Message {
    let (a, ok_a) = answered_inbound(h);
    let (b, _) = answered_outbound(h, 100);
    h.input(Input::Bridge(a, b));
    h.take();
    ok_a
}

/// Alice's re-INVITE in the dialog of `ok_a`, offering `dir`.
fn alice_offer(ok_a: &Message, cseq: u32, dir: &str) -> Message {
    let mut m = in_dialog("INVITE", ok_a, ALICE, cseq, &format!("r{cseq}"));
    m.set_body("application/sdp", sdp(40_000, dir));
    m
}

/// One re-INVITE at a time (RFC 3261 §14.1): an unhold that comes while
/// our hold re-INVITE to bob is unanswered waits for its answer; an offer
/// from bob meanwhile gets 491 Request Pending.
#[test]
fn re_invites_wait_for_each_other_and_glare_gets_491() {
    let mut h = Harness::new(SIP_TOML);
    let ok_a = glare_setup(&mut h);
    let offer = |cseq: u32, dir: &str| alice_offer(&ok_a, cseq, dir);
    h.recv(&offer(2, "sendonly"), ALICE);
    let hold = h
        .sent()
        .into_iter()
        .find(|(to, m)| *to == addr(BOB) && m.method() == Some(&Method::Invite))
        .expect("hold passed on")
        .1;
    // Alice unholds before bob answered: nothing to bob yet.
    h.recv(&offer(3, "sendrecv"), ALICE);
    assert!(h
        .sent()
        .iter()
        .all(|(to, m)| !(*to == addr(BOB) && m.method() == Some(&Method::Invite))));
    // Bob offers meanwhile (glare): 491.
    let mut bob_offer = parse(&format!(
        "INVITE sip:{PBX} SIP/2.0\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bK-bob-re\nMax-Forwards: 70\n\
         From: {}\nTo: {}\nCall-ID: {}\nCSeq: 9 INVITE\nContact: <sip:bob@{BOB}>\nContent-Length: 0\n\n",
        hold.headers.get(&HeaderName::To).unwrap(),
        hold.headers.get(&HeaderName::From).unwrap(),
        hold.call_id().unwrap(),
    ));
    bob_offer.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&bob_offer, BOB);
    assert_eq!(h.expect_one(BOB).code(), Some(491));
    // Bob answers the hold: ACK, then the unhold goes.
    let mut held_ok = reply(&hold, 200, "OK", "b1");
    held_ok.set_body("application/sdp", sdp(41_000, "recvonly"));
    h.recv(&held_ok, BOB);
    let sent = h.sent();
    let methods: Vec<_> = sent.iter().map(|(_, m)| m.method().cloned()).collect();
    assert_eq!(methods, vec![Some(Method::Ack), Some(Method::Invite)]);
    assert!(String::from_utf8_lossy(&sent[1].1.body).contains("a=sendrecv"));
}

/// Glare the other way: bob answers our hold re-INVITE with 491 (his own
/// re-INVITE crossed it). RFC 3261 §14.1: we chose the Call-ID of that
/// leg, so we try again after 2.1–4 s, not at once and not never; an
/// unhold that comes meanwhile is what the retry carries.
#[test]
fn a_491_to_our_re_invite_is_retried_after_the_rfcs_random_wait() {
    let mut h = Harness::new(SIP_TOML);
    let ok_a = glare_setup(&mut h);
    let offer = |cseq: u32, dir: &str| alice_offer(&ok_a, cseq, dir);
    let to_bob = |h: &mut Harness, method: Method| -> Vec<Message> {
        h.sent()
            .into_iter()
            .filter(|(to, m)| *to == addr(BOB) && m.method() == Some(&method))
            .map(|(_, m)| m)
            .collect()
    };
    h.recv(&offer(2, "sendonly"), ALICE);
    let hold = to_bob(&mut h, Method::Invite)
        .pop()
        .expect("hold passed on");
    let start = h.elapsed_ms() as u64;
    h.recv(&reply(&hold, 491, "Request Pending", "b1"), BOB);
    assert_eq!(to_bob(&mut h, Method::Ack).len(), 1, "the 491 is ACKed");
    // Alice holds again (a refresh of the same state) within the wait: kept.
    h.recv(&offer(3, "sendonly"), ALICE);
    h.advance_to(start + 2_099);
    assert!(
        to_bob(&mut h, Method::Invite).is_empty(),
        "not before 2.1 s"
    );
    h.advance_to(start + 4_000);
    let again = to_bob(&mut h, Method::Invite);
    assert_eq!(again.len(), 1, "tried again once within 4 s");
    let body = String::from_utf8_lossy(&again[0].body).into_owned();
    assert!(body.contains("a=sendonly"), "{body}");
    assert_ne!(
        again[0].cseq().unwrap().seq,
        hold.cseq().unwrap().seq,
        "a new transaction"
    );
    // Answered this time: ACKed, and nothing more goes.
    let mut ok = reply(&again[0], 200, "OK", "b1");
    ok.set_body("application/sdp", sdp(41_000, "recvonly"));
    h.recv(&ok, BOB);
    assert_eq!(to_bob(&mut h, Method::Ack).len(), 1);
    h.advance_to(start + 10_000);
    assert!(to_bob(&mut h, Method::Invite).is_empty());
}

/// A native bridge that cannot run says so (the core then uses its
/// generic bridge): no relay thread, a leg gone, a leg in another bridge.
#[test]
fn a_native_bridge_that_cannot_run_is_refused() {
    let mut h = Harness::new(SIP_TOML);
    let (a, _) = answered_inbound(&mut h);
    let (b, _) = placed_outbound(&mut h, 100);
    h.take();
    h.env.no_relay = true;
    assert_eq!(
        h.ep.bridge(a, b, &mut h.env),
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    );
    h.env.no_relay = false;
    assert_eq!(
        h.ep.bridge(a, ChannelId(999), &mut h.env),
        Err(Cause::FAILURE)
    );
    assert_eq!(h.ep.bridge(a, b, &mut h.env), Ok(()));
    h.collect(); // the driver carries it out
    assert_eq!(
        h.ep.bridge(a, a, &mut h.env),
        Err(Cause::FAILURE),
        "a is taken"
    );
    h.collect();
    assert_eq!(
        h.media_actions().len(),
        1,
        "one bridge, nothing for the refusals"
    );
}

/// Early dialogs (RFC 3261 §12.1): each fork's 1xx with its own To tag
/// makes one, a request in it reaches the session, and the 2xx keeps only
/// the confirmed one; nothing is left behind when calls end early.
#[test]
fn early_dialogs_of_forks_route_requests_and_go_with_the_answer() {
    let mut h = Harness::new(SIP_TOML);
    let (_, invite) = placed_outbound(&mut h, 100);
    h.recv(&reply(&invite, 180, "Ringing", "f1"), BOB);
    h.recv(&reply(&invite, 180, "Ringing", "f2"), BOB);
    h.recv(&reply(&invite, 180, "Ringing", "f2"), BOB); // retransmission
    assert_eq!(h.ep.dialogs.len(), 2);
    // An UPDATE from fork 2 before any answer: in its early dialog.
    let update = |tag: &str, cseq: u32| {
        parse(&format!(
            "UPDATE sip:{PBX} SIP/2.0\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bK-u{tag}{cseq}\nMax-Forwards: 70\n\
             From: <sip:bob@{BOB}>;tag={tag}\nTo: {}\nCall-ID: {}\nCSeq: {cseq} UPDATE\n\
             Contact: <sip:bob@{BOB}>\nContent-Length: 0\n\n",
            invite.headers.get(&HeaderName::From).unwrap(),
            invite.call_id().unwrap(),
        ))
    };
    h.take();
    h.recv(&update("f2", 1), BOB);
    assert_eq!(h.expect_one(BOB).code(), Some(200));
    let mut ok = reply(&invite, 200, "OK", "f1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok, BOB);
    assert_eq!(h.ep.dialogs.len(), 1, "only the confirmed dialog");
    h.take();
    h.recv(&update("f2", 2), BOB);
    assert_eq!(
        h.expect_one(BOB).code(),
        Some(481),
        "fork 2's dialog is gone"
    );
}

#[test]
fn an_update_in_the_early_dialog_of_our_180_is_answered_and_cancel_leaves_nothing() {
    let mut h = Harness::new(SIP_TOML);
    let invite = alice_invite("100", "early-1");
    h.recv(&invite, ALICE);
    let a = h.env.started[0];
    h.input(Input::Indicate(a, Indication::Ringing));
    let ringing = h.expect_one(ALICE);
    assert_eq!(h.ep.dialogs.len(), 1, "our 180 made an early dialog");
    let mut update = in_dialog("UPDATE", &ringing, ALICE, 2, "up");
    update.set_body("application/sdp", sdp(40_400, "sendrecv"));
    h.recv(&update, ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(200));
    assert!(String::from_utf8_lossy(&r.body).contains("m=audio 10002"));
    let mut cancel = build::cancel(&invite);
    cancel.headers.set(
        HeaderName::Via,
        invite.headers.get(&HeaderName::Via).unwrap(),
    );
    h.recv(&cancel, ALICE);
    assert_eq!(h.ep.dialogs.len(), 0, "the early dialog went with the call");
    assert_eq!(h.ep.calls(), 0);
}

/// A caller's BYE in the early dialog (instead of CANCEL): 200 for the
/// BYE, 487 for the INVITE, the channel goes.
#[test]
fn a_bye_in_an_early_dialog_ends_the_invite_with_487() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "early-2"), ALICE);
    let a = h.env.started[0];
    h.input(Input::Indicate(a, Indication::Ringing));
    let ringing = h.expect_one(ALICE);
    h.recv(&in_dialog("BYE", &ringing, ALICE, 2, "bye"), ALICE);
    let codes: Vec<_> = h.sent().iter().map(|(_, m)| m.code().unwrap()).collect();
    assert_eq!(codes, vec![200, 487]);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(a, Cause::NORMAL_CLEARING)]
    );
    assert_eq!(h.ep.dialogs.len(), 0);
}

/// Calls that end before an answer leave no dialog behind, either way.
#[test]
fn calls_ending_unanswered_leave_no_dialog() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "nd-1"), ALICE);
    let a = h.env.started[0];
    h.input(Input::Indicate(a, Indication::Progress));
    h.input(Input::Hangup(a, Cause::NORMAL_CLEARING));
    h.take();
    let (_, invite) = placed_outbound(&mut h, 100);
    h.recv(&reply(&invite, 180, "Ringing", "b1"), BOB);
    h.recv(&reply(&invite, 486, "Busy Here", "b1"), BOB);
    h.take();
    let (c, invite) = placed_outbound(&mut h, 101);
    h.recv(&reply(&invite, 183, "Session Progress", "b2"), BOB);
    h.input(Input::Hangup(c, Cause::NORMAL_CLEARING)); // CANCEL
    assert_eq!(h.ep.calls(), 0);
    assert_eq!(h.ep.dialogs.len(), 0);
}
