//! Transfers as the core does them, whatever technology asked (a SIP
//! REFER, later the dialplan's `Transfer()`): Asterisk's
//! `ast_bridge_transfer_blind` and the async goto under it.
//!
//! A blind transfer moves the *transferee* (the transferor's bridge
//! partner) out of the bridge and into the dialplan at the target, in a
//! context the transferor may use; the transferor's leg is left to its
//! technology (a SIP leg still owes the transferor its NOTIFYs).
//!
//! ```text
//!   transferor ══ bridge ══ transferee            (a call, Dial parked)
//!        │ blind_transfer(transferor, ctx, exten)
//!        ▼
//!   exists(ctx, exten)? ── no ──▶ Err(UNALLOCATED), the call goes on
//!        │ yes
//!   unbridge: bridged_to cleared both ways, the bridge record ends, a
//!   native bridge's technology told (native_unbridge) first
//!        │
//!   transferee: BLINDTRANSFER=<transferor>, its old dialplan's gone hooks
//!   cancelled (its `h` runs once, at the end of the new one), a new plan
//!   at exten@ctx priority 1 ───▶ Ok(transferee); event BlindTransfer
//! ```

use crate::core::{Core, PbxEngine};
use sirius_abi::{Cause, ChannelId};
use std::sync::Arc;

impl Core {
    /// Ends the bridge of `a` and `b` with both legs alive. A native bridge's
    /// technology is told first (`native_unbridge`), so its relay stops
    /// before either leg is used elsewhere. Returns false when they were
    /// not bridged to each other.
    pub fn unbridge(&self, a: ChannelId, b: ChannelId) -> bool {
        let paired = |x: ChannelId, y: ChannelId| {
            self.channels
                .get(x)
                .is_some_and(|c| c.bridged_to == Some(y))
        };
        if !paired(a, b) || !paired(b, a) {
            return false;
        }
        if let Some(bridge) = self.bridges.remove_pair(a, b) {
            if bridge.technology == crate::bridges::NATIVE_RTP {
                if let (Ok(tech), &[x, y]) = (self.tech_of(a), &bridge.channels[..]) {
                    Core::tell_unbridged(&tech, (x, y));
                }
            }
        }
        for (x, y) in [(a, b), (b, a)] {
            self.channels.update(x, |c| {
                if c.bridged_to == Some(y) {
                    c.bridged_to = None;
                }
            });
        }
        true
    }

    /// Runs `chan`'s dialplan anew at `exten@context`, priority 1 (Asterisk's
    /// async goto): the plan it ran before leaves nothing behind (its gone
    /// hooks are cancelled). Not `pbx_start`: a call already admitted is
    /// not refused for load; a leg that ran no dialplan yet (a Dial's
    /// callee) counts as a call from now on.
    pub fn async_goto(
        self: &Arc<Self>,
        chan: ChannelId,
        context: &str,
        exten: &str,
    ) -> Result<(), Cause> {
        let engine = self.engine_with(context, exten)?;
        self.start_at(&engine, chan, (context, exten, 1))
    }

    /// Call pickup (RFC 3891's INVITE with Replaces naming an early dialog,
    /// Asterisk's `ast_do_pickup`): `picker`, a new inbound call, takes the
    /// place of `ringing`, a callee still ringing for a Dial. The callee's
    /// leg is hung up (ANSWERED_ELSEWHERE: "call completed elsewhere") and
    /// the Dial that rang it answers `picker` instead (`take_pickup`).
    pub fn pickup(&self, ringing: ChannelId, picker: ChannelId) -> Result<(), Cause> {
        let state = self
            .channels
            .state(ringing)
            .ok_or(Cause::INVALID_CALL_REFERENCE)?;
        if state == sirius_abi::ChannelState::Up || !self.channels.exists(picker) {
            return Err(Cause::INVALID_CALL_REFERENCE);
        }
        // Only a leg a live dialplan rings (a Dial's callee) has somebody
        // to take the picker; a click-to-dial or originated leg has not.
        let dialer = self.channels.read(ringing, |c| c.dialed_by).flatten();
        if !dialer.is_some_and(|d| self.channels.exists(d)) {
            return Err(Cause::INVALID_CALL_REFERENCE);
        }
        self.pickups.lock().insert(ringing, picker);
        sirius_abi::verbose!(
            3,
            "    -- {} picked up {}",
            self.channel_name(picker),
            self.channel_name(ringing)
        );
        let _ = self.hangup(ringing, Cause::ANSWERED_ELSEWHERE);
        Ok(())
    }

