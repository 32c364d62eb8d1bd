//! Third-party call control (seed 002's "click to dial", RFC 3515 §2.4.3's
//! REFER outside a dialog): a peer asks Sirius to call a phone and, once it
//! answers, to run an extension for it.
//!
//! ```text
//!  REFER sip:alice@pbx  Refer-To: <sip:6003@pbx>   (outside any dialog;
//!  `REFER sip:pbx`, no user: the sender's own phone is called)
//!    │ digest as for an INVITE (401/407 first); a guest ─▶ 403
//!    │ Request-URI user not a peer ─▶ 404; Refer-To bad ─▶ 400; Replaces ─▶ 400
//!    ▼
//!  202 (a dialog of its own: the subscription's), NOTIFY 100
//!    │ a channel to alice (context: alice's, extension 6003), INVITE
//!    ├─ 180/183 ─▶ NOTIFY 180/183
//!    ├─ 2xx ─▶ the dialplan runs 6003 on alice's channel; NOTIFY 200 (final)
//!    └─ refused, no answer, unreachable ─▶ NOTIFY with that status (final)
//! ```
//!
//! The extension runs in the called peer's context, as the issue asks (the
//! REFER's sender chooses whom to call among the peers, not what they may
//! dial). The Refer-To's host is never contacted, and its other URI headers
//! (`body=` of RFC 3725 flows) are ignored, as Asterisk does.

use crate::endpoint::{Endpoint, Env, HostAction, Now, OutboundSetup};
use crate::registrar::AuthOutcome;
use sirius_abi::{ChannelSpec, ChannelState, Direction};
use sirius_sip::message::{build, HeaderName, Message, Uri};
use sirius_sip::transaction::{Transport, TxId};
use std::net::SocketAddr;

impl Endpoint {
    /// A REFER outside any dialog (see the module's diagram).
    pub(crate) fn on_refer_out_of_dialog(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        let running = self.shared.running();
        let g = &running.cfg.general;
        let Some(sender) = super::uas::match_peer(&running, msg, source) else {
            return self.respond(now, tx, msg, source, (403, "Forbidden"), &[]);
        };
        let auth = self.shared.registrar.lock().authenticate(
            msg,
            "REFER",
            self.shared.arrival(source, transport),
            now.unix,
            g,
            Some(sender),
        );
        match auth {
            AuthOutcome::Ok => {}
            AuthOutcome::Respond(r) => return self.send_response(now, tx, *r),
        }
        if transport == Transport::Tcp {
            self.out.push_back(crate::endpoint::Output::Trusted(source));
        }
        if !sender.allowtransfer {
            return self.respond(now, tx, msg, source, (603, "Declined"), &[]);
        }
        // `REFER sip:alice@pbx`: call alice. Without a user (seed 002's
        // `REFER sip:phone.foo.com`): call the sender's own phone.
        let user = Uri::parse(msg.request_uri().unwrap_or_default())
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_else(|| sender.name.clone());
        let Some(callee) = running.peers.get(&user).cloned() else {
            return self.respond(now, tx, msg, source, (404, "Not Found"), &[]);
        };
        let sender = sender.name.clone();
        drop(running);
        let refer_to = super::refer::single_refer_to(msg).filter(|r| r.replaces.is_none());
        let Some(refer_to) = refer_to else {
            return self.respond(now, tx, msg, source, (400, "Bad Request"), &[]);
        };
        // The subscription's dialog, made by this 202.
        let tag = self.tokens.token();
        let contact = self.shared.contact_uri("", transport);
        let seq = self.tokens.next_u64() as u16;
        let dialog = match sirius_sip::dialog::Dialog::from_uas(msg, &tag, &contact, seq) {
            Ok(d) => d,
            Err(e) => {
                log::info!("REFER from {source}: no dialog can be made ({e})");
                return self.respond(now, tx, msg, source, (400, "Bad Request"), &[]);
            }
        };
        let id = dialog.id.clone();
        self.dialogs.insert(dialog);
        let mut accepted = build::response(msg, 202, "Accepted", Some(source));
        build::set_to_tag(&mut accepted, &tag);
        accepted.push(
            HeaderName::Server,
            &self.shared.running().cfg.general.useragent,
        );
        accepted.push(HeaderName::Contact, format!("<{contact}>"));
        self.send_response(now, tx, accepted);
        let key = self.start_report(now, &id, (source, transport), None, (None, false));
        if !self.refers.exists(key) {
            return; // not even the NOTIFY 100 could be sent: nobody is called
        }

        let exten = match refer_to.exten() {
            e if e.is_empty() => "s".to_string(),
            e => e,
        };
        match self.call_for_refer(env, &callee, &exten) {
            Ok(chan) => {
                self.refer_watch(key, chan);
                sirius_abi::verbose!(
                    3,
                    "    -- {} asks to call {} for {exten}@{}",
                    sender,
                    callee.name,
                    callee.context
                );
                if let Err(cause) = self.place(now, chan) {
                    self.take_session(chan);
                    self.host(HostAction::Hangup(chan, cause));
                    self.refer_transferee_gone(now, chan, cause);
                }
            }
            Err((code, reason)) => self.refer_status(now, key, code, reason, true),
        }
    }

    /// A channel to `callee` that will run `exten` in its context once it
    /// answers (as `request_call` makes a Dial's leg, here on this shard).
    fn call_for_refer(
        &mut self,
        env: &mut dyn Env,
        callee: &crate::config::Peer,
        exten: &str,
    ) -> Result<sirius_abi::ChannelId, (u16, &'static str)> {
        let binding = || {
            let reg = self.shared.registrar.lock();
            reg.binding(&callee.name).map(|b| (b.addr, b.transport()))
        };
        let Some((addr, transport)) = callee
            .addr
            .map(|a| (a, callee.transports[0]))
            .or_else(binding)
        else {
            return Err((480, "Temporarily Unavailable"));
        };
        let spec = ChannelSpec {
            tech: "SIP".into(),
            resource: callee.name.clone().into(),
            state: ChannelState::Down,
            direction: Direction::Outbound,
            context: callee.context.clone().into(),
            exten: exten.into(),
            // The phone sees what it is being connected to.
            caller_num: exten.into(),
            caller_name: "".into(),
            codecs: callee.codecs.clone().into(),
            accountcode: callee.accountcode.clone().into(),
        };
        let info = env
            .channel_alloc(spec)
            .map_err(|_| (503, "Service Unavailable"))?;
        let setup = OutboundSetup {
            chan: info.id,
            dest: addr,
            transport,
            ruri: format!("sip:{}@{addr}{}", callee.username, transport.uri_param()),
            peer: Some(callee.name.clone()),
            name: info.name.to_string(),
            codecs: callee.codecs.clone(),
            caller: exten.to_string(),
            caller_name: String::new(),
            requestor: None,
            referred_by: None,
            // The phone asked to call: its newest contact.
            forks: Vec::new(),
        };
        self.new_outbound(setup, env);
        self.refers.start_pbx_on_answer(info.id);
        Ok(info.id)
    }

    /// A leg called for a REFER outside a dialog answered: its dialplan
    /// starts (the driver asks the core; a refusal hangs it up).
    pub(crate) fn refer_leg_answered(&mut self, chan: sirius_abi::ChannelId) {
        if self.refers.take_start_pbx(chan) {
            self.host(HostAction::StartPbx(chan));
        }
    }
}
