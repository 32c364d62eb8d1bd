//! The host logger: one `log` sink that writes to the console, the `messages`
//! file and every attached remote console, with Asterisk's two knobs.
//!
//! * `core set verbose N`: N ≥ 1 shows notices (`info!`) on the console.
//! * `core set debug N`: N ≥ 1 shows `debug!`, N ≥ 2 also `trace!`.
//!
//! Errors and warnings always show. The file always gets notices too, so the
//! record of what happened does not depend on someone's console setting.
//! Plugins log through `CoreServices::log`, which lands in [`LogHub::write`]; the
//! loader pushes level changes to them so their `log` copies filter the same way.

use chrono::Local;
use parking_lot::Mutex;
use sirius_abi::LogLevel;
use std::fs::{File, OpenOptions};
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
    file: Mutex<Option<File>>,
    remote: broadcast::Sender<Arc<str>>,
}

static HUB: OnceLock<Arc<LogHub>> = OnceLock::new();

struct HubLogger(Arc<LogHub>);

impl log::Log for HubLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        LogLevel::from_level(m.level()) <= self.0.file_level()
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.write(
            LogLevel::from_level(record.level()),
            record.target(),
            &record.args().to_string(),
        );
    }
    fn flush(&self) {
        if let Some(f) = self.0.file.lock().as_mut() {
            let _ = f.flush();
        }
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
                file: Mutex::new(None),
                remote,
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

    /// Appends to `<dir>/messages` from now on.
    pub fn open_file(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("messages"))?;
        *self.file.lock() = Some(f);
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

    /// Writes one record to every sink that wants it.
    pub fn write(&self, level: LogLevel, target: &str, message: &str) {
        if level > self.file_level() || level == LogLevel::Off {
            return;
        }
        let line = format!(
            "[{}] {}[{}]: {}",
            Local::now().format("%b %e %H:%M:%S"),
            level_name(level),
            target,
            message
        );
        if let Some(f) = self.file.lock().as_mut() {
            let _ = writeln!(f, "{line}");
        }
        if level <= self.console_level() {
            match self.console.lock().as_ref() {
                Some(p) => p(&line),
                None => eprintln!("{line}"),
            }
            let _ = self.remote.send(Arc::from(line.as_str()));
        }
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

    #[test]
    fn levels_follow_verbose_and_debug() {
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
        let text = std::fs::read_to_string(dir.path().join("messages")).unwrap();
        assert!(text.contains("remote sees this") && !text.contains("nobody"));
    }
}
