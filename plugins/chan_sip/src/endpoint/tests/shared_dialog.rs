//! A shared line in RFC 7463's form: `Event: dialog;shared` watchers get
//! the line's appearances as dialog-info with `sa:appearance`; INVITEs to
//! the line carry `Alert-Info: …;appearance=N`; another phone takes a call
//! with `Replaces` naming the dialog the NOTIFY showed; phones PUBLISH a
//! seizure (`trying`) ahead of their INVITE, refused 400 when the
//! appearance is another call's.

use super::sca::{PHONE2, TOML};
use super::*;
use sirius_sip::shared_appearance::{self, Published};

/// The line's phone at `from` watches it in RFC 7463's form: the 200, the
/// first NOTIFY (answered).
fn watching(h: &mut Harness, from: &str) -> (Message, Message) {
    let headers = "Event: dialog;shared\nAccept: application/dialog-info+xml\n";
    super::sca::subscribed_to(h, from, headers)
}

/// The dialogs of the NOTIFYs sent to `to` since the last look (each
/// answered), one list per NOTIFY, with its body.
fn shown(h: &mut Harness, to: &str) -> Vec<(Vec<Published>, String)> {
    let mut out = Vec::new();
    for (dest, m) in h.sent() {
        if dest == addr(to) && m.method() == Some(&Method::Notify) {
            assert_eq!(m.headers.get(&HeaderName::Event), Some("dialog;shared"));
            let body = String::from_utf8(m.body.clone()).unwrap();
            out.push((shared_appearance::parse(&body).unwrap(), body));
            h.recv(&reply(&m, 200, "OK", "ci"), to);
        }
    }
    out
}

/// The last NOTIFY `to` is sent once every change has been told (none:
/// nothing changed since the last look).
fn settled(h: &mut Harness, to: &str) -> Option<(Vec<Published>, String)> {
    let mut last = None;
    loop {
        let seen = shown(h, to);
        if seen.is_empty() {
            return last;
        }
        last = seen.into_iter().last();
    }
}

/// Every message sent since the last look: the one answer to `from`, and
/// the NOTIFYs the watcher at PHONE2 got (answered).
fn answer_and_shown(h: &mut Harness, from: &str) -> (Message, Vec<(Vec<Published>, String)>) {
    let mut answer = None;
    let mut seen = Vec::new();
    for (dest, m) in h.sent() {
        if dest == addr(PHONE2) && m.method() == Some(&Method::Notify) {
            let body = String::from_utf8(m.body.clone()).unwrap();
            seen.push((shared_appearance::parse(&body).unwrap(), body));
            h.recv(&reply(&m, 200, "OK", "ci"), PHONE2);
        } else if dest == addr(from) && m.code().is_some_and(|c| c > 100) {
            assert!(answer.is_none(), "one answer to {from}: {m:?}");
            answer = Some(m);
        }
    }
    (answer.expect("an answer"), seen)
}

/// A call the line's phone at BOB makes to 100, with Call-ID and From tag
/// `(call_id, tag)`.
fn calling((call_id, tag): (&str, &str)) -> Message {
    let mut m = parse(&format!(
        "INVITE sip:100@127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {BOB};branch=z9hG4bK-{call_id}\n\
         From: <sip:line@127.0.0.1>;tag={tag}\n\
         To: <sip:100@127.0.0.1>\n\
         Call-ID: {call_id}\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:line@{BOB}>\n\
         Content-Length: 0\n\n"
    ));
    m.set_body("application/sdp", sdp(41_000, "sendrecv"));
    m
}

/// The INVITE with which the line's phone at PHONE2 (Call-ID and From tag
/// `(call_id, tag)`) takes the call `replaces` names (a `Replaces` value).
fn taking((call_id, tag): (&str, &str), replaces: &str) -> Message {
    let mut m = parse(&format!(
        "INVITE sip:line@127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {PHONE2};branch=z9hG4bK-{call_id}\n\
         From: <sip:line@127.0.0.1>;tag={tag}\n\
         To: <sip:line@127.0.0.1>\n\
         Call-ID: {call_id}\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:line@{PHONE2}>\n\
         Replaces: {replaces}\n\
         Content-Length: 0\n\n"
    ));
    m.set_body("application/sdp", sdp(43_000, "sendrecv"));
    m
}

