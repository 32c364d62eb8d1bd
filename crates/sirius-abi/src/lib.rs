//! # sirius-abi — the plugin interface
//!
//! The only crate both the core and a channel plugin (a separate cdylib) link
//! against. Everything that crosses the boundary is here, and everything here is
//! `StableAbi`: abi_stable checks the layout of the whole tree reachable from the
//! root module when a library is loaded, so a plugin built against a different
//! interface is refused instead of corrupting memory.
//!
//! * [`cause`], [`codec`], [`channel`]: the shared vocabulary (Q.850 causes, codecs
//!   and capability sets, channel states, frames).
//! * [`services`]: what the core offers plugins ([`CoreServices`]).
//! * [`tech`]: what a channel technology offers the core ([`ChannelTech`]).
//! * [`plugin`]: the plugin object and the root module ([`PluginModule`]).
//! * [`guest`]: plugin-side glue (panic containment, log forwarding, [`export_plugin!`]).

pub mod cause;
pub mod channel;
pub mod codec;
pub mod guest;
pub mod metrics;
pub mod plugin;
pub mod security;
pub mod services;
pub mod tech;
pub mod verbose;
pub mod view;

#[cfg(test)]
mod evolution_tests;

pub use cause::Cause;
pub use channel::{
    ChannelId, ChannelInfo, ChannelSpec, ChannelState, DeviceState, DeviceState_NE, Direction,
    Frame, FrameKind, FrameKind_NE, Indication, Indication_NE, TechInfo,
};
pub use codec::{Capabilities, Codec, CodecInfo, MediaKind, CODEC_TABLE};
pub use metrics::{Metric, MetricKind, Sample};
pub use plugin::{
    CommandSpec, LoadError, Plugin, PluginArc, PluginModule, PluginModuleRef, Plugin_TO,
    SupportLevel, INTERFACE_VERSION,
};
pub use security::{SecurityEvent, SecurityEventKind};
pub use services::{
    CoreServices, CoreServicesArc, CoreServices_TO, LogLevel, SchedCallback, SchedCallbackBox,
    SchedCallback_TO,
};
pub use tech::{ChannelTech, ChannelTechArc, ChannelTech_TO};
pub use verbose::verbose_level;
