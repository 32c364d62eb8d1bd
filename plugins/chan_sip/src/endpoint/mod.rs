//! The SIP endpoint without IO, as quinn-proto is to quinn: it owns the
//! transaction layer, the dialogs and every dialog usage (call sessions,
//! outbound registrations, qualify pokes), and it reads no clock, opens no
//! socket and calls no host function that does not answer at once.
//!
//! ```text
//!             bytes, time, core commands                outputs
//!   driver ─────────────────────────────────▶ Endpoint ─────────▶ driver
//!   (sockets, clock,  handle(now, Input, env)   │        poll(): Transmit,
//!    host, relay)     handle_timeout(now, env)  │        Host(..), Media(..)
//!                     place(now, chan, env)     │        poll_timeout()
//!                                               ▼
//!            TransactionLayer ── owners (client tx → usage) ── sessions
//!                             └─ dialogs (dialog id → session)
//! ```
//!
//! Time comes in as [`Now`]; randomness (tags, branches, Call-IDs) from a
//! generator seeded by the driver ([`Tokens`]). What the endpoint must ask
//! the core and hear back from at once (a new channel's id, whether the
//! dialplan accepted it, an RTP port) goes through [`Env`]; everything it
//! only tells — bytes to send, a state change, a hangup, an event, a relay
//! change — is an [`Output`] the driver performs after each call. So every
//! call flow runs in unit tests with a fake [`Env`] and simulated time
//! (`tests.rs`), and nothing here is global: an endpoint per shard is a
//! matter of routing by Call-ID.
//!
//! Who owns a transaction or a dialog is a table, not a search: client
//! transactions map to an [`Owner`] (a session's INVITE, a re-INVITE, a BYE,
//! a registration line, a poke), each a usage that takes its responses and
//! timeouts through the [`ClientUsage`] trait (`usage.rs`); INVITE server
//! transactions and dialogs map to the session's channel
//! (`session::Sessions`). Out-of-dialog requests are routed by method.

mod client;
mod dns;
mod io;
mod messages;
mod register;
mod usage;

pub use io::{HostAction, Input, LegMedia, MediaAction, MwiTarget, Output, StreamKind};

pub(crate) use dns::Lookup;
pub(crate) use usage::{ClientUsage, Fire, Owner};
#[cfg(test)]
mod tests;

use crate::session::RETRY_AFTER_SECS;
use crate::Shared;
use sirius_abi::{Cause, ChannelId, ChannelInfo, ChannelSpec};
use sirius_sip::dialog::{Classified, DialogTable};
use sirius_sip::message::{build, parse_datagram, HeaderName, Limits, Message, Method, ParseError};
use sirius_sip::transaction::{Config, Event, TransactionLayer, Transport, TxId};
use sirius_sip::validate::{inspect_request, inspect_response, Capabilities};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::session::attended::{FoundLeg, ShardMsg};
pub use crate::session::OutboundSetup;
use crate::session::Sessions;

/// What this driver implements, and nothing more: the methods it answers
/// (others get 501 with this Allow list), the option tags it honours in
/// `Require` (session timers, RFC 4028; others get 420 with
/// `Unsupported`), the bodies it reads (others get 415). A peer with
/// `session-timers = "refuse"` answers `Require: timer` with 420 too.
pub fn capabilities() -> Capabilities {
    use Method::*;
    Capabilities {
        methods: vec![
            Invite, Ack, Cancel, Options, Bye, Register, Update, Info, Refer, Notify, Subscribe,
            Publish,
        ],
        extensions: vec!["timer".into(), "replaces".into(), "norefersub".into()],
        content_types: vec![
            "application/sdp".into(),
            "application/dtmf-relay".into(),
            "application/dtmf".into(),
            "message/sipfrag".into(),
            // A shared line's phones PUBLISH their dialogs (RFC 7463).
            "application/dialog-info+xml".into(),
        ],
    }
}

/// `Accept`, as we really accept it.
pub(crate) const ACCEPT: &str = "application/sdp, message/sipfrag";

