//! REGISTER, as the endpoint sees it: the registrar (`crate::registrar`)
//! answers; the endpoint passes on what changed (device state, PeerStatus,
//! TCP trust, the phone's message-waiting counts after its 200).

use super::{Endpoint, Now, Output};
use sirius_sip::message::Message;
use sirius_sip::transaction::{Transport, TxId};
use std::net::SocketAddr;

impl Endpoint {
    pub(super) fn on_register(
        &mut self,
        now: Now,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        let running = self.shared.running();
        let out = self.shared.registrar.lock().handle(
            msg,
            self.shared.arrival(source, transport),
            now.unix,
            &running.cfg.general,
            &running.peers,
        );
        let mut registered = None;
        if let Some((peer, binding)) = out.changed {
            self.device_update(&peer);
            if out.refreshed {
                registered = Some(peer.clone());
            }
            let (status, addr) = match &binding {
                Some(b) => ("Registered", b.addr.to_string()),
                None => ("Unregistered", String::new()),
            };
            self.event(
                "PeerStatus",
                vec![
                    ("Peer", format!("SIP/{peer}")),
                    ("PeerStatus", status.into()),
                    ("Address", addr),
                ],
            );
        }
        // A REGISTER accepted over TCP makes its connection trusted.
        if transport == Transport::Tcp && out.response.code() == Some(200) {
            self.out.push_back(Output::Trusted(source));
        }
        self.send_response(now, tx, out.response);
        if let Some(peer) = registered {
            // A phone that registers learns its messages, after its 200
            // (as chan_sip).
            self.send_unsolicited_mwi(&peer);
        }
    }
}
