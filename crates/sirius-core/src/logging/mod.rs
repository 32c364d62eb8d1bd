//! The host logger: one `log` sink that fans records out to Asterisk's
//! logger channels (the console with every attached remote console, and
//! files such as `messages`, `security` and `full`, configured in
//! `logger.toml`: [`config`]), with Asterisk's two knobs:
//!
//! * `core set verbose N`: N ≥ 1 shows notices (`info!`) on the console, and
//!   verbose lines (`sirius_abi::verbose!(n, …)`, one call's progress) of
//!   level n ≤ N go to the channels that take `verbose`; above N (and above
//!   every channel's own `verbose(N)`) they are dropped before they are even
//!   formatted.
//! * `core set debug N`: N ≥ 1 produces `debug!`, N ≥ 2 also `trace!`.
//!
//! Errors, warnings, notices and security events always go to the file
//! channels that take them, so the record of what happened does not depend on
//! someone's console setting. Plugins log through `CoreServices::log_at`,
//! which lands in [`LogHub::write`]; the loader pushes level changes to them
//! so their `log` copies filter the same way. Lines look like Asterisk's
//! ([`format`]), so tools written for Asterisk's logs (fail2ban) read them.
//!
//! Files are written by a thread of their own: a line is appended to the
//! channel's buffer in memory, and the writer empties the buffers into the
//! files every few milliseconds. A busy SIP thread thus pays neither a
//! `write(2)` nor a thread wake-up per line (measured: both were a visible
//! share of its time at thousands of calls per second), and lines reach the
//! disk within moments; `log::logger().flush()` (the daemon calls it on the
//! way out) writes everything pending at once.

pub mod config;
pub mod format;
mod rotate;

pub use config::{Class, LoggerConfig, Mask, RotateStrategy, Target};
pub use format::Origin;

use chrono::Local;
use parking_lot::{Mutex, RwLock};
use sirius_abi::LogLevel;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;

/// Where console log lines go: a closure that prints one line (above the prompt).
pub type Printer = Box<dyn Fn(&str) + Send + Sync>;

/// The log fan-out point. One per process.
pub struct LogHub {
    verbose: AtomicU32,
    debug: AtomicU32,
    console: Mutex<Option<Printer>>,
    remote: broadcast::Sender<Arc<str>>,
    /// The timestamp text of the current second: formatting the local time
    /// (time zone lookup included) once per second, not once per line.
    stamp: Mutex<Stamp>,
    channels: RwLock<Channels>,
    writer: AtomicBool,
}

struct Stamp {
    second: u64,
    text: String,
    format: String,
    /// False when the format shows fractions of a second.
    per_second: bool,
}

/// How often the writer thread empties the buffers into the files.
const FILE_TICK: std::time::Duration = std::time::Duration::from_millis(5);

/// The configured channels and their open files.
struct Channels {
    config: LoggerConfig,
    /// The log directory; `None` until [`LogHub::configure`] (startup: the
    /// console only).
    dir: Option<PathBuf>,
    console: Option<Sink>,
    files: Vec<Arc<FileSink>>,
    /// Every class some channel takes.
    wanted: Mask,
    /// The highest `verbose(N)` of a channel.
    max_verbosity: u32,
}

/// What a channel takes.
#[derive(Clone, Copy)]
struct Sink {
    mask: Mask,
    verbosity: Option<u32>,
}

/// One file channel: its lines waiting, and the file.
struct FileSink {
    path: PathBuf,
    sink: Sink,
    pending: Mutex<Pending>,
    file: Mutex<Option<std::fs::File>>,
}

/// Lines waiting for one file.
#[derive(Default)]
struct Pending {
    text: String,
    dropped: u64,
}

/// The most text that waits for one file (the writer empties it every 5 ms;
/// only a stalled disk fills it).
const QUEUE_LIMIT: usize = 8 << 20;

impl FileSink {
    /// Queues a line; past [`QUEUE_LIMIT`] (the disk stalled) lines are
    /// counted instead, and the count is written when the file takes lines
    /// again, as Asterisk's logger does past `logger_queue_limit`.
    fn push(&self, line: &str) {
        let mut p = self.pending.lock();
        if p.text.len() + line.len() >= QUEUE_LIMIT {
            p.dropped += 1;
            return;
        }
        p.text.push_str(line);
        p.text.push('\n');
    }

