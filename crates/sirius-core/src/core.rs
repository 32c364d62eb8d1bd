//! [`Core`]: the one object that ties the scheduler, channel registry, channel
//! technologies, modules, logging and events together. Everything else gets an
//! `Arc<Core>`; plugins get a `Weak` through their `CoreServices`.

use crate::channels::ChannelRegistry;
use crate::config::{ModulesConfig, Paths, Settings};
use crate::events::EventBus;
use crate::loader::Module;
use crate::logging::LogHub;
use crate::sched::SchedThread;
use crate::translate;
use parking_lot::{Mutex, RwLock};
use sirius_abi::{Capabilities, Cause, ChannelId, ChannelTechArc, Indication, MediaKind, TechInfo};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// The version string `core show version` starts with.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `core show version`, Asterisk's layout.
pub fn version_line() -> String {
    format!(
        "Sirius {VERSION} built by {} @ {} on a {} running {} on {}",
        env!("SIRIUS_BUILD_USER"),
        env!("SIRIUS_BUILD_HOST"),
        std::env::consts::ARCH,
        env!("SIRIUS_BUILD_OS"),
        env!("SIRIUS_BUILD_DATE"),
    )
}

/// How the daemon should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Hang up everything and stop now.
    Now,
    /// Refuse new calls and stop when the last channel is gone.
    Gracefully,
}

/// A registered channel technology.
#[derive(Clone)]
pub struct TechEntry {
    /// Static facts.
    pub info: TechInfo,
    /// The object the core calls.
    pub tech: ChannelTechArc,
    /// The module that registered it.
    pub module: String,
}

/// Starts the dialplan on a channel. Implemented by the dialplan crate; the core
/// only knows that something can run a channel (Asterisk's `ast_pbx_start`).
pub trait PbxEngine: Send + Sync {
    /// Takes over `chan`, which is counted as a call from now on.
    fn start(&self, core: &Arc<Core>, chan: ChannelId) -> Result<(), Cause>;

    /// `dialplan show [context]`.
    fn show(&self, context: Option<&str>) -> Result<String, String>;

    /// `dialplan show [context]` for a script (`-rx --json`): the same
    /// contexts, extensions and steps as JSON text. Default: no JSON form.
    fn show_json(&self, context: Option<&str>) -> Result<String, String> {
        let _ = context;
        Err("'dialplan show' has no JSON form".into())
    }

    /// Whether `exten` (or a pattern matching it) exists in `context`: a
    /// transfer to a number the transferor's context lacks is refused before
    /// the transferee leaves its bridge.
    fn exists(&self, context: &str, exten: &str) -> bool;

    /// `dialplan reload`: all or nothing; on error the running dialplan stays.
    fn reload(&self) -> Result<String, String>;

    /// Runs one application on `chan` (an originated call), then hangs it up.
    fn run_app(
        &self,
        core: &Arc<Core>,
        chan: ChannelId,
        app: &str,
        data: &str,
    ) -> Result<(), Cause>;

    /// Waits, holding no thread, for the originated call `chan` to be
    /// answered (up to [`crate::originate::ANSWER_TIMEOUT`]), then hands
    /// the outcome to [`Core::originate_answered`].
    fn await_answer(
        &self,
        core: &Arc<Core>,
        chan: ChannelId,
        target: crate::originate::OriginateTarget,
    );

    /// The hints of the dialplan in force, by context then extension.
    /// Default: none.
    fn hints(&self) -> Vec<crate::hints::Hint> {
        Vec::new()
    }
}

