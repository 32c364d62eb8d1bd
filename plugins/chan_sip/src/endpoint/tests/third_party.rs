//! Click-to-dial: a REFER outside any dialog (session/third_party.rs).

use super::*;

/// Alice asks the PBX to call bob and connect him to 6003.
fn click_to_dial(user: &str, target: &str) -> Message {
    // A transaction (and a Call-ID) of its own for each.
    let n = user.len() * 1_000 + target.len();
    parse(&format!(
        "REFER sip:{user}@127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {ALICE};branch=z9hG4bK-c2d-{n}\n\
         Max-Forwards: 70\n\
         From: <sip:alice@127.0.0.1>;tag=dialer\n\
         To: <sip:{user}@127.0.0.1>\n\
         Call-ID: {n}@dialer.example.com\n\
         CSeq: 1 REFER\n\
         Contact: <sip:alice@{ALICE}>\n\
         Refer-To: {target}\n\
         Content-Length: 0\n\n"
    ))
}

/// The NOTIFYs to alice so far, each answered 200: their sipfrag bodies.
fn notified(h: &mut Harness) -> Vec<String> {
    let mut out = Vec::new();
    for (to, m) in h.sent() {
        if to == addr(ALICE) && m.method() == Some(&Method::Notify) {
            out.push(String::from_utf8(m.body.clone()).unwrap());
            h.recv(&reply(&m, 200, "OK", "dialer"), ALICE);
        }
    }
    out
}

/// Seed 002's flow F1: 202 (a dialog of its own), NOTIFY 100; the PBX
/// calls bob with a channel that will run 6003 in bob's context; his
/// ringing and answer are reported, the answer starts the dialplan.
#[test]
fn a_refer_outside_a_dialog_calls_the_peer_and_runs_the_target_once_it_answers() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(
        &click_to_dial("bob", "<sip:6003@127.0.0.1?body=%22c%3D0.0.0.0%22>"),
        ALICE,
    );
    let sent = h.sent();
    let accepted = &sent.iter().find(|(to, _)| *to == addr(ALICE)).unwrap().1;
    assert_eq!(accepted.code(), Some(202));
    assert!(accepted.to_ref().unwrap().tag().is_some());
    let notify = sent
        .iter()
        .find(|(_, m)| m.method() == Some(&Method::Notify))
        .map(|(_, m)| m.clone())
        .expect("NOTIFY 100");
    assert_eq!(notify.body, b"SIP/2.0 100 Trying\r\n");
    assert_eq!(
        notify.to_ref().unwrap().tag(),
        Some("dialer"),
        "in the REFER's dialog"
    );
    let invite = sent
        .iter()
        .find(|(to, m)| *to == addr(BOB) && m.method() == Some(&Method::Invite))
        .map(|(_, m)| m.clone())
        .expect("an INVITE to bob");
    let (chan, spec) = h.env.allocated.last().cloned().unwrap();
    assert_eq!(spec.direction, sirius_abi::Direction::Outbound);
    assert_eq!((&*spec.context, &*spec.exten), ("default", "6003"));
    h.recv(&reply(&notify, 200, "OK", "dialer"), ALICE);

    h.recv(&reply(&invite, 180, "Ringing", "b1"), BOB);
    assert_eq!(notified(&mut h), ["SIP/2.0 180 Ringing\r\n"]);
    let mut ok = reply(&invite, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok, BOB);
    assert!(h.host_actions().contains(&HostAction::StartPbx(chan)));
    assert_eq!(notified(&mut h), ["SIP/2.0 200 OK\r\n"]);
    assert!(h.ep.refers.is_empty(), "reported and forgotten");
}

/// Bob is busy: the final report says so and no dialplan runs.
#[test]
fn a_busy_callee_is_the_final_report() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(&click_to_dial("bob", "<sip:6003@127.0.0.1>"), ALICE);
    let sent = h.sent();
    let invite = sent
        .iter()
        .find(|(to, m)| *to == addr(BOB) && m.method() == Some(&Method::Invite))
        .map(|(_, m)| m.clone())
        .unwrap();
    let trying = sent
        .iter()
        .find(|(_, m)| m.method() == Some(&Method::Notify))
        .map(|(_, m)| m.clone())
        .unwrap();
    h.recv(&reply(&trying, 200, "OK", "dialer"), ALICE);
    h.recv(&reply(&invite, 486, "Busy Here", "b1"), BOB);
    assert_eq!(notified(&mut h), ["SIP/2.0 486 Busy Here\r\n"]);
    assert!(!h
        .host_actions()
        .iter()
        .any(|a| matches!(a, HostAction::StartPbx(_))));
}

/// Refused before any 202: a user that is no peer (404), a Refer-To that
/// is no sip/sips/tel URI or carries Replaces (400), a stranger (403).
#[test]
fn refers_outside_a_dialog_that_cannot_be_served_get_a_final_response() {
    let mut h = Harness::new(SIP_TOML);
    for (user, target, code) in [
        ("nobody", "<sip:6003@127.0.0.1>", 404),
        ("bob", "<mailto:x@y>", 400),
        (
            "bob",
            "<sip:6003@127.0.0.1?Replaces=a%3Bto-tag%3Db%3Bfrom-tag%3Dc>",
            400,
        ),
    ] {
        h.recv(&click_to_dial(user, target), ALICE);
        assert_eq!(h.expect_one(ALICE).code(), Some(code), "{user} {target}");
    }
    let stranger = "127.0.0.1:5999";
    let mut m = click_to_dial("bob", "<sip:6003@127.0.0.1>");
    m.headers
        .set(HeaderName::From, "<sip:mallory@127.0.0.1>;tag=m");
    h.recv(&m, stranger);
    assert_eq!(h.expect_one(stranger).code(), Some(403));
    assert!(h.env.allocated.is_empty());
}
