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
//!
//! The file is written by a thread of its own through a buffer that is
//! flushed whenever the queue runs dry, so a busy SIP monitor does not pay a
//! `write(2)` per line, and lines still reach the disk within moments;
//! `log::logger().flush()` (the daemon calls it on the way out) waits until
//! everything queued is on disk.

use chrono::Local;
use parking_lot::Mutex;
use sirius_abi::LogLevel;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use tokio::sync::broadcast;

/// Where console log lines go: a closure that prints one line (above the prompt).
pub type Printer = Box<dyn Fn(&str) + Send + Sync>;

/// The log fan-out point. One per process.
pub struct LogHub {
    verbose: AtomicU32,
    debug: AtomicU32,
    console: Mutex<Option<Printer>>,
    file: Mutex<Option<mpsc::Sender<FileOp>>>,
    remote: broadcast::Sender<Arc<str>>,
    /// The timestamp text of the current second: formatting the local time
    /// (time zone lookup included) once per second, not once per line.
    stamp: Mutex<(u64, String)>,
}

/// What the file writer thread is asked to do.
enum FileOp {
    Line(String),
    /// Write out everything queued before this, then acknowledge.
    Flush(mpsc::Sender<()>),
}

/// The `messages` writer: buffered, flushed whenever no line is waiting.
fn file_writer(file: std::fs::File, ops: mpsc::Receiver<FileOp>) {
    let mut out = BufWriter::with_capacity(64 * 1024, file);
    while let Ok(op) = ops.recv() {
        let mut next = Some(op);
        while let Some(op) = next.take() {
            match op {
                FileOp::Line(l) => {
                    let _ = out.write_all(l.as_bytes());
                    let _ = out.write_all(b"\n");
                }
                FileOp::Flush(ack) => {
                    let _ = out.flush();
                    let _ = ack.send(());
                }
            }
            next = ops.try_recv().ok();
        }
        let _ = out.flush();
    }
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
        let file = self.0.file.lock().clone();
        if let Some(f) = file {
            let (ack, done) = mpsc::channel();
            if f.send(FileOp::Flush(ack)).is_ok() {
                let _ = done.recv_timeout(std::time::Duration::from_secs(2));
            }
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

    /// Appends to `<dir>/messages` from now on.
    pub fn open_file(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("messages"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("logger".into())
            .spawn(move || file_writer(f, rx))?;
        // The previous writer (if any) ends when its sender is dropped here.
        *self.file.lock() = Some(tx);
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
            self.stamp(),
            level_name(level),
            target,
            message
        );
        if let Some(f) = self.file.lock().as_ref() {
            let _ = f.send(FileOp::Line(line.clone()));
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
