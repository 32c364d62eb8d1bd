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
        self.start_at(&engine, chan, context, exten)
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
        context: &str,
        exten: &str,
    ) -> Result<(), Cause> {
        self.channels.cancel_gone_hooks(chan);
        let moved = self.channels.update(chan, |c| {
            c.context = context.to_string();
            c.exten = exten.to_string();
            c.priority = 1;
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
        self.start_at(&engine, transferee, context, exten)?;
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