/// The PBX core.
pub struct Core {
    /// Resolved directories.
    pub paths: Paths,
    /// `sirius.toml`.
    pub settings: Settings,
    /// `modules.toml`.
    pub modules_config: ModulesConfig,
    /// Boot time.
    pub started: Instant,
    /// Last `reload`.
    pub last_reload: Mutex<Instant>,
    /// The core scheduler thread (`sched_add` for plugins, core timers).
    pub sched: SchedThread,
    /// Live channels.
    pub channels: ChannelRegistry,
    /// Live bridges (`bridge show all`).
    pub bridges: crate::bridges::BridgeRegistry,
    /// Event bus (shared with the channel registry, which publishes
    /// `Newchannel` and `Newstate`).
    pub events: Arc<EventBus>,
    /// Logging.
    pub log: Arc<LogHub>,
    /// Device states pushed by plugins, and their subscribers.
    pub devstates: crate::devstate::DeviceStates,
    /// Who watches which hint (`Core::watch_hint`).
    pub(crate) hint_watches: crate::hints::HintWatches,
    /// Message-waiting counts per mailbox, and their watchers (`mwi.rs`).
    pub mwi: crate::mwi::Mailboxes,
    /// Call detail records (`cdr.rs`): `Master.csv`.
    pub cdr: crate::cdr::CdrEngine,
    /// Services the daemon runs beside the core (AMI), by name: the console
    /// commands that report on them find them here, without the core
    /// knowing their types ([`Core::addon`]).
    addons: RwLock<BTreeMap<&'static str, Arc<dyn std::any::Any + Send + Sync>>>,
    pub(crate) techs: RwLock<BTreeMap<String, TechEntry>>,
    /// Technologies whose plugin failed (lower-case type → module), until the
    /// module is unloaded: requests for them fail at once with
    /// REQUESTED_CHAN_UNAVAIL rather than NOSUCHDRIVER, which would claim the
    /// technology never existed.
    pub(crate) failed_techs: RwLock<BTreeMap<String, String>>,
    pub(crate) modules: Mutex<Vec<Module>>,
    pub(crate) pbx: RwLock<Option<Arc<dyn PbxEngine>>>,
    /// Ringing callees picked up by another phone (`Core::pickup`): the
    /// callee's id, the picker's. The Dial that rang the callee takes it.
    pub(crate) pickups: Mutex<std::collections::HashMap<ChannelId, ChannelId>>,
    refusing_calls: AtomicBool,
    shutdown: watch::Sender<Option<ShutdownMode>>,
    /// CPU load, sampled when `maxload` is set.
    load: Option<Arc<crate::load::LoadMonitor>>,
    /// When the last "refusing calls" line (maxcalls, maxload) was logged
    /// (seconds since start): once a second at most, not once per refused call.
    refusal_logged: std::sync::atomic::AtomicU64,
}

impl Core {
    /// Builds a core; modules are not loaded yet (see [`Core::autoload`]).
    pub fn new(
        paths: Paths,
        settings: Settings,
        modules_config: ModulesConfig,
        log: Arc<LogHub>,
    ) -> std::io::Result<Arc<Core>> {
        let now = Instant::now();
        let load = (settings.general.maxload > 0.0).then(crate::load::LoadMonitor::start);
        let cdr = crate::cdr::CdrEngine::start(&paths.config_dir, &paths.log_dir);
        let events = Arc::new(EventBus::default());
        Ok(Arc::new(Core {
            paths,
            settings,
            modules_config,
            started: now,
            last_reload: Mutex::new(now),
            sched: SchedThread::start("sirius-sched")?,
            channels: ChannelRegistry::with_events(events.clone()),
            bridges: crate::bridges::BridgeRegistry::new(),
            events,
            log,
            devstates: crate::devstate::DeviceStates::new(),
            hint_watches: crate::hints::HintWatches::default(),
            mwi: crate::mwi::Mailboxes::default(),
            cdr,
            addons: RwLock::new(BTreeMap::new()),
            techs: RwLock::new(BTreeMap::new()),
            failed_techs: RwLock::new(BTreeMap::new()),
            modules: Mutex::new(Vec::new()),
            pbx: RwLock::new(None),
            pickups: Mutex::new(std::collections::HashMap::new()),
            refusing_calls: AtomicBool::new(false),
            shutdown: watch::channel(None).0,
            load,
            refusal_logged: std::sync::atomic::AtomicU64::new(u64::MAX),
        }))
    }

    /// Registers a service running beside the core under `name` (`manager`).
    pub fn set_addon(&self, name: &'static str, addon: Arc<dyn std::any::Any + Send + Sync>) {
        self.addons.write().insert(name, addon);
    }

