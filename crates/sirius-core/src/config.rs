//! Core configuration: `sirius.toml` (settings, directories) and `modules.toml`
//! (what the loader loads). Unknown keys are errors, reported with file and line,
//! so a typo never silently falls back to a default.

use serde::Deserialize;
use std::path::{Path, PathBuf};

pub use sirius_conf::{load_toml, parse_toml, ConfigError};

/// `sirius.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `[general]`.
    pub general: General,
    /// `[directories]`.
    pub directories: Directories,
}

/// `[general]` of `sirius.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct General {
    /// Name shown in `core show settings`.
    pub systemname: String,
    /// Initial console verbosity (`core set verbose`).
    pub verbose: u32,
    /// Initial debug level (`core set debug`).
    pub debug: u32,
    /// Maximum simultaneous calls; 0 for no limit.
    pub maxcalls: u32,
    /// Refuse new calls (CONGESTION: SIP 503 with Retry-After) while the
    /// machine's CPUs are busier than this share, 0.0–1.0 (Asterisk's
    /// `maxload`, measured over the last half second); 0 for no limit.
    pub maxload: f64,
    /// Open-files limit to set at start (Asterisk's `maxfiles`); 0 raises
    /// the soft limit to the hard one. Each call leg holds two sockets.
    pub maxfiles: u64,
}

impl Default for General {
    fn default() -> Self {
        General {
            systemname: "sirius".into(),
            verbose: 3,
            debug: 0,
            maxcalls: 0,
            maxload: 0.0,
            maxfiles: 0,
        }
    }
}

/// `[directories]` of `sirius.toml`. Relative paths are relative to the config directory.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Directories {
    /// Where plugin libraries are; default: the directory of the `sirius` executable,
    /// which is where cargo puts the cdylibs it builds.
    pub modules: Option<PathBuf>,
    /// Where the console socket `sirius.ctl` lives.
    pub run: Option<PathBuf>,
    /// Where the `messages` log file is written.
    pub log: Option<PathBuf>,
    /// Where modules persist state.
    pub data: Option<PathBuf>,
}

/// `modules.toml`: Asterisk's `modules.conf`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModulesConfig {
    /// Load every module found in the modules directory (`autoload=yes`).
    pub autoload: bool,
    /// Modules to load explicitly, in this order, before autoloaded ones (`load =>`).
    pub load: Vec<String>,
    /// Modules never to autoload (`noload =>`).
    pub noload: Vec<String>,
}

impl Default for ModulesConfig {
    fn default() -> Self {
        ModulesConfig {
            autoload: true,
            load: Vec::new(),
            noload: Vec::new(),
        }
    }
}

/// Resolved paths the daemon works with.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `-C`: where `sirius.toml` and the module configs are.
    pub config_dir: PathBuf,
    /// Plugin libraries.
    pub modules_dir: PathBuf,
    /// Console socket directory.
    pub run_dir: PathBuf,
    /// Log directory.
    pub log_dir: PathBuf,
    /// Persistent data.
    pub data_dir: PathBuf,
}

impl Paths {
    /// Resolves the directories of `settings` against `config_dir`.
    /// `exe_dir` is the default module directory.
    pub fn resolve(config_dir: &Path, settings: &Settings, exe_dir: &Path) -> Paths {
        let rel = |p: &Option<PathBuf>, default: &str| -> PathBuf {
            let p = p.clone().unwrap_or_else(|| PathBuf::from(default));
            if p.is_absolute() {
                p
            } else {
                config_dir.join(p)
            }
        };
        let modules_dir = match &settings.directories.modules {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => config_dir.join(p),
            None => exe_dir.to_path_buf(),
        };
        Paths {
            config_dir: config_dir.to_path_buf(),
            modules_dir,
            run_dir: rel(&settings.directories.run, "run"),
            log_dir: rel(&settings.directories.log, "log"),
            data_dir: rel(&settings.directories.data, "lib"),
        }
    }

    /// The console socket path.
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join("sirius.ctl")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_and_line() {
        let text = "[general]\nverbose = 3\nverbsoe = 4\n";
        let e = parse_toml::<Settings>(Path::new("etc/sirius.toml"), text).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("etc/sirius.toml:3: unknown field `verbsoe`"),
            "{s}"
        );
    }

    #[test]
    fn defaults_and_relative_paths() {
        let s: Settings = parse_toml(Path::new("x"), "[directories]\nrun = \"r\"\n").unwrap();
        assert_eq!(s.general.verbose, 3);
        let p = Paths::resolve(Path::new("/etc/sirius"), &s, Path::new("/usr/lib/sirius"));
        assert_eq!(p.socket(), PathBuf::from("/etc/sirius/r/sirius.ctl"));
        assert_eq!(p.modules_dir, PathBuf::from("/usr/lib/sirius"));
        let m: ModulesConfig = parse_toml(Path::new("m"), "noload = [\"chan_x\"]").unwrap();
        assert!(m.autoload);
        assert_eq!(m.noload, vec!["chan_x"]);
    }
}
