//! Attended transfer: a REFER whose Refer-To carries `Replaces` naming the
//! transferor's other call (RFC 5589 §7). The transferee (the REFER's
//! call's other party) is bridged with the target (the other call's), and
//! both of the transferor's legs end.
//!
//! ```text
//!  REFER (call 1) Refer-To: <…?Replaces=call 2>     202, NOTIFY 100 (refer.rs)
//!    │ call 2's shard = shard_of(its Call-ID)
//!    ├─ here: its session, at once
//!    └─ another shard: ShardMsg::Find ─▶ there ─▶ ShardMsg::Found (2 s at most)
//!    ▼
//!  none / ended ─▶ NOTIFY 481    another peer's call ─▶ NOTIFY 403
//!  still ringing (semi-attended) ─▶ blind to the Refer-To's extension (as
//!  refer.rs does), the consultation call ended
//!    ▼ core: attended_transfer(call 1's leg, call 2's leg)
//!  transferee ══ target bridged (across shards: the target's media is lent,
//!  `lend.rs`), call 2's leg hung up by the core (BYE), NOTIFY 200; call 1's
//!  leg ends as a blind transfer's does (its BYE, or ours 4 s later)
//! ```
//!
//! The Refer-To's user part is not dialled: the target is already in a call.
//! Only the same peer's two calls can be joined this way (a REFER cannot
//! take over somebody else's call by naming its dialog).

use super::refer::refused_transfer;
use crate::endpoint::{Endpoint, Env, Now, Output};
use sirius_abi::{Cause, ChannelId};
use sirius_sip::dialog::{DialogId, DialogState};
use sirius_sip::refer::Replaces;
use std::time::Duration;

/// How long another shard has to say whether it holds the named call.
pub(crate) const FIND_WAIT: Duration = Duration::from_secs(2);

/// What a shard tells another about one of its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLeg {
    /// The call's channel.
    pub chan: ChannelId,
    /// The peer it counts against (`None`: a guest).
    pub peer: Option<String>,
    /// Its dialog is confirmed (answered), not early.
    pub confirmed: bool,
    /// We sent its INVITE (a Dial's callee), not the far end.
    pub uac: bool,
}

/// What one shard asks or tells another about calls (the driver carries
/// it as a command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardMsg {
    /// Which call has dialog `id`? (A REFER with Replaces on shard `from`.)
    Find {
        /// The asker's transfer.
        ticket: u64,
        /// The asking shard.
        from: usize,
        /// The dialog named.
        id: DialogId,
        /// For an INVITE with Replaces (`replaces.rs`), not a REFER.
        invite: bool,
    },
    /// The answer to [`ShardMsg::Find`].
    Found {
        /// The asker's transfer.
        ticket: u64,
        /// The call, if this shard has it.
        leg: Option<FoundLeg>,
        /// As the question said.
        invite: bool,
    },
    /// A leg of this shard was transferred by another shard's REFER: take
    /// it off hold if we put it on hold.
    Unhold(ChannelId),
    /// The leg of another shard bridged with this shard's leg put the call
    /// on hold (true) or took it off: pass it on to our leg.
    Hold(ChannelId, bool),
    /// Shard `from`'s transfer `ticket` moved our leg `chan`: report its
    /// progress there.
    Watch {
        /// Ours.
        chan: ChannelId,
        /// The transferor's shard.
        from: usize,
        /// Its transfer.
        ticket: u64,
    },
    /// Another shard's transfer ends our call `chan` (a consultation call
    /// overtaken by a semi-attended transfer).
    End(ChannelId),
    /// A shared line's appearances changed (`crate::sca`): this shard's
    /// call-info subscribers of it are told.
    LineChanged(String),
    /// The progress of a leg another shard watches for transfer `ticket`.
    Progress {
        /// The transfer.
        ticket: u64,
        /// The sipfrag status.
        code: u16,
        /// Its reason phrase.
        reason: String,
        /// The final report.
        last: bool,
    },
}

impl Endpoint {
    /// The call of dialog `id` on this shard.
    pub(crate) fn find_leg(&self, id: &DialogId) -> Option<FoundLeg> {
        let chan = self.sessions.by_dialog(id)?;
        let s = self.sessions.get(chan)?;
        let confirmed = self
            .dialogs
            .get(id)
            .is_some_and(|d| d.state == DialogState::Confirmed);
        Some(FoundLeg {
            chan,
            peer: s.peer.clone(),
            confirmed,
            uac: matches!(s.role, super::Role::Uac { .. }),
        })
    }

    /// The attended half of a REFER, once 202 and NOTIFY 100 are out: find
    /// the call `replaces` names, here or on its shard.
    pub(crate) fn refer_replaces(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        key: u64,
        replaces: &Replaces,
    ) {
        let id = replaces.dialog_id();
        let k = crate::shards::shard_of(id.call_id.as_bytes(), self.home.count);
        if k == self.home.index {
            let leg = self.find_leg(&id);
            return self.refer_replaces_found(now, env, key, leg);
        }
        let deadline = now.mono + FIND_WAIT;
        self.refers.finding(key, deadline);
        self.refer_timers.insert((deadline, key));
        let from = self.home.index;
        self.out.push_back(Output::Shard(
            k,
            ShardMsg::Find {
                ticket: key,
                from,
                id,
                invite: false,
            },
        ));
    }

