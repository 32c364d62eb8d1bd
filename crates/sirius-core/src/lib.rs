//! # sirius-core
//!
//! The small core Sirius's plugins hang from, in Asterisk's terms:
//!
//! * [`sched`]: scheduler contexts (`ast_sched_*`), clock-free for tests, and a thread to run them;
//! * [`io`]: IO contexts — a tokio runtime per owner (the core's console, each plugin's monitor);
//! * [`channels`]: the channel registry, with Asterisk's counters;
//! * [`core`]: [`Core`], channel technologies, `request`/`call`/`hangup`, shutdown;
//! * [`deferred`]: work a plugin thread defers to the end of its turn (a woken dialplan);
//! * [`hints`]: hints and extension state (device states combined, `core show hints`);
//! * [`mwi`]: message-waiting counts per mailbox and their watchers (`mwi update`);
//! * [`devstate`]: device states pushed by plugins, and subscriptions to their changes;
//! * [`loader`]: the module loader (`module load|unload|reload`, autoload);
//! * [`services`]: the `CoreServices` each plugin is given;
//! * [`logging`]: console / file / remote-console logging with verbose and debug levels;
//! * [`config`], [`events`], [`translate`]: configuration, the event bus, codec translation paths.
//!
//! The vocabulary (causes, codecs, channel states) lives in `sirius-abi` and is
//! re-exported here.

pub mod bridges;
pub mod cdr;
pub mod channels;
pub mod config;
pub mod core;
pub mod deferred;
pub mod devstate;
pub mod events;
pub mod hints;
pub mod limits;
pub mod load;
pub mod loader;
pub mod logging;
pub mod memory;
pub mod mwi;
pub mod originate;
pub mod sched;
pub mod services;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod transfer;

pub use crate::core::{version_line, Core, PbxEngine, ShutdownMode, TechEntry, VERSION};
pub use sirius_abi as abi;
pub use sirius_abi::{Capabilities, Cause, ChannelId, ChannelState, Codec};
/// The IO context and G.711 translation live in the leaf crate `sirius-media`, which
/// plugins link instead of the core; re-exported so core code keeps its paths.
pub use sirius_media::{io, translate};

/// Who built this binary, where and when (`core show version`, the metrics'
/// `asterisk_core_properties`), from build.rs.
pub mod build {
    /// The user who built it.
    pub const USER: &str = env!("SIRIUS_BUILD_USER");
    /// The host it was built on.
    pub const HOST: &str = env!("SIRIUS_BUILD_HOST");
    /// The build host's system (`Linux`).
    pub const OS: &str = env!("SIRIUS_BUILD_OS");
    /// When (UTC).
    pub const DATE: &str = env!("SIRIUS_BUILD_DATE");
    /// The build host's kernel release (`uname -r`).
    pub const KERNEL: &str = env!("SIRIUS_BUILD_KERNEL");
    /// The cargo profile (`release`, `debug`): Asterisk's build options.
    pub const OPTIONS: &str = env!("SIRIUS_BUILD_OPTIONS");
}
