//! Busy-lamp subscriptions: SUBSCRIBE / NOTIFY for `Event: dialog`
//! (session/subscribe.rs), on simulated time.

use super::*;

/// Alice's SUBSCRIBE to `exten`, outside any dialog (Call-ID `call_id`).
fn subscribe(exten: &str, call_id: &str, extra: &str) -> Message {
    parse(&format!(
        "SUBSCRIBE sip:{exten}@127.0.0.1:5060 SIP/2.0\n\
         Via: SIP/2.0/UDP {ALICE};branch=z9hG4bK-sub-{call_id}\n\
         Max-Forwards: 70\n\
         From: <sip:alice@127.0.0.1>;tag=lamp\n\
         To: <sip:{exten}@127.0.0.1:5060;user=phone>\n\
         Call-ID: {call_id}\n\
         CSeq: 1 SUBSCRIBE\n\
         Contact: <sip:alice@{ALICE}>\n\
         {extra}\
         Content-Length: 0\n\n"
    ))
}

/// A SUBSCRIBE in the dialog the 200 `ok` made, CSeq `cseq`.
fn resubscribe(ok: &Message, cseq: u32, expires: u32) -> Message {
    let mut m = in_dialog("SUBSCRIBE", ok, ALICE, cseq, &format!("resub-{cseq}"));
    m.push(HeaderName::Event, "dialog");
    m.push(HeaderName::Expires, expires.to_string());
    m
}

/// A harness whose dialplan has the hint `6001@phones` (alice's context),
/// in state `state`.
fn with_hint(state: i32) -> Harness {
    let mut h = Harness::new(SIP_TOML);
    h.env
        .hints
        .insert(("phones".to_string(), "6001".to_string()), state);
    h
}

/// The NOTIFY sent since the last look (none other), not answered yet.
fn one_notify(h: &mut Harness) -> Message {
    let n = h.expect_one(ALICE);
    assert_eq!(n.method(), Some(&Method::Notify), "{n:?}");
    n
}

fn header(m: &Message, name: HeaderName) -> &str {
    m.headers.get(&name).unwrap_or("")
}

fn body(m: &Message) -> String {
    String::from_utf8(m.body.clone()).unwrap()
}

/// Alice subscribes to 6001 for 600 s: the 200 and the first NOTIFY.
fn subscribed(h: &mut Harness) -> (Message, Message) {
    subscribed_as(h, "blf-1")
}

/// The same with Call-ID `call_id`.
fn subscribed_as(h: &mut Harness, call_id: &str) -> (Message, Message) {
    h.recv(
        &subscribe(
            "6001",
            call_id,
            "Event: dialog\nAccept: application/dialog-info+xml\nExpires: 600\n",
        ),
        ALICE,
    );
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let (ok, notify) = (sent[0].1.clone(), sent[1].1.clone());
    assert_eq!(ok.code(), Some(200));
    (ok, notify)
}

/// The subscription's key, from the watch the endpoint made.
fn key(h: &Harness) -> u64 {
    assert_eq!(h.env.watches.len(), 1);
    *h.env.watches.values().next().unwrap()
}

