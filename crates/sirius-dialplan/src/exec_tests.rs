//! The dialplan on the PBX pool, driven through the core with the
//! in-process `Rec` technology (sirius-core's `test_support`): no socket,
//! no plugin. The test plays the far ends by changing the callees' states
//! in the channel registry, as a technology's driver would.

use crate::dialplan::Dialplan;
use crate::pool::Pool;
use crate::DialplanEngine;
use sirius_abi::{Cause, ChannelId, ChannelState};
use sirius_core::test_support::{core_with, leg, Recorder};
use sirius_core::Core;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A core with the dialable recorder and `extensions` as its dialplan,
/// on a pool of `threads` workers.
struct Pbx {
    core: Arc<Core>,
    engine: Arc<DialplanEngine>,
    rec: Recorder,
    _dir: tempfile::TempDir,
}

fn pbx(extensions: &str, threads: usize) -> Pbx {
    pbx_on(Recorder::dialable(), extensions, threads)
}

/// The same with a technology of the test's choosing.
fn pbx_on(rec: Recorder, extensions: &str, threads: usize) -> Pbx {
    let (core, dir) = core_with(&rec);
    let dp = Dialplan::parse(Path::new("extensions.toml"), extensions).unwrap();
    let pool = Pool::with_threads(threads).unwrap();
    let engine = Arc::new(DialplanEngine::with_dialplan(
        PathBuf::from("extensions.toml"),
        dp,
        pool,
    ));
    core.set_pbx_engine(engine.clone());
    Pbx {
        core,
        engine,
        rec,
        _dir: dir,
    }
}

