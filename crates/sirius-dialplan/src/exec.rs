//! Running the dialplan on a channel: Asterisk's `__ast_pbx_run`. A thread
//! per call while it runs applications (as Asterisk's PBX threads), stepping
//! through priorities until the channel hangs up or the extension ends
//! (autofallthrough: hang up).
//!
//! Unlike Asterisk, a call whose media is bridged by its channel driver
//! (Dial's native bridge, Echo) gives its thread back: nothing is left to
//! run until a leg hangs up, and the channel registry's gone-hook then
//! finishes the dialplan (the `h` extension) on a pool thread. A thread
//! blocked for the whole call cost ~30 KiB per held call in stacks.

use crate::dialplan::Dialplan;
use crate::vars::substitute;
use sirius_abi::{Capabilities, Cause, ChannelId, Codec, Indication};
use sirius_core::channels::{Channel, Signal};
use sirius_core::Core;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where execution goes after an application.
enum Next {
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

/// Starts the dialplan thread for `chan` at `context`/`exten` priority 1.
pub fn spawn(core: Arc<Core>, dp: Arc<Dialplan>, chan: ChannelId, context: String, exten: String) {
    if let Err(e) = crate::threads::run(move || run(core, dp, chan, context, exten)) {
        log::error!("cannot start a PBX thread: {e}");
    }
}

/// Runs one application on `chan` in its own thread (an originated call),
/// then hangs the channel up, as Asterisk's outgoing-application calls do.
pub fn spawn_app(core: Arc<Core>, chan: ChannelId, app: String, data: String) -> Result<(), Cause> {
    crate::threads::run(move || {
        let name = core.channels.get(chan).map(|c| c.name).unwrap_or_default();
        log::info!("    -- Executing {app}(\"{name}\", \"{data}\")");
        core.channels.update(chan, |c| {
            c.application = app.clone();
            c.app_data = data.clone();
        });
        let parked = matches!(execute(&core, chan, &app, &data, ""), Next::Park(_));
        if !parked && alive(&core, chan) {
            let _ = core.hangup(chan, Cause::NORMAL_CLEARING);
        }
    })
    .map_err(|e| {
        log::error!("cannot start a PBX thread: {e}");
        Cause::CONGESTION
    })
}

fn alive(core: &Core, chan: ChannelId) -> bool {
    core.channels.exists(chan)
}

fn run(core: Arc<Core>, dp: Arc<Dialplan>, chan: ChannelId, context: String, exten: String) {
    let mut last = None;
    let (context, parked) = run_steps(&core, &dp, chan, context, exten, &mut last);
    let Some(snapshot) = last else { return };
    match parked {
        None => run_h(&core, &dp, &context, snapshot),
        // Only a dialplan with an `h` extension leaves anything behind.
        Some(ids) if dp.find(&context, "h").is_some() => {
            let registry = core.clone();
            registry.channels.when_gone(&ids, move || {
                let run = move || run_h(&core, &dp, &context, snapshot);
                if let Err(e) = crate::threads::run(run) {
                    log::error!("cannot start a PBX thread for the h extension: {e}");
                }
            });
        }
        Some(_) => {}
    }
}

/// Steps through the dialplan until the channel is gone or parked in a
/// bridge. `last` keeps the channel as it was after its last step
/// (variables included) for the `h` extension; returns the context
/// execution ended in, and the channels a parked call waits on.
fn run_steps(
    core: &Arc<Core>,
    dp: &Dialplan,
    chan: ChannelId,
    mut context: String,
    mut exten: String,
    last: &mut Option<Channel>,
) -> (String, Option<Vec<ChannelId>>) {
    let mut prio: u32 = 1;
    loop {
        let Some(ch) = core.channels.get(chan) else {
            return (context, None);
        };
        *last = Some(ch.clone());
        let Some((ctx, ext)) = dp.find(&context, &exten) else {
            // Asterisk sends a call that lands on a missing extension to `i`.
            if exten != "i" && dp.find(&context, "i").is_some() {
                log::info!(
                    "    -- Sent into invalid extension '{exten}' in context '{context}' on {}",
                    ch.name
                );
                set_var(core, chan, "INVALID_EXTEN", &exten);
                exten = "i".into();
                prio = 1;
                continue;
            }
            log::info!(
                "Extension '{exten}' not found in context '{context}': hanging up '{}'",
                ch.name
            );
            let _ = core.hangup(chan, Cause::UNALLOCATED);
            return (context, None);
        };
        let Some(step) = ext.steps.iter().find(|s| s.priority == prio) else {
            // Autofallthrough: the extension ran out of priorities.
            let status = crate::vars::fetch(&ch.vars, "DIALSTATUS").map_or("UNKNOWN", |s| s);
            log::info!(
                "Auto fallthrough, channel '{}' status is '{status}'",
                ch.name
            );
            hangup_as_is(core, chan);
            return (context, None);
        };
        let data = substitute(&step.data, &|v| lookup(dp, &ch, &exten, &context, prio, v));
        core.channels.update(chan, |c| {
            c.context = ctx.name.clone();
            c.exten = exten.clone();
            c.priority = prio;
            c.application = step.app.clone();
            c.app_data = data.clone();
        });
        log::info!(
            "    -- Executing [{exten}@{}:{prio}] {}(\"{}\", \"{data}\") in new stack",
            ctx.name,
            step.app,
            ch.name
        );
        let ctx_name = ctx.name.clone();
        let next = execute(core, chan, &step.app, &data, &ctx_name);
        match core.channels.get(chan) {
            Some(now) => *last = Some(now),
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
                            log::warn!("Goto: no label '{target}' in {exten}@{context}");
                            hangup_as_is(core, chan);
                            return (context, None);
                        }
                    },
                };
            }
        }
    }
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
        log::info!(
            "    -- Executing [h@{}:{prio}] {}(\"{}\", \"{data}\") in new stack",
            ctx.name,
            step.app,
            ch.name
        );
        prio += 1;
        match step.app.to_ascii_lowercase().as_str() {
            "noop" => {}
            "verbose" => log::info!("{}", verbose_text(&data)),
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

/// Sleeps up to `d`, returning early (false) if the channel hangs up.
fn wait(core: &Core, chan: ChannelId, d: Duration) -> bool {
    let end = Instant::now() + d;
    let signal = Signal::new();
    core.channels.watch(&[chan], &signal);
    while Instant::now() < end && alive(core, chan) {
        signal.wait(
            end.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(500)),
        );
    }
    core.channels.unwatch(&[chan], &signal);
    alive(core, chan)
}

