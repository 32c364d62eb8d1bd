//! A call to a peer registered from two phones (`max_contacts`,
//! session/fork.rs): both ring, the first answer wins, the other is
//! cancelled "completed elsewhere"; when both refuse, the best refusal.

use super::*;
use crate::session::fork::ForkTarget;

/// Bob's second phone.
const BOB2: &str = "127.0.0.1:5066";

/// A call to bob at both his phones, placed: the two INVITEs, BOB's first.
fn forked_call(h: &mut Harness) -> (ChannelId, Message, Message) {
    let chan = ChannelId(100);
    h.input(Input::NewOutbound(OutboundSetup {
        caller_name: "Alice".into(),
        forks: vec![ForkTarget {
            dest: addr(BOB2),
            transport: Transport::Udp,
            ruri: format!("sip:bob@{BOB2}"),
        }],
        ..call_to("bob", chan)
    }));
    h.input(Input::Place(chan));
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[0].0, addr(BOB));
    assert_eq!(sent[1].0, addr(BOB2));
    (chan, sent[0].1.clone(), sent[1].1.clone())
}

/// Both phones ring with one INVITE each (one Call-ID, From tag and CSeq,
/// a Via branch and Request-URI each); the second answers: it is ACKed and
/// the call is its, the first gets a CANCEL saying the call was completed
/// elsewhere, and its 487 changes nothing; the BYE goes to the phone that
/// answered.
#[test]
fn both_phones_ring_and_the_first_answer_wins() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, one, two) = forked_call(&mut h);
    for name in [HeaderName::CallId, HeaderName::From, HeaderName::CSeq] {
        assert_eq!(one.headers.get(&name), two.headers.get(&name), "{name:?}");
    }
    assert_ne!(
        one.top_via().unwrap().branch(),
        two.top_via().unwrap().branch()
    );
    assert_eq!(two.request_uri(), Some(format!("sip:bob@{BOB2}").as_str()));
    assert_eq!(one.body, two.body, "the same offer");
    h.recv(&reply(&one, 180, "Ringing", "p1"), BOB);
    h.recv(&reply(&two, 180, "Ringing", "p2"), BOB2);
    assert!(h.ep.sessions.get(chan).unwrap().ringing);
    h.sent();
    let mut ok = reply(&two, 200, "OK", "p2");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB2}>"));
    ok.set_body("application/sdp", sdp(42_000, "sendrecv"));
    h.recv(&ok, BOB2);
    let sent = h.sent();
    let ack = sent.iter().find(|(_, m)| m.method() == Some(&Method::Ack));
    assert_eq!(ack.map(|a| a.0), Some(addr(BOB2)), "{sent:#?}");
    let cancel = sent
        .iter()
        .find(|(_, m)| m.method() == Some(&Method::Cancel))
        .expect("a CANCEL to the other phone");
    assert_eq!(cancel.0, addr(BOB));
    assert_eq!(
        cancel.1.headers.get(&HeaderName::Reason),
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    );
    assert!(h
        .host_actions()
        .contains(&HostAction::SetState(chan, ChannelState::Up)));
    // The first phone confirms the cancel: the call goes on.
    h.recv(&reply(&cancel.1, 200, "OK", "p1"), BOB);
    h.recv(&reply(&one, 487, "Request Terminated", "p1"), BOB);
    assert!(h
        .host_actions()
        .iter()
        .all(|a| !matches!(a, HostAction::Hangup(..))));
    assert_eq!(h.ep.shared.in_use.counts("bob"), (1, 0, 0));
    h.sent();
    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    let bye = h.expect_one(BOB2);
    assert_eq!(bye.method(), Some(&Method::Bye));
}

/// When every phone refuses, the call ends with the best refusal (RFC 3261
/// §16.7): not at the first one, and busy (486) over not found (404).
#[test]
fn when_every_phone_refuses_the_best_refusal_ends_the_call() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, one, two) = forked_call(&mut h);
    h.recv(&reply(&one, 404, "Not Found", "p1"), BOB);
    assert!(
        h.host_actions()
            .iter()
            .all(|a| !matches!(a, HostAction::Hangup(..))),
        "the other phone still rings"
    );
    h.recv(&reply(&two, 486, "Busy Here", "p2"), BOB2);
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(chan, Cause::USER_BUSY)));
    assert_eq!(h.ep.shared.in_use.counts("bob"), (0, 0, 0));
}

