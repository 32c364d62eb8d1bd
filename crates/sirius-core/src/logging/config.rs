//! `logger.toml`: which logger channels exist and what each one gets, as
//! Asterisk's `logger.conf`:
//!
//! ```toml
//! [general]
//! dateformat = "%b %e %T"          # strftime, the stamp at the start of each line
//! rotatestrategy = "sequential"    # sequential | rotate | timestamp | none
//!
//! [logfiles]
//! console = "notice,warning,error,verbose,debug,trace"
//! messages = "notice,warning,error,verbose,debug,trace"
//! security = "security"
//! # full = "notice,warning,error,debug,verbose"
//! ```
//!
//! A channel named `console` is the console (local and remote); any other
//! name is a file in the log directory (or an absolute path). Levels are
//! Asterisk's words: `error`, `warning`, `notice`, `verbose` (or
//! `verbose(N)`: this channel's own verbose level instead of `core set
//! verbose`), `debug`, `trace`, `security`, and `*` for all. A word Sirius
//! does not log (`dtmf`, `fax`) or a syslog channel is refused with the
//! file and line rather than accepted and never written.

use serde::Deserialize;
use sirius_conf::ConfigError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// What a log record is, in Asterisk's level words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `ERROR`.
    Error,
    /// `WARNING`.
    Warning,
    /// `NOTICE` (`log::info!`).
    Notice,
    /// `VERBOSE`: one call's progress (`sirius_abi::verbose!`).
    Verbose,
    /// `DEBUG` (`core set debug 1`).
    Debug,
    /// `TRACE` (`core set debug 2`).
    Trace,
    /// `SECURITY`: a security event (`sirius_abi::security`).
    Security,
}

impl Class {
    /// All classes, in the order `logger show channels` lists them (Asterisk's).
    pub const ALL: [Class; 7] = [
        Class::Debug,
        Class::Trace,
        Class::Notice,
        Class::Warning,
        Class::Error,
        Class::Verbose,
        Class::Security,
    ];

    /// The level word written in each line.
    pub fn name(self) -> &'static str {
        match self {
            Class::Error => "ERROR",
            Class::Warning => "WARNING",
            Class::Notice => "NOTICE",
            Class::Verbose => "VERBOSE",
            Class::Debug => "DEBUG",
            Class::Trace => "TRACE",
            Class::Security => "SECURITY",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of [`Class`]es.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mask(u8);

impl Mask {
    /// Every class.
    pub const ALL: Mask = Mask(0x7f);

    /// Whether `c` is in the set.
    pub fn has(self, c: Class) -> bool {
        self.0 & c.bit() != 0
    }

    /// The set with `c` added.
    pub fn with(self, c: Class) -> Mask {
        Mask(self.0 | c.bit())
    }

    /// The union.
    pub fn union(self, o: Mask) -> Mask {
        Mask(self.0 | o.0)
    }

    /// `NOTICE WARNING …` as `logger show channels` writes it.
    pub fn words(self) -> String {
        Class::ALL
            .iter()
            .filter(|c| self.has(**c))
            .map(|c| format!("{} ", c.name()))
            .collect()
    }
}

/// How `logger rotate` moves a file away (Asterisk's `rotatestrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RotateStrategy {
    /// `messages` → `messages.N`, N the first number not taken.
    #[default]
    Sequential,
    /// `messages.N` → `messages.N+1` for every N, then `messages` → `messages.0`.
    Rotate,
    /// `messages` → `messages.<seconds since 1970>`.
    Timestamp,
    /// The file is reopened where it is (for an external rotator).
    None,
}

/// Where a channel writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The console and every remote console.
    Console,
    /// A file (a name in the log directory, or an absolute path).
    File(PathBuf),
}

/// One configured channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Where it writes.
    pub target: Target,
    /// What it gets.
    pub mask: Mask,
    /// `verbose(N)`: its own verbose level; `None` follows `core set verbose`.
    pub verbosity: Option<u32>,
}

/// The whole `logger.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerConfig {
    /// strftime for each line's stamp.
    pub dateformat: String,
    /// `logger rotate`'s strategy.
    pub rotate: RotateStrategy,
    /// Channels, console first, then files by name.
    pub channels: Vec<ChannelConfig>,
}

/// Asterisk's default stamp (`Dec  3 21:00:59`).
pub const DEFAULT_DATEFORMAT: &str = "%b %e %T";

