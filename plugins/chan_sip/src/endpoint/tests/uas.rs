//! Calls someone else starts.

use super::*;

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
    // Nothing claimed that is not implemented; no timer nobody asked for.
    assert_eq!(
        ok.headers.get(&HeaderName::Supported),
        Some("timer, replaces, norefersub")
    );
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires), None);

    h.recv(&in_dialog("ACK", &ok, ALICE, 1, "ack"), ALICE);
    assert!(h.sent().is_empty(), "an ACK is not answered");
    assert!(h.ep.show_channels().contains("Rx: ACK"));

    h.recv(&in_dialog("BYE", &ok, ALICE, 2, "bye"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(200));
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, Cause::NORMAL_CLEARING)]
    );
    // The pair set aside for a callee went back at the answer (this plan
    // dialled nobody); the call's own pair at its end.
    assert_eq!(
        h.media_actions(),
        vec![MediaAction::DropSpare(chan), MediaAction::Release(chan)]
    );
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

/// Admission on our own lag (issue #11): while the event loop (or its
/// input queue) runs later than `maxlag` (200 ms by default), a new call
/// gets 503 with Retry-After statelessly — no transaction, nothing
/// allocated — and its ACK is dropped; a call already let in keeps its
/// transaction (its retransmitted INVITE is not refused); below the limit,
/// calls go in as usual; `maxlag = 0` never refuses.
#[test]
fn a_loop_running_late_refuses_new_calls_with_503_and_nothing_allocated() {
    let mut h = Harness::new(SIP_TOML);
    h.env.lag = Duration::from_millis(201);
    let invite = alice_invite("100", "in-1");
    h.recv(&invite, ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(503));
    assert_eq!(r.headers.get(&HeaderName::RetryAfter), Some("2"));
    assert!(
        r.to_ref().and_then(|t| t.tag()).is_some(),
        "a To tag for the ACK"
    );
    assert!(h.env.allocated.is_empty() && h.env.reserved.is_empty());
    assert!(h.host_actions().is_empty());
    assert_eq!(h.ep.layer.len(), 0, "refused statelessly: no transaction");
    h.recv(&build::ack_for_non_2xx(&invite, &r), ALICE);
    assert!(
        h.sent().is_empty(),
        "the ACK matches nothing and is dropped"
    );
    assert_eq!(h.ep.layer.len(), 0);

    h.env.lag = Duration::from_millis(200);
    let admitted = alice_invite("100", "in-2");
    h.recv(&admitted, ALICE);
    assert_eq!(
        h.env.allocated.len(),
        1,
        "at the limit, not over it: let in"
    );
    h.sent();
    // Late again: the admitted call's retransmitted INVITE is its
    // transaction's (a 100 again at most), not a new call to refuse.
    h.env.lag = Duration::from_secs(1);
    h.recv(&admitted, ALICE);
    assert!(
        h.sent().iter().all(|(_, m)| m.code() != Some(503)),
        "a retransmission is not refused"
    );
    assert_eq!(h.env.allocated.len(), 1);

    let mut h = Harness::new(&SIP_TOML.replace("[general]\n", "[general]\nmaxlag = 0\n"));
    h.env.lag = Duration::from_secs(5);
    h.recv(&alice_invite("100", "in-3"), ALICE);
    assert_eq!(h.env.allocated.len(), 1, "maxlag = 0: no limit");
}

/// Admission on RTP ports (issue #11): a call that would find no pair for
/// itself and its callee's leg gets 503 with Retry-After before a channel
/// or a port is taken for it, instead of failing after both legs were set up.
#[test]
fn a_call_without_ports_for_both_legs_is_refused_before_anything_is_allocated() {
    let mut h = Harness::new(SIP_TOML);
    h.env.media_free = Some(1);
    h.recv(&alice_invite("100", "in-1"), ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(503));
    assert_eq!(r.headers.get(&HeaderName::RetryAfter), Some("2"));
    assert!(h.env.allocated.is_empty() && h.env.reserved.is_empty());
    assert!(h.host_actions().is_empty());
    h.env.media_free = Some(2);
    h.recv(&alice_invite("100", "in-2"), ALICE);
    assert_eq!(h.env.allocated.len(), 1, "two pairs left: let in");
}

/// Admitting a call takes the ports of both its legs: a pair is set aside
/// for the callee, and the leg a Dial makes for the call takes it instead
/// of binding one of its own.
#[test]
fn an_inbound_call_sets_a_pair_aside_for_the_leg_its_dial_makes() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&alice_invite("100", "in-1"), ALICE);
    let a = h.env.started[0];
    assert_eq!(h.env.spares, vec![a]);
    assert_eq!(h.env.reserved, vec![(a, StreamKind::Audio)]);
    let b = ChannelId(100);
    dial_bob_for(&mut h, b, Some(a));
    assert_eq!(h.env.from_spare, vec![b], "bob's leg took alice's spare");
    assert_eq!(h.env.reserved.len(), 1, "and bound nothing of its own");
    assert!(h.env.spares.is_empty());
}

/// No pair left for the callee: the call is refused whole (503 with
/// Retry-After), its channel and its own pair given back at once.
#[test]
fn a_call_whose_callee_would_find_no_port_is_refused_with_503() {
    let mut h = Harness::new(SIP_TOML);
    h.env.no_spare = true;
    h.recv(&alice_invite("100", "in-1"), ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(503));
    assert_eq!(r.headers.get(&HeaderName::RetryAfter), Some("2"));
    let chan = h.env.allocated[0].0;
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, Cause::CONGESTION)]
    );
    assert_eq!(h.media_actions(), vec![MediaAction::Release(chan)]);
    assert!(h.env.started.is_empty(), "no dialplan for it");
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
