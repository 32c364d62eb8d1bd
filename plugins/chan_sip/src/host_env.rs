//! The host side of the endpoint's [`Env`] on one shard: what the endpoint
//! asks of the core and the machine (channels, RTP ports, the loop's lag),
//! answered at once, and the media it drives: every call's RTP sockets, the
//! relay thread and the native bridges running on it. Split from the driver
//! loop (`driver.rs`), which owns the sockets and the clock and only hands
//! this to the endpoint.

use crate::driver::Command;
use crate::endpoint::{Env, LegMedia, MediaAction, StreamKind};
use crate::relay::{Leg, RelayEngine, RelayHandle, Stream};
use crate::rtp_ports::RtpSocket;
use crate::shards::Home;
use crate::Shared;
use sirius_abi::{Cause, ChannelId, ChannelInfo, ChannelSpec};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A stream's RTP and RTCP sockets (back to the port range's pool, bound,
/// when the call and the relay are both done with them).
#[derive(Clone)]
struct MediaPair {
    rtp: Arc<RtpSocket>,
    rtcp: Arc<RtpSocket>,
}

impl MediaPair {
    /// A pair from the range in force.
    fn bind(shared: &Shared) -> std::io::Result<MediaPair> {
        let (rtp, rtcp) = shared.bind_media()?;
        Ok(MediaPair {
            rtp: Arc::new(rtp),
            rtcp: Arc::new(rtcp),
        })
    }
}

/// A call's media sockets: audio always, video when negotiated (boxed:
/// most calls have none, and the table of every call's media holds this
/// inline).
#[derive(Clone)]
pub struct CallMedia {
    audio: Option<MediaPair>,
    video: Option<Box<MediaPair>>,
}

/// What the endpoint asks of the host and the machine, answered at once,
/// and the media it drives: every call's RTP sockets, the relay thread and
/// the native bridges running on it.
pub(crate) struct HostEnv {
    pub(crate) shared: Arc<Shared>,
    /// Which shard this driver runs.
    home: Home,
    media: HashMap<ChannelId, CallMedia>,
    /// The packet mover of native bridges and echoes (none if its thread
    /// could not start: calls then go up without media).
    relay: Option<RelayEngine>,
    relays: HashMap<ChannelId, NativeBridge>,
    /// Pairs set aside for inbound legs' callees ([`Env::set_aside`]), and
    /// once handed over, for the outbound leg that takes them.
    spares: HashMap<ChannelId, MediaPair>,
    /// Legs of this shard whose media another shard's relay carries (a
    /// bridge across shards, made by a transfer): that shard, and the leg
    /// there they are bridged with.
    lent: HashMap<ChannelId, (usize, ChannelId)>,
    /// Legs of other shards whose media this shard's relay carries: their
    /// shard and their sockets (shared with the lender; the ports go back
    /// when both let go).
    borrowed: HashMap<ChannelId, (usize, CallMedia)>,
    /// Legs hearing a tone (`crate::tones`): the task sending it.
    tones: HashMap<ChannelId, tokio::task::AbortHandle>,
}

impl Env for HostEnv {
    fn channel_alloc(&mut self, spec: ChannelSpec) -> Result<ChannelInfo, Cause> {
        let info = self.shared.host.channel_alloc(spec)?;
        // The core's requests about it (answer, hangup…) come here.
        self.shared.shards.settle(info.id, self.home.index);
        Ok(info)
    }

    fn pbx_start(&mut self, chan: ChannelId) -> Result<(), Cause> {
        self.shared.host.pbx_start(chan)
    }

    fn channel_var(&mut self, chan: ChannelId, name: &str) -> Option<String> {
        self.shared.host.channel_get_var(chan, name)
    }

    fn pickup(&mut self, ringing: ChannelId, picker: ChannelId) -> Result<(), Cause> {
        self.shared.host.channel_pickup(ringing, picker)
    }

    fn replace(&mut self, old: ChannelId, new: ChannelId) -> Result<(), Cause> {
        self.shared.host.channel_replace(old, new)
    }

    fn attended_transfer(
        &mut self,
        t1: ChannelId,
        t2: ChannelId,
    ) -> Result<(ChannelId, ChannelId), Cause> {
        self.shared.host.channel_attended_transfer(t1, t2)
    }