/// How often the registrar's bindings are expired and lost calls swept.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// The two clocks an input happens at: monotonic for SIP timers, Unix
/// seconds for what outlives the process (registrations, digest nonces).
/// Both come from the driver; tests make them up.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time.
    pub mono: Instant,
    /// Seconds since the Unix epoch.
    pub unix: u64,
}

/// What the endpoint asks the outside world and needs the answer to at once.
pub trait Env {
    /// `ast_channel_alloc`: the new channel's id and name.
    fn channel_alloc(&mut self, spec: ChannelSpec) -> Result<ChannelInfo, Cause>;
    /// `ast_pbx_start`; an error is the cause to refuse the call with.
    fn pbx_start(&mut self, chan: ChannelId) -> Result<(), Cause>;
    /// Reserves an RTP/RTCP pair for `chan`'s audio or video stream, held
    /// until [`MediaAction::Release`]; the RTP port.
    fn reserve_media(&mut self, chan: ChannelId, kind: StreamKind) -> Result<u16, String>;
    /// How long `chan`'s far end has sent no RTP as of `now`; `None` when
    /// nothing reads its socket (not bridged).
    fn media_idle(&mut self, chan: ChannelId, now: Instant) -> Option<Duration>;
    /// Watches the hint of `exten@context` for subscription `key`
    /// (`ast_extension_state_add`): each change of its extension state comes
    /// back as [`Input::HintChanged`] on this shard, until
    /// [`HostAction::HintUnwatch`]. The watch's id and the state now
    /// (`AST_EXTENSION_*` bits); `None` when the dialplan has no such hint.
    fn hint_watch(&mut self, context: &str, exten: &str, key: u64) -> Option<(u64, i32)>;
    /// Watches mailboxes (`box@context,…`) for `target`: each change of
    /// their summed counts comes back as [`Input::MwiChanged`] on this
    /// shard, until [`HostAction::MwiUnwatch`]. The watch's id and the
    /// counts now; `None` when a name is not a mailbox.
    fn mwi_watch(
        &mut self,
        mailboxes: &str,
        target: MwiTarget,
    ) -> Option<(u64, sirius_sip::mwi::Counts)>;
    /// Whether native bridges can run (the relay thread started).
    fn relay_ready(&mut self) -> bool;
    /// The channel `chan`'s media is relayed with (itself for Echo), as the
    /// relay carries it: the one record of which legs are bridged.
    fn bridged_with(&mut self, chan: ChannelId) -> Option<ChannelId>;
    /// How late the event loop runs now (the lateness of its latest due
    /// timer, [`crate::lag::LagMeter::now_late`], or the input queue's
    /// standing wait, [`crate::lag::LagMeter::standing`], whichever is
    /// later): what admission control
    /// compares with `maxlag`. The endpoint reads no clock, so the driver,
    /// which runs the loop, measures it.
    fn loop_lag(&mut self) -> Duration;
    /// RTP/RTCP pairs left in the port range (those another program holds
    /// count as free until a bind finds them taken): admission refuses a
    /// call that would find none, before any work is spent on it.
    fn media_free(&mut self) -> usize;
    /// Sets a second RTP/RTCP pair aside for an inbound leg, for the leg a
    /// Dial will make for it ([`Env::hand_over`]): admitting a call takes the
    /// ports of both its legs at once, so that under load a call is refused
    /// whole before its work is done, not after, for want of its callee's
    /// ports. False when the range has none left.
    fn set_aside(&mut self, chan: ChannelId) -> bool;
    /// The pair set aside for `from` goes to the outbound leg `to`: its next
    /// audio [`Env::reserve_media`] takes it. Nothing when none was set aside.
    fn hand_over(&mut self, from: ChannelId, to: ChannelId);
    /// A channel variable (`TRANSFER_CONTEXT`), by its name without
    /// inheritance prefix.
    fn channel_var(&mut self, chan: ChannelId, name: &str) -> Option<String>;
    /// The core's blind transfer: `transferor`'s bridge partner leaves the
    /// bridge and runs `exten@context`, `vars` set on it first; the
    /// transferee. An error leaves the call as it was.
    fn blind_transfer(
        &mut self,
        transferor: ChannelId,
        context: &str,
        exten: &str,
        vars: &[(&str, String)],
    ) -> Result<ChannelId, Cause>;
    /// Call pickup: `picker` answered and connected in place of the ringing
    /// callee `ringing`, which is hung up.
    fn pickup(&mut self, ringing: ChannelId, picker: ChannelId) -> Result<(), Cause>;
    /// `new` takes `old`'s place in its bridge (answered); `old` hung up.
    fn replace(&mut self, old: ChannelId, new: ChannelId) -> Result<(), Cause>;
    /// The core's attended transfer: `t1`'s partner is bridged with `t2`'s,
    /// `t2` hung up; (transferee, target).
    fn attended_transfer(
        &mut self,
        t1: ChannelId,
        t2: ChannelId,
    ) -> Result<(ChannelId, ChannelId), Cause>;
}

