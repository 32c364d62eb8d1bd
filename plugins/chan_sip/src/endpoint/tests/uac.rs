//! Calls we start.

use super::*;

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
    // Session timers are the one extension we implement (accepted, not
    // asked for, by default).
    assert_eq!(
        invite.headers.get(&HeaderName::Supported),
        Some("timer, replaces, norefersub")
    );
    assert_eq!(invite.headers.get(&HeaderName::SessionExpires), None);
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
        vec![HostAction::SetState(chan, ChannelState::Up)],
        "the answer kept the offered codecs: nothing to tell the core"
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

/// A forking proxy: two forks answer the same INVITE. The first 200 makes
/// the call; the second fork's 200 (another To tag) is ACKed and ended
/// with BYE, and a retransmission of the first still gets the first ACK.
#[test]
fn a_second_fork_answering_is_acked_and_ended_with_bye() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, invite) = placed_outbound(&mut h, 100);
    let ok = |tag: &str| {
        let mut r = reply(&invite, 200, "OK", tag);
        r.push(HeaderName::Contact, format!("<sip:{tag}@{BOB}>"));
        r.set_body("application/sdp", sdp(41_000, "sendrecv"));
        r
    };
    h.recv(&ok("fork1"), BOB);
    let ack1 = h.expect_one(BOB);
    h.take();
    h.recv(&ok("fork2"), BOB);
    let sent = h.sent();
    let methods: Vec<_> = sent.iter().map(|(_, m)| m.method().cloned()).collect();
    assert_eq!(methods, vec![Some(Method::Ack), Some(Method::Bye)]);
    for (_, m) in &sent {
        assert_eq!(m.to_header().unwrap().tag(), Some("fork2"));
        assert_eq!(m.request_uri(), Some("sip:fork2@127.0.0.1:5064"));
    }
    assert!(h.host_actions().is_empty(), "the call goes on");
    assert_eq!(h.ep.calls(), 1, "{chan} still up");
    h.recv(&ok("fork1"), BOB);
    assert_eq!(h.expect_one(BOB).to_bytes(), ack1.to_bytes());
}

/// A second fork's 2xx with another CSeq number: the BYE that ends it
/// counts from our INVITE's number, not from the far end's.
#[test]
fn a_second_forks_cseq_is_not_trusted() {
    let mut h = Harness::new(SIP_TOML);
    let (_, invite) = placed_outbound(&mut h, 100);
    let mut ok1 = reply(&invite, 200, "OK", "fork1");
    ok1.push(HeaderName::Contact, format!("<sip:f1@{BOB}>"));
    h.recv(&ok1, BOB);
    h.take();
    let mut ok2 = reply(&invite, 200, "OK", "fork2");
    ok2.push(HeaderName::Contact, format!("<sip:f2@{BOB}>"));
    ok2.headers.set(HeaderName::CSeq, "2147483000 INVITE");
    h.recv(&ok2, BOB);
    let bye = h
        .sent()
        .into_iter()
        .find(|(_, m)| m.method() == Some(&Method::Bye))
        .expect("the second fork is ended")
        .1;
    assert_eq!(bye.cseq().unwrap().seq, invite.cseq().unwrap().seq + 1);
}

/// A 302 to a host name: the endpoint does not block on DNS. It asks the
/// driver (Output::Resolve), the call waits, and the answer sends the
/// INVITE on; a name that does not resolve fails the call.
#[test]
fn a_redirect_to_a_name_waits_for_its_lookup() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, invite) = placed_outbound(&mut h, 100);
    let mut moved = reply(&invite, 302, "Moved Temporarily", "b1");
    moved.push(HeaderName::Contact, "<sip:carol@carol.example:5070>");
    h.recv(&moved, BOB);
    let outs = h.take();
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Resolve { host, port: 5070 } if host == "carol.example"
    )));
    assert!(!outs
        .iter()
        .any(|o| matches!(o, Output::Host(HostAction::Hangup(..)))));
    h.input(Input::Resolved {
        host: "carol.example".into(),
        port: 5070,
        result: Ok(addr(CAROL)),
    });
    let again = h.expect_one(CAROL);
    assert_eq!(again.request_uri(), Some("sip:carol@carol.example:5070"));

    // The same for a name that does not resolve: the call fails.
    let (chan2, invite2) = placed_outbound(&mut h, 101);
    let mut moved = reply(&invite2, 302, "Moved Temporarily", "b2");
    moved.push(HeaderName::Contact, "<sip:x@nowhere.example>");
    h.recv(&moved, BOB);
    h.take();
    h.input(Input::Resolved {
        host: "nowhere.example".into(),
        port: 5060,
        result: Err("host 'nowhere.example' does not resolve".into()),
    });
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan2, crate::causes::sip_to_cause(302))]
    );
    assert!(h.ep.sessions.get(chan).is_some(), "the first call goes on");
}

