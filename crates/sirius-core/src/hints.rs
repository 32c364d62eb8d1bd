//! Hints and extension state (the hint half of Asterisk's `pbx.c`).
//!
//! A hint maps an extension to the devices behind it (`6001@demo` →
//! `SIP/alice`); its *extension state* is the aggregate of those devices'
//! states, which busy-lamp fields and `core show hints` show. The dialplan
//! owns the hints (they come from `extensions.toml`); the core owns device
//! states ([`crate::devstate`]) and combines the two here, so every reader
//! (the console today, SIP subscriptions next) gets the same answer.
//!
//! ```text
//!   SIP/alice: NotInUse ─┐
//!                         ├─ aggregate (Asterisk's order) ─► device state ─► extension state
//!   SIP/bob:   Ringing  ──┘        RingInUse when one rings and one is in use     "Ringing"
//! ```

use crate::core::Core;
use parking_lot::Mutex;
use sirius_abi::DeviceState;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// One hint: an extension and the devices whose state it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The context it is in.
    pub context: String,
    /// The extension (a literal, never a pattern).
    pub exten: String,
    /// The devices, `Tech/resource`, in the order written.
    pub devices: Vec<String>,
}

/// An extension's state (Asterisk's `ast_extension_states`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionState {
    /// Every device free (or none known to be otherwise).
    Idle,
    /// A device on a call.
    InUse,
    /// A device busy.
    Busy,
    /// No device reachable.
    Unavailable,
    /// A device ringing.
    Ringing,
    /// One device ringing while another is in use.
    InUseRinging,
    /// A device holding a call.
    Hold,
}

impl ExtensionState {
    /// Asterisk's name for it (`ast_extension_state2str`), as `core show
    /// hints` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtensionState::Idle => "Idle",
            ExtensionState::InUse => "InUse",
            ExtensionState::Busy => "Busy",
            ExtensionState::Unavailable => "Unavailable",
            ExtensionState::Ringing => "Ringing",
            ExtensionState::InUseRinging => "InUse&Ringing",
            ExtensionState::Hold => "Hold",
        }
    }

    /// Asterisk's `AST_EXTENSION_*` bits for it (what crosses the plugin
    /// boundary): 0 idle, 1 in use, 2 busy, 4 unavailable, 8 ringing, 16
    /// on hold, 9 in use and ringing.
    pub fn bits(self) -> i32 {
        match self {
            ExtensionState::Idle => 0,
            ExtensionState::InUse => 1,
            ExtensionState::Busy => 2,
            ExtensionState::Unavailable => 4,
            ExtensionState::Ringing => 8,
            ExtensionState::InUseRinging => 9,
            ExtensionState::Hold => 16,
        }
    }

    /// The extension state a device state makes (`ast_devstate_to_extenstate`).
    pub fn of(state: DeviceState) -> ExtensionState {
        match state {
            DeviceState::OnHold => ExtensionState::Hold,
            DeviceState::Busy => ExtensionState::Busy,
            DeviceState::Unknown | DeviceState::NotInUse => ExtensionState::Idle,
            DeviceState::Unavailable | DeviceState::Invalid => ExtensionState::Unavailable,
            DeviceState::RingInUse => ExtensionState::InUseRinging,
            DeviceState::Ringing => ExtensionState::Ringing,
            DeviceState::InUse => ExtensionState::InUse,
            // A state newer than this build: as Unknown.
            _ => ExtensionState::Idle,
        }
    }
}

/// Where a device state ranks when several are combined: the highest wins
/// (Asterisk's `ast_devstate_aggregate_add` order), except that ringing on
/// one device and use on another make `RingInUse`.
fn rank(state: DeviceState) -> u8 {
    match state {
        DeviceState::Invalid => 0,
        DeviceState::Unknown => 1,
        DeviceState::Unavailable => 2,
        DeviceState::NotInUse => 3,
        DeviceState::OnHold => 4,
        DeviceState::Ringing => 5,
        DeviceState::InUse => 6,
        DeviceState::Busy => 7,
        DeviceState::RingInUse => 8,
        _ => 1, // newer than this build: as Unknown
    }
}

/// The combined state of several devices (`Invalid` for none).
pub fn aggregate(states: impl IntoIterator<Item = DeviceState>) -> DeviceState {
    let (mut ringing, mut in_use) = (false, false);
    let mut combined = DeviceState::Invalid;
    for state in states {
        match state {
            DeviceState::Ringing => ringing = true,
            DeviceState::InUse | DeviceState::OnHold | DeviceState::Busy => in_use = true,
            _ => {}
        }
        if ringing && in_use {
            combined = DeviceState::RingInUse;
        } else if rank(state) > rank(combined) {
            combined = state;
        }
    }
    combined
}

/// What a watcher of a hint is told: its new extension state.
pub type HintCallback = Box<dyn FnMut(ExtensionState) + Send>;