/// Tags, branches and Call-IDs: 64 random bits each, from a generator the
/// driver seeds (sirius-sip's splitmix64), so that tests are repeatable.
pub use sirius_sip::message::build::Tokens;

/// The sans-IO SIP endpoint of chan_sip.
pub struct Endpoint {
    pub(crate) shared: Arc<Shared>,
    pub(crate) layer: TransactionLayer,
    pub(crate) dialogs: DialogTable,
    pub(crate) caps: Capabilities,
    pub(crate) owners: std::collections::HashMap<TxId, Owner>,
    pub(crate) sessions: Sessions,
    /// Auto-congest deadlines, soonest first. An entry stays when its call
    /// gets an answer (or ends) and is dropped when it comes due: checked
    /// against the session's own deadline then. (A scan of every outbound
    /// call per event made each event cost O(calls) once calls piled up.)
    pub(crate) congest_timers: std::collections::BTreeSet<(Instant, ChannelId)>,
    /// When a refused call (load, RTP ports) was last logged.
    pub(crate) last_refusal_log: Option<Instant>,
    /// Re-INVITEs to send again after a 491 (RFC 3261 §14.1's random wait).
    pub(crate) glare_timers: std::collections::BTreeSet<(Instant, ChannelId)>,
    /// Session-timer deadlines, soonest first; checked against the
    /// session's own `timer_due` when they come (re-arming leaves stale
    /// entries behind instead of searching for the old one).
    pub(crate) session_timers: std::collections::BTreeSet<(Instant, ChannelId)>,
    /// Transfers by REFER being reported (`session::refer`).
    pub(crate) refers: crate::session::refer::Refers,
    /// Their deadlines (end of the report, the transferor's grace), checked
    /// against the transfer's own when they come.
    pub(crate) refer_timers: std::collections::BTreeSet<(Instant, u64)>,
    /// Subscriptions to extension states (`session::subscribe`).
    pub(crate) subscriptions: crate::session::subscribe::Subscriptions,
    /// Their deadlines, checked against the subscription's own when they
    /// come (a refresh leaves the old entry behind).
    pub(crate) sub_timers: std::collections::BTreeSet<(Instant, u64)>,
    /// Peers' mailboxes watched for unsolicited MWI (shard 0; `crate::mwi`).
    pub(crate) mwi_watches: std::collections::HashMap<String, crate::mwi::PeerWatch>,
    /// The generation of the next of those watches.
    pub(crate) mwi_generation: u64,
    next_housekeeping: Option<Instant>,
    pub(crate) tokens: Tokens,
    /// Names met in messages, looked up without blocking.
    pub(crate) dns: dns::Dns,
    /// The time of the input being handled (what a cached name's age is
    /// counted against).
    pub(crate) now: Instant,
    /// Its Unix time, for what needs a [`Now`] deep in a usage
    /// ([`Endpoint::clock`]).
    now_unix: u64,
    pub(crate) out: VecDeque<Output>,
    /// Which shard this is ([`crate::shards`]): the Call-IDs it makes hash
    /// here, and only the first shard runs registrations and pokes.
    pub(crate) home: crate::shards::Home,
}