    /// The waiting lines, with a line for those dropped.
    fn take(&self) -> String {
        let mut p = self.pending.lock();
        let mut text = std::mem::take(&mut p.text);
        if p.dropped > 0 {
            let stamp = Local::now().format(config::DEFAULT_DATEFORMAT).to_string();
            let origin = Origin {
                file: Some(file!()),
                line: Some(line!()),
                module: Some(module_path!()),
            };
            let why = format!(
                "{} log lines dropped: the file took none for a while",
                p.dropped
            );
            text.push_str(&format::line(&stamp, Class::Warning, &origin, "", &why));
            text.push('\n');
            p.dropped = 0;
        }
        text
    }

    /// Writes what is pending (one `write(2)` for all of it). The file lock
    /// is held from taking the lines until they are written, so a `flush`
    /// racing the writer thread waits for that thread's batch instead of
    /// returning before it reached the file.
    fn drain(&self) {
        let mut file = self.file.lock();
        let text = self.take();
        if text.is_empty() {
            return;
        }
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(text.as_bytes());
        }
    }

    /// Writes what is pending, then `then` with the file closed (a rename),
    /// then opens the path again.
    fn reopen(&self, then: impl FnOnce(&Path) -> std::io::Result<()>) -> std::io::Result<()> {
        let mut file = self.file.lock();
        let text = self.take();
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(text.as_bytes());
        }
        let moved = then(&self.path);
        let opened = open_append(&self.path);
        match opened {
            Ok(f) => {
                *file = Some(f);
                moved
            }
            // Keep writing to the old file rather than losing lines.
            Err(e) => Err(e),
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// One row of `logger show channels`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    /// The file's path (empty for the console).
    pub channel: String,
    /// `Console` or `File`.
    pub kind: &'static str,
    /// `Enabled`, or `Disabled` when the file could not be opened.
    pub status: &'static str,
    /// The levels it takes (`NOTICE WARNING ERROR`).
    pub levels: String,
}

/// A configuration could not be put in place; the running one stays.
#[derive(Debug, thiserror::Error)]
pub enum LoggerError {
    /// `logger.toml` is wrong.
    #[error(transparent)]
    Config(#[from] sirius_conf::ConfigError),
    /// A file channel could not be opened.
    #[error("cannot open log file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be moved away by `logger rotate`.
    #[error("cannot rotate {path}: {source}")]
    Rotate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

static HUB: OnceLock<Arc<LogHub>> = OnceLock::new();

struct HubLogger(Arc<LogHub>);

impl log::Log for HubLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        LogLevel::from_level(m.level()) <= self.0.file_level()
    }
    fn log(&self, record: &log::Record<'_>) {
        let level = LogLevel::from_level(record.level());
        if !self.0.wants(level, record.target()) {
            return; // a line nobody asked for: not even formatted
        }
        let origin = Origin {
            file: record.file(),
            line: record.line(),
            module: record.module_path(),
        };
        self.0
            .write(level, record.target(), &origin, &record.args().to_string());
    }
    fn flush(&self) {
        self.0.flush_file();
    }
}

impl LogHub {
    /// Installs the process-wide hub as the `log` logger (first call wins) and returns it.
    pub fn install(verbose: u32, debug: u32) -> Arc<LogHub> {
        HUB.get_or_init(|| {
            let (remote, _) = broadcast::channel(1024);
            let config = LoggerConfig::default();
            let hub = Arc::new(LogHub {
                verbose: AtomicU32::new(verbose),
                debug: AtomicU32::new(debug),
                console: Mutex::new(None),
                remote,
                stamp: Mutex::new(Stamp::new(&config.dateformat)),
                channels: RwLock::new(Channels::console_only(config)),
                writer: AtomicBool::new(false),
            });
            let _ = log::set_boxed_logger(Box::new(HubLogger(hub.clone())));
            log::set_max_level(hub.file_level().to_filter());
            hub
        })
        .clone()
    }

