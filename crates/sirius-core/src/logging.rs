//! The host logger: one `log` sink that writes to the console, the `messages`
//! file and every attached remote console, with Asterisk's two knobs.
//!
//! * `core set verbose N`: N ≥ 1 shows notices (`info!`) on the console, and
//!   verbose lines (`sirius_abi::verbose!(n, …)`, one call's progress) of
//!   level n ≤ N on the console and in the file; above N they are dropped
//!   before they are even formatted.
//! * `core set debug N`: N ≥ 1 shows `debug!`, N ≥ 2 also `trace!`.
//!
//! Errors and warnings always show. The file always gets notices too, so the
//! record of what happened does not depend on someone's console setting.
//! Plugins log through `CoreServices::log`, which lands in [`LogHub::write`]; the
//! loader pushes level changes to them so their `log` copies filter the same way.
//!
//! The file is written by a thread of its own: a line is appended to a
//! buffer in memory, and the writer empties the buffer into the file every
//! few milliseconds. A busy SIP monitor thus pays neither a `write(2)` nor a
//! thread wake-up per line (measured: both were a visible share of its time
//! at thousands of calls per second), and lines reach the disk within
//! moments; `log::logger().flush()` (the daemon calls it on the way out)
//! writes everything pending at once.

use chrono::Local;
use parking_lot::Mutex;
use sirius_abi::LogLevel;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;

/// Where console log lines go: a closure that prints one line (above the prompt).
pub type Printer = Box<dyn Fn(&str) + Send + Sync>;

/// The log fan-out point. One per process.
pub struct LogHub {
    verbose: AtomicU32,
    debug: AtomicU32,
    console: Mutex<Option<Printer>>,
    file: Arc<FileSink>,
    remote: broadcast::Sender<Arc<str>>,
    /// The timestamp text of the current second: formatting the local time
    /// (time zone lookup included) once per second, not once per line.
    stamp: Mutex<(u64, String)>,
}

/// How often the writer thread empties the buffer into the file.
const FILE_TICK: std::time::Duration = std::time::Duration::from_millis(5);

/// The `messages` file and the lines waiting for it.
#[derive(Default)]
struct FileSink {
    pending: Mutex<String>,
    file: Mutex<Option<std::fs::File>>,
}

impl FileSink {
    fn push(&self, line: &str) {
        let mut p = self.pending.lock();
        p.push_str(line);
        p.push('\n');
    }

