//! Call sessions: one [`Session`] per SIP channel, whichever side started
//! it. The role says who sent the INVITE (RFC 3261 UAS or UAC); everything
//! a leg does once it exists — media, re-INVITEs, hold, BYE, the bridge —
//! is the same code for both.
//!
//! ```text
//!  UAS (inbound)                               UAC (outbound)
//!  INVITE ─▶ Proceeding ─ answer ─▶ Confirmed    NewOutbound ─▶ Reserved ─ place ─▶ Calling
//!             │  (1xx sent:        (2xx sent,                                      │ 1xx (early
//!             │   early dialog)     ACK awaited)                                   ▼  dialog per tag)
//!             ├─ indicate busy… ─▶ ended          Confirmed ◀─ 2xx (ACK sent) ─ Proceeding
//!             └─ CANCEL ─▶ 487, ended                 │        401/407 ─▶ retry once
//!                                                     │        3xx ─▶ retry at Contact
//!  Confirmed ─ re-INVITE (hold, media moves) ─▶ Confirmed           4xx-6xx, Timer B,
//!  Confirmed ─ BYE either way ─▶ ended                              auto-congest ─▶ ended
//! ```
//!
//! `uas.rs` and `uac.rs` hold what differs until the dialog is confirmed;
//! `dialog.rs` what both do inside it; `usage.rs` the session's client
//! transactions as usages of the endpoint's owner table.

pub(crate) mod attended;
mod blind;
mod dialog;
mod dtmf;
pub(crate) mod fork;
mod liveness;
pub(crate) mod memory;
pub(crate) mod refer;
pub(crate) mod refer_out;
pub(crate) mod replaces;
mod retry;
pub(crate) mod subscribe;
mod third_party;
pub(crate) mod timer;
pub(crate) mod uac;
mod uas;
pub(crate) mod usage;
mod view;
pub use subscribe::{render_subscriptions, subscriptions_table};
pub use view::{channels_table, render_channels, render_inuse};