    fn blind_transfer(
        &mut self,
        transferor: ChannelId,
        context: &str,
        exten: &str,
        vars: &[(&str, String)],
    ) -> Result<ChannelId, Cause> {
        self.shared
            .host
            .channel_blind_transfer(transferor, context, exten, vars)
    }

    fn reserve_media(&mut self, chan: ChannelId, kind: StreamKind) -> Result<u16, String> {
        let spare = match kind {
            StreamKind::Audio => self.spares.remove(&chan),
            StreamKind::Video => None,
        };
        let pair = match spare {
            Some(pair) => pair,
            None => MediaPair::bind(&self.shared).map_err(|e| e.to_string())?,
        };
        let port = pair.rtp.local_addr().map_err(|e| e.to_string())?.port();
        let call = self.media.entry(chan).or_insert(CallMedia {
            audio: None,
            video: None,
        });
        match kind {
            StreamKind::Audio => call.audio = Some(pair),
            StreamKind::Video => call.video = Some(Box::new(pair)),
        }
        Ok(port)
    }

    fn relay_ready(&mut self) -> bool {
        self.relay.is_some()
    }

    /// As [`Env::hint_watch`]'s callback: queued to this shard.
    fn mwi_watch(
        &mut self,
        mailboxes: &str,
        target: crate::endpoint::MwiTarget,
    ) -> Option<(u64, sirius_sip::mwi::Counts)> {
        let shared = Arc::downgrade(&self.shared);
        let home = self.home.index;
        let (id, new, old) = self.shared.host.mwi_watch(mailboxes, move |new, old| {
            if let Some(shared) = shared.upgrade() {
                let counts = sirius_sip::mwi::Counts { new, old };
                let _ = shared
                    .shards
                    .send(home, Command::MwiChanged(target.clone(), counts));
            }
        })?;
        Some((id, sirius_sip::mwi::Counts { new, old }))
    }

    /// The core calls back on whatever thread reported the device change
    /// (often this one, inside its own turn): the change is queued to this
    /// shard as a command, never handled in the callback. The callback
    /// holds the module's state weakly, so a watch left behind keeps
    /// nothing alive.
    fn hint_watch(&mut self, context: &str, exten: &str, key: u64) -> Option<(u64, i32)> {
        let shared = Arc::downgrade(&self.shared);
        let home = self.home.index;
        self.shared.host.hint_watch(context, exten, move |state| {
            if let Some(shared) = shared.upgrade() {
                let _ = shared.shards.send(home, Command::HintChanged(key, state));
            }
        })
    }

    /// The latest of the shards' loops and input queues: shard 0 reads
    /// every datagram, so its lag delays every call, and a late shard
    /// delays its own. A loop can keep its timers on time while its input
    /// waits (the queue filling under overload): a standing wait (the
    /// least of the last 100 ms, [`crate::lag::LagMeter::standing`])
    /// counts as lag too.
    fn loop_lag(&mut self) -> Duration {
        let now = Instant::now();
        let timers = self.shared.lag.iter().map(|m| m.lock().now_late(now));
        let waits = self.shared.wait.iter().map(|m| m.lock().standing(now));
        timers.chain(waits).max().unwrap_or_default()
    }

    fn media_free(&mut self) -> usize {
        self.shared.rtp_ports.free_pairs().unwrap_or(usize::MAX)
    }

    fn set_aside(&mut self, chan: ChannelId) -> bool {
        let Ok(pair) = MediaPair::bind(&self.shared) else {
            return false;
        };
        self.spares.insert(chan, pair);
        true
    }

    fn hand_over(&mut self, from: ChannelId, to: ChannelId) {
        if let Some(pair) = self.spares.remove(&from) {
            self.spares.insert(to, pair);
        }
    }

    fn bridged_with(&mut self, chan: ChannelId) -> Option<ChannelId> {
        let here = self.relays.get(&chan).map(|b| b.partner);
        here.or_else(|| self.lent.get(&chan).map(|&(_, partner)| partner))
    }

