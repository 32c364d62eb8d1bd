//! The host side of `CoreServices`: what each loaded module gets.
//!
//! It holds a `Weak<Core>` because the core holds the plugin: a strong reference
//! here would be a cycle. Every method is written not to panic (an unwinding
//! panic here would abort at the `extern "C"` boundary the call came through).

use crate::core::Core;
use crate::events::Event;
use crate::logging::Origin;
use crate::translate;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec, Tuple2};
use sirius_abi::{
    Capabilities, Cause, ChannelId, ChannelInfo, ChannelSpec, ChannelState, Codec, CoreServices,
    DeviceState, DeviceState_NE, Direction, Frame, LogLevel, SchedCallbackBox,
};
use std::sync::{Arc, Weak};

/// Services for one module.
#[derive(Clone)]
pub struct HostServices {
    core: Weak<Core>,
    module: Arc<str>,
}

impl HostServices {
    /// Services for `module`.
    pub fn new(core: Weak<Core>, module: &str) -> HostServices {
        HostServices {
            core,
            module: Arc::from(module),
        }
    }

    fn core(&self) -> Option<Arc<Core>> {
        self.core.upgrade()
    }
}

impl CoreServices for HostServices {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        self.log_at(level, target, RStr::from_str(""), 0, message);
    }

    fn log_at(
        &self,
        level: LogLevel,
        target: RStr<'_>,
        file: RStr<'_>,
        line: u32,
        message: RStr<'_>,
    ) {
        if let Some(core) = self.core() {
            // The module of a plugin's line is the plugin (Asterisk names
            // the loadable module), whichever of its crates logged it.
            let file = file.as_str();
            let origin = Origin {
                file: Some(file).filter(|s| !s.is_empty()),
                line: Some(line).filter(|l| *l > 0),
                module: Some(&self.module),
            };
            core.log
                .write(level, target.as_str(), &origin, message.as_str());
        }
    }

    fn max_log_level(&self) -> LogLevel {
        self.core().map_or(LogLevel::Info, |c| c.log.file_level())
    }

    fn sched_add(&self, delay_ms: u32, mut cb: SchedCallbackBox) -> u64 {
        match self.core() {
            Some(core) => core.sched.add(delay_ms, Box::new(move || cb.run())),
            None => 0,
        }
    }

    fn sched_del(&self, id: u64) -> bool {
        self.core().is_some_and(|c| c.sched.del(id))
    }

    fn channel_alloc(&self, spec: ChannelSpec) -> RResult<ChannelInfo, Cause> {
        let Some(core) = self.core() else {
            return RResult::RErr(Cause::FAILURE);
        };
        if core.refusing_calls() {
            return RResult::RErr(Cause::CONGESTION);
        }
        let info = core.channels.alloc(&spec);
        log::debug!("{} allocated channel '{}'", self.module, info.name);
        if spec.direction == Direction::Inbound {
            sirius_abi::verbose!(
                3,
                "Incoming call on '{}' to {}@{}",
                info.name,
                spec.exten,
                spec.context
            );
        }
        RResult::ROk(info)
    }

    fn channel_set_state(&self, id: ChannelId, state: ChannelState) {
        if let Some(core) = self.core() {
            core.channels.set_state(id, state);
        }
    }

    fn channel_set_codecs(&self, id: ChannelId, codecs: RVec<Codec>) {
        if let Some(core) = self.core() {
            core.channels.update(id, |c| c.codecs = codecs.to_vec());
        }
    }

    fn channel_caller_id(&self, id: ChannelId) -> ROption<Tuple2<RString, RString>> {
        self.core()
            .and_then(|core| {
                core.channels.read(id, |c| {
                    Tuple2(
                        RString::from(c.caller_num.as_str()),
                        RString::from(c.caller_name.as_str()),
                    )
                })
            })
            .into()
    }

    fn channel_hangup(&self, id: ChannelId, cause: Cause) {
        if let Some(core) = self.core() {
            core.channel_gone(id, cause);
        }
    }

    fn queue_frame(&self, id: ChannelId, frame: Frame) {
        if let Some(core) = self.core() {
            core.bridge_frame(id, frame);
        }
    }

    fn pbx_start(&self, id: ChannelId) -> RResult<(), Cause> {
        match self.core() {
            Some(core) => core.pbx_start(id).into(),
            None => RResult::RErr(Cause::FAILURE),
        }
    }

    fn post_event(&self, name: RStr<'_>, fields: RVec<Tuple2<RString, RString>>) {
        if let Some(core) = self.core() {
            core.events.publish(Event {
                name: name.to_string(),
                fields: fields
                    .into_iter()
                    .map(|Tuple2(k, v)| (k.into(), v.into()))
                    .collect(),
            });
        }
    }

    fn config_dir(&self) -> RString {
        self.core().map_or_else(RString::new, |c| {
            c.paths.config_dir.display().to_string().into()
        })
    }

    fn data_dir(&self) -> RString {
        let Some(core) = self.core() else {
            return RString::new();
        };
        let dir = core.paths.data_dir.join(&*self.module);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            log::error!("Cannot create data directory {}: {e}", dir.display());
        }
        dir.display().to_string().into()
    }

    fn translatable(&self, from: Capabilities, to: Capabilities) -> bool {
        translate::translatable(from, to)
    }

    fn plugin_failed(&self, reason: RString) {
        if let Some(core) = self.core() {
            core.plugin_failed(&self.module, reason.as_str());
        }
    }

    fn channel_blind_transfer(
        &self,
        transferor: ChannelId,
        context: RStr<'_>,
        exten: RStr<'_>,
        vars: RVec<Tuple2<RString, RString>>,
    ) -> RResult<ChannelId, Cause> {
        let Some(core) = self.core() else {
            return RResult::RErr(Cause::FAILURE);
        };
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|Tuple2(k, v)| (k.into(), v.into()))
            .collect();
        core.blind_transfer(transferor, context.as_str(), exten.as_str(), &vars)
            .into()
    }

    fn channel_attended_transfer(
        &self,
        t1: ChannelId,
        t2: ChannelId,
    ) -> RResult<Tuple2<ChannelId, ChannelId>, Cause> {
        let Some(core) = self.core() else {
            return RResult::RErr(Cause::FAILURE);
        };
        core.attended_transfer(t1, t2)
            .map(|(a, c)| Tuple2(a, c))
            .into()
    }

    fn channel_transfer_result(&self, id: ChannelId, result: RResult<(), Cause>) {
        if let Some(core) = self.core() {
            core.transfer_result(id, result.into_result());
        }
    }

    fn channel_pickup(&self, ringing: ChannelId, picker: ChannelId) -> RResult<(), Cause> {
        match self.core() {
            Some(core) => core.pickup(ringing, picker).into(),
            None => RResult::RErr(Cause::FAILURE),
        }
    }

    fn channel_replace(&self, old: ChannelId, new: ChannelId) -> RResult<(), Cause> {
        match self.core() {
            Some(core) => core.replace(old, new).into(),
            None => RResult::RErr(Cause::FAILURE),
        }
    }

    fn turn_started(&self) {
        crate::deferred::turn_started();
    }

    fn turn_ended(&self) {
        crate::deferred::turn_ended();
    }

    fn hint_watch(
        &self,
        context: RStr<'_>,
        exten: RStr<'_>,
        mut cb: sirius_abi::services::HintCallbackBox,
    ) -> ROption<Tuple2<u64, i32>> {
        let Some(core) = self.core() else {
            return ROption::RNone;
        };
        core.watch_hint(
            context.as_str(),
            exten.as_str(),
            Box::new(move |state| cb.changed(state.bits())),
        )
        .map(|(id, state)| Tuple2(id, state.bits()))
        .into()
    }

    fn hint_unwatch(&self, id: u64) {
        if let Some(core) = self.core() {
            core.unwatch_hint(id);
        }
    }

    fn mwi_watch(
        &self,
        mailboxes: RStr<'_>,
        mut cb: sirius_abi::services::MwiCallbackBox,
    ) -> ROption<abi_stable::std_types::Tuple3<u64, u32, u32>> {
        let Some(core) = self.core() else {
            return ROption::RNone;
        };
        let Ok(boxes) = crate::mwi::mailbox_list(mailboxes.as_str()) else {
            return ROption::RNone;
        };
        let (id, (new, old)) = core
            .mwi
            .watch(boxes, Box::new(move |new, old| cb.changed(new, old)));
        ROption::RSome(abi_stable::std_types::Tuple3(id, new, old))
    }

    fn mwi_unwatch(&self, id: u64) {
        if let Some(core) = self.core() {
            core.mwi.unwatch(id);
        }
    }

    fn channel_get_var(&self, id: ChannelId, name: RStr<'_>) -> ROption<RString> {
        self.core()
            .and_then(|core| {
                core.channels
                    .read(id, |c| c.vars.fetch(name.as_str()).map(RString::from))
            })
            .flatten()
            .into()
    }

    fn channel_set_var(&self, id: ChannelId, name: RStr<'_>, value: RStr<'_>) {
        if let Some(core) = self.core() {
            core.channels
                .update(id, |c| c.vars.store(name.as_str(), value.as_str()));
        }
    }

    fn device_state_changed(&self, device: RStr<'_>, state: DeviceState_NE) {
        let Some(core) = self.core() else { return };
        let state = DeviceState::from_ne(&state);
        if core.devstates.changed(device.as_str(), state) {
            log::debug!("{}: device '{device}' is {}", self.module, state.as_str());
            core.events.publish(Event {
                name: "DeviceStateChange".into(),
                fields: vec![
                    ("Device".into(), device.to_string()),
                    ("State".into(), state.as_str().into()),
                ],
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HostServices;
    use crate::test_support::{core_with, leg, Recorder};
    use abi_stable::std_types::RStr;
    use sirius_abi::{Capabilities, Cause, Codec, CoreServices, DeviceState};
    use std::sync::Arc;

    #[test]
    fn a_failed_plugin_is_unregistered_and_its_calls_fail_at_once() {
        let rec = Recorder::default();
        let (core, _dir) = core_with(&rec);
        let (a, b) = (leg(&core, "a"), leg(&core, "b"));
        assert_eq!(core.bridge(a, b), Ok("simple_bridge"));
        core.devstates.changed("Rec/a", DeviceState::InUse);
        let caps = Capabilities::of(&[Codec::PCMU]);
        // Alive: the request reaches the technology (which refuses on its own).
        assert_eq!(core.request("Rec", caps, "x", None), Err(Cause::CONGESTION));

        let services = HostServices::new(Arc::downgrade(&core), "test");
        services.plugin_failed("thread 'rec-monitor' panicked: boom".into());

        assert!(core.tech("Rec").is_none(), "unregistered");
        assert_eq!(core.failed_tech("rec").as_deref(), Some("test"));
        assert_eq!(
            core.request("Rec", caps, "x", None),
            Err(Cause::REQUESTED_CHAN_UNAVAIL)
        );
        // Its channels are gone with that cause, and the dead plugin was not
        // asked to hang them up.
        assert!(!core.channels.exists(a) && !core.channels.exists(b));
        assert_eq!(
            core.channels.ended_cause(a),
            Some(Cause::REQUESTED_CHAN_UNAVAIL)
        );
        assert!(rec.hangups.lock().is_empty());
        assert_eq!(core.devstates.get("Rec/a"), Some(DeviceState::Unavailable));
        // A technology that never existed still says so.
        assert_eq!(
            core.request("Nope", caps, "x", None),
            Err(Cause::NOSUCHDRIVER)
        );
    }

    /// A dialplan with one extension, `700` in `demo`, that records whom it
    /// started and what their variables were then.
    #[derive(Default)]
    struct OneExten {
        started: parking_lot::Mutex<Vec<(sirius_abi::ChannelId, Option<String>)>>,
    }

    impl crate::core::PbxEngine for OneExten {
        fn start(
            &self,
            core: &Arc<crate::core::Core>,
            chan: sirius_abi::ChannelId,
        ) -> Result<(), Cause> {
            let referred = core
                .channels
                .get(chan)
                .and_then(|c| c.vars.fetch("SIPREFERREDBYHDR").map(str::to_string));
            self.started.lock().push((chan, referred));
            Ok(())
        }
        fn show(&self, _: Option<&str>) -> Result<String, String> {
            Ok(String::new())
        }
        fn exists(&self, context: &str, exten: &str) -> bool {
            (context, exten) == ("demo", "700")
        }
        fn reload(&self) -> Result<String, String> {
            Ok(String::new())
        }
        fn run_app(
            &self,
            _: &Arc<crate::core::Core>,
            _: sirius_abi::ChannelId,
            _: &str,
            _: &str,
        ) -> Result<(), Cause> {
            Ok(())
        }
        fn await_answer(
            &self,
            _: &Arc<crate::core::Core>,
            _: sirius_abi::ChannelId,
            _: crate::originate::OriginateTarget,
        ) {
        }
    }

    #[test]
    fn a_plugin_transfers_blind_and_reads_and_sets_variables_through_its_services() {
        use abi_stable::std_types::{RString, Tuple2};
        let rec = Recorder::native();
        let (core, _dir) = core_with(&rec);
        let engine = Arc::new(OneExten::default());
        core.set_pbx_engine(engine.clone());
        let (a, b) = (leg(&core, "a"), leg(&core, "b"));
        core.bridge(a, b).unwrap();
        let services = HostServices::new(Arc::downgrade(&core), "test");

        // Variables: set with an inheritance prefix, read by the bare name.
        services.channel_set_var(a, "__TRANSFER_CONTEXT".into(), "demo".into());
        assert_eq!(
            services
                .channel_get_var(a, "TRANSFER_CONTEXT".into())
                .into_option(),
            Some(RString::from("demo"))
        );
        assert!(services.channel_get_var(a, "NOPE".into()).is_none());
        let gone = sirius_abi::ChannelId(9_999);
        services.channel_set_var(gone, "X".into(), "1".into());
        assert!(services.channel_get_var(gone, "X".into()).is_none());

        // A target the context lacks: refused, still bridged.
        let vars = || {
            vec![Tuple2(
                RString::from("__SIPREFERREDBYHDR"),
                RString::from("<sip:a@pbx>"),
            )]
            .into()
        };
        let refused = services.channel_blind_transfer(a, "demo".into(), "701".into(), vars());
        assert_eq!(refused.into_result(), Err(Cause::UNALLOCATED));
        assert_eq!(core.channels.get(b).unwrap().bridged_to, Some(a));
        // a transfers b: b leaves the bridge, its vars set before it starts.
        let done = services.channel_blind_transfer(a, "demo".into(), "700".into(), vars());
        assert_eq!(done.into_result(), Ok(b));
        assert_eq!(
            *engine.started.lock(),
            vec![(b, Some("<sip:a@pbx>".to_string()))]
        );
        assert_eq!(core.channels.get(b).unwrap().bridged_to, None);
        assert_eq!(core.channels.get(b).unwrap().exten, "700");
        assert!(rec.take_log().iter().any(|l| l.starts_with("unbridge")));
    }

    #[test]
    fn a_pushed_device_state_reaches_subscribers_and_the_event_bus() {
        let rec = Recorder::default();
        let (core, _dir) = core_with(&rec);
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let s = seen.clone();
        let _sub = core
            .devstates
            .subscribe(move |c| s.lock().push((c.device.clone(), c.state)));
        let mut events = core.events.subscribe();
        let services = HostServices::new(Arc::downgrade(&core), "test");
        services.device_state_changed(RStr::from_str("Rec/alice"), DeviceState::Ringing.to_ne());
        services.device_state_changed(RStr::from_str("Rec/alice"), DeviceState::Ringing.to_ne());
        assert_eq!(
            *seen.lock(),
            vec![("Rec/alice".to_string(), DeviceState::Ringing)],
            "one change, told once"
        );
        let ev = events.try_recv().expect("a DeviceStateChange event");
        assert_eq!(ev.name, "DeviceStateChange");
        assert_eq!(ev.get("Device"), Some("Rec/alice"));
        assert_eq!(ev.get("State"), Some("RINGING"));
        assert!(events.try_recv().is_err(), "no event for a repeat");
    }
}
