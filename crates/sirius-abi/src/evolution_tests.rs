//! Proof that the interface can grow as `docs/writing-a-channel-plugin.md` says:
//! abi_stable's own load-time layout check (the one `init_root_module` runs) is
//! run here on the real v2 types against copies declared as a later 2.x would
//! declare them. A copy must keep the type's name and live in this crate: the
//! check compares type names and packages, not module paths, exactly as it
//! would for the same type built in a plugin against a newer `sirius-abi`.

use crate::{Capabilities, Cause, ChannelId, Frame, TechInfo};
use abi_stable::abi_stability::abi_checking::{
    check_layout_compatibility_with_globals, CheckingGlobals,
};
use abi_stable::std_types::{RArc, ROption, RResult, RString, RVec};
use abi_stable::type_layout::TypeLayout;
use abi_stable::StableAbi;

/// `ChannelTech` as the first v2 plugins were built: the prefix and nothing
/// after it (before `native_unbridge` and `transfer`).
mod v2_0 {
    use super::*;
    use crate::{DeviceState_NE, Indication_NE};
    use abi_stable::sabi_trait;

    #[sabi_trait]
    pub trait ChannelTech: Send + Sync + Clone {
        fn info(&self) -> TechInfo;
        fn request_call(
            &self,
            caps: Capabilities,
            dest: RString,
            requestor: ROption<ChannelId>,
        ) -> RResult<ChannelId, Cause>;
        fn call(&self, chan: ChannelId, dest: RString, timeout_ms: u32) -> RResult<(), Cause>;
        fn answer(&self, chan: ChannelId) -> RResult<(), Cause>;
        fn hangup(&self, chan: ChannelId, cause: Cause) -> RResult<(), Cause>;
        fn indicate(&self, chan: ChannelId, indication: Indication_NE) -> RResult<(), Cause>;
        fn write_frame(&self, chan: ChannelId, frame: Frame) -> RResult<(), Cause>;
        fn send_digit(&self, chan: ChannelId, digit: u32, duration_ms: u32) -> RResult<(), Cause>;
        fn device_state(&self, resource: RString) -> DeviceState_NE;
        #[sabi(last_prefix_field)]
        fn native_bridge(&self, a: ChannelId, b: ChannelId) -> RResult<(), Cause>;
    }

    pub type ChannelTechArc = ChannelTech_TO<'static, RArc<()>>;
}

/// `ChannelTech` as interface 2.1 might declare it: every method of today's,
/// then one more.
mod v2_1 {
    use super::*;
    use crate::DeviceState_NE;
    use abi_stable::sabi_trait;

    #[sabi_trait]
    pub trait ChannelTech: Send + Sync + Clone {
        fn info(&self) -> TechInfo;
        fn request_call(
            &self,
            caps: Capabilities,
            dest: RString,
            requestor: ROption<ChannelId>,
        ) -> RResult<ChannelId, Cause>;
        fn call(&self, chan: ChannelId, dest: RString, timeout_ms: u32) -> RResult<(), Cause>;
        fn answer(&self, chan: ChannelId) -> RResult<(), Cause>;
        fn hangup(&self, chan: ChannelId, cause: Cause) -> RResult<(), Cause>;
        fn indicate(&self, chan: ChannelId, indication: crate::Indication_NE)
            -> RResult<(), Cause>;
        fn write_frame(&self, chan: ChannelId, frame: Frame) -> RResult<(), Cause>;
        fn send_digit(&self, chan: ChannelId, digit: u32, duration_ms: u32) -> RResult<(), Cause>;
        fn device_state(&self, resource: RString) -> DeviceState_NE;
        #[sabi(last_prefix_field)]
        fn native_bridge(&self, a: ChannelId, b: ChannelId) -> RResult<(), Cause>;
        fn native_unbridge(&self, _a: ChannelId, _b: ChannelId) -> RResult<(), Cause> {
            RResult::ROk(())
        }

        fn transfer(&self, _chan: ChannelId, _dest: RString) -> RResult<(), Cause> {
            RResult::RErr(Cause::FACILITY_NOT_IMPLEMENTED)
        }

