//! The plugin side of the boundary: what a channel plugin links into its cdylib.
//!
//! A plugin implements two plain Rust traits, [`PluginImpl`] and optionally
//! [`ChannelDriver`], and exports itself with [`crate::export_plugin!`]. This module
//! turns those into the FFI objects the core calls, and makes three guarantees the
//! plugin author would otherwise have to remember everywhere:
//!
//! * **No panic crosses the boundary.** An unwinding panic out of an `extern "C"`
//!   function aborts the process; every entry point here runs under `catch_unwind`
//!   and turns a panic into an error carrying [`Cause::FAILURE`] (or a load error).
//! * **Logging reaches the host.** The plugin has its own copy of the `log` crate;
//!   a forwarding logger sends every record to the host's logger, and the host
//!   pushes its level changes back (`core set debug` works inside plugins).
//! * **Panics are logged, not printed**: the plugin's own panic hook forwards the
//!   message and location to the host log.

use crate::services::{CoreServicesArc, LogLevel, SchedCallback, SchedCallback_TO};
use crate::tech::{ChannelTech, ChannelTechArc, ChannelTech_TO};
use crate::{
    Capabilities, Cause, ChannelId, ChannelInfo, ChannelSpec, ChannelState, Codec, CommandSpec,
    DeviceState, DeviceState_NE, Frame, Indication, Indication_NE, LoadError, Plugin, PluginArc,
    Plugin_TO, TechInfo,
};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, RBox, ROption, RResult, RStr, RString, RVec, Tuple2};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, RwLock};

/// A channel technology, in plain Rust. Every method is called from a core thread
/// and must return quickly; long work goes to the plugin's own runtime.
pub trait ChannelDriver: Send + Sync + 'static {
    /// Type, description, capabilities.
    fn info(&self) -> TechInfo;
    /// See [`ChannelTech::request_call`].
    fn request_call(
        &self,
        caps: Capabilities,
        dest: &str,
        requestor: Option<ChannelId>,
    ) -> Result<ChannelId, Cause>;
    /// See [`ChannelTech::call`].
    fn call(&self, chan: ChannelId, dest: &str, timeout_ms: u32) -> Result<(), Cause>;
    /// See [`ChannelTech::answer`].
    fn answer(&self, chan: ChannelId) -> Result<(), Cause>;
    /// See [`ChannelTech::hangup`].
    fn hangup(&self, chan: ChannelId, cause: Cause) -> Result<(), Cause>;
    /// See [`ChannelTech::indicate`]. Technologies without in-band signalling refuse.
    fn indicate(&self, _chan: ChannelId, _indication: Indication) -> Result<(), Cause> {
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    }
    /// See [`ChannelTech::write_frame`].
    fn write_frame(&self, _chan: ChannelId, _frame: Frame) -> Result<(), Cause> {
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    }
    /// See [`ChannelTech::send_digit`].
    fn send_digit(&self, _chan: ChannelId, _digit: char, _duration_ms: u32) -> Result<(), Cause> {
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    }
    /// See [`ChannelTech::device_state`].
    fn device_state(&self, _resource: &str) -> DeviceState {
        DeviceState::Unknown
    }
    /// See [`ChannelTech::native_bridge`]. Technologies without one refuse.
    fn native_bridge(&self, _a: ChannelId, _b: ChannelId) -> Result<(), Cause> {
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    }
    /// See [`ChannelTech::native_unbridge`]. Technologies without a native
    /// bridge have nothing to stop.
    fn native_unbridge(&self, _a: ChannelId, _b: ChannelId) -> Result<(), Cause> {
        Ok(())
    }
    /// See [`ChannelTech::transfer`]. Technologies without one refuse.
    fn transfer(&self, _chan: ChannelId, _dest: &str) -> Result<(), Cause> {
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    }
}

