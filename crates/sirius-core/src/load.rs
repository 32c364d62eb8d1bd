//! Sirius's own CPU load for admission control: Asterisk refuses new calls
//! when the load average exceeds `maxload` (`increase_call_count` in pbx.c).
//! A one-minute load average reacts far too slowly for a burst of thousands
//! of calls per second, and it counts everything the machine runs: with a
//! build running in another shell, a PBX idling at 1 % refused 999 calls of
//! 1,000 (issue #16). So this samples the share of all CPUs' time that this
//! process used (its user and system time from `/proc/self/stat`, against
//! every CPU's time from `/proc/stat`) every 100 ms and smooths it over
//! about half a second. When Sirius itself saturates the machine, taking
//! more calls only makes every call slower; refusing the excess with 503
//! keeps the calls in progress moving (goodput holds instead of
//! collapsing).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Sampling period.
const PERIOD: Duration = Duration::from_millis(100);

/// The smoothed share of all CPUs' time this process uses, 0.0–1.0.
#[derive(Debug, Default)]
pub struct LoadMonitor {
    /// Busy share × 10 000.
    busy: AtomicU32,
}

impl LoadMonitor {
    /// Starts sampling on a thread of its own (for the process's lifetime).
    /// Where `/proc/stat` cannot be read the load stays 0: calls are never
    /// refused for load.
    pub fn start() -> Arc<LoadMonitor> {
        let m = Arc::new(LoadMonitor::default());
        let weak = Arc::downgrade(&m);
        let _ = std::thread::Builder::new()
            .name("sirius-load".into())
            .spawn(move || {
                let sample = || Some((read_self_stat()?, read_proc_stat()?.1));
                let mut last = sample();
                let mut smoothed = 0.0f64;
                loop {
                    std::thread::sleep(PERIOD);
                    let Some(m) = weak.upgrade() else { return };
                    let now = sample();
                    if let (Some((b0, t0)), Some((b1, t1))) = (last, now) {
                        if t1 > t0 {
                            let share = b1.saturating_sub(b0) as f64 / (t1 - t0) as f64;
                            // About half a second of memory: bursts count,
                            // one busy tick does not.
                            smoothed = 0.8 * smoothed + 0.2 * share.clamp(0.0, 1.0);
                            m.busy
                                .store((smoothed * 10_000.0) as u32, Ordering::Relaxed);
                        }
                    }
                    last = now;
                }
            });
        m
    }

    /// The smoothed share of all CPUs' time Sirius uses, 0.0–1.0.
    pub fn busy(&self) -> f64 {
        f64::from(self.busy.load(Ordering::Relaxed)) / 10_000.0
    }
}

/// This process's user + system time in clock ticks (`/proc/self/stat`).
fn read_self_stat() -> Option<u64> {
    parse_self_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line, counted
/// after the command name, which may hold spaces and parentheses.
fn parse_self_stat(line: &str) -> Option<u64> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) is index 11 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// (busy, total) jiffies over all CPUs from the first line of `/proc/stat`.
fn read_proc_stat() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(text.lines().next()?)
}

/// `cpu  user nice system idle iowait irq softirq steal …`: idle and iowait
/// are the time not busy.
fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cpu_line_gives_busy_and_total_jiffies() {
        assert_eq!(
            super::parse_cpu_line("cpu  100 0 50 800 50 0 0 0 0 0"),
            Some((150, 1000))
        );
        assert_eq!(super::parse_cpu_line("cpu0 1 2 3 4 5"), None);
        assert_eq!(super::parse_cpu_line("cpu 1 2"), None);
    }

    #[test]
    fn our_own_cpu_time_is_read_past_a_name_with_spaces() {
        let line = "4242 (sirius (pbx) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 120 35 0 0 20 0 9 0";
        assert_eq!(super::parse_self_stat(line), Some(155));
        assert_eq!(super::parse_self_stat("4242 (x) S 1 2"), None);
        assert!(super::read_self_stat().is_some(), "readable here");
    }

    #[test]
    fn the_sampler_runs_here() {
        let m = super::LoadMonitor::start();
        std::thread::sleep(std::time::Duration::from_millis(350));
        let b = m.busy();
        assert!((0.0..=1.0).contains(&b), "{b}");
    }
}
