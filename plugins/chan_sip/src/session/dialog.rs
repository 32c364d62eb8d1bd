//! What a session does inside its dialog, whichever side started it: the
//! ACK of our 2xx (a late offer's answer), re-INVITEs (hold, media that
//! moves), BYE, the native bridge and hold passed on through it.

use super::timer::{self, Grant};
use super::usage::ReInvite;
use crate::config::SessionTimers;
use crate::endpoint::{Endpoint, Env, HostAction, LegMedia, MediaAction, Now, Owner};
use crate::session::Role;
use sirius_abi::{Cause, ChannelId};
use sirius_sip::dialog::{Classified, DialogId};
use sirius_sip::message::{build, HeaderName, Message, Method};
use sirius_sip::sdp::negotiate::answer as sdp_answer;
use sirius_sip::sdp::{Direction as SdpDirection, SessionDescription};
use sirius_sip::transaction::{Transport, TxId};
use std::net::SocketAddr;
use std::time::Instant;

impl Endpoint {
    /// The ACK of a 2xx we sent, to an INVITE or a re-INVITE, routed by
    /// its dialog. When our 2xx carried the offer (the INVITE had none: a
    /// late offer, or RFC 3725 third-party call control), the answer rides
    /// in the ACK, and the relay follows it at once: the phone hears the
    /// other leg from the first packet, not once it has sent one itself.
    pub(crate) fn on_ack(&mut self, msg: &Message) {
        let Classified::InDialog(id) = self.dialogs.classify(msg) else {
            return;
        };
        let Some(chan) = self.sessions.by_dialog(&id) else {
            return;
        };
        self.note_msg(chan, "Rx: ACK".into());
        if msg.body.is_empty() {
            return;
        }
        let Ok(answer) = SessionDescription::parse(&msg.body) else {
            return;
        };
        let remote = crate::relay::RemoteMedia::from_description(&answer);
        // An ACK without a usable answer leaves the offer's view.
        if remote.addr.is_none() {
            return;
        }
        self.media_moved(chan, remote);
        let Some(s) = self.sessions.get_mut(chan) else {
            return;
        };
        if let Some(codecs) = super::agreed_codecs(&s.codecs, &answer).filter(|c| *c != s.codecs) {
            s.codecs.clone_from(&codecs);
            self.host(HostAction::SetCodecs(chan, codecs));
        }
    }

    /// BYE in a dialog: 200, and the session and its channel end. A BYE
    /// out of CSeq order is refused like any in-dialog request.
    pub(crate) fn on_bye(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        id: &DialogId,
    ) {
        if let Some(Err(e)) = self.dialogs.get_mut(id).map(|d| d.accept_remote_cseq(msg)) {
            let (code, reason) = e.status();
            return self.respond(now, tx, msg, source, (code, reason), &[]);
        }
        // A BYE ends an INVITE usage; a busy-lamp subscription's dialog has
        // none, and the subscription goes on (RFC 5057 §5.4).
        if self.subscriptions.by_dialog(id).is_some() {
            return self.no_such_call(now, tx, msg, source);
        }
        // A transfer still reporting keeps the dialog (its NOTIFYs).
        if !self.refers.holds(id) {
            self.dialogs.remove(id);
            self.refers.dialog_gone(id);
        }
        self.respond(now, tx, msg, source, (200, "OK"), &[]);
        if let Some(chan) = self.sessions.by_dialog(id) {
            // A BYE in the early dialog of our 1xx: the INVITE still waits
            // for its final response (RFC 3261 §15.1.2).
            self.uas_terminated(now, chan);
            // BYE/Also: the other party goes on, transferred, before the
            // sender's leg (and with it, once, its bridge) ends.
            self.bye_also(env, chan, msg);
            self.take_session(chan);
            self.host(HostAction::Hangup(chan, Cause::NORMAL_CLEARING));
            if !self.refers.is_empty() {
                self.refer_transferor_gone(id);
            }
        }
    }