    /// The installed hub, if any.
    pub fn get() -> Option<Arc<LogHub>> {
        HUB.get().cloned()
    }

    /// The file channels now (the lock is not held while they write: a
    /// stalled disk must not stop the threads that log).
    fn files(&self) -> Vec<Arc<FileSink>> {
        self.channels.read().files.clone()
    }

    /// Writes the lines waiting for the files now.
    pub fn flush_file(&self) {
        for f in self.files() {
            f.drain();
        }
    }

    /// Puts `config` in place, its files in `dir` (created if need be).
    /// A file that cannot be opened is left out (`Disabled` in `logger show
    /// channels`) and returned in the errors; the others work, as Asterisk's
    /// logger does.
    pub fn configure(&self, config: LoggerConfig, dir: &Path) -> Vec<LoggerError> {
        let mut files = Vec::new();
        let mut failed = Vec::new();
        for c in &config.channels {
            let Target::File(name) = &c.target else {
                continue;
            };
            let path = dir.join(name);
            let file = match open_append(&path) {
                Ok(f) => Some(f),
                Err(source) => {
                    failed.push(LoggerError::Open {
                        path: path.clone(),
                        source,
                    });
                    None
                }
            };
            files.push(Arc::new(FileSink {
                path,
                sink: Sink {
                    mask: c.mask,
                    verbosity: c.verbosity,
                },
                pending: Mutex::new(Pending::default()),
                file: Mutex::new(file),
            }));
        }
        *self.stamp.lock() = Stamp::new(&config.dateformat);
        let new = Channels::new(config, Some(dir.to_path_buf()), files);
        let old = std::mem::replace(&mut *self.channels.write(), new);
        for f in &old.files {
            f.drain();
        }
        self.start_writer();
        failed
    }

    /// `logger reload`: reads `path` again and reopens every file. A broken
    /// file (the error names its line) leaves the running channels as they
    /// were, reopened all the same: logrotate's `postrotate` runs this, and a
    /// typo in logger.toml must not leave Sirius writing into the rotated
    /// files while fail2ban reads the new ones.
    pub fn reload(&self, path: &Path, dir: &Path) -> Result<(), Vec<LoggerError>> {
        match LoggerConfig::load(path) {
            Ok(config) => {
                let failed = self.configure(config, dir);
                if failed.is_empty() {
                    Ok(())
                } else {
                    Err(failed)
                }
            }
            Err(e) => {
                let mut errors = vec![LoggerError::Config(e)];
                errors.extend(self.reopen().err());
                Err(errors)
            }
        }
    }

    /// Closes and opens every file again (SIGHUP): after logrotate moved
    /// `messages` away, lines go to a new one. The lines waiting are written
    /// to the old file first. A file that cannot be opened again is named in
    /// the error (and keeps its old file); the others are reopened.
    pub fn reopen(&self) -> Result<(), LoggerError> {
        let mut first = Ok(());
        for f in self.files() {
            if let Err(source) = f.reopen(|_| Ok(())) {
                if first.is_ok() {
                    first = Err(LoggerError::Open {
                        path: f.path.clone(),
                        source,
                    });
                }
            }
        }
        first
    }

    /// `logger rotate`: every file moved away by the configured strategy
    /// and opened anew. Returns the new names of the files moved, and the
    /// files that could not be (the others are rotated all the same).
    pub fn rotate(&self) -> (Vec<PathBuf>, Vec<LoggerError>) {
        let strategy = self.channels.read().config.rotate;
        let (mut moved, mut failed) = (Vec::new(), Vec::new());
        for f in self.files() {
            let mut to = None;
            match f.reopen(|path| {
                to = rotate::rotate(path, strategy)?;
                Ok(())
            }) {
                Ok(()) => moved.extend(to),
                Err(source) => failed.push(LoggerError::Rotate {
                    path: f.path.clone(),
                    source,
                }),
            }
        }
        (moved, failed)
    }

