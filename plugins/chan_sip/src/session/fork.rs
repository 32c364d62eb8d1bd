//! A call to a peer registered from several phones (`max_contacts`) rings
//! them all: the session's own INVITE goes to the newest contact, and one
//! more INVITE transaction per other contact — the same Call-ID, From tag
//! and CSeq, a branch of its own, as a forking proxy sends them (RFC 3261
//! §16.6) — so that every phone's 1xx makes an early dialog of the one
//! session (`uac.rs`), and the first 2xx is the call.
//!
//! ```text
//!  call() ─▶ INVITE contact 1 (the session's own)   INVITE contact 2..n (branches)
//!             │ 1xx from any: ringing, early dialog per To tag
//!             ├─ 2xx from one ─▶ the call; every other INVITE gets CANCEL with
//!             │                  Reason: SIP;cause=200;text="Call completed elsewhere"
//!             │                  (a 2xx crossing it is ACKed and ended: usage Cancelled)
//!             ├─ a final failure from one ─▶ remembered (RFC 3261 §16.7's best: a 6xx,
//!             │                  else the lowest class); the call ends with the best
//!             │                  once every INVITE has failed
//!             └─ the core hangs up ─▶ CANCEL to all (the Reason when the cause is
//!                                ANSWERED_ELSEWHERE, as chan_sip's)
//! ```
//!
//! A branch answers challenges and redirects with a failure: a phone we
//! ring because it registered to us does not challenge us; the session's own
//! INVITE keeps every retry it has.

use super::usage::Cancelled;
use super::Role;
use crate::endpoint::{ClientUsage, Endpoint, Now};
use sirius_abi::ChannelId;
use sirius_sip::message::{HeaderName, Message, StartLine};
use sirius_sip::transaction::{CancelReason, Transport, TxId};
use std::net::SocketAddr;

/// Another contact of the peer a call rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkTarget {
    /// Where its INVITE goes.
    pub dest: SocketAddr,
    /// Over what.
    pub transport: Transport,
    /// Its Request-URI.
    pub ruri: String,
}

/// One branch of a forked call.
pub(crate) struct Branch {
    target: ForkTarget,
    /// Its INVITE transaction, once sent.
    tx: Option<TxId>,
    /// Its INVITE (a CANCEL's 2xx crossing is ACKed from it; the winner's
    /// dialog is made from it).
    invite: Option<Box<Message>>,
    /// It failed, or was cancelled: nothing more is waited for from it.
    done: bool,
}

/// The branches of a call beyond the session's own INVITE.
pub(crate) struct Forking {
    branches: Vec<Branch>,
    /// The best final failure so far, from any INVITE (RFC 3261 §16.7).
    best: Option<u16>,
    /// The session's own INVITE failed for good.
    own_failed: bool,
}

impl Forking {
    /// Branches to `targets`, none sent yet; `None` when there are none.
    pub(crate) fn new(targets: Vec<ForkTarget>) -> Option<Box<Forking>> {
        (!targets.is_empty()).then(|| {
            Box::new(Forking {
                branches: targets
                    .into_iter()
                    .map(|target| Branch {
                        target,
                        tx: None,
                        invite: None,
                        done: false,
                    })
                    .collect(),
                best: None,
                own_failed: false,
            })
        })
    }

    /// Whether a branch still waits for its final response.
    fn pending(&self) -> bool {
        self.branches.iter().any(|b| !b.done)
    }

    /// Remembers a final failure, keeping the best (§16.7: a 6xx wins, else
    /// the lowest class; within a class a busy phone (486) wins, as
    /// Asterisk's Dial reports BUSY when any callee was, else the first).
    fn failed(&mut self, code: u16) {
        self.best = Some(match self.best {
            None => code,
            Some(b) if b >= 600 => b,
            Some(_) if code >= 600 => code,
            Some(b) if code / 100 < b / 100 => code,
            Some(b) if code / 100 == b / 100 && code == 486 => code,
            Some(b) => b,
        });
    }
}

/// What the session's own INVITE failing means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnFailure {
    /// Another phone still rings: the call waits for it.
    Wait,
    /// Nothing rings any more: the call ends with this final response,
    /// the best any phone gave (its own when it was the only one).
    End(u16),
}

/// A branch's INVITE transaction: its responses reach the session.
pub(crate) struct ForkBranch {
    chan: ChannelId,
    index: usize,
}

impl ClientUsage for ForkBranch {
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, msg: &Message, code: u16) {
        match code {
            ..=199 => {
                let chan = self.chan;
                ep.own(tx, self);
                ep.on_outbound_response(now, chan, msg, code);
            }
            200..=299 => ep.branch_answered(now, self.chan, self.index, tx, msg),
            _ => ep.branch_failed(self.chan, self.index, code),
        }
    }

    /// Timer B: that phone never answered (as a 408).
    fn on_timeout(self, ep: &mut Endpoint, _: Now, _: TxId) {
        ep.branch_failed(self.chan, self.index, 408);
    }
}

