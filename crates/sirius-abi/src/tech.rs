//! The channel technology interface (`ast_channel_tech`), FFI side.
//!
//! Plugins do not implement this trait by hand: they implement the plain Rust
//! [`crate::guest::ChannelDriver`] and [`crate::guest::export_plugin`] wraps it so
//! that every call runs under `catch_unwind` (an unwinding panic would abort the
//! whole PBX at the `extern "C"` boundary).

use crate::{Capabilities, Cause, ChannelId, DeviceState_NE, Frame, Indication_NE, TechInfo};
use abi_stable::sabi_trait;
use abi_stable::std_types::{RArc, ROption, RResult, RString};

/// A channel technology as the core calls it. All calls are short and never block:
/// they update plugin state or hand work to the plugin's own runtime.
///
/// **Growing it (interface 2.x).** Its vtable is an abi_stable prefix type whose
/// prefix ends at [`ChannelTech::native_bridge`] (`#[sabi(last_prefix_field)]`).
/// A method added later goes *after* it, *with a default body*: a newer core
/// calling it on a plugin built before it exists runs that default instead
/// (abi_stable checks which vtable slots the plugin has), and the layout check
/// at load accepts both older and newer plugins. Never move the attribute, never
/// reorder or remove a method: that is a new interface version.
#[sabi_trait]
pub trait ChannelTech: Send + Sync + Clone {
    /// Type, description, capabilities.
    fn info(&self) -> TechInfo;

    /// `requester`: create an outbound channel towards `dest` (e.g. `bob`, `600@bob`).
    /// Fails with BEARERCAPABILITY_NOTAVAIL when no audio codec is shared, CONGESTION on
    /// resource exhaustion, SUBSCRIBER_ABSENT for an unregistered or unreachable peer.
    fn request_call(
        &self,
        caps: Capabilities,
        dest: RString,
        requestor: ROption<ChannelId>,
    ) -> RResult<ChannelId, Cause>;

    /// Places the call on a channel created by `request_call` (`ast_call`).
    /// A technology may queue it and refuse later by hanging the channel up
    /// with the cause (chan_sip does: a dialplan task must not wait for its
    /// driver); an error returned here is refused at once.
    fn call(&self, chan: ChannelId, dest: RString, timeout_ms: u32) -> RResult<(), Cause>;

    /// Answers an inbound channel.
    fn answer(&self, chan: ChannelId) -> RResult<(), Cause>;

    /// Hangs the channel up with `cause` (CANCEL, BYE or a final response as fits).
    fn hangup(&self, chan: ChannelId, cause: Cause) -> RResult<(), Cause>;

    /// Signals an indication to the far end.
    /// An indication newer than the plugin reads as `Err` from `as_enum()`.
    fn indicate(&self, chan: ChannelId, indication: Indication_NE) -> RResult<(), Cause>;

    /// Sends a media frame to the far end.
    fn write_frame(&self, chan: ChannelId, frame: Frame) -> RResult<(), Cause>;

    /// Sends a DTMF digit (as RFC 4733 or INFO per the peer's dtmfmode).
    fn send_digit(&self, chan: ChannelId, digit: u32, duration_ms: u32) -> RResult<(), Cause>;

    /// Device state of a resource (a peer name).
    fn device_state(&self, resource: RString) -> DeviceState_NE;

    /// Both channels are this technology's: relay their media directly (Asterisk's
    /// native RTP bridge), so no frame crosses the plugin boundary. An error means
    /// the core must bridge them itself.
    #[sabi(last_prefix_field)]
    fn native_bridge(&self, a: ChannelId, b: ChannelId) -> RResult<(), Cause>;

    /// A native bridge (or early-media link) that [`ChannelTech::native_bridge`]
    /// made between `a` and `b` has ended, and at least one of the legs lives on
    /// for now: stop relaying between them. The core owns bridge membership, so
    /// this is how the technology learns that a link it carries is over without
    /// inferring it: a bridged leg hung up (the notice comes before the core
    /// hangs up the other), an early-media callee failed or lost to another.
    /// `a` and `b` are in the order `native_bridge` got them. A notice about a
    /// pair no longer relayed is to be ignored.
    ///
    /// First method after the prefix (interface 2 still): a plugin built before
    /// it runs this default, doing nothing, and its relay ends when its legs
    /// hang up, as it always did.
    fn native_unbridge(&self, _a: ChannelId, _b: ChannelId) -> RResult<(), Cause> {
        RResult::ROk(())
    }

    /// Asks the far end of `chan` to call `dest` instead (`ast_transfer`,
    /// the dialplan's `Transfer()`): a SIP technology sends REFER. The
    /// answer only says whether the request went out; the outcome comes
    /// later through `CoreServices::channel_transfer_result`.
    /// Default (a technology built before it, or one without transfer):
    /// `FACILITY_NOT_IMPLEMENTED`, which `Transfer()` reports as
    /// `TRANSFERSTATUS=UNSUPPORTED`.
    fn transfer(&self, _chan: ChannelId, _dest: RString) -> RResult<(), Cause> {
        RResult::RErr(Cause::FACILITY_NOT_IMPLEMENTED)
    }
}

/// A channel technology object as the core holds it.
pub type ChannelTechArc = ChannelTech_TO<'static, RArc<()>>;