    /// The service registered under `name`, if it is a `T`.
    pub fn addon<T: std::any::Any + Send + Sync>(&self, name: &str) -> Option<Arc<T>> {
        let a = self.addons.read().get(name).cloned()?;
        a.downcast::<T>().ok()
    }

    /// Installs the dialplan engine.
    pub fn set_pbx_engine(&self, engine: Arc<dyn PbxEngine>) {
        *self.pbx.write() = Some(engine);
    }

    /// The dialplan engine, if one is installed.
    pub fn pbx_engine(&self) -> Option<Arc<dyn PbxEngine>> {
        self.pbx.read().clone()
    }

    /// Registered channel technologies, by type.
    pub fn channel_types(&self) -> Vec<TechEntry> {
        self.techs.read().values().cloned().collect()
    }

    /// One technology by type, case-insensitively.
    pub fn tech(&self, tech_type: &str) -> Option<TechEntry> {
        self.techs
            .read()
            .get(&tech_type.to_ascii_lowercase())
            .cloned()
    }

    /// Whether new calls are being refused (`core stop gracefully`).
    pub fn refusing_calls(&self) -> bool {
        self.refusing_calls.load(Ordering::Relaxed)
    }

    /// `ast_request`: asks technology `tech_type` for an outbound channel to `dest`.
    ///
    /// Refused with NOSUCHDRIVER (66) for an unknown technology and with
    /// BEARERCAPABILITY_NOTAVAIL (58) when the caller's audio codecs neither match
    /// nor translate to any the technology carries, before the plugin is asked.
    pub fn request(
        &self,
        tech_type: &str,
        caps: Capabilities,
        dest: &str,
        requestor: Option<ChannelId>,
    ) -> Result<ChannelId, Cause> {
        if self.refusing_calls() {
            return Err(Cause::CONGESTION);
        }
        let Some(entry) = self.tech(tech_type) else {
            if let Some(module) = self.failed_tech(tech_type) {
                log::warn!("Channel type '{tech_type}' is unavailable: {module} failed");
                return Err(Cause::REQUESTED_CHAN_UNAVAIL);
            }
            log::warn!("No channel type registered for '{tech_type}'");
            return Err(Cause::NOSUCHDRIVER);
        };
        let native = entry.info.capabilities;
        if !translate::translatable(caps, native) {
            log::warn!(
                "No translator path exists for channel type {} (native {}) to {}",
                entry.info.tech_type,
                native.of_kind(MediaKind::Audio),
                caps.of_kind(MediaKind::Audio)
            );
            return Err(Cause::BEARERCAPABILITY_NOTAVAIL);
        }
        let chan = entry
            .tech
            .request_call(caps, dest.into(), requestor.into())
            .into_result()?;
        if let Some(r) = requestor {
            // The call's Linkedid, for the callee's events (only when
            // someone listens: it costs a string per leg).
            let linkedid: Box<str> = if self.events.wanted() {
                self.channels.linkedid_of(r).unwrap_or_default().into()
            } else {
                Box::default()
            };
            let mut name = String::new();
            self.channels.update(chan, |c| {
                c.dialed_by = Some(r);
                c.linkedid = linkedid;
                name.clone_from(&c.name);
            });
            // The caller's record names the latest channel it dialled,
            // from the application that dials (`crate::cdr`).
            self.channels.update(r, |c| {
                let crate::channels::Channel {
                    cdr,
                    context,
                    exten,
                    application,
                    app_data,
                    ..
                } = c;
                cdr.dialing(&name, (context, exten), (application, app_data));
            });
        }
        Ok(chan)
    }

    pub(crate) fn tech_of(&self, chan: ChannelId) -> Result<TechEntry, Cause> {
        let c = self
            .channels
            .get(chan)
            .ok_or(Cause::INVALID_CALL_REFERENCE)?;
        self.tech(&c.tech).ok_or_else(|| {
            if self.failed_tech(&c.tech).is_some() {
                Cause::REQUESTED_CHAN_UNAVAIL
            } else {
                Cause::NOSUCHDRIVER
            }
        })
    }