    fn media_idle(&mut self, chan: ChannelId, now: Instant) -> Option<Duration> {
        let engine = self.relay.as_ref()?;
        let bridge = self.relays.get(&chan)?;
        // The handles sit under the bridge's first channel (leg 0); the
        // second channel is leg 1 of its partner's.
        let (handle, index) = match bridge.handles.first() {
            Some(h) => (h, 0),
            None => (self.relays.get(&bridge.partner)?.handles.first()?, 1),
        };
        let last = engine.last_rx(handle, index)?;
        Some(now.saturating_duration_since(last))
    }
}

impl HostEnv {
    /// The environment of shard `home`, its media moved by `relay`.
    pub(crate) fn new(shared: Arc<Shared>, home: Home, relay: Option<RelayEngine>) -> HostEnv {
        HostEnv {
            shared,
            home,
            media: HashMap::new(),
            relay,
            relays: HashMap::new(),
            spares: HashMap::new(),
            lent: HashMap::new(),
            borrowed: HashMap::new(),
            tones: HashMap::new(),
        }
    }

    /// The RTP and RTCP legs of one of our channels' streams, for a relay.
    /// The far end's RTCP port is the one after its RTP port (RFC 3550 §11).
    fn legs(&self, leg: &LegMedia, kind: StreamKind) -> Option<(Leg, Leg)> {
        let call = match self.media.get(&leg.chan) {
            Some(call) => call,
            None => &self.borrowed.get(&leg.chan)?.1,
        };
        let (pair, remote, dtmf_pt, g711, info_dtmf) = match kind {
            StreamKind::Audio => (
                call.audio.as_ref()?,
                leg.remote.addr,
                leg.remote.dtmf_pt,
                leg.remote.g711.clone(),
                leg.info_dtmf.then_some(leg.chan.0),
            ),
            StreamKind::Video if leg.video => (
                &**call.video.as_ref()?,
                leg.remote.video,
                None,
                Vec::new(),
                None,
            ),
            StreamKind::Video => return None,
        };
        let remote_rtcp = remote.map(|r| SocketAddr::new(r.ip(), r.port().wrapping_add(1)));
        // The relay thread and the call share the sockets (no second
        // descriptor per leg: 10,000 calls hold 40,000 of them already).
        Some((
            Leg {
                socket: pair.rtp.clone(),
                remote,
                learn: leg.learn,
                dtmf_pt,
                g711,
                info_dtmf,
            },
            Leg {
                socket: pair.rtcp.clone(),
                remote: remote_rtcp,
                learn: leg.learn,
                dtmf_pt: None,
                g711: Vec::new(),
                info_dtmf: None,
            },
        ))
    }

