//! How late the SIP event loop runs: the stall detector.
//!
//! All signalling goes through one loop; when one step of it takes long (a
//! table resized at once, a blocking call), every message and timer behind
//! it waits, and peers start retransmitting. The loop's timers say how much:
//! under load a transaction timer is due every millisecond, so the lateness
//! with which the loop gets to a due timer is the time it was busy with
//! something else. The meter keeps the worst lateness of each of the last
//! [`SECONDS`] seconds; `sip show lag` prints them, the benchmarks read it
//! (issue #11: "no event-loop stall over 20 ms below the clean maximum"), and
//! admission control can use the same figure.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Seconds of history kept.
pub const SECONDS: usize = 60;

/// The worst lateness per second.
#[derive(Debug)]
pub struct LagMeter {
    /// The second being measured: its start and worst lateness so far.
    current: (Instant, Duration),
    /// Completed seconds, newest first.
    past: VecDeque<Duration>,
    /// The worst since the module started.
    worst: Duration,
    /// The latest sample: when, and how late.
    latest: Option<(Instant, Duration)>,
    /// The least lateness of the window being measured: its start and
    /// the least so far ([`LagMeter::standing`]).
    window: Option<(Instant, Duration)>,
    /// The least lateness of the last whole window, and when it closed.
    standing: Option<(Instant, Duration)>,
}

/// The window over which [`LagMeter::standing`] takes the least lateness:
/// CoDel's interval (RFC 8289 uses 100 ms), long enough that a burst
/// drains within it.
pub const WINDOW: Duration = Duration::from_millis(100);

impl LagMeter {
    /// A meter whose first second starts at `now`.
    pub fn new(now: Instant) -> LagMeter {
        LagMeter {
            current: (now, Duration::ZERO),
            past: VecDeque::with_capacity(SECONDS),
            worst: Duration::ZERO,
            latest: None,
            window: None,
            standing: None,
        }
    }

    /// Closes the seconds that ended by `now` (idle ones count as no lag).
    fn roll(&mut self, now: Instant) {
        let second = Duration::from_secs(1);
        while now.saturating_duration_since(self.current.0) >= second {
            self.past.push_front(self.current.1);
            self.past.truncate(SECONDS);
            self.current = (self.current.0 + second, Duration::ZERO);
            // Long idle: every second left to close reads zero; skip them
            // instead of looping over each.
            let behind = now.saturating_duration_since(self.current.0).as_secs();
            if behind > SECONDS as u64 {
                self.past.clear();
                self.past.resize(SECONDS, Duration::ZERO);
                self.current.0 += Duration::from_secs(behind);
            }
        }
    }

    /// The loop reached a timer due at `due` at `now`.
    pub fn record(&mut self, due: Instant, now: Instant) {
        self.roll(now);
        let late = now.saturating_duration_since(due);
        self.current.1 = self.current.1.max(late);
        self.worst = self.worst.max(late);
        self.latest = Some((now, late));
        self.window = match self.window {
            Some((start, least)) if now.saturating_duration_since(start) < WINDOW => {
                Some((start, least.min(late)))
            }
            Some((_, least)) => {
                self.standing = Some((now, least));
                Some((now, late))
            }
            None => Some((now, late)),
        };
    }

    /// The standing lateness: the least of the last whole [`WINDOW`], if
    /// it closed within the last second (else none). What admission
    /// control reads of the input queue, as CoDel (RFC 8289) judges a
    /// packet queue: a burst makes the latest datagram wait while the
    /// queue drains within the window, and refusing calls for it refused
    /// a quarter of the calls at a rate the machine handled cleanly
    /// without admission control (4,000 calls/s on two SIP threads: the
    /// refusals held the queue at the limit instead of letting it drain);
    /// a queue that does not drain within a window is overload.
    pub fn standing(&self, now: Instant) -> Duration {
        match self.standing {
            Some((at, least)) if now.saturating_duration_since(at) < Duration::from_secs(1) => {
                least
            }
            _ => Duration::ZERO,
        }
    }

    /// How late the loop is running now: the lateness of the latest timer,
    /// if one ran in the last second (an idle loop is not late). What
    /// admission control reads: it follows the loop down as soon as it
    /// catches up, where a window's worst would refuse calls for seconds
    /// after one short stall.
    pub fn now_late(&self, now: Instant) -> Duration {
        match self.latest {
            Some((at, late)) if now.saturating_duration_since(at) < Duration::from_secs(1) => late,
            _ => Duration::ZERO,
        }
    }

    /// The worst lateness over the last `secs` seconds, the current one
    /// included.
    pub fn worst_within(&mut self, now: Instant, secs: usize) -> Duration {
        self.roll(now);
        self.past
            .iter()
            .take(secs.saturating_sub(1))
            .copied()
            .fold(self.current.1, Duration::max)
    }

