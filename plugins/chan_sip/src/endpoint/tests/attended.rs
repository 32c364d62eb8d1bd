//! Attended transfer (session/attended.rs): a REFER whose Refer-To names
//! the transferor's other call in `Replaces`, that call on this shard or on
//! another.

use super::*;
use crate::shards::{shard_of, Home};

/// Alice's call with Call-ID `call_id`, answered and bridged to an outbound
/// leg `out` to bob: alice's channel, our 200 to her.
fn alice_call(h: &mut Harness, call_id: &str, out: u64) -> (ChannelId, ChannelId, Message) {
    let n = h.env.started.len();
    h.recv(&alice_invite("100", call_id), ALICE);
    let a = h.env.started[n];
    h.input(Input::Answer(a));
    let ok = h.expect_one(ALICE);
    let mut ack = in_dialog("ACK", &ok, ALICE, 1, &format!("ack-{call_id}"));
    ack.set_body("application/sdp", Vec::new());
    h.recv(&ack, ALICE);
    let (b, _) = answered_outbound(h, out);
    h.input(Input::Bridge(a, b));
    h.take();
    (a, b, ok)
}

/// `Refer-To` naming the dialog our 200 `ok` set up with alice, escaped
/// as RFC 5589 §7 shows.
fn replacing(ok: &Message) -> String {
    let ours = ok.to_ref().unwrap().tag().unwrap().to_string();
    format!(
        "<sip:bob@127.0.0.1?Replaces={}%3Bto-tag%3D{ours}%3Bfrom-tag%3Da1>",
        ok.call_id().unwrap()
    )
}

fn refer_with(ok: &Message, cseq: u32, refer_to: &str) -> Message {
    let mut r = in_dialog("REFER", ok, ALICE, cseq, &format!("refer{cseq}"));
    r.push(HeaderName::ReferTo, refer_to);
    r
}

/// The NOTIFYs sent to alice, answered 200 as they come, until the final
/// one: their sipfrag bodies.
fn reports(h: &mut Harness) -> Vec<String> {
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let notifies: Vec<Message> = h
            .sent()
            .into_iter()
            .filter(|(_, m)| m.method() == Some(&Method::Notify))
            .map(|(_, m)| m)
            .collect();
        for n in notifies {
            bodies.push(String::from_utf8(n.body.clone()).unwrap());
            h.recv(&reply(&n, 200, "OK", "a1"), ALICE);
        }
        if bodies.iter().any(|b| !b.contains("100 Trying")) {
            break;
        }
    }
    bodies
}

/// Alice talks to bob (call 1) and to bob again (call 2), then REFERs
/// call 1 to call 2: the core joins the two far ends, and alice hears 202,
/// NOTIFY 100 and NOTIFY 200; a Replaces naming no call gets 481.
#[test]
fn an_attended_transfer_reports_200_and_a_missing_call_481() {
    let mut h = Harness::new(SIP_TOML);
    let (a1, _, ok1) = alice_call(&mut h, "in-1", 100);
    let (a2, _, ok2) = alice_call(&mut h, "in-2", 200);
    h.recv(&refer_with(&ok1, 2, &replacing(&ok2)), ALICE);
    assert_eq!(
        reports(&mut h),
        ["SIP/2.0 100 Trying\r\n", "SIP/2.0 200 OK\r\n"]
    );
    assert_eq!(h.env.attended, vec![(a1, a2)]);

    // A Replaces naming no call: 481, nothing asked of the core.
    let mut h = Harness::new(SIP_TOML);
    let (_, _, ok1) = alice_call(&mut h, "in-1", 100);
    let ghost = "<sip:bob@127.0.0.1?Replaces=nope%3Bto-tag%3Dx%3Bfrom-tag%3Dy>";
    h.recv(&refer_with(&ok1, 2, ghost), ALICE);
    assert_eq!(
        reports(&mut h),
        [
            "SIP/2.0 100 Trying\r\n",
            "SIP/2.0 481 Call/Transaction Does Not Exist\r\n"
        ]
    );
    assert!(h.env.attended.is_empty());
    // Naming its own call: 400 before any 202.
    h.recv(&refer_with(&ok1, 3, &replacing(&ok1)), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(400));
}

/// A REFER may only join the sender's own calls: naming a dialog of
/// another peer's (here the PBX's leg to bob) is refused with 403.
#[test]
fn naming_another_peers_call_is_forbidden() {
    let mut h = Harness::new(SIP_TOML);
    let (_, _, ok1) = alice_call(&mut h, "in-1", 100);
    // Bob's leg of call 1: our dialog with him (our From tag, his To tag b1).
    let bob_leg =
        h.ep.sessions
            .get(ChannelId(100))
            .unwrap()
            .dialog
            .clone()
            .unwrap();
    let refer_to = format!(
        "<sip:x@127.0.0.1?Replaces={}%3Bto-tag%3D{}%3Bfrom-tag%3D{}>",
        bob_leg.call_id.replace('@', "%40"),
        bob_leg.local_tag,
        bob_leg.remote_tag
    );
    h.recv(&refer_with(&ok1, 2, &refer_to), ALICE);
    assert_eq!(
        reports(&mut h),
        ["SIP/2.0 100 Trying\r\n", "SIP/2.0 403 Forbidden\r\n"]
    );
    assert!(h.env.attended.is_empty());
}