    /// The picker of `callee` (a Dial's ringing leg that just went), once.
    pub fn take_pickup(&self, callee: ChannelId) -> Option<ChannelId> {
        let mut pickups = self.pickups.lock();
        let picker = pickups.remove(&callee);
        // A picker whose Dial ended first is not left behind.
        pickups.retain(|_, p| self.channels.exists(*p));
        picker
    }

    /// RFC 3891's INVITE with Replaces naming a confirmed dialog: `new`, a
    /// new inbound call, takes the place of `old` in its bridge; `old` is
    /// hung up, its partner stays and talks to `new` (answered here). The
    /// dialplan parked on the old pair waits on the new one.
    pub fn replace(&self, old: ChannelId, new: ChannelId) -> Result<(), Cause> {
        let partner = self
            .channels
            .get(old)
            .ok_or(Cause::INVALID_CALL_REFERENCE)?
            .bridged_to
            .ok_or(Cause::FACILITY_NOT_IMPLEMENTED)?;
        if !self.channels.exists(new) || !self.unbridge(old, partner) {
            return Err(Cause::INVALID_CALL_REFERENCE);
        }
        self.channels.retarget_gone_hooks(partner, old, new);
        self.channels.retarget_gone_hooks(old, partner, old);
        sirius_abi::verbose!(
            3,
            "    -- {} replaces {}",
            self.channel_name(new),
            self.channel_name(old)
        );
        if let Err(c) = self
            .answer(new)
            .and_then(|_| self.bridge(partner, new).map(|_| ()))
        {
            let _ = self.bridge(partner, old);
            return Err(c);
        }
        let _ = self.hangup(old, Cause::NORMAL_CLEARING);
        Ok(())
    }

    fn channel_name(&self, id: ChannelId) -> String {
        self.channels
            .read(id, |c| c.name.clone())
            .unwrap_or_else(|| id.to_string())
    }

    /// Asks `chan`'s technology to have its far end call `dest` (Asterisk's
    /// `ast_transfer`, the dialplan's `Transfer()`): a SIP leg gets a REFER.
    /// `Ok` means the request went out; its outcome arrives later in the
    /// channel's `transfer` ([`Core::transfer_result`]).
    pub fn transfer(&self, chan: ChannelId, dest: &str) -> Result<(), Cause> {
        let entry = self.tech_of(chan)?;
        self.channels.update(chan, |c| c.transfer = None);
        entry.tech.transfer(chan, dest.into()).into_result()
    }

    /// The technology's word on the transfer of `chan`: whoever waits on
    /// the channel (`Transfer()`) is woken.
    pub fn transfer_result(&self, chan: ChannelId, result: Result<(), Cause>) {
        self.channels.update(chan, |c| c.transfer = Some(result));
    }

    /// `channel redirect`: `chan` goes on at `exten@context`, `priority`
    /// (Asterisk's async goto of a channel from outside). A bridged
    /// channel leaves its bridge and the other party is hung up, as the
    /// other side of a two-party bridge is in Asterisk when one leaves.
    pub fn redirect(
        self: &Arc<Self>,
        chan: ChannelId,
        context: &str,
        exten: &str,
        priority: u32,
    ) -> Result<(), Cause> {
        let engine = self.engine_with(context, exten)?;
        let peer = self
            .channels
            .get(chan)
            .ok_or(Cause::INVALID_CALL_REFERENCE)?
            .bridged_to;
        if let Some(p) = peer {
            // The old plan's `h` must not run when the partner goes now.
            self.channels.cancel_gone_hooks(chan);
            self.unbridge(chan, p);
            let _ = self.hangup(p, Cause::NORMAL_CLEARING);
        }
        self.start_at(&engine, chan, (context, exten, priority.max(1)))
    }

    /// The dialplan engine, once `exten` is known to exist in `context`.
    fn engine_with(&self, context: &str, exten: &str) -> Result<Arc<dyn PbxEngine>, Cause> {
        let engine = self.pbx.read().clone().ok_or(Cause::NO_ROUTE_DESTINATION)?;
        match engine.exists(context, exten) {
            true => Ok(engine),
            false => Err(Cause::UNALLOCATED),
        }
    }

    /// The work of [`Core::async_goto`] once the target is checked.
    fn start_at(
        self: &Arc<Self>,
        engine: &Arc<dyn PbxEngine>,
        chan: ChannelId,
        (context, exten, priority): (&str, &str, u32),
    ) -> Result<(), Cause> {
        self.channels.cancel_gone_hooks(chan);
        let moved = self.channels.update(chan, |c| {
            c.context = context.to_string();
            c.exten = exten.to_string();
            c.priority = priority;
            c.plan = c.plan.wrapping_add(1);
        });
        if !moved {
            return Err(Cause::INVALID_CALL_REFERENCE);
        }
        self.channels.start_pbx(chan);
        engine.start(self, chan)
    }

