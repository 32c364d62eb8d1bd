//! The endpoint as one shard of several (crate::shards): the Call-IDs it
//! makes come back to it, clients that are not calls run on the first shard
//! only, and what a limit counts is shared.

use super::*;
use crate::shards::{shard_of, Home};

const FIRST: Home = Home { index: 0, count: 2 };
const SECOND: Home = Home { index: 1, count: 2 };

fn call_id_shard(m: &Message) -> usize {
    shard_of(m.call_id().expect("a Call-ID").as_bytes(), 2)
}

/// The far end's answers find the shard by the Call-ID alone: every INVITE
/// a shard sends carries one that hashes to it.
#[test]
fn the_call_ids_a_shard_makes_hash_to_it() {
    for home in [FIRST, SECOND] {
        let shared = shared_over(SIP_TOML, 2);
        let mut h = Harness::on(shared, home);
        for chan in 100..120 {
            let (_, invite) = placed_outbound(&mut h, chan);
            assert_eq!(call_id_shard(&invite), home.index, "{invite}");
        }
    }
}

/// `[[register]]` lines and qualify pokes belong to the first shard (their
/// state is the module's, one copy): the second sends neither, ever, and
/// the first's REGISTER carries a Call-ID its registrar's answers bring
/// back to it.
#[test]
fn registrations_and_pokes_run_on_the_first_shard_only() {
    let toml = format!(
        "{SIP_TOML}qualify = 100\n\n[[register]]\nuser = \"carol\"\nsecret = \"pw\"\nhost = \"127.0.0.1\"\nport = 5070\n"
    );
    let shared = shared_over(&toml, 2);
    crate::driver::reconcile(&shared, Instant::now());
    let mut second = Harness::on(shared.clone(), SECOND);
    second.advance_to(120_000);
    assert!(second.sent().is_empty(), "the second shard sent nothing");
    let mut first = Harness::on(shared, FIRST);
    first.advance_to(120_000);
    let sent = first.sent();
    let register = sent
        .iter()
        .find(|(to, m)| *to == addr(CAROL) && m.method() == Some(&Method::Register))
        .expect("a REGISTER to carol");
    assert_eq!(call_id_shard(&register.1), 0);
    let poke = sent
        .iter()
        .find(|(to, m)| *to == addr(BOB) && m.method() == Some(&Method::Options))
        .expect("a poke to bob");
    assert_eq!(call_id_shard(&poke.1), 0);
}

/// A call-limit holds across shards: alice (call-limit 1) in a call on one
/// shard gets 480 for a second call that reaches the other, and once the
/// first call ends the next one goes in.
#[test]
fn a_call_limit_counts_the_calls_of_every_shard() {
    let toml = SIP_TOML.replace(
        "context = \"phones\"\n",
        "context = \"phones\"\ncall-limit = 1\n",
    );
    let shared = shared_over(&toml, 2);
    let mut first = Harness::on(shared.clone(), FIRST);
    let mut second = Harness::on(shared.clone(), SECOND);
    first.recv(&alice_invite("100", "in-1"), ALICE);
    assert_eq!(first.env.started.len(), 1);
    second.recv(&alice_invite("100", "in-2"), ALICE);
    let refused = second.expect_one(ALICE);
    assert_eq!(refused.code(), Some(480), "{refused}");
    assert!(second.env.started.is_empty());
    assert_eq!(shared.in_use.get("alice"), 1);
    // The first call ends (the dialplan hangs up): its place is free.
    let chan = first.env.started[0];
    first.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    assert_eq!(shared.in_use.get("alice"), 0);
    second.recv(&alice_invite("100", "in-3"), ALICE);
    assert_eq!(second.env.started.len(), 1, "admitted now");
    assert_eq!(shared.in_use.get("alice"), 1);
}