/// Waits (up to 20 s) until `cond` holds: the plans run on other threads.
fn until(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn var(core: &Core, chan: ChannelId, name: &str) -> Option<String> {
    core.channels.get(chan)?.vars.get(name).map(str::to_string)
}

/// The outbound leg Dial requested for `caller` (the recorder names it
/// after the dial string's resource).
fn callee_of(core: &Core, resource: &str) -> Option<ChannelId> {
    core.channels
        .snapshot()
        .into_iter()
        .find(|c| c.resource == resource && c.direction == sirius_abi::Direction::Outbound)
        .map(|c| c.id)
}

/// Threads of this process, from `/proc/self/task`.
fn process_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
fn thousands_of_ringing_dials_wait_on_no_more_threads_than_the_pool_has() {
    const CALLS: usize = 2_000;
    let size = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pbx = pbx(
        r#"[demo]
"600" = ["Dial(Rec/callee)", "Hangup()"]
"#,
        size,
    );
    let core = &pbx.core;
    let before = process_threads();
    let callers: Vec<ChannelId> = (0..CALLS).map(|_| leg(core, "caller")).collect();
    for c in &callers {
        core.pbx_start(*c).unwrap();
    }
    // Every Dial has placed its call and rings: 2,000 callers + 2,000 callees.
    until("every Dial rings", || {
        core.channels.active_channels() == 2 * CALLS
            && callers.iter().all(|c| {
                core.channels
                    .get(*c)
                    .is_some_and(|ch| ch.application == "Dial")
            })
    });
    // The pool started its workers and no thread more, however many wait.
    assert_eq!(pbx.engine.pool().threads_started(), size);
    // A thread per waiting call would be 2,000 more threads in the process;
    // the slack is for other tests running alongside this one.
    let during = process_threads();
    assert!(
        during < before + 32,
        "{during} threads with {CALLS} Dials waiting ({before} before, pool of {size})"
    );
    // Every callee answers: each Dial wakes, bridges and gives its task up.
    let callees: Vec<ChannelId> = core
        .channels
        .snapshot()
        .into_iter()
        .filter(|c| c.direction == sirius_abi::Direction::Outbound)
        .map(|c| c.id)
        .collect();
    assert_eq!(callees.len(), CALLS);
    for c in &callees {
        core.channels.set_state(*c, ChannelState::Up);
    }
    until("every call is bridged", || {
        callers
            .iter()
            .all(|c| var(core, *c, "DIALSTATUS").as_deref() == Some("ANSWER"))
            && callers.iter().all(|c| {
                core.channels
                    .get(*c)
                    .is_some_and(|ch| ch.bridged_to.is_some())
            })
    });
    // Bridging asks the technology, which answers at once: no thread is
    // lent or started for it, however many calls bridge.
    let started = pbx.engine.pool().threads_started();
    assert!(
        started == size,
        "{started} threads started for {CALLS} bridges (pool of {size})"
    );
    // A hangup on either leg ends both.
    for c in &callees {
        core.channel_gone(*c, Cause::NORMAL_CLEARING);
    }
    assert_eq!(core.channels.active_channels(), 0);
}

#[test]
fn a_dial_ends_on_answer_busy_or_timeout_with_app_dials_statuses() {
    let pbx = pbx(
        r#"[demo]
"600" = ["Dial(Rec/${CALLERID(num)},30)", "Wait(30)"]
"601" = ["Dial(Rec/${CALLERID(num)},1)", "Wait(30)"]
"#,
        2,
    );
    let (core, rec) = (&pbx.core, &pbx.rec);
    let call = |who: &str, exten: &str| {
        let caller = leg(core, "caller");
        core.channels.update(caller, |c| {
            c.caller_num = who.into();
            c.exten = exten.into();
        });
        core.pbx_start(caller).unwrap();
        until("the callee rings", || callee_of(core, who).is_some());
        (caller, callee_of(core, who).unwrap())
    };

    // Answered: bridged, ANSWER, a normal clearing on the caller.
    let (caller, callee) = call("answers", "600");
    core.channels.set_state(callee, ChannelState::Ringing);
    core.channels.set_state(callee, ChannelState::Up);
    until("bridged", || {
        core.channels.get(caller).and_then(|c| c.bridged_to) == Some(callee)
    });
    assert_eq!(var(core, caller, "DIALSTATUS").as_deref(), Some("ANSWER"));
    assert_eq!(
        core.channels.get(caller).unwrap().cause,
        Cause::NORMAL_CLEARING
    );
    core.channel_gone(callee, Cause::NORMAL_CLEARING);
    assert!(!core.channels.exists(caller), "the bridge took the caller");

    // Busy: the callee's cause becomes the caller's; the plan goes on.
    let (caller, callee) = call("busy", "600");
    core.channel_gone(callee, Cause::USER_BUSY);
    until("BUSY", || {
        var(core, caller, "DIALSTATUS").as_deref() == Some("BUSY")
    });
    assert_eq!(core.channels.get(caller).unwrap().cause, Cause::USER_BUSY);
    until("the next step runs", || {
        core.channels
            .get(caller)
            .is_some_and(|c| c.application == "Wait")
    });
    // The caller leaves while the plan waits: Wait ends at once.
    core.channel_gone(caller, Cause::NORMAL_CLEARING);
    assert!(!core.channels.exists(caller));

    // Nobody answers within Dial's 1 s: NOANSWER, the callee hung up.
    let started = Instant::now();
    let (caller, callee) = call("sleeps", "601");
    until("NOANSWER", || {
        var(core, caller, "DIALSTATUS").as_deref() == Some("NOANSWER")
    });
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(!core.channels.exists(callee));
    assert_eq!(core.channels.ended_cause(callee), Some(Cause::NO_ANSWER));
    assert!(rec.hangups.lock().contains(&callee));
    core.hangup(caller, Cause::NORMAL_CLEARING).unwrap();
}

#[test]
fn a_plan_that_never_waits_runs_to_its_end_inside_pbx_start() {
    let pbx = pbx(
        r#"[demo]
"600" = ["Answer()", "Set(X=1)", "Busy()"]
"#,
        1,
    );
    let (core, rec) = (&pbx.core, &pbx.rec);
    let caller = leg(core, "caller");
    core.pbx_start(caller).unwrap();
    // No other thread was involved: the call is over when pbx_start returns.
    assert!(!core.channels.exists(caller));
    assert_eq!(core.channels.ended_cause(caller), Some(Cause::BUSY));
    assert_eq!(*rec.hangups.lock(), vec![caller]);
}

/// `channel originate`: the wait for the far end's answer is a task on the
/// pool (Asterisk's CLI originate holds a thread per call for it): a
/// thousand ringing originations add no thread; answered, each runs its
/// extension; one never answered is not started at all.
#[test]
fn originated_calls_wait_for_their_answer_on_the_pool() {
    use sirius_core::originate::OriginateTarget;
    const CALLS: usize = 1_000;
    let pbx = pbx(
        r#"[demo]
"700" = ["Set(REACHED=yes)", "Wait(60)"]
"#,
        2,
    );
    let core = &pbx.core;
    let before = process_threads();
    let target = || OriginateTarget::Extension {
        context: "demo".into(),
        exten: "700".into(),
    };
    let chans: Vec<ChannelId> = (0..CALLS)
        .map(|_| core.originate("Rec", "phone", target()).unwrap())
        .collect();
    let during = process_threads();
    assert!(
        during < before + 16,
        "{during} threads with {CALLS} originations ringing ({before} before)"
    );
    // Half answer; the others hang up unanswered.
    for (i, c) in chans.iter().enumerate() {
        if i % 2 == 0 {
            core.channels.set_state(*c, ChannelState::Up);
        } else {
            core.channel_gone(*c, Cause::NO_ANSWER);
        }
    }
    until("every answered call runs its extension", || {
        chans
            .iter()
            .step_by(2)
            .all(|c| var(core, *c, "REACHED").as_deref() == Some("yes"))
    });
    assert_eq!(core.channels.active_channels(), CALLS / 2);
    for c in chans.iter().step_by(2) {
        core.channel_gone(*c, Cause::NORMAL_CLEARING);
    }
}

#[test]
fn a_blind_transfer_moves_the_bridged_caller_to_the_target_and_the_transferor_may_leave() {
    let pbx = pbx(
        r#"[demo]
"600" = ["Dial(Rec/bob,30)", "Hangup()"]
"700" = ["Set(WENT=700)", "Wait(30)"]
"h" = ["NoOp(end)"]
"#,
        2,
    );
    let (core, rec) = (&pbx.core, &pbx.rec);
    let caller = leg(core, "alice");
    core.pbx_start(caller).unwrap();
    until("bob rings", || callee_of(core, "bob").is_some());
    let bob = callee_of(core, "bob").unwrap();
    core.channels.set_state(bob, ChannelState::Up);
    until("bridged", || {
        core.channels.get(caller).and_then(|c| c.bridged_to) == Some(bob)
    });
    rec.take_log();

    // A target the context lacks: refused, the call as it was.
    assert_eq!(
        core.blind_transfer(bob, "demo", "999", &[]),
        Err(Cause::UNALLOCATED)
    );
    assert_eq!(core.channels.get(caller).unwrap().bridged_to, Some(bob));
    // Not bridged: nothing to transfer.
    let lone = leg(core, "lone");
    assert_eq!(
        core.blind_transfer(lone, "demo", "700", &[]),
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    );

    // Bob transfers alice to 700.
    assert_eq!(core.blind_transfer(bob, "demo", "700", &[]), Ok(caller));
    // A simple bridge (the recorder bridges nothing natively): nothing to
    // tell the technology (the native case: sirius-core's transfer tests).
    assert!(rec.take_log().is_empty());
    until("alice runs 700", || {
        var(core, caller, "WENT").as_deref() == Some("700")
    });
    let bob_name = core.channels.get(bob).unwrap().name;
    assert_eq!(var(core, caller, "BLINDTRANSFER"), Some(bob_name));
    assert_eq!(core.channels.get(bob).unwrap().bridged_to, None);
    assert!(
        core.bridges.snapshot().is_empty(),
        "the bridge record ended"
    );

    // Bob leaves: alice is no longer bridged to him and stays in 700.
    core.channel_gone(bob, Cause::NORMAL_CLEARING);
    assert!(core.channels.exists(caller), "the transferee lives on");
    until("alice waits in 700", || {
        core.channels
            .get(caller)
            .is_some_and(|c| c.exten == "700" && c.application == "Wait")
    });
    core.channel_gone(caller, Cause::NORMAL_CLEARING);
}

#[test]
fn a_redirected_channel_leaves_its_wait_and_runs_the_target_from_the_given_priority() {
    let pbx = pbx(
        r#"[demo]
"600" = ["Wait(30)", "Hangup()"]
"601" = ["Dial(Rec/bob,30)", "Hangup()"]
"800" = ["Set(A=1)", "Set(B=2)", "Wait(30)"]
"#,
        2,
    );
    let (core, rec) = (&pbx.core, &pbx.rec);
    let caller = leg(core, "alice");
    core.pbx_start(caller).unwrap();
    until("alice waits in 600", || {
        core.channels
            .get(caller)
            .is_some_and(|c| c.application == "Wait")
    });
    assert_eq!(
        core.redirect(caller, "demo", "999", 1),
        Err(Cause::UNALLOCATED)
    );
    assert_eq!(core.redirect(caller, "demo", "800", 2), Ok(()));
    until("alice waits in 800", || {
        core.channels
            .get(caller)
            .is_some_and(|c| c.exten == "800" && c.application == "Wait")
    });
    assert_eq!(var(core, caller, "B").as_deref(), Some("2"));
    assert_eq!(var(core, caller, "A"), None, "started at priority 2");
    assert!(
        core.channels.exists(caller),
        "the old run's Hangup() never ran"
    );
    core.channel_gone(caller, Cause::NORMAL_CLEARING);

    // A bridged call: the other party is hung up, the redirected one goes on.
    let caller = leg(core, "carol");
    core.channels.update(caller, |c| c.exten = "601".into());
    core.pbx_start(caller).unwrap();
    until("bob rings", || callee_of(core, "bob").is_some());
    let bob = callee_of(core, "bob").unwrap();
    core.channels.set_state(bob, ChannelState::Up);
    until("bridged", || {
        core.channels.get(caller).and_then(|c| c.bridged_to) == Some(bob)
    });
    rec.take_log();
    assert_eq!(core.redirect(caller, "demo", "800", 1), Ok(()));
    until("carol runs 800", || var(core, caller, "B").is_some());
    assert!(
        rec.take_log()
            .iter()
            .any(|l| l.starts_with(&format!("hangup {}", bob.0))),
        "bob hung up"
    );
    assert_eq!(core.channels.get(caller).unwrap().bridged_to, None);
    core.channel_gone(caller, Cause::NORMAL_CLEARING);

    // Redirected while its Dial rings: the callee is hung up, the new run
    // goes on, the old Dial's Hangup() never runs.
    let caller = leg(core, "dave");
    core.channels.update(caller, |c| c.exten = "601".into());
    core.pbx_start(caller).unwrap();
    until("bob rings again", || callee_of(core, "bob").is_some());
    let bob = callee_of(core, "bob").unwrap();
    core.channels.set_state(bob, ChannelState::Ringing);
    rec.take_log();
    assert_eq!(core.redirect(caller, "demo", "800", 1), Ok(()));
    until("dave runs 800", || {
        core.channels
            .get(caller)
            .is_some_and(|c| c.exten == "800" && c.application == "Wait")
    });
    until("bob hung up", || !core.channels.exists(bob));
    assert!(
        rec.take_log()
            .iter()
            .any(|l| l.starts_with(&format!("hangup {}", bob.0))),
        "the ringing callee was hung up"
    );
    assert!(
        core.channels.exists(caller),
        "the old Dial's Hangup() never ran"
    );
    core.channel_gone(caller, Cause::NORMAL_CLEARING);
}

#[test]
fn transfer_reports_unsupported_failure_or_success_in_transferstatus() {
    let ext = r#"[demo]
"600" = ["Transfer(700)", "Set(FIRST=${TRANSFERSTATUS})", "Transfer(IAX2/700)", "Set(OTHER=${TRANSFERSTATUS})", "Transfer(Rec/701)", "Set(LAST=${TRANSFERSTATUS})", "Wait(30)"]
"#;
    // A technology without transfer.
    let pbx = pbx(ext, 2);
    let core = &pbx.core;
    let a = leg(core, "alice");
    core.pbx_start(a).unwrap();
    until("three transfers tried", || var(core, a, "LAST").is_some());
    assert_eq!(var(core, a, "FIRST").as_deref(), Some("UNSUPPORTED"));
    assert_eq!(
        var(core, a, "OTHER").as_deref(),
        Some("FAILURE"),
        "not its technology"
    );
    core.channel_gone(a, Cause::NORMAL_CLEARING);

    // One that transfers: the plan waits for its word, holding no thread.
    let pbx = pbx_on(Recorder::transferring(), ext, 2);
    let (core, rec) = (&pbx.core, &pbx.rec);
    let a = leg(core, "alice");
    core.pbx_start(a).unwrap();
    until("the first transfer asked", || {
        rec.log
            .lock()
            .iter()
            .any(|l| l == &format!("transfer {} 700", a.0))
    });
    assert_eq!(var(core, a, "FIRST"), None, "waiting for the far end");
    core.transfer_result(a, Ok(()));
    until("the first outcome", || var(core, a, "FIRST").is_some());
    assert_eq!(var(core, a, "FIRST").as_deref(), Some("SUCCESS"));
    until("the third transfer asked", || {
        rec.log
            .lock()
            .iter()
            .any(|l| l == &format!("transfer {} 701", a.0))
    });
    core.transfer_result(a, Err(Cause::CALL_REJECTED));
    until("the last outcome", || var(core, a, "LAST").is_some());
    assert_eq!(var(core, a, "LAST").as_deref(), Some("FAILURE"));
    core.channel_gone(a, Cause::NORMAL_CLEARING);
}

#[test]
fn a_ringing_callee_picked_up_by_another_phone_connects_the_caller_to_it() {
    let pbx = pbx(
        r#"[demo]
"600" = ["Dial(Rec/bob,30)", "Hangup()"]
"#,
        2,
    );
    let (core, rec) = (&pbx.core, &pbx.rec);
    let caller = leg(core, "alice");
    core.pbx_start(caller).unwrap();
    until("bob rings", || callee_of(core, "bob").is_some());
    let bob = callee_of(core, "bob").unwrap();
    core.channels.set_state(bob, ChannelState::Ringing);
    rec.take_log();
    // Carol's phone picks bob's ringing up (INVITE with Replaces).
    let carol = leg(core, "carol");
    // An answered call is not picked up.
    assert_eq!(
        core.pickup(caller, carol),
        Err(Cause::INVALID_CALL_REFERENCE)
    );
    assert_eq!(core.pickup(bob, carol), Ok(()));
    until("alice bridged to carol", || {
        core.channels.get(caller).and_then(|c| c.bridged_to) == Some(carol)
    });
    assert_eq!(var(core, caller, "DIALSTATUS").as_deref(), Some("ANSWER"));
    assert!(!core.channels.exists(bob), "bob's leg ended");
    assert_eq!(
        core.channels.ended_cause(bob),
        Some(Cause::ANSWERED_ELSEWHERE)
    );
    assert_eq!(
        core.channels.state(carol),
        Some(ChannelState::Up),
        "answered"
    );
    core.channel_gone(carol, Cause::NORMAL_CLEARING);
}
