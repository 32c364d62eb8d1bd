//! Where a blind transfer goes and what the transferee carries there (a
//! REFER's, a BYE/Also's), and the final report of one the core refused.

use crate::causes::cause_to_sip;
use crate::endpoint::{Endpoint, Env};
use sirius_abi::{Cause, ChannelId};
use sirius_sip::message::{HeaderName, Message};
use sirius_sip::refer::ReferTo;

/// A blind transfer's context, extension and the transferee's variables.
pub(crate) type BlindTarget = (String, String, Vec<(&'static str, String)>);

/// Where a blind transfer by `chan` goes, and what the transferee
/// carries there: `TRANSFER_CONTEXT` of the transferor's channel, else its
/// peer's context (the transferor's rights, never more); the Refer-To's
/// user part (`s` when it has none); the variables Asterisk's chan_sip and
/// res_pjsip_refer leave on the transferee.
pub(crate) fn blind_target(
    env: &mut dyn Env,
    chan: ChannelId,
    peer_context: String,
    (refer_to, refer_to_value): (&ReferTo, &str),
    referred_by: Option<&str>,
) -> BlindTarget {
    let context = env
        .channel_var(chan, "TRANSFER_CONTEXT")
        .filter(|c| !c.is_empty())
        .unwrap_or(peer_context);
    let exten = match refer_to.exten() {
        e if e.is_empty() => "s".to_string(),
        e => e,
    };
    let mut vars = vec![
        ("SIPTRANSFER", "yes".to_string()),
        ("SIPREFERRINGCONTEXT", context.clone()),
        ("SIPREFERTOHDR", refer_to_value.to_string()),
    ];
    if let Some(v) = referred_by {
        // Inherited by the legs the transferee dials: their INVITEs carry
        // it (RFC 3892).
        vars.push(("__SIPREFERREDBYHDR", v.to_string()));
    }
    (context, exten, vars)
}

impl Endpoint {
    /// The obsolete transfer of RFC 2543 (seed 002's "BYE/ALSO"): a BYE
    /// from a peer, in a bridged call, with `Also: <sip:6003@pbx>`. The
    /// other party is blind-transferred there as by a REFER, before the
    /// BYE ends the sender's leg; nobody is told the outcome (the dialog is
    /// over). A guest, a peer with `allowtransfer = false` or an `Also`
    /// that is not a sip/sips/tel URI: the BYE is just a BYE.
    pub(crate) fn bye_also(&mut self, env: &mut dyn Env, chan: ChannelId, msg: &Message) {
        let also = HeaderName::Other("also".into());
        let Some(value) = msg.headers.get(&also) else {
            return;
        };
        let Some(peer) = self.sessions.get(chan).and_then(|s| s.peer.clone()) else {
            return;
        };
        let running = self.shared.running();
        let Some(context) = running
            .peers
            .get(&peer)
            .filter(|p| p.allowtransfer)
            .map(|p| p.context.clone())
        else {
            return;
        };
        drop(running);
        let Ok(target) = ReferTo::parse(value) else {
            return log::info!("BYE/Also from {peer}: '{value}' is not a transfer target");
        };
        if target.replaces.is_some() {
            return;
        }
        let (context, exten, vars) = blind_target(env, chan, context, (&target, value), None);
        if let Err(cause) = env.blind_transfer(chan, &context, &exten, &vars) {
            let (code, reason) = refused_transfer(cause);
            log::info!("BYE/Also to {exten}@{context} by {peer} refused: {code} {reason}");
        }
    }
}

/// The request's one `Refer-To`, parsed; `None` when it has none, several,
/// or one that is not a sip/sips/tel name-addr (a REFER answers that 400).
pub(crate) fn single_refer_to(msg: &Message) -> Option<ReferTo> {
    if msg.headers.count(&HeaderName::ReferTo) != 1 {
        return None;
    }
    ReferTo::parse(msg.headers.get(&HeaderName::ReferTo)?).ok()
}

/// The final report of a transfer the core refused.
pub(crate) fn refused_transfer(cause: Cause) -> (u16, &'static str) {
    match cause {
        Cause::UNALLOCATED | Cause::NO_ROUTE_DESTINATION => (404, "Not Found"),
        Cause::FACILITY_NOT_IMPLEMENTED => (503, "Service Unavailable"),
        Cause::INVALID_CALL_REFERENCE => (603, "Declined"),
        c => cause_to_sip(c),
    }
}