/// Transactions the layer's key tables make room for up front. The
/// default (64 Ki) is room a table never has to grow into, but a burst
/// writes over all of it and its pages then stay resident: 5.4 MB a SIP
/// shard, 1.3 KiB of each of 4,000 held calls on a cold start (issue #11).
/// Grown on demand instead, a shard at a time (a sixteenth of the keys
/// moved per doubling), the tables hold what the load needs.
const KEY_ROOM: usize = 4_096;

impl Endpoint {
    /// An endpoint over the module's shared state, its tokens from `seed`.
    pub fn new(shared: Arc<Shared>, seed: u64, now: Instant) -> Endpoint {
        let t1 = Duration::from_millis(shared.running().cfg.general.t1.max(1));
        Endpoint {
            shared,
            layer: TransactionLayer::new(Config {
                t1,
                capacity: KEY_ROOM,
                ..Config::default()
            }),
            dialogs: DialogTable::default(),
            caps: capabilities(),
            owners: std::collections::HashMap::new(),
            sessions: Sessions::default(),
            congest_timers: std::collections::BTreeSet::new(),
            glare_timers: std::collections::BTreeSet::new(),
            last_refusal_log: None,
            session_timers: std::collections::BTreeSet::new(),
            refers: Default::default(),
            refer_timers: std::collections::BTreeSet::new(),
            subscriptions: Default::default(),
            sub_timers: std::collections::BTreeSet::new(),
            mwi_watches: std::collections::HashMap::new(),
            mwi_generation: 0,
            next_housekeeping: None,
            tokens: Tokens::new(seed),
            dns: dns::Dns::default(),
            now,
            now_unix: 0,
            out: VecDeque::new(),
            home: crate::shards::Home::SINGLE,
        }
    }

    /// This endpoint as shard `home` of several.
    pub fn with_home(mut self, home: crate::shards::Home) -> Endpoint {
        self.home = home;
        self
    }