impl Endpoint {
    /// The session's own INVITE (`invite`) went out: each branch gets its
    /// copy, with its own Request-URI and Via branch.
    pub(crate) fn place_branches(&mut self, now: Now, chan: ChannelId, invite: &Message) {
        let targets: Vec<ForkTarget> = match self.sessions.get(chan).map(|s| &s.role) {
            Some(Role::Uac {
                forking: Some(f), ..
            }) => f.branches.iter().map(|b| b.target.clone()).collect(),
            _ => return,
        };
        for (index, t) in targets.into_iter().enumerate() {
            let mut inv = invite.clone();
            if let StartLine::Request { uri, .. } = &mut inv.start {
                uri.clone_from(&t.ruri);
            }
            let via = self.via_rport(t.transport);
            inv.headers.set(HeaderName::Via, via);
            // Our Contact names the transport that phone is reached over.
            let user = inv
                .headers
                .get(&HeaderName::Contact)
                .and_then(|c| sirius_sip::message::NameAddr::parse(c).ok())
                .and_then(|n| sirius_sip::message::Uri::parse(&n.uri).ok())
                .and_then(|u| u.user)
                .unwrap_or_default();
            let contact = self.shared.contact_uri(&user, t.transport);
            inv.headers.set(HeaderName::Contact, format!("<{contact}>"));
            let sent = self
                .layer
                .send_request(now.mono, inv.clone(), t.dest, t.transport);
            let tx = match sent {
                Ok(tx) => {
                    self.own(tx, ForkBranch { chan, index });
                    Some(tx)
                }
                Err(e) => {
                    log::warn!("cannot send INVITE to {}: {e}", t.dest);
                    None
                }
            };
            if let Some(b) = self.branch_mut(chan, index) {
                b.tx = tx;
                b.done = tx.is_none();
                b.invite = Some(Box::new(inv));
            }
        }
    }

    fn forking_mut(&mut self, chan: ChannelId) -> Option<&mut Forking> {
        match self.sessions.get_mut(chan).map(|s| &mut s.role) {
            Some(Role::Uac {
                forking: Some(f), ..
            }) => Some(f),
            _ => None,
        }
    }

    fn branch_mut(&mut self, chan: ChannelId, index: usize) -> Option<&mut Branch> {
        self.forking_mut(chan)?.branches.get_mut(index)
    }

    /// The session's own INVITE failed for good with `code` (a final
    /// response no retry follows, or Timer B as 408): the call waits while
    /// another phone rings, else ends with the best response any gave.
    /// While it waits, the finished transaction is no longer the session's
    /// (a hangup then has nothing of it to cancel).
    pub(crate) fn own_invite_failed(&mut self, chan: ChannelId, code: u16) -> OwnFailure {
        let Some(f) = self.forking_mut(chan) else {
            return OwnFailure::End(code);
        };
        f.failed(code);
        f.own_failed = true;
        if !f.pending() {
            return OwnFailure::End(f.best.unwrap_or(code));
        }
        let own = match self.sessions.get_mut(chan).map(|s| &mut s.role) {
            Some(Role::Uac {
                tx,
                pending_redirect,
                ..
            }) => {
                *pending_redirect = None;
                tx.take()
            }
            _ => None,
        };
        if let Some(tx) = own {
            self.owners.remove(&tx);
        }
        OwnFailure::Wait
    }

    /// A branch failed (or timed out): once every INVITE has, the call
    /// ends with the best failure.
    fn branch_failed(&mut self, chan: ChannelId, index: usize, code: u16) {
        let Some(f) = self.forking_mut(chan) else {
            return;
        };
        if let Some(b) = f.branches.get_mut(index) {
            b.done = true;
        }
        f.failed(code);
        if f.own_failed && !f.pending() {
            let best = f.best.unwrap_or(code);
            self.end_uac(chan, crate::causes::sip_to_cause(best));
        }
    }

    /// A branch answered. The first answer is the call: the session moves
    /// to that phone (its INVITE, address and transaction) and every other
    /// INVITE is cancelled; an answer after the call is up was a CANCEL's
    /// crossing, ACKed and ended.
    fn branch_answered(&mut self, now: Now, chan: ChannelId, index: usize, tx: TxId, ok: &Message) {
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        let Some(b) = self.branch_of(chan, index) else {
            return;
        };
        let (target, invite) = (b.target.clone(), b.invite.clone());
        let Some(invite) = invite else {
            return;
        };
        if s.dialog.is_some() {
            return self.end_answered_after_cancel(
                now.mono,
                &invite,
                ok,
                target.dest,
                target.transport,
            );
        }
        log::info!("{}: answered at {}", s.name, target.dest);
        // The others go first, the session's own INVITE among them, while
        // the session still names it.
        self.cancel_branches(now, chan, Some(index), CancelReason::CompletedElsewhere);
        if let Some(s) = self.sessions.get_mut(chan) {
            s.dest = target.dest;
            s.transport = target.transport;
            s.invite = Some(*invite);
            if let Role::Uac {
                tx: own,
                pending_redirect,
                ..
            } = &mut s.role
            {
                *own = Some(tx);
                // A redirect of the own INVITE waiting for a name is moot.
                *pending_redirect = None;
            }
        }
        if let Some(b) = self.branch_mut(chan, index) {
            b.done = true;
        }
        // From now on its transaction is the session's own.
        self.own(tx, super::usage::Invite { chan });
        self.on_outbound_response(now, chan, ok, ok.code().unwrap_or(200));
    }