use crate::endpoint::{Endpoint, MediaAction, Now};
use sirius_abi::{ChannelId, Codec};
use sirius_sip::dialog::{DialogId, DialogState};
use sirius_sip::message::{HeaderName, Message, Method};
use sirius_sip::sdp::negotiate::LocalMedia;
use sirius_sip::sdp::Direction as SdpDirection;
use sirius_sip::transaction::{Transport, TxId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

pub use uac::OutboundSetup;
pub(crate) use uas::RETRY_AFTER_SECS;

/// Who sent the INVITE, and what only that side keeps.
pub(crate) enum Role {
    /// They called us.
    Uas {
        /// The INVITE server transaction, answered when the dialplan decides.
        tx: TxId,
        /// Our To tag, the same on every response.
        local_tag: String,
        /// A final response went out (200, 486…).
        final_sent: bool,
    },
    /// We called them (Dial).
    Uac {
        /// The INVITE client transaction once placed.
        tx: Option<TxId>,
        /// Request-URI (changed by a redirect).
        ruri: String,
        /// Caller ID number and name for From.
        caller: String,
        caller_name: String,
        /// The ACK of the 2xx, to answer its retransmissions with.
        ack: Option<Box<Message>>,
        /// Challenges answered so far: one retry per challenge, as Asterisk
        /// does, so wrong credentials end the call instead of looping.
        auth_attempts: u8,
        /// 3xx redirects followed so far (bounded by `MAX_REDIRECTS`).
        redirects: u8,
        /// chan_sip's auto-congest timer for peers with `qualify`: no
        /// response at all by this instant (4 × the peer's maximum round
        /// trip) congests the call. Without qualify, Timer B (64 × T1)
        /// plays this part.
        congest_at: Option<Instant>,
        /// The session interval our INVITE asked for (after a 422, the
        /// far end's Min-SE); `None` when it asked for none.
        asked_interval: Option<u32>,
        /// A 3xx (and its code) whose Contact names a host being looked
        /// up: followed once the answer is in.
        pending_redirect: Option<(Box<Message>, u16)>,
        /// Early dialogs, one per To tag of the 1xx that came (a forking
        /// proxy gives several); the 2xx confirms one, the rest go.
        forks: Vec<DialogId>,
        /// The INVITEs to the peer's other contacts (`max_contacts`), when
        /// it registered several (`fork.rs`).
        forking: Option<Box<fork::Forking>>,
    },
}

/// One SIP call leg.
pub(crate) struct Session {
    /// The core's channel name (`SIP/alice-00000001`), for log lines.
    pub name: String,
    pub role: Role,
    /// Where the far end is: the INVITE's source (UAS), where our INVITE
    /// goes (UAC); in-dialog requests go there when no route set says otherwise.
    pub dest: SocketAddr,
    pub transport: Transport,
    /// The INVITE. Until the final response, the whole request (SDP
    /// included); then only its request line, From and Call-ID for
    /// `sip show channels` (see [`invite_summary`]). `None` for a UAC leg
    /// not yet placed.
    pub invite: Option<Message>,
    /// Our RTP port (RTCP on the next one).
    pub rtp_port: u16,
    /// Our video RTP port, when the call carries video.
    pub video_port: Option<u16>,
    /// The codecs this leg may carry, best first.
    pub codecs: Vec<Codec>,
    /// The peer the call counts against (call-limit, `sip show inuse`).
    pub peer: Option<String>,
    pub dialog: Option<DialogId>,
    /// The far end's media as its last SDP describes it.
    pub remote: crate::relay::RemoteMedia,
    /// `Rx: INVITE`, `Tx: BYE`…: the last request either way (`sip show channels`).
    pub last_msg: String,
    /// The far end put us on hold.
    pub held: bool,
    /// Our last hold/unhold re-INVITE on this leg.
    pub reinvite: Option<TxId>,
    /// Ringing: a 180/183 went out (UAS), or a call we make is not answered
    /// yet (UAC: from the leg's creation, as chan_sip counts `inRinging`).
    pub ringing: bool,
    /// Session-timer settings and RTP timeouts (the peer's, or `[general]`'s).
    pub timers: crate::config::Timers,
    /// The negotiated RFC 4028 timer, once there is one.
    pub timer: Option<timer::SessionTimer>,
    /// When it next falls due (armed once the dialog is confirmed).
    pub timer_due: Option<Instant>,
    /// The far end allows UPDATE: our refreshes use it, not a re-INVITE.
    pub peer_update: bool,
    /// We passed a hold on to this leg: our SDP to it says sendonly.
    pub local_hold: bool,
    /// A hold (true) or unhold to pass on once our re-INVITE in progress
    /// on this leg has its answer.
    pub hold_wanted: Option<bool>,
    /// Our last re-INVITE met one of theirs (491): when we try again.
    pub glare_retry: Option<Instant>,
    /// The far end takes and sends DTMF as SIP INFO (`dtmfmode = "info"`
    /// or `"shortinfo"`), not as RTP events.
    pub dtmf_info: bool,
    /// Our SDP's `o=` session id, for the whole session.
    pub sdp_id: u64,
    /// Our SDP's `o=` version: one more for each new description.
    pub sdp_version: u64,
    /// A UAS session's answer to the INVITE's offer, negotiated once when
    /// the INVITE came and sent as is in a 183 and the 200; gone with the
    /// final response.
    pub answer: Option<Box<sirius_sip::sdp::SessionDescription>>,
}

/// Our RTP ports for a session's SDP: audio, and video when it has a
/// video stream (`None`: no m=video offered, and one offered to us is
/// declined with port 0).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    pub audio: u16,
    pub video: Option<u16>,
}

impl Session {
    /// Our current SDP origin: session id and version.
    pub fn origin(&self) -> (u64, u64) {
        (self.sdp_id, self.sdp_version)
    }

    /// Our ports, for SDP.
    pub fn ports(&self) -> Ports {
        Ports {
            audio: self.rtp_port,
            video: self.video_port,
        }
    }
}

/// Whether a codec list has a video codec.
pub(crate) fn has_video(codecs: &[Codec]) -> bool {
    codecs
        .iter()
        .any(|c| c.kind() == sirius_abi::MediaKind::Video)
}