/// A PUBLISH of dialog;shared from the line's phone `from`, CSeq `n`,
/// carrying `body`.
fn publish(from: &str, n: u32, body: &str) -> Message {
    let mut m = parse(&format!(
        "PUBLISH sip:line@127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-sapub-{n}\n\
         Max-Forwards: 70\n\
         From: <sip:line@127.0.0.1>;tag=pub\n\
         To: <sip:line@127.0.0.1>\n\
         Call-ID: sapub-{from}-{n}\n\
         CSeq: {n} PUBLISH\n\
         Event: dialog;shared\n\
         Expires: 60\n\
         Content-Length: 0\n\n"
    ));
    m.set_body("application/dialog-info+xml", body.as_bytes().to_vec());
    m
}

/// A dialog-info body with one dialog of call `call_id` on `appearance`
/// in `state`, and `extra` elements.
fn dialog_info(call_id: &str, appearance: u32, state: &str, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n\
         <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" \
         xmlns:sa=\"urn:ietf:params:xml:ns:sa-dialog-info\" version=\"0\" state=\"partial\" \
         entity=\"sip:line@127.0.0.1\">\n\
         <dialog id=\"d1\" call-id=\"{call_id}\" local-tag=\"x\" direction=\"initiator\">\n\
         <sa:appearance>{appearance}</sa:appearance>\n<state>{state}</state>\n{extra}\
         </dialog>\n</dialog-info>\n"
    )
}