impl Default for LoggerConfig {
    /// Without a `logger.toml`: the console and `messages` get everything the
    /// verbose and debug levels let through, and security events go to a
    /// `security` file of their own (where fail2ban's jail can read them).
    fn default() -> Self {
        let all_but_security = Mask::ALL.0 & !Class::Security.bit();
        LoggerConfig {
            dateformat: DEFAULT_DATEFORMAT.into(),
            rotate: RotateStrategy::Sequential,
            channels: vec![
                ChannelConfig {
                    target: Target::Console,
                    mask: Mask(all_but_security),
                    verbosity: None,
                },
                ChannelConfig {
                    target: Target::File("messages".into()),
                    mask: Mask(all_but_security),
                    verbosity: None,
                },
                ChannelConfig {
                    target: Target::File("security".into()),
                    mask: Mask::default().with(Class::Security),
                    verbosity: None,
                },
            ],
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GeneralFile {
    dateformat: Option<Spanned<String>>,
    rotatestrategy: Option<RotateStrategy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoggerFile {
    #[serde(default)]
    general: GeneralFile,
    #[serde(default)]
    logfiles: BTreeMap<String, Spanned<String>>,
}

impl LoggerConfig {
    /// Reads `path`; a missing file is the default configuration.
    pub fn load(path: &Path) -> Result<LoggerConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LoggerConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses `logger.toml` text (named `path` in errors).
    pub fn parse(path: &Path, text: &str) -> Result<LoggerConfig, ConfigError> {
        let file: LoggerFile = sirius_conf::parse_toml(path, text)?;
        let err = |span: std::ops::Range<usize>, reason: String| ConfigError::Parse {
            path: path.to_path_buf(),
            line: sirius_conf::line_of(text, span.start),
            reason,
        };
        let dateformat = match file.general.dateformat {
            Some(f) => {
                let span = f.span();
                let f = f.into_inner();
                check_dateformat(&f).map_err(|why| err(span, why))?;
                f
            }
            None => DEFAULT_DATEFORMAT.into(),
        };
        let mut console = None;
        let mut files = Vec::new();
        for (name, levels) in file.logfiles {
            let span = levels.span();
            let (mask, verbosity) =
                parse_levels(levels.get_ref()).map_err(|why| err(span.clone(), why))?;
            if name == "console" {
                console = Some(ChannelConfig {
                    target: Target::Console,
                    mask,
                    verbosity,
                });
            } else if name.starts_with("syslog") {
                return Err(err(
                    span,
                    format!("'{name}': syslog channels are not supported (use journald via the console or a file)"),
                ));
            } else if name.is_empty() {
                return Err(err(span, "a channel needs a file name".into()));
            } else {
                files.push(ChannelConfig {
                    target: Target::File(name.into()),
                    mask,
                    verbosity,
                });
            }
        }
        Ok(LoggerConfig {
            dateformat,
            rotate: file.general.rotatestrategy.unwrap_or_default(),
            channels: console.into_iter().chain(files).collect(),
        })
    }

    /// The console channel, if configured.
    pub fn console(&self) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.target == Target::Console)
    }
}

/// `notice,warning,error,verbose(3)` → mask and channel verbose level.
fn parse_levels(text: &str) -> Result<(Mask, Option<u32>), String> {
    let mut mask = Mask::default();
    let mut verbosity = None;
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let lower = word.to_ascii_lowercase();
        let class = match lower.as_str() {
            "*" => {
                mask = Mask::ALL;
                continue;
            }
            "error" => Class::Error,
            "warning" => Class::Warning,
            "notice" => Class::Notice,
            "verbose" => Class::Verbose,
            "debug" => Class::Debug,
            "trace" => Class::Trace,
            "security" => Class::Security,
            "dtmf" | "fax" => {
                return Err(format!(
                    "level '{word}': Sirius writes no {lower} log lines; remove it"
                ))
            }
            w if w.starts_with("verbose(") && w.ends_with(')') => {
                let n = &w["verbose(".len()..w.len() - 1];
                verbosity = Some(
                    n.trim()
                        .parse()
                        .map_err(|_| format!("level '{word}': verbose(N) needs a number"))?,
                );
                Class::Verbose
            }
            _ => {
                return Err(format!(
                    "unknown level '{word}' (error, warning, notice, verbose, verbose(N), debug, trace, security, *)"
                ))
            }
        };
        mask = mask.with(class);
    }
    Ok((mask, verbosity))
}

/// Refuses a strftime format chrono cannot render (it would fail at every line).
fn check_dateformat(f: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(f).any(|i| matches!(i, Item::Error)) {
        return Err(format!("dateformat '{f}' is not a valid strftime format"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LoggerConfig, String> {
        LoggerConfig::parse(Path::new("logger.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn asterisk_level_words() {
        let c = parse(
            "[general]\nrotatestrategy = \"rotate\"\n[logfiles]\nmessages = \"notice, WARNING,error\"\nfull = \"*\"\nconsole = \"verbose(3),error\"\n",
        )
        .unwrap();
        assert_eq!(c.rotate, RotateStrategy::Rotate);
        assert_eq!(c.dateformat, DEFAULT_DATEFORMAT);
        let console = c.console().unwrap();
        assert_eq!(console.mask.words(), "ERROR VERBOSE ");
        assert_eq!(console.verbosity, Some(3));
        assert_eq!(c.channels[1].target, Target::File("full".into()));
        assert_eq!(c.channels[1].mask, Mask::ALL);
        assert_eq!(c.channels[2].mask.words(), "NOTICE WARNING ERROR ");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("[logfiles]\nmessages = \"notice\"\nfull = \"notice,dtmf\"\n").unwrap_err();
        assert!(e.starts_with("logger.toml:3: level 'dtmf'"), "{e}");
        let e = parse("[logfiles]\n\nmessages = \"notise\"\n").unwrap_err();
        assert!(
            e.starts_with("logger.toml:3: unknown level 'notise'"),
            "{e}"
        );
        let e = parse("[logfiles]\nsyslog.local0 = \"notice\"\n").unwrap_err();
        assert!(e.contains("logger.toml:2:"), "{e}");
        let e = parse("[general]\ndateformat = \"%Q\"\n").unwrap_err();
        assert!(e.starts_with("logger.toml:2: dateformat"), "{e}");
        let e = parse("[general]\nrotatestrategy = \"daily\"\n").unwrap_err();
        assert!(e.starts_with("logger.toml:2:"), "{e}");
        let e = parse("[general]\nqueue = 1\n").unwrap_err();
        assert!(e.starts_with("logger.toml:2: unknown field `queue`"), "{e}");
    }

    #[test]
    fn the_sample_is_the_default() {
        let sample = include_str!("../../../../etc/logger.toml");
        assert_eq!(parse(sample).unwrap(), LoggerConfig::default());
    }

    #[test]
    fn no_file_is_the_default() {
        let c = LoggerConfig::load(Path::new("/nonexistent/logger.toml")).unwrap();
        assert_eq!(c, LoggerConfig::default());
        assert!(!c.console().unwrap().mask.has(Class::Security));
        assert!(c.channels[2].mask.has(Class::Security));
    }
}
