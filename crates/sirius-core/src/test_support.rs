//! In-process fixtures for unit tests (the core's, and with the
//! `test-support` feature other crates' such as the dialplan's): a
//! technology that records what the core asks of it, and a core with it
//! registered as `Rec`.

use crate::core::{Core, TechEntry};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, ROption, RResult, RString};
use sirius_abi::{
    Capabilities, Cause, ChannelId, ChannelSpec, ChannelState, ChannelTech, ChannelTech_TO, Codec,
    DeviceState, DeviceState_NE, Direction, Frame, Indication_NE, TechInfo,
};
use std::sync::Arc;

/// A technology that only records what the core gives it.
#[derive(Clone, Default)]
pub struct Recorder {
    /// Channels hung up, in order.
    pub hangups: Arc<parking_lot::Mutex<Vec<ChannelId>>>,
    /// Frames written, with their channel.
    pub frames: Arc<parking_lot::Mutex<Vec<(ChannelId, Frame)>>>,
    /// `native_bridge` succeeds (and is recorded in `log`); else refused
    /// with CONGESTION.
    pub native: bool,
    /// `native_bridge`, `native_unbridge` and `hangup` calls, in order
    /// (`bridge 1 2`, `unbridge 1 2`, `hangup 2`): the order the core keeps.
    pub log: Arc<parking_lot::Mutex<Vec<String>>>,
    /// `request_call` makes an outbound `Rec` leg (state Down, resource the
    /// destination), as a real technology would, instead of refusing with
    /// CONGESTION: the test then rings and answers it through the registry.
    pub dialable: bool,
    /// `transfer` is accepted (logged as `transfer <chan> <dest>`); else
    /// the default, not implemented.
    pub transfers: bool,
    /// The core the recorder allocates requested legs in (set by [`core_with`]).
    core: Arc<std::sync::OnceLock<std::sync::Weak<Core>>>,
}

impl Recorder {
    /// A recorder whose native bridges succeed.
    pub fn native() -> Recorder {
        Recorder {
            native: true,
            ..Recorder::default()
        }
    }

    /// A recorder whose `request_call` makes outbound legs (see [`Recorder::dialable`]).
    pub fn dialable() -> Recorder {
        Recorder {
            dialable: true,
            ..Recorder::default()
        }
    }

    /// A dialable recorder whose `transfer` is accepted (see
    /// [`Recorder::transfers`]).
    pub fn transferring() -> Recorder {
        Recorder {
            transfers: true,
            ..Recorder::dialable()
        }
    }

    /// Takes the log so far.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock())
    }
}

impl ChannelTech for Recorder {
    fn info(&self) -> TechInfo {
        TechInfo {
            tech_type: "Rec".into(),
            description: "records hangups".into(),
            capabilities: Capabilities::of(&[Codec::PCMU]),
            devicestate: false,
            presencestate: false,
            indications: false,
            transfer: false,
        }
    }
    fn request_call(
        &self,
        _: Capabilities,
        dest: RString,
        _: ROption<ChannelId>,
    ) -> RResult<ChannelId, Cause> {
        let core = self.core.get().and_then(std::sync::Weak::upgrade);
        match core {
            Some(core) if self.dialable => RResult::ROk(
                core.channels
                    .alloc(&ChannelSpec {
                        tech: "Rec".into(),
                        resource: dest,
                        state: ChannelState::Down,
                        direction: Direction::Outbound,
                        context: "".into(),
                        exten: "".into(),
                        caller_num: "".into(),
                        caller_name: "".into(),
                        codecs: vec![Codec::PCMU].into(),
                        accountcode: "".into(),
                    })
                    .id,
            ),
            _ => RResult::RErr(Cause::CONGESTION),
        }
    }
    fn call(&self, _: ChannelId, _: RString, _: u32) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn answer(&self, _: ChannelId) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn hangup(&self, chan: ChannelId, _: Cause) -> RResult<(), Cause> {
        self.hangups.lock().push(chan);
        self.log.lock().push(format!("hangup {}", chan.0));
        RResult::ROk(())
    }
    fn indicate(&self, _: ChannelId, _: Indication_NE) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn write_frame(&self, chan: ChannelId, frame: Frame) -> RResult<(), Cause> {
        self.frames.lock().push((chan, frame));
        RResult::ROk(())
    }
    fn send_digit(&self, _: ChannelId, _: u32, _: u32) -> RResult<(), Cause> {
        RResult::ROk(())
    }
    fn device_state(&self, _: RString) -> DeviceState_NE {
        DeviceState::Unknown.to_ne()
    }
    fn native_bridge(&self, a: ChannelId, b: ChannelId) -> RResult<(), Cause> {
        if !self.native {
            return RResult::RErr(Cause::CONGESTION);
        }
        self.log.lock().push(format!("bridge {} {}", a.0, b.0));
        RResult::ROk(())
    }
    fn native_unbridge(&self, a: ChannelId, b: ChannelId) -> RResult<(), Cause> {
        self.log.lock().push(format!("unbridge {} {}", a.0, b.0));
        RResult::ROk(())
    }
    fn transfer(&self, chan: ChannelId, dest: RString) -> RResult<(), Cause> {
        if !self.transfers {
            return RResult::RErr(Cause::FACILITY_NOT_IMPLEMENTED);
        }
        self.log.lock().push(format!("transfer {} {dest}", chan.0));
        RResult::ROk(())
    }
}

/// A core (on a temporary directory) with `tech` registered as `Rec` by module `test`.
pub fn core_with(tech: &Recorder) -> (Arc<Core>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::config::Settings::default();
    let paths = crate::config::Paths::resolve(dir.path(), &settings, dir.path());
    let log = crate::logging::LogHub::install(0, 0);
    let core = Core::new(paths, settings, Default::default(), log).unwrap();
    let _ = tech.core.set(Arc::downgrade(&core));
    core.techs.write().insert(
        "rec".into(),
        TechEntry {
            info: tech.info(),
            tech: ChannelTech_TO::from_ptr(RArc::new(tech.clone()), TD_Opaque),
            module: "test".into(),
        },
    );
    (core, dir)
}

/// An inbound `Rec` leg, Up, µ-law.
pub fn leg(core: &Core, resource: &str) -> ChannelId {
    leg_with(core, resource, Codec::PCMU)
}

/// An inbound `Rec` leg, Up, carrying `codec`.
pub fn leg_with(core: &Core, resource: &str, codec: Codec) -> ChannelId {
    core.channels
        .alloc(&ChannelSpec {
            tech: "Rec".into(),
            resource: resource.into(),
            state: ChannelState::Up,
            direction: Direction::Inbound,
            context: "demo".into(),
            exten: "600".into(),
            caller_num: "6001".into(),
            caller_name: "".into(),
            codecs: vec![codec].into(),
            accountcode: "".into(),
        })
        .id
}