/// A plugin instance, in plain Rust.
pub trait PluginImpl: Send + Sync + 'static {
    /// The channel technology, if the plugin provides one. Called once after load.
    fn channel_driver(&self) -> Option<Arc<dyn ChannelDriver>> {
        None
    }
    /// Console commands, as a table.
    fn commands(&self) -> Vec<CommandSpec> {
        Vec::new()
    }
    /// Runs a command from [`PluginImpl::commands`]; `args` is the whole line in words.
    fn run_command(&self, args: &[String]) -> Result<String, String> {
        Err(format!("No such command '{}'", args.join(" ")))
    }
    /// Completion candidates for word `pos` of `args`.
    fn complete(&self, _args: &[String], _pos: usize) -> Vec<String> {
        Vec::new()
    }
    /// Re-reads configuration; returns a line for the console.
    fn reload(&self) -> Result<String, String>;
    /// Graceful stop; see [`Plugin::unload`].
    fn unload(&self, force: bool) -> Result<(), String>;
    /// Calls in progress.
    fn use_count(&self) -> u32 {
        0
    }

    /// Metrics for the Prometheus endpoint, gathered at each scrape
    /// (read counters; never block on a call's work).
    fn metrics(&self) -> Vec<crate::metrics::Metric> {
        Vec::new()
    }

    /// A `show` command's rows and fields as JSON text (`-rx --json`).
    fn run_command_json(&self, args: &[String]) -> Result<String, String> {
        Err(format!("'{}' has no JSON form", args.join(" ")))
    }
}

/// The host's services with a Rust-friendly face. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    services: CoreServicesArc,
}

impl Host {
    /// Wraps the raw services object (done for you by [`load_plugin`]).
    pub fn new(services: CoreServicesArc) -> Host {
        Host { services }
    }

    /// Schedules `f` on the core scheduler: return 0 to stop, N to run again in N ms.
    /// A panic in `f` is logged and stops the timer.
    pub fn sched_add<F>(&self, delay_ms: u32, f: F) -> u64
    where
        F: FnMut() -> u32 + Send + 'static,
    {
        let cb = SchedCallback_TO::from_value(ClosureCallback(f), TD_Opaque);
        self.services.sched_add(delay_ms, cb)
    }

    /// Cancels a scheduled callback.
    pub fn sched_del(&self, id: u64) -> bool {
        self.services.sched_del(id)
    }

    /// Allocates a channel in the core.
    pub fn channel_alloc(&self, spec: ChannelSpec) -> Result<ChannelInfo, Cause> {
        self.services.channel_alloc(spec).into_result()
    }

    /// Records a state change.
    pub fn channel_set_state(&self, id: ChannelId, state: ChannelState) {
        self.services.channel_set_state(id, state)
    }

    /// Records negotiated codecs.
    pub fn channel_set_codecs(&self, id: ChannelId, codecs: &[Codec]) {
        self.services
            .channel_set_codecs(id, codecs.iter().copied().collect())
    }

    /// A channel's caller ID as (number, name).
    pub fn channel_caller_id(&self, id: ChannelId) -> Option<(String, String)> {
        self.services
            .channel_caller_id(id)
            .into_option()
            .map(|t| (t.0.into_string(), t.1.into_string()))
    }

    /// The far end hung up.
    pub fn channel_hangup(&self, id: ChannelId, cause: Cause) {
        self.services.channel_hangup(id, cause)
    }

    /// Queues a frame for the core.
    pub fn queue_frame(&self, id: ChannelId, frame: Frame) {
        self.services.queue_frame(id, frame)
    }

    /// Starts the dialplan on an inbound channel.
    pub fn pbx_start(&self, id: ChannelId) -> Result<(), Cause> {
        self.services.pbx_start(id).into_result()
    }

    /// Publishes an event.
    pub fn post_event(&self, name: &str, fields: &[(&str, String)]) {
        let fields = fields
            .iter()
            .map(|(k, v)| Tuple2(RString::from(*k), RString::from(v.as_str())))
            .collect();
        self.services.post_event(RStr::from_str(name), fields)
    }