/// A Call-ID that hashes to shard `k` of two.
fn call_id_on(k: usize, prefix: &str) -> String {
    (0..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|id| shard_of(id.as_bytes(), 2) == k)
        .unwrap()
}

/// Moves every message between shards, as the drivers do, until none is
/// left: what each shard sent the other arrives as an input there.
fn pump(shards: &mut [&mut Harness; 2]) {
    loop {
        let mut moved = false;
        for i in 0..2 {
            let mut rest = VecDeque::new();
            let mut msgs = Vec::new();
            for o in shards[i].pending.drain(..) {
                match o {
                    Output::Shard(k, m) => msgs.push((k, m)),
                    other => rest.push_back(other),
                }
            }
            shards[i].pending = rest;
            for (k, m) in msgs {
                moved = true;
                shards[k].input(Input::Shard(m));
            }
        }
        if !moved {
            return;
        }
    }
}

/// Call 1 on the first shard, call 2 on the second: the first asks the
/// second (ShardMsg::Find) and makes the transfer once it answers; with no
/// answer in 2 s the call named counts as not found.
#[test]
fn the_other_call_is_found_on_its_own_shard() {
    let shared = shared_over(SIP_TOML, 2);
    crate::driver::reconcile(&shared, Instant::now());
    let mut first = Harness::on(shared.clone(), Home { index: 0, count: 2 });
    let mut second = Harness::on(shared.clone(), Home { index: 1, count: 2 });
    let (a1, _, ok1) = alice_call(&mut first, &call_id_on(0, "one"), 100);
    let (a2, b2, ok2) = alice_call(&mut second, &call_id_on(1, "two"), 200);
    shared.shards.settle(b2, 1);
    // The core's view: a2 is bridged to b2 (the first shard's fake core
    // answers the transfer from its own table).
    first.env.bridges.insert(a2, b2);
    first.recv(&refer_with(&ok1, 2, &replacing(&ok2)), ALICE);
    assert!(first.env.attended.is_empty(), "asked the other shard first");
    pump(&mut [&mut first, &mut second]);
    assert_eq!(first.env.attended, vec![(a1, a2)]);
    assert_eq!(
        reports(&mut first),
        ["SIP/2.0 100 Trying\r\n", "SIP/2.0 200 OK\r\n"]
    );

    // The second shard never answers: 481 after 2 s.
    let shared = shared_over(SIP_TOML, 2);
    let mut lone = Harness::on(shared, Home { index: 0, count: 2 });
    let (_, _, ok1) = alice_call(&mut lone, &call_id_on(0, "three"), 100);
    let far = format!(
        "<sip:bob@127.0.0.1?Replaces={}%3Bto-tag%3Dx%3Bfrom-tag%3Da1>",
        call_id_on(1, "four")
    );
    lone.recv(&refer_with(&ok1, 2, &far), ALICE);
    let trying = lone.sent().pop().unwrap().1;
    lone.recv(&reply(&trying, 200, "OK", "a1"), ALICE);
    lone.advance_to(lone.elapsed_ms() as u64 + 1_999);
    assert!(lone.sent().is_empty());
    lone.advance_to(lone.elapsed_ms() as u64 + 1);
    let failed = lone.expect_one(ALICE);
    assert_eq!(
        failed.body,
        b"SIP/2.0 481 Call/Transaction Does Not Exist\r\n"
    );
}