    /// The channels as `logger show channels` lists them.
    pub fn channels(&self) -> Vec<ChannelRow> {
        let c = self.channels.read();
        let mut rows = Vec::new();
        if let Some(s) = c.console {
            rows.push(ChannelRow {
                channel: String::new(),
                kind: "Console",
                status: "Enabled",
                levels: s.mask.words().trim_end().to_string(),
            });
        }
        for f in &c.files {
            rows.push(ChannelRow {
                channel: f.path.display().to_string(),
                kind: "File",
                status: if f.file.lock().is_some() {
                    "Enabled"
                } else {
                    "Disabled"
                },
                levels: f.sink.mask.words().trim_end().to_string(),
            });
        }
        rows
    }

    /// `logger show channels`, Asterisk's layout.
    pub fn show_channels(&self) -> String {
        let mut out = format!(
            "Logger queue limit: {} KiB per file\n\n",
            QUEUE_LIMIT / 1024
        );
        let mut row = |name: &str, kind: &str, formatter: &str, status: &str, conf: &str| {
            out.push_str(&format!(
                "{name:<35.35} {kind:<8.8} {formatter:<10.10} {status:<9.9} {conf}\n"
            ));
        };
        row("Channel", "Type", "Formatter", "Status", "Configuration");
        row("-------", "----", "---------", "------", "-------------");
        for c in self.channels() {
            row(
                &c.channel,
                c.kind,
                "default",
                c.status,
                &format!(" - {} ", c.levels),
            );
        }
        out
    }

    fn start_writer(&self) {
        if self.writer.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(hub) = HUB.get().map(Arc::downgrade) else {
            return; // a hub outside the static (none today): flushed by hand
        };
        let _ = std::thread::Builder::new()
            .name("logger".into())
            .spawn(move || {
                while let Some(hub) = hub.upgrade() {
                    hub.flush_file();
                    drop(hub);
                    std::thread::sleep(FILE_TICK);
                }
            });
    }

    /// Routes console output through `printer` (the local console's line editor),
    /// instead of standard error.
    pub fn set_console_printer(&self, printer: Option<Printer>) {
        *self.console.lock() = printer;
    }

    /// Subscribes a remote console to log lines.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.remote.subscribe()
    }

    /// Current `core set verbose` level.
    pub fn verbose(&self) -> u32 {
        self.verbose.load(Ordering::Relaxed)
    }

    /// Current `core set debug` level.
    pub fn debug(&self) -> u32 {
        self.debug.load(Ordering::Relaxed)
    }

    /// Sets the verbose level; returns the previous one.
    pub fn set_verbose(&self, n: u32) -> u32 {
        let old = self.verbose.swap(n, Ordering::Relaxed);
        log::set_max_level(self.file_level().to_filter());
        old
    }

    /// Sets the debug level; returns the previous one.
    pub fn set_debug(&self, n: u32) -> u32 {
        let old = self.debug.swap(n, Ordering::Relaxed);
        log::set_max_level(self.file_level().to_filter());
        old
    }

    /// What the console (local and remote) shows.
    pub fn console_level(&self) -> LogLevel {
        match (self.debug(), self.verbose()) {
            (d, _) if d >= 2 => LogLevel::Trace,
            (1, _) => LogLevel::Debug,
            (_, v) if v >= 1 => LogLevel::Info,
            _ => LogLevel::Warn,
        }
    }

    /// The most verbose level any channel may get: the console's, and never
    /// less than notices (files always take those). This is also the level
    /// pushed to plugins.
    pub fn file_level(&self) -> LogLevel {
        self.console_level().max(LogLevel::Info)
    }

    /// Whether some channel takes a record of `level` and `target`
    /// (checked before the message is formatted).
    fn wants(&self, level: LogLevel, target: &str) -> bool {
        let class = classify(level, target);
        let c = self.channels.read();
        c.wanted.has(class.0)
            && match class {
                (Class::Verbose, n) => n <= self.verbose().max(c.max_verbosity),
                (Class::Debug, _) => self.debug() >= 1,
                (Class::Trace, _) => self.debug() >= 2,
                _ => true,
            }
    }

    /// Writes one record to every channel that takes it.
    pub fn write(&self, level: LogLevel, target: &str, origin: &Origin<'_>, message: &str) {
        if level == LogLevel::Off {
            return;
        }
        let (class, n) = classify(level, target);
        let (verbose, debug) = (self.verbose(), self.debug());
        let produced = match class {
            Class::Debug => debug >= 1,
            Class::Trace => debug >= 2,
            _ => true,
        };
        if !produced {
            return;
        }
        let takes = |s: &Sink| {
            s.mask.has(class) && (class != Class::Verbose || n <= s.verbosity.unwrap_or(verbose))
        };
        let c = self.channels.read();
        let mut line = None;
        for f in &c.files {
            if takes(&f.sink) {
                let l = line.get_or_insert_with(|| {
                    format::line(&self.stamp(), class, origin, target, message)
                });
                f.push(l);
            }
        }
        let console = c.console.filter(|s| {
            takes(s)
                && match class {
                    Class::Notice => verbose >= 1,
                    _ => true,
                }
        });
        drop(c);
        if console.is_some() {
            let text = match class {
                Class::Verbose => format::console_verbose(message),
                _ => line
                    .unwrap_or_else(|| format::line(&self.stamp(), class, origin, target, message)),
            };
            match self.console.lock().as_ref() {
                Some(p) => p(&text),
                None => eprintln!("{text}"),
            }
            let _ = self.remote.send(Arc::from(text.as_str()));
        }
    }

    /// `Dec  3 21:00:59` (the configured `dateformat`), recomputed when the
    /// second changes.
    fn stamp(&self) -> String {
        let mut s = self.stamp.lock();
        if !s.per_second {
            return Local::now().format(&s.format).to_string();
        }
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if s.second != secs {
            s.second = secs;
            s.text = Local::now().format(&s.format).to_string();
        }
        s.text.clone()
    }
}

