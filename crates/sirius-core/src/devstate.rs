//! Device state (Asterisk's `devicestate.c`): the last known state of every
//! device a channel technology reports, and subscribers told when one changes.
//!
//! Plugins push states through `CoreServices::device_state_changed`
//! (`SIP/alice` is `NOT_INUSE`); anything in the core (hints, BLF
//! subscriptions, a future `core show hints`) subscribes here instead of
//! polling every technology. Only changes are passed on: a plugin may report
//! the same state on every registration refresh, and a subscriber that sends a
//! NOTIFY per report would flood the phones.

use parking_lot::Mutex;
use sirius_abi::DeviceState;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

/// What a subscriber is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStateChange {
    /// Full device name, `Tech/resource` (`SIP/alice`).
    pub device: String,
    /// The state before (`Unknown` for a device not seen yet).
    pub previous: DeviceState,
    /// The new state.
    pub state: DeviceState,
}

type Callback = Arc<dyn Fn(&DeviceStateChange) + Send + Sync>;

#[derive(Default)]
struct Inner {
    /// Last state by device name, as reported (case kept, compared as is).
    states: HashMap<String, DeviceState>,
    subscribers: Vec<(u64, Callback)>,
    next_id: u64,
}

/// The device-state cache and its subscribers. One per core.
#[derive(Default)]
pub struct DeviceStates {
    inner: Arc<Mutex<Inner>>,
}

/// A live subscription; dropping it unsubscribes.
#[must_use = "dropping the subscription unsubscribes at once"]
pub struct Subscription {
    inner: Weak<Mutex<Inner>>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.lock().subscribers.retain(|(id, _)| *id != self.id);
        }
    }
}

impl DeviceStates {
    /// An empty cache.
    pub fn new() -> DeviceStates {
        DeviceStates::default()
    }

    /// Calls `f` on every change from now on, until the [`Subscription`] is
    /// dropped. `f` runs on the thread that reported the change (often a
    /// plugin's): it must be quick and must not block; hand real work (a
    /// NOTIFY) to a thread or channel of your own. It may subscribe or drop
    /// subscriptions itself: no lock is held while it runs.
    pub fn subscribe(
        &self,
        f: impl Fn(&DeviceStateChange) + Send + Sync + 'static,
    ) -> Subscription {
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.subscribers.push((id, Arc::new(f)));
        Subscription {
            inner: Arc::downgrade(&self.inner),
            id,
        }
    }

    /// Records `device`'s state; tells every subscriber when it differs from
    /// the last one recorded. Returns whether it was a change.
    pub fn changed(&self, device: &str, state: DeviceState) -> bool {
        let (change, subscribers) = {
            let mut inner = self.inner.lock();
            let previous = inner
                .states
                .insert(device.to_string(), state)
                .unwrap_or(DeviceState::Unknown);
            if previous == state {
                return false;
            }
            let subscribers: Vec<Callback> =
                inner.subscribers.iter().map(|(_, f)| f.clone()).collect();
            let change = DeviceStateChange {
                device: device.to_string(),
                previous,
                state,
            };
            (change, subscribers)
        };
        for f in subscribers {
            f(&change);
        }
        true
    }

    /// The last state reported for `device`, if any.
    pub fn get(&self, device: &str) -> Option<DeviceState> {
        self.inner.lock().states.get(device).copied()
    }

    /// Every device with its last state, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, DeviceState)> {
        let mut v: Vec<(String, DeviceState)> = self
            .inner
            .lock()
            .states
            .iter()
            .map(|(d, s)| (d.clone(), *s))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Forgets every device of technology `tech` (its plugin went away): their
    /// states become `Unavailable` for subscribers, as Asterisk reports a
    /// device whose driver is gone.
    pub fn tech_gone(&self, tech: &str) {
        let prefix = format!("{}/", tech.to_ascii_lowercase());
        let devices: Vec<String> = self
            .inner
            .lock()
            .states
            .keys()
            .filter(|d| d.to_ascii_lowercase().starts_with(&prefix))
            .cloned()
            .collect();
        for d in devices {
            self.changed(&d, DeviceState::Unavailable);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(states: &DeviceStates) -> (Subscription, Arc<Mutex<Vec<DeviceStateChange>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (states.subscribe(move |c| s.lock().push(c.clone())), seen)
    }

    #[test]
    fn subscribers_hear_changes_only_until_they_drop_the_subscription() {
        let states = DeviceStates::new();
        let (sub_a, a) = recorder(&states);
        let (sub_b, b) = recorder(&states);
        assert!(states.changed("SIP/alice", DeviceState::NotInUse));
        // The same state again is not a change: nobody is told.
        assert!(!states.changed("SIP/alice", DeviceState::NotInUse));
        assert!(states.changed("SIP/alice", DeviceState::InUse));
        let expected = vec![
            DeviceStateChange {
                device: "SIP/alice".into(),
                previous: DeviceState::Unknown,
                state: DeviceState::NotInUse,
            },
            DeviceStateChange {
                device: "SIP/alice".into(),
                previous: DeviceState::NotInUse,
                state: DeviceState::InUse,
            },
        ];
        assert_eq!(*a.lock(), expected);
        assert_eq!(*b.lock(), expected);
        drop(sub_a);
        assert!(states.changed("SIP/alice", DeviceState::Ringing));
        assert_eq!(a.lock().len(), 2, "unsubscribed");
        assert_eq!(b.lock().len(), 3);
        assert_eq!(b.lock()[2].state, DeviceState::Ringing);
        assert_eq!(states.get("SIP/alice"), Some(DeviceState::Ringing));
        assert_eq!(states.get("SIP/bob"), None);
        drop(sub_b);
    }

    #[test]
    fn a_callback_may_subscribe_without_deadlocking() {
        let states = Arc::new(DeviceStates::new());
        let inner_subs = Arc::new(Mutex::new(Vec::new()));
        let (st, subs) = (states.clone(), inner_subs.clone());
        let _outer = states.subscribe(move |_| subs.lock().push(st.subscribe(|_| {})));
        assert!(states.changed("SIP/alice", DeviceState::InUse));
        assert_eq!(inner_subs.lock().len(), 1);
    }

    #[test]
    fn a_technology_gone_makes_its_devices_unavailable() {
        let states = DeviceStates::new();
        states.changed("SIP/alice", DeviceState::InUse);
        states.changed("Test/x", DeviceState::NotInUse);
        let (_sub, seen) = recorder(&states);
        states.tech_gone("SIP");
        assert_eq!(
            *seen.lock(),
            vec![DeviceStateChange {
                device: "SIP/alice".into(),
                previous: DeviceState::InUse,
                state: DeviceState::Unavailable,
            }]
        );
        assert_eq!(
            states.snapshot(),
            vec![
                ("SIP/alice".to_string(), DeviceState::Unavailable),
                ("Test/x".to_string(), DeviceState::NotInUse)
            ]
        );
    }
}
