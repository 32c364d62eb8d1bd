//! A session we start (Dial): the INVITE with our offer, its answers —
//! provisional, a challenge answered once, redirects followed (the new
//! INVITEs those take are `retry.rs`'s), the 2xx ACKed — auto-congest, and
//! CANCEL, including a 2xx that crosses it.

use super::retry::{Redirect, MAX_REDIRECTS};
use super::{invite_summary, timer, Role, Session};
use crate::endpoint::{Endpoint, Env, HostAction, MediaAction, Now, StreamKind};
use crate::inuse::CallCount;
use sirius_abi::{Cause, ChannelId, ChannelState};
use sirius_sip::message::{HeaderName, Message, Method, Uri};
use sirius_sip::sdp::{Direction as SdpDirection, SessionDescription};
use sirius_sip::transaction::Transport;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What `request_call` resolved for an outbound leg.
#[derive(Debug)]
pub struct OutboundSetup {
    /// The core's channel.
    pub chan: ChannelId,
    /// Where the INVITE goes.
    pub dest: SocketAddr,
    /// Over what: the peer's first `transport`, or the one it registered with.
    pub transport: Transport,
    /// Request-URI.
    pub ruri: String,
    /// The peer it counts against.
    pub peer: Option<String>,
    /// The channel's name (`SIP/bob-00000002`), for log lines.
    pub name: String,
    /// Codecs to offer, best first.
    pub codecs: Vec<sirius_abi::Codec>,
    /// Caller ID number for From.
    pub caller: String,
    /// The caller's name, the From display name (empty: none).
    pub caller_name: String,
    /// The channel that asked for this one (a Dial's caller): the RTP pair
    /// set aside when that call was admitted is this leg's.
    pub requestor: Option<ChannelId>,
    /// `Referred-By` for the INVITE: the leg calls a transfer's target.
    pub referred_by: Option<String>,
    /// The peer's other contacts, rung too (`max_contacts`, `fork.rs`).
    pub forks: Vec<super::fork::ForkTarget>,
}

