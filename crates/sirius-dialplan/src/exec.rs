//! Running the dialplan on a channel: Asterisk's `__ast_pbx_run`, stepping
//! through priorities until the channel hangs up or the extension ends
//! (autofallthrough: hang up).
//!
//! Unlike Asterisk, a call's dialplan is not a thread but a task on the
//! PBX pool ([`crate::pool`]): an application that waits (Dial ringing,
//! Wait) awaits its channels' [`Signal`] with its timeout and holds no
//! thread meanwhile; a plan that never waits runs on the thread that
//! started it and ends there.
//!
//! A call whose media is bridged by its channel driver (Dial's bridge,
//! Echo) leaves not even a task: nothing is left to run until a leg hangs
//! up, and the channel registry's gone-hook then finishes the dialplan
//! (the `h` extension) on the pool. A held call is only data.

use crate::dialplan::Dialplan;
use crate::pool::{to_pool, PoolHandle};
use crate::vars::substitute;
use sirius_abi::{Cause, ChannelId, Indication};
use sirius_core::channels::{Channel, Signal};
use sirius_core::Core;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where execution goes after an application.
pub(crate) enum Next {
    Continue,
    Goto {
        context: String,
        exten: String,
        target: String,
    },
    Stop,
    /// The call is bridged (or echoing) without needing this thread: the
    /// dialplan ends when the first of these channels goes.
    Park(Vec<ChannelId>),
}

/// Starts the dialplan for `chan` at `context`/`exten` priority 1: on this
/// thread up to its first application that waits, then on the pool.
pub fn spawn(
    pool: &PoolHandle,
    core: Arc<Core>,
    dp: Arc<Dialplan>,
    chan: ChannelId,
    (context, exten, priority): (String, String, u32),
) {
    pool.start(run(
        pool.clone(),
        core,
        dp,
        chan,
        (context, exten, priority),
    ));
}

/// Runs one application on `chan` (an originated call), then hangs the
/// channel up, as Asterisk's outgoing-application calls do.
pub fn spawn_app(pool: &PoolHandle, core: Arc<Core>, chan: ChannelId, app: String, data: String) {
    pool.start(async move {
        if needs_pool(&app) {
            to_pool().await;
        }
        let name = core.channels.get(chan).map(|c| c.name).unwrap_or_default();
        sirius_abi::verbose!(3, "    -- Executing {app}(\"{name}\", \"{data}\")");
        core.channels.update(chan, |c| {
            c.application = app.clone();
            c.app_data = data.clone();
            let sirius_core::channels::Channel {
                cdr,
                context,
                exten,
                ..
            } = c;
            cdr.step(context, exten, &app, &data);
        });
        let parked = matches!(execute(&core, chan, &app, &data, "").await, Next::Park(_));
        if !parked && alive(&core, chan) {
            let _ = core.hangup(chan, Cause::NORMAL_CLEARING);
        }
    });
}

/// Whether `app` is sure to wait (for a timer) before it does anything:
/// the plan moves to the pool first. Dial and Echo start on the thread
/// that started the plan (chan_sip's driver): their requests to the
/// technology are queued, not waited for, so Dial's callee is requested and
/// called, and Echo's loop set up, without a hop to a pool worker and back;
/// Dial moves to the pool when it first waits for its callees.
fn needs_pool(app: &str) -> bool {
    app.eq_ignore_ascii_case("wait") || app.eq_ignore_ascii_case("transfer")
}

pub(crate) fn alive(core: &Core, chan: ChannelId) -> bool {
    core.channels.exists(chan)
}

async fn run(
    pool: PoolHandle,
    core: Arc<Core>,
    dp: Arc<Dialplan>,
    chan: ChannelId,
    at: (String, String, u32),
) {
    let mut last = None;
    let (context, parked) = run_steps(&core, &dp, chan, at, &mut last).await;
    let Some(snapshot) = last else { return };
    match parked {
        None => run_h(&core, &dp, &context, snapshot),
        // Only a dialplan with an `h` extension leaves anything behind.
        Some(ids) if dp.find(&context, "h").is_some() => {
            let registry = core.clone();
            // The hook runs on whichever thread removes the channel (a SIP
            // driver's): the `h` extension is handed on to the pool.
            registry.channels.when_gone(&ids, chan, move || {
                pool.spawn(async move { run_h(&core, &dp, &context, snapshot) });
            });
        }
        Some(_) => {}
    }
}

