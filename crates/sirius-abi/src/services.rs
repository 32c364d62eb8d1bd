//! What the core offers a plugin (`CoreServices`), and the scheduler callback type.
//!
//! A plugin is a cdylib with its own copies of `std`, `log` and `tokio`: it cannot
//! reach the host's statics. Everything it needs from the host therefore comes
//! through this one object, handed to `load()`.

use crate::{
    Capabilities, Cause, ChannelId, ChannelInfo, ChannelSpec, ChannelState, Codec, DeviceState_NE,
    Frame,
};
use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, ROption, RResult, RStr, RString, RVec, Tuple2, Tuple3};
use abi_stable::StableAbi;

/// Log levels at the boundary, numbered as `log::Level` (1 = error … 5 = trace).
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum LogLevel {
    /// Nothing is logged.
    Off = 0,
    /// Errors.
    Error = 1,
    /// Warnings.
    Warn = 2,
    /// Notices and verbose messages.
    Info = 3,
    /// Debug.
    Debug = 4,
    /// Trace (message dumps).
    Trace = 5,
}

impl LogLevel {
    /// From the `log` crate's filter.
    pub fn from_filter(f: log::LevelFilter) -> LogLevel {
        match f {
            log::LevelFilter::Off => LogLevel::Off,
            log::LevelFilter::Error => LogLevel::Error,
            log::LevelFilter::Warn => LogLevel::Warn,
            log::LevelFilter::Info => LogLevel::Info,
            log::LevelFilter::Debug => LogLevel::Debug,
            log::LevelFilter::Trace => LogLevel::Trace,
        }
    }

    /// To the `log` crate's filter.
    pub fn to_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Off => log::LevelFilter::Off,
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }

    /// From a `log::Level` (a record's level, never Off).
    pub fn from_level(l: log::Level) -> LogLevel {
        LogLevel::from_filter(l.to_level_filter())
    }
}

/// A timer callback run on the core's scheduler thread.
///
/// The contract is Asterisk's `ast_sched_add_variable`: return 0 to stop,
/// or N to run again N milliseconds after the time this run was due.
#[sabi_trait]
pub trait SchedCallback: Send {
    /// Runs the callback; the return value re-arms (N ms) or stops (0) the timer.
    fn run(&mut self) -> u32;
}

/// An owned scheduler callback object.
pub type SchedCallbackBox = SchedCallback_TO<'static, RBox<()>>;

/// Told when a watched hint's extension state changes (Asterisk's
/// `ast_extension_state_add` callback). Runs on the thread that reported
/// the device change, often the plugin's own: queue the work, do not block.
#[sabi_trait]
pub trait HintCallback: Send {
    /// The new state, Asterisk's `AST_EXTENSION_*` bits: 0 idle, 1 in use,
    /// 2 busy, 4 unavailable, 8 ringing, 16 on hold (9: in use and ringing).
    fn changed(&mut self, state: i32);
}

/// An owned hint callback object.
pub type HintCallbackBox = HintCallback_TO<'static, RBox<()>>;

/// Told when a watched set of mailboxes' message counts change (Asterisk's
/// MWI subscription). Runs on the thread that changed them: queue the work.
#[sabi_trait]
pub trait MwiCallback: Send {
    /// The new sums over the watched mailboxes: new and old messages.
    fn changed(&mut self, new: u32, old: u32);
}

/// An owned MWI callback object.
pub type MwiCallbackBox = MwiCallback_TO<'static, RBox<()>>;