/// Alice calls the line: the phone at BOB rings with the appearance in
/// both forms; the watcher sees it early, then confirmed with the phone's
/// dialog once answered; the other phone's INVITE with Replaces naming that
/// dialog (to-tag the PBX's, from-tag the phone's) takes the call and its
/// appearance; the old leg's end leaves it, the new leg's frees it.
#[test]
fn a_call_on_the_line_in_rfc_7463_form() {
    let mut h = Harness::new(TOML);
    let (ok, n) = watching(&mut h, PHONE2);
    assert_eq!(ok.code(), Some(200));
    assert_eq!(n.headers.get(&HeaderName::Event), Some("dialog;shared"));
    assert_eq!(
        n.headers.get(&HeaderName::ContentType),
        Some("application/dialog-info+xml")
    );
    let idle = String::from_utf8(n.body.clone()).unwrap();
    assert!(idle.contains(" version=\"0\" state=\"full\""), "{idle}");
    assert_eq!(
        shared_appearance::parse(&idle),
        Ok(vec![]),
        "idle: no dialog"
    );

    let chan = ChannelId(100);
    h.input(Input::NewOutbound(OutboundSetup {
        caller_name: "Alice".into(),
        ..call_to("line", chan)
    }));
    h.input(Input::Place(chan));
    let sent = h.sent();
    let invite = &sent
        .iter()
        .find(|(_, m)| m.method() == Some(&Method::Invite))
        .unwrap()
        .1;
    assert_eq!(
        invite.headers.get(&HeaderName::AlertInfo),
        Some("<urn:alert:service:normal>;appearance=1")
    );
    assert_eq!(
        invite.headers.get(&HeaderName::CallInfo),
        Some("<sip:line@127.0.0.1>;appearance-index=1")
    );
    let invite = invite.clone();
    let notify = &sent
        .iter()
        .find(|(_, m)| m.method() == Some(&Method::Notify))
        .unwrap()
        .1;
    let body = String::from_utf8(notify.body.clone()).unwrap();
    assert!(body.contains(" version=\"1\" "), "{body}");
    assert!(
        body.contains(" direction=\"recipient\">\n<state>early</state>\n"),
        "{body}"
    );
    assert!(
        body.contains("<identity display=\"Alice\">sip:100@127.0.0.1</identity>"),
        "{body}"
    );
    assert!(body.contains("<sa:appearance>1</sa:appearance>"), "{body}");
    assert!(
        !body.contains("call-id="),
        "no one dialog while ringing: {body}"
    );
    h.recv(&reply(notify, 200, "OK", "ci"), PHONE2);

    let mut answer = reply(&invite, 200, "OK", "p1");
    answer.push(HeaderName::Contact, format!("<sip:line@{BOB}>"));
    answer.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&answer, BOB);
    let seen = shown(&mut h, PHONE2);
    assert_eq!(seen.len(), 1);
    let (dialogs, body) = &seen[0];
    assert_eq!(dialogs.len(), 1, "{body}");
    let d = &dialogs[0];
    assert_eq!((d.state.as_str(), d.appearance), ("confirmed", Some(1)));
    assert!(!d.held && !d.exclusive);
    let ids = d.ids.clone().expect("the phone's dialog");
    let our_tag = invite.from_ref().unwrap().tag().unwrap().to_string();
    assert_eq!(ids.call_id, invite.call_id().unwrap());
    assert_eq!(
        (ids.local_tag.as_str(), ids.remote_tag.as_str()),
        ("p1", our_tag.as_str())
    );

    // The phone holds: held, the local target not rendering.
    h.recv(&super::sca::hold_from_bob(&invite), BOB);
    let seen = shown(&mut h, PHONE2);
    assert_eq!(seen.len(), 1);
    assert!(seen[0].0[0].held, "{}", seen[0].1);
    assert!(seen[0]
        .1
        .contains("<param pname=\"+sip.rendering\" pval=\"no\"/>"));

    // A replaced-dialog that is not the appearance's: 400.
    let wrong = dialog_info(
        "take-0",
        1,
        "trying",
        "<sa:replaced-dialog call-id=\"nope\" local-tag=\"p1\" remote-tag=\"x\"/>\n",
    );
    h.recv(&publish(PHONE2, 9, &wrong), PHONE2);
    let r = h.expect_one(PHONE2);
    assert!(
        String::from_utf8(r.to_bytes())
            .unwrap()
            .starts_with("SIP/2.0 400 Bad Request (not that appearance's dialog)\r\n"),
        "{r:?}"
    );

    // The other phone takes it, RFC 7463 §5.3.2: it may say so first.
    let take = dialog_info(
        "take-1",
        1,
        "trying",
        &format!(
            "<sa:replaced-dialog call-id=\"{}\" local-tag=\"p1\" remote-tag=\"{our_tag}\"/>\n",
            ids.call_id
        ),
    );
    h.recv(&publish(PHONE2, 1, &take), PHONE2);
    assert_eq!(h.expect_one(PHONE2).code(), Some(200));
    let replaces = format!("{};to-tag={our_tag};from-tag=p1", ids.call_id);
    h.recv(&taking(("take-1", "t2"), &replaces), PHONE2);
    let (what, old, taker) = *h.env.replaced.last().expect("the core asked to replace");
    assert_eq!((what, old), ("replace", chan));
    // (The NOTIFY in flight when the call moved is followed by the state now.)
    let seen = settled(&mut h, PHONE2).expect("told");
    assert_eq!(seen.0.len(), 1, "{}", seen.1);
    let d = &seen.0[0];
    assert_eq!(
        (d.state.as_str(), d.appearance, d.held),
        ("confirmed", Some(1), false)
    );
    assert_eq!(d.ids, None, "the new leg's dialog once it is answered");
    assert_eq!(
        h.ep.shared.lines.index_of("line", taker),
        Some(1),
        "the appearance went with the call"
    );
    // The core answers the new call: its dialog is shown, the phone's view
    // (the phone's tag local, ours remote).
    h.input(Input::Answer(taker));
    let (ok, mut seen) = answer_and_shown(&mut h, PHONE2);
    assert_eq!(ok.code(), Some(200));
    let new_tag = ok.to_ref().unwrap().tag().unwrap().to_string();
    seen.extend(settled(&mut h, PHONE2));
    let last = seen.last().expect("told");
    let ids = last.0[0].ids.clone().expect("the new leg's dialog");
    assert_eq!(
        (
            ids.call_id.as_str(),
            ids.local_tag.as_str(),
            ids.remote_tag.as_str()
        ),
        ("take-1", "t2", new_tag.as_str())
    );
    // The old leg ends (the core's BYE): the appearance stays the new leg's.
    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    assert!(shown(&mut h, PHONE2).is_empty());
    h.input(Input::Hangup(taker, Cause::NORMAL_CLEARING));
    let seen = shown(&mut h, PHONE2);
    assert_eq!(seen.len(), 1);
    assert!(seen[0].0.is_empty(), "idle again: {}", seen[0].1);
}