    /// The named call is known (or known not to exist): the transfer is
    /// made or refused, and the transferor told.
    pub(crate) fn refer_replaces_found(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        key: u64,
        leg: Option<FoundLeg>,
    ) {
        let Some(t1) = self.refers.transferor_of(key) else {
            return;
        };
        let peer = self.sessions.get(t1).and_then(|s| s.peer.clone());
        let fallback = self.refers.fallback.remove(&key);
        let outcome = match leg {
            None => Err((481, "Call/Transaction Does Not Exist")),
            Some(l) if l.peer.is_none() || l.peer != peer => Err((403, "Forbidden")),
            // Semi-attended: the transferor hangs up its consultation call
            // while the target still rings. The transferee is sent to the
            // extension the consultation call dialled (the Refer-To's), as
            // a blind transfer, and the consultation call ends (its Dial
            // stops ringing the target, the transferee's rings it anew).
            Some(l) if !l.confirmed && !l.uac => {
                let Some(target) = fallback else {
                    return self.refer_status(now, key, 503, "Service Unavailable", true);
                };
                sirius_abi::verbose!(
                    3,
                    "    -- {} transfers before its consultation call is answered: blind to {}@{}",
                    self.sessions.name(t1),
                    target.1,
                    target.0
                );
                let _ = self.blind_move(now, env, key, t1, target);
                if self.refers.watches_any_for(key) {
                    self.end_anywhere(now, l.chan);
                }
                return;
            }
            Some(l) if !l.confirmed => Err((503, "Service Unavailable")),
            Some(l) => env
                .attended_transfer(t1, l.chan)
                .map_err(|cause| match cause {
                    Cause::INVALID_CALL_REFERENCE => (603, "Declined"),
                    c => refused_transfer(c),
                }),
        };
        match outcome {
            Ok((a, c)) => {
                self.refers.made(key);
                // Each was put on hold through us, likely: both must hear.
                for x in [a, c] {
                    self.unhold_anywhere(now, x);
                }
                self.refer_status(now, key, 200, "OK", true);
            }
            Err((code, reason)) => {
                log::info!(
                    "Attended transfer by {} refused: {code} {reason}",
                    self.sessions.name(t1)
                );
                self.refer_status(now, key, code, reason, true);
            }
        }
    }

    /// Ends the call of `chan` (BYE, or a final response while it rings),
    /// here or on its own shard.
    fn end_anywhere(&mut self, now: Now, chan: ChannelId) {
        if self.sessions.get(chan).is_some() {
            self.hangup_call(now, chan, Cause::NORMAL_CLEARING);
            return self.host(crate::endpoint::HostAction::Hangup(
                chan,
                Cause::NORMAL_CLEARING,
            ));
        }
        self.tell_home_of(chan, ShardMsg::End(chan));
    }

    /// Sends `msg` to the shard `chan` lives on, when that is another one
    /// (a leg of ours is handled here, not told).
    pub(crate) fn tell_home_of(&mut self, chan: ChannelId, msg: ShardMsg) {
        let home = self.shared.shards.home(chan);
        if home != self.home.index {
            self.out.push_back(Output::Shard(home, msg));
        }
    }

    /// Takes `chan` off hold if we held it: here, or on its own shard.
    pub(crate) fn unhold_anywhere(&mut self, now: Now, chan: ChannelId) {
        match self.sessions.get(chan) {
            Some(s) if s.local_hold => self.send_hold(now, chan, false),
            Some(_) => {}
            None => self.tell_home_of(chan, ShardMsg::Unhold(chan)),
        }
    }

    /// A message from another shard.
    pub(crate) fn on_shard(&mut self, now: Now, msg: ShardMsg, env: &mut dyn Env) {
        match msg {
            ShardMsg::Find {
                ticket,
                from,
                id,
                invite,
            } => {
                let leg = self.find_leg(&id);
                let found = ShardMsg::Found {
                    ticket,
                    leg,
                    invite,
                };
                self.out.push_back(Output::Shard(from, found));
            }
            ShardMsg::Found {
                ticket,
                leg,
                invite: true,
            } => {
                if let Some(p) = self.refers.replacing.remove(&ticket) {
                    self.replace_found(now, env, p.chan, p.early_only, leg);
                }
            }
            ShardMsg::Found {
                ticket,
                leg,
                invite: false,
            } => {
                if self.refers.found(ticket) {
                    self.refer_replaces_found(now, env, ticket, leg);
                }
            }
            ShardMsg::Unhold(chan) => {
                if self.sessions.get(chan).is_some_and(|s| s.local_hold) {
                    self.send_hold(now, chan, false);
                }
            }
            ShardMsg::Hold(chan, held) => {
                if self.sessions.get(chan).is_some() {
                    self.send_hold(now, chan, held);
                }
            }
            ShardMsg::Watch { chan, from, ticket } => self.refer_watch_for(chan, from, ticket),
            ShardMsg::End(chan) => self.end_anywhere(now, chan),
            ShardMsg::LineChanged(line) => self.line_subscribers_flush(&line),
            ShardMsg::Progress {
                ticket,
                code,
                reason,
                last,
            } => self.refer_status(now, ticket, code, &reason, last),
        }
    }
}