/// What one watch keeps under its own lock: a change is worked out,
/// compared and told under it, so a watcher hears its states in order even
/// when two SIP threads report devices of its hint at once.
struct Told {
    /// The state last told (only changes are told).
    last: ExtensionState,
    callback: HintCallback,
}

struct Watch {
    hint: Hint,
    told: Arc<Mutex<Told>>,
}

/// The watches of hints (Asterisk's `ast_extension_state_add`), fed by the
/// device-state changes the technologies push.
#[derive(Default)]
pub struct HintWatches {
    inner: Mutex<Watches>,
}

#[derive(Default)]
struct Watches {
    next: u64,
    by_id: HashMap<u64, Watch>,
    /// The device-state subscription, made at the first watch.
    devices: Option<crate::devstate::Subscription>,
}

impl Core {
    /// Watches the hint of `exten@context`: `callback` is told each change of
    /// its extension state from now on, on the thread that reported the
    /// device change (quick, non-blocking work only: a plugin queues a
    /// NOTIFY to its own thread). Returns the watch's id and the state now;
    /// `None` when the dialplan has no such hint. The hint's devices are
    /// the ones it has now: a reload that changes them applies to new
    /// watches.
    pub fn watch_hint(
        self: &Arc<Self>,
        context: &str,
        exten: &str,
        callback: HintCallback,
    ) -> Option<(u64, ExtensionState)> {
        let hint = self
            .hints()
            .into_iter()
            .find(|h| h.context == context && h.exten == exten)?;
        let told = Arc::new(Mutex::new(Told {
            last: ExtensionState::Unavailable,
            callback,
        }));
        // Held until the first state is known: a change reported meanwhile
        // waits for it, then compares with it (nothing is missed).
        let mut first = told.lock();
        let id = {
            let mut w = self.hint_watches.inner.lock();
            if w.devices.is_none() {
                let core: Weak<Core> = Arc::downgrade(self);
                w.devices = Some(self.devstates.subscribe(move |change| {
                    if let Some(core) = core.upgrade() {
                        core.hint_device_changed(&change.device);
                    }
                }));
            }
            w.next += 1;
            let id = w.next;
            w.by_id.insert(
                id,
                Watch {
                    hint: hint.clone(),
                    told: told.clone(),
                },
            );
            id
        };
        let state = self.hint_state(&hint);
        first.last = state;
        Some((id, state))
    }

    /// Ends a watch; false when it was not there.
    pub fn unwatch_hint(&self, id: u64) -> bool {
        self.hint_watches.inner.lock().by_id.remove(&id).is_some()
    }

    /// How many watch `exten@context` (`core show hints`' Watchers).
    pub fn hint_watchers(&self, context: &str, exten: &str) -> usize {
        self.hint_watches
            .inner
            .lock()
            .by_id
            .values()
            .filter(|w| w.hint.context == context && w.hint.exten == exten)
            .count()
    }

    /// A device changed: the watches of hints it is in learn their new
    /// state, if it changed. Each watch works its state out, compares and
    /// tells under its own lock, not the table's (a callback may unwatch;
    /// it must not report device states itself).
    fn hint_device_changed(&self, device: &str) {
        let mut affected: Vec<(u64, Hint, Arc<Mutex<Told>>)> = self
            .hint_watches
            .inner
            .lock()
            .by_id
            .iter()
            .filter(|(_, w)| w.hint.devices.iter().any(|d| d == device))
            .map(|(id, w)| (*id, w.hint.clone(), w.told.clone()))
            .collect();
        // In the order the watches were made: tests see one sequence.
        affected.sort_by_key(|(id, ..)| *id);
        for (_, hint, told) in affected {
            let mut told = told.lock();
            let state = self.hint_state(&hint);
            if told.last != state {
                told.last = state;
                (told.callback)(state);
            }
        }
    }

    /// A device's state (`ast_device_state`): the last one its technology
    /// reported, else what the technology says when asked, `Invalid` for a
    /// technology nobody registered.
    pub fn device_state(&self, device: &str) -> DeviceState {
        if let Some(s) = self.devstates.get(device) {
            return s;
        }
        let Some((tech, resource)) = device.split_once('/') else {
            return DeviceState::Invalid;
        };
        match self.tech(tech) {
            Some(t) => DeviceState::from_ne(&t.tech.device_state(resource.into())),
            None => DeviceState::Invalid,
        }
    }

    /// The hints of the dialplan in force (none without one).
    pub fn hints(&self) -> Vec<Hint> {
        self.pbx_engine().map(|e| e.hints()).unwrap_or_default()
    }