    fn branch_of(&self, chan: ChannelId, index: usize) -> Option<&Branch> {
        match self.sessions.get(chan).map(|s| &s.role) {
            Some(Role::Uac {
                forking: Some(f), ..
            }) => f.branches.get(index),
            _ => None,
        }
    }

    /// Cancels every INVITE of `chan`'s still ringing but branch `keep`'s
    /// (`None`: the session's own INVITE answered, and is kept): each gets
    /// a CANCEL saying `reason`, and a 2xx crossing it is ACKed and ended.
    pub(crate) fn cancel_branches(
        &mut self,
        now: Now,
        chan: ChannelId,
        keep: Option<usize>,
        reason: CancelReason,
    ) {
        let Some(s) = self.sessions.get_mut(chan) else {
            return;
        };
        let (dest, transport) = (s.dest, s.transport);
        // The session's own INVITE is cancelled when a branch won (one that
        // failed is no longer the session's: `own_invite_failed`).
        let own = match &mut s.role {
            Role::Uac { tx, .. } if keep.is_some() => tx.take(),
            _ => None,
        };
        let own_invite = s.invite.clone();
        let mut cancels: Vec<(TxId, Cancelled)> = Vec::new();
        if let (Some(tx), Some(invite)) = (own, own_invite) {
            cancels.push((
                tx,
                Cancelled {
                    invite: Box::new(invite),
                    dest,
                    transport,
                },
            ));
        }
        if let Some(f) = self.forking_mut(chan) {
            for (i, b) in f.branches.iter_mut().enumerate() {
                if b.done || Some(i) == keep {
                    continue;
                }
                b.done = true;
                if let (Some(tx), Some(invite)) = (b.tx, b.invite.clone()) {
                    cancels.push((
                        tx,
                        Cancelled {
                            invite,
                            dest: b.target.dest,
                            transport: b.target.transport,
                        },
                    ));
                }
            }
        }
        for (tx, usage) in cancels {
            if let Err(e) = self.layer.cancel_with(now.mono, tx, reason) {
                log::debug!("cannot cancel {tx:?}: {e}");
            }
            self.own(tx, usage);
        }
    }

    /// The branches of a session being taken away (`take_session`): their
    /// transactions no longer reach it.
    pub(crate) fn forget_branches(&mut self, forking: &Forking) {
        for tx in forking.branches.iter().filter_map(|b| b.tx) {
            self.owners.remove(&tx);
        }
    }

    /// The core hung up a forked call still ringing (`hangup_uac`, the
    /// session already taken): every branch still ringing gets a CANCEL
    /// saying `reason`, and a 2xx crossing it is ACKed and ended.
    pub(crate) fn cancel_taken_branches(
        &mut self,
        now: Now,
        forking: &Forking,
        reason: CancelReason,
    ) {
        for b in forking.branches.iter().filter(|b| !b.done) {
            let (Some(tx), Some(invite)) = (b.tx, b.invite.clone()) else {
                continue;
            };
            if let Err(e) = self.layer.cancel_with(now.mono, tx, reason) {
                log::debug!("cannot cancel {tx:?}: {e}");
            }
            let usage = Cancelled {
                invite,
                dest: b.target.dest,
                transport: b.target.transport,
            };
            self.own(tx, usage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_failure_is_rfc_3261s() {
        let mut f = Forking::new(vec![ForkTarget {
            dest: "127.0.0.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            ruri: "sip:a@127.0.0.1".into(),
        }])
        .unwrap();
        f.failed(503);
        assert_eq!(f.best, Some(503));
        f.failed(486);
        assert_eq!(f.best, Some(486), "a lower class wins");
        f.failed(404);
        assert_eq!(f.best, Some(486), "busy wins its class");
        let mut g = Forking::new(vec![ForkTarget {
            dest: "127.0.0.1:5060".parse().unwrap(),
            transport: Transport::Udp,
            ruri: "sip:a@127.0.0.1".into(),
        }])
        .unwrap();
        g.failed(404);
        g.failed(480);
        assert_eq!(g.best, Some(404), "else the first of a class stays");
        f.failed(603);
        assert_eq!(f.best, Some(603), "a 6xx wins");
        f.failed(480);
        assert_eq!(f.best, Some(603));
    }
}