    /// The configuration directory.
    pub fn config_dir(&self) -> std::path::PathBuf {
        self.services.config_dir().into_string().into()
    }

    /// The plugin's persistent data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.services.data_dir().into_string().into()
    }

    /// Whether the core can translate audio between the two sets.
    pub fn translatable(&self, from: Capabilities, to: Capabilities) -> bool {
        self.services.translatable(from, to)
    }

    /// Tells the core this plugin cannot go on (see [`CoreServices::plugin_failed`]):
    /// its technology is unregistered and calls to it fail at once.
    ///
    /// [`CoreServices::plugin_failed`]: crate::CoreServices::plugin_failed
    pub fn plugin_failed(&self, reason: &str) {
        self.services.plugin_failed(reason.into())
    }

    /// Pushes a device's new state to the core (`device` is `Tech/resource`).
    pub fn device_state_changed(&self, device: &str, state: DeviceState) {
        self.services
            .device_state_changed(RStr::from_str(device), state.to_ne())
    }

    /// Blind transfer of `transferor`'s bridge partner to `exten@context`,
    /// `vars` set on it first (see [`CoreServices::channel_blind_transfer`]);
    /// the transferee.
    ///
    /// [`CoreServices::channel_blind_transfer`]: crate::CoreServices::channel_blind_transfer
    pub fn channel_blind_transfer(
        &self,
        transferor: ChannelId,
        context: &str,
        exten: &str,
        vars: &[(&str, String)],
    ) -> Result<ChannelId, Cause> {
        let vars = vars
            .iter()
            .map(|(k, v)| Tuple2(RString::from(*k), RString::from(v.as_str())))
            .collect();
        self.services
            .channel_blind_transfer(
                transferor,
                RStr::from_str(context),
                RStr::from_str(exten),
                vars,
            )
            .into_result()
    }

    /// Attended transfer of `t1`'s partner to `t2`'s (see
    /// [`CoreServices::channel_attended_transfer`]): (transferee, target).
    ///
    /// [`CoreServices::channel_attended_transfer`]: crate::CoreServices::channel_attended_transfer
    pub fn channel_attended_transfer(
        &self,
        t1: ChannelId,
        t2: ChannelId,
    ) -> Result<(ChannelId, ChannelId), Cause> {
        self.services
            .channel_attended_transfer(t1, t2)
            .into_result()
            .map(|Tuple2(a, c)| (a, c))
    }

    /// The outcome of a [`ChannelTech::transfer`] the technology made
    /// (see [`CoreServices::channel_transfer_result`]).
    ///
    /// [`CoreServices::channel_transfer_result`]: crate::CoreServices::channel_transfer_result
    pub fn channel_transfer_result(&self, id: ChannelId, result: Result<(), Cause>) {
        self.services.channel_transfer_result(id, result.into())
    }

    /// Call pickup: `picker` answered in place of `ringing` (see
    /// [`CoreServices::channel_pickup`]).
    ///
    /// [`CoreServices::channel_pickup`]: crate::CoreServices::channel_pickup
    pub fn channel_pickup(&self, ringing: ChannelId, picker: ChannelId) -> Result<(), Cause> {
        self.services.channel_pickup(ringing, picker).into_result()
    }

    /// `new` replaces `old` in its bridge (see [`CoreServices::channel_replace`]).
    ///
    /// [`CoreServices::channel_replace`]: crate::CoreServices::channel_replace
    pub fn channel_replace(&self, old: ChannelId, new: ChannelId) -> Result<(), Cause> {
        self.services.channel_replace(old, new).into_result()
    }

    /// A channel variable's value.
    pub fn channel_get_var(&self, id: ChannelId, name: &str) -> Option<String> {
        self.services
            .channel_get_var(id, RStr::from_str(name))
            .into_option()
            .map(RString::into_string)
    }

    /// Sets a channel variable.
    pub fn channel_set_var(&self, id: ChannelId, name: &str, value: &str) {
        self.services
            .channel_set_var(id, RStr::from_str(name), RStr::from_str(value))
    }

    /// This thread starts a turn of its event loop (see
    /// [`CoreServices::turn_started`]): the core keeps the work it raises
    /// for [`Host::turn_ended`].
    ///
    /// [`CoreServices::turn_started`]: crate::CoreServices::turn_started
    pub fn turn_started(&self) {
        self.services.turn_started()
    }

    /// Ends the turn: runs on this thread what the core kept for it. Call it
    /// holding none of the plugin's locks.
    pub fn turn_ended(&self) {
        self.services.turn_ended()
    }

    /// Watches the hint of `exten@context` (see [`CoreServices::hint_watch`]):
    /// `f` gets each new state (`AST_EXTENSION_*` bits). The watch's id and
    /// the state now; `None` without such a hint.
    ///
    /// [`CoreServices::hint_watch`]: crate::CoreServices::hint_watch
    pub fn hint_watch<F>(&self, context: &str, exten: &str, f: F) -> Option<(u64, i32)>
    where
        F: FnMut(i32) + Send + 'static,
    {
        let cb = crate::services::HintCallback_TO::from_value(HintClosure(f), TD_Opaque);
        self.services
            .hint_watch(RStr::from_str(context), RStr::from_str(exten), cb)
            .into_option()
            .map(|t| (t.0, t.1))
    }

    /// Ends a hint watch.
    pub fn hint_unwatch(&self, id: u64) {
        self.services.hint_unwatch(id)
    }

    /// Watches mailboxes (see [`CoreServices::mwi_watch`]): `f` gets their
    /// summed counts (new, old) each time the sum changes. The watch's id
    /// and the counts now; `None` when a name is not a mailbox.
    ///
    /// [`CoreServices::mwi_watch`]: crate::CoreServices::mwi_watch
    pub fn mwi_watch<F>(&self, mailboxes: &str, f: F) -> Option<(u64, u32, u32)>
    where
        F: FnMut(u32, u32) + Send + 'static,
    {
        let cb = crate::services::MwiCallback_TO::from_value(MwiClosure(f), TD_Opaque);
        self.services
            .mwi_watch(RStr::from_str(mailboxes), cb)
            .into_option()
            .map(|t| (t.0, t.1, t.2))
    }

    /// Ends a mailbox watch.
    pub fn mwi_unwatch(&self, id: u64) {
        self.services.mwi_unwatch(id)
    }
}