    /// Blind transfer: `transferor`'s bridge partner goes to `exten@context`
    /// (the caller chooses the context: the transferor's, so the transfer
    /// has no rights the transferor lacks). Returns the transferee.
    ///
    /// `vars` are set on the transferee before its new dialplan starts
    /// (chan_sip's `SIPTRANSFER`, `SIPREFERREDBYHDR`…, as Asterisk's
    /// `refer_blind_callback` sets them), so its first step can read them.
    ///
    /// Errors leave the call as it was: `FACILITY_NOT_IMPLEMENTED` when the
    /// transferor is in no bridge, `UNALLOCATED` when the extension does
    /// not exist in `context`, `INVALID_CALL_REFERENCE` when a leg is gone.
    pub fn blind_transfer(
        self: &Arc<Self>,
        transferor: ChannelId,
        context: &str,
        exten: &str,
        vars: &[(String, String)],
    ) -> Result<ChannelId, Cause> {
        let from = self
            .channels
            .get(transferor)
            .ok_or(Cause::INVALID_CALL_REFERENCE)?;
        let outcome = self.move_transferee(&from, context, exten, vars);
        let (result, transferee_name) = match &outcome {
            Ok((_, name)) => ("Success", name.clone()),
            Err(c) if *c == Cause::UNALLOCATED => ("Invalid", String::new()),
            Err(_) => ("Fail", String::new()),
        };
        self.events.publish(crate::events::Event {
            name: "BlindTransfer".into(),
            fields: vec![
                ("Result".into(), result.into()),
                ("TransfererChannel".into(), from.name.clone()),
                ("TransfereeChannel".into(), transferee_name),
                ("IsExternal".into(), "Yes".into()),
                ("Context".into(), context.into()),
                ("Extension".into(), exten.into()),
            ],
        });
        outcome.map(|(id, _)| id)
    }

    /// Attended transfer (`ast_bridge_transfer_attended`): the transferor
    /// talks to the transferee on `t1` and to the target on `t2` (its
    /// consultation call); the transferee and the target are bridged to
    /// each other, and `t2` is hung up. `t1` is left to its technology (a
    /// SIP leg still owes its NOTIFY). Returns (transferee, target).
    ///
    /// ```text
    ///   a ══ t1 (transferor) t2 ══ c        a ══ c      t1: left to its tech
    ///                              ──▶                  t2: hung up
    /// ```
    ///
    /// The dialplans parked on the old pairs wait on the new one: a plan
    /// owned by `a` waited on (a, t1) and now waits on (a, c); one owned by
    /// `t1` waits on `t1` alone (likewise for `c` and `t2`), so each `h`
    /// runs once, when its own call ends. Errors leave both calls as they
    /// were: `FACILITY_NOT_IMPLEMENTED` when either leg is in no bridge or
    /// the two calls are one, `INVALID_CALL_REFERENCE` when a leg is gone.
    pub fn attended_transfer(
        self: &Arc<Self>,
        t1: ChannelId,
        t2: ChannelId,
    ) -> Result<(ChannelId, ChannelId), Cause> {
        let get = |id| self.channels.get(id).ok_or(Cause::INVALID_CALL_REFERENCE);
        let outcome = (|| {
            let (first, second) = (get(t1)?, get(t2)?);
            let a = first.bridged_to.ok_or(Cause::FACILITY_NOT_IMPLEMENTED)?;
            let c = second.bridged_to.ok_or(Cause::FACILITY_NOT_IMPLEMENTED)?;
            if a == t2 || a == t1 || c == t2 {
                return Err(Cause::FACILITY_NOT_IMPLEMENTED);
            }
            let (a_name, c_name) = (get(a)?.name, get(c)?.name);
            if !self.unbridge(t1, a) {
                return Err(Cause::INVALID_CALL_REFERENCE);
            }
            if !self.unbridge(t2, c) {
                // Put the first call back as it was.
                let _ = self.bridge(t1, a);
                return Err(Cause::INVALID_CALL_REFERENCE);
            }
            for (owner, from, to) in [(a, t1, c), (c, t2, a), (t1, a, t1), (t2, c, t2)] {
                self.channels.retarget_gone_hooks(owner, from, to);
            }
            for x in [a, c] {
                self.channels.update(x, |ch| {
                    ch.vars.insert("ATTENDEDTRANSFER", &first.name);
                    ch.vars.remove("BLINDTRANSFER");
                });
            }
            sirius_abi::verbose!(
                3,
                "    -- Attended transfer of '{a_name}' to '{c_name}' (by '{}' and '{}')",
                first.name,
                second.name
            );
            self.bridge(a, c)?;
            let _ = self.hangup(t2, Cause::NORMAL_CLEARING);
            Ok(((a, a_name), (c, c_name), first.name, second.name))
        })();
        let (result, fields) = match &outcome {
            Ok(((_, a), (_, c), n1, n2)) => {
                ("Success", [n1.clone(), n2.clone(), a.clone(), c.clone()])
            }
            Err(_) => ("Fail", Default::default()),
        };
        let [orig, second, transferee, target] = fields;
        self.events.publish(crate::events::Event {
            name: "AttendedTransfer".into(),
            fields: vec![
                ("Result".into(), result.into()),
                ("OrigTransfererChannel".into(), orig),
                ("SecondTransfererChannel".into(), second),
                ("TransfereeChannel".into(), transferee),
                ("TransferTargetChannel".into(), target),
                ("DestType".into(), "Bridge".into()),
                ("IsExternal".into(), "Yes".into()),
            ],
        });
        outcome.map(|((a, _), (c, _), _, _)| (a, c))
    }

