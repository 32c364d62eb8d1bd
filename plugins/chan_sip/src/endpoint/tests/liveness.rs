//! Calls whose far end went away: session timers (RFC 4028) and RTP
//! timeouts, each at its exact instant.

use super::*;

fn with_timer(extra: &str) -> Message {
    let mut m = alice_invite("100", "st-1");
    for line in extra.lines() {
        let (k, v) = line.split_once(": ").unwrap();
        m.push(HeaderName::parse(k), v);
    }
    m
}

/// The caller refreshes (refresher=uac) and stops: 90 s interval, so the
/// session expires at 90 − 30 = 60 s after the last refresh, with a BYE.
#[test]
fn a_session_the_far_end_stops_refreshing_expires_with_bye() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(
        &with_timer("Session-Expires: 90;refresher=uac\nSupported: timer"),
        ALICE,
    );
    let chan = h.env.started[0];
    h.input(Input::Answer(chan));
    let ok = h.expect_one(ALICE);
    assert_eq!(
        ok.headers.get(&HeaderName::SessionExpires),
        Some("90;refresher=uac")
    );
    assert_eq!(ok.headers.get(&HeaderName::Require), Some("timer"));
    assert_eq!(
        ok.headers.get(&HeaderName::Supported),
        Some("timer, replaces, norefersub")
    );
    h.recv(&in_dialog("ACK", &ok, ALICE, 1, "ack"), ALICE);

    // A refresh at 50 s (an UPDATE) moves the expiry to 110 s.
    h.advance_to(50_000);
    h.take();
    let mut update = in_dialog("UPDATE", &ok, ALICE, 2, "up");
    update.push(HeaderName::SessionExpires, "90;refresher=uac");
    h.recv(&update, ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(200));
    assert_eq!(
        r.headers.get(&HeaderName::SessionExpires),
        Some("90;refresher=uac")
    );
    assert!(r.body.is_empty(), "an UPDATE without SDP gets none");

    h.advance_to(109_999);
    assert!(h.host_actions().is_empty());
    h.advance_to(110_000);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, Cause::RECOVERY_ON_TIMER_EXPIRE)]
    );
    let bye = h.expect_one(ALICE);
    assert_eq!(bye.method(), Some(&Method::Bye));
}

#[test]
fn an_interval_below_our_min_se_gets_422() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&with_timer("Session-Expires: 60\nSupported: timer"), ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(422));
    assert_eq!(r.headers.get(&HeaderName::MinSE), Some("90"));
    assert!(h.env.allocated.is_empty());
}

/// RFC 4028 §9: a caller that does not support timers is never refused
/// with 422; its interval is raised to our Min-SE and we refresh.
#[test]
fn a_short_interval_from_a_caller_without_timers_is_raised_not_refused() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&with_timer("Session-Expires: 60"), ALICE);
    let chan = h.env.started[0];
    h.input(Input::Answer(chan));
    let ok = h.expect_one(ALICE);
    assert_eq!(
        ok.headers.get(&HeaderName::SessionExpires),
        Some("90;refresher=uas")
    );
    assert_eq!(ok.headers.get(&HeaderName::Require), None);
}

/// A callee's 200 naming `Session-Expires: 0` (or anything below 90) does
/// not have us refresh in a loop: the interval is raised to our Min-SE.
#[test]
fn a_session_expires_of_zero_in_a_2xx_is_raised_to_min_se() {
    let mut h = Harness::new(SIP_TOML);
    let (_, invite) = placed_outbound(&mut h, 100);
    let mut ok = reply(&invite, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.push(HeaderName::SessionExpires, "0;refresher=uac");
    ok.push(HeaderName::Allow, "INVITE, ACK, BYE, UPDATE");
    ok.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok, BOB);
    h.take();
    h.advance_to(44_999);
    assert!(h.sent().is_empty(), "no refresh storm");
    h.advance_to(45_000);
    assert_eq!(h.expect_one(BOB).method(), Some(&Method::Update));
}