/// Runs `body` on a thread of its own, named `name`, and reports to the core
/// ([`Host::plugin_failed`]) if it ends by panicking or by returning `Err`:
/// the way to run a plugin's monitor (its event loop, or the thread that
/// blocks on its IO context) so that its death is noticed. A panic on such a
/// thread is not caught by the entry-point glue, and without this the core
/// would go on calling a technology nobody serves, each call waiting for a
/// timeout. `Ok(())` is a normal stop (unload) and reports nothing.
pub fn spawn_monitored<F>(
    host: &Host,
    name: &str,
    body: F,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    let host = host.clone();
    let thread = name.to_string();
    std::thread::Builder::new()
        .name(thread.clone())
        .spawn(move || {
            let reason = match catch_unwind(AssertUnwindSafe(body)) {
                Ok(Ok(())) => return,
                Ok(Err(e)) => format!("thread '{thread}' failed: {e}"),
                Err(p) => format!("thread '{thread}' panicked: {}", panic_message(&*p)),
            };
            host.plugin_failed(&reason);
        })
}

struct ClosureCallback<F>(F);

/// A closure as a [`crate::services::HintCallback`].
struct HintClosure<F>(F);

/// A closure as a [`crate::services::MwiCallback`].
struct MwiClosure<F>(F);

