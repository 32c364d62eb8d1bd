//! Channels as both sides of the boundary see them: identifiers, states,
//! what a plugin asks the core to allocate, indications and media frames.

use crate::{Capabilities, Codec};
use abi_stable::nonexhaustive_enum::NonExhaustive;
use abi_stable::std_types::{RString, RVec};
use abi_stable::StableAbi;
use std::fmt;

/// The core's handle for one call leg. The core owns the channel (name, state,
/// cause, location); a plugin keeps its private per-call state keyed by this id.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ChannelId(pub u64);

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Channel states, Asterisk's `ast_channel_state`.
///
/// Deliberately exhaustive: this is the set every channel technology and the
/// dialplan agree on, unchanged in Asterisk since 1.0, and plugins build it by
/// value inside [`ChannelSpec`] (a non-exhaustive enum could not be a plain
/// field there). A new state would be a new interface version.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ChannelState {
    /// Allocated, nothing happening yet.
    Down,
    /// Reserved for a call about to be placed.
    Reserved,
    /// Off hook (analog wording, kept for completeness).
    OffHook,
    /// Digits being dialled.
    Dialing,
    /// An incoming call is ringing at us (the far end is waiting for our answer).
    Ring,
    /// The far end is ringing (we sent a call, it alerts).
    Ringing,
    /// Answered, media flowing.
    Up,
    /// The far end is busy.
    Busy,
    /// Dialing while off hook.
    DialingOffhook,
    /// Pre-ring.
    PreRing,
}

impl ChannelState {
    /// The text `core show channels` prints (`ast_state2str`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelState::Down => "Down",
            ChannelState::Reserved => "Rsrvd",
            ChannelState::OffHook => "OffHook",
            ChannelState::Dialing => "Dialing",
            ChannelState::Ring => "Ring",
            ChannelState::Ringing => "Ringing",
            ChannelState::Up => "Up",
            ChannelState::Busy => "Busy",
            ChannelState::DialingOffhook => "Dialing Offhook",
            ChannelState::PreRing => "Pre-ring",
        }
    }
}

impl Indication {
    /// The indication as it crosses the boundary.
    pub fn to_ne(self) -> Indication_NE {
        NonExhaustive::new(self)
    }
}

impl FrameKind {
    /// The kind as it crosses the boundary (for [`Frame::kind`]).
    pub fn to_ne(self) -> FrameKind_NE {
        NonExhaustive::new(self)
    }
}

impl fmt::Display for ChannelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a leg was created.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Direction {
    /// The far end called us (an INVITE arrived); the dialplan will run on it.
    Inbound,
    /// We are calling out (created by `request_call`, e.g. from `Dial`).
    Outbound,
}

/// What a plugin asks the core for when it creates a channel
/// (`ast_channel_alloc`). The core names it `<tech>/<resource>-<8 hex>`.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ChannelSpec {
    /// Channel technology type, e.g. `SIP`.
    pub tech: RString,
    /// The resource part of the name: the peer, or the host for unknown peers.
    pub resource: RString,
    /// Initial state (`Ring` for an incoming call, `Down` for an outgoing one).
    pub state: ChannelState,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Dialplan context the call starts in (inbound) or comes from.
    pub context: RString,
    /// Extension dialled (inbound) or empty.
    pub exten: RString,
    /// Caller ID number.
    pub caller_num: RString,
    /// Caller ID name.
    pub caller_name: RString,
    /// Codecs this leg can use, best first.
    pub codecs: RVec<Codec>,
    /// Account code for billing, may be empty.
    pub accountcode: RString,
}

/// What the core tells a plugin once a channel exists.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct ChannelInfo {
    /// The handle.
    pub id: ChannelId,
    /// The unique name, `SIP/alice-00000001`.
    pub name: RString,
    /// `${UNIQUEID}`: `<epoch>.<sequence>`.
    pub uniqueid: RString,
}

/// Indications a channel can be asked to play or signal (`AST_CONTROL_*`).
///
/// **Non-exhaustive across the boundary.** Asterisk has added control frames for
/// twenty years (connected line, redirecting, T.38…), so this list will grow.
/// An exhaustive `#[repr(u8)]` enum cannot: a value a plugin does not know is
/// undefined behaviour in it, and abi_stable refuses a plugin whose copy has
/// another variant count. So it crosses the boundary as [`Indication_NE`]
/// (abi_stable's `NonExhaustive`, `#[sabi(kind(WithNonExhaustive))]`): a newer
/// core may send a variant an older plugin lacks, which the plugin sees as
/// `as_enum() == Err(..)` (the guest glue answers `FACILITY_NOT_IMPLEMENTED`).
/// Its storage is fixed at 64 bytes, so a later variant may carry data (up to
/// 56 bytes: an `RString` is 32; more goes behind an `RBox`). In Rust code it
/// stays a plain `#[non_exhaustive]` enum: match it with a `_` arm.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum Indication {
    /// Far end is ringing (SIP 180).
    Ringing,
    /// Call progress with early media (SIP 183).
    Progress,
    /// Busy (SIP 486).
    Busy,
    /// Congestion (SIP 503).
    Congestion,
    /// The call was answered.
    Answer,
    /// Put on hold.
    Hold,
    /// Taken off hold.
    Unhold,
    /// Call is proceeding (SIP 100 Trying is implicit; used by ISDN-like techs).
    Proceeding,
    /// Stop any indication being played.
    StopTones,
    /// Media source changed (new SSRC expected).
    SourceChange,
}

