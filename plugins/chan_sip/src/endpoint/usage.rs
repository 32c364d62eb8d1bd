//! The interface below the usages: how the transaction table hands a client
//! transaction's outcome to whoever started it.
//!
//! ```text
//!   TransactionLayer ── Event::Response / Event::Timeout (tx)
//!          │
//!   Endpoint::owners: HashMap<TxId, Owner> ── remove(tx) ── Owner::on_response / on_timeout
//!          │                                                   │ (enum dispatch)
//!          ▼                                                   ▼
//!   ClientUsage::on_response(self, ep, …)    session/usage.rs   Invite, ReInvite, Refresh, Cancelled
//!   ClientUsage::on_timeout(self, ep, …)     endpoint/client.rs Poke, Registration
//!                                            here               Fire
//! ```
//!
//! Each usage is a small struct in its own module implementing
//! [`ClientUsage`]; the usages never name each other, only this trait and
//! the endpoint. A new one (a subscription, a REFER, a publication) is a
//! module with its struct and one line in the `owners!` list below.

use super::{Endpoint, Now};
use sirius_sip::message::Message;
use sirius_sip::transaction::TxId;

/// What a usage does with the client transactions it started.
///
/// It exists so that the transaction table needs no knowledge of what a
/// registration, a poke or a call does with a response: the table finds
/// the owner of a transaction and hands it the response or the timeout,
/// and the owner's own module decides. (Before, one `match` in the
/// endpoint knew every usage's rules for provisional and final responses.)
///
/// **Ownership of the entry.** The table takes the entry out before the
/// call and passes it by value, so that a handler has the whole endpoint
/// (`&mut`) and the usage's state at once without borrowing one from the
/// other. A usage that goes on owning the transaction — after a
/// provisional response, or a 2xx whose retransmissions it must ACK again —
/// puts itself back with [`Endpoint::own`]. After a timeout the
/// transaction is over and nothing is put back.
///
/// **Cost.** Dispatch is a `match` on the [`Owner`] enum the `owners!` list
/// generates (no `Box<dyn>`): a transaction's owner lives inline in the
/// table, so starting a transaction allocates nothing for it, and a
/// response costs one hash-map removal and at most one insertion. A boxed
/// trait object would add an allocation per transaction, thousands a
/// second under load, for an openness the plugin does not need (every
/// usage is compiled into it).
pub(crate) trait ClientUsage: Into<Owner> {
    /// A response to `tx`, provisional (`code` < 200) or final.
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, msg: &Message, code: u16);

    /// `tx` got no final response in time (Timer B or F) or its transport
    /// failed: the transaction is over.
    fn on_timeout(self, ep: &mut Endpoint, now: Now, tx: TxId);
}

/// Generates [`Owner`] (one variant per usage), `From` each usage into it,
/// and its [`ClientUsage`] implementation, which dispatches to the usage.
macro_rules! owners {
    ($($(#[$doc:meta])* $variant:ident($usage:ty),)*) => {
        /// Who started a client transaction: the usage its responses go to.
        pub(crate) enum Owner {
            $($(#[$doc])* $variant($usage),)*
        }

        $(impl From<$usage> for Owner {
            fn from(u: $usage) -> Owner {
                Owner::$variant(u)
            }
        })*

        /// The dispatch: to the usage inside.
        impl ClientUsage for Owner {
            fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, msg: &Message, code: u16) {
                match self {
                    $(Owner::$variant(u) => u.on_response(ep, now, tx, msg, code),)*
                }
            }

            fn on_timeout(self, ep: &mut Endpoint, now: Now, tx: TxId) {
                match self {
                    $(Owner::$variant(u) => u.on_timeout(ep, now, tx),)*
                }
            }
        }
    };
}

owners! {
    /// A qualify poke.
    Poke(super::client::Poke),
    /// A `[[register]]` line's REGISTER.
    Register(super::client::Registration),
    /// The INVITE of an outbound session.
    Invite(crate::session::usage::Invite),
    /// Our re-INVITE (hold, unhold, a session refresh).
    ReInvite(crate::session::usage::ReInvite),
    /// Our UPDATE refreshing a session timer.
    Refresh(crate::session::usage::Refresh),
    /// The INVITE of an outbound call we cancelled.
    Cancelled(crate::session::usage::Cancelled),
    /// A NOTIFY reporting a transfer's progress (REFER).
    ReferNotify(crate::session::refer::ReferNotify),
    /// Our REFER (the dialplan's `Transfer()`).
    ReferOut(crate::session::refer_out::ReferOut),
    /// The INVITE to one more contact of a peer (`max_contacts`).
    ForkBranch(crate::session::fork::ForkBranch),
    /// A NOTIFY telling a subscriber an extension's state.
    SubNotify(crate::session::subscribe::SubNotify),
    /// A request whose answer changes nothing.
    Fire(Fire),
}

/// A request whose answer changes nothing: our BYE, a DTMF INFO. Its
/// transaction is tracked only until it ends.
pub(crate) struct Fire;

impl ClientUsage for Fire {
    fn on_response(self, ep: &mut Endpoint, _: Now, tx: TxId, _: &Message, code: u16) {
        if code < 200 {
            ep.own(tx, self);
        }
    }

    fn on_timeout(self, _: &mut Endpoint, _: Now, _: TxId) {}
}

impl Endpoint {
    /// Records `usage` as the owner of client transaction `tx` (replacing
    /// any other): its responses and its timeout go to it.
    pub(crate) fn own(&mut self, tx: TxId, usage: impl ClientUsage) {
        self.owners.insert(tx, usage.into());
    }

    /// Hands a response to the owner of `tx`; one nobody owns (its usage
    /// ended, or a stray) is dropped.
    pub(super) fn on_client_response(&mut self, now: Now, tx: TxId, msg: &Message) {
        if let Some(owner) = self.owners.remove(&tx) {
            owner.on_response(self, now, tx, msg, msg.code().unwrap_or(0));
        }
    }

    /// Hands a timeout to the owner of `tx`.
    pub(super) fn on_client_timeout(&mut self, now: Now, tx: TxId) {
        if let Some(owner) = self.owners.remove(&tx) {
            owner.on_timeout(self, now, tx);
        }
    }
}