    /// The module whose failure took technology `tech_type` away, if that is
    /// why it is missing.
    pub fn failed_tech(&self, tech_type: &str) -> Option<String> {
        self.failed_techs
            .read()
            .get(&tech_type.to_ascii_lowercase())
            .cloned()
    }

    /// A plugin reported that it cannot go on (`CoreServices::plugin_failed`):
    /// its runtime or monitor thread died, so nothing will answer for its
    /// channels. Its technology is unregistered (requests fail at once with
    /// REQUESTED_CHAN_UNAVAIL), its channels are freed with that cause (which
    /// hangs up the legs they were bridged to), its devices become
    /// unavailable, and `module show` says Failed until it is unloaded.
    pub fn plugin_failed(&self, module: &str, reason: &str) {
        log::error!("{module}: plugin failed: {reason}");
        let gone: Vec<String> = {
            let mut techs = self.techs.write();
            let keys: Vec<String> = techs
                .iter()
                .filter(|(_, e)| e.module == module)
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter()
                .filter_map(|k| techs.remove(k).map(|e| e.info.tech_type.to_string()))
                .collect()
        };
        for tech in &gone {
            self.failed_techs
                .write()
                .insert(tech.to_ascii_lowercase(), module.to_string());
            log::error!("{module}: channel type '{tech}' unregistered; calls to it are refused");
        }
        self.mark_module_failed(module, reason);
        for tech in &gone {
            for c in self.channels.snapshot() {
                if c.tech.eq_ignore_ascii_case(tech) {
                    self.channel_gone(c.id, Cause::REQUESTED_CHAN_UNAVAIL);
                }
            }
            self.devstates.tech_gone(tech);
        }
    }

    /// `ast_call`: places the call on a requested channel.
    pub fn call(&self, chan: ChannelId, dest: &str, timeout_ms: u32) -> Result<(), Cause> {
        self.tech_of(chan)?
            .tech
            .call(chan, dest.into(), timeout_ms)
            .into_result()
    }

    /// Answers a channel (`ast_answer`): the technology answers, the channel is Up.
    pub fn answer(&self, chan: ChannelId) -> Result<(), Cause> {
        self.tech_of(chan)?.tech.answer(chan).into_result()?;
        self.channels.set_state(chan, sirius_abi::ChannelState::Up);
        Ok(())
    }

    /// Sends an indication.
    pub fn indicate(&self, chan: ChannelId, ind: Indication) -> Result<(), Cause> {
        self.tech_of(chan)?
            .tech
            .indicate(chan, ind.to_ne())
            .into_result()
    }

    /// Core-initiated hangup (`channel request hangup`, dialplan `Hangup()`): the
    /// technology ends the call on the wire, the channel is removed.
    pub fn hangup(&self, chan: ChannelId, cause: Cause) -> Result<(), Cause> {
        let entry = self.tech_of(chan)?;
        let r = entry.tech.hangup(chan, cause).into_result();
        self.channel_gone(chan, cause);
        r
    }