impl Stamp {
    fn new(format: &str) -> Stamp {
        Stamp {
            second: u64::MAX,
            text: String::new(),
            format: format.to_string(),
            per_second: !shows_fractions(format),
        }
    }
}

/// Whether a strftime format shows fractions of a second (`%f`, `%.3f`,
/// `%6f`…): such a stamp cannot be kept for a whole second.
fn shows_fractions(format: &str) -> bool {
    let mut rest = format;
    while let Some(i) = rest.find('%') {
        let after = rest[i + 1..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
        if after.starts_with('f') {
            return true;
        }
        rest = after.strip_prefix('%').unwrap_or(after);
    }
    false
}

impl Channels {
    fn console_only(config: LoggerConfig) -> Channels {
        Channels::new(config, None, Vec::new())
    }

    fn new(config: LoggerConfig, dir: Option<PathBuf>, files: Vec<Arc<FileSink>>) -> Channels {
        let console = config.console().map(|c| Sink {
            mask: c.mask,
            verbosity: c.verbosity,
        });
        let sinks = console.iter().chain(files.iter().map(|f| &f.sink));
        let wanted = sinks.clone().fold(Mask::default(), |m, s| m.union(s.mask));
        let max_verbosity = sinks.filter_map(|s| s.verbosity).max().unwrap_or(0);
        Channels {
            config,
            dir,
            console,
            files,
            wanted,
            max_verbosity,
        }
    }
}

/// A record's class, and its verbose level for a verbose line.
fn classify(level: LogLevel, target: &str) -> (Class, u32) {
    if sirius_abi::security::is_security_target(target) {
        return (Class::Security, 0);
    }
    if let Some(n) = sirius_abi::verbose_level(target) {
        return (Class::Verbose, n);
    }
    let class = match level {
        LogLevel::Off | LogLevel::Error => Class::Error,
        LogLevel::Warn => Class::Warning,
        LogLevel::Info => Class::Notice,
        LogLevel::Debug => Class::Debug,
        LogLevel::Trace => Class::Trace,
    };
    (class, 0)
}

impl LogHub {
    /// The log directory, once configured.
    pub fn dir(&self) -> Option<PathBuf> {
        self.channels.read().dir.clone()
    }
}

/// Asterisk's level words.
pub fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Off => "OFF",
        LogLevel::Error => "ERROR",
        LogLevel::Warn => "WARNING",
        LogLevel::Info => "NOTICE",
        LogLevel::Debug => "DEBUG",
        LogLevel::Trace => "TRACE",
    }
}

#[cfg(test)]
mod tests;
