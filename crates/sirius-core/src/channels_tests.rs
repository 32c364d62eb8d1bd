//! The channel registry's unit tests (kept beside channels.rs: that file
//! holds the registry, its variables and the wake-up signal).

use super::*;

#[test]
fn vars_stay_sorted_and_take_only_their_room() {
    let mut v = Vars::new();
    assert_eq!(v.insert("DIALSTATUS", "RINGING"), None);
    assert_eq!(v.insert("ANSWEREDTIME", "0"), None);
    assert_eq!(v.insert("DIALSTATUS", "ANSWER"), Some("RINGING".into()));
    assert_eq!(v.get("DIALSTATUS"), Some("ANSWER"));
    assert_eq!(v.get("NOPE"), None);
    assert_eq!(
        v.iter().collect::<Vec<_>>(),
        vec![("ANSWEREDTIME", "0"), ("DIALSTATUS", "ANSWER")]
    );
    assert_eq!(v.0.capacity(), 2, "one slot per variable, not a doubling");
    assert_eq!(v.remove("ANSWEREDTIME"), Some("0".into()));
    assert_eq!(v.remove("ANSWEREDTIME"), None);
    let copy: Vars = (&v).into_iter().collect();
    assert_eq!(copy, v);
}

fn spec(tech: &str, resource: &str, direction: Direction) -> ChannelSpec {
    ChannelSpec {
        tech: tech.into(),
        resource: resource.into(),
        state: ChannelState::Ring,
        direction,
        context: "demo".into(),
        exten: "600".into(),
        caller_num: "6001".into(),
        caller_name: "Alice".into(),
        codecs: vec![Codec::PCMU].into(),
        accountcode: "".into(),
    }
}

#[test]
fn a_gone_hook_runs_once_when_the_first_of_its_channels_goes() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    let r = ChannelRegistry::new();
    let a = r.alloc(&spec("SIP", "alice", Direction::Inbound)).id;
    let b = r.alloc(&spec("SIP", "bob", Direction::Outbound)).id;
    let runs = Arc::new(AtomicU32::new(0));
    let n = runs.clone();
    r.when_gone(&[a, b], a, move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(runs.load(Ordering::SeqCst), 0, "both still up");
    r.remove(b, Cause::NORMAL_CLEARING);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    r.remove(a, Cause::NORMAL_CLEARING);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "once only");
    assert_eq!(r.pending_gone_hooks(), 0);
    // Registered after a channel went: runs at once.
    let n = runs.clone();
    r.when_gone(&[a], a, move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn a_cancelled_gone_hook_never_runs_and_only_its_owners_hooks_are_cancelled() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let r = ChannelRegistry::new();
    let a = r.alloc(&spec("SIP", "a", Direction::Inbound)).id;
    let b = r.alloc(&spec("SIP", "b", Direction::Outbound)).id;
    let runs = std::sync::Arc::new(AtomicU32::new(0));
    let (ra, rb) = (runs.clone(), runs.clone());
    // a's dialplan waits on both legs; b's on b alone.
    r.when_gone(&[a, b], a, move || {
        ra.fetch_add(1, Ordering::SeqCst);
    });
    r.when_gone(&[b], b, move || {
        rb.fetch_add(10, Ordering::SeqCst);
    });
    assert_eq!(
        r.cancel_gone_hooks(a),
        1,
        "one hook, listed under two channels"
    );
    assert_eq!(r.cancel_gone_hooks(a), 0);
    r.remove(b, Cause::NORMAL_CLEARING);
    r.remove(a, Cause::NORMAL_CLEARING);
    assert_eq!(runs.load(Ordering::SeqCst), 10, "only b's hook ran");
}