    /// The work of [`Core::blind_transfer`]: the transferee and its name.
    fn move_transferee(
        self: &Arc<Self>,
        from: &crate::channels::Channel,
        context: &str,
        exten: &str,
        vars: &[(String, String)],
    ) -> Result<(ChannelId, String), Cause> {
        let transferee = from.bridged_to.ok_or(Cause::FACILITY_NOT_IMPLEMENTED)?;
        let to = self
            .channels
            .get(transferee)
            .ok_or(Cause::INVALID_CALL_REFERENCE)?;
        // Checked before the transferee leaves its bridge: a refusal leaves
        // the call as it was.
        let engine = self.engine_with(context, exten)?;
        if !self.unbridge(from.id, transferee) {
            return Err(Cause::INVALID_CALL_REFERENCE);
        }
        // Asterisk's set_transfer_variables_all: each side names the other.
        self.channels.update(transferee, |c| {
            c.vars.insert("BLINDTRANSFER", &from.name);
            c.vars.remove("ATTENDEDTRANSFER");
            for (k, v) in vars {
                c.vars.store(k, v);
            }
        });
        // The transferor's dialplan (a Dial parked on both legs) now waits
        // on the transferor alone: the transferee's end is no longer its
        // call's end (its `h` runs when the transferor goes).
        self.channels
            .retarget_gone_hooks(from.id, transferee, from.id);
        self.channels.update(from.id, |c| {
            c.vars.insert("BLINDTRANSFER", &to.name);
            c.vars.remove("ATTENDEDTRANSFER");
        });
        sirius_abi::verbose!(
            3,
            "    -- Blind transfer of '{}' to {exten}@{context} by '{}'",
            to.name,
            from.name
        );
        if let Err(cause) = self.start_at(&engine, transferee, (context, exten, 1)) {
            // The new dialplan did not start: the call goes back as it was
            // (the contract: an error leaves the call as it was).
            self.channels
                .retarget_gone_hooks(from.id, from.id, transferee);
            let _ = self.bridge(from.id, transferee);
            return Err(cause);
        }
        Ok((transferee, to.name))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{core_with, leg, Recorder};
    use sirius_abi::Cause;

    #[test]
    fn unbridging_tells_a_native_bridges_technology_and_leaves_both_legs_up() {
        let rec = Recorder::native();
        let (core, _dir) = core_with(&rec);
        let (a, b, c) = (leg(&core, "a"), leg(&core, "b"), leg(&core, "c"));
        assert_eq!(core.bridge(a, b), Ok(crate::bridges::NATIVE_RTP));
        rec.take_log();
        assert!(!core.unbridge(a, c), "not bridged to each other");
        assert!(core.unbridge(b, a));
        assert_eq!(rec.take_log(), vec![format!("unbridge {} {}", a.0, b.0)]);
        assert!(core.bridges.snapshot().is_empty());
        for x in [a, b] {
            assert_eq!(core.channels.get(x).unwrap().bridged_to, None);
        }
        assert!(!core.unbridge(a, b), "once");
        // A leg that goes now takes nobody with it.
        core.channel_gone(a, Cause::NORMAL_CLEARING);
        assert!(core.channels.exists(b));
        assert!(rec.take_log().iter().all(|l| !l.starts_with("hangup")));
    }

    #[test]
    fn an_attended_transfer_bridges_the_transferee_with_the_target_and_ends_the_consultation() {
        let rec = Recorder::native();
        let (core, _dir) = core_with(&rec);
        let (a, t1, t2, c) = (
            leg(&core, "a"),
            leg(&core, "t1"),
            leg(&core, "t2"),
            leg(&core, "c"),
        );
        core.bridge(a, t1).unwrap();
        // Not yet a consultation call: refused, nothing changes.
        assert_eq!(
            core.attended_transfer(t1, t2),
            Err(Cause::FACILITY_NOT_IMPLEMENTED)
        );
        assert_eq!(core.channels.get(a).unwrap().bridged_to, Some(t1));
        core.bridge(t2, c).unwrap();
        // a's dialplan (a Dial of t1) waits on its call.
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let r = ran.clone();
        core.channels.when_gone(&[a, t1], a, move || {
            r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let mut events = core.events.subscribe();
        rec.take_log();

        assert_eq!(core.attended_transfer(t1, t2), Ok((a, c)));
        let log = rec.take_log();
        let pos = |p: &str| log.iter().position(|l| l.starts_with(p));
        assert!(
            pos(&format!("unbridge {} {}", a.0, t1.0)).is_some()
                || pos(&format!("unbridge {} {}", t1.0, a.0)).is_some(),
            "{log:?}"
        );
        assert!(pos(&format!("hangup {}", t2.0)).is_some(), "{log:?}");
        assert_eq!(core.channels.get(a).unwrap().bridged_to, Some(c));
        assert_eq!(core.channels.get(c).unwrap().bridged_to, Some(a));
        assert!(!core.channels.exists(t2), "the consultation call ended");
        assert!(core.channels.exists(t1), "t1 is its technology's to end");
        let t1_name = core.channels.get(t1).unwrap().name;
        for x in [a, c] {
            assert_eq!(
                core.channels.get(x).unwrap().vars.get("ATTENDEDTRANSFER"),
                Some(t1_name.as_str())
            );
        }
        let e = std::iter::from_fn(|| events.try_recv().ok())
            .find(|e| e.name == "AttendedTransfer")
            .expect("an AttendedTransfer event");
        assert_eq!(e.get("Result"), Some("Success"));
        // The transferor leaves: nothing else ends, a's plan still waits…
        core.channel_gone(t1, Cause::NORMAL_CLEARING);
        assert!(core.channels.exists(a) && core.channels.exists(c));
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0);
        // …until its new call ends.
        core.channel_gone(c, Cause::NORMAL_CLEARING);
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_replacing_call_takes_the_old_legs_place_in_its_bridge() {
        let rec = Recorder::native();
        let (core, _dir) = core_with(&rec);
        let (a, old, new) = (leg(&core, "a"), leg(&core, "old"), leg(&core, "new"));
        assert_eq!(
            core.replace(old, new),
            Err(Cause::FACILITY_NOT_IMPLEMENTED),
            "not in a bridge"
        );
        core.bridge(a, old).unwrap();
        rec.take_log();
        assert_eq!(core.replace(old, new), Ok(()));
        assert_eq!(core.channels.get(a).unwrap().bridged_to, Some(new));
        assert_eq!(core.channels.get(new).unwrap().bridged_to, Some(a));
        assert!(!core.channels.exists(old));
        let log = rec.take_log();
        assert!(
            log.iter()
                .any(|l| l == &format!("bridge {} {}", a.0, new.0)),
            "{log:?}"
        );
        assert!(
            log.iter().any(|l| l == &format!("hangup {}", old.0)),
            "{log:?}"
        );
    }

    #[test]
    fn without_a_dialplan_a_transfer_is_refused_and_the_call_stays_bridged() {
        let rec = Recorder::native();
        let (core, _dir) = core_with(&rec);
        let (a, b) = (leg(&core, "a"), leg(&core, "b"));
        core.bridge(a, b).unwrap();
        let mut events = core.events.subscribe();
        assert_eq!(
            core.blind_transfer(a, "demo", "700", &[]),
            Err(Cause::NO_ROUTE_DESTINATION)
        );
        assert_eq!(core.channels.get(b).unwrap().bridged_to, Some(a));
        let e = events.try_recv().expect("a BlindTransfer event");
        assert_eq!(e.name, "BlindTransfer");
        assert_eq!(e.fields[0], ("Result".to_string(), "Fail".to_string()));
    }
}