/// The codecs of `allowed` that an SDP (an offer, or the answer to ours)
/// carries in its first active stream of their kind — audio codecs in
/// `m=audio`, video codecs in `m=video` — and the others (events) as they
/// are; `None` when no audio codec is left. The channel carries what was
/// agreed, not all the peer allows: Dial decides from it whether the far
/// leg needs translation (Asterisk's joint capabilities), and `sip show
/// channels` and `core show channel` show it.
pub(crate) fn agreed_codecs(
    allowed: &[Codec],
    sd: &sirius_sip::sdp::SessionDescription,
) -> Option<Vec<Codec>> {
    use sirius_abi::MediaKind;
    let stream = |kind: &str| {
        sd.media
            .iter()
            .find(|m| m.kind == kind && m.port != 0)
            .map(|m| m.rtp_formats())
    };
    let (audio, video) = (stream("audio")?, stream("video").unwrap_or_default());
    let carried = |c: &Codec, formats: &[sirius_sip::sdp::RtpFormat]| {
        c.info().is_some_and(|i| {
            formats.iter().any(|f| {
                f.encoding.eq_ignore_ascii_case(i.encoding) && f.clock_rate == i.clock_rate
            })
        })
    };
    let agreed: Vec<Codec> = allowed
        .iter()
        .copied()
        .filter(|c| match c.kind() {
            MediaKind::Audio => carried(c, &audio),
            MediaKind::Video => carried(c, &video),
            _ => true,
        })
        .collect();
    agreed
        .iter()
        .any(|c| c.kind() == MediaKind::Audio)
        .then_some(agreed)
}

/// Whether a message's `Allow` lists UPDATE.
pub(crate) fn allows_update(m: &Message) -> bool {
    m.headers
        .values(&HeaderName::Allow)
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("UPDATE"))
}

/// What an answered call keeps of its INVITE: the request line, From and
/// Call-ID, for `sip show channels`. The whole request (SDP included, about
/// 2 KB) is needed only until the final response — for provisional and
/// final responses, CANCEL, a retry after a challenge or a redirect — and
/// then for as long as the call is up, which made it the largest part of a
/// held call's memory. Its lists are made to measure: grown a header at a
/// time they kept room for four headers and half as many bytes again
/// (issue #11).
pub(crate) fn invite_summary(invite: &Message) -> Message {
    let mut m = Message::request(Method::Invite, invite.request_uri().unwrap_or(""));
    let kept = [HeaderName::From, HeaderName::CallId]
        .map(|name| invite.headers.get(&name).map(|v| (name, v)));
    let bytes = kept.iter().flatten().map(|(_, v)| v.len()).sum();
    m.headers = sirius_sip::message::Headers::with_capacity(kept.iter().flatten().count(), bytes);
    for (name, v) in kept.into_iter().flatten() {
        m.push(name, v);
    }
    m
}

/// Every session, by channel, with the indexes that route to it.
///
/// Sessions are boxed: a hash table holds its values inline and runs
/// between half and seven-eighths full, so a 700-byte session stored in it
/// took up to twice its size; behind a box the table holds a pointer and
/// the session takes what it is (memory per held call is a benchmark bar).
#[derive(Default)]
pub(crate) struct Sessions {
    map: HashMap<ChannelId, Box<Session>>,
    /// UAS sessions by their INVITE server transaction (CANCEL, ACK, Timer L).
    by_invite: HashMap<TxId, ChannelId>,
    /// Sessions by dialog (in-dialog requests): the dialog id's hash and
    /// the channel, the id itself found in the session (its dialog or one
    /// of its forks), not copied: a copy of the id as the key took a slot
    /// of 80 bytes and three strings per leg (issue #11).
    by_dialog: hashbrown::HashTable<(u64, ChannelId)>,
    dialog_hasher: std::collections::hash_map::RandomState,
    /// What was live at most since memory was last given back (`memory.rs`).
    pub high_water: memory::HighWater,
}

impl Sessions {
    /// How many.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Every session's channel.
    pub fn channels(&self) -> Vec<ChannelId> {
        self.map.keys().copied().collect()
    }