/// `call()` is not waited for (a dialplan task must not hold a PBX worker
/// while the driver is busy): a leg over bob's call-limit is refused by
/// hanging its channel up with USER_BUSY, which Dial reads as a busy
/// callee, and no INVITE goes out for it.
#[test]
fn a_placed_leg_over_the_call_limit_is_hung_up_with_user_busy() {
    let mut h = Harness::new(&SIP_TOML.replace("port = 5064\n", "port = 5064\ncall-limit = 1\n"));
    let (first, _) = placed_outbound(&mut h, 100);
    let second = ChannelId(101);
    new_outbound_to_bob(&mut h, second);
    h.host_actions();
    h.input(Input::Place(second));
    assert!(h.sent().is_empty(), "no INVITE for the leg over the limit");
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(second, Cause::USER_BUSY)]
    );
    assert_eq!(h.ep.calls(), 1, "the first leg goes on: {first}");
}

/// A callee's device state as a busy lamp shows it: ringing once called
/// (chan_sip's `inRinging` from `sip_call`), in use when it answers, on hold when it
/// holds, free when the call ends (chan_sip's `sip_devicestate` order); a
/// state is told once, not again for the same.
#[test]
fn a_callee_ringing_shows_in_its_device_state() {
    use sirius_abi::DeviceState::*;
    let mut h = Harness::new(SIP_TOML);
    let bob = |s| vec![("SIP/bob".to_string(), s)];
    let (b, invite) = placed_outbound(&mut h, 100);
    assert_eq!(h.device_states(), bob(Ringing));
    h.recv(&reply(&invite, 180, "Ringing", "b1"), BOB);
    assert_eq!(h.device_states(), vec![]);
    let mut progress = reply(&invite, 183, "Session Progress", "b1");
    progress.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&progress, BOB);
    assert_eq!(h.device_states(), vec![], "still ringing: nothing new");
    let mut ok = reply(&invite, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok, BOB);
    assert_eq!(h.device_states(), bob(InUse));
    assert_eq!(h.ep.shared.in_use.counts("bob"), (1, 0, 0));
    // Bob holds: his re-INVITE in the dialog (he is the far end, so his
    // From is our To).
    let mut hold = parse(&format!(
        "INVITE sip:100@127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {BOB};branch=z9hG4bKhold1\n\
         From: <sip:bob@{BOB}>;tag=b1\n\
         To: {}\n\
         Call-ID: {}\n\
         CSeq: 7 INVITE\n\
         Contact: <sip:bob@{BOB}>\n\
         Content-Length: 0\n\n",
        invite.headers.get(&HeaderName::From).unwrap(),
        invite.headers.get(&HeaderName::CallId).unwrap(),
    ));
    hold.set_body("application/sdp", sdp(41_000, "sendonly"));
    h.recv(&hold, BOB);
    assert_eq!(h.device_states(), bob(OnHold));
    assert_eq!(h.ep.shared.in_use.counts("bob"), (1, 0, 1));
    h.input(Input::Hangup(b, Cause::NORMAL_CLEARING));
    let after = h.device_states();
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(matches!(after[0].1, NotInUse | Unavailable), "{after:?}");
    assert_eq!(h.ep.shared.in_use.counts("bob"), (0, 0, 0));
}

/// A call to a peer that ends before an answer (refused, or hung up while
/// it rings) leaves none of its counts behind.
#[test]
fn an_unanswered_callee_leg_leaves_no_count_behind() {
    use sirius_abi::DeviceState::*;
    let mut h = Harness::new(SIP_TOML);
    let (_, invite) = placed_outbound(&mut h, 100);
    assert_eq!(h.ep.shared.in_use.counts("bob"), (1, 1, 0));
    h.recv(&reply(&invite, 486, "Busy Here", "b1"), BOB);
    assert_eq!(h.ep.shared.in_use.counts("bob"), (0, 0, 0));
    let states: Vec<_> = h.device_states().into_iter().map(|(_, s)| s).collect();
    assert_eq!(states.first(), Some(&Ringing));
    assert!(
        matches!(states.last(), Some(NotInUse | Unavailable)),
        "{states:?}"
    );
    h.sent(); // the ACK of the 486

    let (b, _) = placed_outbound(&mut h, 101);
    assert_eq!(h.ep.shared.in_use.counts("bob"), (1, 1, 0));
    h.input(Input::Hangup(b, Cause::NORMAL_CLEARING));
    assert_eq!(h.ep.shared.in_use.counts("bob"), (0, 0, 0));
}