        /// New in "2.1": what a core runs when the plugin predates it.
        fn join(&self, _chan: ChannelId, _call: RString) -> RResult<(), Cause> {
            RResult::RErr(Cause::FACILITY_NOT_IMPLEMENTED)
        }
    }

    pub type ChannelTechArc = ChannelTech_TO<'static, RArc<()>>;

    /// `Indication` with a variant more, one that carries data. (Most variants
    /// exist only for their layout, hence `dead_code`.)
    #[allow(dead_code)]
    #[repr(u8)]
    #[derive(StableAbi, Clone, PartialEq, Eq, Debug)]
    #[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
    #[non_exhaustive]
    pub enum Indication {
        Ringing,
        Progress,
        Busy,
        Congestion,
        Answer,
        Hold,
        Unhold,
        Proceeding,
        StopTones,
        SourceChange,
        ConnectedLine(RString),
    }
}

/// `ChannelTech` missing its last v2 method (a broken or pre-v2 build).
mod v2_short {
    use super::*;
    use crate::{DeviceState_NE, Indication_NE};
    use abi_stable::sabi_trait;

    #[sabi_trait]
    pub trait ChannelTech: Send + Sync + Clone {
        fn info(&self) -> TechInfo;
        fn request_call(
            &self,
            caps: Capabilities,
            dest: RString,
            requestor: ROption<ChannelId>,
        ) -> RResult<ChannelId, Cause>;
        fn call(&self, chan: ChannelId, dest: RString, timeout_ms: u32) -> RResult<(), Cause>;
        fn answer(&self, chan: ChannelId) -> RResult<(), Cause>;
        fn hangup(&self, chan: ChannelId, cause: Cause) -> RResult<(), Cause>;
        fn indicate(&self, chan: ChannelId, indication: Indication_NE) -> RResult<(), Cause>;
        fn write_frame(&self, chan: ChannelId, frame: Frame) -> RResult<(), Cause>;
        fn send_digit(&self, chan: ChannelId, digit: u32, duration_ms: u32) -> RResult<(), Cause>;
        #[sabi(last_prefix_field)]
        fn device_state(&self, resource: RString) -> DeviceState_NE;
    }

    pub type ChannelTechArc = ChannelTech_TO<'static, RArc<()>>;
}

/// abi_stable's check, `interface` being what the loading side was built with.
fn compatible(interface: &'static TypeLayout, implementation: &'static TypeLayout) -> bool {
    // Fresh globals: the process-wide ones remember every prefix type seen.
    check_layout_compatibility_with_globals(interface, implementation, &CheckingGlobals::new())
        .is_ok()
}

/// The loader's rule (`sirius-core`'s `load_module`): abi_stable's check, or
/// failing that [`crate::plugin::older_plugin_fits`].
fn loader_accepts(core: &'static TypeLayout, plugin: &'static TypeLayout) -> bool {
    compatible(core, plugin)
        || crate::plugin::older_plugin_fits(core, plugin, &CheckingGlobals::new())
}

#[test]
fn a_method_added_after_the_last_prefix_field_keeps_both_sides_loadable() {
    let v2 = <crate::ChannelTechArc as StableAbi>::LAYOUT;
    let v2_1 = <v2_1::ChannelTechArc as StableAbi>::LAYOUT;
    assert!(
        compatible(v2, v2_1),
        "abi_stable: a v2 core loads a 2.1 plugin"
    );
    // abi_stable alone refuses a plugin older than the core ("too many fields")…
    assert!(!compatible(v2_1, v2));
    // …which the loader's second check accepts.
    assert!(loader_accepts(v2_1, v2), "a 2.1 core loads a v2 plugin");
    assert!(loader_accepts(v2, v2_1));
}

#[test]
fn a_plugin_lacking_a_method_of_the_v2_prefix_is_refused_both_ways() {
    // The prefix mark makes every v2 method mandatory: a library without one
    // is refused at load, not found missing (a panic) at the first call.
    let v2 = <crate::ChannelTechArc as StableAbi>::LAYOUT;
    let short = <v2_short::ChannelTechArc as StableAbi>::LAYOUT;
    assert!(!loader_accepts(v2, short));
    assert!(!loader_accepts(short, v2));
}