/// The 200, then a NOTIFY of the state now (version 0, active with the
/// time left); each change of the hint is a NOTIFY with the next version;
/// changes while one is unanswered collapse into the latest; a change the
/// lamp does not show sends nothing.
#[test]
fn a_subscription_is_granted_then_notified_of_each_change() {
    let mut h = with_hint(0);
    let (ok, notify) = subscribed(&mut h);
    assert_eq!(header(&ok, HeaderName::Expires), "600");
    assert!(ok.to_ref().unwrap().tag().is_some());
    assert_eq!(
        header(&ok, HeaderName::Contact),
        "<sip:6001@127.0.0.1:5060>"
    );
    // The NOTIFY: in the dialog (From is the 200's To), to the Contact.
    assert_eq!(
        notify.request_uri(),
        Some(format!("sip:alice@{ALICE}").as_str())
    );
    assert_eq!(header(&notify, HeaderName::Event), "dialog");
    assert_eq!(
        header(&notify, HeaderName::SubscriptionState),
        "active;expires=600"
    );
    assert_eq!(
        header(&notify, HeaderName::ContentType),
        "application/dialog-info+xml"
    );
    assert_eq!(
        notify.from_header().unwrap().tag(),
        ok.to_ref().unwrap().tag()
    );
    assert_eq!(
        body(&notify),
        "<?xml version=\"1.0\"?>\n\
         <dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"0\" state=\"full\" entity=\"sip:6001@127.0.0.1:5060\">\n\
         <dialog id=\"6001\">\n<state>terminated</state>\n</dialog>\n</dialog-info>\n"
    );
    h.recv(&reply(&notify, 200, "OK", "lamp"), ALICE);
    assert!(h.sent().is_empty());

    let k = key(&h);
    h.advance_to(10_000);
    h.input(Input::HintChanged { key: k, state: 8 });
    let ringing = one_notify(&mut h);
    assert!(body(&ringing).contains("version=\"1\""));
    assert!(body(&ringing).contains("direction=\"recipient\">\n<state>early</state>"));
    assert_eq!(
        header(&ringing, HeaderName::SubscriptionState),
        "active;expires=590"
    );
    // Answered, on hold, while the ringing NOTIFY is unanswered.
    h.input(Input::HintChanged { key: k, state: 1 });
    h.input(Input::HintChanged { key: k, state: 16 });
    assert!(h.sent().is_empty(), "one NOTIFY in flight");
    h.recv(&reply(&ringing, 200, "OK", "lamp"), ALICE);
    let held = one_notify(&mut h);
    assert!(body(&held).contains("version=\"2\""));
    assert!(body(&held).contains("+sip.rendering"), "{}", body(&held));
    h.recv(&reply(&held, 200, "OK", "lamp"), ALICE);
    // Busy shows as in use; in use again sends nothing new.
    h.input(Input::HintChanged { key: k, state: 2 });
    let busy = one_notify(&mut h);
    assert!(body(&busy).contains("<state>confirmed</state>\n</dialog>"));
    h.recv(&reply(&busy, 200, "OK", "lamp"), ALICE);
    h.input(Input::HintChanged { key: k, state: 1 });
    assert!(h.sent().is_empty(), "the lamp shows the same");
}

/// A refresh gets a 200 with the new grant and a NOTIFY of the state now;
/// without another, the subscription ends at the exact instant it runs
/// out: a final NOTIFY `terminated;reason=timeout`, the watch ended, the
/// dialog gone (a late refresh gets 481).
#[test]
fn a_refresh_extends_it_and_without_one_it_times_out() {
    let mut h = with_hint(1);
    let (ok, notify) = subscribed(&mut h);
    assert!(body(&notify).contains("<state>confirmed</state>"));
    h.recv(&reply(&notify, 200, "OK", "lamp"), ALICE);
    h.advance_to(500_000);
    h.recv(&resubscribe(&ok, 2, 120), ALICE);
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[0].1.code(), Some(200));
    assert_eq!(header(&sent[0].1, HeaderName::Expires), "120");
    let again = &sent[1].1;
    assert_eq!(
        header(again, HeaderName::SubscriptionState),
        "active;expires=120"
    );
    assert!(body(again).contains("version=\"1\""));
    h.recv(&reply(again, 200, "OK", "lamp"), ALICE);
    // The first grant's deadline (600 s) passes: nothing.
    h.advance_to(619_999);
    assert!(h.sent().is_empty());
    // 500 s + 120 s.
    h.advance_to(620_000);
    let last = one_notify(&mut h);
    assert_eq!(
        header(&last, HeaderName::SubscriptionState),
        "terminated;reason=timeout"
    );
    assert!(body(&last).contains("<state>confirmed</state>"));
    assert!(h.env.watches.is_empty(), "the watch ended with it");
    h.recv(&reply(&last, 200, "OK", "lamp"), ALICE);
    assert_eq!(h.ep.subscriptions.len(), 0);
    assert!(h.ep.sub_timers.is_empty());
    h.recv(&resubscribe(&ok, 3, 120), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(481));
}

