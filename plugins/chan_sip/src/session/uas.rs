//! A session someone else started: the INVITE is identified (peer,
//! digest, call-limit, codecs), handed to the dialplan, and answered,
//! refused or cancelled as the core and the caller decide.

use super::timer::{self, Grant};
use super::{invite_summary, Role, Session};
use crate::causes::cause_to_sip;
use crate::config::SessionTimers;
use crate::config::{General, Peer, PeerType};
use crate::endpoint::{Endpoint, Env, HostAction, Now, StreamKind};
use crate::inuse::CallCount;
use crate::registrar::AuthOutcome;
use sirius_abi::{Cause, ChannelId, ChannelSpec, ChannelState, Direction};
use sirius_sip::message::{build, HeaderName, Message, Uri};
use sirius_sip::refer::Replaces;
use sirius_sip::sdp::negotiate::answer as sdp_answer;
use sirius_sip::sdp::{Direction as SdpDirection, SessionDescription};
use sirius_sip::transaction::{Transport, TxId};
use std::net::SocketAddr;
use std::time::Duration;

/// Seconds a caller refused for load (503) is asked to wait.
pub(crate) const RETRY_AFTER_SECS: u32 = 2;

/// RTP/RTCP pairs a new inbound call needs free to be admitted: its own
/// and its callee's leg.
const MEDIA_HEADROOM: usize = 2;

/// Matches the peer an INVITE comes from: by From user for friends and
/// users, by source address for static peers (port too, unless insecure=port).
pub(crate) fn match_peer<'a>(
    running: &'a crate::Running,
    msg: &Message,
    source: SocketAddr,
) -> Option<&'a Peer> {
    let from_user = msg
        .from_header()
        .and_then(|f| Uri::parse(&f.uri).ok())
        .and_then(|u| u.user);
    if let Some(p) = from_user
        .as_deref()
        .and_then(|u| running.peers.get(u))
        .filter(|p| p.kind != PeerType::Peer)
    {
        return Some(p);
    }
    running.peers.values().find(|p| {
        p.addr.is_some_and(|a| {
            a.ip() == source.ip() && (p.insecure_port || a.port() == source.port())
        })
    })
}

impl Endpoint {
    /// The peer a request outside any dialog (a SUBSCRIBE, a PUBLISH)
    /// comes from, authenticated as an INVITE would be (`method` in the
    /// digest): unknown senders get the same challenge as wrong passwords,
    /// then 403; a request that passed over TCP makes its connection
    /// trusted. `None` once the request is answered.
    pub(crate) fn authenticated_peer(
        &mut self,
        now: Now,
        (tx, msg): (TxId, &Message),
        (source, transport): (SocketAddr, Transport),
        method: &str,
    ) -> Option<Peer> {
        let running = self.shared.running();
        let peer = match_peer(&running, msg, source);
        let auth = self.shared.registrar.lock().authenticate(
            msg,
            method,
            self.shared.arrival(source, transport),
            now.unix,
            &running.cfg.general,
            peer,
        );
        if let AuthOutcome::Respond(r) = auth {
            self.send_response(now, tx, *r);
            return None;
        }
        let Some(peer) = peer.cloned() else {
            self.respond(now, tx, msg, source, (403, "Forbidden"), &[]);
            return None;
        };
        if transport == Transport::Tcp {
            self.out.push_back(crate::endpoint::Output::Trusted(source));
        }
        Some(peer)
    }