/// A v2 technology that answers `native_bridge` with a cause of its own.
#[derive(Clone)]
struct V2Tech;

impl crate::ChannelTech for V2Tech {
    fn info(&self) -> TechInfo {
        TechInfo {
            tech_type: "V2".into(),
            description: "".into(),
            capabilities: Capabilities::NONE,
            devicestate: false,
            presencestate: false,
            indications: false,
            transfer: false,
        }
    }
    fn request_call(
        &self,
        _: Capabilities,
        _: RString,
        _: ROption<ChannelId>,
    ) -> RResult<ChannelId, Cause> {
        RResult::RErr(Cause::CONGESTION)
    }
    fn call(&self, _: ChannelId, _: RString, _: u32) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn answer(&self, _: ChannelId) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn hangup(&self, _: ChannelId, _: Cause) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn indicate(&self, _: ChannelId, _: crate::Indication_NE) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn write_frame(&self, _: ChannelId, _: Frame) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn send_digit(&self, _: ChannelId, _: u32, _: u32) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn device_state(&self, _: RString) -> crate::DeviceState_NE {
        crate::DeviceState::NotInUse.to_ne()
    }
    fn native_bridge(&self, _: ChannelId, _: ChannelId) -> RResult<(), Cause> {
        RResult::RErr(Cause::BUSY)
    }
}

#[test]
fn a_newer_core_calling_a_method_an_older_plugin_lacks_gets_its_default() {
    use abi_stable::sabi_trait::TD_Opaque;
    let v2: crate::ChannelTechArc = crate::ChannelTech_TO::from_ptr(RArc::new(V2Tech), TD_Opaque);
    assert!(loader_accepts(
        <v2_1::ChannelTechArc as StableAbi>::LAYOUT,
        <crate::ChannelTechArc as StableAbi>::LAYOUT
    ));
    // SAFETY: this is what crossing the boundary does to the object: a 2.1 core
    // receives the v2 plugin's (pointer, vtable) pair as its own type. The check
    // above is the rule the loader applies before allowing that.
    let seen_by_2_1: v2_1::ChannelTechArc = unsafe { std::mem::transmute(v2) };
    let chan = ChannelId(1);
    // A prefix method reaches the plugin's code…
    assert_eq!(
        seen_by_2_1.native_bridge(chan, chan).into_result(),
        Err(Cause::BUSY)
    );
    // …the missing one runs the default body, on the core's side.
    assert_eq!(
        seen_by_2_1.join(chan, "bob".into()).into_result(),
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    );
}

/// A plugin built before `native_unbridge`, answering `native_bridge` with a
/// cause of its own.
#[derive(Clone)]
struct V2_0Tech;

impl v2_0::ChannelTech for V2_0Tech {
    fn info(&self) -> TechInfo {
        crate::ChannelTech::info(&V2Tech)
    }
    fn request_call(
        &self,
        c: Capabilities,
        d: RString,
        r: ROption<ChannelId>,
    ) -> RResult<ChannelId, Cause> {
        crate::ChannelTech::request_call(&V2Tech, c, d, r)
    }
    fn call(&self, c: ChannelId, d: RString, t: u32) -> RResult<(), Cause> {
        crate::ChannelTech::call(&V2Tech, c, d, t)
    }
    fn answer(&self, c: ChannelId) -> RResult<(), Cause> {
        crate::ChannelTech::answer(&V2Tech, c)
    }
    fn hangup(&self, c: ChannelId, cause: Cause) -> RResult<(), Cause> {
        crate::ChannelTech::hangup(&V2Tech, c, cause)
    }
    fn indicate(&self, c: ChannelId, i: crate::Indication_NE) -> RResult<(), Cause> {
        crate::ChannelTech::indicate(&V2Tech, c, i)
    }
    fn write_frame(&self, c: ChannelId, f: Frame) -> RResult<(), Cause> {
        crate::ChannelTech::write_frame(&V2Tech, c, f)
    }
    fn send_digit(&self, c: ChannelId, d: u32, ms: u32) -> RResult<(), Cause> {
        crate::ChannelTech::send_digit(&V2Tech, c, d, ms)
    }
    fn device_state(&self, r: RString) -> crate::DeviceState_NE {
        crate::ChannelTech::device_state(&V2Tech, r)
    }
    fn native_bridge(&self, _: ChannelId, _: ChannelId) -> RResult<(), Cause> {
        RResult::RErr(Cause::BUSY)
    }
}

