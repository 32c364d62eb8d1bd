//! Our own REFER: the dialplan's `Transfer(600)` on a SIP channel asks its
//! phone to call 600 instead (Asterisk's `sip_transfer`), and the NOTIFYs
//! that phone then sends us.
//!
//! ```text
//!  Transfer(600) ─▶ REFER  Refer-To: <sip:600@<our address>>  Referred-By: us
//!    │ 202 (2xx) ─▶ TRANSFERSTATUS=SUCCESS     error, no answer ─▶ FAILURE
//!    ▼
//!  NOTIFY (Event: refer, message/sipfrag) ─▶ 200 each
//!    └ a final 2xx in the sipfrag: the phone reached 600; our leg ends (BYE),
//!      as Asterisk's chan_sip hangs up a transferred channel
//! ```

use crate::causes::sip_to_cause;
use crate::endpoint::{ClientUsage, Endpoint, HostAction, Now};
use sirius_abi::{Cause, ChannelId};
use sirius_sip::message::{HeaderName, Message, Method};
use sirius_sip::refer::{parse_sipfrag, Event};
use sirius_sip::transaction::TxId;
use std::net::SocketAddr;

/// Our REFER of channel `chan`.
pub(crate) struct ReferOut {
    chan: ChannelId,
}

impl ClientUsage for ReferOut {
    fn on_response(self, ep: &mut Endpoint, _: Now, tx: TxId, _: &Message, code: u16) {
        match code {
            100..=199 => ep.own(tx, self),
            200..=299 => ep.host(HostAction::TransferResult(self.chan, Ok(()))),
            _ => {
                ep.refers.referring.remove(&self.chan);
                ep.host(HostAction::TransferResult(
                    self.chan,
                    Err(sip_to_cause(code)),
                ));
            }
        }
    }

    fn on_timeout(self, ep: &mut Endpoint, _: Now, _: TxId) {
        ep.refers.referring.remove(&self.chan);
        let cause = Cause::RECOVERY_ON_TIMER_EXPIRE;
        ep.host(HostAction::TransferResult(self.chan, Err(cause)));
    }
}

/// The Refer-To of `Transfer(dest)`: `dest` as a SIP URI when it is one
/// (`bob@example.com`, `sip:bob@example.com`), else an extension at our own
/// address, where the phone's INVITE comes back to the dialplan.
pub(crate) fn refer_to(dest: &str, ours: SocketAddr) -> String {
    let dest = dest.trim();
    // A `sips:` destination stays `sips:`: the transfer must not lose the
    // TLS the dialplan asked for.
    let (scheme, bare) = match (dest.strip_prefix("sip:"), dest.strip_prefix("sips:")) {
        (Some(b), _) => ("sip", b),
        (None, Some(b)) => ("sips", b),
        (None, None) => ("sip", dest),
    };
    match bare.contains('@') {
        true => format!("<{scheme}:{bare}>"),
        false => format!("<sip:{}@{ours}>", crate::session::uac::escape_user(bare)),
    }
}

impl Endpoint {
    /// `Transfer(dest)` on `chan`: REFER in its dialog. A call not answered
    /// yet (no confirmed dialog) cannot be transferred this way.
    pub(crate) fn send_refer(&mut self, now: Now, chan: ChannelId, dest: &str) {
        let refuse =
            |ep: &mut Endpoint, cause| ep.host(HostAction::TransferResult(chan, Err(cause)));
        let Some(s) = self.sessions.get(chan) else {
            return refuse(self, Cause::INVALID_CALL_REFERENCE);
        };
        let (transport, dest_addr) = (s.transport, s.dest);
        let Some(dialog) = s.dialog.clone() else {
            return refuse(self, Cause::FACILITY_NOT_IMPLEMENTED);
        };
        let ours = self.shared.local(transport);
        let contact = self.shared.contact_uri("", transport);
        let via = self.via(transport);
        let Some(d) = self
            .dialogs
            .get_mut(&dialog)
            .filter(|d| d.state == sirius_sip::dialog::DialogState::Confirmed)
        else {
            return refuse(self, Cause::FACILITY_NOT_IMPLEMENTED);
        };
        let mut req = d.request(Method::Refer, &via, None);
        req.push(HeaderName::ReferTo, refer_to(dest, ours));
        req.push(HeaderName::ReferredBy, format!("<{contact}>"));
        let hop = self.route_hop(&req).unwrap_or(dest_addr);
        if self
            .send_client(req, hop, transport, ReferOut { chan }, now.mono)
            .is_none()
        {
            return refuse(self, Cause::FAILURE);
        }
        self.refers.referring.insert(chan);
        self.note_msg(chan, "Tx: REFER".into());
        sirius_abi::verbose!(
            3,
            "    -- {} asked to transfer to {dest}",
            self.sessions.name(chan)
        );
    }

    /// A NOTIFY in a call's dialog: the far end reports the transfer we
    /// asked for. 200 to each; a final 2xx ends our leg (the phone is with
    /// the target now). Another event package than `refer`: 489. A report
    /// with no REFER of ours waiting for it (none sent, or its subscription
    /// already ended): 481, as RFC 6665 §4.1.3 says of a NOTIFY matching
    /// no subscription.
    pub(crate) fn on_notify(
        &mut self,
        now: Now,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        chan: Option<ChannelId>,
    ) {
        let event = msg.headers.get(&HeaderName::Event).and_then(Event::parse);
        if event.is_none_or(|e| e.package != "refer") {
            return self.respond(now, tx, msg, source, (489, "Bad Event"), &[]);
        }
        let Some(chan) = chan.filter(|c| self.refers.referring.contains(c)) else {
            let status = (481, "Call/Transaction Does Not Exist");
            return self.respond(now, tx, msg, source, status, &[]);
        };
        self.respond(now, tx, msg, source, (200, "OK"), &[]);
        match parse_sipfrag(&msg.body) {
            Some(200..=299) => {
                self.refers.referring.remove(&chan);
                sirius_abi::verbose!(
                    3,
                    "    -- {} transferred: hanging up",
                    self.sessions.name(chan)
                );
                self.hangup_call(now, chan, Cause::NORMAL_CLEARING);
                self.host(HostAction::Hangup(chan, Cause::NORMAL_CLEARING));
            }
            // The transfer failed: the call goes on.
            Some(300..) => {
                self.refers.referring.remove(&chan);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::refer_to;

    #[test]
    fn a_transfer_destination_becomes_a_refer_to() {
        let ours = "127.0.0.1:5060".parse().unwrap();
        assert_eq!(refer_to("600", ours), "<sip:600@127.0.0.1:5060>");
        assert_eq!(refer_to("bob@example.com", ours), "<sip:bob@example.com>");
        assert_eq!(
            refer_to("sip:bob@example.com", ours),
            "<sip:bob@example.com>"
        );
        assert_eq!(refer_to("#9 0", ours), "<sip:%239%200@127.0.0.1:5060>");
        assert_eq!(
            refer_to("sips:bob@example.com", ours),
            "<sips:bob@example.com>"
        );
    }
}