    /// The worst lateness of each second, the current one first.
    fn seconds(&mut self, now: Instant) -> Vec<Duration> {
        self.roll(now);
        std::iter::once(self.current.1)
            .chain(self.past.iter().copied())
            .collect()
    }

    /// `sip show lag`: the current second, then each past one, newest first,
    /// in milliseconds.
    pub fn render(&mut self, now: Instant) -> String {
        render(&mut [self], now)
    }
}

/// `sip show lag` over every shard's loop: the figures are the worst of
/// any loop (what a caller on the worst shard saw), then, with several
/// shards, each one's seconds on a line of its own.
pub fn render(meters: &mut [&mut LagMeter], now: Instant) -> String {
    section(
        "SIP event loop lag (how late a due timer ran), worst per second, newest first:",
        "Per second",
        meters,
        now,
    )
}

/// The second half of `sip show lag`: how long datagrams waited between
/// the kernel receiving them and the endpoint handling them (the socket's
/// queue, and for another shard's calls the hand-over), per shard. A loop
/// that keeps its timers on time can still fall behind its input; this is
/// where that shows.
pub fn render_waits(meters: &mut [&mut LagMeter], now: Instant) -> String {
    section(
        "SIP input wait (how long a received datagram waited to be handled), worst per second, newest first:",
        "Waits per second",
        meters,
        now,
    )
}

/// What a `sip show lag` section shows: the worst of the last 10 s, of the
/// last minute and since load, the worst of each second over every loop
/// (newest first), and each loop's own seconds.
struct Figures {
    last10: Duration,
    last60: Duration,
    ever: Duration,
    merged: Vec<Duration>,
    each: Vec<Vec<Duration>>,
}