/// Hangs `chan` up with the cause it already carries (Asterisk's
/// `ast_hangup` at the end of the dialplan): a failed Dial left USER_BUSY
/// there, so chan_sip answers the caller `486 Busy Here`, not the `603
/// Declined` of a normal clearing. A channel without one is a normal clearing.
fn hangup_as_is(core: &Core, chan: ChannelId) {
    let cause = core
        .channels
        .get(chan)
        .map(|c| c.cause)
        .filter(|c| *c != Cause::NOT_DEFINED)
        .unwrap_or(Cause::NORMAL_CLEARING);
    let _ = core.hangup(chan, cause);
}

fn set_var(core: &Core, chan: ChannelId, name: &str, value: &str) {
    core.channels
        .update(chan, |c| crate::vars::store(&mut c.vars, name, value));
}

/// Asterisk's `handle_cause` in app_dial: what DIALSTATUS a failed request gives.
fn dialstatus(cause: Cause) -> &'static str {
    match cause.0 {
        17 => "BUSY",
        34 | 42 => "CONGESTION",
        19 | 18 => "NOANSWER",
        _ => "CHANUNAVAIL",
    }
}

fn execute(core: &Arc<Core>, chan: ChannelId, app: &str, data: &str, context: &str) -> Next {
    let args: Vec<&str> = if data.is_empty() {
        Vec::new()
    } else {
        data.split(',').collect()
    };
    match app.to_ascii_lowercase().as_str() {
        "noop" => Next::Continue,
        "verbose" => {
            log::info!("{}", verbose_text(data));
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
            if wait(core, chan, Duration::from_secs_f64(secs.max(0.0))) {
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
        "dial" => dial(core, chan, &args),
        other => {
            log::warn!("No application '{other}' for extension in context '{context}': hanging up");
            hangup_as_is(core, chan);
            Next::Stop
        }
    }
}

/// `Dial(Tech/res[&Tech/res…][,timeout])`: calls every target at once; the first
/// to answer is bridged with the caller and the others are hung up
/// (ANSWERED_ELSEWHERE). Ringing is passed back to the caller. DIALSTATUS is
/// ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION or CHANUNAVAIL as app_dial sets it.
///
/// The caller's hangup cause follows app_dial too: a target that cannot be
/// requested (the last one) or called, or that hangs up (busy, congested,
/// rejected…), leaves its cause on the caller, so `${HANGUPCAUSE}` names it
/// and the caller's eventual hangup carries it (chan_sip: 486 for USER_BUSY,
/// 488 for BEARERCAPABILITY_NOTAVAIL…); an answer sets NORMAL_CLEARING; a
/// Dial timeout leaves it as it was.
fn dial(core: &Arc<Core>, chan: ChannelId, args: &[&str]) -> Next {
    let targets = args.first().copied().unwrap_or("");
    let timeout = args
        .get(1)
        .and_then(|t| t.trim().parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs);
    let caps = core
        .channels
        .get(chan)
        .map(|c| Capabilities::of(&c.codecs))
        .unwrap_or_else(|| Capabilities::of(&[Codec::PCMU, Codec::PCMA]));
    let mut status = "CHANUNAVAIL";
    let mut outs = Vec::new();
    let list: Vec<&str> = targets
        .split('&')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    for (i, t) in list.iter().copied().enumerate() {
        let Some((tech, resource)) = t.split_once('/') else {
            log::warn!("Dial: bad target '{t}'");
            continue;
        };
        match core.request(tech, caps, resource, Some(chan)) {
            Ok(out) => {
                let vars = core
                    .channels
                    .get(chan)
                    .map(|c| crate::vars::inherited(&c.vars))
                    .unwrap_or_default();
                core.channels.update(out, |c| c.vars.extend(vars));
                match core.call(out, resource, timeout.map_or(0, |d| d.as_millis() as u32)) {
                    Ok(()) => {
                        log::info!("    -- Called {t}");
                        outs.push(out);
                    }
                    Err(c) => {
                        log::info!(
                            "    -- Couldn't call {t} (cause {} - {})",
                            c.0,
                            c.description()
                        );
                        status = dialstatus(c);
                        core.channels.set_cause(chan, c);
                        let _ = core.hangup(out, c);
                    }
                }
            }
            Err(c) => {
                log::info!(
                    "Unable to create channel of type '{tech}' (cause {} - {})",
                    c.0,
                    c.description()
                );
                status = dialstatus(c);
                if i + 1 == list.len() {
                    core.channels.set_cause(chan, c);
                }
            }
        }
    }
    if outs.is_empty() {
        set_var(core, chan, "DIALSTATUS", status);
        return Next::Continue;
    }
    let started = Instant::now();
    let mut ringing_sent = false;
    // The callee whose early media the caller hears (the first to signal
    // progress), as app_dial passes AST_CONTROL_PROGRESS on.
    let mut early: Option<ChannelId> = None;
    let signal = Signal::new();
    let mut watched = outs.clone();
    watched.push(chan);
    core.channels.watch(&watched, &signal);
    let answered = loop {
        if !alive(core, chan) {
            for o in &outs {
                let _ = core.hangup(*o, Cause::NORMAL_CLEARING);
            }
            return Next::Stop; // the caller hung up: DIALSTATUS=CANCEL, nothing left to run
        }
        let mut still = Vec::new();
        let mut up = None;
        for o in &outs {
            match core.channels.state(*o) {
                Some(sirius_abi::ChannelState::Up) => up = Some(*o),
                Some(state) => {
                    if state == sirius_abi::ChannelState::Ringing && !ringing_sent {
                        let _ = core.indicate(chan, Indication::Ringing);
                        ringing_sent = true;
                    }
                    if early.is_none() && core.channels.progress(*o) {
                        early = Some(*o);
                        let _ = core.indicate(chan, Indication::Progress);
                        if let Err(c) = core.early_media(chan, *o) {
                            log::debug!("no early media from {o} to {chan}: cause {}", c.0);
                        }
                    }
                    still.push(*o);
                }
                None => {
                    if early == Some(*o) {
                        early = None; // another callee's progress may follow
                    }
                    let cause = core
                        .channels
                        .ended_cause(*o)
                        .unwrap_or(Cause::NORMAL_CLEARING);
                    core.channels.set_cause(chan, cause);
                    status = dialstatus(cause);
                }
            }
        }
        if let Some(winner) = up {
            for o in outs.iter().filter(|o| **o != winner) {
                let _ = core.hangup(*o, Cause::ANSWERED_ELSEWHERE);
            }
            break winner;
        }
        outs = still;
        if outs.is_empty() {
            set_var(core, chan, "DIALSTATUS", status);
            return Next::Continue;
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            for o in &outs {
                let _ = core.hangup(*o, Cause::NO_ANSWER);
            }
            set_var(core, chan, "DIALSTATUS", "NOANSWER");
            return Next::Continue;
        }
        // Woken by every change of a watched leg (state, progress, gone):
        // nothing to poll; the only deadline is Dial's own timeout.
        let left = timeout.map_or(Duration::from_secs(3600), |t| {
            t.saturating_sub(started.elapsed())
        });
        signal.wait(left);
    };
    core.channels.unwatch(&watched, &signal);
    set_var(core, chan, "DIALSTATUS", "ANSWER");
    core.channels.set_cause(chan, Cause::NORMAL_CLEARING);
    if core
        .channels
        .get(chan)
        .is_some_and(|c| c.state != sirius_abi::ChannelState::Up)
    {
        if let Err(c) = core.answer(chan) {
            let _ = core.hangup(answered, c);
            let _ = core.hangup(chan, c);
            return Next::Stop;
        }
    }
    // Bridge: a hangup on either leg now hangs up the other (Core::channel_gone).
    let Ok(how) = core.bridge(chan, answered) else {
        // A leg hung up before the bridge was made; the other was hung up too.
        return Next::Stop;
    };
    let name = |id: ChannelId| {
        core.channels
            .get(id)
            .map_or_else(|| id.to_string(), |c| c.name)
    };
    log::info!(
        "    -- {} answered {}; bridged ({how})",
        name(answered),
        name(chan)
    );
    // The media flows without us; a hangup on either leg ends both.
    Next::Park(vec![chan, answered])
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

/// `Verbose([level,]text)`: the text.
fn verbose_text(data: &str) -> &str {
    data.split_once(',').map_or(data, |(_, m)| m)
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
            .cloned()
            .or_else(|| dp.globals.get(name).cloned())
            .unwrap_or_default(),
    }
}