/// Another callee of the Dial answered: both phones get a CANCEL saying
/// so; one that answers anyway is ACKed and hung up.
#[test]
fn a_call_answered_elsewhere_cancels_every_phone() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, one, two) = forked_call(&mut h);
    h.recv(&reply(&one, 180, "Ringing", "p1"), BOB);
    h.recv(&reply(&two, 180, "Ringing", "p2"), BOB2);
    h.sent();
    h.input(Input::Hangup(chan, Cause::ANSWERED_ELSEWHERE));
    let sent = h.sent();
    let cancels: Vec<_> = sent
        .iter()
        .filter(|(_, m)| m.method() == Some(&Method::Cancel))
        .collect();
    assert_eq!(cancels.len(), 2, "{sent:#?}");
    for (_, c) in cancels {
        assert_eq!(
            c.headers.get(&HeaderName::Reason),
            Some("SIP;cause=200;text=\"Call completed elsewhere\"")
        );
    }
    // The second phone answered as the CANCEL crossed: ACK, then BYE.
    let mut ok = reply(&two, 200, "OK", "p2");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB2}>"));
    h.recv(&ok, BOB2);
    let methods: Vec<_> = h
        .sent()
        .into_iter()
        .filter(|(to, _)| *to == addr(BOB2))
        .filter_map(|(_, m)| m.method().cloned())
        .collect();
    assert_eq!(methods, [Method::Ack, Method::Bye]);
}

/// The newest phone refuses, the other answers: the call is the other's,
/// and nothing is left owning the refused INVITE.
#[test]
fn one_phone_refuses_and_the_other_answers() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, one, two) = forked_call(&mut h);
    h.recv(&reply(&one, 480, "Temporarily Unavailable", "p1"), BOB);
    let mut ok = reply(&two, 200, "OK", "p2");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB2}>"));
    ok.set_body("application/sdp", sdp(42_000, "sendrecv"));
    h.recv(&ok, BOB2);
    assert!(h
        .host_actions()
        .contains(&HostAction::SetState(chan, ChannelState::Up)));
    let sent = h.sent();
    assert!(
        sent.iter()
            .all(|(_, m)| m.method() != Some(&Method::Cancel)),
        "nothing left to cancel: {sent:#?}"
    );
    assert_eq!(h.ep.owners.len(), 1, "only the answered INVITE");
}

/// The newest phone refuses last: the call still ends with the best
/// refusal any phone gave (a busy other phone), not its own; its INVITE
/// timing out while the other was busy is busy too, not congestion.
#[test]
fn the_best_refusal_wins_whichever_phone_refuses_last() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, one, two) = forked_call(&mut h);
    h.recv(&reply(&two, 486, "Busy Here", "p2"), BOB2);
    h.recv(&reply(&one, 404, "Not Found", "p1"), BOB);
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(chan, Cause::USER_BUSY)));

    let mut h = Harness::new(SIP_TOML);
    let (chan, _, two) = forked_call(&mut h);
    h.recv(&reply(&two, 486, "Busy Here", "p2"), BOB2);
    h.advance_to(40_000); // Timer B of the newest phone's INVITE
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(chan, Cause::USER_BUSY)));
}

/// The newest phone refused while the other rings: a hangup then cancels
/// only the one still ringing, and nothing is left in the owner table but
/// that cancelled INVITE.
#[test]
fn a_hangup_after_one_refusal_cancels_only_the_phone_still_ringing() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, one, two) = forked_call(&mut h);
    h.recv(&reply(&two, 180, "Ringing", "p2"), BOB2);
    h.recv(&reply(&one, 480, "Temporarily Unavailable", "p1"), BOB);
    assert!(h
        .host_actions()
        .iter()
        .all(|a| !matches!(a, HostAction::Hangup(..))));
    h.sent();
    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    let cancels: Vec<_> = h
        .sent()
        .into_iter()
        .filter(|(_, m)| m.method() == Some(&Method::Cancel))
        .collect();
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].0, addr(BOB2));
    assert_eq!(cancels[0].1.headers.get(&HeaderName::Reason), None);
    assert_eq!(h.ep.owners.len(), 1, "only the cancelled INVITE");
}
