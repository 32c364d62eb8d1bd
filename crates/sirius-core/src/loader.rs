//! The module loader: `module load|unload|reload`, autoload, `module show`.
//!
//! Loading goes through abi_stable's `lib_header_from_path` +
//! `init_root_module`, which checks the library's interface version and the
//! layout of every type reachable from its root module before any plugin code
//! runs. (`RootModule::load_from_file` is not used: it caches one module per
//! interface type, so a second plugin would come back as the first.)
//!
//! abi_stable never unloads a library (`dlclose` would invalidate code a thread
//! may still run). `module unload` is therefore a graceful stop of the plugin
//! instance; `module load` again starts a fresh instance from the same library.

use crate::core::{Core, TechEntry};
use crate::services::HostServices;
use abi_stable::abi_stability::abi_checking::get_checking_globals;
use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, RString};
use abi_stable::StableAbi;
use sirius_abi::plugin::older_plugin_fits;
use sirius_abi::{
    CommandSpec, CoreServices_TO, LogLevel, PluginArc, PluginModuleRef, SupportLevel,
    INTERFACE_VERSION,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// A loaded, running module.
pub struct Module {
    /// Name as typed in `module load` (`chan_sip`).
    pub name: String,
    /// The library file.
    pub path: PathBuf,
    /// Description from the root module.
    pub description: String,
    /// Support level from the root module.
    pub support: SupportLevel,
    /// When it was loaded.
    pub loaded_at: Instant,
    /// Shared so a command can run on it without holding the module list lock.
    plugin: Arc<PluginArc>,
    tech_type: Option<String>,
    commands: Vec<CommandSpec>,
    /// Why the plugin reported itself failed (`CoreServices::plugin_failed`).
    failed: Option<String>,
}

/// A row of `module show`.
#[derive(Debug, Clone)]
pub struct ModuleSummary {
    /// `chan_sip.so`.
    pub name: String,
    /// Description.
    pub description: String,
    /// Active uses.
    pub use_count: u32,
    /// `Running`, or `Failed` once the plugin reported its runtime dead.
    pub status: &'static str,
    /// `core`, `extended`, `deprecated`.
    pub support: &'static str,
}

/// A successful `module load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// The plugin runs.
    Loaded,
    /// The plugin chose not to run (e.g. no configuration): not an error at startup.
    Declined(String),
}

/// Why a module operation failed. Messages are short and name the module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleError {
    /// No library of that name in the modules directory.
    #[error("{name}: no such module in {dir}")]
    NotFound {
        /// Module name.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// Already running.
    #[error("{name}: already loaded")]
    AlreadyLoaded {
        /// Module name.
        name: String,
    },
    /// Not running.
    #[error("{name}: not loaded")]
    NotLoaded {
        /// Module name.
        name: String,
    },
    /// The dynamic loader refused the file.
    #[error("{name}: cannot open library: {reason}")]
    Open {
        /// Module name.
        name: String,
        /// The loader's reason.
        reason: String,
    },
    /// A library, but not a Sirius plugin (no root module symbol).
    #[error("{name}: not a Sirius plugin (no sirius_plugin root module)")]
    NotAPlugin {
        /// Module name.
        name: String,
    },
    /// Built against a different interface: version or layout mismatch.
    #[error("{name}: incompatible plugin interface: {detail}")]
    Incompatible {
        /// Module name.
        name: String,
        /// abi_stable's reason, shortened.
        detail: String,
    },
    /// The plugin's `load` failed (or panicked, which was contained).
    #[error("{name}: failed to load: {reason}")]
    Failed {
        /// Module name.
        name: String,
        /// The plugin's reason.
        reason: String,
    },
    /// Another module already registered this channel type.
    #[error("{name}: channel type '{tech}' is already registered by {owner}")]
    TechTaken {
        /// Module name.
        name: String,
        /// The channel type.
        tech: String,
        /// Who has it.
        owner: String,
    },
    /// Unload refused: calls in progress.
    #[error("{name}: in use ({count} active), not unloaded; use 'module unload -f' to hang up and unload")]
    InUse {
        /// Module name.
        name: String,
        /// Use count.
        count: u32,
    },
    /// The plugin refused to unload or reload.
    #[error("{name}: {reason}")]
    Refused {
        /// Module name.
        name: String,
        /// The plugin's reason.
        reason: String,
    },
}

/// Normalises what a user typed (`chan_sip`, `chan_sip.so`, `libchan_sip.so`,
/// a path) to a module name.
pub fn module_name(arg: &str) -> String {
    let file = Path::new(arg)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or(arg);
    let file = file.strip_suffix(".so").unwrap_or(file);
    file.strip_prefix("lib").unwrap_or(file).to_string()
}

