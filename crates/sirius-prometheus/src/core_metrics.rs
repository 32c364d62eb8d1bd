//! The core's metrics, with Asterisk 20's res_prometheus names
//! (`res/prometheus/channels.c`, `bridges.c`, `res_prometheus.c`), less
//! the `eid` label Asterisk puts on each (a machine's Ethernet address,
//! which a loopback-only host does not have), plus the call rate Sirius
//! keeps itself.

use parking_lot::Mutex;
use sirius_abi::metrics::{Metric, MetricKind};
use sirius_core::Core;
use std::collections::VecDeque;
use std::time::Instant;

/// Asterisk's `CHANNELS_STATE_HELP`, its numbers being `ast_channel_state`.
const STATE_HELP: &str = "Individual channel states. 0=down; 1=reserved; 2=offhook; 3=dialing; 4=ring; 5=ringing; 6=up; 7=busy; 8=dialing_offhook; 9=prering.";

/// How far back the call rate looks.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Samples of the processed-calls counter, one a second, for the rate.
#[derive(Default)]
pub struct CallRate {
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl CallRate {
    /// Records the counter now (a task calls this every second).
    pub fn sample(&self, now: Instant, processed: u64) {
        let mut s = self.samples.lock();
        s.push_back((now, processed));
        while s.len() > 2 && now.duration_since(s[1].0) >= RATE_WINDOW {
            s.pop_front();
        }
    }

    /// Calls a second over the window (0 until two samples exist).
    pub fn per_second(&self) -> f64 {
        let s = self.samples.lock();
        match (s.front(), s.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                (b.1.saturating_sub(a.1)) as f64 / b.0.duration_since(a.0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// The core's metrics now.
pub fn gather(core: &Core, rate: &CallRate, scrape_started: Instant) -> Vec<Metric> {
    let channels = core.channels.snapshot();
    let now = Instant::now();
    // res_prometheus's: every channel has its call's Linkedid (the
    // uniqueid of the call's first channel; a lone channel's own).
    let labels = |c: &sirius_core::channels::Channel| {
        vec![
            ("name", c.name.clone()),
            ("id", c.uniqueid.clone()),
            ("type", c.tech.clone()),
            ("linkedid", core.channels.linkedid(c)),
        ]
    };
    let bridges = core.bridges.snapshot();
    vec![
        Metric::single(
            "asterisk_core_uptime_seconds",
            "The uptime of Asterisk.",
            MetricKind::Counter,
            core.started.elapsed().as_secs() as f64,
        ),
        Metric::single(
            "asterisk_core_last_reload_seconds",
            "Time since last reload.",
            MetricKind::Gauge,
            core.last_reload.lock().elapsed().as_secs() as f64,
        ),
        Metric::labelled(
            "asterisk_core_properties",
            "Asterisk instance properties. The value of this will always be 1.",
            MetricKind::Gauge,
            vec![(
                // res_prometheus's labels, in its order.
                vec![
                    ("version", format!("Sirius {}", env!("CARGO_PKG_VERSION"))),
                    ("build_options", sirius_core::build::OPTIONS.to_string()),
                    ("build_date", sirius_core::build::DATE.to_string()),
                    ("build_os", sirius_core::build::OS.to_string()),
                    ("build_kernel", sirius_core::build::KERNEL.to_string()),
                    ("build_host", sirius_core::build::HOST.to_string()),
                ],
                1.0,
            )],
        ),
        Metric::single(
            "asterisk_channels_count",
            "Current channel count.",
            MetricKind::Gauge,
            channels.len() as f64,
        ),
        Metric::single(
            "asterisk_calls_count",
            "Current call count.",
            MetricKind::Gauge,
            core.channels.active_calls() as f64,
        ),
        Metric::single(
            "asterisk_calls_sum",
            "Total call count.",
            MetricKind::Counter,
            core.channels.calls_processed() as f64,
        ),
        Metric::single(
            "sirius_calls_per_second",
            "Calls processed a second, over the last 10 seconds.",
            MetricKind::Gauge,
            rate.per_second(),
        ),
        Metric::labelled(
            "asterisk_channels_state",
            STATE_HELP,
            MetricKind::Gauge,
            channels
                .iter()
                .map(|c| (labels(c), f64::from(c.state as u8))),
        ),
        Metric::labelled(
            "asterisk_channels_duration_seconds",
            "Individual channel durations (in seconds).",
            MetricKind::Gauge,
            channels
                .iter()
                .map(|c| (labels(c), now.duration_since(c.created).as_secs() as f64)),
        ),
        Metric::single(
            "asterisk_bridges_count",
            "Number of bridges.",
            MetricKind::Gauge,
            bridges.len() as f64,
        ),
        Metric::labelled(
            "asterisk_bridges_channels_count",
            "Number of channels in the bridge.",
            MetricKind::Gauge,
            bridges.iter().map(|b| {
                (
                    vec![
                        ("id", b.id.clone()),
                        ("tech", b.technology.to_string()),
                        ("subclass", "basic".to_string()),
                        ("name", String::new()),
                    ],
                    b.channels.len() as f64,
                )
            }),
        ),
        Metric::single(
            "asterisk_core_scrape_time_ms",
            "The time it took to scrape metrics.",
            MetricKind::Gauge,
            scrape_started.elapsed().as_secs_f64() * 1000.0,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_rate_is_over_the_window() {
        let r = CallRate::default();
        let t0 = Instant::now();
        assert_eq!(r.per_second(), 0.0);
        r.sample(t0, 100);
        assert_eq!(r.per_second(), 0.0);
        for s in 1..=20u64 {
            r.sample(t0 + Duration::from_secs(s), 100 + 30 * s);
        }
        // The window keeps the last 10 seconds: 30 calls a second.
        assert!((r.per_second() - 30.0).abs() < 1e-9, "{}", r.per_second());
        assert!(r.samples.lock().len() <= 12);
    }
}
