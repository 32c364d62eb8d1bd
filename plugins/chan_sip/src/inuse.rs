//! Calls in progress per peer (chan_sip's `inUse`): what `call-limit`,
//! `sip show inuse` and the peers' device states read.
//!
//! One table for every shard ([`crate::shards`]): a peer's calls may be on
//! any of them, and a limit of one must hold across all. An inbound call
//! takes its place in the count when it is admitted ([`InUse::admit`]: the
//! test and the increment under one lock, so two shards cannot both see the
//! last free place); the place is given back by [`CallCount`]'s drop if the
//! call fails before its session exists, else when the session ends.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Calls per peer.
#[derive(Debug, Default)]
pub struct InUse {
    counts: Mutex<HashMap<String, u32>>,
}

impl InUse {
    /// Calls in progress with `peer`, either way.
    pub fn get(&self, peer: &str) -> u32 {
        self.counts.lock().get(peer).copied().unwrap_or(0)
    }

    /// Counts one more call with `peer` if that stays within `limit` (0: no
    /// limit); the new count, or the count that refused it.
    pub fn admit(&self, peer: &str, limit: u32) -> Result<u32, u32> {
        let mut counts = self.counts.lock();
        let n = counts.get(peer).copied().unwrap_or(0);
        if limit > 0 && n >= limit {
            return Err(n);
        }
        match counts.get_mut(peer) {
            Some(c) => *c += 1,
            None => {
                counts.insert(peer.to_string(), 1);
            }
        }
        Ok(n + 1)
    }

    /// One call with `peer` ended; the count left.
    pub fn release(&self, peer: &str) -> u32 {
        let mut counts = self.counts.lock();
        let Some(n) = counts.get_mut(peer) else {
            return 0;
        };
        *n = n.saturating_sub(1);
        let left = *n;
        if left == 0 {
            counts.remove(peer);
        }
        left
    }
}

/// A place in a peer's count taken for a call being set up: given back when
/// dropped, unless the call's session took it over ([`CallCount::keep`]).
pub struct CallCount {
    table: Arc<InUse>,
    peer: Option<String>,
    /// The count right after this call took its place.
    pub count: u32,
}

impl CallCount {
    /// Takes a place for a call with `peer` (none for a guest), within `limit`.
    pub fn admit(table: &Arc<InUse>, peer: Option<&str>, limit: u32) -> Result<CallCount, u32> {
        let count = match peer {
            Some(p) => table.admit(p, limit)?,
            None => 0,
        };
        Ok(CallCount {
            table: table.clone(),
            peer: peer.map(str::to_string),
            count,
        })
    }

    /// Takes a place for a call with `peer` whatever the count (an
    /// outbound leg: `call()` checks the limit, counting itself).
    pub fn take(table: &Arc<InUse>, peer: Option<&str>) -> CallCount {
        let count = peer.map_or(0, |p| {
            let mut counts = table.counts.lock();
            let n = counts.entry(p.to_string()).or_default();
            *n += 1;
            *n
        });
        CallCount {
            table: table.clone(),
            peer: peer.map(str::to_string),
            count,
        }
    }

    /// The session holds the place now (it gives it back when it ends).
    pub fn keep(mut self) -> u32 {
        self.peer = None;
        self.count
    }
}

impl Drop for CallCount {
    fn drop(&mut self) {
        if let Some(p) = &self.peer {
            self.table.release(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_holds_and_a_failed_setup_gives_its_place_back() {
        let t = Arc::new(InUse::default());
        let first = CallCount::admit(&t, Some("alice"), 2).unwrap();
        assert_eq!(first.count, 1);
        let second = CallCount::admit(&t, Some("alice"), 2).unwrap();
        assert_eq!(second.count, 2);
        assert_eq!(CallCount::admit(&t, Some("alice"), 2).err(), Some(2));
        drop(second); // that call failed before its session
        assert_eq!(t.get("alice"), 1);
        assert_eq!(first.keep(), 1); // that one is a session now
        assert_eq!(t.get("alice"), 1);
        assert_eq!(t.release("alice"), 0);
        assert_eq!(t.get("alice"), 0);
        // No limit, and guests are not counted.
        for _ in 0..5 {
            CallCount::admit(&t, Some("bob"), 0).unwrap().keep();
        }
        assert_eq!(t.get("bob"), 5);
        assert_eq!(CallCount::admit(&t, None, 1).unwrap().count, 0);
    }

    #[test]
    fn two_threads_cannot_both_take_the_last_place() {
        let t = Arc::new(InUse::default());
        let winners: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let t = t.clone();
                    s.spawn(move || CallCount::admit(&t, Some("p"), 1).map(CallCount::keep))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(Result::is_ok)
                .count()
        });
        assert_eq!(winners, 1);
        assert_eq!(t.get("p"), 1);
    }
}