/// Kinds of frames that flow between channels (`AST_FRAME_*`).
///
/// Non-exhaustive across the boundary ([`FrameKind_NE`] inside [`Frame`]) for
/// the reason given on [`Indication`]: text, images, T.38 and RTCP frames are
/// still to come. A kind is a code without data, so its storage is 4 bytes.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[sabi(kind(WithNonExhaustive(size = u32, traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum FrameKind {
    /// Audio payload in `codec`.
    Voice,
    /// Video payload in `codec`.
    Video,
    /// DTMF digit begins (`subclass` = the digit as a char code).
    DtmfBegin,
    /// DTMF digit ends (`subclass` = the digit, `duration_ms` set).
    DtmfEnd,
    /// A control indication (`subclass` = [`Indication`] as u8).
    Control,
    /// Nothing (keeps a path alive).
    Null,
}

/// A media or control frame passed through the core's generic bridge.
/// Same-technology calls bridge natively inside the plugin and never build these.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct Frame {
    /// What the frame carries (compare with `frame.kind == FrameKind::Voice`;
    /// `frame.kind.as_enum()` is `Err` for a kind newer than this build).
    pub kind: FrameKind_NE,
    /// Codec of `payload` for Voice/Video.
    pub codec: Codec,
    /// Digit or control subclass.
    pub subclass: u32,
    /// Number of samples in `payload` (Voice).
    pub samples: u32,
    /// Duration for DTMF end frames.
    pub duration_ms: u32,
    /// Media timestamp in the codec's clock.
    pub timestamp: u32,
    /// Sequence number, when the source has one.
    pub seqno: u32,
    /// The encoded payload.
    pub payload: RVec<u8>,
}

impl Frame {
    /// A frame of `kind` without media: the fields a control or DTMF
    /// frame does not use are zero.
    fn signal(kind: FrameKind, subclass: u32, duration_ms: u32) -> Frame {
        Frame {
            kind: kind.to_ne(),
            codec: Codec::PCMU,
            subclass,
            samples: 0,
            duration_ms,
            timestamp: 0,
            seqno: 0,
            payload: RVec::new(),
        }
    }

    /// A control frame (`AST_FRAME_CONTROL`): the far end signalled `indication`.
    pub fn control(indication: Indication) -> Frame {
        Frame::signal(FrameKind::Control, indication as u32, 0)
    }

    /// The end of a DTMF digit (`AST_FRAME_DTMF_END`).
    pub fn dtmf_end(digit: char, duration_ms: u32) -> Frame {
        Frame::signal(FrameKind::DtmfEnd, u32::from(digit), duration_ms)
    }
}

/// Device states (`AST_DEVICE_*`), for hints and busy detection.
///
/// Non-exhaustive across the boundary ([`DeviceState_NE`]) for the reason given
/// on [`Indication`] (Asterisk added `RINGINUSE` and `ONHOLD` late); a state
/// this build does not know reads as [`DeviceState::Unknown`] where it is
/// received (see [`DeviceState::from_ne`]).
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[sabi(kind(WithNonExhaustive(size = u32, traits(Debug, Clone, PartialEq, Eq))))]
#[non_exhaustive]
pub enum DeviceState {
    /// State not known.
    Unknown,
    /// Idle and reachable.
    NotInUse,
    /// On a call.
    InUse,
    /// Busy (call-limit reached or busylevel).
    Busy,
    /// Not a valid device.
    Invalid,
    /// Registered/reachable is false.
    Unavailable,
    /// Ringing.
    Ringing,
    /// Ringing while in use.
    RingInUse,
    /// On hold.
    OnHold,
}

impl DeviceState {
    /// The state as it crosses the boundary.
    pub fn to_ne(self) -> DeviceState_NE {
        NonExhaustive::new(self)
    }

    /// A received state; one newer than this build is [`DeviceState::Unknown`].
    pub fn from_ne(ne: &DeviceState_NE) -> DeviceState {
        ne.as_enum().copied().unwrap_or(DeviceState::Unknown)
    }

    /// Asterisk's `ast_devstate_str` text.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Unknown => "UNKNOWN",
            DeviceState::NotInUse => "NOT_INUSE",
            DeviceState::InUse => "INUSE",
            DeviceState::Busy => "BUSY",
            DeviceState::Invalid => "INVALID",
            DeviceState::Unavailable => "UNAVAILABLE",
            DeviceState::Ringing => "RINGING",
            DeviceState::RingInUse => "RINGINUSE",
            DeviceState::OnHold => "ONHOLD",
        }
    }
}

/// Static facts about a channel technology, for `core show channeltypes`
/// and for the core's codec check before `request_call`.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct TechInfo {
    /// Type name used in dial strings (`SIP`).
    pub tech_type: RString,
    /// One-line description.
    pub description: RString,
    /// Every codec the technology can carry.
    pub capabilities: Capabilities,
    /// Whether it reports device state.
    pub devicestate: bool,
    /// Whether it reports presence state.
    pub presencestate: bool,
    /// Whether it handles indications.
    pub indications: bool,
    /// Whether it supports transfer.
    pub transfer: bool,
}