#[test]
fn a_peer_that_refuses_timers_answers_require_timer_with_420() {
    let toml = SIP_TOML.replace(
        "context = \"phones\"",
        "context = \"phones\"\nsession-timers = \"refuse\"",
    );
    let mut h = Harness::new(&toml);
    h.recv(&with_timer("Session-Expires: 1800\nRequire: timer"), ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(420));
    assert_eq!(r.headers.get(&HeaderName::Unsupported), Some("timer"));
}

/// We originate timers towards bob and refresh them ourselves: UPDATE at
/// half the interval (bob allows it); a 481 to a refresh ends the call.
#[test]
fn we_refresh_an_originated_timer_with_update_and_a_481_ends_the_call() {
    let toml = format!("{SIP_TOML}session-timers = \"originate\"\nsession-expires = 120\n");
    let mut h = Harness::new(&toml);
    let (chan, invite) = placed_outbound(&mut h, 100);
    assert_eq!(invite.headers.get(&HeaderName::SessionExpires), Some("120"));
    assert_eq!(invite.headers.get(&HeaderName::MinSE), Some("90"));
    assert_eq!(
        invite.headers.get(&HeaderName::Supported),
        Some("timer, replaces, norefersub")
    );
    let mut ok = reply(&invite, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.push(HeaderName::SessionExpires, "120;refresher=uac");
    ok.push(HeaderName::Require, "timer");
    ok.push(HeaderName::Allow, "INVITE, ACK, BYE, CANCEL, UPDATE");
    ok.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok, BOB);
    h.take();

    h.advance_to(59_999);
    assert!(h.sent().is_empty());
    h.advance_to(60_000);
    let update = h.expect_one(BOB);
    assert_eq!(update.method(), Some(&Method::Update));
    assert_eq!(
        update.headers.get(&HeaderName::SessionExpires),
        Some("120;refresher=uac")
    );
    assert!(update.body.is_empty());
    // A far end with timers names the interval in its 200 (without one,
    // RFC 4028 §7.2: the session would have no timer from then on).
    let mut refreshed = reply(&update, 200, "OK", "b1");
    refreshed.push(HeaderName::SessionExpires, "120;refresher=uac");
    refreshed.push(HeaderName::Require, "timer");
    h.recv(&refreshed, BOB);
    h.advance_to(119_999);
    assert!(h.sent().is_empty(), "re-armed from the 200");
    h.advance_to(120_000);
    let again = h.expect_one(BOB);
    assert_eq!(again.method(), Some(&Method::Update));
    h.recv(
        &reply(&again, 481, "Call/Transaction Does Not Exist", "b1"),
        BOB,
    );
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(chan, Cause::RECOVERY_ON_TIMER_EXPIRE)]
    );
    assert_eq!(h.ep.calls(), 0);
}

/// Without UPDATE at the far end, the refresh is a re-INVITE with our SDP,
/// and its 200 is ACKed.
#[test]
fn a_far_end_without_update_is_refreshed_with_a_re_invite() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(
        &with_timer("Session-Expires: 90;refresher=uas\nSupported: timer"),
        ALICE,
    );
    let chan = h.env.started[0];
    h.input(Input::Answer(chan));
    let ok = h.expect_one(ALICE);
    assert_eq!(
        ok.headers.get(&HeaderName::SessionExpires),
        Some("90;refresher=uas")
    );
    h.recv(&in_dialog("ACK", &ok, ALICE, 1, "ack"), ALICE);
    h.advance_to(45_000);
    let reinvite = h.expect_one(ALICE);
    assert_eq!(reinvite.method(), Some(&Method::Invite));
    assert_eq!(
        reinvite.headers.get(&HeaderName::SessionExpires),
        Some("90;refresher=uac")
    );
    assert!(String::from_utf8_lossy(&reinvite.body).contains("a=sendrecv"));
    let mut r = reply(&reinvite, 200, "OK", "x");
    r.set_body("application/sdp", sdp(40_000, "sendrecv"));
    h.recv(&r, ALICE);
    assert_eq!(h.expect_one(ALICE).method(), Some(&Method::Ack));
    assert_eq!(h.ep.calls(), 1);
}

