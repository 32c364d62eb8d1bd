//! A fixed jitter buffer (Asterisk's `jbimpl = fixed`, main/fixedjitterbuf.c,
//! in our own terms): packets arrive when the network delivers them, frames
//! leave on the media clock, one 20 ms tick at a time, delayed by a fixed
//! `target` so that a packet late by less than that still plays in order.
//!
//! ```text
//!   put(ssrc, ts, len, marker) ──▶ [ frames ordered by RTP timestamp ]
//!                                        │
//!   tick() ── every 20 ms ──▶ the frames that start before playout + 20 ms
//!                             playout += 20 ms (in RTP clock ticks)
//!
//!   first packet / new SSRC / timestamp jump / marked packet behind us
//!        └─▶ resync: playout = ts − target, buffer emptied
//!   later than playout (not marked)  ─▶ dropped (counted late)
//!   never less than target + 2 ticks queued over half a second
//!                                     ─▶ one frame skipped (the far end's
//!                                        clock runs fast: drift; a burst
//!                                        raises the queue only for a while)
//! ```
//!
//! Time is the playout position in the stream's own RTP clock: no wall
//! clock is read, the caller's ticks are the clock, so every test runs on
//! exact instants. A tick with nothing to play returns nothing: the far end
//! was silent or the packet was lost, and the consumer (a mix) hears
//! silence.

use std::collections::VecDeque;

/// How far ahead of the playout position a packet may be before it is a
/// jump of the far end's timestamps rather than a burst: in ticks.
const JUMP_TICKS: u32 = 25;

/// Ticks over which the least queued is watched for drift (half a second).
const DRIFT_WINDOW: u32 = 25;

/// Signed distance from `b` to `a` on the 32-bit RTP timestamp circle.
fn ahead(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

/// What the buffer did with what it was given, for `sip show channel`-style
/// figures and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames played out.
    pub played: u64,
    /// Frames that came after their playout time and were dropped.
    pub late: u64,
    /// Frames given twice.
    pub duplicate: u64,
    /// Frames skipped because too much was queued (far end's clock fast).
    pub skipped: u64,
    /// Times the stream was taken up afresh.
    pub resyncs: u64,
}

/// One frame waiting: its timestamp, length in RTP clock ticks, the item.
struct Waiting<T> {
    ts: u32,
    len: u32,
    item: T,
}

/// The buffer of one received stream.
pub struct JitterBuffer<T> {
    /// RTP clock ticks per 20 ms.
    tick: u32,
    /// The delay kept, in RTP clock ticks.
    target: u32,
    /// Where playout is: the RTP timestamp the next tick starts at.
    playout: Option<u32>,
    ssrc: u32,
    frames: VecDeque<Waiting<T>>,
    stats: JitterStats,
    /// The least queued (RTP clock ticks from playout to the last frame's
    /// end) at a tick of this drift window, and the window's ticks so far.
    low: i64,
    window: u32,
}

