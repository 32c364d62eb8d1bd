//! The transaction timers: one FIFO list per timer duration.
//!
//! Every SIP timer is "now plus one of a few durations": T1·2ⁿ (Timers A, E,
//! G and the 2xx retransmission), T2, T4 (K, I), 64·T1 (B, F, H, J, L, M),
//! 32 s (D). Deadlines set with the same duration come due in the order they
//! were set, so each duration gets a list that stays sorted by appending to
//! its end: O(1) to add, O(1) to take the earliest, no tree to rebalance and
//! no node allocated per timer (the `BTreeSet` this replaces did both, for
//! hundreds of thousands of timers under load). The earliest deadline of all
//! is the least of the lists' heads; there are a dozen lists at most.
//!
//! Deadlines are exact instants, not ticks of a wheel: the state machines'
//! unit tests drive simulated time to the microsecond and must see a timer
//! fire at the instant RFC 3261 names.
//!
//! Cancelling is lazy: a list entry whose transaction has moved its
//! deadline (or ended) is skipped when it comes up, which costs one lookup,
//! instead of a search through the list now.

use super::TxId;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The lists.
#[derive(Debug, Default)]
pub(crate) struct TimerLists {
    lists: Vec<(Duration, VecDeque<(Instant, TxId)>)>,
}

impl TimerLists {
    /// Adds a deadline set `class` from now (the list it joins).
    pub(crate) fn add(&mut self, class: Duration, at: Instant, id: TxId) {
        let list = match self.lists.iter().position(|(d, _)| *d == class) {
            Some(i) => &mut self.lists[i].1,
            None => {
                self.lists.push((class, VecDeque::new()));
                &mut self.lists.last_mut().expect("just pushed").1
            }
        };
        // Nearly always the end. A deadline set from an earlier one (a
        // retransmission that fired late) can sort before the last few:
        // found from the back.
        let pos = list.len()
            - list
                .iter()
                .rev()
                .take_while(|(t, other)| (*t, *other) > (at, id))
                .count();
        list.insert(pos, (at, id));
    }

    /// The earliest deadline and its transaction, stale entries included.
    pub(crate) fn first(&self) -> Option<(Instant, TxId)> {
        self.lists
            .iter()
            .filter_map(|(_, l)| l.front().copied())
            .min()
    }

    /// Takes the earliest entry if it is due by `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TxId)> {
        let (_, list) = self
            .lists
            .iter_mut()
            .filter(|(_, l)| l.front().is_some_and(|(t, _)| *t <= now))
            .min_by_key(|(_, l)| l.front().copied())?;
        list.pop_front()
    }

    /// Pops entries at the lists' heads that `live` says are stale, so that
    /// [`TimerLists::first`] is a real deadline.
    pub(crate) fn purge(&mut self, live: impl Fn(Instant, TxId) -> bool) {
        for (_, l) in &mut self.lists {
            while let Some(&(at, id)) = l.front() {
                if live(at, id) {
                    break;
                }
                l.pop_front();
            }
        }
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lists.iter().map(|(_, l)| l.len()).sum()
    }

    /// Gives back the memory of lists that grew under a burst and are
    /// mostly empty now.
    pub(crate) fn shrink(&mut self) {
        for (_, l) in &mut self.lists {
            if l.capacity() > 1024 && l.len() < l.capacity() / 4 {
                l.shrink_to(l.len() * 2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_come_out_in_order_across_lists_and_late_ones_sort_in() {
        #[allow(clippy::disallowed_methods)] // one real origin for simulated time
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut l = TimerLists::default();
        l.add(ms(500), t0 + ms(500), TxId(1));
        l.add(ms(32_000), t0 + ms(32_000), TxId(2));
        l.add(ms(500), t0 + ms(600), TxId(3));
        // Set late from an earlier deadline: before TxId(3) in its list.
        l.add(ms(500), t0 + ms(550), TxId(4));
        l.add(ms(5_000), t0 + ms(5_000), TxId(5));
        assert_eq!(l.first(), Some((t0 + ms(500), TxId(1))));
        assert_eq!(l.pop_due(t0 + ms(499)), None, "nothing due yet");
        let mut order = Vec::new();
        while let Some((at, id)) = l.pop_due(t0 + ms(40_000)) {
            order.push((at - t0, id.0));
        }
        assert_eq!(
            order,
            [
                (ms(500), 1),
                (ms(550), 4),
                (ms(600), 3),
                (ms(5_000), 5),
                (ms(32_000), 2)
            ]
        );
        assert_eq!(l.len(), 0);
    }
}
