//! Where the sessions move a shared line's appearances (see the module's
//! diagram): a call to the line seizes one when placed and shows the caller
//! alerting, the answer makes it active, the member's hold held, the end
//! frees it; a member's own call seizes the index its INVITE names (or the
//! lowest free). Every change is told to the line's call-info subscribers,
//! on every shard.

use super::{ApState, Appearance};
use crate::endpoint::{Endpoint, Output, ShardMsg};
use sirius_abi::{Cause, ChannelId};
use sirius_sip::message::Message;
use sirius_sip::shared_appearance::DialogIds;

/// An IP address as a SIP URI's host (an IPv6 one in brackets).
pub(crate) fn uri_host(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    }
}

impl Endpoint {
    /// The shared line a peer is, and its number of appearances; `None`
    /// for a peer that is not one.
    pub(crate) fn shared_line(&self, peer: Option<&str>) -> Option<(String, u32)> {
        let peer = peer?;
        let running = self.shared.running();
        let p = running.peers.get(peer)?;
        (p.shared_appearances > 0).then(|| (p.name.clone(), p.shared_appearances))
    }

    /// The URI a `Call-Info` names line `line` by: the line at our address
    /// (the seed's `<sip:osas_shared@192.168.2.2>`).
    pub(crate) fn line_uri(&self, line: &str) -> String {
        format!("sip:{line}@{}", uri_host(self.shared.bound.ip()))
    }

    /// Line `line` changed: its call-info subscribers here are told, and
    /// every other shard tells its own.
    pub(crate) fn line_changed(&mut self, line: &str) {
        self.line_subscribers_flush(line);
        for k in (0..self.home.count).filter(|k| *k != self.home.index) {
            let msg = ShardMsg::LineChanged(line.to_string());
            self.out.push_back(Output::Shard(k, msg));
        }
    }

    /// A call to shared line `chan`'s peer is being placed: it takes an
    /// appearance, alerting, showing `caller` (a name-addr); the index its
    /// INVITEs carry in `Call-Info`. `Ok(None)`: not a shared line. A line
    /// with every appearance in use is busy.
    pub(crate) fn sca_seize_for_call(
        &mut self,
        chan: ChannelId,
        caller: String,
    ) -> Result<Option<u32>, Cause> {
        let peer = self.sessions.get(chan).and_then(|s| s.peer.clone());
        let Some((line, max)) = self.shared_line(peer.as_deref()) else {
            return Ok(None);
        };
        let ap = Appearance {
            state: ApState::Alerting,
            uri: Some(caller),
            chan,
            shard: self.home.index,
            name: self.sessions.name(chan),
            taking: None,
            outgoing: false,
            dialog: None,
            seized: None,
            exclusive: false,
        };
        match self.shared.lines.seize(&line, max, None, ap) {
            Ok(i) => {
                self.line_changed(&line);
                Ok(Some(i))
            }
            Err(e) => {
                log::info!("Call to shared line '{line}' refused: {e}");
                Err(Cause::USER_BUSY)
            }
        }
    }

    /// A member of a shared line calls out (`invite`, its session `chan`):
    /// it takes the appearance its `Call-Info` names if free (else the
    /// lowest free one), progressing, showing whom it calls. A line with
    /// every appearance in use still lets the call through, unshown.
    pub(crate) fn sca_member_call(&mut self, chan: ChannelId, invite: &Message) {
        let peer = self.sessions.get(chan).and_then(|s| s.peer.clone());
        let Some((line, max)) = self.shared_line(peer.as_deref()) else {
            return;
        };
        let callee = invite
            .headers
            .get(&sirius_sip::message::HeaderName::To)
            .and_then(|t| sirius_sip::message::NameAddr::parse(t).ok())
            .map(|n| format!("<{}>", n.uri));
        let ap = Appearance {
            state: ApState::Progressing,
            uri: callee,
            chan,
            shard: self.home.index,
            name: self.sessions.name(chan),
            taking: None,
            outgoing: true,
            dialog: None,
            seized: None,
            exclusive: false,
        };
        // Seized ahead by a PUBLISH (RFC 7463): the appearance waits for
        // this Call-ID.
        let call_id = invite.call_id().unwrap_or_default();
        if self
            .shared
            .lines
            .claim_seized(&line, call_id, ap.clone())
            .is_some()
        {
            return self.line_changed(&line);
        }
        let wanted = super::appearance_index(invite);
        match self.shared.lines.seize(&line, max, wanted, ap) {
            Ok(_) => self.line_changed(&line),
            Err(e) => log::info!("Call from shared line '{line}' not shown: {e}"),
        }
    }