    /// A hint's extension state now.
    pub fn hint_state(&self, hint: &Hint) -> ExtensionState {
        ExtensionState::of(aggregate(hint.devices.iter().map(|d| self.device_state(d))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceState::*;

    #[test]
    fn devices_combine_in_asterisks_order() {
        assert_eq!(aggregate([]), Invalid);
        assert_eq!(aggregate([NotInUse, Unavailable]), NotInUse);
        assert_eq!(aggregate([Unavailable, Unknown]), Unavailable);
        assert_eq!(aggregate([Invalid, Unknown]), Unknown);
        assert_eq!(aggregate([NotInUse, InUse]), InUse);
        assert_eq!(aggregate([InUse, Ringing]), RingInUse);
        assert_eq!(aggregate([Ringing, OnHold]), RingInUse);
        assert_eq!(aggregate([Ringing, NotInUse]), Ringing);
        assert_eq!(aggregate([OnHold, NotInUse]), OnHold);
        assert_eq!(aggregate([Busy, InUse]), Busy);
    }

    /// A dialplan of two hints: `6001@demo` (Rec/alice) and `6000@demo`
    /// (Rec/alice&Rec/bob).
    struct TwoHints;

    impl crate::core::PbxEngine for TwoHints {
        fn start(&self, _: &Arc<Core>, _: sirius_abi::ChannelId) -> Result<(), sirius_abi::Cause> {
            Ok(())
        }
        fn show(&self, _: Option<&str>) -> Result<String, String> {
            Ok(String::new())
        }
        fn exists(&self, _: &str, _: &str) -> bool {
            false
        }
        fn reload(&self) -> Result<String, String> {
            Ok(String::new())
        }
        fn run_app(
            &self,
            _: &Arc<Core>,
            _: sirius_abi::ChannelId,
            _: &str,
            _: &str,
        ) -> Result<(), sirius_abi::Cause> {
            Ok(())
        }
        fn await_answer(
            &self,
            _: &Arc<Core>,
            _: sirius_abi::ChannelId,
            _: crate::originate::OriginateTarget,
        ) {
        }
        fn hints(&self) -> Vec<Hint> {
            let hint = |exten: &str, devices: &[&str]| Hint {
                context: "demo".into(),
                exten: exten.into(),
                devices: devices.iter().map(|d| d.to_string()).collect(),
            };
            vec![
                hint("6000", &["Rec/alice", "Rec/bob"]),
                hint("6001", &["Rec/alice"]),
            ]
        }
    }

    #[test]
    fn a_hint_watcher_hears_each_change_of_its_extension_state_once() {
        let rec = crate::test_support::Recorder::default();
        let (core, _dir) = crate::test_support::core_with(&rec);
        core.set_pbx_engine(Arc::new(TwoHints));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let watch = |exten: &str| {
            let s = seen.clone();
            let name = exten.to_string();
            core.watch_hint(
                "demo",
                exten,
                Box::new(move |state| s.lock().push(format!("{name} {}", state.as_str()))),
            )
        };
        assert!(watch("6009").is_none(), "no such hint");
        // The test technology answers Unknown when asked: idle.
        let (one, now) = watch("6001").unwrap();
        assert_eq!(now, ExtensionState::Idle);
        let (all, _) = watch("6000").unwrap();
        assert_eq!(core.hint_watchers("demo", "6001"), 1);
        core.devstates.changed("Rec/alice", Ringing);
        core.devstates.changed("Rec/bob", InUse);
        // A change that leaves a hint's state as it was is not told.
        core.devstates.changed("Rec/carol", InUse);
        core.devstates.changed("Rec/alice", NotInUse);
        assert_eq!(
            *seen.lock(),
            [
                "6001 Ringing",
                "6000 Ringing",
                "6000 InUse&Ringing",
                "6001 Idle",
                "6000 InUse"
            ]
        );
        assert!(core.unwatch_hint(one) && !core.unwatch_hint(one));
        seen.lock().clear();
        core.devstates.changed("Rec/alice", Unavailable);
        core.devstates.changed("Rec/bob", NotInUse);
        assert_eq!(
            *seen.lock(),
            ["6000 Idle"],
            "6001 no longer watched; 6000: InUse then Idle"
        );
        assert!(core.unwatch_hint(all));
        assert_eq!(core.hint_watchers("demo", "6000"), 0);
    }

    #[test]
    fn extension_states_read_as_asterisk_prints_them() {
        let show =
            |states: &[DeviceState]| ExtensionState::of(aggregate(states.iter().copied())).as_str();
        assert_eq!(show(&[NotInUse]), "Idle");
        assert_eq!(show(&[Unknown]), "Idle");
        assert_eq!(show(&[Unavailable]), "Unavailable");
        assert_eq!(show(&[]), "Unavailable");
        assert_eq!(show(&[InUse, Ringing]), "InUse&Ringing");
        assert_eq!(show(&[OnHold]), "Hold");
        assert_eq!(show(&[Ringing]), "Ringing");
        assert_eq!(show(&[Busy]), "Busy");
    }
}