#[test]
fn a_retargeted_gone_hook_waits_on_its_new_channel_and_not_on_the_old() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let r = ChannelRegistry::new();
    let a = r.alloc(&spec("SIP", "a", Direction::Inbound)).id;
    let b = r.alloc(&spec("SIP", "b", Direction::Outbound)).id;
    let c = r.alloc(&spec("SIP", "c", Direction::Outbound)).id;
    let runs = std::sync::Arc::new(AtomicU32::new(0));
    let n = runs.clone();
    r.when_gone(&[a, b], a, move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(r.retarget_gone_hooks(b, b, c), 0, "b owns no hook");
    // b was transferred away: a's hook waits on a alone (not doubled).
    assert_eq!(r.retarget_gone_hooks(a, b, a), 1);
    r.remove(b, Cause::NORMAL_CLEARING);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "b's end is not a's");
    // Moved to c, a new partner: c's end runs it, once.
    assert_eq!(r.retarget_gone_hooks(a, a, c), 1);
    r.remove(c, Cause::NORMAL_CLEARING);
    r.remove(a, Cause::NORMAL_CLEARING);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(r.pending_gone_hooks(), 0);
    // Onto a channel already gone: it runs at once.
    let d = r.alloc(&spec("SIP", "d", Direction::Inbound)).id;
    let n = runs.clone();
    r.when_gone(&[d], d, move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(r.retarget_gone_hooks(d, d, a), 1);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn a_cause_set_on_a_live_channel_is_its_final_one_unless_the_hangup_names_another() {
    let r = ChannelRegistry::new();
    // A failed Dial leaves USER_BUSY; the dialplan's end hangs up without one.
    let a = r.alloc(&spec("SIP", "alice", Direction::Inbound)).id;
    assert!(r.set_cause(a, Cause::USER_BUSY));
    assert_eq!(r.get(a).unwrap().cause, Cause::USER_BUSY);
    assert_eq!(
        r.remove(a, Cause::NOT_DEFINED).unwrap().cause,
        Cause::USER_BUSY
    );
    assert_eq!(r.ended_cause(a), Some(Cause::USER_BUSY));
    assert!(!r.set_cause(a, Cause::NORMAL_CLEARING), "gone");
    // The caller's BYE after it is a normal clearing.
    let b = r.alloc(&spec("SIP", "bob", Direction::Inbound)).id;
    r.set_cause(b, Cause::USER_BUSY);
    r.remove(b, Cause::NORMAL_CLEARING);
    assert_eq!(r.ended_cause(b), Some(Cause::NORMAL_CLEARING));
}

#[test]
fn names_are_unique_and_asterisk_shaped() {
    let r = ChannelRegistry::new();
    let a = r.alloc(&spec("SIP", "alice", Direction::Inbound));
    let b = r.alloc(&spec("SIP", "bob", Direction::Outbound));
    assert_eq!(a.name.as_str(), "SIP/alice-00000001");
    assert_eq!(b.name.as_str(), "SIP/bob-00000002");
    assert_ne!(a.id, b.id);
    assert!(a.uniqueid.as_str().ends_with(".1"));
    assert_eq!(r.find("SIP/bob-00000002").map(|c| c.id), Some(b.id));
    assert_eq!(r.find("SIP/bob").map(|c| c.id), Some(b.id), "unique prefix");
    assert!(r.find("SIP/").is_none(), "ambiguous prefix");
}

#[test]
fn a_table_split_under_several_locks_still_lists_finds_and_counts_in_order() {
    let r = ChannelRegistry::new();
    let n = LOCK_SHARDS * 2 + 3;
    let ids: Vec<ChannelId> = (0..n)
        .map(|i| {
            r.alloc(&spec("SIP", &format!("p{i}"), Direction::Inbound))
                .id
        })
        .collect();
    r.alloc(&spec("Test", "x", Direction::Inbound));
    let listed: Vec<ChannelId> = r.snapshot().iter().map(|c| c.id).collect();
    assert_eq!(&listed[..n], &ids[..], "oldest first across the locks");
    assert_eq!(r.active_channels(), n + 1);
    assert_eq!(r.count_tech("sip"), n);
    // "SIP/p1" prefixes p1, p10.. p19: ambiguous; "SIP/p7-" only p7.
    assert!(r.find("SIP/p1").is_none());
    assert_eq!(r.find("SIP/p7-").map(|c| c.id), Some(ids[7]));
    assert!(r.remove(ids[7], Cause::NORMAL_CLEARING).is_some());
    assert!(!r.exists(ids[7]) && r.exists(ids[8]));
    assert_eq!(r.active_channels(), n);
}

#[test]
fn counters_follow_asterisk() {
    let r = ChannelRegistry::new();
    let a = r.alloc(&spec("SIP", "alice", Direction::Inbound));
    let b = r.alloc(&spec("SIP", "bob", Direction::Outbound));
    assert!(r.start_pbx(a.id));
    assert_eq!(
        (r.active_channels(), r.active_calls(), r.calls_processed()),
        (2, 1, 1)
    );
    assert!(r.set_state(b.id, ChannelState::Up));
    assert!(r.get(b.id).unwrap().answered.is_some());
    let gone = r.remove(a.id, Cause::NORMAL_CLEARING).unwrap();
    assert_eq!(gone.cause, Cause::NORMAL_CLEARING);
    assert_eq!(
        (r.active_channels(), r.active_calls(), r.calls_processed()),
        (1, 0, 1)
    );
    assert!(
        !r.set_state(a.id, ChannelState::Up),
        "a removed channel is gone"
    );
    assert_eq!(r.count_tech("sip"), 1);
}