    pub fn get(&self, chan: ChannelId) -> Option<&Session> {
        self.map.get(&chan).map(|s| &**s)
    }

    pub fn get_mut(&mut self, chan: ChannelId) -> Option<&mut Session> {
        self.map.get_mut(&chan).map(|s| &mut **s)
    }

    /// The UAS session whose INVITE server transaction is `tx`.
    pub fn by_invite(&self, tx: TxId) -> Option<ChannelId> {
        self.by_invite.get(&tx).copied()
    }

    fn dialog_hash(&self, id: &DialogId) -> u64 {
        std::hash::BuildHasher::hash_one(&self.dialog_hasher, id)
    }

    /// The session of a dialog.
    pub fn by_dialog(&self, id: &DialogId) -> Option<ChannelId> {
        let hash = self.dialog_hash(id);
        let has = |chan: ChannelId| {
            self.map.get(&chan).is_some_and(|s| {
                s.dialog.as_ref() == Some(id)
                    || matches!(&s.role, Role::Uac { forks, .. } if forks.contains(id))
            })
        };
        self.by_dialog
            .find(hash, |&(h, chan)| h == hash && has(chan))
            .map(|&(_, chan)| chan)
    }

    /// Indexes `chan` under `id` (which the session must hold by now).
    fn index_dialog(&mut self, id: &DialogId, chan: ChannelId) {
        let hash = self.dialog_hash(id);
        if self
            .by_dialog
            .find(hash, |&(h, c)| h == hash && c == chan)
            .is_none()
        {
            self.by_dialog
                .insert_unique(hash, (hash, chan), |&(h, _)| h);
        }
    }

    /// Forgets `chan` under `id`.
    fn unindex_dialog(&mut self, id: &DialogId, chan: ChannelId) {
        let hash = self.dialog_hash(id);
        if let Ok(e) = self
            .by_dialog
            .find_entry(hash, |&(h, c)| h == hash && c == chan)
        {
            e.remove();
        }
    }

    /// An early dialog of a UAC session (one fork): requests in it reach
    /// the session.
    pub fn add_fork(&mut self, chan: ChannelId, id: DialogId) {
        if let Some(s) = self.map.get_mut(&chan) {
            if let Role::Uac { forks, .. } = &mut s.role {
                if !forks.contains(&id) {
                    forks.push(id.clone());
                    self.index_dialog(&id, chan);
                }
            }
        }
    }

    /// The early dialogs of a UAC session, taken (the 2xx came).
    pub fn take_forks(&mut self, chan: ChannelId) -> Vec<DialogId> {
        let Some(s) = self.map.get_mut(&chan) else {
            return Vec::new();
        };
        let Role::Uac { forks, .. } = &mut s.role else {
            return Vec::new();
        };
        let forks = std::mem::take(forks);
        for f in &forks {
            self.unindex_dialog(f, chan);
        }
        forks
    }

    /// The session's dialog is confirmed (or its early dialog known).
    pub fn set_dialog(&mut self, chan: ChannelId, id: DialogId) {
        if let Some(s) = self.map.get_mut(&chan) {
            s.dialog = Some(id.clone());
            self.index_dialog(&id, chan);
        }
    }

    /// The channel's name for log lines (its id if the session is gone).
    pub fn name(&self, chan: ChannelId) -> String {
        self.map
            .get(&chan)
            .map_or_else(|| chan.to_string(), |s| s.name.clone())
    }

    /// A UAC session's auto-congest deadline.
    pub fn congest_at(&self, chan: ChannelId) -> Option<Instant> {
        match self.map.get(&chan)?.role {
            Role::Uac { congest_at, .. } => congest_at,
            Role::Uas { .. } => None,
        }
    }

    /// After a burst: the indexes give back the room of their largest size.
    fn shrink(&mut self) {
        memory::shrink_map(&mut self.map);
        memory::shrink_map(&mut self.by_invite);
        let (len, cap) = (self.by_dialog.len(), self.by_dialog.capacity());
        if cap > 64 && len < cap / 4 {
            self.by_dialog.shrink_to((len * 2).max(64), |&(h, _)| h);
        }
    }