/// Steps through the dialplan until the channel is gone or parked in a
/// bridge. `last` keeps the channel as it was after its last step
/// (variables included) for the `h` extension; returns the context
/// execution ended in, and the channels a parked call waits on.
async fn run_steps(
    core: &Arc<Core>,
    dp: &Dialplan,
    chan: ChannelId,
    (mut context, mut exten, mut prio): (String, String, u32),
    last: &mut Option<Channel>,
) -> (String, Option<Vec<ChannelId>>) {
    // A run another one replaced (transfer, redirect) stops at its next
    // step and leaves `h` to the new one.
    let Some(mine) = core.channels.read(chan, |c| c.plan) else {
        return (context, None);
    };
    loop {
        let found = dp.find(&context, &exten);
        let step = found.and_then(|(_, ext)| ext.steps.iter().find(|s| s.priority == prio));
        let keep = has_h(dp, &context);
        // One look at the channel for the step, under its table's read lock
        // (`lookup` reads the channel and the dialplan, nothing else): no
        // copy of the whole channel (a dozen strings) unless an `h` will
        // want it. Three copies a step were a tenth of the allocations on
        // the SIP threads at 3,000 calls/s.
        let Some(view) = core.channels.read(chan, |ch| {
            (ch.plan == mine).then(|| StepView {
                name: ch.name.clone(),
                snapshot: keep.then(|| ch.clone()),
                data: step
                    .map(|s| substitute(&s.data, &|v| lookup(dp, ch, &exten, &context, prio, v))),
                dialstatus: step.is_none().then(|| {
                    crate::vars::fetch(&ch.vars, "DIALSTATUS")
                        .unwrap_or("UNKNOWN")
                        .to_string()
                }),
            })
        }) else {
            return (context, None);
        };
        let Some(view) = view else {
            *last = None;
            return (context, None);
        };
        *last = view.snapshot;
        let Some((ctx, _)) = found else {
            // Asterisk sends a call that lands on a missing extension to `i`.
            if exten != "i" && dp.find(&context, "i").is_some() {
                sirius_abi::verbose!(
                    3,
                    "    -- Sent into invalid extension '{exten}' in context '{context}' on {}",
                    view.name
                );
                set_var(core, chan, "INVALID_EXTEN", &exten);
                exten = "i".into();
                prio = 1;
                continue;
            }
            log::info!(
                "Extension '{exten}' not found in context '{context}': hanging up '{}'",
                view.name
            );
            let _ = core.hangup(chan, Cause::UNALLOCATED);
            return (context, None);
        };
        let (Some(step), Some(data)) = (step, view.data) else {
            // Autofallthrough: the extension ran out of priorities.
            let status = view.dialstatus.unwrap_or_default();
            sirius_abi::verbose!(
                2,
                "  == Auto fallthrough, channel '{}' status is '{status}'",
                view.name
            );
            hangup_as_is(core, chan);
            return (context, None);
        };
        if needs_pool(&step.app) && !crate::pool::on_pool() {
            // Moves the plan to the pool and looks again: the channel may
            // have changed meanwhile.
            to_pool().await;
            continue;
        }
        core.channels.update(chan, |c| {
            c.context = ctx.name.clone();
            c.exten = exten.clone();
            c.priority = prio;
            c.application = step.app.clone();
            c.app_data = data.clone();
            c.cdr.step(&ctx.name, &exten, &step.app, &data);
        });
        sirius_abi::verbose!(
            3,
            "    -- Executing [{exten}@{}:{prio}] {}(\"{}\", \"{data}\") in new stack",
            ctx.name,
            step.app,
            view.name
        );
        let ctx_name = ctx.name.clone();
        let next = execute(core, chan, &step.app, &data, &ctx_name).await;
        let keep = has_h(dp, &ctx_name);
        match core.channels.read(chan, |now| {
            (now.plan == mine).then(|| keep.then(|| now.clone()))
        }) {
            Some(None) => {
                *last = None;
                return (ctx_name, None);
            }
            Some(Some(now)) => *last = now,
            None => return (ctx_name, None),
        }
        match next {
            Next::Continue => prio += 1,
            Next::Stop => return (ctx_name, None),
            Next::Park(ids) => return (ctx_name, Some(ids)),
            Next::Goto {
                context: c,
                exten: e,
                target,
            } => {
                let from =
                    format!("priority {prio} of extension '{exten}' in context '{ctx_name}'");
                context = c;
                exten = e;
                let Some((_, ext)) = dp.find(&context, &exten) else {
                    // Handled at the top of the loop: `i`, or hang up.
                    prio = 1;
                    continue;
                };
                prio = match target.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => match ext
                        .steps
                        .iter()
                        .find(|s| s.label.as_deref() == Some(target.as_str()))
                    {
                        Some(s) => s.priority,
                        None => {
                            log::warn!("Goto from {from}: no priority or label '{target}' in extension '{exten}' of context '{context}': hanging up");
                            hangup_as_is(core, chan);
                            return (context, None);
                        }
                    },
                };
            }
        }
    }
}