    pub(crate) fn media(&mut self, action: MediaAction) {
        // Whatever relays a leg, or ends it, ends its tone first.
        match &action {
            MediaAction::Bridge(a, b) => {
                self.stop_tone(a.chan);
                self.stop_tone(b.chan);
            }
            MediaAction::Echo(l) | MediaAction::Lend(l, ..) => self.stop_tone(l.chan),
            MediaAction::Release(c) | MediaAction::StopTone(c) => self.stop_tone(*c),
            _ => {}
        }
        match action {
            MediaAction::Bridge(a, b) => {
                let Some(engine) = &self.relay else {
                    return log::warn!("cannot bridge natively: no relay thread");
                };
                let (Some((ra, ca)), Some((rb, cb))) = (
                    self.legs(&a, StreamKind::Audio),
                    self.legs(&b, StreamKind::Audio),
                ) else {
                    return log::warn!("cannot bridge {} and {}: no media", a.chan, b.chan);
                };
                let mut handles = vec![
                    engine.bridge(ra, rb, Stream::Rtp),
                    engine.bridge(ca, cb, Stream::Rtcp),
                ];
                // Video is relayed when both legs negotiated it; a leg
                // without (m=video 0) leaves the call audio only.
                if let (Some((va, vca)), Some((vb, vcb))) = (
                    self.legs(&a, StreamKind::Video),
                    self.legs(&b, StreamKind::Video),
                ) {
                    handles.push(engine.bridge(va, vb, Stream::Rtp));
                    handles.push(engine.bridge(vca, vcb, Stream::Rtcp));
                }
                self.relays.insert(
                    a.chan,
                    NativeBridge {
                        partner: b.chan,
                        handles,
                    },
                );
                self.relays.insert(
                    b.chan,
                    NativeBridge {
                        partner: a.chan,
                        handles: Vec::new(),
                    },
                );
            }
            MediaAction::Echo(leg) => {
                let Some(engine) = &self.relay else {
                    return log::warn!("cannot echo natively: no relay thread");
                };
                // The media comes back; RTCP does not (a phone's own reports
                // returned to it would describe a stream it never received).
                let Some((rtp, _rtcp)) = self.legs(&leg, StreamKind::Audio) else {
                    return;
                };
                let mut handles = vec![engine.echo(rtp, Stream::Rtp)];
                if let Some((video, _)) = self.legs(&leg, StreamKind::Video) {
                    handles.push(engine.echo(video, Stream::Rtp));
                }
                self.relays.insert(
                    leg.chan,
                    NativeBridge {
                        partner: leg.chan,
                        handles,
                    },
                );
            }
            MediaAction::Remote(chan, media) => {
                if let Some(&(to, _)) = self.lent.get(&chan) {
                    // The relay that carries this leg runs on shard `to`.
                    let _ = self
                        .shared
                        .shards
                        .send(to, Command::LentRemote(chan, media));
                    return;
                }
                let (Some(engine), Some(bridge)) = (&self.relay, self.relays.get(&chan)) else {
                    return;
                };
                // The relay handles sit under the bridge's first channel, leg 0;
                // the second channel is leg 1 of its partner's handles. In
                // order: audio RTP, audio RTCP, then video RTP and RTCP.
                let (handles, index) = if bridge.handles.is_empty() {
                    (self.relays.get(&bridge.partner).map(|b| &b.handles), 1)
                } else {
                    (Some(&bridge.handles), 0)
                };
                let rtcp = |a: Option<SocketAddr>| {
                    a.map(|a| SocketAddr::new(a.ip(), a.port().wrapping_add(1)))
                };
                for (k, h) in handles.into_iter().flatten().enumerate() {
                    match k {
                        0 => engine.set_remote(h, index, media.addr, media.dtmf_pt, &media.g711),
                        1 => engine.set_remote(h, index, rtcp(media.addr), None, &[]),
                        2 => engine.set_remote(h, index, media.video, None, &[]),
                        _ => engine.set_remote(h, index, rtcp(media.video), None, &[]),
                    }
                }
            }
            MediaAction::Dtmf(chan, digit, ms) => {
                let (Some(engine), Some(bridge)) = (&self.relay, self.relays.get(&chan)) else {
                    return;
                };
                let (handle, index) = match bridge.handles.first() {
                    Some(h) => (h, 0),
                    None => match self
                        .relays
                        .get(&bridge.partner)
                        .and_then(|b| b.handles.first())
                    {
                        Some(h) => (h, 1),
                        None => return,
                    },
                };
                engine.send_dtmf(handle, index, digit, ms);
            }
            MediaAction::Unbridge(chan) => self.end_relay(chan),
            MediaAction::Lend(leg, to, partner) => self.lend(leg, to, partner),
            MediaAction::Ringback(leg) => self.ringback(leg),
            MediaAction::StopTone(_) => {}
            MediaAction::DropSpare(chan) => {
                self.spares.remove(&chan);
            }
            MediaAction::Release(chan) => {
                self.end_relay(chan);
                self.media.remove(&chan);
                self.spares.remove(&chan);
                // After a burst the tables give back their room (the
                // sessions' own do the same, crate::session::memory).
                crate::session::memory::shrink_map(&mut self.media);
                crate::session::memory::shrink_map(&mut self.relays);
                crate::session::memory::shrink_map(&mut self.spares);
                self.shared.shards.forget(chan);
            }
        }
    }

    /// Ends the relay `chan` is in, wherever it runs: here (a borrowed leg
    /// in it goes back to its shard), or on the shard `chan` is lent to.
    fn end_relay(&mut self, chan: ChannelId) {
        let partner = self.relays.get(&chan).map(|b| b.partner);
        self.stop_relay(chan);
        for x in [Some(chan), partner].into_iter().flatten() {
            if let Some((home, _)) = self.borrowed.remove(&x) {
                let _ = self.shared.shards.send(home, Command::Returned(x));
            }
            if let Some((to, _)) = self.lent.remove(&x) {
                let _ = self.shared.shards.send(to, Command::Return(x));
            }
        }
    }