    /// Bridges two answered channels (Asterisk's basic bridge): a hangup on either
    /// ends both. When both legs are one technology's it relays the media itself
    /// (native bridge); otherwise media frames pass through `queue_frame`.
    /// Returns the bridge technology used, for the log and `bridge show`.
    ///
    /// Either leg may hang up while the bridge is being made (a caller's BYE
    /// right after its ACK). Each leg learns its partner before anything
    /// else: a leg that goes after that takes the other with it
    /// ([`Core::channel_gone`]); a leg already gone when its partner is
    /// recorded is noticed here, and the other leg is hung up with the
    /// same cause. (Found under load: an answered callee left up, with no
    /// caller, once in a few thousand calls.)
    pub fn bridge(&self, a: ChannelId, b: ChannelId) -> Result<&'static str, Cause> {
        let gone = |x: ChannelId, other: ChannelId| {
            let cause = self
                .channels
                .ended_cause(x)
                .unwrap_or(Cause::NORMAL_CLEARING);
            let _ = self.hangup(other, cause);
            Err(cause)
        };
        // Each call's record names its partner and keeps its marks as they
        // are now (`crate::cdr`), in the same updates as the partners.
        let (mut name_a, mut name_b) = (String::new(), String::new());
        if !self.channels.update(a, |c| {
            c.bridged_to = Some(b);
            name_a.clone_from(&c.name);
        }) {
            return gone(a, b);
        }
        if !self.channels.update(b, |c| {
            c.bridged_to = Some(a);
            c.cdr.bridged(&name_a);
            name_b.clone_from(&c.name);
        }) {
            return gone(b, a);
        }
        self.channels.update(a, |c| c.cdr.bridged(&name_b));
        let (ta, tb) = (self.tech_of(a)?, self.tech_of(b)?);
        // Early media between these two legs becomes the bridge (the
        // technology keeps its relay); one with a third leg ends here.
        let mut early = None;
        for (x, tx) in [(a, &ta), (b, &tb)] {
            match self.take_early_media(x) {
                Some(l) if l == (a, b) || l == (b, a) => early = Some(l),
                Some(l) => Self::tell_unbridged(tx, l),
                None => {}
            }
        }
        let native = ta.module == tb.module && ta.tech.native_bridge(a, b).into_result().is_ok();
        let technology = if native {
            crate::bridges::NATIVE_RTP
        } else {
            if let Some(l) = early {
                Self::tell_unbridged(&ta, l);
            }
            "simple_bridge"
        };
        let id = self.bridges.add(a, b, technology);
        if self.events.wanted() {
            for (n, x) in [(1, a), (2, b)] {
                if let Some(c) = self.channels.get(x) {
                    let linkedid = self.channels.linkedid(&c);
                    self.events.publish(crate::bridges::bridge_event(
                        "BridgeEnter",
                        (&id, technology, n),
                        &c,
                        &linkedid,
                    ));
                }
            }
        }
        Ok(technology)
    }

    /// Tells `tech` that the native bridge or early-media link it made
    /// between `link`'s legs is over (`ChannelTech::native_unbridge`). A
    /// refusal changes nothing here: the core's records are already right.
    pub(crate) fn tell_unbridged(tech: &TechEntry, (a, b): (ChannelId, ChannelId)) {
        if let Err(c) = tech.tech.native_unbridge(a, b).into_result() {
            log::debug!(
                "{}: native_unbridge({a}, {b}): cause {}",
                tech.info.tech_type,
                c.0
            );
        }
    }

    /// Ends `chan`'s early-media link, if it is in one: both legs forget it.
    /// Returns the link (caller, callee).
    fn take_early_media(&self, chan: ChannelId) -> Option<(ChannelId, ChannelId)> {
        let mut link = None;
        self.channels.update(chan, |c| link = c.early_media.take());
        let (a, b) = link?;
        self.forget_early_media(if a == chan { b } else { a }, (a, b));
        link
    }

    /// `chan` forgets `link` (its partner ended it).
    fn forget_early_media(&self, chan: ChannelId, link: (ChannelId, ChannelId)) {
        self.channels.update(chan, |c| {
            if c.early_media == Some(link) {
                c.early_media = None;
            }
        });
    }

    /// The generic bridge's frame path (legs of different technologies, or a
    /// technology that cannot bridge natively): a frame read on one leg is
    /// written to the leg it is bridged to, its G.711 voice translated
    /// (µ-law ↔ A-law) when that leg does not carry the frame's law but
    /// carries the other one. Other frames pass as they are.
    pub fn bridge_frame(&self, from: ChannelId, mut frame: sirius_abi::Frame) {
        // A far end's progress (AST_CONTROL_PROGRESS) is recorded on its
        // channel, waking whoever watches it (Dial passes it on).
        if frame.kind == sirius_abi::FrameKind::Control
            && frame.subclass == Indication::Progress as u32
        {
            self.channels.update(from, |c| c.progress = true);
        }
        let Some(peer) = self.channels.get(from).and_then(|c| c.bridged_to) else {
            return;
        };
        let Some(p) = self.channels.get(peer) else {
            return;
        };
        if frame.kind == sirius_abi::FrameKind::Voice {
            if let Some(to) = translate::g711_target(frame.codec, |c| p.codecs.contains(&c)) {
                translate::transcode_g711(&mut frame.payload, frame.codec, to);
                frame.codec = to;
            }
        }
        if let Some(tech) = self.tech(&p.tech) {
            let _ = tech.tech.write_frame(peer, frame);
        }
    }

    /// Early media: while `callee` rings with progress (SIP 183), its media
    /// reaches `caller` and back, natively when both legs are of one
    /// technology. Unlike [`Core::bridge`] it ties neither leg's fate to
    /// the other's: a callee that then fails leaves the caller to the
    /// dialplan; the answer later makes the real bridge. Legs of different
    /// technologies get no early media (no frame path before the answer).
    ///
    /// The link is recorded on both legs, so that when it ends without
    /// becoming the bridge (a leg goes: the callee fails, or is hung up
    /// because another answered; or Dial gives up) the technology is told
    /// (`native_unbridge`), from [`Core::channel_gone`] or [`Core::bridge`].
    /// Dial needs no part in it. A link either leg was in before ends here.
    pub fn early_media(&self, caller: ChannelId, callee: ChannelId) -> Result<(), Cause> {
        let (ta, tb) = (self.tech_of(caller)?, self.tech_of(callee)?);
        if ta.module != tb.module {
            return Err(Cause::FACILITY_NOT_IMPLEMENTED);
        }
        for (x, tx) in [(caller, &ta), (callee, &tb)] {
            if let Some(l) = self.take_early_media(x) {
                Self::tell_unbridged(tx, l);
            }
        }
        ta.tech.native_bridge(caller, callee).into_result()?;
        // Recorded once made, so that the notice never precedes the bridge;
        // a leg that went meanwhile (its `channel_gone` saw no link) ends it now.
        let link = Some((caller, callee));
        let recorded = self.channels.update(caller, |c| c.early_media = link)
            && self.channels.update(callee, |c| c.early_media = link);
        if !recorded {
            self.forget_early_media(caller, (caller, callee));
            Self::tell_unbridged(&ta, (caller, callee));
        }
        Ok(())
    }

    /// `Echo()`: the channel's media comes back to it. Only technologies that can
    /// do it natively (a channel "bridged" with itself) support it today.
    pub fn echo(&self, chan: ChannelId) -> Result<(), Cause> {
        self.tech_of(chan)?
            .tech
            .native_bridge(chan, chan)
            .into_result()
    }

    /// A channel ended (either side): frees it and hangs up the leg it was
    /// bridged to. A native bridge or an early-media link it was in ends
    /// with it: its technology is told (`native_unbridge`) before the other
    /// leg is hung up, or while that leg lives on (early media).
    pub fn channel_gone(&self, chan: ChannelId, cause: Cause) {
        let Some(c) = self.channels.remove(chan, cause) else {
            return;
        };
        // A callee that never answered tells its caller's record why.
        if let (Some(caller), None) = (c.dialed_by, c.answered) {
            self.channels.update(caller, |a| a.cdr.dial_failed(c.cause));
        }
        self.cdr.channel_ended(&c);
        let ended = self.bridges.remove_channel(chan);
        sirius_abi::verbose!(
            3,
            "    -- Hungup '{}' ({}, {})",
            c.name,
            c.cause.name(),
            c.cause.0
        );
        if self.events.wanted() {
            self.bridge_left(&c, &ended);
            if let Some(mut e) = self.channels.event("Hangup", &c) {
                e.push("Cause", c.cause.0.to_string());
                e.push("Cause-txt", c.cause.description());
                self.events.publish(e);
            }
        }
        if let Some((a, b)) = c.early_media {
            self.forget_early_media(if a == chan { b } else { a }, (a, b));
        }
        let native = ended
            .iter()
            .filter(|b| b.technology == crate::bridges::NATIVE_RTP)
            .filter_map(|b| match b.channels[..] {
                [x, y] => Some((x, y)),
                _ => None,
            });
        let mut links = c.early_media.into_iter().chain(native).peekable();
        // The technology is looked up only when there is something to tell
        // (most hangups end no native link); one that failed is unregistered
        // by now: nobody to tell.
        if links.peek().is_some() {
            if let Some(tech) = self.tech(&c.tech) {
                links.for_each(|link| Self::tell_unbridged(&tech, link));
            }
        }
        if let Some(peer) = c.bridged_to {
            let _ = self.hangup(peer, c.cause);
        }
    }

    /// `BridgeLeave` for each leg of the bridges `gone` ended by leaving:
    /// the leg that went first (its partner's hangup follows).
    fn bridge_left(&self, gone: &crate::channels::Channel, ended: &[crate::bridges::Bridge]) {
        for b in ended {
            let mut left = b.channels.len();
            for x in &b.channels {
                let c = if *x == gone.id {
                    Some(gone.clone())
                } else {
                    self.channels.get(*x)
                };
                if let Some(c) = c {
                    left -= 1;
                    let linkedid = self.channels.linkedid(&c);
                    self.events.publish(crate::bridges::bridge_event(
                        "BridgeLeave",
                        (&b.id, b.technology, left),
                        &c,
                        &linkedid,
                    ));
                }
            }
        }
    }

    /// `ast_pbx_start`: hands an inbound channel to the dialplan.
    pub fn pbx_start(self: &Arc<Self>, chan: ChannelId) -> Result<(), Cause> {
        if self.refusing_calls() {
            return Err(Cause::CONGESTION);
        }
        let max = self.settings.general.maxcalls as usize;
        if max > 0 && self.channels.active_calls() >= max {
            if self.first_refusal_this_second() {
                log::warn!("Maximum call limit of {max} calls exceeded by '{chan}'! (refusing new calls; logged once a second)");
            }
            return Err(Cause::CONGESTION);
        }
        if let Some(load) = &self.load {
            let (busy, maxload) = (load.busy(), self.settings.general.maxload);
            if busy > maxload {
                if self.first_refusal_this_second() {
                    log::warn!(
                        "Maximum load limit of {maxload:.2} exceeded by new call (Sirius uses {busy:.2} of the CPUs): refusing calls"
                    );
                }
                return Err(Cause::CONGESTION);
            }
        }
        let engine = self.pbx.read().clone();
        let Some(engine) = engine else {
            let name = self
                .channels
                .get(chan)
                .map_or_else(|| chan.to_string(), |c| c.name);
            log::warn!("No dialplan is loaded: cannot start a PBX on '{name}'");
            return Err(Cause::NO_ROUTE_DESTINATION);
        };
        // Marked before the engine starts: its thread may finish (and free the
        // channel) before `start` returns. A refused call (no such extension)
        // is unmarked: it never ran a PBX.
        if !self.channels.start_pbx(chan) {
            return Err(Cause::INVALID_CALL_REFERENCE);
        }
        engine
            .start(self, chan)
            .inspect_err(|_| self.channels.unstart_pbx(chan))
    }

    /// Whether this is the first call refused for load in the current second:
    /// under overload thousands are refused a second, and one log line per
    /// refusal would add to the load it reports.
    pub(crate) fn first_refusal_this_second(&self) -> bool {
        let sec = self.started.elapsed().as_secs();
        self.refusal_logged.swap(sec, Ordering::Relaxed) != sec
    }

    /// Runs one application on an answered channel through the dialplan
    /// engine (`channel originate … application`).
    pub fn pbx_run_app(
        self: &Arc<Self>,
        chan: ChannelId,
        app: &str,
        data: &str,
    ) -> Result<(), Cause> {
        let engine = self.pbx.read().clone().ok_or(Cause::NO_ROUTE_DESTINATION)?;
        if !self.channels.start_pbx(chan) {
            return Err(Cause::INVALID_CALL_REFERENCE);
        }
        engine
            .run_app(self, chan, app, data)
            .inspect_err(|_| self.channels.unstart_pbx(chan))
    }

    /// Asks the daemon to stop. `Gracefully` refuses new calls at once and stops
    /// when the last channel is gone.
    pub fn request_shutdown(&self, mode: ShutdownMode) {
        self.refusing_calls.store(true, Ordering::Relaxed);
        self.shutdown.send_replace(Some(mode));
    }

    /// Waits for a shutdown request.
    pub fn shutdown_requested(&self) -> watch::Receiver<Option<ShutdownMode>> {
        self.shutdown.subscribe()
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