/// What a step needs of its channel, read in one go ([`run_steps`]).
struct StepView {
    name: String,
    /// The channel as it is, for `h` (only where an `h` would run).
    snapshot: Option<Channel>,
    /// The step's argument with its variables substituted (`None`: no step).
    data: Option<String>,
    /// `${DIALSTATUS}` for the fall-through message (only without a step).
    dialstatus: Option<String>,
}

/// Whether a call that ends in `context` runs an `h` extension there.
fn has_h(dp: &Dialplan, context: &str) -> bool {
    dp.find(context, "h").is_some()
}

/// The `h` extension of `context`, run after the channel hung up (Asterisk's
/// `ast_pbx_h_exten_run`) on what the channel was: its variables, caller ID
/// and `${HANGUPCAUSE}`. Only steps that need no live channel make sense
/// there (Set, NoOp, Verbose, Goto/GotoIf within `h`); any other ends it.
fn run_h(core: &Core, dp: &Dialplan, context: &str, mut ch: Channel) {
    let Some((ctx, ext)) = dp.find(context, "h") else {
        return;
    };
    if let Some(cause) = core.channels.ended_cause(ch.id) {
        ch.cause = cause;
    }
    let mut prio = 1;
    // Bounded: a Goto loop inside `h` must not spin a thread forever.
    for _ in 0..1000 {
        let Some(step) = ext.steps.iter().find(|s| s.priority == prio) else {
            return;
        };
        let data = substitute(&step.data, &|v| lookup(dp, &ch, "h", &ctx.name, prio, v));
        sirius_abi::verbose!(
            3,
            "    -- Executing [h@{}:{prio}] {}(\"{}\", \"{data}\") in new stack",
            ctx.name,
            step.app,
            ch.name
        );
        prio += 1;
        match step.app.to_ascii_lowercase().as_str() {
            "noop" => {}
            "verbose" => app_verbose(&data),
            "set" => {
                if let Some((k, v)) = data.split_once('=') {
                    crate::vars::store(&mut ch.vars, k.trim(), v);
                }
            }
            "goto" | "gotoif" => {
                let target = if step.app.eq_ignore_ascii_case("gotoif") {
                    match goto_if_target(&data) {
                        Some(t) => t,
                        None => continue,
                    }
                } else {
                    data.clone()
                };
                let label = target.rsplit(',').next().unwrap_or("").trim();
                prio = match label.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => match ext.steps.iter().find(|s| s.label.as_deref() == Some(label)) {
                        Some(s) => s.priority,
                        None => return,
                    },
                };
            }
            _ => return,
        }
    }
}

/// Channels watched by a waiting application: unwatched when it is
/// dropped, so a plan that ends (or a task dropped when the pool stops)
/// leaves no signal behind in the registry.
pub(crate) struct Watch<'a> {
    core: &'a Core,
    ids: Vec<ChannelId>,
    signal: Arc<Signal>,
}