impl<T> JitterBuffer<T> {
    /// A buffer for a stream whose RTP clock runs at `clock_rate` Hz,
    /// holding frames back `target_ms` (rounded to whole 20 ms ticks, at
    /// least one).
    pub fn new(clock_rate: u32, target_ms: u32) -> JitterBuffer<T> {
        let tick = clock_rate / 50;
        JitterBuffer {
            tick,
            target: tick * (target_ms / 20).max(1),
            playout: None,
            ssrc: 0,
            frames: VecDeque::new(),
            stats: JitterStats::default(),
            low: i64::MAX,
            window: 0,
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn resync(&mut self, ssrc: u32, ts: u32) {
        self.frames.clear();
        self.ssrc = ssrc;
        self.playout = Some(ts.wrapping_sub(self.target));
        self.stats.resyncs += 1;
        (self.low, self.window) = (i64::MAX, 0);
    }

    /// A frame received: from source `ssrc`, starting at RTP timestamp `ts`,
    /// lasting `len` clock ticks; `marker` when it starts a talkspurt.
    pub fn put(&mut self, ssrc: u32, ts: u32, len: u32, marker: bool, item: T) {
        let len = len.max(1);
        let Some(playout) = self.playout.filter(|_| ssrc == self.ssrc) else {
            self.resync(ssrc, ts);
            return self.insert(ts, len, item);
        };
        let d = ahead(ts, playout);
        let window = i64::from(self.target + self.tick * JUMP_TICKS);
        if d > window || (d + i64::from(len) <= 0 && (marker || -d > window)) {
            // The far end's timestamps jumped (a restart, a new talkspurt
            // it numbered afresh): take the stream up where it is now.
            self.resync(ssrc, ts);
        } else if d + i64::from(len) <= 0 {
            self.stats.late += 1;
            return;
        }
        self.insert(ts, len, item);
    }

    /// Puts a frame in timestamp order; a second frame at one timestamp is
    /// a duplicate.
    fn insert(&mut self, ts: u32, len: u32, item: T) {
        let base = self.playout.unwrap_or(ts);
        let key = ahead(ts, base);
        let at = self.frames.partition_point(|w| ahead(w.ts, base) < key);
        if self.frames.get(at).is_some_and(|w| w.ts == ts) {
            self.stats.duplicate += 1;
            return;
        }
        self.frames.insert(at, Waiting { ts, len, item });
    }

    /// One 20 ms tick of the media clock: the frames that start before the
    /// tick ends, in order (most often one; none in a silence or after a
    /// loss).
    pub fn tick(&mut self, out: &mut Vec<T>) {
        let Some(playout) = self.playout else {
            return;
        };
        // Drift: when even the least queued over a window stays two ticks
        // above the target, the far end sends faster than we play; one
        // frame goes (a burst lifts the queue for a moment only).
        let queued = self
            .frames
            .back()
            .map_or(0, |l| ahead(l.ts.wrapping_add(l.len), playout));
        self.low = self.low.min(queued);
        self.window += 1;
        if self.window >= DRIFT_WINDOW {
            let excess = self.low > i64::from(self.target + 2 * self.tick);
            (self.low, self.window) = (i64::MAX, 0);
            if excess {
                if let Some(w) = self.frames.pop_front() {
                    self.stats.skipped += 1;
                    self.playout = Some(w.ts.wrapping_add(w.len));
                    return self.tick(out);
                }
            }
        }
        let end = playout.wrapping_add(self.tick);
        while let Some(w) = self.frames.front() {
            if ahead(w.ts, end) >= 0 {
                break;
            }
            let w = self.frames.pop_front().expect("front exists");
            if ahead(w.ts.wrapping_add(w.len), playout) > 0 {
                self.stats.played += 1;
                out.push(w.item);
            } else {
                self.stats.late += 1;
            }
        }
        self.playout = Some(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8 kHz stream (160 clock ticks a 20 ms frame), 60 ms target.
    fn jb() -> JitterBuffer<u32> {
        JitterBuffer::new(8000, 60)
    }

    const NONE: Vec<u32> = Vec::new();

    /// Runs `n` ticks; what each gave.
    fn ticks(b: &mut JitterBuffer<u32>, n: usize) -> Vec<Vec<u32>> {
        (0..n)
            .map(|_| {
                let mut out = Vec::new();
                b.tick(&mut out);
                out
            })
            .collect()
    }

    #[test]
    fn frames_in_order_leave_after_the_target_delay() {
        let mut b = jb();
        // Frame k arrives just before tick k: a network with no jitter.
        let mut got = Vec::new();
        for k in 0..6u32 {
            b.put(7, 1000 + 160 * k, 160, k == 0, k);
            got.extend(ticks(&mut b, 1));
        }
        got.extend(ticks(&mut b, 3));
        let expect: Vec<Vec<u32>> = vec![
            vec![],
            vec![],
            vec![],
            vec![0],
            vec![1],
            vec![2],
            vec![3],
            vec![4],
            vec![5],
        ];
        assert_eq!(got, expect, "three ticks (60 ms) of delay, then one a tick");
        assert_eq!(b.stats().played, 6);
    }

    #[test]
    fn reordered_and_bursty_packets_play_in_order() {
        let mut b = jb();
        b.put(7, 0, 160, true, 0);
        assert_eq!(ticks(&mut b, 1), vec![NONE]);
        // 2 comes before 1, then 3 and 4 in a burst.
        b.put(7, 320, 160, false, 2);
        b.put(7, 160, 160, false, 1);
        assert_eq!(ticks(&mut b, 1), vec![NONE]);
        b.put(7, 480, 160, false, 3);
        b.put(7, 640, 160, false, 4);
        assert_eq!(
            ticks(&mut b, 6),
            vec![vec![], vec![0], vec![1], vec![2], vec![3], vec![4]]
        );
        assert_eq!(b.stats().late, 0);
    }

    #[test]
    fn a_lost_packet_is_a_silent_tick_and_a_late_one_is_dropped() {
        let mut b = jb();
        b.put(7, 0, 160, true, 0);
        b.put(7, 320, 160, false, 2); // 1 lost for now
        assert_eq!(
            ticks(&mut b, 5),
            vec![vec![], vec![], vec![], vec![0], vec![]]
        );
        // 1 turns up after its tick: too late.
        b.put(7, 160, 160, false, 1);
        assert_eq!(ticks(&mut b, 1), vec![vec![2]]);
        assert_eq!(b.stats().late, 1);
        assert_eq!(b.stats().played, 2);
    }

    #[test]
    fn duplicates_play_once() {
        let mut b = jb();
        b.put(7, 0, 160, true, 0);
        b.put(7, 0, 160, false, 99);
        assert_eq!(ticks(&mut b, 4), vec![vec![], vec![], vec![], vec![0]]);
        assert_eq!(b.stats().duplicate, 1);
    }

    #[test]
    fn a_new_source_or_a_jump_starts_afresh() {
        let mut b = jb();
        b.put(7, 0, 160, true, 0);
        assert_eq!(ticks(&mut b, 4), vec![vec![], vec![], vec![], vec![0]]);
        // Another SSRC (a re-INVITE to another phone, a restart).
        b.put(8, 90_000, 160, true, 1);
        assert_eq!(ticks(&mut b, 4), vec![vec![], vec![], vec![], vec![1]]);
        // Same source, timestamps jumped far ahead.
        b.put(8, 500_000, 160, false, 2);
        assert_eq!(ticks(&mut b, 4), vec![vec![], vec![], vec![], vec![2]]);
        // A marked packet from the past: a new talkspurt numbered afresh.
        b.put(8, 100, 160, true, 3);
        assert_eq!(ticks(&mut b, 4), vec![vec![], vec![], vec![], vec![3]]);
        assert_eq!(b.stats().resyncs, 4);
        assert_eq!(b.stats().late, 0);
    }

    #[test]
    fn a_far_end_clock_that_runs_fast_loses_a_frame_not_the_delay() {
        let mut b = jb();
        // 101 frames in the time of 100 ticks (1 %: a bad crystal), for
        // 2,000 ticks: 20 frames too many.
        let mut played = 0;
        let mut k = 0u32;
        for t in 0..2000u32 {
            while k * 100 <= t * 101 {
                b.put(7, 160 * k, 160, k == 0, k);
                k += 1;
            }
            let mut out = Vec::new();
            b.tick(&mut out);
            played += out.len();
            assert!(
                b.len() <= 7,
                "the queue stays bounded at tick {t}: {}",
                b.len()
            );
        }
        assert!(b.stats().skipped >= 15, "{:?}", b.stats());
        assert_eq!(played as u64, b.stats().played);
        assert_eq!(b.stats().resyncs, 1, "no restart: only skips");
        assert_eq!(b.stats().late, 0);
    }

    #[test]
    fn packets_in_pairs_are_no_drift() {
        let mut b = jb();
        // Two frames every other tick (a link that batches): all play in
        // order, none skipped.
        let mut got = Vec::new();
        for t in 0..200u32 {
            if t % 2 == 0 {
                b.put(7, 160 * t, 160, t == 0, t);
                b.put(7, 160 * (t + 1), 160, false, t + 1);
            }
            b.tick(&mut got);
        }
        assert_eq!(b.stats().skipped, 0, "{:?}", b.stats());
        assert_eq!(got, (0..197).collect::<Vec<u32>>());
    }

    #[test]
    fn a_backlog_after_a_stall_is_worked_off() {
        let mut b = jb();
        // Ten frames at once after a stall, then one a tick: the extra
        // delay goes, a frame each half second, until what is queued at a
        // tick is the target and two ticks (nine of the ten).
        for k in 0..10u32 {
            b.put(7, 160 * k, 160, k == 0, k);
        }
        for t in 0..400u32 {
            b.put(7, 160 * (10 + t), 160, false, 10 + t);
            b.tick(&mut Vec::new());
        }
        assert_eq!(b.stats().skipped, 9, "{:?}", b.stats());
        assert!(b.len() <= 5, "{}", b.len());
    }

    #[test]
    fn thirty_ms_packets_play_on_a_twenty_ms_clock() {
        let mut b = jb();
        for k in 0..4u32 {
            b.put(7, 240 * k, 240, k == 0, k);
        }
        // 0 starts at 0 → tick 3 ([0,160) after the 480 delay), 1 at 240
        // → tick 4 ([160,320)), 2 at 480 → tick 5 is [320,480): none; 2 in
        // tick 6, 3 at 720 → tick 7.
        assert_eq!(
            ticks(&mut b, 8),
            vec![
                vec![],
                vec![],
                vec![],
                vec![0],
                vec![1],
                vec![],
                vec![2],
                vec![3]
            ]
        );
    }

    #[test]
    fn timestamps_wrap() {
        let mut b = jb();
        let start = u32::MAX - 159;
        b.put(7, start, 160, true, 0);
        b.put(7, start.wrapping_add(160), 160, false, 1);
        assert_eq!(
            ticks(&mut b, 5),
            vec![vec![], vec![], vec![], vec![0], vec![1]]
        );
    }
}