    fn insert(&mut self, chan: ChannelId, s: Box<Session>) {
        if let Role::Uas { tx, .. } = s.role {
            self.by_invite.insert(tx, chan);
        }
        self.map.insert(chan, s);
    }

    fn remove(&mut self, chan: ChannelId) -> Option<Box<Session>> {
        let s = self.map.remove(&chan)?;
        if let Role::Uas { tx, .. } = s.role {
            self.by_invite.remove(&tx);
        }
        if let Some(d) = &s.dialog {
            self.unindex_dialog(d, chan);
        }
        if let Role::Uac { forks, .. } = &s.role {
            for f in forks {
                self.unindex_dialog(f, chan);
            }
        }
        Some(s)
    }
}

impl Endpoint {
    /// Registers a session: indexes, the module's use count; the place in
    /// its peer's count that admitting it took is its own now.
    pub(crate) fn put_session(
        &mut self,
        chan: ChannelId,
        s: Session,
        count: crate::inuse::CallCount,
    ) {
        let peer = s.peer.clone();
        if let (Some(p), Role::Uac { .. }, true) = (&peer, &s.role, s.ringing) {
            self.shared
                .in_use
                .mark(p, crate::inuse::Mark::Ringing, true);
        }
        self.sessions.insert(chan, Box::new(s));
        count.keep();
        if let Some(peer) = peer {
            self.device_update(&peer);
        }
    }

    /// Removes a session and everything that points at it: its client
    /// transactions forget their owner, its relay stops (and the partner's
    /// with it), its ports go back.
    pub(crate) fn take_session(&mut self, chan: ChannelId) -> Option<Box<Session>> {
        let s = self.sessions.remove(chan)?;
        if !self.refers.is_idle() {
            self.refers.forget_leg(chan);
        }
        if !self.refers.is_empty() && self.refers.watches(chan) {
            // A transferee (or a leg called for a REFER) whose call ended
            // under it: the transfer's report ends too.
            let now = self.clock();
            self.refer_transferee_left(now, chan);
        }
        if let Role::Uac { tx: Some(tx), .. } = s.role {
            self.owners.remove(&tx);
        }
        if let Role::Uac {
            forking: Some(f), ..
        } = &s.role
        {
            self.forget_branches(f);
        }
        // Early dialogs end with the session (a confirmed one is the BYE's
        // to end, after this).
        if let Role::Uac { forks, .. } = &s.role {
            for f in forks {
                self.dialogs.remove(f);
            }
        }
        if let Some(id) = &s.dialog {
            if self
                .dialogs
                .get(id)
                .is_some_and(|d| d.state == DialogState::Early)
            {
                self.dialogs.remove(id);
            }
        }
        if let Some(due) = s.timer_due {
            self.session_timers.remove(&(due, chan));
        }
        if let Some(tx) = s.reinvite {
            self.owners.remove(&tx);
        }
        self.media(MediaAction::Release(chan));
        if s.peer.is_some() {
            self.sca_release(chan, s.peer.as_deref());
        }
        if let Some(p) = &s.peer {
            use crate::inuse::Mark;
            let uac = matches!(s.role, Role::Uac { .. });
            if s.ringing && uac {
                self.shared.in_use.mark(p, Mark::Ringing, false);
            }
            if s.held {
                self.shared.in_use.mark(p, Mark::Held, false);
            }
            self.shared.in_use.release(p);
            self.device_update(p);
        }
        Some(s)
    }

