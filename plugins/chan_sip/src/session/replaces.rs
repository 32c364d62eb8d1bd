//! INVITE with `Replaces` (RFC 3891): a new call takes the place of one of
//! ours, named by its dialog.
//!
//! ```text
//!  INVITE  Replaces: <call-id>;to-tag=<ours>;from-tag=<theirs>[;early-only]
//!    │ a guest ─▶ 403     several or unparsable ─▶ 400     (before anything)
//!    │ the new call's channel made (not yet a dialplan), 100 Trying
//!    │ the named dialog's shard: here, or ShardMsg::Find (2 s at most)
//!    ▼
//!  none ─▶ 481        another peer's call, not in the same context ─▶ 403
//!  confirmed, early-only ─▶ 486        early and not ours (an inbound
//!  call still ringing) ─▶ 481
//!    ├─ confirmed: the core puts the new call in its bridge (Core::replace):
//!    │  200 to the new caller, BYE to the replaced leg, its partner stays
//!    └─ early, a leg we are calling (a Dial's callee ringing): call pickup
//!       (Core::pickup): CANCEL to the ringing phone, the Dial answers the
//!       new caller instead
//! ```
//!
//! Rights: only an authenticated peer may replace, and only a call of its
//! own or of a peer in the same context (a directed pickup within a group
//! that shares its dialplan).

use super::attended::{FoundLeg, FIND_WAIT};
use crate::causes::{cause_to_sip, sip_to_cause};
use crate::endpoint::{Endpoint, Env, HostAction, Now, Output, ShardMsg};
use sirius_abi::ChannelId;
use sirius_sip::refer::Replaces;

/// An INVITE with Replaces waiting for another shard's answer.
pub(crate) struct PendingReplace {
    /// The new call's channel.
    pub chan: ChannelId,
    /// `;early-only`.
    pub early_only: bool,
    /// No answer by then: 481.
    pub until: std::time::Instant,
}

impl Endpoint {
    /// The new call `chan` (its session made, no dialplan) replaces the
    /// dialog `replaces` names, once found.
    pub(crate) fn invite_replaces(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        chan: ChannelId,
        replaces: &Replaces,
    ) {
        let id = replaces.dialog_id();
        let k = crate::shards::shard_of(id.call_id.as_bytes(), self.home.count);
        if k == self.home.index {
            let leg = self.find_leg(&id);
            return self.replace_found(now, env, chan, replaces.early_only, leg);
        }
        let ticket = self.refers.next_ticket();
        let until = now.mono + FIND_WAIT;
        self.refers.replacing.insert(
            ticket,
            PendingReplace {
                chan,
                early_only: replaces.early_only,
                until,
            },
        );
        self.refer_timers.insert((until, ticket));
        let from = self.home.index;
        self.out.push_back(Output::Shard(
            k,
            ShardMsg::Find {
                ticket,
                from,
                id,
                invite: true,
            },
        ));
    }

    /// The dialog named is known (or known not to exist).
    pub(crate) fn replace_found(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        chan: ChannelId,
        early_only: bool,
        leg: Option<FoundLeg>,
    ) {
        // The new caller may have given up (CANCEL) meanwhile.
        let Some(peer) = self.sessions.get(chan).map(|s| s.peer.clone()) else {
            return;
        };
        let outcome = match leg {
            None => Err((481, "Call/Transaction Does Not Exist")),
            Some(l) if !self.may_replace(peer.as_deref(), l.peer.as_deref()) => {
                Err((403, "Forbidden"))
            }
            Some(l) if l.confirmed && early_only => Err((486, "Busy Here")),
            // A shared line's call taken by another of its phones: the
            // appearance goes with it (RFC 7463 §5.3.2).
            Some(l) if l.confirmed => match self.sca_replace(env, chan, l.chan) {
                Some(taken) => taken,
                None => env
                    .replace(l.chan, chan)
                    .map(|()| self.sca_replacing_call(chan))
                    .map_err(cause_to_sip),
            },
            // RFC 3891 §3: an early dialog we did not start is not replaced.
            Some(l) if !l.uac => Err((481, "Call/Transaction Does Not Exist")),
            Some(l) => env
                .pickup(l.chan, chan)
                .map(|()| self.sca_replacing_call(chan))
                .map_err(cause_to_sip),
        };
        if let Err((code, reason)) = outcome {
            self.refuse_replace(now, chan, code, reason);
        }
    }

    /// Whether `replacing` (the new caller's peer) may take over a call of
    /// `replaced`: its own, or one of a peer of the same context.
    fn may_replace(&self, replacing: Option<&str>, replaced: Option<&str>) -> bool {
        let (Some(a), Some(b)) = (replacing, replaced) else {
            return false;
        };
        if a == b {
            return true;
        }
        let running = self.shared.running();
        match (running.peers.get(a), running.peers.get(b)) {
            (Some(a), Some(b)) => a.context == b.context,
            _ => false,
        }
    }

    /// A pending INVITE with Replaces got no answer from the other shard
    /// by `at`: the dialog named is nowhere.
    pub(crate) fn replace_timed_out(&mut self, now: Now, ticket: u64, at: std::time::Instant) {
        if self
            .refers
            .replacing
            .get(&ticket)
            .is_some_and(|p| p.until == at)
        {
            if let Some(p) = self.refers.replacing.remove(&ticket) {
                self.refuse_replace(now, p.chan, 481, "Call/Transaction Does Not Exist");
            }
        }
    }

    /// The new call is refused with `code`, its channel freed.
    fn refuse_replace(&mut self, now: Now, chan: ChannelId, code: u16, reason: &str) {
        log::info!(
            "INVITE with Replaces for {} refused: {code} {reason}",
            self.sessions.name(chan)
        );
        if let Some((tx, r)) = self.uas_response(chan, code, reason) {
            self.send_response(now, tx, r);
        }
        if self.take_session(chan).is_some() {
            self.host(HostAction::Hangup(chan, sip_to_cause(code)));
        }
    }
}
