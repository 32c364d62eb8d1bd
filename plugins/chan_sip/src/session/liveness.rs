//! Ending calls whose far end is gone, so that none stays Up forever: RFC
//! 4028 session timers (refreshes we send, refreshes we wait for) and
//! Asterisk's `rtptimeout`/`rtpholdtimeout` (no RTP from a bridged leg).

use super::timer;
use super::usage::{ReInvite, Refresh};
use crate::endpoint::{Endpoint, Env, HostAction, Now, Owner};
use sirius_abi::{Cause, ChannelId};
use sirius_sip::message::{HeaderName, Message, Method};
use sirius_sip::sdp::Direction as SdpDirection;
use sirius_sip::transaction::TxId;
use std::time::{Duration, Instant};

impl Endpoint {
    /// (Re)arms a session's timer from `now`: a refresh just happened, or
    /// the dialog was confirmed.
    pub(crate) fn arm_timer(&mut self, now: Instant, chan: ChannelId) {
        let Some(s) = self.sessions.get_mut(chan) else {
            return;
        };
        if let Some(old) = s.timer_due.take() {
            self.session_timers.remove(&(old, chan));
        }
        let Some(t) = s.timer else {
            return;
        };
        let due = t.due(now);
        s.timer_due = Some(due);
        self.session_timers.insert((due, chan));
    }

    /// A session timer deadline came: refresh it, or end the session whose
    /// far end stopped refreshing.
    pub(crate) fn session_timer_due(&mut self, now: Now, chan: ChannelId, at: Instant) {
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        if s.timer_due != Some(at) {
            return; // re-armed since: a stale entry
        }
        let Some(t) = s.timer else {
            return;
        };
        if t.we_refresh {
            self.send_refresh(now, chan);
            // Armed again in case the answer never comes (the request's own
            // timeout ends the call first).
            self.arm_timer(now.mono, chan);
            return;
        }
        log::warn!(
            "Session-Timer expired - {} ({})",
            s.invite.as_ref().and_then(|i| i.call_id()).unwrap_or("?"),
            s.name
        );
        self.end_session(now, chan, Cause::RECOVERY_ON_TIMER_EXPIRE);
    }

    /// `422 Session Interval Too Small` with our `Min-SE` (RFC 4028 §9),
    /// to an INVITE, re-INVITE or UPDATE asking for less.
    pub(crate) fn interval_too_small(
        &mut self,
        now: Now,
        tx: TxId,
        req: &Message,
        source: std::net::SocketAddr,
        min: u32,
    ) {
        self.respond(
            now,
            tx,
            req,
            source,
            (422, "Session Interval Too Small"),
            &[(HeaderName::MinSE, min.to_string())],
        );
    }

    /// Ends a session from our side: BYE (or the final response, CANCEL)
    /// on the wire, and the channel hung up with `cause`.
    pub(crate) fn end_session(&mut self, now: Now, chan: ChannelId, cause: Cause) {
        self.hangup_call(now, chan, cause);
        self.host(HostAction::Hangup(chan, cause));
    }

    /// Sends a session refresh: UPDATE without a body when the far end
    /// allows it (RFC 4028 §7.4 prefers it), else a re-INVITE with our
    /// current SDP (sendonly while we hold the leg).
    fn send_refresh(&mut self, now: Now, chan: ChannelId) {
        if self.reinvite_pending(chan) {
            return; // the re-INVITE in progress refreshes the session
        }
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        let (Some(t), Some(dialog)) = (s.timer, s.dialog.clone()) else {
            return;
        };
        let (transport, dest, previous) = (s.transport, s.dest, s.reinvite);
        let (codecs, ports, minse) = (s.codecs.clone(), s.ports(), s.timers.minse);
        let method = if s.peer_update {
            Method::Update
        } else {
            Method::Invite
        };
        let direction = if s.local_hold {
            SdpDirection::SendOnly
        } else {
            SdpDirection::SendRecv
        };
        let body = (method == Method::Invite).then(|| {
            // A new offer, so a new version (RFC 3264 §8): what we sent
            // last may have been an answer with other payload types.
            let origin = self.next_origin(chan);
            let local = self.local_media(&codecs, ports, origin, direction);
            sirius_sip::sdp::negotiate::offer(&local).to_bytes()
        });
        let via = self.via(transport);
        let Some(d) = self.dialogs.get_mut(&dialog) else {
            return;
        };
        let mut req = d.request(method.clone(), &via, None);
        req.push(HeaderName::Allow, self.caps.allow());
        t.stamp_request(&mut req, minse);
        if let Some(body) = body {
            req.set_body("application/sdp", body);
        }
        let hop = self.route_hop(&req).unwrap_or(dest);
        let owner: Owner = if method == Method::Update {
            Refresh { chan }.into()
        } else {
            if let Some(old) = previous {
                self.owners.remove(&old);
            }
            ReInvite { chan, ack: None }.into()
        };
        let tx = self.send_client(req, hop, transport, owner, now.mono);
        if let Some(s) = self.sessions.get_mut(chan) {
            if method == Method::Invite {
                s.reinvite = tx;
            }
            s.last_msg = format!("Tx: {method}");
        }
    }

