//! Memory a burst of calls leaves behind, given back once it has passed.
//!
//! Two things kept it (issue #11: RSS stayed 54 MB above idle a minute
//! after 4,000 held calls ended): hash tables keep the room of their largest
//! size, and mimalloc keeps the pages freed by a thread until that thread
//! allocates enough again to look at them, which an idle SIP thread never
//! does. So once a second (housekeeping), when what is live — sessions,
//! dialogs, client usages, transactions — has fallen to half of its
//! high-water mark since the last give-back, and by at least [`MIN_DROP`]
//! entries, the tables left mostly empty shrink and this thread's mimalloc
//! heap is collected (its free pages purged at once). A steady load never
//! triggers it; the end of a burst does, a few times as it drains (each
//! halving), and never per call.

use crate::endpoint::Endpoint;
use std::collections::HashMap;

/// Fewer entries gone than this since the high-water mark is no burst: not
/// worth a rehash and a collection.
const MIN_DROP: usize = 512;

/// The entries live since the last give-back, and whether the last of a
/// burst's are still to go.
#[derive(Debug, Default)]
pub(crate) struct HighWater {
    high: sirius_media::burst::HighWater<MIN_DROP>,
    /// A give-back happened and not everything has gone since: the halvings
    /// stop short of nothing (the last at a few hundred entries, less than
    /// [`MIN_DROP`] from there), and what those entries held — the last
    /// calls' sessions, transactions lingering 32 s — was freed into pages
    /// no one collected (issue #11). So once they are all gone, one more.
    tail: bool,
}

impl HighWater {
    /// Records `live`; true when memory should go back: it has fallen to
    /// half of its high-water mark (and by at least [`MIN_DROP`]), or to
    /// nothing after such a fall.
    pub(crate) fn fallen(&mut self, live: usize) -> bool {
        if self.high.fallen(live) {
            self.tail = live > 0;
            return true;
        }
        live == 0 && std::mem::take(&mut self.tail)
    }
}

/// Shrinks a hash map whose entries fill less than a quarter of its room to
/// twice their number (at least 64): the room of a burst goes, and a table
/// that grows again does not rehash at once.
pub fn shrink_map<K: Eq + std::hash::Hash, V>(m: &mut HashMap<K, V>) {
    if m.capacity() > 64 && m.len() < m.capacity() / 4 {
        m.shrink_to((m.len() * 2).max(64));
    }
}

extern "C" {
    /// mimalloc's (chan_sip's global allocator, see `lib.rs`): with `force`,
    /// frees the calling thread's empty pages and purges every arena's free
    /// memory now instead of after a delay that only a later allocation
    /// would act on.
    fn mi_collect(force: bool);
}

impl Endpoint {
    /// Once a second: after a burst, tables shrink and memory goes back to
    /// the system (see the module's doc).
    pub(crate) fn give_back_memory(&mut self) {
        let live = self.sessions.len() + self.dialogs.len() + self.owners.len() + self.layer.len();
        if !self.sessions.high_water.fallen(live) {
            return;
        }
        self.sessions.shrink();
        self.dialogs.shrink();
        shrink_map(&mut self.owners);
        collect_thread_heap();
    }
}

/// Gives back at once the memory this thread's mimalloc heap holds free:
/// each thread's heap is its own, so every thread that allocated through a
/// burst must call it once the burst is over (the SIP thread here, the
/// relay thread when it goes idle).
pub(crate) fn collect_thread_heap() {
    // SAFETY: takes no pointer; mimalloc allows it on any thread, any time.
    unsafe { mi_collect(true) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_seen_once_it_has_halved() {
        let mut h = HighWater::default();
        // Growing, and a steady load's small ups and downs: nothing.
        for live in [0, 1000, 4000, 8000, 7900, 8000, 7600] {
            assert!(!h.fallen(live), "{live}");
        }
        assert!(!h.fallen(4001));
        assert!(h.fallen(4000));
        // From there, the next halving.
        assert!(!h.fallen(3000));
        assert!(h.fallen(1900));
        assert!(h.fallen(600));
        assert!(!h.fallen(100), "down by less than MIN_DROP");
        assert!(h.fallen(0), "the last gone after a give-back");
        assert!(!h.fallen(0), "once");
        // A small load coming and going is no burst, even down to nothing.
        let mut h = HighWater::default();
        for live in [400, 0, 500, 0, 300] {
            assert!(!h.fallen(live), "{live}");
        }
    }

    #[test]
    fn a_map_mostly_empty_shrinks_and_one_in_use_does_not() {
        let mut m: HashMap<u32, u32> = (0..10_000).map(|i| (i, i)).collect();
        let full = m.capacity();
        m.retain(|k, _| *k < 4000);
        shrink_map(&mut m);
        // (Removals leave tombstones that count against the capacity.)
        assert!(m.capacity() > full * 3 / 4, "over a quarter full: kept");
        m.retain(|k, _| *k < 1000);
        shrink_map(&mut m);
        assert!(
            m.capacity() >= 2000 && m.capacity() < full / 2,
            "{}",
            m.capacity()
        );
        let mut small: HashMap<u32, u32> = (0..10)
            .collect::<Vec<_>>()
            .into_iter()
            .map(|i| (i, i))
            .collect();
        small.clear();
        let cap = small.capacity();
        shrink_map(&mut small);
        assert_eq!(small.capacity(), cap, "small tables are left alone");
    }

    #[test]
    fn a_client_usage_slot_stays_small() {
        // Every slot of the owners table is as large as the largest usage;
        // a held call's INVITE keeps one for the 32 s its transaction
        // lingers (messages in a usage are boxed for that).
        let size = std::mem::size_of::<crate::endpoint::Owner>();
        assert!(size <= 48, "{size}");
    }
}