#[test]
fn a_plugin_built_before_native_unbridge_loads_and_the_notice_runs_the_default() {
    use abi_stable::sabi_trait::TD_Opaque;
    let (core, old) = (
        <crate::ChannelTechArc as StableAbi>::LAYOUT,
        <v2_0::ChannelTechArc as StableAbi>::LAYOUT,
    );
    assert!(!compatible(core, old), "abi_stable alone refuses it");
    assert!(loader_accepts(core, old), "the loader takes it");
    let plugin: v2_0::ChannelTechArc =
        v2_0::ChannelTech_TO::from_ptr(RArc::new(V2_0Tech), TD_Opaque);
    // SAFETY: what crossing the boundary does, after the check above (as in
    // `a_newer_core_calling_a_method_an_older_plugin_lacks_gets_its_default`).
    let seen_by_core: crate::ChannelTechArc = unsafe { std::mem::transmute(plugin) };
    let (a, b) = (ChannelId(1), ChannelId(2));
    assert_eq!(
        seen_by_core.native_bridge(a, b).into_result(),
        Err(Cause::BUSY)
    );
    assert_eq!(seen_by_core.native_unbridge(a, b).into_result(), Ok(()));
    // Transfer() on a channel of a plugin built before `transfer`: refused,
    // which the dialplan reports as UNSUPPORTED.
    assert_eq!(
        seen_by_core.transfer(a, "600".into()).into_result(),
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    );
}

#[test]
fn an_indication_newer_than_the_plugin_reads_as_unknown_not_as_garbage() {
    use abi_stable::nonexhaustive_enum::NonExhaustive;
    let (v2, v2_1) = (
        <crate::Indication_NE as StableAbi>::LAYOUT,
        <v2_1::Indication_NE as StableAbi>::LAYOUT,
    );
    assert!(compatible(v2, v2_1), "abi_stable: a v2 core, a 2.1 plugin");
    assert!(
        !compatible(v2_1, v2),
        "abi_stable alone: more variants in the core"
    );
    assert!(
        loader_accepts(v2_1, v2),
        "the loader: a 2.1 core, a v2 plugin"
    );
    let sent: v2_1::Indication_NE =
        NonExhaustive::new(v2_1::Indication::ConnectedLine("6001 <Alice>".into()));
    // SAFETY: as above, a v2 plugin receiving a 2.1 core's value; the layouts
    // were checked compatible just now.
    let received: crate::Indication_NE = unsafe { std::mem::transmute(sent) };
    assert!(received.as_enum().is_err());
    // A variant both know still arrives as itself.
    let busy: v2_1::Indication_NE = NonExhaustive::new(v2_1::Indication::Busy);
    // SAFETY: as above.
    let busy: crate::Indication_NE = unsafe { std::mem::transmute(busy) };
    assert_eq!(busy.as_enum().ok(), Some(&crate::Indication::Busy));
}

/// `CoreServices` as cores before the transfer services declared it (up to
/// `device_state_changed`): what a newer plugin meets on an older core.
mod services_before_transfer {
    use crate::services::{LogLevel, SchedCallbackBox};
    use crate::{
        Capabilities, Cause, ChannelId, ChannelInfo, ChannelSpec, ChannelState, Codec,
        DeviceState_NE, Frame,
    };
    use abi_stable::sabi_trait;
    use abi_stable::std_types::{RArc, ROption, RResult, RStr, RString, RVec, Tuple2};