/// Categories autoload considers, Asterisk's module name prefixes.
const AUTOLOAD_PREFIXES: &[&str] = &[
    "chan_", "res_", "app_", "pbx_", "func_", "bridge_", "codec_", "format_", "cdr_",
];

/// Shortens abi_stable's report (a 150-line dump of both layouts for a mismatch)
/// to what an administrator needs: the last `Error:` with its `Expected:` and
/// `Found:` values, or the first line for short errors (version, dlopen).
fn short_library_error(e: &LibraryError) -> String {
    let full = e.to_string();
    let lines: Vec<&str> = full
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(err_at) = lines.iter().rposition(|l| l.starts_with("Error:")) else {
        return lines.first().unwrap_or(&"unknown error").to_string();
    };
    let what = lines[err_at].trim_start_matches("Error:").trim();
    let value_after = |label: &str| {
        let i = lines[err_at..].iter().position(|l| *l == label)?;
        lines.get(err_at + i + 1).copied()
    };
    match (value_after("Expected:"), value_after("Found:")) {
        (Some(exp), Some(found)) => {
            format!("layout check failed: {what} (expected {exp}, found {found})")
        }
        _ => format!("layout check failed: {what}"),
    }
}

impl Core {
    fn module_path(&self, arg: &str) -> PathBuf {
        if arg.contains('/') {
            return PathBuf::from(arg);
        }
        self.paths
            .modules_dir
            .join(format!("lib{}.so", module_name(arg)))
    }