impl<'a> Watch<'a> {
    /// Watches `ids` from now on.
    pub(crate) fn new(core: &'a Core, ids: Vec<ChannelId>) -> Watch<'a> {
        let signal = Signal::new();
        core.channels.watch(&ids, &signal);
        Watch { core, ids, signal }
    }

    /// Waits for a change of a watched channel (state, progress, gone) or
    /// until `deadline`, holding no thread.
    pub(crate) async fn changed(&self, deadline: Instant) {
        let _ = tokio::time::timeout_at(deadline.into(), self.signal.raised()).await;
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.core.channels.unwatch(&self.ids, &self.signal);
    }
}

/// Whether `chan` is answered within `d` (false when it goes or the time
/// runs out first), holding no thread while it rings.
pub(crate) async fn answered_within(core: &Core, chan: ChannelId, d: Duration) -> bool {
    let end = Instant::now() + d;
    let watch = Watch::new(core, vec![chan]);
    loop {
        match core.channels.state(chan) {
            None => return false,
            Some(sirius_abi::ChannelState::Up) => return true,
            Some(_) if Instant::now() >= end => return false,
            Some(_) => watch.changed(end).await,
        }
    }
}

/// Sleeps up to `d`, returning early (false) if the channel hangs up.
async fn wait(core: &Core, chan: ChannelId, d: Duration) -> bool {
    let end = Instant::now() + d;
    let watch = Watch::new(core, vec![chan]);
    let plan = core.channels.read(chan, |c| c.plan);
    let mine = || core.channels.read(chan, |c| c.plan) == plan && plan.is_some();
    // Every change of the channel wakes us (its removal too); a hangup, or
    // a new dialplan taking the channel over, ends the wait early.
    while Instant::now() < end && mine() {
        watch.changed(end).await;
    }
    drop(watch);
    mine()
}

/// Hangs `chan` up with the cause it already carries (Asterisk's
/// `ast_hangup` at the end of the dialplan): a failed Dial left USER_BUSY
/// there, so chan_sip answers the caller `486 Busy Here`, not the `603
/// Declined` of a normal clearing. A channel without one is a normal clearing.
pub(crate) fn hangup_as_is(core: &Core, chan: ChannelId) {
    let cause = core
        .channels
        .get(chan)
        .map(|c| c.cause)
        .filter(|c| *c != Cause::NOT_DEFINED)
        .unwrap_or(Cause::NORMAL_CLEARING);
    let _ = core.hangup(chan, cause);
}

pub(crate) fn set_var(core: &Core, chan: ChannelId, name: &str, value: &str) {
    core.channels
        .update(chan, |c| crate::vars::store(&mut c.vars, name, value));
}

/// Asterisk's `handle_cause` in app_dial: what DIALSTATUS a failed request gives.
pub(crate) fn dialstatus(cause: Cause) -> &'static str {
    match cause.0 {
        17 => "BUSY",
        34 | 42 => "CONGESTION",
        19 | 18 => "NOANSWER",
        _ => "CHANUNAVAIL",
    }
}

async fn execute(core: &Arc<Core>, chan: ChannelId, app: &str, data: &str, context: &str) -> Next {
    let args: Vec<&str> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(',').collect()
    };
    match app.to_ascii_lowercase().as_str() {
        "noop" => Next::Continue,
        "verbose" => {
            app_verbose(data);
            Next::Continue
        }
        "set" => {
            if let Some((k, v)) = data.split_once('=') {
                set_var(core, chan, k.trim(), v);
            }
            Next::Continue
        }
        "answer" => match core.answer(chan) {
            Ok(()) => Next::Continue,
            Err(c) => {
                log::warn!("Answer failed: {c}");
                let _ = core.hangup(chan, c);
                Next::Stop
            }
        },
        "hangup" => {
            // Without a cause, the one the channel carries (a failed Dial's),
            // else a normal clearing: Asterisk's pbx_builtin_hangup.
            let cause = args.first().and_then(|a| {
                a.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Cause)
                    .or_else(|| Cause::from_name(a.trim()))
            });
            match cause {
                Some(cause) => {
                    set_var(core, chan, "HANGUPCAUSE", &cause.0.to_string());
                    let _ = core.hangup(chan, cause);
                }
                None => hangup_as_is(core, chan),
            }
            Next::Stop
        }
        "wait" => {
            let secs: f64 = args
                .first()
                .and_then(|a| a.trim().parse().ok())
                .unwrap_or(0.0);
            if wait(core, chan, Duration::from_secs_f64(secs.max(0.0))).await {
                Next::Continue
            } else {
                Next::Stop
            }
        }
        "ringing" => {
            let _ = core.indicate(chan, Indication::Ringing);
            Next::Continue
        }
        "progress" => {
            let _ = core.indicate(chan, Indication::Progress);
            Next::Continue
        }
        "busy" | "congestion" => {
            let (ind, cause) = if app.eq_ignore_ascii_case("busy") {
                (Indication::Busy, Cause::BUSY)
            } else {
                (Indication::Congestion, Cause::CONGESTION)
            };
            let _ = core.indicate(chan, ind);
            let _ = core.hangup(chan, cause);
            Next::Stop
        }
        "echo" => {
            // Answer if needed, loop the media back, and stay until the caller hangs up.
            if core
                .channels
                .get(chan)
                .is_some_and(|c| c.state != sirius_abi::ChannelState::Up)
            {
                if let Err(c) = core.answer(chan) {
                    let _ = core.hangup(chan, c);
                    return Next::Stop;
                }
            }
            if let Err(c) = core.echo(chan) {
                log::warn!("Echo is not supported on this channel: {c}");
                return Next::Continue;
            }
            // The channel driver loops the media; nothing runs until hangup.
            Next::Park(vec![chan])
        }
        "goto" => goto_target(&args, context, core, chan),
        "gotoif" => match goto_if_target(data) {
            None => Next::Continue,
            Some(pick) => {
                let a: Vec<&str> = pick.split(',').collect();
                goto_target(&a, context, core, chan)
            }
        },
        "dial" => crate::dial::dial(core, chan, &args).await,
        "transfer" => crate::transfer::transfer(core, chan, &args).await,
        other => {
            // The loader refuses unknown applications in extensions.toml;
            // this is an originate's (`channel originate … application X`).
            let (exten, prio) = core
                .channels
                .read(chan, |c| (c.exten.clone(), c.priority))
                .unwrap_or_default();
            log::warn!("No application '{other}' for extension '{exten}' in context '{context}', priority {prio}: hanging up");
            hangup_as_is(core, chan);
            Next::Stop
        }
    }
}