    /// Whether `chan`'s leg rings (`Mark::Ringing`: a call to its peer not
    /// answered yet) or is held by its far end (`Mark::Held`): the session's
    /// flag, and the peer's counts with it, change together, and the
    /// peer's device state follows.
    pub(crate) fn mark_leg(&mut self, chan: ChannelId, mark: crate::inuse::Mark, on: bool) {
        use crate::inuse::Mark;
        let Some(s) = self.sessions.get_mut(chan) else {
            return;
        };
        let flag = match mark {
            // Only a leg we called counts as its peer ringing (an inbound
            // call we ring back is the peer calling out).
            Mark::Ringing if matches!(s.role, Role::Uas { .. }) => {
                s.ringing = on;
                return;
            }
            Mark::Ringing => &mut s.ringing,
            Mark::Held => &mut s.held,
        };
        if std::mem::replace(flag, on) == on {
            return;
        }
        if mark == Mark::Held {
            // A shared line's appearance shows its member's hold.
            let state = match on {
                true => crate::sca::ApState::Held,
                false => crate::sca::ApState::Active,
            };
            self.sca_state(chan, state);
        }
        let Some(s) = self.sessions.get(chan) else {
            return;
        };
        if let Some(peer) = s.peer.clone() {
            self.shared.in_use.mark(&peer, mark, on);
            self.device_update(&peer);
        }
    }

    /// Records the last request sent or received on a call.
    pub(crate) fn note_msg(&mut self, chan: ChannelId, what: String) {
        if let Some(s) = self.sessions.get_mut(chan) {
            s.last_msg = what;
        }
    }

    /// Our side of an SDP offer or answer: the audio codecs of `codecs` on
    /// our audio port, with telephone-event; its video codecs on our video
    /// port when the session has one (a video codec never goes into
    /// `m=audio`); `origin` is the `o=` line's session id and version.
    pub(crate) fn local_media(
        &mut self,
        codecs: &[Codec],
        ports: Ports,
        (session_id, session_version): (u64, u64),
        direction: SdpDirection,
    ) -> LocalMedia {
        let (video, audio): (Vec<Codec>, Vec<Codec>) = codecs
            .iter()
            .partition(|c| c.kind() == sirius_abi::MediaKind::Video);
        LocalMedia {
            address: self.shared.bound.ip().to_string(),
            session_id,
            session_version,
            audio: crate::tech::format_specs(&audio),
            video: if ports.video.is_some() {
                crate::tech::format_specs(&video)
            } else {
                Vec::new()
            },
            telephone_event: true,
            audio_port: ports.audio,
            video_port: ports.video.unwrap_or(0),
            direction,
        }
    }

    /// The `o=` line of a new description of `chan`'s session: the same
    /// session id for its whole life, the version one higher than the last
    /// (RFC 3264 §8); what the session sent before, unchanged, keeps its
    /// version (see [`Session::origin`]).
    pub(crate) fn next_origin(&mut self, chan: ChannelId) -> (u64, u64) {
        match self.sessions.get_mut(chan) {
            Some(s) => {
                s.sdp_version += 1;
                s.origin()
            }
            None => (0, 1),
        }
    }

    /// Ends a call on the wire: the final response if unanswered, CANCEL if
    /// ringing out, BYE if answered. The channel is the caller's to free.
    pub(crate) fn hangup_call(&mut self, now: Now, chan: ChannelId, cause: sirius_abi::Cause) {
        let is_uac = matches!(
            self.sessions.get(chan).map(|s| &s.role),
            Some(Role::Uac { .. })
        );
        if is_uac {
            self.hangup_uac(now, chan, cause)
        } else {
            self.hangup_uas(now, chan, cause)
        }
    }

    /// Sends BYE in a confirmed dialog, with the Q.850 cause as `Reason`.
    pub(crate) fn send_bye(&mut self, now: Now, s: &Session, cause: sirius_abi::Cause) {
        let Some(id) = &s.dialog else { return };
        let via = self.via(s.transport);
        // A transfer still reporting keeps the dialog (its NOTIFYs).
        let mut bye = match self.refers.holds(id) {
            true => match self.dialogs.get_mut(id) {
                Some(d) => d.request(Method::Bye, &via, None),
                None => return,
            },
            false => match self.dialogs.remove(id) {
                Some(mut d) => {
                    self.refers.dialog_gone(id);
                    d.request(Method::Bye, &via, None)
                }
                None => return,
            },
        };
        bye.push(HeaderName::Reason, format!("Q.850;cause={}", cause.0));
        let hop = self.route_hop(&bye).unwrap_or(s.dest);
        self.send_client(bye, hop, s.transport, crate::endpoint::Fire, now.mono);
    }
}