    /// A 2xx to a refresh (UPDATE or re-INVITE) of ours: the interval and
    /// refresher it names are the session's from now.
    pub(crate) fn refreshed(&mut self, now: Instant, chan: ChannelId, ok: &Message) {
        let a = timer::asked(ok);
        if let Some(s) = self.sessions.get_mut(chan) {
            match (s.timer.as_mut(), a.interval) {
                (Some(t), Some(interval)) => {
                    t.interval = interval.max(s.timers.minse);
                    t.we_refresh = a.refresher_uac.unwrap_or(true);
                }
                // RFC 4028 §7.2: a 2xx without Session-Expires from a far
                // end that runs timers means none from now on; one that
                // never did leaves the refreshing to us.
                (Some(t), None) if t.peer_supports => s.timer = None,
                _ => {}
            }
        }
        self.arm_timer(now, chan);
    }

    /// The final answer to our UPDATE refresh: 2xx re-arms; 422 asks again with
    /// the far end's Min-SE; 408 or 481 (RFC 4028 §10, RFC 3261 §12.2.1.2)
    /// mean the dialog is gone: the call ends.
    pub(crate) fn on_refresh_response(
        &mut self,
        now: Now,
        chan: ChannelId,
        msg: &Message,
        code: u16,
    ) {
        match code {
            200..=299 => self.refreshed(now.mono, chan, msg),
            422 => {
                let Some(min) = timer::asked(msg).min_se else {
                    return;
                };
                let grew = self
                    .sessions
                    .get_mut(chan)
                    .and_then(|s| s.timer.as_mut())
                    .filter(|t| t.interval < min)
                    .map(|t| t.interval = min)
                    .is_some();
                if grew {
                    self.send_refresh(now, chan);
                }
            }
            408 | 481 => self.refresh_failed(now, chan, code),
            _ => log::warn!(
                "{} refused our session refresh: {code}",
                self.sessions.name(chan)
            ),
        }
    }

    /// A refresh (or re-INVITE) of ours got 408/481 or no answer at all.
    pub(crate) fn refresh_failed(&mut self, now: Now, chan: ChannelId, code: u16) {
        if self.sessions.get(chan).is_none() {
            return; // ended meanwhile (a BYE crossed our request)
        }
        log::warn!(
            "{}: no dialog at the far end ({code}); hanging up",
            self.sessions.name(chan)
        );
        self.end_session(now, chan, Cause::RECOVERY_ON_TIMER_EXPIRE);
    }

    /// Once a second: bridged calls whose far end has sent no RTP for
    /// `rtptimeout` seconds (`rtpholdtimeout` while held either way) are
    /// hung up, as Asterisk does; then, after a burst, memory goes back
    /// (`memory.rs`: called from here because this is housekeeping's
    /// per-second hook into the sessions).
    pub(crate) fn check_rtp(&mut self, now: Now, env: &mut dyn Env) {
        let mut dead = Vec::new();
        for chan in self.sessions.channels() {
            let Some(s) = self.sessions.get(chan) else {
                continue;
            };
            let limit = if s.held || s.local_hold {
                s.timers.rtpholdtimeout
            } else {
                s.timers.rtptimeout
            };
            // Only calls that are up (Asterisk checks AST_STATE_UP): early
            // media before an answer may well be silent one way.
            if limit == 0 || s.dialog.is_none() {
                continue;
            }
            let Some(idle) = env.media_idle(chan, now.mono) else {
                continue;
            };
            if idle >= Duration::from_secs(u64::from(limit)) {
                log::info!(
                    "Disconnecting call '{}' for lack of RTP activity in {} seconds",
                    s.name,
                    idle.as_secs()
                );
                dead.push(chan);
            }
        }
        for chan in dead {
            self.end_session(now, chan, Cause::RECOVERY_ON_TIMER_EXPIRE);
        }
    }
}