/// `Expires: 0` in the dialog ends it: 200 with `Expires: 0`, a final
/// NOTIFY of the state now; and a SUBSCRIBE with `Expires: 0` outside a
/// dialog is a fetch: the state once, terminated.
#[test]
fn expires_zero_unsubscribes_and_a_fetch_gets_the_state_once() {
    let mut h = with_hint(0);
    let (ok, notify) = subscribed(&mut h);
    h.recv(&reply(&notify, 200, "OK", "lamp"), ALICE);
    h.recv(&resubscribe(&ok, 2, 0), ALICE);
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(header(&sent[0].1, HeaderName::Expires), "0");
    assert_eq!(
        header(&sent[1].1, HeaderName::SubscriptionState),
        "terminated;reason=timeout"
    );
    h.recv(&reply(&sent[1].1, 200, "OK", "lamp"), ALICE);
    assert_eq!(h.ep.subscriptions.len(), 0);

    h.recv(
        &subscribe("6001", "fetch-1", "Event: dialog\nExpires: 0\n"),
        ALICE,
    );
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(header(&sent[0].1, HeaderName::Expires), "0");
    assert_eq!(
        header(&sent[1].1, HeaderName::SubscriptionState),
        "terminated;reason=timeout"
    );
    h.recv(&reply(&sent[1].1, 200, "OK", "lamp"), ALICE);
    assert_eq!(h.ep.subscriptions.len(), 0);
}

/// A NOTIFY answered 481 ends the subscription silently; one never
/// answered (Timer F) too; another error leaves it as it was.
#[test]
fn a_481_or_no_answer_to_a_notify_ends_it() {
    let mut h = with_hint(0);
    let (_, notify) = subscribed(&mut h);
    h.recv(&reply(&notify, 500, "Server Error", "lamp"), ALICE);
    assert_eq!(h.ep.subscriptions.len(), 1, "a 500 changes nothing");
    let k = key(&h);
    h.input(Input::HintChanged { key: k, state: 8 });
    let n = one_notify(&mut h);
    h.recv(
        &reply(&n, 481, "Subscription Does Not Exist", "lamp"),
        ALICE,
    );
    assert_eq!(h.ep.subscriptions.len(), 0);
    assert!(h.env.watches.is_empty());
    assert!(h.sent().is_empty());

    // A 489 (RFC 5057: the usage is gone) ends it too.
    let (_, notify) = subscribed_as(&mut h, "blf-3");
    h.recv(&reply(&notify, 489, "Bad Event", "lamp"), ALICE);
    assert_eq!(h.ep.subscriptions.len(), 0);
    assert!(h.env.watches.is_empty());

    let (_, notify) = subscribed_as(&mut h, "blf-2");
    let _ = notify; // never answered
    h.advance_to(40_000);
    assert_eq!(h.ep.subscriptions.len(), 0);
    assert!(h.env.watches.is_empty());
}

/// An unsubscribe or a refresh while a NOTIFY is unanswered: the 200 at
/// once, the NOTIFY it asks for after the answer (one in flight); a refresh
/// too short gets 423 and changes nothing.
#[test]
fn a_refresh_or_unsubscribe_while_a_notify_is_in_flight_waits_for_it() {
    let mut h = with_hint(0);
    let (ok, notify) = subscribed(&mut h);
    h.recv(&reply(&notify, 200, "OK", "lamp"), ALICE);
    let k = key(&h);
    // The core's state changes, and it tells the watch.
    h.env
        .hints
        .insert(("phones".to_string(), "6001".to_string()), 8);
    h.input(Input::HintChanged { key: k, state: 8 });
    let ringing = one_notify(&mut h);
    h.recv(&resubscribe(&ok, 2, 10), ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(423));
    h.recv(&resubscribe(&ok, 3, 300), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(200));
    h.recv(&reply(&ringing, 200, "OK", "lamp"), ALICE);
    let again = one_notify(&mut h);
    assert_eq!(
        header(&again, HeaderName::SubscriptionState),
        "active;expires=300"
    );
    assert!(body(&again).contains("<state>early</state>"));
    h.recv(&resubscribe(&ok, 4, 0), ALICE);
    let sent = h.sent();
    assert_eq!(sent.len(), 1, "only the 200: {sent:#?}");
    assert_eq!(header(&sent[0].1, HeaderName::Expires), "0");
    assert!(!header(&sent[0].1, HeaderName::Contact).is_empty());
    assert!(h.env.watches.is_empty(), "unwatched at once");
    h.recv(&reply(&again, 200, "OK", "lamp"), ALICE);
    let last = one_notify(&mut h);
    assert_eq!(
        header(&last, HeaderName::SubscriptionState),
        "terminated;reason=timeout"
    );
    h.recv(&reply(&last, 200, "OK", "lamp"), ALICE);
    assert_eq!(h.ep.subscriptions.len(), 0);
    assert!(h.ep.sub_timers.is_empty());
}

