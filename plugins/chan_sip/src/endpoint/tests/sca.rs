//! Shared Call Appearance (seed 003, crate::sca): a line's phones subscribe
//! to call-info and see each call's appearance; a call to the line carries
//! its appearance index; another phone takes a held call over.

use super::*;

/// The line's phones: one at BOB, one here.
pub(super) const PHONE2: &str = "127.0.0.1:5068";

pub(super) const TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:5060"

[peers.alice]
host = "127.0.0.1"
port = 5062
context = "phones"

[peers.line]
host = "127.0.0.1"
port = 5064
context = "phones"
shared-appearances = 2
"#;

/// The line's phone at `from` subscribes to its call-info: the 200, the
/// first NOTIFY (answered).
fn subscribed(h: &mut Harness, from: &str) -> (Message, Message) {
    subscribed_to(h, from, "Event: call-info\n")
}

/// The line's phone at `from` subscribes to its line with `headers` (the
/// Event, an Accept): the 200, the first NOTIFY (answered).
pub(super) fn subscribed_to(h: &mut Harness, from: &str, headers: &str) -> (Message, Message) {
    h.recv(
        &parse(&format!(
            "SUBSCRIBE sip:line@127.0.0.1:5060 SIP/2.0\n\
             Via: SIP/2.0/UDP {from};branch=z9hG4bK-ci-{from}\n\
             Max-Forwards: 70\n\
             From: <sip:line@127.0.0.1>;tag=ci\n\
             To: <sip:line@127.0.0.1>\n\
             Call-ID: ci-{from}\n\
             CSeq: 32099 SUBSCRIBE\n\
             Contact: <sip:line@{from}>\n\
             Expires: 3600\n\
             {headers}\
             Content-Length: 0\n\n"
        )),
        from,
    );
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let (ok, n) = (sent[0].1.clone(), sent[1].1.clone());
    h.recv(&reply(&n, 200, "OK", "ci"), from);
    (ok, n)
}

/// The re-INVITE with which the line's phone at BOB, which answered our
/// `invite` with To tag `p1`, puts the call on hold (a=sendonly).
pub(super) fn hold_from_bob(invite: &Message) -> Message {
    let mut hold = parse(&format!(
        "INVITE sip:100@127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {BOB};branch=z9hG4bKhold\n\
         From: <sip:line@{BOB}>;tag=p1\n\
         To: {}\n\
         Call-ID: {}\n\
         CSeq: 2 INVITE\n\
         Contact: <sip:line@{BOB}>\n\
         Content-Length: 0\n\n",
        invite.headers.get(&HeaderName::From).unwrap(),
        invite.headers.get(&HeaderName::CallId).unwrap(),
    ));
    hold.set_body("application/sdp", sdp(41_000, "sendonly"));
    hold
}

/// The NOTIFYs sent since the last look, each answered: their Call-Info.
fn call_infos(h: &mut Harness, to: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (dest, m) in h.sent() {
        if dest == addr(to) && m.method() == Some(&Method::Notify) {
            out.push(
                m.headers
                    .get(&HeaderName::CallInfo)
                    .unwrap_or("")
                    .to_string(),
            );
            h.recv(&reply(&m, 200, "OK", "ci"), to);
        }
    }
    out
}

const IDLE: &str = "<sip:line@127.0.0.1>;appearance-index=*;appearance-state=idle";

