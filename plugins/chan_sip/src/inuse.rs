//! Calls in progress per peer (chan_sip's `inUse`, `inRinging`, `onHold`):
//! what `call-limit`, `sip show inuse` and the peers' device states read.
//!
//! One table for every shard ([`crate::shards`]): a peer's calls may be on
//! any of them, and a limit of one must hold across all. An inbound call
//! takes its place in the count when it is admitted ([`InUse::admit`]: the
//! test and the increment under one lock, so two shards cannot both see the
//! last free place); the place is given back by [`CallCount`]'s drop if the
//! call fails before its session exists, else when the session ends.
//!
//! Ringing and held legs are counted here too, from the sessions' own flags
//! (a session is the one owner of whether *it* rings or is held; this table
//! only sums them across shards), so that a peer's device state — what busy
//! lamps show — is worked out in one place ([`InUse::busy_state`]) in
//! chan_sip's order:
//!
//! ```text
//!   held > 0 ──────────────────────────▶ OnHold
//!   ringing > 0 ── ringing == calls ───▶ Ringing
//!               └─ otherwise ──────────▶ RingInUse
//!   call-limit reached ────────────────▶ Busy
//!   calls > 0 ─────────────────────────▶ InUse
//!   none ──────────────────────────────▶ (reachability: NotInUse / Unavailable)
//! ```

use parking_lot::Mutex;
use sirius_abi::DeviceState;
use std::collections::HashMap;
use std::sync::Arc;

/// One peer's legs, and the device state last told to the core.
#[derive(Debug, Default, Clone, Copy)]
struct PeerUse {
    calls: u32,
    ringing: u32,
    held: u32,
    /// What [`InUse::note_told`] last recorded.
    told: Option<DeviceState>,
}

/// What a leg may be counted as, besides being a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A call to the peer rings its phone (made, not answered yet).
    Ringing,
    /// The peer's phone put its call on hold.
    Held,
}

/// Calls per peer.
#[derive(Debug, Default)]
pub struct InUse {
    counts: Mutex<HashMap<String, PeerUse>>,
}

impl InUse {
    /// Calls in progress with `peer`, either way.
    pub fn get(&self, peer: &str) -> u32 {
        self.counts.lock().get(peer).map_or(0, |u| u.calls)
    }

    /// Calls, ringing legs and held legs of `peer` (`sip show inuse`).
    pub fn counts(&self, peer: &str) -> (u32, u32, u32) {
        self.counts
            .lock()
            .get(peer)
            .map_or((0, 0, 0), |u| (u.calls, u.ringing, u.held))
    }

    /// Counts one more call with `peer` if that stays within `limit` (0: no
    /// limit); the new count, or the count that refused it.
    pub fn admit(&self, peer: &str, limit: u32) -> Result<u32, u32> {
        let mut counts = self.counts.lock();
        let n = counts.get(peer).map_or(0, |u| u.calls);
        if limit > 0 && n >= limit {
            return Err(n);
        }
        match counts.get_mut(peer) {
            Some(u) => u.calls += 1,
            None => {
                let u = PeerUse {
                    calls: 1,
                    ..PeerUse::default()
                };
                counts.insert(peer.to_string(), u);
            }
        }
        Ok(n + 1)
    }

    /// One call with `peer` ended; the count left.
    pub fn release(&self, peer: &str) -> u32 {
        let mut counts = self.counts.lock();
        let Some(u) = counts.get_mut(peer) else {
            return 0;
        };
        u.calls = u.calls.saturating_sub(1);
        u.calls
    }

    /// A leg of `peer` started (`on`) or stopped being counted as `mark`.
    /// The caller changes it only when its session's flag changes, so the
    /// sums stay the sums of the flags.
    pub fn mark(&self, peer: &str, mark: Mark, on: bool) {
        let mut counts = self.counts.lock();
        let u = counts.entry(peer.to_string()).or_default();
        let n = match mark {
            Mark::Ringing => &mut u.ringing,
            Mark::Held => &mut u.held,
        };
        *n = match on {
            true => *n + 1,
            false => n.saturating_sub(1),
        };
    }

    /// `peer`'s device state from its legs (see the module's diagram), with
    /// `limit` its call-limit (0: none); `None` when it has no call, and
    /// its reachability decides.
    pub fn busy_state(&self, peer: &str, limit: u32) -> Option<DeviceState> {
        let u = self.counts.lock().get(peer).copied()?;
        Some(if u.held > 0 {
            DeviceState::OnHold
        } else if u.ringing > 0 {
            match u.ringing >= u.calls {
                true => DeviceState::Ringing,
                false => DeviceState::RingInUse,
            }
        } else if limit > 0 && u.calls >= limit {
            DeviceState::Busy
        } else if u.calls > 0 {
            DeviceState::InUse
        } else {
            return None;
        })
    }

    /// Records `state` as told to the core for `peer`; false when it was
    /// the state told last (nothing to tell).
    pub fn note_told(&self, peer: &str, state: DeviceState) -> bool {
        let mut counts = self.counts.lock();
        let u = counts.entry(peer.to_string()).or_default();
        u.told.replace(state) != Some(state)
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
            let u = counts.entry(p.to_string()).or_default();
            u.calls += 1;
            u.calls
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
    fn the_device_state_follows_chan_sips_order() {
        use DeviceState::*;
        let t = super::InUse::default();
        assert_eq!(t.busy_state("alice", 0), None);
        t.admit("alice", 0).unwrap();
        assert_eq!(t.busy_state("alice", 0), Some(InUse));
        assert_eq!(t.busy_state("alice", 1), Some(Busy));
        t.mark("alice", Mark::Ringing, true);
        assert_eq!(t.busy_state("alice", 1), Some(Ringing));
        t.admit("alice", 0).unwrap(); // a second call, not ringing
        assert_eq!(t.busy_state("alice", 0), Some(RingInUse));
        t.mark("alice", Mark::Held, true);
        assert_eq!(t.busy_state("alice", 0), Some(OnHold));
        t.mark("alice", Mark::Held, false);
        t.mark("alice", Mark::Ringing, false);
        assert_eq!(t.counts("alice"), (2, 0, 0));
        t.release("alice");
        t.release("alice");
        assert_eq!(t.busy_state("alice", 0), None);
        // What was told is told once.
        assert!(t.note_told("alice", NotInUse));
        assert!(!t.note_told("alice", NotInUse));
        assert!(t.note_told("alice", InUse));
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