/// RFC 7463 §5.3.1–5.3.2: a phone seizes appearance 2 with a `trying`
/// dialog; the watchers see it; another phone's seizure of it gets 400;
/// the seizing phone's INVITE (same Call-ID) gets it; a seizure whose INVITE
/// never comes lapses; a privately held call cannot be taken by Replaces
/// (403); a body that is not dialog-info is 400; plain `dialog` is not
/// published (489).
#[test]
fn phones_seize_appearances_by_publish() {
    let mut h = Harness::new(TOML);
    watching(&mut h, PHONE2);
    h.recv(
        &publish(BOB, 1, &dialog_info("out-1", 2, "trying", "")),
        BOB,
    );
    let (ok, seen) = answer_and_shown(&mut h, BOB);
    assert_eq!(ok.code(), Some(200));
    assert!(ok.headers.get(&HeaderName::SipETag).is_some());
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0[0].appearance, Some(2));
    assert_eq!(seen[0].0[0].state, "trying");
    let table = crate::sca::render_sharedlines(&crate::sca::sharedlines_table(
        &[("line".into(), 2)],
        &h.ep.shared.lines,
    ));
    assert!(
        table.contains("\nline             2      seized       "),
        "{table}"
    );

    // Another call's seizure of the same appearance: 400.
    h.recv(
        &publish(PHONE2, 2, &dialog_info("out-2", 2, "trying", "")),
        PHONE2,
    );
    assert_eq!(h.expect_one(PHONE2).code(), Some(400));
    // Past the line's two appearances: 400; unreadable: 400.
    h.recv(
        &publish(PHONE2, 3, &dialog_info("out-3", 3, "trying", "")),
        PHONE2,
    );
    assert_eq!(h.expect_one(PHONE2).code(), Some(400));
    h.recv(&publish(PHONE2, 4, "<dialog-info><dialog"), PHONE2);
    assert_eq!(h.expect_one(PHONE2).code(), Some(400));

    // A seizure given back (its dialog terminated) frees the appearance.
    h.recv(
        &publish(PHONE2, 10, &dialog_info("out-9", 1, "trying", "")),
        PHONE2,
    );
    assert_eq!(answer_and_shown(&mut h, PHONE2).0.code(), Some(200));
    assert!(h.ep.shared.lines.get("line", 1).is_some());
    h.recv(
        &publish(PHONE2, 11, &dialog_info("out-9", 1, "terminated", "")),
        PHONE2,
    );
    assert_eq!(answer_and_shown(&mut h, PHONE2).0.code(), Some(200));
    assert_eq!(h.ep.shared.lines.get("line", 1), None);
    settled(&mut h, PHONE2);

    // The seizing phone's INVITE (same Call-ID, no appearance named in it)
    // claims appearance 2, not the lowest free one.
    h.recv(&calling(("out-1", "o1")), BOB);
    let chan = *h.env.started.last().expect("the call goes to the dialplan");
    assert_eq!(h.ep.shared.lines.index_of("line", chan), Some(2));
    let seen = settled(&mut h, PHONE2).expect("told");
    assert!(
        seen.1
            .contains(" direction=\"initiator\">\n<state>trying</state>"),
        "{}",
        seen.1
    );

    // A seizure never followed by its INVITE lapses.
    h.recv(
        &publish(PHONE2, 5, &dialog_info("out-5", 1, "trying", "")),
        PHONE2,
    );
    assert_eq!(answer_and_shown(&mut h, PHONE2).0.code(), Some(200));
    settled(&mut h, PHONE2);
    let lapse = h.elapsed_ms() as u64 + (crate::sca::SEIZE_FOR + 2) * 1000;
    h.advance_to(lapse);
    assert_eq!(h.ep.shared.lines.get("line", 1), None);
    let seen = settled(&mut h, PHONE2).expect("told");
    assert!(seen.0.iter().all(|d| d.appearance == Some(2)), "{}", seen.1);

    // The call on 2, answered, held privately as the phone says.
    h.input(Input::Answer(chan));
    let (ok, _) = answer_and_shown(&mut h, BOB);
    let our_tag = ok.to_ref().unwrap().tag().unwrap().to_string();
    settled(&mut h, PHONE2);
    let private = dialog_info(
        "out-1",
        2,
        "confirmed",
        "<local><target uri=\"sip:line@127.0.0.1\"><param pname=\"+sip.rendering\" pval=\"no\"/></target></local>\n\
         <sa:exclusive>true</sa:exclusive>\n",
    );
    h.recv(&publish(BOB, 6, &private), BOB);
    let (ok, seen) = answer_and_shown(&mut h, BOB);
    assert_eq!(ok.code(), Some(200));
    assert!(seen[0].0[0].exclusive && seen[0].0[0].held, "{}", seen[0].1);
    let replaces = format!("out-1;to-tag={our_tag};from-tag=o1");
    h.recv(&taking(("take-2", "t3"), &replaces), PHONE2);
    assert_eq!(h.expect_one(PHONE2).code(), Some(403));
    assert!(h.env.replaced.is_empty());

    // Plain dialog state is not published here.
    let mut plain = publish(PHONE2, 7, &dialog_info("x", 1, "trying", ""));
    plain.headers.set(HeaderName::Event, "dialog");
    h.recv(&plain, PHONE2);
    let r = h.expect_one(PHONE2);
    assert_eq!(r.code(), Some(489));
    assert_eq!(
        r.headers.get(&HeaderName::AllowEvents),
        Some("call-info, dialog")
    );
}