    /// The core bridged `leg` (ours) with `partner` on shard `to`: that
    /// shard's relay carries both, with `leg`'s sockets (shared, not
    /// moved: the call stays ours, its signalling and its ports).
    fn lend(&mut self, leg: LegMedia, to: usize, partner: ChannelId) {
        let Some(media) = self.media.get(&leg.chan).cloned() else {
            return log::warn!("cannot lend {}: no media", leg.chan);
        };
        self.end_relay(leg.chan);
        self.lent.insert(leg.chan, (to, partner));
        let from = self.home.index;
        let borrow = Command::Borrow {
            leg: Box::new(leg),
            media: Box::new(media),
            partner,
            from,
        };
        let _ = self.shared.shards.send(to, borrow);
    }

    /// Ringback to `leg` from its own socket, a packet every 20 ms on this
    /// driver's runtime, until stopped; none for a leg whose media a relay
    /// carries (the other side's media is what it hears then).
    fn ringback(&mut self, leg: LegMedia) {
        let relayed = self.relays.contains_key(&leg.chan)
            || self.lent.contains_key(&leg.chan)
            || self.borrowed.contains_key(&leg.chan);
        let socket = self
            .media
            .get(&leg.chan)
            .and_then(|m| m.audio.as_ref())
            .map(|pair| pair.rtp.clone());
        let (Some(socket), Some(dest), false) = (socket, leg.remote.addr, relayed) else {
            return;
        };
        self.stop_tone(leg.chan);
        // A µ-law phone gets µ-law; one that takes only A-law, A-law.
        let pt = match leg.remote.g711.as_slice() {
            [8] => 8,
            _ => 0,
        };
        let ssrc = (leg.chan.0 as u32).wrapping_mul(0x9e37_79b1) ^ std::process::id();
        let task = tokio::spawn(async move {
            let mut tone = crate::tones::Ringback::new(pt, ssrc);
            let mut every = tokio::time::interval(crate::tones::FRAME);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                // A full socket buffer drops a packet of tone: no matter.
                let _ = socket.send_to(&tone.next_packet(), dest);
            }
        });
        self.tones.insert(leg.chan, task.abort_handle());
    }

    fn stop_tone(&mut self, chan: ChannelId) {
        if self.tones.is_empty() {
            return;
        }
        if let Some(task) = self.tones.remove(&chan) {
            task.abort();
        }
    }

    /// Shard `from` lends `chan`'s sockets to this shard's relay.
    pub(crate) fn borrow(&mut self, chan: ChannelId, from: usize, media: CallMedia) {
        self.borrowed.insert(chan, (from, media));
    }

    /// The lender of `chan` takes it back (its call ended, or the core
    /// unbridged it there): the relay stops, the sockets are let go.
    pub(crate) fn give_back(&mut self, chan: ChannelId) {
        self.stop_relay(chan);
        self.borrowed.remove(&chan);
    }

    /// The borrower of `chan` let it go.
    pub(crate) fn returned(&mut self, chan: ChannelId) {
        self.lent.remove(&chan);
    }

    /// Stops the relay `chan` is in, both legs' side of it (its partner's
    /// entry goes too); the sockets stay with their calls.
    fn stop_relay(&mut self, chan: ChannelId) {
        let Some(bridge) = self.relays.remove(&chan) else {
            return;
        };
        let other = self.relays.remove(&bridge.partner);
        if let Some(engine) = &self.relay {
            for h in bridge
                .handles
                .into_iter()
                .chain(other.into_iter().flat_map(|o| o.handles))
            {
                engine.remove(h);
            }
        }
    }
}

/// A native bridge (or echo) as the driver keeps it: listed under both of
/// its channels, the relay handles under the first, so that whichever leg
/// ends first removes it once.
struct NativeBridge {
    partner: ChannelId,
    handles: Vec<RelayHandle>,
}