    /// `module load X`.
    pub fn load_module(self: &Arc<Self>, arg: &str) -> Result<LoadOutcome, ModuleError> {
        let name = module_name(arg);
        let path = self.module_path(arg);
        if self.modules.lock().iter().any(|m| m.name == name) {
            return Err(ModuleError::AlreadyLoaded { name });
        }
        if !path.exists() {
            return Err(ModuleError::NotFound {
                name,
                dir: self.paths.modules_dir.clone(),
            });
        }
        let header = lib_header_from_path(&path).map_err(|e| match e {
            LibraryError::OpenError { .. } => ModuleError::Open {
                name: name.clone(),
                reason: short_library_error(&e),
            },
            LibraryError::GetSymbolError { .. } => ModuleError::NotAPlugin { name: name.clone() },
            other => ModuleError::Incompatible {
                name: name.clone(),
                detail: short_library_error(&other),
            },
        })?;
        let root = match header.init_root_module::<PluginModuleRef>() {
            Ok(root) => Ok(root),
            // abi_stable accepts a plugin as new as the core or newer; one built
            // against an earlier 2.x (fewer methods, fewer enum variants) is
            // checked the other way round (see `older_plugin_fits`).
            Err(e @ LibraryError::AbiInstability(_)) => match header.layout() {
                Some(lib)
                    if older_plugin_fits(PluginModuleRef::LAYOUT, lib, get_checking_globals()) =>
                {
                    log::info!("{name}: built against an earlier 2.x interface; loading it");
                    // SAFETY: the layout was just checked, with the roles swapped
                    // as `older_plugin_fits` explains.
                    unsafe { header.init_root_module_with_unchecked_layout::<PluginModuleRef>() }
                }
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
        .map_err(|e| match e {
            LibraryError::RootModule { .. } => ModuleError::Failed {
                name: name.clone(),
                reason: short_library_error(&e),
            },
            other => ModuleError::Incompatible {
                name: name.clone(),
                detail: short_library_error(&other),
            },
        })?;
        if root.interface_version() != INTERFACE_VERSION {
            return Err(ModuleError::Incompatible {
                name,
                detail: format!(
                    "built for interface version {}, this core speaks version {INTERFACE_VERSION}",
                    root.interface_version()
                ),
            });
        }
        let services = CoreServices_TO::from_ptr(
            RArc::new(HostServices::new(Arc::downgrade(self), &name)),
            TD_Opaque,
        );
        let plugin = match (root.load())(services).into_result() {
            Ok(p) => p,
            Err(e) if e.declined => {
                log::info!("Declined to load {name}.so: {}", e.message);
                return Ok(LoadOutcome::Declined(e.message.into()));
            }
            Err(e) => {
                return Err(ModuleError::Failed {
                    name,
                    reason: e.message.into(),
                })
            }
        };
        plugin.set_log_level(self.log.file_level());

        let tech_type = match plugin.channel_tech().into_option() {
            Some(tech) => {
                let info = tech.info();
                let key = info.tech_type.to_ascii_lowercase();
                let mut techs = self.techs.write();
                if let Some(owner) = techs.get(&key) {
                    let err = ModuleError::TechTaken {
                        name: name.clone(),
                        tech: info.tech_type.to_string(),
                        owner: owner.module.clone(),
                    };
                    drop(techs);
                    let _ = plugin.unload(true);
                    return Err(err);
                }
                log::info!(
                    "Registered channel type '{}' ({})",
                    info.tech_type,
                    info.description
                );
                let ty = info.tech_type.to_string();
                techs.insert(
                    key,
                    TechEntry {
                        info,
                        tech,
                        module: name.clone(),
                    },
                );
                Some(ty)
            }
            None => None,
        };
        let commands = plugin.commands().into_vec();
        let module = Module {
            name: name.clone(),
            path,
            description: root.description().to_string(),
            support: root.support_level(),
            loaded_at: Instant::now(),
            plugin: Arc::new(plugin),
            tech_type,
            commands,
            failed: None,
        };
        self.modules.lock().push(module);
        log::info!("Loaded {name}.so => ({})", root.description());
        Ok(LoadOutcome::Loaded)
    }

    /// `module unload [-f] X`: refused while in use unless `force`.
    pub fn unload_module(&self, arg: &str, force: bool) -> Result<(), ModuleError> {
        let name = module_name(arg);
        let module = {
            let mut mods = self.modules.lock();
            let idx = mods
                .iter()
                .position(|m| m.name == name)
                .ok_or_else(|| ModuleError::NotLoaded { name: name.clone() })?;
            let count = mods[idx].plugin.use_count();
            // A failed plugin's count is stale: the core already freed its channels.
            if count > 0 && !force && mods[idx].failed.is_none() {
                return Err(ModuleError::InUse { name, count });
            }
            mods.remove(idx)
        };
        // Unregister first: no new calls reach a plugin that is stopping.
        if let Some(t) = &module.tech_type {
            self.techs.write().remove(&t.to_ascii_lowercase());
            self.failed_techs.write().remove(&t.to_ascii_lowercase());
        }
        let stopped = module.plugin.unload(force).into_result();
        if let (Some(why), Err(reason)) = (&module.failed, &stopped) {
            // A failed plugin is not put back: whatever is left of it is dropped.
            log::warn!("{name}: failed earlier ({why}); its unload said: {reason}");
        } else if let Err(reason) = stopped {
            let reason: String = reason.into();
            // Put it back as it was: the plugin refused and keeps running.
            if let Some(t) = &module.tech_type {
                if let Some(tech) = module.plugin.channel_tech().into_option() {
                    let info = tech.info();
                    self.techs.write().insert(
                        t.to_ascii_lowercase(),
                        TechEntry {
                            info,
                            tech,
                            module: name.clone(),
                        },
                    );
                }
            }
            self.modules.lock().push(module);
            return Err(ModuleError::Refused { name, reason });
        }
        log::info!("Unloaded {name}.so");
        Ok(())
    }

    /// `module reload X`: the plugin re-reads its configuration without dropping calls.
    pub fn reload_module(&self, arg: &str) -> Result<String, ModuleError> {
        let name = module_name(arg);
        let plugin = self
            .modules
            .lock()
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.plugin.clone())
            .ok_or_else(|| ModuleError::NotLoaded { name: name.clone() })?;
        let r = plugin
            .reload()
            .into_result()
            .map(RString::into_string)
            .map_err(|reason| ModuleError::Refused {
                name: name.clone(),
                reason: reason.into(),
            });
        if r.is_ok() {
            *self.last_reload.lock() = Instant::now();
            // The command table may have changed with the configuration.
            if let Some(m) = self.modules.lock().iter_mut().find(|m| m.name == name) {
                m.commands = plugin.commands().into_vec();
            }
        }
        r
    }

    /// Loads what `modules.toml` asks for: the `load` list first, in order, then
    /// (with `autoload`) every library in the modules directory whose name has a
    /// module category prefix (`chan_`, `res_`, `app_`…) and is not in `noload`.
    /// Failures are logged and returned; they never stop the daemon.
    pub fn autoload(self: &Arc<Self>) -> Vec<(String, Result<LoadOutcome, ModuleError>)> {
        let cfg = self.modules_config.clone();
        let noload: Vec<String> = cfg.noload.iter().map(|n| module_name(n)).collect();
        let mut names: Vec<String> = cfg.load.iter().map(|n| module_name(n)).collect();
        if cfg.autoload {
            let mut found: Vec<String> = std::fs::read_dir(&self.paths.modules_dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .filter(|f| f.starts_with("lib") && f.ends_with(".so"))
                        .map(|f| module_name(&f))
                        .filter(|n| AUTOLOAD_PREFIXES.iter().any(|p| n.starts_with(p)))
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            for n in found {
                if !names.contains(&n) && !noload.contains(&n) {
                    names.push(n);
                }
            }
        }
        let mut results = Vec::new();
        for n in names {
            let r = self.load_module(&n);
            if let Err(e) = &r {
                log::error!("{e}");
            }
            results.push((n, r));
        }
        results
    }

    /// Stops every module, newest first (`core stop`).
    pub fn unload_all(&self) {
        let names: Vec<String> = self
            .modules
            .lock()
            .iter()
            .rev()
            .map(|m| m.name.clone())
            .collect();
        for n in names {
            if let Err(e) = self.unload_module(&n, true) {
                log::warn!("{e}");
            }
        }
    }

    /// Rows for `module show`, sorted by name.
    pub fn module_list(&self) -> Vec<ModuleSummary> {
        let mut rows: Vec<ModuleSummary> = self
            .modules
            .lock()
            .iter()
            .map(|m| ModuleSummary {
                name: format!("{}.so", m.name),
                description: m.description.clone(),
                use_count: m.plugin.use_count(),
                status: if m.failed.is_some() {
                    "Failed"
                } else {
                    "Running"
                },
                support: m.support.as_str(),
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    }

    /// Every loaded plugin's metrics, for a Prometheus scrape; each plugin
    /// is asked with the module lock released.
    pub fn plugin_metrics(&self) -> Vec<sirius_abi::Metric> {
        let plugins: Vec<_> = self
            .modules
            .lock()
            .iter()
            .map(|m| m.plugin.clone())
            .collect();
        plugins
            .iter()
            .flat_map(|p| p.metrics().into_iter())
            .collect()
    }

    /// Names of loaded modules.
    pub fn module_names(&self) -> Vec<String> {
        self.modules.lock().iter().map(|m| m.name.clone()).collect()
    }

    /// Every console command the loaded plugins export, with its module.
    pub fn plugin_commands(&self) -> Vec<(String, CommandSpec)> {
        self.modules
            .lock()
            .iter()
            .flat_map(|m| m.commands.iter().map(|c| (m.name.clone(), c.clone())))
            .collect()
    }

    fn plugin_of(&self, module: &str) -> Option<Arc<PluginArc>> {
        self.modules
            .lock()
            .iter()
            .find(|m| m.name == module)
            .map(|m| m.plugin.clone())
    }

    /// Runs a plugin's `show` command for a script: its rows and fields as
    /// JSON text (`sirius -rx --json`). The module lock is not held while
    /// the plugin runs.
    pub fn run_plugin_command_json(&self, module: &str, args: &[String]) -> Result<String, String> {
        let plugin = self
            .plugin_of(module)
            .ok_or_else(|| format!("{module}: not loaded"))?;
        let args = args.iter().map(|a| RString::from(a.as_str())).collect();
        plugin
            .run_command_json(args)
            .into_result()
            .map(Into::into)
            .map_err(Into::into)
    }

    /// Runs a plugin's command. The module lock is not held while the plugin runs.
    pub fn run_plugin_command(&self, module: &str, args: &[String]) -> Result<String, String> {
        let plugin = self
            .plugin_of(module)
            .ok_or_else(|| format!("{module}: not loaded"))?;
        let args = args.iter().map(|a| RString::from(a.as_str())).collect();
        plugin
            .run_command(args)
            .into_result()
            .map(Into::into)
            .map_err(Into::into)
    }

    /// A plugin's completion candidates.
    pub fn complete_plugin_command(
        &self,
        module: &str,
        args: &[String],
        pos: usize,
    ) -> Vec<String> {
        let Some(plugin) = self.plugin_of(module) else {
            return Vec::new();
        };
        let args = args.iter().map(|a| RString::from(a.as_str())).collect();
        plugin
            .complete(args, pos as u32)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Records that `module` failed, for `module show`.
    pub(crate) fn mark_module_failed(&self, module: &str, reason: &str) {
        if let Some(m) = self.modules.lock().iter_mut().find(|m| m.name == module) {
            m.failed = Some(reason.to_string());
        }
    }

    /// Pushes the current log level to every plugin (`core set debug`).
    pub fn push_log_level(&self) {
        let level: LogLevel = self.log.file_level();
        for m in self.modules.lock().iter() {
            m.plugin.set_log_level(level);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::module_name;

    #[test]
    fn names_normalise_like_asterisk_accepts_them() {
        for arg in [
            "chan_sip",
            "chan_sip.so",
            "libchan_sip.so",
            "/usr/lib/sirius/libchan_sip.so",
        ] {
            assert_eq!(module_name(arg), "chan_sip", "{arg}");
        }
    }
}