    /// `chan`'s appearance (if it holds one) is in `state` now.
    pub(crate) fn sca_state(&mut self, chan: ChannelId, state: ApState) {
        let Some(line) = self.sca_line_of(chan) else {
            return;
        };
        // The phone's view of the leg's dialog: its tag is our remote one.
        let dialog = self
            .sessions
            .get(chan)
            .and_then(|s| s.dialog.as_ref())
            .map(|d| DialogIds {
                call_id: d.call_id.clone(),
                local_tag: d.remote_tag.clone(),
                remote_tag: d.local_tag.clone(),
            });
        if self.shared.lines.set_state(&line, chan, state, dialog) {
            log::info!(
                "shared line '{line}': {}'s appearance is {}",
                self.sessions.name(chan),
                state.as_str()
            );
            self.line_changed(&line);
        }
    }

    /// `chan`'s call (with `peer`) ended: its appearance is free. The line
    /// is the one the appearance is on, whatever a reload did to the peer.
    pub(crate) fn sca_release(&mut self, chan: ChannelId, peer: Option<&str>) {
        if peer.is_none() {
            return;
        }
        let Some(line) = self.sca_line_of(chan) else {
            return;
        };
        if self.shared.lines.release(&line, chan) {
            self.line_changed(&line);
        }
    }

    /// The line `chan` holds an appearance of; none (cheaply) when no line
    /// has any appearance in use.
    fn sca_line_of(&self, chan: ChannelId) -> Option<String> {
        self.shared.lines.line_of(chan)
    }
}

/// What a member's INVITE is to its line's appearances.
pub(crate) enum Pickup {
    /// Not a takeover: a call of its own.
    No,
    /// It takes the held call on this appearance over.
    Take(u32),
    /// It names an appearance in use that is not held: refused (403).
    Refuse,
}

impl Endpoint {
    /// Refuses a takeover of a call that is not held.
    pub(crate) fn sca_refuse_pickup(&mut self, now: crate::endpoint::Now, chan: ChannelId) {
        self.refuse_pickup(now, chan, (403, "Forbidden (not held)"));
    }