    /// The next thing for the driver to do.
    pub fn poll(&mut self) -> Option<Output> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        self.layer.poll_transmit().map(Output::Transmit)
    }

    /// When [`Endpoint::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let (q, r) = match self.home.runs_clients() {
            true => self.client_timeout(),
            false => (None, None),
        };
        let congest = self.congest_timers.first().map(|(t, _)| *t);
        let session = self.session_timers.first().map(|(t, _)| *t);
        let glare = self.glare_timers.first().map(|(t, _)| *t);
        let refer = self.refer_timers.first().map(|(t, _)| *t);
        let sub = self.sub_timers.first().map(|(t, _)| *t);
        [
            self.layer.poll_timeout(),
            q,
            r,
            congest,
            session,
            glare,
            refer,
            sub,
            self.next_housekeeping,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When the next qualify poke and the next registration step are due.
    fn client_timeout(&self) -> (Option<Instant>, Option<Instant>) {
        let q = self
            .shared
            .qualify
            .lock()
            .values()
            .filter_map(|q| q.poll_timeout())
            .min();
        let r = self
            .shared
            .outbound
            .lock()
            .iter()
            .filter_map(|r| r.sm.poll_timeout())
            .min();
        (q, r)
    }

    /// Calls in progress, either way.
    pub fn calls(&self) -> usize {
        self.sessions.len()
    }

    /// Whether unregistrations sent by [`Input::Shutdown`] still wait for answers.
    pub fn unregistering(&self) -> bool {
        self.owners
            .values()
            .any(|o| matches!(o, Owner::Register(_)))
    }

    /// Starts the `[[register]]` lines, the peers' mailbox watches and the
    /// housekeeping timer.
    pub fn start(&mut self, now: Now, env: &mut dyn Env) {
        self.now = now.mono;
        self.now_unix = now.unix;
        self.next_housekeeping = Some(now.mono + HOUSEKEEPING);
        if self.home.runs_clients() {
            self.start_registrations(now.mono);
            self.mwi_reconcile(env);
        }
    }

    /// Takes one input.
    pub fn handle(&mut self, now: Now, input: Input<'_>, env: &mut dyn Env) {
        self.now = now.mono;
        self.now_unix = now.unix;
        if !self.refers.is_empty() {
            self.refer_progress(now, &input);
        }
        match input {
            Input::Datagram { data, src } => match parse_datagram(data, &Limits::default()) {
                Ok(msg) => self.on_message(now, msg, src, Transport::Udp, env),
                Err(ParseError::KeepAlive) => {}
                // Not a message we can address a response to: dropped (RFC 3261 §18.3).
                Err(e) => log::debug!("dropping unparseable datagram from {src}: {e}"),
            },
            Input::Stream { msg, src } => self.on_message(now, msg, src, Transport::Tcp, env),
            Input::TransportError { peer, transport } => {
                self.layer.transport_error(peer, transport)
            }
            Input::Answer(c) => self.answer_call(now, c),
            Input::Hangup(c, cause) => self.hangup_call(now, c, cause),
            Input::Indicate(c, ind) => self.indicate_call(now, c, ind),
            Input::NewOutbound(setup) => self.new_outbound(setup, env),
            Input::Place(c) => {
                if let Err(cause) = self.place(now, c) {
                    self.take_session(c);
                    self.host(HostAction::Hangup(c, cause));
                }
            }
            Input::Bridge(a, b) => {
                let _ = self.bridge(a, b, env);
            }
            Input::Unbridge(a, b) => self.unbridge(a, b, env),
            Input::QualifyNow(peer) => self.poke(&peer, now.mono),
            Input::Reconcile => {
                self.reconcile(now.mono);
                self.mwi_reconcile(env);
            }
            Input::RelayDtmf(c, digit, ms) => self.send_info_dtmf(now, c, digit, ms),
            Input::Shard(msg) => self.on_shard(now, msg, env),
            Input::Lend { chan, to, partner } => self.lend_leg(chan, to, partner, env),
            Input::Borrowed(leg, partner) => self.bridge_borrowed(leg, partner),
            Input::Transfer(c, dest) => self.send_refer(now, c, &dest),
            Input::Resolved { host, port, result } => {
                self.dns.resolved(&host, port, result, now.mono);
                self.redirects_resolved(now);
            }
            Input::Shutdown => {
                // Both directions: a forced unload must not leave a far end
                // holding a call nobody will ever end.
                for c in self.sessions.channels() {
                    self.hangup_call(now, c, Cause::NORMAL_CLEARING);
                    self.host(HostAction::Hangup(c, Cause::NORMAL_CLEARING));
                }
                if self.home.runs_clients() {
                    self.unregister_all(now.mono);
                }
                self.end_subscriptions(now);
                self.mwi_unwatch_all();
            }
            Input::HintChanged { key, state } => self.hint_changed(now, key, state),
            Input::MwiChanged { target, counts } => match target {
                MwiTarget::Subscription(key) => self.mailbox_changed(now, key, counts),
                MwiTarget::Peer(peer, gen) => self.peer_mailbox_changed(&peer, gen, counts),
            },
        }
        self.drain_events(now, env);
    }

    /// Timers that came due by `now`.
    pub fn handle_timeout(&mut self, now: Now, env: &mut dyn Env) {
        self.now = now.mono;
        self.now_unix = now.unix;
        self.layer.handle_timeout(now.mono);
        while let Some(&(at, chan)) = self.congest_timers.first() {
            if at > now.mono {
                break;
            }
            self.congest_timers.pop_first();
            if self.sessions.congest_at(chan) == Some(at) {
                self.auto_congest(chan);
            }
        }
        while let Some(&(at, chan)) = self.glare_timers.first() {
            if at > now.mono {
                break;
            }
            self.glare_timers.pop_first();
            self.glare_retry_due(now, chan, at);
        }
        while let Some(&(at, chan)) = self.session_timers.first() {
            if at > now.mono {
                break;
            }
            self.session_timers.pop_first();
            self.session_timer_due(now, chan, at);
        }
        while let Some(&(at, key)) = self.refer_timers.first() {
            if at > now.mono {
                break;
            }
            self.refer_timers.pop_first();
            self.refer_timer_due(now, key, at);
        }
        while let Some(&(at, key)) = self.sub_timers.first() {
            if at > now.mono {
                break;
            }
            self.sub_timers.pop_first();
            self.sub_timer_due(now, key, at);
        }
        if self.home.runs_clients() {
            self.client_timers(now.mono);
        }
        if self.next_housekeeping.is_some_and(|t| t <= now.mono) {
            self.next_housekeeping = Some(now.mono + HOUSEKEEPING);
            self.housekeeping(now, env);
        }
        self.drain_events(now, env);
    }

    /// Once a second: bindings that expired, and bridged calls without RTP.
    ///
    /// (No sweep for calls whose core channel is gone: every path by which
    /// the core removes a channel of ours calls its `hangup` first, through
    /// the same queue as the call's creation, so none can be missed; the
    /// sweep that looked for them asked the core about every call every
    /// second and found none in the benchmarks' hundreds of thousands of
    /// calls.)
    fn housekeeping(&mut self, now: Now, env: &mut dyn Env) {
        let gone = match self.home.runs_clients() {
            true => self.shared.registrar.lock().expire(now.unix),
            false => Vec::new(),
        };
        for peer in gone {
            self.event(
                "PeerStatus",
                vec![
                    ("Peer", format!("SIP/{peer}")),
                    ("PeerStatus", "Unregistered".into()),
                    ("Cause", "Expired".into()),
                ],
            );
            self.device_update(&peer);
        }
        self.check_rtp(now, env);
        if self.home.runs_clients() {
            self.shared.publications.expire(now.unix);
            for line in self.shared.lines.expire_seizures(now.unix) {
                self.line_changed(&line);
            }
        }
        // After a burst, the tables and the allocator give back what the
        // calls gone left (crate::session::memory).
        self.give_back_memory();
    }

    /// Something a peer's device state is made of changed (a call, a leg
    /// ringing or held, its registration, its qualify status): the state
    /// ([`crate::Shared::device_state`]) goes to the core when it differs
    /// from the one told last, so hints and their watchers (busy lamps)
    /// follow. (With several shards two changes may reach the core in the
    /// other order than they happened; the next change sets it right.)
    pub(crate) fn device_update(&mut self, peer: &str) {
        let state = self.shared.device_state(peer);
        if state != sirius_abi::DeviceState::Invalid && self.shared.in_use.note_told(peer, state) {
            self.host(HostAction::DeviceState(format!("SIP/{peer}"), state));
        }
    }

    /// `Supported:` as we send it: the option tags we implement, `timer`
    /// only where session timers are on (a peer with `session-timers =
    /// "refuse"`).
    pub(crate) fn supported(&self, timers: bool) -> String {
        let tags = self.caps.extensions.iter();
        let tags: Vec<&str> = tags
            .filter(|t| timers || *t != "timer")
            .map(String::as_str)
            .collect();
        tags.join(", ")
    }

    /// The time of the input being handled.
    pub(crate) fn clock(&self) -> Now {
        Now {
            mono: self.now,
            unix: self.now_unix,
        }
    }

    pub(crate) fn host(&mut self, action: HostAction) {
        self.out.push_back(Output::Host(action));
    }

    pub(crate) fn media(&mut self, action: MediaAction) {
        self.out.push_back(Output::Media(action));
    }

    pub(crate) fn event(&mut self, name: &'static str, fields: Vec<(&'static str, String)>) {
        self.host(HostAction::Event { name, fields });
    }

    /// A parsed message from either transport: validation, then the
    /// transaction layer.
    fn on_message(
        &mut self,
        now: Now,
        msg: Message,
        src: SocketAddr,
        transport: Transport,
        env: &mut dyn Env,
    ) {
        if msg.is_request() {
            if self.refused_for_lag(now, &msg, src, transport, env) {
                return;
            }
            if let Err(rej) = inspect_request(&msg, &self.caps) {
                if msg.method() != Some(&Method::Ack) {
                    log::debug!(
                        "refusing {} from {src}: {} {}",
                        msg.method().map_or("?", |m| m.as_str()),
                        rej.code,
                        rej.reason
                    );
                    let status = (rej.code, rej.reason.as_ref());
                    self.respond_stateless(&msg, src, transport, status, &rej.headers);
                }
                return;
            }
            // An OPTIONS outside a dialog (a qualify, a keep-alive, a
            // scanner) is answered statelessly (RFC 3261 §8.2.7; a
            // retransmission is answered again): no transaction lingers
            // 32 s for it, so a flood of them holds no memory (issue #16).
            if msg.method() == Some(&Method::Options)
                && msg.to_ref().is_none_or(|t| t.tag().is_none())
            {
                let server = self.shared.running().cfg.general.useragent.clone();
                let mut headers = vec![(HeaderName::Server, server)];
                headers.extend(self.options_headers());
                self.respond_stateless(&msg, src, transport, (200, "OK"), &headers);
                return;
            }
        } else if inspect_response(&msg).is_err() {
            log::debug!("dropping malformed response from {src}");
            return;
        }
        self.layer.on_message(now.mono, msg, src, transport);
    }

    /// What an answer to OPTIONS says we do.
    fn options_headers(&self) -> [(HeaderName, String); 4] {
        [
            (HeaderName::Allow, self.caps.allow()),
            (HeaderName::Accept, ACCEPT.into()),
            (HeaderName::Supported, self.supported(true)),
            (
                HeaderName::AllowEvents,
                crate::session::subscribe::PACKAGES.into(),
            ),
        ]
    }

    /// Admission on our own lag (issue #11, item 6): while the loop or its
    /// input queue runs later than `maxlag`, a new call (an INVITE outside
    /// a dialog that no transaction of ours knows) gets `503` with
    /// `Retry-After` statelessly, before a transaction, a peer lookup or
    /// authentication is spent on it: under overload the refusals are most
    /// of the traffic, and each costs the parse, the 503 and the ACK's
    /// parse, a small part of a call's work, so the calls let in keep the
    /// thread (goodput holds at twice the clean rate). The caller's ACK
    /// matches nothing and is dropped; a retransmitted INVITE is judged
    /// again.
    fn refused_for_lag(
        &mut self,
        now: Now,
        msg: &Message,
        src: SocketAddr,
        transport: Transport,
        env: &mut dyn Env,
    ) -> bool {
        let maxlag = self.shared.running().cfg.general.maxlag;
        if maxlag == 0
            || msg.method() != Some(&Method::Invite)
            || msg.to_ref().is_some_and(|t| t.tag().is_some())
        {
            return false;
        }
        let lag = env.loop_lag();
        if lag <= Duration::from_millis(u64::from(maxlag)) || self.layer.has_server(msg) {
            return false;
        }
        if self.first_refusal_this_second(now.mono) {
            log::warn!(
                "SIP event loop {} ms late (maxlag {maxlag} ms): refusing new calls with 503 (logged once a second)",
                lag.as_millis(),
            );
        }
        let retry = [(HeaderName::RetryAfter, RETRY_AFTER_SECS.to_string())];
        let status = (503, "Service Unavailable");
        self.respond_stateless(msg, src, transport, status, &retry);
        true
    }

    /// A final response to `req` outside any transaction, with a To tag of
    /// ours (for the caller's ACK) and `extra` headers.
    fn respond_stateless(
        &mut self,
        req: &Message,
        src: SocketAddr,
        transport: Transport,
        (code, reason): (u16, &str),
        extra: &[(HeaderName, String)],
    ) {
        let mut r = build::response(req, code, reason, Some(src));
        build::set_to_tag(&mut r, &self.tokens.token());
        for (n, v) in extra {
            r.push(n.clone(), v);
        }
        self.layer.send_stateless(src, transport, &r);
    }

    /// What the transaction layer has for its user.
    fn drain_events(&mut self, now: Now, env: &mut dyn Env) {
        while let Some(ev) = self.layer.poll_event() {
            match ev {
                Event::Request {
                    tx,
                    msg,
                    source,
                    transport,
                    cancels,
                } => self.on_request(now, env, tx, msg, source, transport, cancels),
                Event::Response { tx, msg } => self.on_client_response(now, tx, &msg),
                Event::Timeout { tx } => {
                    // Our 2xx never ACKed (Timer L): the call is dead (RFC 3261 §13.3.1.4).
                    if let Some(chan) = self.sessions.by_invite(tx) {
                        log::warn!(
                            "no ACK for the 200 OK of {}; hanging up",
                            self.sessions.name(chan)
                        );
                        self.hangup_call(now, chan, Cause::RECOVERY_ON_TIMER_EXPIRE);
                        self.host(HostAction::Hangup(chan, Cause::RECOVERY_ON_TIMER_EXPIRE));
                    } else {
                        self.on_client_timeout(now, tx)
                    }
                }
                Event::Ack { msg, .. } => self.on_ack(&msg),
            }
        }
    }

    /// Sends a request in a new client transaction owned by `owner`.
    pub(crate) fn send_client(
        &mut self,
        req: Message,
        dest: SocketAddr,
        transport: Transport,
        owner: impl ClientUsage,
        now: Instant,
    ) -> Option<TxId> {
        match self.layer.send_request(now, req, dest, transport) {
            Ok(tx) => {
                self.own(tx, owner);
                Some(tx)
            }
            Err(e) => {
                log::warn!("cannot send request to {dest}: {e}");
                None
            }
        }
    }

    /// Routes a new request: in-dialog ones to their session, the others by method.
    #[allow(clippy::too_many_arguments)]
    fn on_request(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        tx: TxId,
        msg: Message,
        source: SocketAddr,
        transport: Transport,
        cancels: Option<TxId>,
    ) {
        let method = msg.method().cloned().unwrap_or(Method::Ack);
        match (&method, self.dialogs.classify(&msg)) {
            (Method::Bye, Classified::InDialog(id)) => self.on_bye(now, env, tx, &msg, source, &id),
            (Method::Cancel, _) => self.on_cancel(now, tx, &msg, source, cancels),
            (_, Classified::InDialog(id)) => {
                self.on_in_dialog(now, env, tx, &msg, source, transport, &id)
            }
            (Method::Register, _) => self.on_register(now, tx, &msg, source, transport),
            // (One outside a dialog was answered statelessly already:
            // this is one naming a dialog we do not know.)
            (Method::Options, _) => {
                let headers = self.options_headers();
                self.respond(now, tx, &msg, source, (200, "OK"), &headers);
            }
            (Method::Invite, Classified::OutOfDialog) => {
                self.on_invite(now, env, tx, &msg, source, transport)
            }
            (Method::Refer, Classified::OutOfDialog) => {
                self.on_refer_out_of_dialog(now, env, tx, &msg, source, transport)
            }
            (Method::Subscribe, Classified::OutOfDialog) => {
                self.on_subscribe(now, env, tx, &msg, source, transport)
            }
            (Method::Publish, Classified::OutOfDialog) => {
                self.on_publish(now, tx, &msg, source, transport)
            }
            // Unknown dialogs, a BYE outside one, anything else left.
            _ => self.no_such_call(now, tx, &msg, source),
        }
    }
}

impl Endpoint {
    /// Live transactions (the metrics' `sirius_sip_transactions`).
    pub fn transaction_count(&self) -> usize {
        self.layer.len()
    }
}