/// The host's services, one object per loaded module.
///
/// A prefix type like [`crate::ChannelTech`]: the prefix ends at
/// [`CoreServices::channel_caller_id`], the last service of interface 1.
/// Services added since go after it with a default body, which a newer plugin
/// runs when an older core lacks them: [`CoreServices::plugin_failed`],
/// [`CoreServices::device_state_changed`], then the transfer services
/// ([`CoreServices::channel_blind_transfer`], channel variables, attended
/// transfer, a transfer's outcome, pickup and replace), then a plugin
/// thread's turns ([`CoreServices::turn_started`]), then hint watches
/// ([`CoreServices::hint_watch`]), then mailbox watches
/// ([`CoreServices::mwi_watch`]), then [`CoreServices::log_at`]. Always append, in the order added: a
/// method inserted before another moves that one's vtable slot.
#[sabi_trait]
pub trait CoreServices: Send + Sync + Clone {
    /// Logs one record through the host logger (console, log file, remote consoles).
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);

    /// The most verbose level the host currently wants; changes with `core set debug`.
    fn max_log_level(&self) -> LogLevel;

    /// Schedules `cb` to run in `delay_ms`; returns an id for [`CoreServices::sched_del`].
    fn sched_add(&self, delay_ms: u32, cb: SchedCallbackBox) -> u64;

    /// Cancels a scheduled callback; false when it already ran out or was unknown.
    fn sched_del(&self, id: u64) -> bool;

    /// Creates a channel in the core's registry (`ast_channel_alloc`).
    /// Refused with CONGESTION while the core is shutting down gracefully.
    fn channel_alloc(&self, spec: ChannelSpec) -> RResult<ChannelInfo, Cause>;

    /// Records a state change (`ast_setstate`): Ringing, Up, Busy…
    fn channel_set_state(&self, id: ChannelId, state: ChannelState);

    /// Records the codecs negotiated for the channel, best first.
    fn channel_set_codecs(&self, id: ChannelId, codecs: RVec<Codec>);

    /// The far end ended the call, or the plugin gives up on it: the core records the
    /// cause, hangs up whatever the channel is bridged to and frees the channel.
    fn channel_hangup(&self, id: ChannelId, cause: Cause);

    /// Queues a frame read from the network for the core (generic bridge, dialplan apps).
    fn queue_frame(&self, id: ChannelId, frame: Frame);

    /// Starts the dialplan on an inbound channel (`ast_pbx_start`). An error means the
    /// plugin must reject the call with the given cause.
    fn pbx_start(&self, id: ChannelId) -> RResult<(), Cause>;

    /// Publishes an event (`PeerStatus`, `Registry`…) to the core's event bus.
    fn post_event(&self, name: RStr<'_>, fields: RVec<Tuple2<RString, RString>>);

    /// The configuration directory (`-C`); plugins read their own file from it.
    fn config_dir(&self) -> RString;

    /// A directory where the plugin may persist state (registrations…), created on demand.
    fn data_dir(&self) -> RString;

    /// Codecs the core can translate between (for the bridge check in `request_call`).
    fn translatable(&self, from: Capabilities, to: Capabilities) -> bool;

    /// A live channel's caller ID as (number, name); `None` for an unknown channel.
    /// `request_call` reads its requestor's, so an outbound leg presents the
    /// caller in its From header the way app_dial copies the caller ID onto the
    /// new channel in Asterisk.
    #[sabi(last_prefix_field)]
    fn channel_caller_id(&self, id: ChannelId) -> ROption<Tuple2<RString, RString>>;

    // Methods after the last prefix field: each has a default body, run when
    // the other side lacks the method (a plugin calling it on an older core,
    // or an implementor, such as a test double, that does not override it).

    /// The plugin cannot go on: its monitor thread or runtime ended unexpectedly
    /// (a panic there is not an entry point's, so no `catch_unwind` of the glue
    /// sees it). The core logs `reason` as an error, unregisters the plugin's
    /// channel technology, frees its channels (their far ends are no longer
    /// served) and from then on refuses calls to that technology at once with
    /// `REQUESTED_CHAN_UNAVAIL` instead of waiting on a dead plugin.
    /// `module unload` and `module load` start it afresh.
    /// Plugins call it through [`crate::guest::Host::plugin_failed`] or
    /// [`crate::guest::spawn_monitored`]. Default: nothing (a core without it
    /// cannot act on it).
    fn plugin_failed(&self, reason: RString) {
        let _ = reason;
    }

    /// A device's state changed (`ast_devstate_changed`): `device` is its full
    /// name, `<Tech>/<resource>` (`SIP/alice`). The core keeps the last state of
    /// each device and tells its subscribers (hints, BLF) when it changes.
    /// Default: nothing (a core without it keeps no device states).
    fn device_state_changed(&self, device: RStr<'_>, state: DeviceState_NE) {
        let _ = (device, state);
    }

    /// Blind transfer (`ast_bridge_transfer_blind`): the channel bridged to
    /// `transferor` leaves the bridge and runs the dialplan at
    /// `exten@context`, with `vars` set on it first; the transferor's leg
    /// stays up, its technology ends it (a SIP leg still owes its NOTIFYs).
    /// The caller chooses `context` (the transferor's: a transfer has no
    /// rights the transferor lacks). Returns the transferee. Errors leave
    /// the call as it was: `FACILITY_NOT_IMPLEMENTED` when the transferor
    /// is in no bridge, `UNALLOCATED` when the extension does not exist,
    /// `NO_ROUTE_DESTINATION` without a dialplan. Default (an older core):
    /// `FACILITY_NOT_IMPLEMENTED`.
    fn channel_blind_transfer(
        &self,
        transferor: ChannelId,
        context: RStr<'_>,
        exten: RStr<'_>,
        vars: RVec<Tuple2<RString, RString>>,
    ) -> RResult<ChannelId, Cause> {
        let _ = (transferor, context, exten, vars);
        RResult::RErr(Cause::FACILITY_NOT_IMPLEMENTED)
    }

    /// A channel variable (`${TRANSFER_CONTEXT}`); `None` when unset or the
    /// channel is gone. Default (an older core): `None`.
    fn channel_get_var(&self, id: ChannelId, name: RStr<'_>) -> ROption<RString> {
        let _ = (id, name);
        ROption::RNone
    }

    /// Sets a channel variable (`Set()`); an empty value is kept as empty.
    /// Default (an older core): nothing.
    fn channel_set_var(&self, id: ChannelId, name: RStr<'_>, value: RStr<'_>) {
        let _ = (id, name, value);
    }

    /// Attended transfer (`ast_bridge_transfer_attended`): the transferor's
    /// two legs `t1` (to the transferee) and `t2` (its consultation call to
    /// the target); the transferee and the target are bridged to each other
    /// and `t2` is hung up; `t1` is left to its technology. Returns
    /// (transferee, target). Errors leave both calls as they were:
    /// `FACILITY_NOT_IMPLEMENTED` when a leg is in no bridge,
    /// `INVALID_CALL_REFERENCE` when one is gone. Default (an older core):
    /// `FACILITY_NOT_IMPLEMENTED`.
    fn channel_attended_transfer(
        &self,
        t1: ChannelId,
        t2: ChannelId,
    ) -> RResult<Tuple2<ChannelId, ChannelId>, Cause> {
        let _ = (t1, t2);
        RResult::RErr(Cause::FACILITY_NOT_IMPLEMENTED)
    }

    /// The outcome of a transfer the core asked of the technology
    /// (`ChannelTech::transfer`): `Ok` once the far end accepted it (a SIP
    /// `202`), the cause of its refusal or its silence otherwise. The
    /// dialplan's `Transfer()` waits for it. Default (an older core): nothing.
    fn channel_transfer_result(&self, id: ChannelId, result: RResult<(), Cause>) {
        let _ = (id, result);
    }

    /// Call pickup (INVITE with Replaces naming a ringing leg): `picker`, a
    /// new inbound call, is answered and connected instead of `ringing`,
    /// which is hung up. Default (an older core): `FACILITY_NOT_IMPLEMENTED`.
    fn channel_pickup(&self, ringing: ChannelId, picker: ChannelId) -> RResult<(), Cause> {
        let _ = (ringing, picker);
        RResult::RErr(Cause::FACILITY_NOT_IMPLEMENTED)
    }

    /// INVITE with Replaces naming an answered call: `new` takes `old`'s
    /// place in its bridge (answered), `old` is hung up. Default (an older
    /// core): `FACILITY_NOT_IMPLEMENTED`.
    fn channel_replace(&self, old: ChannelId, new: ChannelId) -> RResult<(), Cause> {
        let _ = (old, new);
        RResult::RErr(Cause::FACILITY_NOT_IMPLEMENTED)
    }

    /// The calling thread starts a turn of its event loop: until
    /// [`CoreServices::turn_ended`], work the core would hand to the PBX
    /// pool because of what this thread reports (a dialplan in `Dial` woken
    /// by its callee's ringing or answer) is kept for the end of the turn
    /// instead, where the plugin holds nothing and the thread runs it itself:
    /// no other thread is woken for it. A thread that never marks its turns
    /// loses nothing (its wakes go to the pool). Default (an older core):
    /// nothing.
    fn turn_started(&self) {}

    /// Ends the turn [`CoreServices::turn_started`] began: runs the work
    /// kept for it on this thread (a few rounds; the rest goes to the pool)
    /// and stops keeping work. The plugin must hold none of its own locks:
    /// that work calls its technology methods. Default (an older core):
    /// nothing.
    fn turn_ended(&self) {}

    /// Watches the hint of `exten@context` (`ast_extension_state_add`):
    /// `cb` hears every change of its extension state until
    /// [`CoreServices::hint_unwatch`]. Returns the watch's id and the state
    /// now (the bits [`HintCallback::changed`] takes); `None` when the
    /// dialplan has no such hint. Default (an older core): `None`.
    fn hint_watch(
        &self,
        context: RStr<'_>,
        exten: RStr<'_>,
        cb: HintCallbackBox,
    ) -> ROption<Tuple2<u64, i32>> {
        let _ = (context, exten, cb);
        ROption::RNone
    }

    /// Ends a watch [`CoreServices::hint_watch`] made. Default: nothing.
    fn hint_unwatch(&self, id: u64) {
        let _ = id;
    }

    /// Watches mailboxes (`box@context`, comma-separated: a peer's
    /// `mailbox`): `cb` hears their summed counts each time the sum changes,
    /// until [`CoreServices::mwi_unwatch`]. Returns the watch's id and the
    /// counts now (id, new, old); `None` when a name is not a mailbox.
    /// Default (an older core): `None`.
    fn mwi_watch(&self, mailboxes: RStr<'_>, cb: MwiCallbackBox) -> ROption<Tuple3<u64, u32, u32>> {
        let _ = (mailboxes, cb);
        ROption::RNone
    }

    /// Ends a watch [`CoreServices::mwi_watch`] made. Default: nothing.
    fn mwi_unwatch(&self, id: u64) {
        let _ = id;
    }

    /// Logs one record with where it was logged from (source file, line):
    /// Asterisk's lines name the file and line, and fail2ban's filter needs
    /// them to find where the message starts. The host names the plugin
    /// itself as the line's module. Default (an older core):
    /// [`CoreServices::log`], without the place.
    fn log_at(
        &self,
        level: LogLevel,
        target: RStr<'_>,
        file: RStr<'_>,
        line: u32,
        message: RStr<'_>,
    ) {
        let _ = (file, line);
        self.log(level, target, message);
    }
}

/// The services object as plugins hold it.
pub type CoreServicesArc = CoreServices_TO<'static, abi_stable::std_types::RArc<()>>;