    /// A new INVITE outside any dialog.
    pub(crate) fn on_invite(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        let running = self.shared.running();
        let g: &General = &running.cfg.general;
        let peer = match_peer(&running, msg, source);
        let needs_auth =
            peer.is_some_and(|p| !p.insecure_invite) || (peer.is_none() && !g.allowguest);
        if needs_auth {
            let auth = self.shared.registrar.lock().authenticate(
                msg,
                "INVITE",
                self.shared.arrival(source, transport),
                now.unix,
                g,
                peer,
            );
            match auth {
                AuthOutcome::Ok => {}
                AuthOutcome::Respond(r) => return self.send_response(now, tx, *r),
            }
        }
        // A TCP connection that carried an authenticated INVITE, or one
        // from a peer's own address, is trusted (transport.rs).
        let by_address = peer.is_some_and(|p| p.addr.is_some_and(|a| a.ip() == source.ip()));
        if transport == Transport::Tcp && ((needs_auth && peer.is_some()) || by_address) {
            self.out.push_back(crate::endpoint::Output::Trusted(source));
        }
        // RFC 3891: a call that replaces one of ours (session/replaces.rs);
        // only an authenticated peer may, one Replaces that parses.
        let replaces = match msg.headers.count(&HeaderName::Replaces) {
            0 => None,
            1 => match msg.headers.get(&HeaderName::Replaces).map(Replaces::parse) {
                Some(Ok(r)) => Some(r),
                _ => return self.respond(now, tx, msg, source, (400, "Bad Request"), &[]),
            },
            _ => return self.respond(now, tx, msg, source, (400, "Bad Request"), &[]),
        };
        if replaces.is_some() && peer.is_none() {
            return self.respond(now, tx, msg, source, (403, "Forbidden"), &[]);
        }
        // (A loop running late refused the call before it got here:
        // Endpoint::refused_for_lag.)
        // RTP ports for this leg and the one a Dial makes: without them the
        // call would fail after a channel, a dialplan and (for the callee's
        // leg) an INVITE were spent on it. Refused now, at the cost of a 503.
        let free = env.media_free();
        if free < MEDIA_HEADROOM {
            if self.first_refusal_this_second(now.mono) {
                log::warn!(
                    "RTP port range nearly exhausted ({free} pairs left): refusing new calls with 503 (logged once a second)"
                );
            }
            return self.refuse_for_load(now, tx, msg, source);
        }
        // call-limit: calls in progress with this peer, in and out
        // (update_call_counter). The place is taken now, under the table's
        // lock (another shard may be admitting a call of the same peer); a
        // refusal below gives it back.
        let limit = peer.map_or(0, |p| p.call_limit);
        let count =
            match CallCount::admit(&self.shared.in_use, peer.map(|p| p.name.as_str()), limit) {
                Ok(count) => count,
                Err(_) => {
                    log::info!(
                        "Call from peer '{}' rejected due to usage limit of {limit}",
                        peer.map_or("", |p| p.name.as_str()),
                    );
                    return self.respond(
                        now,
                        tx,
                        msg,
                        source,
                        (480, "Temporarily Unavailable (Call limit)"),
                        &[],
                    );
                }
            };
        // RFC 4028: what the caller asks of a session timer, granted with
        // the INVITE's 200; refused here when too short (422) or unwanted.
        let timers = peer.map_or_else(|| g.timers(), |p| p.timers);
        let requires_timer = msg
            .headers
            .values(&HeaderName::Require)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("timer"));
        let granted = match timer::grant(&timers, &timer::asked(msg)) {
            _ if requires_timer && timers.mode == SessionTimers::Refuse => {
                return self.respond(
                    now,
                    tx,
                    msg,
                    source,
                    (420, "Bad Extension"),
                    &[(HeaderName::Unsupported, "timer".into())],
                );
            }
            Grant::TooSmall(min) => return self.interval_too_small(now, tx, msg, source, min),
            Grant::Run(t) => Some(t),
            Grant::None => None,
        };
        let mut codecs = peer.map_or_else(
            || crate::config::DEFAULT_CODECS.to_vec(),
            |p| p.codecs.clone(),
        );
        // An offer in the INVITE must share an audio codec with the peer's
        // list. It is negotiated here, once: the answer waits in the session
        // for the 183 or 200 (its ports filled in when they are reserved).
        let mut remote = crate::relay::RemoteMedia::default();
        let sdp_id = self.tokens.next_u64() >> 32;
        let mut answer = None;
        if !msg.body.is_empty() {
            let Ok(offer) = SessionDescription::parse(&msg.body) else {
                return self.respond(now, tx, msg, source, (400, "Bad Request (SDP)"), &[]);
            };
            remote = crate::relay::RemoteMedia::from_description(&offer);
            let check = super::Ports {
                audio: 0,
                video: Some(0),
            };
            let local = self.local_media(&codecs, check, (sdp_id, 1), SdpDirection::SendRecv);
            match sdp_answer(&offer, &local) {
                Err(_) => {
                    log::info!(
                        "Rejecting INVITE {}: no audio codec in common with {}",
                        msg.call_id().unwrap_or("?"),
                        peer.map_or("the guest codec list", |p| p.name.as_str())
                    );
                    return self.respond(now, tx, msg, source, (488, "Not Acceptable Here"), &[]);
                }
                Ok(negotiated) => {
                    if let Some(agreed) = super::agreed_codecs(&codecs, &offer) {
                        codecs = agreed;
                    }
                    answer = Some(negotiated);
                }
            }
        }
        let exten = Uri::parse(msg.request_uri().unwrap_or_default())
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_else(|| "s".into());
        let caller = msg
            .from_header()
            .and_then(|f| Uri::parse(&f.uri).ok())
            .and_then(|u| u.user)
            .unwrap_or_default();
        let spec = ChannelSpec {
            tech: "SIP".into(),
            resource: peer
                .map_or_else(|| source.ip().to_string(), |p| p.name.clone())
                .into(),
            state: ChannelState::Ring,
            direction: Direction::Inbound,
            context: peer
                .map_or_else(|| g.context.clone(), |p| p.context.clone())
                .into(),
            exten: exten.into(),
            caller_num: caller.into(),
            caller_name: msg
                .from_header()
                .and_then(|f| f.display)
                .unwrap_or_default()
                .into(),
            codecs: codecs.clone().into(),
            accountcode: peer.map(|p| p.accountcode.as_str()).unwrap_or("").into(),
        };
        let info = match env.channel_alloc(spec) {
            Ok(i) => i,
            Err(cause) => {
                let (code, reason) = cause_to_sip(cause);
                return self.respond(now, tx, msg, source, (code, reason), &[]);
            }
        };
        // A video stream of its own when the peer allows video and the
        // caller offered it (or offered nothing: our offer then has it).
        let video = super::has_video(&codecs) && (msg.body.is_empty() || remote.video.is_some());
        let ports = env
            .reserve_media(info.id, StreamKind::Audio)
            .and_then(|audio| {
                let video = match video {
                    true => Some(env.reserve_media(info.id, StreamKind::Video)?),
                    false => None,
                };
                Ok((audio, video))
            });
        let (rtp_port, video_port) = match ports {
            Ok(ports) => ports,
            Err(e) => {
                if self.first_refusal_this_second(now.mono) {
                    log::error!(
                        "no RTP port for '{}': {e} (rtpstart-rtpend full? refusing calls with 503; logged once a second)",
                        info.name
                    );
                }
                self.media(crate::endpoint::MediaAction::Release(info.id));
                self.host(HostAction::Hangup(info.id, Cause::CONGESTION));
                return self.refuse_for_load(now, tx, msg, source);
            }
        };
        // The callee's pair too, now (see Env::set_aside): under load the
        // range runs out here, before a dialplan and a second leg are spent.
        if !env.set_aside(info.id) {
            if self.first_refusal_this_second(now.mono) {
                log::warn!(
                    "no RTP port left for the callee of '{}' (rtpstart-rtpend full? refusing calls with 503; logged once a second)",
                    info.name
                );
            }
            self.media(crate::endpoint::MediaAction::Release(info.id));
            self.host(HostAction::Hangup(info.id, Cause::CONGESTION));
            return self.refuse_for_load(now, tx, msg, source);
        }
        let dtmf_info = peer.is_some_and(|p| p.dtmfmode.ends_with("info"));
        // Registered before the dialplan starts: its thread may answer at once.
        let local_tag = self.tokens.token();
        self.put_session(
            info.id,
            Session {
                name: info.name.to_string(),
                role: Role::Uas {
                    tx,
                    local_tag,
                    final_sent: false,
                },
                dest: source,
                transport,
                invite: Some(msg.clone()),
                rtp_port,
                video_port,
                codecs,
                peer: peer.map(|p| p.name.clone()),
                dialog: None,
                remote,
                last_msg: "Rx: INVITE".into(),
                held: false,
                reinvite: None,
                ringing: false,
                timers,
                timer: granted,
                timer_due: None,
                peer_update: super::allows_update(msg),
                local_hold: false,
                hold_wanted: None,
                glare_retry: None,
                sdp_id,
                sdp_version: 1,
                dtmf_info,
                answer: answer.map(|(mut sd, neg)| {
                    // Accepted streams get our ports; declined ones stay 0.
                    for (m, st) in sd.media.iter_mut().zip(&neg.streams) {
                        m.port = match (st.rejected, m.kind.as_str()) {
                            (false, "audio") => rtp_port,
                            (false, "video") => video_port.unwrap_or(0),
                            _ => 0,
                        };
                    }
                    Box::new(sd)
                }),
            },
            count,
        );
        if let Some(r) = &replaces {
            // No dialplan: the call takes another's place once found (a
            // shared line's appearance with it, and no new one: RFC 7463
            // §5.3.2).
            return self.invite_replaces(now, env, info.id, r);
        }
        // A shared line's member taking a held call over (seed 003), or
        // calling out on the line.
        match self.sca_pickup_of(info.id, msg) {
            crate::sca::Pickup::Take(index) => return self.sca_pickup(now, env, info.id, index),
            crate::sca::Pickup::Refuse => return self.sca_refuse_pickup(now, info.id),
            crate::sca::Pickup::No => {}
        }
        self.sca_member_call(info.id, msg);
        if let Err(cause) = env.pbx_start(info.id) {
            self.take_session(info.id);
            self.host(HostAction::Hangup(info.id, cause));
            match cause_to_sip(cause) {
                // Load or maxcalls: temporary.
                (503, _) => self.refuse_for_load(now, tx, msg, source),
                (code, reason) => self.respond(now, tx, msg, source, (code, reason), &[]),
            }
        }
    }

    /// 503 with Retry-After: a refusal for load is temporary, so the caller
    /// is told when to come back (RFC 3261 §21.5.4) instead of retrying at once.
    fn refuse_for_load(&mut self, now: Now, tx: TxId, msg: &Message, source: SocketAddr) {
        let retry = [(HeaderName::RetryAfter, RETRY_AFTER_SECS.to_string())];
        self.respond(now, tx, msg, source, (503, "Service Unavailable"), &retry);
    }

    /// Whether a refusal is the first of its second, to be logged: under
    /// overload a line per refused call would be thousands a second.
    pub(crate) fn first_refusal_this_second(&mut self, now: std::time::Instant) -> bool {
        let first = self
            .last_refusal_log
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if first {
            self.last_refusal_log = Some(now);
        }
        first
    }

    /// A response on a UAS session's INVITE transaction, with our To tag
    /// (and Contact on a 2xx): the transaction, the response.
    pub(crate) fn uas_response(
        &self,
        chan: ChannelId,
        code: u16,
        reason: &str,
    ) -> Option<(TxId, Message)> {
        let s = self.sessions.get(chan)?;
        let Role::Uas { tx, local_tag, .. } = &s.role else {
            return None;
        };
        let mut r = build::response(s.invite.as_ref()?, code, reason, Some(s.dest));
        build::set_to_tag(&mut r, local_tag);
        if code < 300 {
            let contact = self.shared.contact_uri("", s.transport);
            r.push(HeaderName::Contact, format!("<{contact}>"));
        }
        r.push(
            HeaderName::Server,
            &self.shared.running().cfg.general.useragent,
        );
        Some((*tx, r))
    }

    /// The dialog our 1xx or 2xx (with our To tag) makes, early until the
    /// answer (RFC 3261 §12.1.1); a request in it (an UPDATE before the
    /// answer) reaches the session. Once per session.
    fn uas_early_dialog(&mut self, chan: ChannelId) {
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        if s.dialog.is_some() {
            return;
        }
        let (Some(invite), Role::Uas { local_tag, .. }) = (s.invite.as_ref(), &s.role) else {
            return;
        };
        let contact = self.shared.contact_uri("", s.transport);
        let local_seq = self.tokens.next_u64() as u16;
        match sirius_sip::dialog::Dialog::from_uas(invite, local_tag, &contact, local_seq) {
            Ok(d) => {
                self.sessions.set_dialog(chan, d.id.clone());
                self.dialogs.insert(d);
            }
            Err(e) => log::warn!("no dialog for {}: {e}", s.name),
        }
    }

    /// `487 Request Terminated` for a UAS session's INVITE still waiting
    /// for its final response.
    pub(crate) fn uas_terminated(&mut self, now: Now, chan: ChannelId) {
        if !self.uas_pending(chan) {
            return;
        }
        if let Some((invite_tx, r)) = self.uas_response(chan, 487, "Request Terminated") {
            self.send_response(now, invite_tx, r);
        }
        self.uas_final_sent(chan);
    }

    /// Whether a UAS session still waits for its final response.
    fn uas_pending(&self, chan: ChannelId) -> bool {
        matches!(
            self.sessions.get(chan).map(|s| &s.role),
            Some(Role::Uas {
                final_sent: false,
                ..
            })
        )
    }

    /// A final response went out: only the summary of the INVITE stays.
    fn uas_final_sent(&mut self, chan: ChannelId) {
        if let Some(s) = self.sessions.get_mut(chan) {
            if let Role::Uas { final_sent, .. } = &mut s.role {
                *final_sent = true;
            }
            s.answer = None;
            s.ringing = false;
            s.invite = s.invite.as_ref().map(invite_summary);
        }
    }

    /// The core answers: 200 with our answer (or our offer, for an INVITE
    /// without SDP: the answer then comes in the ACK); the dialog is confirmed.
    pub(crate) fn answer_call(&mut self, now: Now, chan: ChannelId) {
        if !self.uas_pending(chan) {
            return;
        }
        let Some(call_id) = self
            .sessions
            .get(chan)
            .and_then(|s| s.invite.as_ref()?.call_id().map(str::to_string))
        else {
            return;
        };
        // An offer in the INVITE is answered; without one (late offer) we
        // offer here and the answer comes in the ACK.
        let sdp = self.uas_sdp(chan, true);
        let Some((tx, mut ok)) = self.uas_response(chan, 200, "OK") else {
            return;
        };
        // Answered: a Dial that needed the callee's pair has made its leg
        // (Dial answers its caller after the callee), or none will soon.
        self.media(crate::endpoint::MediaAction::DropSpare(chan));
        ok.push(HeaderName::Allow, self.caps.allow());
        let (timers, granted) = self
            .sessions
            .get(chan)
            .map_or((None, None), |s| (Some(s.timers), s.timer));
        let timers_on = timers.is_some_and(|t| t.mode != SessionTimers::Refuse);
        ok.push(HeaderName::Supported, self.supported(timers_on));
        if let Some(t) = granted {
            t.stamp(&mut ok, false);
        }
        if let Some(sd) = sdp {
            ok.set_body("application/sdp", sd.to_bytes());
        }
        self.send_response(now, tx, ok);
        // The early dialog of our 1xx becomes the confirmed one; without a
        // 1xx before, the dialog starts here.
        self.uas_early_dialog(chan);
        // After the dialog: a shared appearance shows its identifiers.
        self.sca_state(chan, crate::sca::ApState::Active);
        let early = self.sessions.get(chan).and_then(|s| s.dialog.clone());
        match early.and_then(|id| self.dialogs.get_mut(&id)) {
            Some(d) => d.confirm(),
            None => log::warn!("no dialog for answered call {call_id}"),
        }
        self.uas_final_sent(chan);
        self.arm_timer(now.mono, chan);
    }

    /// Our SDP for a response to a UAS session's INVITE: the answer to its
    /// offer (the same in a 183 and the 200), or — for an INVITE without
    /// one, and only when `may_offer` (a 200: the answer then comes in the
    /// ACK) — our offer.
    fn uas_sdp(&mut self, chan: ChannelId, may_offer: bool) -> Option<SessionDescription> {
        let s = self.sessions.get(chan)?;
        if let Some(answer) = &s.answer {
            return Some((**answer).clone());
        }
        if !may_offer {
            return None;
        }
        let (codecs, ports, origin) = (s.codecs.clone(), s.ports(), s.origin());
        let local = self.local_media(&codecs, ports, origin, SdpDirection::SendRecv);
        Some(sirius_sip::sdp::negotiate::offer(&local))
    }

    /// Ringing and progress become 180 and 183 (with our answer, so the
    /// caller hears early media); busy and congestion end the call with
    /// 486 and 503.
    pub(crate) fn indicate_call(&mut self, now: Now, chan: ChannelId, ind: sirius_abi::Indication) {
        use sirius_abi::Indication::*;
        if !self.uas_pending(chan) {
            return self.answered_indication(chan, ind);
        }
        let (code, reason, is_final) = match ind {
            Ringing => (180, "Ringing", false),
            Progress => (183, "Session Progress", false),
            Busy => (486, "Busy Here", true),
            Congestion => (503, "Service Unavailable", true),
            _ => return,
        };
        if !is_final {
            self.uas_early_dialog(chan);
        }
        if let Some((tx, mut r)) = self.uas_response(chan, code, reason) {
            if code == 183 {
                if let Some(sd) = self.uas_sdp(chan, false) {
                    r.set_body("application/sdp", sd.to_bytes());
                }
            }
            self.send_response(now, tx, r);
        }
        if is_final {
            self.uas_final_sent(chan);
        } else if let Some(s) = self.sessions.get_mut(chan) {
            s.ringing = true;
        }
    }

    /// An indication for a leg already answered (either way): there is no
    /// response left to carry it, so ringing is heard as a ringback tone
    /// (a transferee while its target rings), as Asterisk plays the
    /// indication's tone; anything else stops it.
    fn answered_indication(&mut self, chan: ChannelId, ind: sirius_abi::Indication) {
        let confirmed = self
            .sessions
            .get(chan)
            .and_then(|s| s.dialog.as_ref())
            .and_then(|d| self.dialogs.get(d))
            .is_some_and(|d| d.state == sirius_sip::dialog::DialogState::Confirmed);
        if !confirmed {
            return;
        }
        match (ind, self.leg_media(chan)) {
            (sirius_abi::Indication::Ringing, Some(leg)) => {
                self.media(crate::endpoint::MediaAction::Ringback(leg))
            }
            _ => self.media(crate::endpoint::MediaAction::StopTone(chan)),
        }
    }

    /// A CANCEL for an INVITE still ringing in the dialplan: 200 for the
    /// CANCEL, 487 for the INVITE, and the channel goes. Otherwise 481.
    pub(crate) fn on_cancel(
        &mut self,
        now: Now,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        cancels: Option<TxId>,
    ) {
        let chan = cancels
            .and_then(|t| self.sessions.by_invite(t))
            .filter(|c| self.uas_pending(*c));
        let Some(chan) = chan else {
            return self.no_such_call(now, tx, msg, source);
        };
        self.respond(now, tx, msg, source, (200, "OK"), &[]);
        self.uas_terminated(now, chan);
        self.take_session(chan);
        self.host(HostAction::Hangup(chan, Cause::NORMAL_CLEARING));
    }

    /// The core hangs up a UAS session: a final response if none went out
    /// (603 for a normal hangup, as Asterisk), else BYE.
    pub(crate) fn hangup_uas(&mut self, now: Now, chan: ChannelId, cause: Cause) {
        if self.uas_pending(chan) {
            let (code, reason) = if matches!(cause.0, 0 | 16) {
                (603, "Declined")
            } else {
                cause_to_sip(cause)
            };
            if let Some((tx, r)) = self.uas_response(chan, code, reason) {
                self.send_response(now, tx, r);
            }
            self.take_session(chan);
            return;
        }
        if let Some(s) = self.take_session(chan) {
            self.send_bye(now, &s, cause);
        }
    }
}