/// The module stops: every subscriber hears `terminated;reason=deactivated`
/// (one whose NOTIFY is unanswered once it is answered), the watches end;
/// a SUBSCRIBE meanwhile gets 503.
#[test]
fn shutdown_ends_every_subscription() {
    let mut h = with_hint(0);
    let (_, first) = subscribed(&mut h);
    h.recv(&reply(&first, 200, "OK", "lamp"), ALICE);
    let (_, pending) = subscribed_as(&mut h, "blf-2");
    h.ep.shared
        .stopping
        .store(true, std::sync::atomic::Ordering::SeqCst);
    h.input(Input::Shutdown);
    assert!(h.env.watches.is_empty());
    assert!(h.ep.subscriptions_ending());
    let n = one_notify(&mut h);
    assert_eq!(
        header(&n, HeaderName::SubscriptionState),
        "terminated;reason=deactivated"
    );
    h.recv(&reply(&n, 200, "OK", "lamp"), ALICE);
    h.recv(&reply(&pending, 200, "OK", "lamp"), ALICE);
    let n = one_notify(&mut h);
    assert_eq!(
        header(&n, HeaderName::SubscriptionState),
        "terminated;reason=deactivated"
    );
    h.recv(&reply(&n, 200, "OK", "lamp"), ALICE);
    assert!(!h.ep.subscriptions_ending());
    h.recv(&subscribe("6001", "late", "Event: dialog\n"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(503));
    assert!(h.env.watches.is_empty());
}

/// The SUBSCRIBE's `Event` id comes back on every NOTIFY; a BYE in the
/// subscription's dialog gets 481 and leaves it; a refresh finding the hint
/// gone gets 404 and the subscription ends (`noresource`); a SUBSCRIBE in
/// a call's dialog is refused.
#[test]
fn event_ids_byes_and_a_hint_gone() {
    let mut h = with_hint(0);
    h.recv(
        &subscribe("6001", "id-1", "Event: dialog;id=42\nExpires: 600\n"),
        ALICE,
    );
    let sent = h.sent();
    let (ok, n) = (sent[0].1.clone(), sent[1].1.clone());
    assert_eq!(header(&n, HeaderName::Event), "dialog;id=42");
    h.recv(&reply(&n, 200, "OK", "lamp"), ALICE);
    h.recv(&in_dialog("BYE", &ok, ALICE, 2, "bye-sub"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(481));
    assert_eq!(h.ep.subscriptions.len(), 1);
    h.env.hints.clear(); // a reload took the hint away
    let mut refresh = resubscribe(&ok, 3, 600);
    refresh.headers.set(HeaderName::Event, "dialog;id=42");
    h.recv(&refresh, ALICE);
    let sent = h.sent();
    assert_eq!(sent[0].1.code(), Some(404));
    assert_eq!(
        header(&sent[1].1, HeaderName::SubscriptionState),
        "terminated;reason=noresource"
    );
    h.recv(&reply(&sent[1].1, 200, "OK", "lamp"), ALICE);
    assert_eq!(h.ep.subscriptions.len(), 0);
    assert!(h.env.watches.is_empty());

    let (_, ok) = answered_inbound(&mut h);
    let mut sub = in_dialog("SUBSCRIBE", &ok, ALICE, 2, "sub-in-call");
    sub.push(HeaderName::Event, "dialog");
    h.recv(&sub, ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(403));
}

/// What a SUBSCRIBE is refused with: another package 489 naming ours; a
/// body type it cannot read 406; too short 423 with Min-Expires; no hint
/// 404; a peer that may not subscribe 403; an unknown user the same
/// challenge as a wrong password (401).
#[test]
fn refusals_say_why() {
    let mut h = with_hint(0);
    let refused = |h: &mut Harness, exten: &str, extra: &str, n: usize| {
        h.recv(&subscribe(exten, &format!("no-{n}"), extra), ALICE);
        h.expect_one(ALICE)
    };
    let r = refused(&mut h, "6001", "Event: as-feature-event\n", 1);
    assert_eq!(r.code(), Some(489));
    assert_eq!(
        header(&r, HeaderName::AllowEvents),
        "dialog, presence, message-summary, call-info"
    );
    let r = refused(&mut h, "6001", "", 2);
    assert_eq!(r.code(), Some(489), "no Event");
    let r = refused(
        &mut h,
        "6001",
        "Event: dialog\nAccept: application/pidf+xml\n",
        3,
    );
    assert_eq!(r.code(), Some(406));
    let r = refused(&mut h, "6001", "Event: dialog\nExpires: 10\n", 4);
    assert_eq!(r.code(), Some(423));
    assert_eq!(header(&r, HeaderName::MinExpires), "60");
    let r = refused(&mut h, "6002", "Event: dialog\n", 5);
    assert_eq!(r.code(), Some(404));
    assert!(h.env.watches.is_empty());
    assert_eq!(h.ep.subscriptions.len(), 0);

    let toml = SIP_TOML.replace(
        "context = \"phones\"\n",
        "context = \"phones\"\nallowsubscribe = false\n",
    );
    let mut h = Harness::new(&toml);
    h.recv(&subscribe("6001", "no-6", "Event: dialog\n"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(403));

    // Carol is nobody: challenged as bob would be for a wrong password.
    let mut h = with_hint(0);
    let mut m = subscribe("6001", "no-7", "Event: dialog\n");
    let from = header(&m, HeaderName::From).replace("alice", "carol");
    m.headers.set(HeaderName::From, from);
    h.recv(&m, "127.0.0.1:5099");
    let r = h.expect_one("127.0.0.1:5099");
    assert_eq!(r.code(), Some(401));
}

/// `Event: presence` gets PIDF bodies (RFC 3863): open and ready, busy "On
/// the phone", closed and away when unavailable; busy and in use show the
/// same, so the second sends nothing. A dialog-info Accept for presence is
/// refused (406), and a refresh naming another package gets 489.
#[test]
fn presence_subscriptions_get_pidf() {
    let mut h = with_hint(0);
    h.recv(
        &subscribe(
            "6001",
            "pres-1",
            "Event: presence\nAccept: application/pidf+xml\nExpires: 300\n",
        ),
        ALICE,
    );
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let (ok, n) = (&sent[0].1, &sent[1].1);
    assert_eq!(header(n, HeaderName::Event), "presence");
    assert_eq!(header(n, HeaderName::ContentType), "application/pidf+xml");
    assert!(body(n).contains("<note>Ready</note>"), "{}", body(n));
    assert!(body(n).contains("<basic>open</basic>"));
    assert!(body(n).contains("entity=\"sip:6001@127.0.0.1:5060\""));
    h.recv(&reply(n, 200, "OK", "lamp"), ALICE);
    let k = key(&h);
    h.input(Input::HintChanged { key: k, state: 1 });
    let n = one_notify(&mut h);
    assert!(body(&n).contains("<ep:activities><ep:busy/></ep:activities>"));
    assert!(body(&n).contains("<note>On the phone</note>"));
    h.recv(&reply(&n, 200, "OK", "lamp"), ALICE);
    h.input(Input::HintChanged { key: k, state: 2 });
    assert!(h.sent().is_empty(), "busy shows as in use");
    h.input(Input::HintChanged { key: k, state: 4 });
    let n = one_notify(&mut h);
    assert!(body(&n).contains("<basic>closed</basic>"));
    h.recv(&reply(&n, 200, "OK", "lamp"), ALICE);
    let mut other = resubscribe(ok, 2, 300);
    other.headers.set(HeaderName::Event, "dialog");
    h.recv(&other, ALICE);
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(489));
    assert_eq!(header(&r, HeaderName::AllowEvents), "presence");
    let rows = h.ep.subscription_rows();
    assert!(rows[0].1.iter().any(|c| c == "pidf+xml"), "{rows:?}");

    h.recv(
        &subscribe(
            "6001",
            "pres-2",
            "Event: presence\nAccept: application/dialog-info+xml\n",
        ),
        ALICE,
    );
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(406));
    assert_eq!(header(&r, HeaderName::Accept), "application/pidf+xml");
}

/// `sip show subscriptions`, chan_sip's columns: the subscriber's IP, its
/// user, the Call-ID, the hint, its state by Asterisk's name, the body
/// type, no mailbox, the granted expiry in six digits.
#[test]
fn sip_show_subscriptions_lists_them_as_chan_sip_does() {
    let mut h = with_hint(1);
    let (_, notify) = subscribed(&mut h);
    h.recv(&reply(&notify, 200, "OK", "lamp"), ALICE);
    let out = crate::session::render_subscriptions(&crate::session::subscriptions_table(
        h.ep.subscription_rows(),
    ));
    assert_eq!(
        out,
        "Peer             User             Call ID          Extension        Last state     Type            Mailbox    Expiry\n\
         127.0.0.1        alice            blf-1            6001@phones      InUse          dialog-info+xml <none>     000600\n\
         1 active SIP subscription\n"
    );
    assert_eq!(
        crate::session::render_subscriptions(&crate::session::subscriptions_table(Vec::new()))
            .lines()
            .last(),
        Some("0 active SIP subscriptions")
    );
}

/// Alice with `mailbox = "1234"`, her mailbox holding `counts` in the core.
fn with_mailbox(new: u32, old: u32) -> Harness {
    let toml = SIP_TOML.replace(
        "context = \"phones\"\n",
        "context = \"phones\"\nmailbox = \"1234\"\n",
    );
    let shared = shared(&toml);
    crate::driver::reconcile(&shared, Instant::now());
    let mut h = Harness::on_env(shared, crate::shards::Home::SINGLE, |env| {
        env.mailboxes
            .insert("1234".into(), sirius_sip::mwi::Counts { new, old });
    });
    h.collect();
    h
}

/// Without a subscription, a peer with a mailbox is told its counts when
/// the module starts and whenever they change, in a NOTIFY outside any
/// dialog (no Subscription-State), as chan_sip's unsolicited MWI; once it
/// subscribes to message-summary, only the subscription tells it.
#[test]
fn a_peer_with_a_mailbox_is_told_its_messages_unsolicited() {
    use crate::endpoint::MwiTarget;
    use sirius_sip::mwi::Counts;
    let mut h = with_mailbox(2, 1);
    let n = one_notify(&mut h);
    assert_eq!(header(&n, HeaderName::Event), "message-summary");
    assert_eq!(
        header(&n, HeaderName::ContentType),
        "application/simple-message-summary"
    );
    assert_eq!(header(&n, HeaderName::SubscriptionState), "");
    assert!(n.to_ref().unwrap().tag().is_none(), "outside any dialog");
    assert_eq!(
        body(&n),
        "Messages-Waiting: yes\r\nMessage-Account: sip:asterisk@127.0.0.1:5060\r\nVoice-Message: 2/1 (0/0)\r\n"
    );
    let alice = h
        .env
        .mwi_watches
        .values()
        .find(|t| matches!(t, MwiTarget::Peer(..)))
        .cloned()
        .unwrap();
    h.input(Input::MwiChanged {
        target: alice.clone(),
        counts: Counts { new: 0, old: 3 },
    });
    let n = one_notify(&mut h);
    assert!(body(&n).starts_with("Messages-Waiting: no\r\n"));
    assert!(body(&n).contains("Voice-Message: 0/3 (0/0)"));

    // She subscribes: the subscription's NOTIFYs, and no unsolicited ones.
    h.recv(
        &subscribe(
            "1234",
            "mwi-1",
            "Event: message-summary\nAccept: application/simple-message-summary\nExpires: 600\n",
        ),
        ALICE,
    );
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    let first = &sent[1].1;
    assert_eq!(header(first, HeaderName::Event), "message-summary");
    assert_eq!(
        header(first, HeaderName::SubscriptionState),
        "active;expires=600"
    );
    assert!(
        body(first).contains("Voice-Message: 2/1 (0/0)"),
        "the core's counts now"
    );
    h.recv(&reply(first, 200, "OK", "lamp"), ALICE);
    let sub = *h
        .env
        .mwi_watches
        .iter()
        .find_map(|(_, t)| match t {
            MwiTarget::Subscription(k) => Some(k),
            _ => None,
        })
        .unwrap();
    h.input(Input::MwiChanged {
        target: alice.clone(),
        counts: Counts { new: 1, old: 3 },
    });
    h.input(Input::MwiChanged {
        target: MwiTarget::Subscription(sub),
        counts: Counts { new: 1, old: 3 },
    });
    let n = one_notify(&mut h);
    assert_eq!(
        header(&n, HeaderName::SubscriptionState),
        "active;expires=600",
        "the subscription's, not an unsolicited one"
    );
    assert!(body(&n).contains("Voice-Message: 1/3 (0/0)"));
    h.recv(&reply(&n, 200, "OK", "lamp"), ALICE);
    let rows = h.ep.subscription_rows();
    assert!(
        rows[0].1[3..] == ["--", "<none>", "mwi", "1234", "000600"],
        "{rows:?}"
    );
    // A refresh keeps the mailbox; the subscription ends (Expires: 0):
    // unsolicited NOTIFYs again.
    h.recv(&resubscribe_mwi(&sent[0].1, 2, 600), ALICE);
    let again = h.sent();
    assert_eq!(again[0].1.code(), Some(200));
    h.recv(&reply(&again[1].1, 200, "OK", "lamp"), ALICE);
    h.recv(&resubscribe_mwi(&sent[0].1, 3, 0), ALICE);
    let last = h.sent();
    assert_eq!(
        header(&last[1].1, HeaderName::SubscriptionState),
        "terminated;reason=timeout"
    );
    h.recv(&reply(&last[1].1, 200, "OK", "lamp"), ALICE);
    assert!(!h.ep.shared.mwi.is_subscribed("alice"));
    h.input(Input::MwiChanged {
        target: alice.clone(),
        counts: Counts { new: 0, old: 4 },
    });
    let n = one_notify(&mut h);
    assert_eq!(header(&n, HeaderName::SubscriptionState), "", "unsolicited");
    assert!(body(&n).contains("Voice-Message: 0/4 (0/0)"));
    // A change heard from a watch a reload replaced is dropped.
    let MwiTarget::Peer(name, generation) = alice else {
        unreachable!()
    };
    h.input(Input::MwiChanged {
        target: MwiTarget::Peer(name, generation + 1),
        counts: Counts { new: 9, old: 9 },
    });
    assert!(h.sent().is_empty());
    h.input(Input::Shutdown);
    assert!(h.env.mwi_watches.is_empty(), "every mailbox watch ended");
}

/// A message-summary SUBSCRIBE in the dialog `ok` made.
fn resubscribe_mwi(ok: &Message, cseq: u32, expires: u32) -> Message {
    let mut m = resubscribe(ok, cseq, expires);
    m.headers.set(HeaderName::Event, "message-summary");
    m
}

/// A peer without a mailbox subscribing to message-summary: 404.
#[test]
fn message_summary_without_a_mailbox_is_404() {
    let mut h = with_hint(0);
    h.recv(
        &subscribe("1234", "mwi-2", "Event: message-summary\n"),
        ALICE,
    );
    let r = h.expect_one(ALICE);
    assert_eq!(r.code(), Some(404));
    assert!(r
        .to_bytes()
        .starts_with(b"SIP/2.0 404 Not Found (no mailbox)\r\n"));
}

/// A message-summary subscription refreshed after a reload changed its
/// peer's `mailbox` watches the new mailboxes; one refreshed after the key
/// was removed gets 404 and ends (`noresource`).
#[test]
fn a_refresh_follows_the_peers_mailbox_after_a_reload() {
    let mut h = with_mailbox(2, 1);
    let n = one_notify(&mut h); // unsolicited, at start
    h.recv(&reply(&n, 200, "OK", "lamp"), ALICE);
    h.env.mailboxes.insert(
        "77@sales".into(),
        sirius_sip::mwi::Counts { new: 5, old: 0 },
    );
    h.recv(
        &subscribe("1234", "mwi-3", "Event: message-summary\nExpires: 600\n"),
        ALICE,
    );
    let sent = h.sent();
    let ok = sent[0].1.clone();
    h.recv(&reply(&sent[1].1, 200, "OK", "lamp"), ALICE);
    let moved = SIP_TOML.replace(
        "context = \"phones\"\n",
        "context = \"phones\"\nmailbox = \"77@sales\"\n",
    );
    h.reload(&moved);
    h.sent(); // shard 0's own watch moved too (its peer is subscribed: no NOTIFY)
    h.recv(&resubscribe_mwi(&ok, 2, 600), ALICE);
    let sent = h.sent();
    assert_eq!(sent[0].1.code(), Some(200));
    assert!(body(&sent[1].1).contains("Voice-Message: 5/0 (0/0)"));
    h.recv(&reply(&sent[1].1, 200, "OK", "lamp"), ALICE);
    let rows = h.ep.subscription_rows();
    assert!(rows[0].1[6] == "77@sales", "{rows:?}");
    h.reload(SIP_TOML);
    h.recv(&resubscribe_mwi(&ok, 3, 600), ALICE);
    let sent = h.sent();
    assert_eq!(sent[0].1.code(), Some(404));
    assert_eq!(
        header(&sent[1].1, HeaderName::SubscriptionState),
        "terminated;reason=noresource"
    );
    h.recv(&reply(&sent[1].1, 200, "OK", "lamp"), ALICE);
    assert!(h.env.mwi_watches.is_empty());
}