    /// A request inside an established dialog other than BYE: CSeq order is
    /// checked (a lower one gets 500, RFC 3261 §12.2.2). A re-INVITE or an
    /// UPDATE (RFC 3311) is answered with our SDP — an answer to its offer,
    /// or, for a re-INVITE without one, our offer (the answer comes in the
    /// ACK) — and refreshes the session timer (RFC 4028); hold and unhold
    /// are noticed, logged and passed on to the bridged leg. OPTIONS gets 200.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_in_dialog(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
        id: &DialogId,
    ) {
        let method = msg.method().cloned().unwrap_or(Method::Ack);
        let chan = self.sessions.by_dialog(id);
        if let Some(chan) = chan {
            self.note_msg(chan, format!("Rx: {method}"));
        }
        let Some(d) = self.dialogs.get_mut(id) else {
            return;
        };
        if let Err(e) = d.accept_remote_cseq(msg) {
            let (code, reason) = e.status();
            return self.respond(now, tx, msg, source, (code, reason), &[]);
        }
        if method == Method::Info {
            return self.on_info(now, env, tx, msg, source, chan);
        }
        if method == Method::Refer {
            return self.on_refer(now, env, tx, msg, source, transport, id, chan);
        }
        if method == Method::Notify {
            return self.on_notify(now, tx, msg, source, chan);
        }
        if method == Method::Subscribe {
            // A refresh of a subscription; one in a call's dialog is not
            // something we serve (chan_sip's answer).
            return match self.subscriptions.by_dialog(id) {
                Some(key) => self.on_resubscribe(now, env, tx, msg, source, key),
                None => self.respond(
                    now,
                    tx,
                    msg,
                    source,
                    (403, "Forbidden (within dialog)"),
                    &[],
                ),
            };
        }
        if !matches!(method, Method::Invite | Method::Update) {
            return self.respond(now, tx, msg, source, (200, "OK"), &[]);
        }
        // Only a call's re-INVITE or UPDATE moves its target (one in a
        // subscription's dialog gets 481 and changes nothing).
        let Some(chan) = chan.filter(|c| self.sessions.get(*c).is_some()) else {
            return self.no_such_call(now, tx, msg, source);
        };
        d.refresh_target(msg);
        let local_tag = d.id.local_tag.clone();
        if !msg.body.is_empty() && self.reinvite_pending(chan) {
            // Glare: both sides offered at once (RFC 3261 §14.2, RFC 3311).
            return self.respond(now, tx, msg, source, (491, "Request Pending"), &[]);
        }
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        let (codecs, ports, timers) = (s.codecs.clone(), s.ports(), s.timers);
        let asked = timer::asked(msg);
        let granted = match timer::grant(&timers, &asked) {
            Grant::TooSmall(min) => return self.interval_too_small(now, tx, msg, source, min),
            Grant::Run(t) => Some(t),
            // A refresh that names no interval keeps the one in force; from
            // a far end that does not say it supports timers, the
            // refreshing is ours (RFC 4028 §9).
            Grant::None => s.timer.map(|t| match asked.supported {
                true => t,
                false => timer::SessionTimer {
                    we_refresh: true,
                    peer_supports: false,
                    ..t
                },
            }),
        };
        // The next version of our SDP, counted once it really goes out.
        let origin = (s.sdp_id, s.sdp_version + 1);
        let local = self.local_media(&codecs, ports, origin, SdpDirection::SendRecv);
        // The answer goes out before the bridged leg hears of a hold: that
        // leg's re-INVITE is a transaction of its own (B2BUA).
        let (sdp, moved) = if !msg.body.is_empty() {
            let Ok(offer) = SessionDescription::parse(&msg.body) else {
                return self.respond(now, tx, msg, source, (400, "Bad Request (SDP)"), &[]);
            };
            let Ok((sd, neg)) = sdp_answer(&offer, &local) else {
                return self.respond(now, tx, msg, source, (488, "Not Acceptable Here"), &[]);
            };
            let media = crate::relay::RemoteMedia::from_description(&offer);
            (Some(sd), Some((media, neg.on_hold())))
        } else if method == Method::Invite {
            (Some(sirius_sip::sdp::negotiate::offer(&local)), None)
        } else {
            (None, None) // an UPDATE without SDP: a refresh only
        };
        let mut ok = build::response(msg, 200, "OK", Some(source));
        build::set_to_tag(&mut ok, &local_tag);
        let contact = self.shared.contact_uri("", transport);
        ok.push(HeaderName::Contact, format!("<{contact}>"));
        ok.push(
            HeaderName::Supported,
            self.supported(timers.mode != SessionTimers::Refuse),
        );
        if let Some(t) = granted {
            t.stamp(&mut ok, false);
        }
        let described = sdp.is_some();
        if let Some(sd) = sdp {
            ok.set_body("application/sdp", sd.to_bytes());
        }
        self.send_response(now, tx, ok);
        if let Some(s) = self.sessions.get_mut(chan) {
            s.timer = granted;
            s.sdp_version += u64::from(described);
        }
        self.arm_timer(now.mono, chan);
        if let Some((media, held)) = moved {
            self.media_moved(chan, media);
            self.set_held(now, env, chan, held);
        }
    }

    /// The far end's re-INVITE said whether it holds the call: logged, an
    /// event, and a change passed on to the bridged leg.
    fn set_held(&mut self, now: Now, env: &mut dyn Env, chan: ChannelId, held: bool) {
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        let (was_held, name) = (s.held, s.name.clone());
        self.mark_leg(chan, crate::inuse::Mark::Held, held);
        if was_held != held {
            self.pass_hold_on(now, env, chan, held);
        }
        sirius_abi::verbose!(
            3,
            "    -- {name} {}",
            if held {
                "put on hold by the far end"
            } else {
                "active (not on hold)"
            }
        );
        self.event(
            if held { "Hold" } else { "Unhold" },
            vec![("Channel", name)],
        );
    }

    /// A leg put the call on hold (or took it off): the leg it is natively
    /// bridged with gets a re-INVITE saying so (`sendonly` while held,
    /// `sendrecv` after), so the other phone shows the hold too. The held
    /// leg's own re-INVITE was already answered; the two transactions are
    /// independent, as in a B2BUA.
    fn pass_hold_on(&mut self, now: Now, env: &mut dyn Env, chan: ChannelId, held: bool) {
        let Some(other) = env.bridged_with(chan) else {
            return;
        };
        if other == chan {
            return; // Echo: nobody else to tell.
        }
        if self.sessions.get(other).is_none() {
            // Bridged across shards (lent media): its own shard re-INVITEs it.
            let msg = crate::endpoint::ShardMsg::Hold(other, held);
            return self.tell_home_of(other, msg);
        }
        self.send_hold(now, other, held);
    }

    /// The core bridged our `chan` with `partner` of shard `to`: its media
    /// goes to that shard's relay.
    pub(crate) fn lend_leg(
        &mut self,
        chan: ChannelId,
        to: usize,
        partner: ChannelId,
        env: &mut dyn Env,
    ) {
        if env.bridged_with(chan).is_some() {
            return log::warn!("{} is already in a native bridge", self.sessions.name(chan));
        }
        if let Some(leg) = self.leg_media(chan) {
            self.media(MediaAction::Lend(leg, to, partner));
        }
    }

    /// Another shard lent us `leg`: relayed with our `partner`; when that
    /// leg is gone by now, the loan ends at once.
    pub(crate) fn bridge_borrowed(&mut self, leg: LegMedia, partner: ChannelId) {
        match self.leg_media(partner) {
            Some(ours) => {
                // A leg we held for its old partner (a shared line's member
                // holding the call) hears a new partner that does not hold:
                // off hold, ours here, the lent one on its own shard.
                let now = self.clock();
                if ours.local_hold && !leg.held {
                    self.send_hold(now, partner, false);
                }
                if leg.local_hold && !ours.held {
                    self.unhold_anywhere(now, leg.chan);
                }
                self.media(MediaAction::Bridge(ours, leg));
            }
            None => self.media(MediaAction::Unbridge(leg.chan)),
        }
    }

    /// Whether our re-INVITE on `chan` still waits for its final response:
    /// a second one must wait (RFC 3261 §14.1), and an offer from the far
    /// end meanwhile gets 491.
    pub(crate) fn reinvite_pending(&self, chan: ChannelId) -> bool {
        self.sessions
            .get(chan)
            .and_then(|s| s.reinvite)
            .is_some_and(|tx| {
                matches!(
                    self.owners.get(&tx),
                    Some(Owner::ReInvite(ReInvite { ack: None, .. }))
                )
            })
    }

    /// Our re-INVITE crossed one of the far end's, which answered 491
    /// Request Pending (glare). RFC 3261 §14.1: try again after a random
    /// wait, 2.1–4 s for the side that chose the Call-ID (we did, on our
    /// outbound legs) and 0–2 s for the other, in 10 ms steps, so that the
    /// two sides do not collide again; what we wanted by then (the same
    /// hold state, or a newer one) is what goes.
    fn glare(&mut self, now: Now, chan: ChannelId) {
        let roll = self.tokens.next_u64();
        let Some(s) = self.sessions.get_mut(chan) else {
            return;
        };
        let wait_ms = match s.role {
            Role::Uac { .. } => 2_100 + 10 * (roll % 191),
            Role::Uas { .. } => 10 * (roll % 201),
        };
        let at = now.mono + std::time::Duration::from_millis(wait_ms);
        s.glare_retry = Some(at);
        s.hold_wanted.get_or_insert(s.local_hold);
        log::info!(
            "Our re-INVITE to {} crossed one of theirs (491); trying again in {wait_ms} ms",
            s.name
        );
        self.glare_timers.insert((at, chan));
    }

    /// The wait after a 491 is over: the re-INVITE goes again.
    pub(crate) fn glare_retry_due(&mut self, now: Now, chan: ChannelId, at: Instant) {
        let Some(s) = self.sessions.get_mut(chan) else {
            return;
        };
        if s.glare_retry != Some(at) {
            return; // a stale entry
        }
        s.glare_retry = None;
        let held = s.hold_wanted.take().unwrap_or(s.local_hold);
        self.send_hold(now, chan, held);
    }

    /// Our re-INVITE saying `other` is held (sendonly) or not (sendrecv);
    /// while one is still in progress, or we wait to retry after a 491,
    /// the wish is kept and sent after it.
    pub(crate) fn send_hold(&mut self, now: Now, other: ChannelId, held: bool) {
        let waiting = self
            .sessions
            .get(other)
            .is_some_and(|s| s.glare_retry.is_some());
        if waiting || self.reinvite_pending(other) {
            if let Some(o) = self.sessions.get_mut(other) {
                o.hold_wanted = Some(held);
            }
            return;
        }
        let Some(o) = self.sessions.get(other) else {
            return;
        };
        let direction = if held {
            SdpDirection::SendOnly
        } else {
            SdpDirection::SendRecv
        };
        let timer_of_other = o.timer.map(|t| (t, o.timers.minse));
        let (codecs, ports, transport, dest, previous) =
            (o.codecs.clone(), o.ports(), o.transport, o.dest, o.reinvite);
        let Some(dialog) = o.dialog.clone() else {
            return;
        };
        let origin = self.next_origin(other);
        let local = self.local_media(&codecs, ports, origin, direction);
        let via = self.via(transport);
        let Some(d) = self.dialogs.get_mut(&dialog) else {
            return;
        };
        // The dialog adds our Contact (a second one made the request invalid).
        let mut req = d.request(Method::Invite, &via, None);
        req.push(HeaderName::Allow, self.caps.allow());
        // A re-INVITE refreshes the session timer too (RFC 4028): without
        // these headers a far end running one would switch it off.
        if let Some((t, minse)) = timer_of_other {
            t.stamp_request(&mut req, minse);
        }
        req.set_body(
            "application/sdp",
            sirius_sip::sdp::negotiate::offer(&local).to_bytes(),
        );
        let hop = self.route_hop(&req).unwrap_or(dest);
        if let Some(old) = previous {
            self.owners.remove(&old);
        }
        let owner = ReInvite {
            chan: other,
            ack: None,
        };
        let tx = self.send_client(req, hop, transport, owner, now.mono);
        if let Some(o) = self.sessions.get_mut(other) {
            o.reinvite = tx;
            o.local_hold = held;
            o.last_msg = "Tx: INVITE".into();
        }
        sirius_abi::verbose!(
            3,
            "    -- {} passed on to {}",
            if held { "Hold" } else { "Unhold" },
            self.sessions.name(other)
        );
    }

    /// The final answer to a hold/unhold re-INVITE we sent (`usage`, out of
    /// the owner table): a 2xx is ACKed (and its retransmissions get the
    /// same ACK: the usage stays the transaction's owner), its SDP followed
    /// by the relay; a failure leaves the call as it was.
    pub(crate) fn on_reinvite_response(
        &mut self,
        now: Now,
        tx: TxId,
        usage: ReInvite,
        msg: &Message,
        code: u16,
    ) {
        let chan = usage.chan;
        self.after_reinvite(now, tx, usage, msg, code);
        if self
            .sessions
            .get(chan)
            .is_some_and(|s| s.glare_retry.is_some())
        {
            return; // what is wanted goes with the retry
        }
        // A hold or unhold that had to wait for this one goes now.
        let wanted = self
            .sessions
            .get_mut(chan)
            .and_then(|s| s.hold_wanted.take());
        if let Some(held) = wanted {
            if self
                .sessions
                .get(chan)
                .is_some_and(|s| s.local_hold != held)
            {
                self.send_hold(now, chan, held);
            }
        }
    }

    fn after_reinvite(
        &mut self,
        now: Now,
        tx: TxId,
        mut usage: ReInvite,
        msg: &Message,
        code: u16,
    ) {
        let chan = usage.chan;
        if matches!(code, 408 | 481) {
            return self.refresh_failed(now, chan, code);
        }
        if code == 491 {
            return self.glare(now, chan);
        }
        if code >= 300 {
            return log::warn!("{} refused our re-INVITE: {code}", self.sessions.name(chan));
        }
        let Some(s) = self.sessions.get(chan) else {
            return self.own(tx, usage);
        };
        let (dialog, transport, dest) = (s.dialog.clone(), s.transport, s.dest);
        if let Some(ack) = &usage.ack {
            let hop = self.route_hop(ack).unwrap_or(dest);
            self.layer.send_stateless(hop, transport, ack);
            return self.own(tx, usage);
        }
        let via = self.via(transport);
        let Some(d) = dialog.and_then(|id| self.dialogs.get_mut(&id)) else {
            return self.own(tx, usage);
        };
        d.refresh_target(msg);
        let cseq = msg.cseq().map(|c| c.seq);
        let ack = d.request(Method::Ack, &via, cseq);
        let hop = self.route_hop(&ack).unwrap_or(dest);
        self.layer.send_stateless(hop, transport, &ack);
        usage.ack = Some(Box::new(ack));
        self.own(tx, usage);
        self.note_msg(chan, "Tx: ACK".into());
        if !msg.body.is_empty() {
            self.media_moved(chan, crate::relay::RemoteMedia::from_sdp(&msg.body));
        }
        self.refreshed(now.mono, chan, msg);
    }

    /// A far end's new SDP (re-INVITE or the answer to ours): the session
    /// and its running relay follow it (new address, hold at 0.0.0.0, new
    /// payload types).
    pub(crate) fn media_moved(&mut self, chan: ChannelId, media: crate::relay::RemoteMedia) {
        let Some(s) = self.sessions.get_mut(chan) else {
            return;
        };
        s.remote = media.clone();
        // The relay follows when it carries the leg (and ignores it else).
        self.media(MediaAction::Remote(chan, media));
    }

    /// A leg as the relay needs it.
    pub(crate) fn leg_media(&self, chan: ChannelId) -> Option<LegMedia> {
        let s = self.sessions.get(chan)?;
        let learn = s
            .peer
            .as_ref()
            .and_then(|p| self.shared.running().peers.get(p).map(|p| p.comedia))
            .unwrap_or(false);
        Some(LegMedia {
            chan,
            remote: s.remote.clone(),
            learn,
            video: s.video_port.is_some() && super::has_video(&s.codecs),
            info_dtmf: s.dtmf_info,
            held: s.held,
            local_hold: s.local_hold,
        })
    }

    /// The core bridged two of our channels: their media is relayed to
    /// each other (one channel with itself: Echo).
    ///
    /// The answer says whether the bridge runs: a refusal (a leg gone or in
    /// another bridge, no relay thread) lets the core fall back to its
    /// generic bridge and say so, instead of believing media flows.
    pub fn bridge(
        &mut self,
        a: ChannelId,
        b: ChannelId,
        env: &mut dyn crate::endpoint::Env,
    ) -> Result<(), sirius_abi::Cause> {
        use sirius_abi::Cause;
        // Who is bridged with whom is what the relay carries (the driver's
        // table, made from the core's bridge requests): no copy here.
        if a != b && env.bridged_with(a) == Some(b) {
            return Ok(()); // bridged for early media already: the answer keeps it
        }
        if !env.relay_ready() {
            log::warn!("cannot bridge natively: no relay thread");
            return Err(Cause::FACILITY_NOT_IMPLEMENTED);
        }
        if env.bridged_with(a).is_some() || env.bridged_with(b).is_some() {
            log::warn!(
                "{} or {} is already in a native bridge",
                self.sessions.name(a),
                self.sessions.name(b)
            );
            return Err(Cause::FAILURE);
        }
        let action = if a == b {
            let Some(leg) = self.leg_media(a) else {
                return Err(Cause::FAILURE);
            };
            MediaAction::Echo(leg)
        } else {
            let (Some(la), Some(lb)) = (self.leg_media(a), self.leg_media(b)) else {
                log::warn!("cannot bridge {a} and {b} natively: a leg is gone");
                return Err(Cause::FAILURE);
            };
            log::debug!(
                "native RTP bridge {} ({:?}) <-> {} ({:?})",
                self.sessions.name(a),
                la.remote.addr,
                self.sessions.name(b),
                lb.remote.addr
            );
            MediaAction::Bridge(la, lb)
        };
        self.media(action);
        if a != b {
            // A leg we put on hold for its old partner (a shared line's
            // member holding it) is bridged with one that is not held: it
            // hears its new partner, so we take it off hold.
            let now = self.clock();
            for (x, y) in [(a, b), (b, a)] {
                let partner_held = self.sessions.get(y).is_some_and(|s| s.held);
                if self.sessions.get(x).is_some_and(|s| s.local_hold) && !partner_held {
                    self.send_hold(now, x, false);
                }
            }
        }
        Ok(())
    }

    /// The core ended the native bridge (or early-media link) between `a`
    /// and `b`: the relay between them stops, the legs stay. A notice for a
    /// pair the relay no longer carries (a leg's release came first, or the
    /// leg is bridged anew) changes nothing.
    pub fn unbridge(&mut self, a: ChannelId, b: ChannelId, env: &mut dyn crate::endpoint::Env) {
        if env.bridged_with(a) != Some(b) {
            return log::debug!("unbridge {a} {b}: not relayed together");
        }
        log::debug!(
            "native RTP bridge {} <-> {} ends",
            self.sessions.name(a),
            self.sessions.name(b)
        );
        self.media(MediaAction::Unbridge(a));
    }
}
