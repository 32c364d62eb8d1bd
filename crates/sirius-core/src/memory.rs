//! The core's memory after a burst of calls: given back to the system.
//!
//! The daemon allocates with glibc's malloc, which keeps what is freed
//! inside its arenas (one per thread that allocated, up to eight per core)
//! for reuse: only the top of an arena shrinks by itself. After 4,000 held
//! calls ended, 11 MB of it stayed in the daemon's resident memory
//! (issue #11, `bench/report-memory.md`). Every [`TICK_MS`] the scheduler
//! thread compares the live channels with their high-water mark since the
//! last give-back; when they have fallen to half of it, and by at least
//! [`MIN_DROP`], the registry's indexes shrink and `malloc_trim(0)` returns
//! every arena's free pages. A steady load never triggers it; the end of a
//! burst does, a few times as it drains, always off the calls' threads
//! (the trim holds each arena's lock while it walks it, a few milliseconds
//! for tens of megabytes).

use crate::core::Core;
use std::sync::{Arc, Weak};

/// How often the live channels are looked at.
pub const TICK_MS: u32 = 5_000;

/// Fewer channels gone than this since the high-water mark is no burst.
pub const MIN_DROP: usize = 256;

/// The channels live since the last give-back.
type HighWater = sirius_media::burst::HighWater<MIN_DROP>;

/// Starts looking at the core's channels every [`TICK_MS`] on its scheduler
/// thread (until the core is dropped or the scheduler stops).
pub fn start(core: &Arc<Core>) {
    let weak: Weak<Core> = Arc::downgrade(core);
    let mut high = HighWater::default();
    core.sched.add(
        TICK_MS,
        Box::new(move || {
            let Some(core) = weak.upgrade() else {
                return 0;
            };
            if high.fallen(core.channels.active_channels()) {
                core.channels.shrink();
                let released = trim();
                log::debug!("calls ended: malloc_trim gave memory back ({released})");
            }
            TICK_MS
        }),
    );
}

/// Returns the free pages of every malloc arena to the system; true if
/// some were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() -> bool {
    // SAFETY: malloc_trim takes no pointer and locks each arena itself.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Elsewhere there is no glibc arena to trim.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_seen_once_it_has_halved() {
        let mut h = HighWater::default();
        for live in [0, 2000, 8000, 7900, 8000, 4001] {
            assert!(!h.fallen(live), "{live}");
        }
        assert!(h.fallen(4000));
        assert!(!h.fallen(2500));
        assert!(h.fallen(0));
        // Small loads coming and going: never.
        for live in [200, 0, 255, 0] {
            assert!(!h.fallen(live), "{live}");
        }
    }

    #[test]
    fn trimming_after_frees_does_not_disturb_the_heap() {
        let blocks: Vec<Vec<u8>> = (0..2000).map(|i| vec![i as u8; 4096]).collect();
        drop(blocks);
        trim();
        let again: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 4096]).collect();
        assert!(again.iter().enumerate().all(|(i, b)| b[4095] == i as u8));
    }
}