/// A call to the line rings its phone with `Call-Info: …;appearance-index=1`
/// and shows alerting with the caller; the answer shows active, the
/// phone's hold held; the other phone's INVITE naming appearance 1 (From
/// and To the line, no user in the Request-URI) takes the call over: the
/// core puts it in the held call's place, the appearance is active again,
/// and the old phone's leg ending does not free it; the new leg's end does.
#[test]
fn the_seed_003_story() {
    let mut h = Harness::new(TOML);
    let (ok, n) = subscribed(&mut h, PHONE2);
    assert_eq!(ok.code(), Some(200));
    assert_eq!(n.headers.get(&HeaderName::Event), Some("call-info"));
    assert_eq!(n.headers.get(&HeaderName::CallInfo), Some(IDLE));
    assert_eq!(
        n.headers.get(&HeaderName::SubscriptionState),
        Some("active;expires=3600")
    );
    assert!(n.body.is_empty());
    assert_eq!(n.headers.get(&HeaderName::ContentType), None);

    // Alice calls the line (Dial): its phone rings with the appearance.
    let chan = ChannelId(100);
    h.input(Input::NewOutbound(OutboundSetup {
        caller_name: "Alice".into(),
        ..call_to("line", chan)
    }));
    h.input(Input::Place(chan));
    let sent = h.sent();
    let invite = sent
        .iter()
        .find(|(_, m)| m.method() == Some(&Method::Invite))
        .unwrap()
        .1
        .clone();
    assert_eq!(
        invite.headers.get(&HeaderName::CallInfo),
        Some("<sip:line@127.0.0.1>;appearance-index=1")
    );
    let notify = sent
        .iter()
        .find(|(_, m)| m.method() == Some(&Method::Notify))
        .unwrap()
        .1
        .clone();
    assert_eq!(
        notify.headers.get(&HeaderName::CallInfo),
        Some(
            "<sip:line@127.0.0.1>;appearance-index=1;appearance-state=alerting;\
             appearance-uri=\"\\\"Alice\\\" <sip:100@127.0.0.1>\",\
             <sip:line@127.0.0.1>;appearance-index=*;appearance-state=idle"
        )
    );
    h.recv(&reply(&notify, 200, "OK", "ci"), PHONE2);
    let mut answer = reply(&invite, 200, "OK", "p1");
    answer.push(HeaderName::Contact, format!("<sip:line@{BOB}>"));
    answer.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&answer, BOB);
    let active = call_infos(&mut h, PHONE2);
    assert_eq!(active.len(), 1);
    assert!(
        active[0].starts_with("<sip:line@127.0.0.1>;appearance-index=1;appearance-state=active;")
    );

    // The phone holds.
    h.recv(&hold_from_bob(&invite), BOB);
    let held = call_infos(&mut h, PHONE2);
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        held[0].contains("appearance-index=1;appearance-state=held;"),
        "{held:?}"
    );

    // The other phone takes it over (seed step 5).
    let mut pickup = parse(&format!(
        "INVITE sip:127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {PHONE2};branch=z9hG4bKpick\n\
         From: <sip:line@127.0.0.1>;tag=d7e0\n\
         To: <sip:line@127.0.0.1>\n\
         Call-ID: pickup-1\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:line@{PHONE2}>\n\
         Call-Info: <sip:127.0.0.1:5060>;appearance-index=1\n\
         Content-Length: 0\n\n"
    ));
    pickup.set_body("application/sdp", sdp(43_000, "sendrecv"));
    h.recv(&pickup, PHONE2);
    let (what, old, taker) = *h.env.replaced.last().expect("the core asked to replace");
    assert_eq!((what, old), ("replace", chan));
    assert!(!h.env.started.contains(&taker), "no dialplan for the taker");
    let active = call_infos(&mut h, PHONE2);
    assert_eq!(active.len(), 1, "{active:?}");
    assert!(active[0].contains("appearance-index=1;appearance-state=active;"));
    // The core hangs the old phone's leg up: the appearance stays.
    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    assert!(call_infos(&mut h, PHONE2).is_empty());
    // The new leg ends: idle.
    h.input(Input::Hangup(taker, Cause::NORMAL_CLEARING));
    assert_eq!(call_infos(&mut h, PHONE2), [IDLE]);
}