    /// Whether `invite` (its session `chan` made) is a member of a shared
    /// line taking a call over (seed 003 step 5): From and To both the line
    /// (the subscriber's own line), no To tag, and a `Call-Info` naming an
    /// appearance in use. The Request-URI is not read: it differs by phone
    /// (the line, or the server without a user).
    pub(crate) fn sca_pickup_of(&self, chan: ChannelId, invite: &Message) -> Pickup {
        let peer = self.sessions.get(chan).and_then(|s| s.peer.clone());
        let Some((line, _)) = self.shared_line(peer.as_deref()) else {
            return Pickup::No;
        };
        let user = |h: Option<sirius_sip::message::NameAddrRef<'_>>| {
            h.and_then(|n| sirius_sip::message::Uri::parse(n.uri).ok())
                .and_then(|u| u.user)
        };
        let to = invite.to_ref();
        if to.as_ref().is_some_and(|t| t.tag().is_some()) {
            return Pickup::No;
        }
        let (from_user, to_user) = (user(invite.from_ref()), user(to));
        if from_user.as_deref() != Some(line.as_str()) || to_user.as_deref() != Some(line.as_str())
        {
            return Pickup::No;
        }
        let Some(index) = super::appearance_index(invite) else {
            return Pickup::No;
        };
        match self.shared.lines.get(&line, index) {
            None => Pickup::No, // a free appearance: a call of the phone's own
            // Seized ahead (RFC 7463): the seizing call's INVITE claims it.
            Some(a) if a.chan == super::NO_LEG => Pickup::No,
            Some(a) if a.state == ApState::Held && a.takeable() => Pickup::Take(index),
            // Only a held call is taken over (OpenSIPS and Asterisk refuse
            // the others; Kamailio meant to).
            Some(_) => Pickup::Refuse,
        }
    }

    /// The member's new call `chan` takes appearance `index` over: the
    /// core puts it in the held call's place (answered; the old member's
    /// leg is hung up, its BYE sent), then the appearance is the new leg's,
    /// active. The core first, the appearance after: the old leg's end,
    /// which the replace causes, must not free it (and if it already did,
    /// the appearance is taken again). Refused (the call went meanwhile):
    /// 481.
    pub(crate) fn sca_pickup(
        &mut self,
        now: crate::endpoint::Now,
        env: &mut dyn crate::endpoint::Env,
        chan: ChannelId,
        index: u32,
    ) {
        let peer = self.sessions.get(chan).and_then(|s| s.peer.clone());
        let Some((line, _)) = self.shared_line(peer.as_deref()) else {
            return;
        };
        if let Err(status) = self.sca_take(env, chan, (&line, index), None, true) {
            self.refuse_pickup(now, chan, status);
        }
    }

    /// A member's INVITE with `Replaces` (RFC 7463 §5.3.2) names the leg
    /// `replaced`, which holds an appearance of the member's line: the new
    /// call takes that appearance with the call, held or active; a private
    /// one is refused (403). `None`: not a shared line's call, the plain
    /// Replaces path goes on.
    pub(crate) fn sca_replace(
        &mut self,
        env: &mut dyn crate::endpoint::Env,
        chan: ChannelId,
        replaced: ChannelId,
    ) -> Option<Result<(), (u16, &'static str)>> {
        let line = self.sca_line_of(replaced)?;
        let peer = self.sessions.get(chan).and_then(|s| s.peer.clone());
        if peer.as_deref() != Some(line.as_str()) {
            return None; // not a member: a Replaces as any other
        }
        let index = self.shared.lines.index_of(&line, replaced)?;
        Some(self.sca_take(env, chan, (&line, index), Some(replaced), false))
    }

    /// A member's INVITE with Replaces took a call that held no appearance
    /// of its line (another extension's call, or a ringing leg picked up):
    /// the member is on a call now, which takes an appearance as its own
    /// calls do (else the line would look idle, and take one call too many).
    pub(crate) fn sca_replacing_call(&mut self, chan: ChannelId) {
        let invite = self.sessions.get(chan).and_then(|s| s.invite.clone());
        if let Some(invite) = invite {
            self.sca_member_call(chan, &invite);
        }
    }

    /// The member's new call `chan` takes appearance `index` of `line`
    /// over (see [`Self::sca_pickup`]): the call of leg `expected` when
    /// given (a Replaces names it), else whichever holds it.
    fn sca_take(
        &mut self,
        env: &mut dyn crate::endpoint::Env,
        chan: ChannelId,
        (line, index): (&str, u32),
        expected: Option<ChannelId>,
        held_only: bool,
    ) -> Result<(), (u16, &'static str)> {
        let gone = (481, "Call/Transaction Does Not Exist");
        let max = self.shared_line(Some(line)).map_or(index, |(_, m)| m);
        let Some(before) = self.shared.lines.get(line, index) else {
            return Err(gone);
        };
        if expected.is_some_and(|e| e != before.chan) {
            return Err(gone); // the appearance changed hands meanwhile
        }
        if !before.takeable() {
            return Err((403, "Forbidden (private call)"));
        }
        let name = self.sessions.name(chan);
        let shard = self.home.index;
        // Recorded before the core acts: the old leg's end, which the
        // replace causes (maybe at once, on another shard), hands the
        // appearance over instead of freeing it. Refused if the appearance
        // is no longer `before`'s call.
        if !self.shared.lines.begin_takeover(
            line,
            index,
            before.chan,
            (chan, &name),
            (shard, held_only),
        ) {
            return Err(gone);
        }
        if let Err(cause) = env.replace(before.chan, chan) {
            log::info!("taking appearance {index} of '{line}' over failed: {cause:?}");
            self.shared.lines.abort_takeover(line, index);
            return Err(gone);
        }
        sirius_abi::verbose!(
            3,
            "    -- {} takes appearance {index} of '{line}' over from {}",
            name,
            before.name
        );
        if !self
            .shared
            .lines
            .reassign(line, index, (chan, &name), shard)
        {
            // Freed meanwhile (the call ended as it was taken): taken anew.
            let ap = Appearance {
                state: ApState::Active,
                uri: before.uri,
                chan,
                shard,
                name,
                taking: None,
                outgoing: before.outgoing,
                dialog: None,
                seized: None,
                exclusive: false,
            };
            let _ = self.shared.lines.seize(line, max, Some(index), ap);
        }
        self.line_changed(line);
        Ok(())
    }

    fn refuse_pickup(
        &mut self,
        now: crate::endpoint::Now,
        chan: ChannelId,
        (code, reason): (u16, &str),
    ) {
        if let Some((tx, r)) = self.uas_response(chan, code, reason) {
            self.send_response(now, tx, r);
        }
        if self.take_session(chan).is_some() {
            self.host(crate::endpoint::HostAction::Hangup(
                chan,
                crate::causes::sip_to_cause(code),
            ));
        }
    }
}