impl<F: FnMut(u32, u32) + Send> crate::services::MwiCallback for MwiClosure<F> {
    fn changed(&mut self, new: u32, old: u32) {
        // Called from the core: a panic must not unwind across the boundary.
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| (self.0)(new, old))) {
            log::error!("mwi callback panicked: {}", panic_message(&*p));
        }
    }
}

impl<F: FnMut(i32) + Send> crate::services::HintCallback for HintClosure<F> {
    fn changed(&mut self, state: i32) {
        // Called from the core: a panic must not unwind across the boundary.
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| (self.0)(state))) {
            log::error!("hint callback panicked: {}", panic_message(&*p));
        }
    }
}

impl<F: FnMut() -> u32 + Send> SchedCallback for ClosureCallback<F> {
    fn run(&mut self) -> u32 {
        match catch_unwind(AssertUnwindSafe(|| (self.0)())) {
            Ok(next) => next,
            Err(p) => {
                log::error!("scheduled callback panicked: {}", panic_message(&*p));
                0
            }
        }
    }
}

/// Extracts the text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs `f`, turning a panic into `Err(Cause::FAILURE)` after logging it with `what`.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, Cause>) -> RResult<T, Cause> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.into(),
        Err(p) => {
            log::error!("{what} panicked: {}", panic_message(&*p));
            RResult::RErr(Cause::FAILURE)
        }
    }
}

/// Runs `f`; on a panic logs it and returns `fallback`.
fn guard_or<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        log::error!("{what} panicked: {}", panic_message(&*p));
        fallback
    })
}

#[derive(Clone)]
struct GuardedTech(Arc<dyn ChannelDriver>);

impl ChannelTech for GuardedTech {
    fn info(&self) -> TechInfo {
        // A panic here cannot be mapped to a cause; report an empty technology instead.
        guard_or(
            "ChannelDriver::info",
            TechInfo {
                tech_type: "?".into(),
                description: "(panicked)".into(),
                capabilities: Capabilities::NONE,
                devicestate: false,
                presencestate: false,
                indications: false,
                transfer: false,
            },
            || self.0.info(),
        )
    }
    fn request_call(
        &self,
        caps: Capabilities,
        dest: RString,
        requestor: ROption<ChannelId>,
    ) -> RResult<ChannelId, Cause> {
        guard("request_call", || {
            self.0
                .request_call(caps, dest.as_str(), requestor.into_option())
        })
    }
    fn call(&self, chan: ChannelId, dest: RString, timeout_ms: u32) -> RResult<(), Cause> {
        guard("call", || self.0.call(chan, dest.as_str(), timeout_ms))
    }
    fn answer(&self, chan: ChannelId) -> RResult<(), Cause> {
        guard("answer", || self.0.answer(chan))
    }
    fn hangup(&self, chan: ChannelId, cause: Cause) -> RResult<(), Cause> {
        guard("hangup", || self.0.hangup(chan, cause))
    }
    fn indicate(&self, chan: ChannelId, indication: Indication_NE) -> RResult<(), Cause> {
        // An indication added to the interface after this plugin was built.
        let Ok(indication) = indication.as_enum().copied() else {
            log::debug!("indicate: {indication:?} is unknown to this plugin");
            return RResult::RErr(Cause::FACILITY_NOT_IMPLEMENTED);
        };
        guard("indicate", || self.0.indicate(chan, indication))
    }
    fn write_frame(&self, chan: ChannelId, frame: Frame) -> RResult<(), Cause> {
        guard("write_frame", || self.0.write_frame(chan, frame))
    }
    fn send_digit(&self, chan: ChannelId, digit: u32, duration_ms: u32) -> RResult<(), Cause> {
        let Some(d) = char::from_u32(digit) else {
            return RResult::RErr(Cause::INVALID_IE_CONTENTS);
        };
        guard("send_digit", || self.0.send_digit(chan, d, duration_ms))
    }
    fn native_bridge(&self, a: ChannelId, b: ChannelId) -> RResult<(), Cause> {
        guard("native_bridge", || self.0.native_bridge(a, b))
    }
    fn native_unbridge(&self, a: ChannelId, b: ChannelId) -> RResult<(), Cause> {
        guard("native_unbridge", || self.0.native_unbridge(a, b))
    }
    fn transfer(&self, chan: ChannelId, dest: RString) -> RResult<(), Cause> {
        guard("transfer", || self.0.transfer(chan, dest.as_str()))
    }
    fn device_state(&self, resource: RString) -> DeviceState_NE {
        guard_or("device_state", DeviceState::Unknown, || {
            self.0.device_state(resource.as_str())
        })
        .to_ne()
    }
}