fn figures(meters: &mut [&mut LagMeter], now: Instant) -> Figures {
    let worst_of = |f: &mut dyn FnMut(&mut LagMeter) -> Duration, meters: &mut [&mut LagMeter]| {
        meters
            .iter_mut()
            .map(|m| f(m))
            .fold(Duration::ZERO, Duration::max)
    };
    let last10 = worst_of(&mut |m| m.worst_within(now, 10), meters);
    let last60 = worst_of(&mut |m| m.worst_within(now, SECONDS), meters);
    let ever = worst_of(&mut |m| m.worst, meters);
    let each: Vec<Vec<Duration>> = meters.iter_mut().map(|m| m.seconds(now)).collect();
    let mut merged = vec![Duration::ZERO; each.iter().map(Vec::len).max().unwrap_or(0)];
    for series in &each {
        for (slot, d) in merged.iter_mut().zip(series) {
            *slot = (*slot).max(*d);
        }
    }
    Figures {
        last10,
        last60,
        ever,
        merged,
        each,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn section(title: &str, label: &str, meters: &mut [&mut LagMeter], now: Instant) -> String {
    let f = figures(meters, now);
    let line = |series: &[Duration]| {
        series
            .iter()
            .map(|&d| format!("{:.1}", ms(d)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(
        out,
        "Worst: {:.1} ms in the last 10 s, {:.1} ms in the last {SECONDS} s, {:.1} ms since load",
        ms(f.last10),
        ms(f.last60),
        ms(f.ever)
    );
    let _ = writeln!(out, "{label} (ms): {}", line(&f.merged));
    if f.each.len() > 1 {
        for (k, series) in f.each.iter().enumerate() {
            let _ = writeln!(out, "Thread {k} (ms): {}", line(series));
        }
    }
    out
}

/// One section of `sip show lag` as JSON: the same figures, in ms.
pub fn section_json(meters: &mut [&mut LagMeter], now: Instant) -> serde_json::Value {
    let f = figures(meters, now);
    let series = |s: &[Duration]| s.iter().map(|&d| ms(d)).collect::<Vec<f64>>();
    serde_json::json!({
        "worst_last_10s_ms": ms(f.last10),
        "worst_last_60s_ms": ms(f.last60),
        "worst_since_load_ms": ms(f.ever),
        "per_second_ms": series(&f.merged),
        "threads": f.each.iter().map(|s| series(s)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // one real origin for simulated time
mod tests {
    use super::*;

    #[test]
    fn each_second_keeps_its_worst_and_idle_seconds_read_zero() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut m = LagMeter::new(t0);
        m.record(t0 + ms(100), t0 + ms(103));
        m.record(t0 + ms(500), t0 + ms(712)); // a 212 ms stall
        m.record(t0 + ms(900), t0 + ms(901));
        // Second 1: quiet. Second 2: 5 ms. Now at 3.2 s.
        m.record(t0 + ms(2_400), t0 + ms(2_405));
        assert_eq!(m.worst_within(t0 + ms(3_200), 1), ms(0), "this second");
        assert_eq!(m.worst_within(t0 + ms(3_200), 2), ms(5));
        assert_eq!(m.worst_within(t0 + ms(3_200), 4), ms(212));
        let text = m.render(t0 + ms(3_200));
        assert!(
            text.contains("Per second (ms): 0.0 5.0 0.0 212.0\n"),
            "{text}"
        );
        assert!(text.contains("212.0 ms since load"), "{text}");
        // A timer run early (or on time) is no lag.
        m.record(t0 + ms(3_300), t0 + ms(3_250));
        assert_eq!(m.worst_within(t0 + ms(3_300), 1), ms(0));
    }

    #[test]
    fn how_late_now_follows_the_latest_timer_and_forgets_an_idle_loop() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut m = LagMeter::new(t0);
        assert_eq!(m.now_late(t0), ms(0));
        m.record(t0 + ms(100), t0 + ms(350)); // a stall: 250 ms late
        assert_eq!(m.now_late(t0 + ms(350)), ms(250));
        m.record(t0 + ms(351), t0 + ms(352)); // caught up
        assert_eq!(m.now_late(t0 + ms(352)), ms(1));
        m.record(t0 + ms(400), t0 + ms(520));
        assert_eq!(m.now_late(t0 + ms(1_519)), ms(120));
        assert_eq!(
            m.now_late(t0 + ms(1_520)),
            ms(0),
            "no timer for a second: idle"
        );
    }

    #[test]
    fn a_long_idle_spell_leaves_a_clean_window() {
        let t0 = Instant::now();
        let mut m = LagMeter::new(t0);
        m.record(t0, t0 + Duration::from_millis(50));
        let later = t0 + Duration::from_secs(3_600);
        assert_eq!(m.worst_within(later, SECONDS), Duration::ZERO);
        assert_eq!(m.past.len(), SECONDS);
        m.record(later, later + Duration::from_millis(7));
        assert_eq!(m.worst_within(later, 1), Duration::from_millis(7));
    }

    #[test]
    fn several_loops_show_the_worst_of_each_second_and_each_loop() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut a = LagMeter::new(t0);
        let mut b = LagMeter::new(t0);
        a.record(t0 + ms(100), t0 + ms(130)); // second 0: 30 ms on a
        b.record(t0 + ms(1_100), t0 + ms(1_140)); // second 1: 40 ms on b
        let text = render(&mut [&mut a, &mut b], t0 + ms(2_500));
        assert!(text.contains("Per second (ms): 0.0 40.0 30.0\n"), "{text}");
        assert!(text.contains("Thread 0 (ms): 0.0 0.0 30.0\n"), "{text}");
        assert!(text.contains("Thread 1 (ms): 0.0 40.0 0.0\n"), "{text}");
        assert!(text.contains("40.0 ms since load"), "{text}");
        // One loop: no per-thread lines.
        assert!(!a.render(t0 + ms(2_500)).contains("Thread"));
    }

    #[test]
    fn input_waits_render_under_their_own_label() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = LagMeter::new(t0);
        // A datagram received at 100 ms, handled at 340 ms.
        w.record(t0 + ms(100), t0 + ms(340));
        let text = render_waits(&mut [&mut w], t0 + ms(1_500));
        assert!(text.starts_with("SIP input wait"), "{text}");
        assert!(
            text.contains("Waits per second (ms): 0.0 240.0\n"),
            "{text}"
        );
        // The benchmarks read the timer line by its label: not this one.
        assert!(!text.contains("\nPer second"), "{text}");
    }

    #[test]
    fn the_standing_wait_is_the_least_of_a_window_so_a_burst_is_not_overload() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = LagMeter::new(t0);
        // A burst: waits climb to 300 ms and the queue drains within 100 ms.
        for (at, waited) in [(0, 5), (20, 300), (40, 150), (60, 2), (90, 250)] {
            w.record(t0 + ms(at) - ms(waited), t0 + ms(at));
        }
        assert_eq!(w.standing(t0 + ms(90)), ms(0), "no whole window yet");
        w.record(t0 + ms(101) - ms(260), t0 + ms(101)); // closes the first window
        assert_eq!(w.standing(t0 + ms(101)), ms(2), "drained: not standing");
        assert_eq!(
            w.now_late(t0 + ms(101)),
            ms(260),
            "the latest sample is high"
        );
        // A queue that stays: every datagram of a window waited 220 ms or more.
        for at in [120, 150, 180, 199] {
            w.record(t0 + ms(at) - ms(220 + at / 10), t0 + ms(at));
        }
        w.record(t0 + ms(205) - ms(230), t0 + ms(205));
        assert_eq!(w.standing(t0 + ms(205)), ms(232), "the least of the window");
        // Nothing for a second: no standing wait.
        assert_eq!(w.standing(t0 + ms(1_205)), ms(0));
    }
}