    /// Writes what is pending (one `write(2)` for all of it). The file lock
    /// is held from taking the lines until they are written, so a `flush`
    /// racing the writer thread waits for that thread's batch instead of
    /// returning before it reached the file.
    fn drain(&self) {
        let mut file = self.file.lock();
        let text = std::mem::take(&mut *self.pending.lock());
        if text.is_empty() {
            return;
        }
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

static HUB: OnceLock<Arc<LogHub>> = OnceLock::new();

struct HubLogger(Arc<LogHub>);

impl log::Log for HubLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        LogLevel::from_level(m.level()) <= self.0.file_level()
    }
    fn log(&self, record: &log::Record<'_>) {
        if !self.0.wants(record.target()) {
            return; // a verbose line nobody asked for: not even formatted
        }
        self.0.write(
            LogLevel::from_level(record.level()),
            record.target(),
            &record.args().to_string(),
        );
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
            let hub = Arc::new(LogHub {
                verbose: AtomicU32::new(verbose),
                debug: AtomicU32::new(debug),
                console: Mutex::new(None),
                file: Arc::new(FileSink::default()),
                remote,
                stamp: Mutex::new((u64::MAX, String::new())),
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

    /// Writes the lines waiting for the `messages` file now.
    pub fn flush_file(&self) {
        self.file.drain();
    }

    /// Closes and opens the log file again (`logger reload`, SIGHUP): after
    /// logrotate moved `messages` away, lines go to a new one. The lines
    /// waiting are written to the old file first. An error (the directory
    /// gone, say) leaves the old file in use.
    pub fn reopen_file(&self, dir: &Path) -> std::io::Result<()> {
        self.file.drain();
        self.open_file(dir)
    }

    /// Appends to `<dir>/messages` from now on.
    pub fn open_file(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("messages"))?;
        let first = self.file.file.lock().replace(f).is_none();
        if first {
            let sink = Arc::downgrade(&self.file);
            std::thread::Builder::new()
                .name("logger".into())
                .spawn(move || {
                    while let Some(sink) = sink.upgrade() {
                        sink.drain();
                        drop(sink);
                        std::thread::sleep(FILE_TICK);
                    }
                })?;
        }
        Ok(())
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

    /// What the file gets: the console's level, and never less than notices.
    /// This is also the level pushed to plugins, since it is the most verbose sink.
    pub fn file_level(&self) -> LogLevel {
        self.console_level().max(LogLevel::Info)
    }

    /// Whether a record of `target` passes the verbose level (anything but
    /// a verbose line does).
    fn wants(&self, target: &str) -> bool {
        sirius_abi::verbose_level(target).is_none_or(|n| n <= self.verbose())
    }

    /// Writes one record to every sink that wants it.
    pub fn write(&self, level: LogLevel, target: &str, message: &str) {
        if level > self.file_level() || level == LogLevel::Off || !self.wants(target) {
            return;
        }
        let line = match sirius_abi::verbose_level(target) {
            // Asterisk's verbose lines carry their own "-- " marks.
            Some(_) => format!("[{}] VERBOSE: {message}", self.stamp()),
            None => format!(
                "[{}] {}[{}]: {}",
                self.stamp(),
                level_name(level),
                target,
                message
            ),
        };
        self.file.push(&line);
        if level <= self.console_level() {
            match self.console.lock().as_ref() {
                Some(p) => p(&line),
                None => eprintln!("{line}"),
            }
            let _ = self.remote.send(Arc::from(line.as_str()));
        }
    }
}

impl LogHub {
    /// `Nov 22 05:13:25`, recomputed when the second changes.
    fn stamp(&self) -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut s = self.stamp.lock();
        if s.0 != secs {
            *s = (secs, Local::now().format("%b %e %H:%M:%S").to_string());
        }
        s.1.clone()
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
mod tests {
    use super::*;

    /// The hub is one per process: its tests take turns.
    static HUB_TESTS: Mutex<()> = Mutex::new(());

    #[test]
    fn levels_follow_verbose_and_debug() {
        let _turn = HUB_TESTS.lock();
        let hub = LogHub::install(0, 0);
        hub.set_verbose(0);
        hub.set_debug(0);
        assert_eq!(hub.console_level(), LogLevel::Warn);
        assert_eq!(hub.file_level(), LogLevel::Info);
        hub.set_verbose(3);
        assert_eq!(hub.console_level(), LogLevel::Info);
        assert_eq!(hub.set_debug(1), 0);
        assert_eq!(hub.console_level(), LogLevel::Debug);
        assert_eq!(log::max_level(), log::LevelFilter::Debug);
        hub.set_debug(5);
        assert_eq!(hub.file_level(), LogLevel::Trace);
        hub.set_debug(0);

        let dir = tempfile::tempdir().unwrap();
        hub.open_file(dir.path()).unwrap();
        let mut rx = hub.subscribe();
        hub.set_console_printer(Some(Box::new(|_| {})));
        hub.write(LogLevel::Warn, "test", "remote sees this");
        hub.write(LogLevel::Debug, "test", "nobody sees this");
        let line = rx.try_recv().unwrap();
        assert!(line.contains("WARNING[test]: remote sees this"), "{line}");
        assert!(rx.try_recv().is_err());
        hub.flush_file();
        let text = std::fs::read_to_string(dir.path().join("messages")).unwrap();
        assert!(text.contains("remote sees this") && !text.contains("nobody"));
    }

    #[test]
    fn verbose_lines_follow_the_verbose_level_into_every_sink() {
        let _turn = HUB_TESTS.lock();
        let hub = LogHub::install(0, 0);
        let dir = tempfile::tempdir().unwrap();
        hub.open_file(dir.path()).unwrap();
        hub.set_console_printer(Some(Box::new(|_| {})));
        hub.set_verbose(2);
        hub.write(LogLevel::Info, "verbose:3", "    -- Called SIP/quiet");
        hub.write(LogLevel::Info, "verbose:2", "  == Spawn extension said");
        hub.write(LogLevel::Info, "chan_sip", "a notice at any verbose level");
        hub.set_verbose(3);
        hub.write(LogLevel::Info, "verbose:3", "    -- Called SIP/loud");
        hub.set_verbose(0);
        hub.write(LogLevel::Info, "verbose:1", "    -- not at 0");
        hub.write(LogLevel::Info, "chan_sip", "still a notice");
        hub.flush_file();
        let text = std::fs::read_to_string(dir.path().join("messages")).unwrap();
        assert!(
            text.contains("] VERBOSE:   == Spawn extension said\n"),
            "{text}"
        );
        assert!(
            text.contains("] VERBOSE:     -- Called SIP/loud\n"),
            "{text}"
        );
        assert!(
            !text.contains("quiet") && !text.contains("not at 0"),
            "{text}"
        );
        assert!(text.contains("NOTICE[chan_sip]: still a notice"), "{text}");
    }
}