    #[sabi_trait]
    pub trait CoreServices: Send + Sync + Clone {
        fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);
        fn max_log_level(&self) -> LogLevel;
        fn sched_add(&self, delay_ms: u32, cb: SchedCallbackBox) -> u64;
        fn sched_del(&self, id: u64) -> bool;
        fn channel_alloc(&self, spec: ChannelSpec) -> RResult<ChannelInfo, Cause>;
        fn channel_set_state(&self, id: ChannelId, state: ChannelState);
        fn channel_set_codecs(&self, id: ChannelId, codecs: RVec<Codec>);
        fn channel_hangup(&self, id: ChannelId, cause: Cause);
        fn queue_frame(&self, id: ChannelId, frame: Frame);
        fn pbx_start(&self, id: ChannelId) -> RResult<(), Cause>;
        fn post_event(&self, name: RStr<'_>, fields: RVec<Tuple2<RString, RString>>);
        fn config_dir(&self) -> RString;
        fn data_dir(&self) -> RString;
        fn translatable(&self, from: Capabilities, to: Capabilities) -> bool;
        #[sabi(last_prefix_field)]
        fn channel_caller_id(&self, id: ChannelId) -> ROption<Tuple2<RString, RString>>;
        fn plugin_failed(&self, reason: RString) {
            let _ = reason;
        }
        fn device_state_changed(&self, device: RStr<'_>, state: DeviceState_NE) {
            let _ = (device, state);
        }
    }

    pub type CoreServicesArc = CoreServices_TO<'static, RArc<()>>;

    /// An older core: it answers `pbx_start` with a cause of its own.
    #[derive(Clone)]
    pub struct OldCore;

    impl CoreServices for OldCore {
        fn log(&self, _: LogLevel, _: RStr<'_>, _: RStr<'_>) {}
        fn max_log_level(&self) -> LogLevel {
            LogLevel::Off
        }
        fn sched_add(&self, _: u32, _: SchedCallbackBox) -> u64 {
            0
        }
        fn sched_del(&self, _: u64) -> bool {
            false
        }
        fn channel_alloc(&self, _: ChannelSpec) -> RResult<ChannelInfo, Cause> {
            RResult::RErr(Cause::CONGESTION)
        }
        fn channel_set_state(&self, _: ChannelId, _: ChannelState) {}
        fn channel_set_codecs(&self, _: ChannelId, _: RVec<Codec>) {}
        fn channel_hangup(&self, _: ChannelId, _: Cause) {}
        fn queue_frame(&self, _: ChannelId, _: Frame) {}
        fn pbx_start(&self, _: ChannelId) -> RResult<(), Cause> {
            RResult::RErr(Cause::USER_BUSY)
        }
        fn post_event(&self, _: RStr<'_>, _: RVec<Tuple2<RString, RString>>) {}
        fn config_dir(&self) -> RString {
            RString::new()
        }
        fn data_dir(&self) -> RString {
            RString::new()
        }
        fn translatable(&self, _: Capabilities, _: Capabilities) -> bool {
            false
        }
        fn channel_caller_id(&self, _: ChannelId) -> ROption<Tuple2<RString, RString>> {
            ROption::RNone
        }
    }
}

#[test]
fn a_plugin_asking_an_older_core_for_a_transfer_gets_the_defaults() {
    use abi_stable::sabi_trait::TD_Opaque;
    let (old, new) = (
        <services_before_transfer::CoreServicesArc as StableAbi>::LAYOUT,
        <crate::CoreServicesArc as StableAbi>::LAYOUT,
    );
    // The plugin (new) receives the core's (old) object: the plugin's view
    // has more methods than the core's vtable.
    assert!(loader_accepts(new, old), "a new plugin on an older core");
    assert!(loader_accepts(old, new), "an old plugin on a newer core");
    let core: services_before_transfer::CoreServicesArc =
        services_before_transfer::CoreServices_TO::from_ptr(
            RArc::new(services_before_transfer::OldCore),
            TD_Opaque,
        );
    // SAFETY: what handing the services object across does, after the check
    // above (as in the ChannelTech tests).
    let seen: crate::CoreServicesArc = unsafe { std::mem::transmute(core) };
    let chan = ChannelId(7);
    // A prefix method reaches the old core…
    assert_eq!(seen.pbx_start(chan).into_result(), Err(Cause::USER_BUSY));
    // …the new ones answer their defaults: no transfer, no variables.
    let refused = seen.channel_blind_transfer(chan, "demo".into(), "700".into(), RVec::new());
    assert_eq!(refused.into_result(), Err(Cause::FACILITY_NOT_IMPLEMENTED));
    assert_eq!(
        seen.channel_attended_transfer(chan, chan).into_result(),
        Err(Cause::FACILITY_NOT_IMPLEMENTED)
    );
    assert!(seen.channel_get_var(chan, "X".into()).is_none());
    seen.channel_set_var(chan, "X".into(), "1".into());
    // Services added since answer their defaults too: no turns, no hints.
    seen.turn_started();
    seen.turn_ended();
    let host = crate::guest::Host::new(seen.clone());
    assert_eq!(host.hint_watch("demo", "6001", |_| {}), None);
    host.hint_unwatch(1);
    assert_eq!(host.mwi_watch("1234@default", |_, _| {}), None);
    host.mwi_unwatch(1);
}

/// `CoreServices` as the first transfer services left it (up to
/// `channel_set_var`): later services must come after these, in this order.
mod services_first_transfer {
    use crate::services::{LogLevel, SchedCallbackBox};
    use crate::{
        Capabilities, Cause, ChannelId, ChannelInfo, ChannelSpec, ChannelState, Codec,
        DeviceState_NE, Frame,
    };
    use abi_stable::sabi_trait;
    use abi_stable::std_types::{RArc, ROption, RResult, RStr, RString, RVec, Tuple2};

