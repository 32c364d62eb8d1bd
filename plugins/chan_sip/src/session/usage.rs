//! The call session's client transactions as [`ClientUsage`]s: what each
//! of our requests in a call does with its responses and its timeout. The
//! work itself stays where the session's logic is (`uac.rs`, `dialog.rs`,
//! `liveness.rs`); these say which part of it a transaction's outcome
//! reaches, and whether the transaction is still theirs afterwards.

use crate::endpoint::{ClientUsage, Endpoint, Now};
use sirius_abi::ChannelId;
use sirius_sip::message::Message;
use sirius_sip::transaction::{Transport, TxId};
use std::net::SocketAddr;

/// The INVITE of an outbound session. It stays the owner until the
/// session ends or sends a new INVITE (a challenge, a redirect): a 2xx
/// from a second fork still reaches the session, which ACKs and ends it.
pub(crate) struct Invite {
    /// The session's channel.
    pub(crate) chan: ChannelId,
}

impl ClientUsage for Invite {
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, msg: &Message, code: u16) {
        let chan = self.chan;
        ep.own(tx, self);
        ep.on_outbound_response(now, chan, msg, code);
    }

    /// Timer B: not even a provisional response in 64*T1. chan_sip's
    /// auto_congest fires at the same moment (SIP_TRANS_TIMEOUT) and
    /// signals congestion, so Dial ends with DIALSTATUS=CONGESTION.
    fn on_timeout(self, ep: &mut Endpoint, _: Now, _: TxId) {
        // The peer's other phones (max_contacts) may still answer; once
        // none rings, the best answer any gave (congestion when none did).
        match ep.own_invite_failed(self.chan, 408) {
            crate::session::fork::OwnFailure::Wait => {}
            crate::session::fork::OwnFailure::End(408) => ep.auto_congest(self.chan),
            crate::session::fork::OwnFailure::End(best) => {
                ep.end_uac(self.chan, crate::causes::sip_to_cause(best))
            }
        }
    }
}

/// Our re-INVITE passing a hold or unhold on to this session (or
/// refreshing its timer); the ACK for its 2xx once sent, to answer the
/// 2xx's retransmissions with.
pub(crate) struct ReInvite {
    /// The session's channel.
    pub(crate) chan: ChannelId,
    /// The ACK we sent for the 2xx (boxed, as `Cancelled`'s INVITE: a
    /// usage lives inline in the endpoint's `owners` table, whose every slot
    /// is as large as the largest usage; with these two messages inline a
    /// slot took 190 bytes, and a held call's INVITE keeps its slot for the
    /// 32 s its transaction lingers).
    pub(crate) ack: Option<Box<Message>>,
}

impl ClientUsage for ReInvite {
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, msg: &Message, code: u16) {
        if code < 200 {
            return ep.own(tx, self);
        }
        ep.on_reinvite_response(now, tx, self, msg, code);
    }

    /// Nobody answered: as a 408, the dialog is taken for gone (RFC 3261
    /// §14.1, RFC 4028 §10).
    fn on_timeout(self, ep: &mut Endpoint, now: Now, _: TxId) {
        ep.refresh_failed(now, self.chan, 408);
    }
}

/// Our UPDATE refreshing this session's timer.
pub(crate) struct Refresh {
    /// The session's channel.
    pub(crate) chan: ChannelId,
}

impl ClientUsage for Refresh {
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, msg: &Message, code: u16) {
        if code < 200 {
            return ep.own(tx, self);
        }
        ep.on_refresh_response(now, self.chan, msg, code);
    }

    /// As a 408 (RFC 4028 §10).
    fn on_timeout(self, ep: &mut Endpoint, now: Now, _: TxId) {
        ep.refresh_failed(now, self.chan, 408);
    }
}

/// The INVITE of an outbound call we hung up while it rang (CANCEL sent):
/// a 2xx that crosses the CANCEL still makes a call, which we must ACK and
/// then end with a BYE (RFC 3261 §9.1, §15).
pub(crate) struct Cancelled {
    /// The INVITE, to build the ACK and the dialog from (boxed: see
    /// [`ReInvite::ack`]).
    pub(crate) invite: Box<Message>,
    /// Where it went.
    pub(crate) dest: SocketAddr,
    /// Over what.
    pub(crate) transport: Transport,
}

impl ClientUsage for Cancelled {
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, msg: &Message, code: u16) {
        match code {
            ..=199 => ep.own(tx, self),
            200..=299 => {
                ep.end_answered_after_cancel(now.mono, &self.invite, msg, self.dest, self.transport)
            }
            _ => {}
        }
    }

    fn on_timeout(self, _: &mut Endpoint, _: Now, _: TxId) {}
}
