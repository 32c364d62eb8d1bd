//! DTMF as SIP INFO (`dtmfmode = "info"`, RFC 2976 with Asterisk's
//! `application/dtmf-relay` body): a digit an INFO phone sends goes to the
//! leg it is bridged with as that leg expects it — an INFO, or RFC 4733
//! events injected by the relay — and a digit the relay takes out of RTP
//! for an INFO phone becomes an INFO to it.

use crate::endpoint::{Endpoint, Fire, HostAction, MediaAction, Now};
use sirius_abi::ChannelId;
use sirius_sip::message::{HeaderName, Message, Method};
use sirius_sip::transaction::TxId;
use std::net::SocketAddr;

impl Endpoint {
    /// An INFO in a dialog: 200, and a digit in it goes on. An INFO without
    /// a DTMF body (some phones send them to keep a call alive) is only
    /// answered.
    pub(crate) fn on_info(
        &mut self,
        now: Now,
        env: &mut dyn crate::endpoint::Env,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        chan: Option<ChannelId>,
    ) {
        self.respond(now, tx, msg, source, (200, "OK"), &[]);
        let ct = msg.headers.get(&HeaderName::ContentType).unwrap_or("");
        let (Some(chan), Some((digit, ms))) = (chan, crate::rfc4733::parse_info(ct, &msg.body))
        else {
            return;
        };
        let name = self.sessions.name(chan);
        log::debug!("DTMF '{digit}' ({ms} ms) by INFO from {name}");
        match env.bridged_with(chan) {
            Some(p) if p != chan => {
                if self.sessions.get(p).is_some_and(|s| s.dtmf_info) {
                    self.send_info_dtmf(now, p, digit, ms);
                } else {
                    self.media(MediaAction::Dtmf(p, digit, ms));
                }
            }
            // Echo: the digit comes back the way it came.
            Some(_) => self.send_info_dtmf(now, chan, digit, ms),
            None => self.host(HostAction::Dtmf(chan, digit, ms)),
        }
    }

    /// Sends a digit to `chan`'s far end as an INFO.
    pub(crate) fn send_info_dtmf(&mut self, now: Now, chan: ChannelId, digit: char, ms: u32) {
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        let (Some(dialog), transport, dest) = (s.dialog.clone(), s.transport, s.dest) else {
            return; // not answered yet: nowhere to send it
        };
        let via = self.via(transport);
        let Some(d) = self.dialogs.get_mut(&dialog) else {
            return;
        };
        let mut info = d.request(Method::Info, &via, None);
        info.set_body(
            "application/dtmf-relay",
            crate::rfc4733::info_body(digit, ms).into_bytes(),
        );
        let hop = self.route_hop(&info).unwrap_or(dest);
        self.send_client(info, hop, transport, Fire, now.mono);
        self.note_msg(chan, "Tx: INFO".into());
    }
}