/// A bridge across shards (the core joined legs of two after a transfer):
/// the lender hands its leg to the other shard's relay, the borrower
/// relays it with its own leg (or gives it back when that leg is gone),
/// and a hold on the lender's side reaches the borrower's leg through a
/// shard message.
#[test]
fn a_leg_of_another_shard_is_lent_to_the_relay_of_its_partner() {
    let shared = shared_over(SIP_TOML, 2);
    crate::driver::reconcile(&shared, Instant::now());
    let mut lender = Harness::on(shared.clone(), Home { index: 1, count: 2 });
    let (a, ok_a) = answered_inbound(&mut lender);
    lender.take();
    let theirs = ChannelId(77);
    shared.shards.settle(theirs, 0);
    lender.input(Input::Lend {
        chan: a,
        to: 0,
        partner: theirs,
    });
    let leg = match lender.media_actions().as_slice() {
        [MediaAction::Lend(leg, 0, p)] if leg.chan == a && *p == theirs => leg.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(leg.remote.addr, Some(addr("127.0.0.1:40000")));
    // A second bridge of the same leg is refused.
    lender.input(Input::Lend {
        chan: a,
        to: 0,
        partner: ChannelId(78),
    });
    assert!(lender.media_actions().is_empty());
    // Alice holds: the borrower's leg is told through its shard.
    let mut hold = in_dialog("INVITE", &ok_a, ALICE, 2, "hold");
    hold.set_body("application/sdp", sdp(40_000, "sendonly"));
    lender.recv(&hold, ALICE);
    assert!(lender
        .take()
        .iter()
        .any(|o| matches!(o, Output::Shard(0, ShardMsg::Hold(c, true)) if *c == theirs)));

    // The borrower relays it with its own leg…
    let mut borrower = Harness::on(shared.clone(), Home { index: 0, count: 2 });
    let (b, _) = answered_outbound(&mut borrower, 100);
    borrower.take();
    borrower.input(Input::Borrowed(leg.clone(), b));
    match borrower.media_actions().as_slice() {
        [MediaAction::Bridge(ours, lent)] => {
            assert_eq!((ours.chan, lent), (b, &leg));
        }
        other => panic!("{other:?}"),
    }
    // …or, its own leg gone by then, ends the loan at once.
    borrower.input(Input::Borrowed(leg, ChannelId(999)));
    assert_eq!(borrower.media_actions(), vec![MediaAction::Unbridge(a)]);
}

/// A blind transfer whose transferee lives on another shard (the two were
/// joined across shards by an earlier transfer): that shard reports the
/// transferee's ringing and answer back to the transferor's.
#[test]
fn a_transferee_of_another_shard_reports_its_progress_back() {
    let shared = shared_over(SIP_TOML, 2);
    crate::driver::reconcile(&shared, Instant::now());
    let mut first = Harness::on(shared.clone(), Home { index: 0, count: 2 });
    let mut second = Harness::on(shared.clone(), Home { index: 1, count: 2 });
    let (a, _, ok1) = alice_call(&mut first, &call_id_on(0, "one"), 100);
    let (_, t, _) = alice_call(&mut second, &call_id_on(1, "two"), 200);
    shared.shards.settle(t, 1);
    // The core's view: alice's first call is bridged to t now.
    first.env.bridges.insert(a, t);
    let mut refer = in_dialog("REFER", &ok1, ALICE, 2, "blind");
    refer.push(HeaderName::ReferTo, "<sip:6003@127.0.0.1>");
    first.recv(&refer, ALICE);
    assert_eq!(first.env.transfers.len(), 1);
    pump(&mut [&mut first, &mut second]);
    second.input(Input::Indicate(t, Indication::Ringing));
    pump(&mut [&mut first, &mut second]);
    assert_eq!(
        reports(&mut first),
        ["SIP/2.0 100 Trying\r\n", "SIP/2.0 180 Ringing\r\n"]
    );
    let (c, _) = answered_outbound(&mut second, 300);
    second.input(Input::Bridge(t, c));
    pump(&mut [&mut first, &mut second]);
    assert_eq!(reports(&mut first), ["SIP/2.0 200 OK\r\n"]);
    assert!(
        second.ep.refers.is_empty(),
        "the watch ended with the report"
    );
}

/// Semi-attended: alice REFERs call 1 to her consultation call while it
/// still rings. Her transferee goes to the consultation's extension as in
/// a blind transfer, and the ringing consultation call ends.
#[test]
fn a_refer_naming_a_ringing_consultation_call_falls_back_to_blind() {
    let mut h = Harness::new(SIP_TOML);
    let (a1, _, ok1) = alice_call(&mut h, "in-1", 100);
    h.recv(&alice_invite("6003", "in-2"), ALICE);
    let a2 = *h.env.started.last().unwrap();
    h.input(Input::Indicate(a2, Indication::Ringing));
    let ringing = h.expect_one(ALICE);
    let ours = ringing.to_ref().unwrap().tag().unwrap().to_string();
    let refer_to = format!("<sip:6003@127.0.0.1?Replaces=in-2%3Bto-tag%3D{ours}%3Bfrom-tag%3Da1>");
    h.recv(&refer_with(&ok1, 2, &refer_to), ALICE);
    assert!(h.env.attended.is_empty());
    assert_eq!(h.env.transfers.len(), 1);
    assert_eq!(
        (
            h.env.transfers[0].0,
            &*h.env.transfers[0].1,
            &*h.env.transfers[0].2
        ),
        (a1, "phones", "6003")
    );
    let sent = h.sent();
    assert!(
        sent.iter()
            .any(|(_, m)| m.code() == Some(603) && m.call_id() == Some("in-2")),
        "the consultation call ended: {sent:#?}"
    );
    assert!(h
        .host_actions()
        .contains(&HostAction::Hangup(a2, Cause::NORMAL_CLEARING)));
}
