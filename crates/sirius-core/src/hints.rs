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
use sirius_abi::DeviceState;

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

impl Core {
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