/// A 422 to our INVITE: asked again with the far end's Min-SE, once.
#[test]
fn a_422_to_our_invite_is_retried_with_the_far_ends_min_se() {
    let toml = format!("{SIP_TOML}session-timers = \"originate\"\n");
    let mut h = Harness::new(&toml);
    let (_, invite) = placed_outbound(&mut h, 100);
    let mut too_small = reply(&invite, 422, "Session Interval Too Small", "b1");
    too_small.push(HeaderName::MinSE, "3600");
    h.recv(&too_small, BOB);
    let sent = h.sent();
    assert_eq!(sent[0].1.method(), Some(&Method::Ack));
    let retry = &sent[1].1;
    assert_eq!(retry.headers.get(&HeaderName::SessionExpires), Some("3600"));
    assert_eq!(retry.headers.get(&HeaderName::MinSE), Some("3600"));
    assert_eq!(retry.cseq().unwrap().seq, invite.cseq().unwrap().seq + 1);
}

/// `rtptimeout`: a bridged leg silent for that long is hung up at the
/// next sweep; a held one only after `rtpholdtimeout`.
#[test]
fn a_bridged_call_without_rtp_is_hung_up_after_rtptimeout() {
    let toml = SIP_TOML.replace(
        "context = \"default\"",
        "context = \"default\"\nrtptimeout = 5\nrtpholdtimeout = 60",
    );
    let mut h = Harness::new(&toml);
    let (a, ok_a) = answered_inbound(&mut h);
    let (b, _) = answered_outbound(&mut h, 100);
    h.input(Input::Bridge(a, b));
    h.take();
    h.env.idle.insert(a, Duration::from_secs(4));
    h.env.idle.insert(b, Duration::from_secs(1));
    h.advance_to(1_000);
    assert!(h.host_actions().is_empty());
    // Held: the hold timeout applies.
    let mut hold = in_dialog("INVITE", &ok_a, ALICE, 2, "hold");
    hold.set_body("application/sdp", sdp(40_000, "sendonly"));
    h.recv(&hold, ALICE);
    h.take();
    h.env.idle.insert(a, Duration::from_secs(30));
    h.advance_to(2_000);
    assert!(
        h.host_actions()
            .iter()
            .all(|x| !matches!(x, HostAction::Hangup(..))),
        "held: 30 s is below rtpholdtimeout"
    );
    h.env.idle.insert(a, Duration::from_secs(61));
    h.advance_to(3_000);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(a, Cause::RECOVERY_ON_TIMER_EXPIRE)]
    );
    assert!(h
        .sent()
        .iter()
        .any(|(to, m)| *to == addr(ALICE) && m.method() == Some(&Method::Bye)));
}

/// rtptimeout on a call that is up and not held; and never on a call
/// still ringing with early media, silent as it may be.
#[test]
fn rtptimeout_ends_a_silent_call_that_is_up_but_not_one_still_ringing() {
    let toml = SIP_TOML.replace(
        "context = \"default\"",
        "context = \"default\"\nrtptimeout = 5",
    );
    let mut h = Harness::new(&toml);
    h.recv(&alice_invite("100", "rt-1"), ALICE);
    let a = h.env.started[0];
    let (b, invite_b) = placed_outbound(&mut h, 100);
    let mut progress = reply(&invite_b, 183, "Session Progress", "b1");
    progress.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&progress, BOB);
    h.input(Input::Bridge(a, b));
    h.take();
    h.env.idle.insert(a, Duration::from_secs(10));
    h.env.idle.insert(b, Duration::from_secs(10));
    h.advance_to(1_000);
    assert!(
        h.host_actions()
            .iter()
            .all(|x| !matches!(x, HostAction::Hangup(..))),
        "early media: not up yet"
    );
    let mut ok = reply(&invite_b, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok, BOB);
    h.take();
    h.advance_to(2_000);
    assert_eq!(
        h.host_actions(),
        vec![HostAction::Hangup(b, Cause::RECOVERY_ON_TIMER_EXPIRE)],
        "bob is up and silent; alice still rings"
    );
}
