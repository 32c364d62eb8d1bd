//! `Dial`: app_dial's parallel ring, on the PBX pool. While the targets
//! ring the call holds no thread: it awaits a change of any of its legs
//! (ringing, progress, answer, hangup) or its timeout.

use crate::exec::{alive, dialstatus, set_var, Next, Watch};
use sirius_abi::{Capabilities, Cause, ChannelId, Codec, Indication};
use sirius_core::Core;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
///
/// The technology calls that wait for a driver's answer (`call`, the
/// bridge, early media) run on a pool worker, briefly: chan_sip answers
/// them in one turn of its driver.
pub(crate) async fn dial(core: &Arc<Core>, chan: ChannelId, args: &[&str]) -> Next {
    let targets = args.first().copied().unwrap_or("");
    let timeout = args
        .get(1)
        .and_then(|t| t.trim().parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs);
    let caps = core
        .channels
        .read(chan, |c| Capabilities::of(&c.codecs))
        .unwrap_or_else(|| Capabilities::of(&[Codec::PCMU, Codec::PCMA]));
    // The dialplan run this Dial belongs to, read before any callee is
    // requested: a redirect (or transfer) of the caller starts another
    // run, and this Dial then gives up its callees.
    let mine = core.channels.read(chan, |c| c.plan);
    let mut status = "CHANUNAVAIL";
    let mut outs = Vec::new();
    // Each callee called and its dial string, for `DialEnd`.
    // (Its name: a callee gone by its `DialEnd` is named as it was.)
    let mut dialed: Vec<(ChannelId, &str, String)> = Vec::new();
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
                    .read(chan, |c| crate::vars::inherited(&c.vars))
                    .unwrap_or_default();
                core.channels.update(out, |c| c.vars.extend(&vars));
                match core.call(out, resource, timeout.map_or(0, |d| d.as_millis() as u32)) {
                    Ok(()) => {
                        sirius_abi::verbose!(3, "    -- Called {t}");
                        let callee = dial_event(core, chan, (out, ""), t, None);
                        dialed.push((out, t, callee));
                        outs.push(out);
                    }
                    Err(c) => {
                        sirius_abi::verbose!(
                            3,
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
    let mut watched = outs.clone();
    watched.push(chan);
    let watch = Watch::new(core, watched);
    // The only deadline is Dial's own timeout; without one, an hour at a
    // time (every change of a leg wakes us anyway).
    let deadline = |now: Instant| timeout.map_or(now + Duration::from_secs(3600), |t| started + t);
    // A callee's ringing picked up by another phone: that phone's call.
    let mut picked: Option<ChannelId> = None;
    let answered = loop {
        if !alive(core, chan) {
            dial_end_all(core, chan, &dialed, &outs, "CANCEL");
            for o in &outs {
                let _ = core.hangup(*o, Cause::NORMAL_CLEARING);
                // A phone that picked a callee up has nobody to talk to.
                if let Some(picker) = core.take_pickup(*o) {
                    let _ = core.hangup(picker, Cause::NORMAL_CLEARING);
                }
            }
            return Next::Stop; // the caller hung up: DIALSTATUS=CANCEL, nothing left to run
        }
        if core.channels.read(chan, |c| c.plan) != mine {
            // Redirected while its callees ring: they are hung up (as
            // app_dial does on an async goto). The caller's indications
            // are the new run's now: none is sent from here (a StopTones
            // could cancel the ringing the new run already started).
            dial_end_all(core, chan, &dialed, &outs, "CANCEL");
            for o in &outs {
                let _ = core.hangup(*o, Cause::NORMAL_CLEARING);
                if let Some(picker) = core.take_pickup(*o) {
                    let _ = core.hangup(picker, Cause::NORMAL_CLEARING);
                }
            }
            return Next::Stop;
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
                    if let Some(picker) = core.take_pickup(*o) {
                        // Another phone picked this callee's ringing up
                        // (INVITE with Replaces): it is the answer.
                        picked = Some(picker);
                        up = Some(picker);
                        continue;
                    }
                    let cause = core
                        .channels
                        .ended_cause(*o)
                        .unwrap_or(Cause::NORMAL_CLEARING);
                    core.channels.set_cause(chan, cause);
                    status = dialstatus(cause);
                    dial_end_all(core, chan, &dialed, &[*o], status);
                }
            }
        }
        if let Some(winner) = up {
            dial_end_all(core, chan, &dialed, &[winner], "ANSWER");
            let others: Vec<ChannelId> = outs.iter().copied().filter(|o| *o != winner).collect();
            dial_end_all(core, chan, &dialed, &others, "CANCEL");
            for o in outs.iter().filter(|o| **o != winner) {
                let _ = core.hangup(*o, Cause::ANSWERED_ELSEWHERE);
            }
            break winner;
        }
        outs = still;
        // The ringing this Dial passed on stops with it (an answered
        // caller hears it as a tone: Asterisk stops indications here too).
        let stop_ringing = |ringing_sent: bool| {
            if ringing_sent {
                let _ = core.indicate(chan, Indication::StopTones);
            }
        };
        if outs.is_empty() {
            stop_ringing(ringing_sent);
            set_var(core, chan, "DIALSTATUS", status);
            return Next::Continue;
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            dial_end_all(core, chan, &dialed, &outs, "NOANSWER");
            for o in &outs {
                let _ = core.hangup(*o, Cause::NO_ANSWER);
            }
            stop_ringing(ringing_sent);
            set_var(core, chan, "DIALSTATUS", "NOANSWER");
            return Next::Continue;
        }
        // Woken by every change of a watched leg (state, progress, gone):
        // nothing to poll, and no thread held meanwhile.
        watch.changed(deadline(Instant::now())).await;
    };
    drop(watch);
    if picked == Some(answered) {
        if let Err(c) = core.answer(answered) {
            let _ = core.hangup(chan, c);
            return Next::Stop;
        }
    }
    set_var(core, chan, "DIALSTATUS", "ANSWER");
    core.channels.set_cause(chan, Cause::NORMAL_CLEARING);
    if core
        .channels
        .state(chan)
        .is_some_and(|state| state != sirius_abi::ChannelState::Up)
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
            .read(id, |c| c.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    sirius_abi::verbose!(
        3,
        "    -- {} answered {}; bridged ({how})",
        name(answered),
        name(chan)
    );
    // The media flows without us; a hangup on either leg ends both.
    Next::Park(vec![chan, answered])
}

/// `DialBegin` (no status) or `DialEnd` (`DialStatus`) as Asterisk 12+
/// writes them: the caller's fields, the callee's prefixed with `Dest`,
/// then `DialString` (and `DialStatus`). Built only when someone listens.
/// Returns the callee's name (empty when nobody listens).
fn dial_event(
    core: &Arc<Core>,
    caller: ChannelId,
    (callee, callee_name): (ChannelId, &str),
    dialstring: &str,
    status: Option<&str>,
) -> String {
    if !core.events.wanted() {
        return String::new();
    }
    let name = if status.is_some() {
        "DialEnd"
    } else {
        "DialBegin"
    };
    let Some(a) = core.channels.get(caller) else {
        return String::new();
    };
    let linkedid = core.channels.linkedid(&a);
    let mut e = sirius_core::events::Event::new(name);
    e.channel("", &a, &linkedid);
    // A callee already gone (busy, failed) is described as it was last known: by name only.
    let name = match core.channels.get(callee) {
        Some(b) => {
            e.channel("Dest", &b, &linkedid);
            b.name
        }
        None => {
            e.push("DestChannel", callee_name);
            callee_name.to_string()
        }
    };
    e.push(
        "DialString",
        dialstring.split_once('/').map_or(dialstring, |(_, r)| r),
    );
    if let Some(s) = status {
        e.push("DialStatus", s);
    }
    core.events.publish(e);
    name
}

/// `DialEnd` with `status` for each of `which` among the callees dialled.
fn dial_end_all(
    core: &Arc<Core>,
    caller: ChannelId,
    dialed: &[(ChannelId, &str, String)],
    which: &[ChannelId],
    status: &str,
) {
    if !core.events.wanted() {
        return;
    }
    for (o, t, name) in dialed.iter().filter(|(o, _, _)| which.contains(o)) {
        dial_event(core, caller, (*o, name), t, Some(status));
    }
}