fn goto_target(args: &[&str], context: &str, core: &Core, chan: ChannelId) -> Next {
    let exten_now = core.channels.get(chan).map(|c| c.exten).unwrap_or_default();
    let t: Vec<String> = args.iter().map(|s| s.trim().to_string()).collect();
    match t.as_slice() {
        [p] => Next::Goto {
            context: context.to_string(),
            exten: exten_now,
            target: p.clone(),
        },
        [e, p] => Next::Goto {
            context: context.to_string(),
            exten: e.clone(),
            target: p.clone(),
        },
        [c, e, p] => Next::Goto {
            context: c.clone(),
            exten: e.clone(),
            target: p.clone(),
        },
        _ => Next::Continue,
    }
}

/// `Verbose([level,]text)`: the level (0 when absent, as app_verbose;
/// one that is not a number is 0 too) and the text.
fn verbose_args(data: &str) -> (u32, &str) {
    match data.split_once(',') {
        Some((level, text)) => (level.trim().parse().unwrap_or(0), text),
        None => (0, data),
    }
}

/// `Verbose()`: a VERBOSE line at its level, shown when the verbose level
/// is that or more, as Asterisk's app_verbose (not a NOTICE).
fn app_verbose(data: &str) {
    let (level, text) = verbose_args(data);
    let target = format!("verbose:{}", level.min(4));
    log::info!(target: &target, "{text}");
}

/// `GotoIf(cond?yes:no)`: the branch taken, `None` when it is empty (go on).
fn goto_if_target(data: &str) -> Option<String> {
    let (cond, rest) = data.split_once('?').unwrap_or((data, ""));
    let (yes, no) = rest.split_once(':').unwrap_or((rest, ""));
    let truthy = !cond.trim().is_empty() && cond.trim() != "0";
    let pick = if truthy { yes } else { no };
    (!pick.trim().is_empty()).then(|| pick.trim().to_string())
}

/// A variable's value on channel `c` at `exten@context:prio`.
fn lookup(dp: &Dialplan, c: &Channel, exten: &str, context: &str, prio: u32, name: &str) -> String {
    match name {
        "EXTEN" => exten.to_string(),
        "CONTEXT" => context.to_string(),
        "PRIORITY" => prio.to_string(),
        "CHANNEL" => c.name.clone(),
        "UNIQUEID" => c.uniqueid.clone(),
        "CALLERID(num)" => c.caller_num.clone(),
        "CALLERID(name)" => c.caller_name.clone(),
        // Asterisk's HANGUPCAUSE: the Q.850 cause once the channel has one.
        "HANGUPCAUSE" if c.cause.0 != 0 => c.cause.0.to_string(),
        _ => crate::vars::fetch(&c.vars, name)
            .map(str::to_string)
            .or_else(|| dp.globals.get(name).cloned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verbose_takes_its_level_first() {
        use super::verbose_args;
        assert_eq!(verbose_args("2,h after cause 17"), (2, "h after cause 17"));
        assert_eq!(verbose_args("hello"), (0, "hello"));
        assert_eq!(verbose_args(" 3 ,a, b"), (3, "a, b"));
        assert_eq!(verbose_args("loud,text"), (0, "text"), "not a level: 0");
    }
}