/// A line with both appearances in use refuses a third call (busy); a
/// phone not of the line cannot watch it (403), nor anybody a peer that is
/// not a shared line (404).
#[test]
fn a_full_line_is_busy_and_only_its_phones_watch_it() {
    let mut h = Harness::new(TOML);
    for n in 1..=3u64 {
        let chan = ChannelId(100 + n);
        h.input(Input::NewOutbound(call_to("line", chan)));
        h.input(Input::Place(chan));
    }
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(ChannelId(103), Cause::USER_BUSY)));
    let sub = |user: &str, target: &str| {
        parse(&format!(
            "SUBSCRIBE sip:{target}@127.0.0.1:5060 SIP/2.0\n\
             Via: SIP/2.0/UDP {ALICE};branch=z9hG4bK-ci-{user}-{target}\n\
             From: <sip:{user}@127.0.0.1>;tag=x\n\
             To: <sip:{target}@127.0.0.1>\n\
             Call-ID: ci-{user}-{target}\n\
             CSeq: 1 SUBSCRIBE\n\
             Contact: <sip:{user}@{ALICE}>\n\
             Event: call-info\n\
             Content-Length: 0\n\n"
        ))
    };
    h.sent();
    h.recv(&sub("alice", "line"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(403));
    h.recv(&sub("alice", "alice"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(404));
}

/// A takeover of an appearance that is not held is refused (403); a call
/// whose line a reload took away still frees its appearance when it ends.
#[test]
fn only_a_held_call_is_taken_over_and_a_reload_leaks_nothing() {
    let mut h = Harness::new(TOML);
    let chan = ChannelId(100);
    h.input(Input::NewOutbound(call_to("line", chan)));
    h.input(Input::Place(chan));
    h.sent();
    let mut grab = parse(&format!(
        "INVITE sip:127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {PHONE2};branch=z9hG4bKgrab\n\
         From: <sip:line@127.0.0.1>;tag=g1\n\
         To: <sip:line@127.0.0.1>\n\
         Call-ID: grab-1\n\
         CSeq: 1 INVITE\n\
         Contact: <sip:line@{PHONE2}>\n\
         Call-Info: <sip:127.0.0.1>;appearance-index=1\n\
         Content-Length: 0\n\n"
    ));
    grab.set_body("application/sdp", sdp(43_000, "sendrecv"));
    h.recv(&grab, PHONE2);
    assert_eq!(h.expect_one(PHONE2).code(), Some(403), "alerting, not held");
    assert!(h.env.replaced.is_empty());
    // The line stops being shared; its call ends: the appearance goes.
    h.reload(&TOML.replace("shared-appearances = 2\n", ""));
    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    assert!(h.ep.shared.lines.snapshot().is_empty());
}

/// A PUBLISH of call-info from the line's phone `from`, CSeq `n`, with
/// these extra header lines.
fn publish(from: &str, n: u32, extra: &str) -> Message {
    parse(&format!(
        "PUBLISH sip:line@127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-pub-{n}\n\
         Max-Forwards: 70\n\
         From: <sip:line@127.0.0.1>;tag=pub\n\
         To: <sip:line@127.0.0.1>\n\
         Call-ID: pub-{from}\n\
         CSeq: {n} PUBLISH\n\
         {extra}\
         Content-Length: 0\n\n"
    ))
}

/// RFC 3903 with call-info: an initial PUBLISH (a Call-Info required) gets
/// a SIP-ETag and is applied (the appearance held-private, the watchers
/// told, a takeover of it refused); a refresh with SIP-If-Match gets a new
/// tag; an unknown tag 412; `Expires: 0` removes it; an event other than
/// call-info 489; too short 423; the store forgets what expires.
#[test]
fn a_phone_publishes_its_private_hold() {
    let mut h = Harness::new(TOML);
    subscribed(&mut h, PHONE2);
    let chan = ChannelId(100);
    h.input(Input::NewOutbound(call_to("line", chan)));
    h.input(Input::Place(chan));
    call_infos(&mut h, PHONE2);
    h.sent();

    let ci = "Call-Info: <sip:line@127.0.0.1>;appearance-index=1;appearance-state=held-private\n";
    h.recv(
        &publish(BOB, 1, &format!("Event: call-info\nExpires: 120\n{ci}")),
        BOB,
    );
    let sent = h.sent();
    let ok = sent
        .iter()
        .find(|(to, _)| *to == addr(BOB))
        .unwrap()
        .1
        .clone();
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.headers.get(&HeaderName::Expires), Some("120"));
    let tag = ok.headers.get(&HeaderName::SipETag).unwrap().to_string();
    let notify = sent
        .iter()
        .find(|(to, _)| *to == addr(PHONE2))
        .unwrap()
        .1
        .clone();
    assert!(notify
        .headers
        .get(&HeaderName::CallInfo)
        .unwrap()
        .contains("appearance-index=1;appearance-state=held-private"));
    h.recv(&reply(&notify, 200, "OK", "ci"), PHONE2);

    // Refresh: a new tag; the old one is gone.
    h.recv(
        &publish(BOB, 2, &format!("Event: call-info\nSIP-If-Match: {tag}\n")),
        BOB,
    );
    let refreshed = h.expect_one(BOB);
    let new_tag = refreshed
        .headers
        .get(&HeaderName::SipETag)
        .unwrap()
        .to_string();
    assert_ne!(new_tag, tag);
    h.recv(
        &publish(BOB, 3, &format!("Event: call-info\nSIP-If-Match: {tag}\n")),
        BOB,
    );
    assert_eq!(h.expect_one(BOB).code(), Some(412));
    // Refusals.
    h.recv(&publish(BOB, 4, "Event: call-info\n"), BOB);
    assert_eq!(
        h.expect_one(BOB).code(),
        Some(400),
        "an initial one says nothing"
    );
    h.recv(&publish(BOB, 5, &format!("Event: presence\n{ci}")), BOB);
    let r = h.expect_one(BOB);
    assert_eq!(r.code(), Some(489));
    assert_eq!(
        r.headers.get(&HeaderName::AllowEvents),
        Some("call-info, dialog")
    );
    h.recv(
        &publish(BOB, 6, &format!("Event: call-info\nExpires: 10\n{ci}")),
        BOB,
    );
    assert_eq!(h.expect_one(BOB).code(), Some(423));
    // Removal.
    h.recv(
        &publish(
            BOB,
            7,
            &format!("Event: call-info\nSIP-If-Match: {new_tag}\nExpires: 0\n"),
        ),
        BOB,
    );
    let gone = h.expect_one(BOB);
    assert_eq!(gone.code(), Some(200));
    assert_eq!(gone.headers.get(&HeaderName::Expires), Some("0"));
    assert!(h.ep.shared.publications.is_empty());
    // One more, left to expire.
    h.recv(
        &publish(BOB, 8, &format!("Event: call-info\nExpires: 60\n{ci}")),
        BOB,
    );
    assert_eq!(h.ep.shared.publications.len(), 1);
    h.advance_to(61_000);
    assert!(h.ep.shared.publications.is_empty());
}