/// A caller ID number as the user part of a SIP URI (RFC 3261 §25.1 `user`):
/// characters outside the unreserved and user-unreserved sets are %-escaped.
pub(crate) fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Endpoint {
    /// `request_call` made a channel: the session exists (and counts
    /// against its peer) from now, with its RTP pair; nothing is sent yet.
    pub(crate) fn new_outbound(&mut self, setup: OutboundSetup, env: &mut dyn Env) {
        let chan = setup.chan;
        if let Some(by) = setup.referred_by {
            self.refers.referred_by.insert(chan, by);
        }
        let timers = {
            let running = self.shared.running();
            setup
                .peer
                .as_ref()
                .and_then(|p| running.peers.get(p))
                .map_or_else(|| running.cfg.general.timers(), |p| p.timers)
        };
        let video = super::has_video(&setup.codecs);
        if let Some(caller) = setup.requestor {
            env.hand_over(caller, chan);
        }
        let ports = env
            .reserve_media(chan, StreamKind::Audio)
            .and_then(|audio| {
                let video = match video {
                    true => Some(env.reserve_media(chan, StreamKind::Video)?),
                    false => None,
                };
                Ok((audio, video))
            });
        let (rtp_port, video_port) = match ports {
            Ok(ports) => ports,
            Err(e) => {
                // Under overload this is every call for a while: once a second.
                if self.first_refusal_this_second(self.now) {
                    log::error!(
                        "no RTP port for an outbound call: {e} (calls fail with CONGESTION; logged once a second)"
                    );
                }
                self.media(MediaAction::Release(chan));
                return self.host(HostAction::Hangup(chan, Cause::CONGESTION));
            }
        };
        let sdp_id = self.tokens.next_u64() >> 32;
        // Counted against its peer from now (call() refuses it there when
        // over call-limit, as chan_sip's sip_call does); never refused here.
        let count = CallCount::take(&self.shared.in_use, setup.peer.as_deref());
        let dtmf_info = {
            let running = self.shared.running();
            setup
                .peer
                .as_ref()
                .and_then(|p| running.peers.get(p))
                .is_some_and(|p| p.dtmfmode.ends_with("info"))
        };
        self.put_session(
            chan,
            Session {
                name: setup.name,
                role: Role::Uac {
                    tx: None,
                    ruri: setup.ruri,
                    caller: setup.caller,
                    caller_name: setup.caller_name,
                    ack: None,
                    auth_attempts: 0,
                    redirects: 0,
                    congest_at: None,
                    asked_interval: None,
                    pending_redirect: None,
                    forks: Vec::new(),
                    forking: super::fork::Forking::new(setup.forks),
                },
                dest: setup.dest,
                transport: setup.transport,
                invite: None,
                rtp_port,
                video_port,
                codecs: setup.codecs,
                peer: setup.peer,
                dialog: None,
                remote: crate::relay::RemoteMedia::default(),
                last_msg: String::new(),
                held: false,
                reinvite: None,
                // A leg we call rings its peer until it answers, as
                // chan_sip counts `inRinging` from `sip_call` on: a busy
                // lamp blinks at once, not after an "in use" flash.
                ringing: true,
                timers,
                timer: None,
                timer_due: None,
                peer_update: false,
                local_hold: false,
                hold_wanted: None,
                glare_retry: None,
                sdp_id,
                sdp_version: 1,
                dtmf_info,
                answer: None,
            },
            count,
        );
    }

    /// `call`: checks the call-limit, then sends the INVITE with our offer.
    /// A refusal leaves the channel to the caller, which hangs it up.
    pub fn place(&mut self, now: Now, chan: ChannelId) -> Result<(), Cause> {
        let Some(s) = self.sessions.get(chan) else {
            log::warn!("call() for channel {chan}, which chan_sip did not create or already ended");
            return Err(Cause::FAILURE);
        };
        let Role::Uac {
            tx,
            ruri,
            caller,
            caller_name,
            ..
        } = &s.role
        else {
            return Err(Cause::FAILURE);
        };
        if tx.is_some() {
            // chan_sip's sip_call refuses a channel that is neither Down nor
            // Reserved; a second call() must not send a second INVITE.
            log::warn!("sip_call called on {}, neither down nor reserved", s.name);
            return Err(Cause::FAILURE);
        }
        let running = self.shared.running();
        let peer = s.peer.as_ref().and_then(|n| running.peers.get(n));
        if let Some(p) = peer.filter(|p| p.call_limit > 0) {
            // This leg is already counted: over the limit when the count exceeds it.
            let inuse = self.shared.in_use.get(&p.name);
            if inuse > p.call_limit {
                log::warn!(
                    "Call to peer '{}' rejected due to usage limit of {}",
                    p.name,
                    p.call_limit
                );
                self.take_session(chan);
                return Err(Cause::USER_BUSY);
            }
        }
        // Asterisk arms auto-congest at 4 × the peer's qualify maximum.
        let congest_after = peer
            .and_then(|p| p.qualify_maxms)
            .map(|ms| Duration::from_millis(u64::from(ms) * 4));
        let (ruri, transport, codecs, ports, timers, origin) = (
            ruri.clone(),
            s.transport,
            s.codecs.clone(),
            s.ports(),
            s.timers,
            s.origin(),
        );
        let from_user = if caller.is_empty() {
            "sirius".to_string()
        } else {
            escape_user(caller)
        };
        let display = caller_name.replace('\\', "\\\\").replace('"', "\\\"");
        // A call to a shared line takes one of its appearances, showing
        // the caller (crate::sca); a line with none free is busy.
        let caller_uri = format!(
            "<sip:{from_user}@{}>",
            crate::sca::uri_host(self.shared.bound.ip())
        );
        let caller_addr = match display.is_empty() {
            true => caller_uri,
            false => format!("\"{display}\" {caller_uri}"),
        };
        let appearance = match self.sca_seize_for_call(chan, caller_addr) {
            Ok(a) => a,
            Err(cause) => {
                self.take_session(chan);
                return Err(cause);
            }
        };
        let local = self.local_media(&codecs, ports, origin, SdpDirection::SendRecv);
        let mut inv = self.new_request(Method::Invite, ruri, &from_user, transport);
        if let (Some(i), Some(line)) = (
            appearance,
            self.sessions.get(chan).and_then(|s| s.peer.clone()),
        ) {
            let uri = self.line_uri(&line);
            // The appearance in both forms: BroadWorks' Call-Info, and
            // RFC 7463 §7's Alert-Info parameter (normal ringing).
            inv.push(
                HeaderName::CallInfo,
                format!("<{uri}>;appearance-index={i}"),
            );
            inv.push(
                HeaderName::AlertInfo,
                format!("<urn:alert:service:normal>;appearance={i}"),
            );
        }
        if !display.is_empty() {
            if let Some(from) = inv.headers.get(&HeaderName::From).map(str::to_string) {
                inv.headers
                    .set(HeaderName::From, format!("\"{display}\" {from}"));
            }
        }
        inv.push(HeaderName::Allow, self.caps.allow());
        if let Some(by) = self.refers.referred_by.remove(&chan) {
            inv.push(HeaderName::ReferredBy, by);
        }
        inv.push(
            HeaderName::Supported,
            self.supported(timers.mode != crate::config::SessionTimers::Refuse),
        );
        timer::offer(&timers, &mut inv, None);
        inv.set_body(
            "application/sdp",
            sirius_sip::sdp::negotiate::offer(&local).to_bytes(),
        );
        self.send_invite(now.mono, chan, inv);
        let forked = self
            .sessions
            .get(chan)
            .filter(|s| {
                matches!(
                    &s.role,
                    Role::Uac {
                        forking: Some(_),
                        ..
                    }
                )
            })
            .and_then(|s| s.invite.clone());
        if let Some(invite) = forked {
            self.place_branches(now, chan, &invite);
        }
        // Still there unless the send failed (the call is then already ended).
        let at = congest_after.map(|d| now.mono + d);
        if let Some(Role::Uac {
            congest_at,
            asked_interval,
            ..
        }) = self.sessions.get_mut(chan).map(|s| &mut s.role)
        {
            *congest_at = at;
            *asked_interval =
                (timers.mode == crate::config::SessionTimers::Originate).then_some(timers.expires);
            if let Some(at) = at {
                self.congest_timers.insert((at, chan));
            }
        }
        Ok(())
    }

    /// Sends an INVITE transaction for an outbound call: the first one, or a
    /// new one after a challenge or a redirect. A send failure ends the call
    /// with FAILURE (the cause of a 500).
    pub(super) fn send_invite(&mut self, now: Instant, chan: ChannelId, invite: Message) {
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        let (dest, transport) = (s.dest, s.transport);
        if let Role::Uac {
            tx: Some(previous), ..
        } = s.role
        {
            self.owners.remove(&previous);
        }
        match self
            .layer
            .send_request(now, invite.clone(), dest, transport)
        {
            Ok(tx) => {
                self.own(tx, super::usage::Invite { chan });
                if let Some(s) = self.sessions.get_mut(chan) {
                    if let Role::Uac { tx: slot, .. } = &mut s.role {
                        *slot = Some(tx);
                    }
                    s.invite = Some(invite);
                    s.last_msg = "Tx: INVITE".into();
                }
            }
            Err(e) => {
                log::warn!("cannot send INVITE to {dest}: {e}");
                self.end_uac(chan, crate::causes::sip_to_cause(500));
            }
        }
    }

    /// A response to a UAC session's INVITE.
    pub(crate) fn on_outbound_response(
        &mut self,
        now: Now,
        chan: ChannelId,
        msg: &Message,
        code: u16,
    ) {
        let Some(s) = self.sessions.get_mut(chan) else {
            return;
        };
        let (dest, transport) = (s.dest, s.transport);
        let Role::Uac {
            ack,
            auth_attempts,
            redirects,
            congest_at,
            ..
        } = &mut s.role
        else {
            return;
        };
        // "Don't auto congest anymore since we've gotten something useful back."
        *congest_at = None;
        let ack = ack.clone();
        let first_challenge = *auth_attempts == 0;
        if matches!(code, 401 | 407) && first_challenge {
            *auth_attempts += 1;
        }
        let may_redirect = *redirects < MAX_REDIRECTS;
        let retry = match code {
            180 => {
                self.early_fork(chan, msg);
                self.refer_leg_progress(chan, 180);
                return self.host(HostAction::SetState(chan, ChannelState::Ringing));
            }
            // Progress: its SDP (early media) is where the callee's media
            // comes from and goes to until the answer; the core hears of it
            // as a control frame (AST_CONTROL_PROGRESS) and Dial passes it on.
            183 => {
                self.early_fork(chan, msg);
                if !msg.body.is_empty() {
                    let media = crate::relay::RemoteMedia::from_sdp(&msg.body);
                    self.media_moved(chan, media);
                }
                self.host(HostAction::SetState(chan, ChannelState::Ringing));
                self.refer_leg_progress(chan, 183);
                return self.host(HostAction::Progress(chan));
            }
            401 | 407 if first_challenge => self.authorized_retry(chan, msg),
            422 => self.interval_retry(chan, msg),
            300..=399 if may_redirect => match self.redirected_retry(chan, msg, code) {
                Redirect::Retry(invite) => Some(invite),
                Redirect::Wait => return,
                Redirect::Fail => None,
            },
            200..=299 => {
                let Some(ack) = ack else {
                    // The peer's other phones stop ringing.
                    let elsewhere = sirius_sip::transaction::CancelReason::CompletedElsewhere;
                    self.cancel_branches(now, chan, None, elsewhere);
                    self.confirm_uac(now.mono, chan, msg);
                    return self.refer_leg_progress(chan, code);
                };
                // A retransmitted 2xx: the same ACK again. A 2xx from
                // another fork (a forking proxy: a different To tag) made a
                // second call at the far end: ACK it and end it with BYE
                // (RFC 3261 §13.2.2.4); this session keeps the first.
                let confirmed = self
                    .sessions
                    .get(chan)
                    .and_then(|s| s.dialog.as_ref())
                    .map(|d| d.remote_tag.clone());
                let tag = msg.to_header().and_then(|t| t.tag().map(str::to_string));
                if confirmed.is_some() && tag.is_some() && confirmed != tag {
                    return self.end_second_fork(now.mono, chan, msg);
                }
                let hop = self.route_hop(&ack).unwrap_or(dest);
                return self.layer.send_stateless(hop, transport, &ack);
            }
            300..=699 => None,
            _ => return,
        };
        match retry {
            Some(invite) => self.send_invite(now.mono, chan, invite),
            // The peer's other phones may still answer.
            None => match self.own_invite_failed(chan, code) {
                super::fork::OwnFailure::Wait => {}
                super::fork::OwnFailure::End(best) => {
                    self.end_uac(chan, crate::causes::sip_to_cause(best))
                }
            },
        }
    }

    /// A 1xx with a To tag makes an early dialog (RFC 3261 §12.1.2), one
    /// per tag: a forking proxy's branches each ring with their own, and a
    /// request in any of them (an UPDATE, an INFO) reaches this session.
    fn early_fork(&mut self, chan: ChannelId, resp: &Message) {
        if resp
            .to_header()
            .and_then(|t| t.tag().map(str::to_string))
            .is_none()
        {
            return;
        }
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        let Some(invite) = s.invite.as_ref() else {
            return;
        };
        let contact = self.shared.contact_uri("", s.transport);
        let Ok(d) = sirius_sip::dialog::Dialog::from_uac(invite, resp, &contact) else {
            return;
        };
        if self.dialogs.get(&d.id).is_some() {
            return; // a retransmission, or this fork's next 1xx
        }
        let id = d.id.clone();
        self.dialogs.insert(d);
        self.sessions.add_fork(chan, id);
    }

    /// The first 2xx: the dialog is confirmed, the 2xx ACKed, the channel Up.
    fn confirm_uac(&mut self, now: Instant, chan: ChannelId, ok: &Message) {
        let Some(s) = self.sessions.get_mut(chan) else {
            return;
        };
        let Some(invite) = s.invite.take() else {
            return;
        };
        s.invite = Some(invite_summary(&invite));
        let (transport, dest) = (s.transport, s.dest);
        let Some((d, ack)) = self.ack_2xx(&invite, ok, dest, transport) else {
            return;
        };
        // The answer, parsed once: the codecs agreed and where the media goes.
        let answer = SessionDescription::parse(&ok.body).ok();
        let mut narrowed = None;
        if let Some(s) = self.sessions.get_mut(chan) {
            if let Role::Uac {
                ack: slot,
                asked_interval,
                pending_redirect,
                ..
            } = &mut s.role
            {
                // A redirect waiting for a name is moot once answered.
                *pending_redirect = None;
                *slot = Some(Box::new(ack));
                s.timer = timer::accepted(&s.timers, ok, *asked_interval);
            }
            s.peer_update = super::allows_update(ok);
            s.last_msg = "Tx: ACK".into();
            if let Some(agreed) = answer
                .as_ref()
                .and_then(|sd| super::agreed_codecs(&s.codecs, sd))
                .filter(|agreed| *agreed != s.codecs)
            {
                // The core hears of the codecs only when the answer narrowed them.
                s.codecs.clone_from(&agreed);
                narrowed = Some(agreed);
            }
        }
        self.mark_leg(chan, crate::inuse::Mark::Ringing, false);
        // The early dialogs go: the answering fork's is replaced by the
        // confirmed one, the others' branches were cancelled by the proxy.
        for fork in self.sessions.take_forks(chan) {
            self.dialogs.remove(&fork);
        }
        self.sessions.set_dialog(chan, d.id.clone());
        self.dialogs.insert(d);
        // After the dialog: a shared appearance shows its identifiers.
        self.sca_state(chan, crate::sca::ApState::Active);
        // The answer's media, followed by a relay already running for
        // early media.
        let media = answer
            .as_ref()
            .map(crate::relay::RemoteMedia::from_description)
            .unwrap_or_default();
        if media.addr.is_some() {
            self.media_moved(chan, media);
        }
        self.arm_timer(now, chan);
        if let Some(codecs) = narrowed {
            self.host(HostAction::SetCodecs(chan, codecs));
        }
        self.host(HostAction::SetState(chan, ChannelState::Up));
    }

    /// No response to our INVITE in time: congestion, as chan_sip's
    /// `auto_congest`. The INVITE transaction is left to run out on its own
    /// (a CANCEL must wait for a provisional response, RFC 3261 §9.1).
    pub(crate) fn auto_congest(&mut self, chan: ChannelId) {
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        log::info!("Auto-congesting {}", s.name);
        self.end_uac(chan, Cause::CONGESTION);
    }

    /// Forgets an outbound session (its transactions no longer reach it)
    /// and hangs its channel up with `cause`.
    pub(super) fn end_uac(&mut self, chan: ChannelId, cause: Cause) {
        let now = self.clock();
        if self.refers.watches(chan) {
            // A leg called for a REFER: its failure is the final report.
            self.refer_transferee_gone(now, chan, cause);
        }
        if let Some(s) = self.take_session(chan) {
            // The peer's other phones stop ringing (a 2xx crossing the
            // CANCEL is ACKed and ended).
            if let Role::Uac {
                forking: Some(f), ..
            } = &s.role
            {
                let reason = sirius_sip::transaction::CancelReason::None;
                self.cancel_taken_branches(now, f, reason);
            }
        }
        self.host(HostAction::Hangup(chan, cause));
    }

    /// A 2xx from a second fork of an answered INVITE: acknowledged and
    /// ended. The session keeps only a summary of its INVITE by then; the
    /// 2xx carries the INVITE's CSeq the dialog needs.
    fn end_second_fork(&mut self, now: Instant, chan: ChannelId, ok: &Message) {
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        // Our own INVITE's number (the one our ACK carries), not the one
        // in the far end's 2xx, which a broken far end could make anything.
        let seq = match &s.role {
            Role::Uac { ack: Some(ack), .. } => ack.cseq().map(|c| c.seq),
            _ => None,
        };
        let (Some(mut invite), Some(seq)) = (s.invite.clone(), seq) else {
            return;
        };
        invite.push(HeaderName::CSeq, format!("{seq} INVITE"));
        let (dest, transport) = (s.dest, s.transport);
        log::info!("{}: a second fork answered: sending ACK and BYE", s.name);
        self.ack_and_bye(now, &invite, ok, dest, transport);
    }

    /// A 2xx that crossed our CANCEL: the call exists at the far end, so it is
    /// acknowledged and ended at once.
    pub(crate) fn end_answered_after_cancel(
        &mut self,
        now: Instant,
        invite: &Message,
        ok: &Message,
        dest: SocketAddr,
        transport: Transport,
    ) {
        log::info!(
            "{} answered after our CANCEL: sending ACK and BYE",
            invite.request_uri().unwrap_or("?")
        );
        self.ack_and_bye(now, invite, ok, dest, transport);
    }

    /// The dialog a 2xx to our `invite` makes, and its ACK, sent (RFC 3261
    /// §13.2.2.4): to the route set's first hop, else `dest`. The ACK
    /// carries the CSeq of the INVITE it acknowledges (a retry after a
    /// challenge or redirect has a higher one). `None` (logged) for a 2xx
    /// no dialog can be made of.
    fn ack_2xx(
        &mut self,
        invite: &Message,
        ok: &Message,
        dest: SocketAddr,
        transport: Transport,
    ) -> Option<(sirius_sip::dialog::Dialog, Message)> {
        let contact = self.shared.contact_uri("", transport);
        let mut d = match sirius_sip::dialog::Dialog::from_uac(invite, ok, &contact) {
            Ok(d) => d,
            Err(e) => {
                log::warn!("bad 2xx to our INVITE: {e}");
                return None;
            }
        };
        let cseq = invite.cseq()?.seq;
        let via = self.via(transport);
        let ack = d.request(Method::Ack, &via, Some(cseq));
        let hop = self.route_hop(&ack).unwrap_or(dest);
        self.layer.send_stateless(hop, transport, &ack);
        Some((d, ack))
    }

    /// ACKs a 2xx to `invite` and ends the dialog it made with BYE.
    fn ack_and_bye(
        &mut self,
        now: Instant,
        invite: &Message,
        ok: &Message,
        dest: SocketAddr,
        transport: Transport,
    ) {
        let Some((mut d, _)) = self.ack_2xx(invite, ok, dest, transport) else {
            return;
        };
        let via = self.via(transport);
        let mut bye = d.request(Method::Bye, &via, None);
        bye.push(HeaderName::Reason, "Q.850;cause=16");
        let hop = self.route_hop(&bye).unwrap_or(dest);
        self.send_client(bye, hop, transport, crate::endpoint::Fire, now);
    }

    /// The core hangs up a UAC session: CANCEL while ringing, BYE once answered.
    pub(crate) fn hangup_uac(&mut self, now: Now, chan: ChannelId, cause: Cause) {
        let Some(s) = self.take_session(chan) else {
            return;
        };
        if s.dialog.is_some() {
            return self.send_bye(now, &s, cause);
        }
        // Another callee of the Dial answered: this phone logs no missed
        // call (RFC 3326, as chan_sip says it for ANSWERED_ELSEWHERE).
        let reason = match cause {
            Cause::ANSWERED_ELSEWHERE => sirius_sip::transaction::CancelReason::CompletedElsewhere,
            _ => sirius_sip::transaction::CancelReason::None,
        };
        if let Role::Uac {
            forking: Some(f), ..
        } = &s.role
        {
            self.cancel_taken_branches(now, f, reason);
        }
        let Role::Uac { tx: Some(tx), .. } = s.role else {
            return;
        };
        if let Err(e) = self.layer.cancel_with(now.mono, tx, reason) {
            log::debug!("cannot cancel {tx:?}: {e}");
        }
        if let Some(invite) = s.invite {
            self.own(
                tx,
                super::usage::Cancelled {
                    invite: Box::new(invite),
                    dest: s.dest,
                    transport: s.transport,
                },
            );
        }
    }

    /// The user part of a UAC session's Request-URI (`sip show channels`).
    pub(crate) fn uac_user(ruri: &str) -> String {
        Uri::parse(ruri)
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_else(|| "(None)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::escape_user;

    #[test]
    fn caller_ids_become_valid_uri_users() {
        assert_eq!(escape_user("+34 600-123"), "+34%20600-123");
        assert_eq!(escape_user("alice"), "alice");
        assert_eq!(escape_user("a@b:c"), "a%40b%3Ac");
        assert_eq!(escape_user("Zoë"), "Zo%C3%AB");
    }
}