struct GuardedPlugin {
    inner: Box<dyn PluginImpl>,
    tech: Option<ChannelTechArc>,
}

fn strings(args: RVec<RString>) -> Vec<String> {
    args.into_iter().map(RString::into_string).collect()
}

impl Plugin for GuardedPlugin {
    fn channel_tech(&self) -> ROption<ChannelTechArc> {
        self.tech.clone().into()
    }
    fn commands(&self) -> RVec<CommandSpec> {
        guard_or("commands", Vec::new(), || self.inner.commands()).into()
    }
    fn run_command(&self, args: RVec<RString>) -> RResult<RString, RString> {
        let args = strings(args);
        match catch_unwind(AssertUnwindSafe(|| self.inner.run_command(&args))) {
            Ok(Ok(s)) => RResult::ROk(s.into()),
            Ok(Err(e)) => RResult::RErr(e.into()),
            Err(p) => {
                let msg = format!(
                    "command '{}' panicked: {}",
                    args.join(" "),
                    panic_message(&*p)
                );
                log::error!("{msg}");
                RResult::RErr(msg.into())
            }
        }
    }
    fn complete(&self, args: RVec<RString>, pos: u32) -> RVec<RString> {
        let args = strings(args);
        guard_or("complete", Vec::new(), || {
            self.inner.complete(&args, pos as usize)
        })
        .into_iter()
        .map(RString::from)
        .collect()
    }
    fn reload(&self) -> RResult<RString, RString> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.reload())) {
            Ok(r) => r.map(RString::from).map_err(RString::from).into(),
            Err(p) => RResult::RErr(format!("reload panicked: {}", panic_message(&*p)).into()),
        }
    }
    fn unload(&self, force: bool) -> RResult<(), RString> {
        match catch_unwind(AssertUnwindSafe(|| self.inner.unload(force))) {
            Ok(r) => r.map_err(RString::from).into(),
            Err(p) => RResult::RErr(format!("unload panicked: {}", panic_message(&*p)).into()),
        }
    }
    fn use_count(&self) -> u32 {
        guard_or("use_count", 0, || self.inner.use_count())
    }
    fn metrics(&self) -> RVec<crate::metrics::Metric> {
        guard_or("metrics", Vec::new(), || self.inner.metrics()).into()
    }
    fn run_command_json(&self, args: RVec<RString>) -> RResult<RString, RString> {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        match catch_unwind(AssertUnwindSafe(|| self.inner.run_command_json(&args))) {
            Ok(r) => r.map(RString::from).map_err(RString::from).into(),
            Err(p) => RResult::RErr(
                format!(
                    "command '{}' panicked: {}",
                    args.join(" "),
                    panic_message(&*p)
                )
                .into(),
            ),
        }
    }
    fn set_log_level(&self, level: LogLevel) {
        log::set_max_level(level.to_filter());
    }
}

/// The host this plugin library currently logs to. One per library: each cdylib
/// has its own copy of this static, as it has its own `log` crate.
static HOST_LOG: RwLock<Option<CoreServicesArc>> = RwLock::new(None);

struct ForwardingLogger;