/// `sa:exclusive` on an active call (RFC 7463 §9.1: others may not take
/// it): shown, and a Replaces aimed at it refused (403) until the phone
/// says otherwise.
#[test]
fn an_exclusive_call_is_not_taken() {
    let mut h = Harness::new(TOML);
    watching(&mut h, PHONE2);
    h.recv(&calling(("ex-1", "e1")), BOB);
    let chan = *h.env.started.last().unwrap();
    h.input(Input::Answer(chan));
    let (ok, _) = answer_and_shown(&mut h, BOB);
    let our_tag = ok.to_ref().unwrap().tag().unwrap().to_string();
    settled(&mut h, PHONE2);
    let exclusive = |on: bool| {
        dialog_info(
            "ex-1",
            1,
            "confirmed",
            &format!("<sa:exclusive>{on}</sa:exclusive>\n"),
        )
    };
    h.recv(&publish(BOB, 1, &exclusive(true)), BOB);
    let (ok, seen) = answer_and_shown(&mut h, BOB);
    assert_eq!(ok.code(), Some(200));
    let d = &seen.last().expect("told").0[0];
    assert!(d.exclusive && !d.held, "{seen:?}");
    let replaces = format!("ex-1;to-tag={our_tag};from-tag=e1");
    let replace = |id: &str| taking((id, id), &replaces);
    h.recv(&replace("try1"), PHONE2);
    let (r, _) = answer_and_shown(&mut h, PHONE2);
    assert_eq!(r.code(), Some(403));
    assert!(h.env.replaced.is_empty());
    // Not exclusive any more: the active call is taken (Replaces may take
    // an active call, unlike seed 003's Call-Info takeover).
    h.recv(&publish(BOB, 2, &exclusive(false)), BOB);
    assert_eq!(answer_and_shown(&mut h, BOB).0.code(), Some(200));
    h.recv(&replace("try2"), PHONE2);
    let (_, old, taker) = *h.env.replaced.last().expect("taken");
    assert_eq!(old, chan);
    assert_eq!(h.ep.shared.lines.index_of("line", taker), Some(1));
    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    h.input(Input::Hangup(taker, Cause::NORMAL_CLEARING));
    h.sent();
    settled(&mut h, PHONE2);
    assert!(h.ep.shared.lines.snapshot().is_empty());
}

/// A member's Replaces of a call not on the line (Alice's call, answered by
/// the dialplan; same context) takes an appearance: the member is on a
/// call now, which the line shows and counts.
#[test]
fn a_call_a_member_takes_from_elsewhere_is_on_the_line() {
    let mut h = Harness::new(TOML);
    let (alice, ok) = answered_inbound(&mut h);
    watching(&mut h, PHONE2);
    settled(&mut h, PHONE2);
    let pbx_tag = ok.to_ref().unwrap().tag().unwrap().to_string();
    let replaces = format!("in-1;to-tag={pbx_tag};from-tag=a1");
    h.recv(&taking(("grab-1", "g1"), &replaces), PHONE2);
    let (_, old, grabber) = *h.env.replaced.last().expect("taken");
    assert_eq!(old, alice);
    assert_eq!(h.ep.shared.lines.index_of("line", grabber), Some(1));
    let seen = settled(&mut h, PHONE2).expect("told");
    assert_eq!(seen.0.len(), 1, "{}", seen.1);
}
