//! The plugin object and the library's root module.

use crate::services::{CoreServicesArc, LogLevel};
use crate::tech::ChannelTechArc;
use abi_stable::abi_stability::abi_checking::{
    check_layout_compatibility_with_globals, CheckingGlobals,
};
use abi_stable::library::RootModule;
use abi_stable::sabi_trait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RArc, ROption, RResult, RStr, RString, RVec};
use abi_stable::type_layout::TypeLayout;
use abi_stable::StableAbi;

/// The interface version a plugin was built for; the loader refuses any other.
///
/// abi_stable checks the *layout* of everything reachable from the root module
/// at load; this number covers what a layout cannot show (a changed meaning) and
/// makes the refusal readable. History:
///
/// * 1: the first interface.
/// * 2: `ChannelTech`, `Plugin` and `CoreServices` end their prefix with
///   `#[sabi(last_prefix_field)]`, so methods can be added after it without a new
///   version; `Indication`, `FrameKind` and `DeviceState` cross as abi_stable
///   non-exhaustive enums; `CoreServices::plugin_failed` and
///   `CoreServices::device_state_changed`, the first methods after the prefix.
///   Since then, still 2: `ChannelTech::native_unbridge` (the core tells a
///   technology that a native bridge or early-media link it made has ended),
///   after `ChannelTech`'s prefix with a default that does nothing, so plugins
///   built before it load and run that default. No version bump: that is what
///   the prefix is for. Then `ChannelTech::transfer` (default: not
///   implemented) and the transfer services of `CoreServices`
///   (`channel_blind_transfer`, `channel_attended_transfer`,
///   `channel_transfer_result`, `channel_get_var`, `channel_set_var`), each
///   with a default.
///
/// Adding a method after a trait's last prefix field (with a default body), or a
/// variant to a non-exhaustive enum, keeps the version: built plugins still load.
/// Anything else (a changed signature, a field in a plain `#[repr(C)]` struct,
/// a variant of an exhaustive enum) bumps it.
pub const INTERFACE_VERSION: u32 = 2;

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
///
/// A prefix type like [`crate::ChannelTech`]: the prefix ends at
/// [`Plugin::set_log_level`]; later methods go after it, with a default body.
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
    #[sabi(last_prefix_field)]
    fn set_log_level(&self, level: LogLevel);

    /// Its metrics for the Prometheus endpoint, gathered at each scrape.
    /// Default (an older plugin): none.
    fn metrics(&self) -> RVec<crate::metrics::Metric> {
        RVec::new()
    }

    /// Runs one of its `show` commands for a script (`sirius -rx --json`):
    /// the same rows and fields as the text, as JSON text. Default (an
    /// older plugin): no JSON form.
    fn run_command_json(&self, args: RVec<RString>) -> RResult<RString, RString> {
        RResult::RErr(format!("'{}' has no JSON form", args.join(" ")).into())
    }
}

/// A plugin object as the core holds it.
pub type PluginArc = Plugin_TO<'static, RArc<()>>;

/// The root module every Sirius plugin library exports.
///
/// A prefix type since interface 1: its prefix ends at `load`; a field added
/// later goes after it and is read through an accessor that panics when an
/// older library lacks it (`missing_field(panic)`), so give such a field an
/// `Option` type or check [`PluginModule::interface_version`] first.
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

/// Whether a plugin library whose root module has layout `plugin` may be used by a
/// core whose root module has layout `core` *as an older plugin*: one built
/// against an earlier 2.x, whose copies of the prefix types have fewer methods
/// and whose non-exhaustive enums have fewer variants than the core's.
///
/// abi_stable's own check (run by `init_root_module`) accepts only the other
/// direction: the library's copy of a prefix type may have *more* fields than
/// the loader's, never fewer (`evolution_tests` shows both). That suits a plugin
/// newer than the core, but refuses every existing plugin as soon as the core
/// gains a method. So the loader, when abi_stable refuses a library, runs the
/// same check with the roles swapped: it passes when every prefix type of the
/// plugin is a prefix of the core's, every enum a subset, and everything else
/// identical. That is sound because abi_stable stores, in each vtable, which
/// of its slots exist: a core calling a method the older plugin lacks runs the
/// method's default body (which every method after the last prefix field must
/// have), and a variant the plugin lacks reads as unknown there.
///
/// `globals` is abi_stable's table of prefix types seen so far
/// (`abi_stable::abi_stability::abi_checking::get_checking_globals()` in the loader).
pub fn older_plugin_fits(
    core: &'static TypeLayout,
    plugin: &'static TypeLayout,
    globals: &CheckingGlobals,
) -> bool {
    check_layout_compatibility_with_globals(plugin, core, globals).is_ok()
}

impl RootModule for PluginModuleRef {
    abi_stable::declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "sirius_plugin";
    const NAME: &'static str = "sirius_plugin";
    const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
}
