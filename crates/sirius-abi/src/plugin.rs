//! The plugin object and the library's root module.

use crate::services::{CoreServicesArc, LogLevel};
use crate::tech::ChannelTechArc;
use abi_stable::library::RootModule;
use abi_stable::sabi_trait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RArc, ROption, RResult, RStr, RString, RVec};
use abi_stable::StableAbi;

/// Bumped whenever the meaning of the interface changes without its layout changing.
/// The layout itself is checked by abi_stable at load.
pub const INTERFACE_VERSION: u32 = 1;

/// Asterisk's support levels, shown by `module show`.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Debug)]
pub enum SupportLevel {
    /// Maintained as part of the core product.
    Core,
    /// Maintained, but outside the core's promise.
    Extended,
    /// Kept for compatibility, to be removed.
    Deprecated,
}

impl SupportLevel {
    /// The word `module show` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            SupportLevel::Core => "core",
            SupportLevel::Extended => "extended",
            SupportLevel::Deprecated => "deprecated",
        }
    }
}

/// One console command a plugin exports, as a table row (Kamailio's way): the core
/// registers it and routes matching lines to [`Plugin::run_command`].
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct CommandSpec {
    /// The fixed words, space separated (`sip show peers`).
    pub words: RString,
    /// One-line summary for `help`.
    pub summary: RString,
    /// Full usage text, shown on a usage error.
    pub usage: RString,
}

/// Why `load()` did not produce a running plugin.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct LoadError {
    /// True when the module chose not to run (missing config): not an error at startup.
    pub declined: bool,
    /// What happened, for the log and the console.
    pub message: RString,
}

/// A running plugin instance. Each `module load` creates a fresh one.
#[sabi_trait]
pub trait Plugin: Send + Sync {
    /// The channel technology this plugin registers, if any.
    fn channel_tech(&self) -> ROption<ChannelTechArc>;

    /// The console commands it exports.
    fn commands(&self) -> RVec<CommandSpec>;

    /// Runs one of its commands; `args` is the whole line split into words.
    /// `Err` text is printed and makes `-rx` exit non-zero.
    fn run_command(&self, args: RVec<RString>) -> RResult<RString, RString>;

    /// Tab completion for word `pos` of `args` (the last word is the partial one).
    fn complete(&self, args: RVec<RString>, pos: u32) -> RVec<RString>;

    /// Re-reads configuration without dropping calls; on error the old config stays.
    fn reload(&self) -> RResult<RString, RString>;

    /// Graceful stop before unload: refuse new calls, hang up existing ones when
    /// `force`, unregister, stop its runtime. Refused (Err) while in use unless `force`.
    fn unload(&self, force: bool) -> RResult<(), RString>;

    /// Active uses (calls), for `module show` and to refuse an unforced unload.
    fn use_count(&self) -> u32;

    /// The host's log level changed (`core set debug`): applies to the plugin's `log` copy.
    fn set_log_level(&self, level: LogLevel);
}

/// A plugin object as the core holds it.
pub type PluginArc = Plugin_TO<'static, RArc<()>>;

/// The root module every Sirius plugin library exports.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// [`INTERFACE_VERSION`] the plugin was built with.
    pub interface_version: u32,
    /// Module name (`chan_sip`).
    pub name: RStr<'static>,
    /// One-line description for `module show`.
    pub description: RStr<'static>,
    /// Support level for `module show`.
    pub support_level: SupportLevel,
    /// Creates a running instance. Never unwinds: panics are caught and returned.
    #[sabi(last_prefix_field)]
    pub load: extern "C" fn(CoreServicesArc) -> RResult<PluginArc, LoadError>,
}

impl RootModule for PluginModuleRef {
    abi_stable::declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "sirius_plugin";
    const NAME: &'static str = "sirius_plugin";
    const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
}