impl log::Log for ForwardingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let Ok(guard) = HOST_LOG.read() else { return };
        if let Some(host) = guard.as_ref() {
            let msg = record.args().to_string();
            host.log_at(
                LogLevel::from_level(record.level()),
                RStr::from_str(record.target()),
                RStr::from_str(record.file().unwrap_or("")),
                record.line().unwrap_or(0),
                RStr::from_str(&msg),
            );
        }
    }
    fn flush(&self) {}
}

static LOGGER: ForwardingLogger = ForwardingLogger;

fn install_host_logging(services: &CoreServicesArc) {
    if let Ok(mut slot) = HOST_LOG.write() {
        *slot = Some(services.clone());
    }
    // Fails harmlessly on a second load of the same library: the logger is already ours.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(services.max_log_level().to_filter());
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        log::error!("panic{location}: {}", panic_message(info.payload()));
    }));
}

/// The body of the exported `load` entry point (see [`crate::export_plugin!`]):
/// wires logging, runs the plugin's loader under `catch_unwind`, wraps the result.
pub fn load_plugin(
    services: CoreServicesArc,
    name: &str,
    load: fn(Host) -> Result<Box<dyn PluginImpl>, LoadError>,
) -> RResult<PluginArc, LoadError> {
    install_host_logging(&services);
    let host = Host::new(services);
    let loaded = catch_unwind(AssertUnwindSafe(|| load(host)));
    match loaded {
        Ok(Ok(inner)) => {
            let tech = guard_or("channel_driver", None, || inner.channel_driver())
                .map(|d| ChannelTech_TO::from_ptr(RArc::new(GuardedTech(d)), TD_Opaque));
            let plugin = GuardedPlugin { inner, tech };
            RResult::ROk(Plugin_TO::from_ptr(RArc::new(plugin), TD_Opaque))
        }
        Ok(Err(e)) => RResult::RErr(e),
        Err(p) => RResult::RErr(LoadError {
            declined: false,
            message: format!("{name}: load panicked: {}", panic_message(&*p)).into(),
        }),
    }
}

/// Convenience for plugins: a load error that is a refusal to run (missing config),
/// not a failure.
pub fn declined(message: impl Into<String>) -> LoadError {
    LoadError {
        declined: true,
        message: message.into().into(),
    }
}

/// Convenience for plugins: a load failure.
pub fn failed(message: impl Into<String>) -> LoadError {
    LoadError {
        declined: false,
        message: message.into().into(),
    }
}

/// Boxed form of an owned callback, for hosts and tests that call [`SchedCallback`]s.
pub type BoxedCallback = SchedCallback_TO<'static, RBox<()>>;

/// Exports a plugin: the root module abi_stable checks at load, whose `load` wraps the
/// given function with panic containment and host logging.
///
/// ```ignore
/// sirius_abi::export_plugin! {
///     name: "chan_sip",
///     description: "Session Initiation Protocol (SIP)",
///     support: sirius_abi::SupportLevel::Core,
///     load: my_load,   // fn(Host) -> Result<Box<dyn PluginImpl>, LoadError>
/// }
/// ```
/// The plugin crate must depend on `abi_stable` (the export attribute expands to paths in it).
#[macro_export]
macro_rules! export_plugin {
    (name: $name:expr, description: $desc:expr, support: $level:expr, load: $load:path $(,)?) => {
        /// The root module of this Sirius plugin library.
        #[::abi_stable::export_root_module]
        pub fn sirius_plugin_root_module() -> $crate::PluginModuleRef {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            extern "C" fn __sirius_plugin_load(
                services: $crate::CoreServicesArc,
            ) -> ::abi_stable::std_types::RResult<$crate::PluginArc, $crate::LoadError> {
                $crate::guest::load_plugin(services, $name, $load)
            }
            $crate::PluginModule {
                interface_version: $crate::INTERFACE_VERSION,
                name: ::abi_stable::std_types::RStr::from_str($name),
                description: ::abi_stable::std_types::RStr::from_str($desc),
                support_level: $level,
                load: __sirius_plugin_load,
            }
            .leak_into_prefix()
        }
    };
}
