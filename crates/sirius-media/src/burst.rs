//! When a burst of calls has passed: the test both the core and chan_sip
//! use to give memory back after one (never per call, never under a steady
//! load). Here because the two share no other crate a plugin may link.

/// The most entries (channels, sessions…) live since the last give-back;
/// fewer than `MIN_DROP` gone since then is no burst.
#[derive(Debug, Default)]
pub struct HighWater<const MIN_DROP: usize> {
    high: usize,
}

impl<const MIN_DROP: usize> HighWater<MIN_DROP> {
    /// Records `live`; true when it has fallen to half of the high-water
    /// mark and by at least `MIN_DROP`, which then starts again from `live`.
    pub fn fallen(&mut self, live: usize) -> bool {
        self.high = self.high.max(live);
        if self.high - live >= MIN_DROP && live <= self.high / 2 {
            self.high = live;
            true
        } else {
            false
        }
    }
}