    #[sabi_trait]
    pub trait CoreServices: Send + Sync + Clone {
        fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);
        fn max_log_level(&self) -> LogLevel;
        fn sched_add(&self, delay_ms: u32, cb: SchedCallbackBox) -> u64;
        fn sched_del(&self, id: u64) -> bool;
        fn channel_alloc(&self, spec: ChannelSpec) -> RResult<ChannelInfo, Cause>;
        fn channel_set_state(&self, id: ChannelId, state: ChannelState);
        fn channel_set_codecs(&self, id: ChannelId, codecs: RVec<Codec>);
        fn channel_hangup(&self, id: ChannelId, cause: Cause);
        fn queue_frame(&self, id: ChannelId, frame: Frame);
        fn pbx_start(&self, id: ChannelId) -> RResult<(), Cause>;
        fn post_event(&self, name: RStr<'_>, fields: RVec<Tuple2<RString, RString>>);
        fn config_dir(&self) -> RString;
        fn data_dir(&self) -> RString;
        fn translatable(&self, from: Capabilities, to: Capabilities) -> bool;
        #[sabi(last_prefix_field)]
        fn channel_caller_id(&self, id: ChannelId) -> ROption<Tuple2<RString, RString>>;
        fn plugin_failed(&self, reason: RString) {
            let _ = reason;
        }
        fn device_state_changed(&self, device: RStr<'_>, state: DeviceState_NE) {
            let _ = (device, state);
        }
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
        fn channel_get_var(&self, id: ChannelId, name: RStr<'_>) -> ROption<RString> {
            let _ = (id, name);
            ROption::RNone
        }
        fn channel_set_var(&self, id: ChannelId, name: RStr<'_>, value: RStr<'_>) {
            let _ = (id, name, value);
        }
    }

    pub type CoreServicesArc = CoreServices_TO<'static, RArc<()>>;
}

#[test]
fn services_are_only_ever_appended() {
    let (first, now) = (
        <services_first_transfer::CoreServicesArc as StableAbi>::LAYOUT,
        <crate::CoreServicesArc as StableAbi>::LAYOUT,
    );
    // A method inserted before channel_get_var would move its slot: the
    // layout check compares the methods in order and refuses it.
    assert!(
        loader_accepts(now, first),
        "a plugin of then on a core of now"
    );
    assert!(
        loader_accepts(first, now),
        "a plugin of now on a core of then"
    );
}
