//! Brute-force lockout, per (source address, username).
//!
//! Why not per address, as before: after `authfailures` wrong passwords the
//! whole address was ignored, so every phone behind one NAT went dark with
//! the guilty one, and spoofed UDP could lock a victim's address out. Now:
//!
//! * only a failure that answered a challenge we sent *to that address*
//!   counts (the nonce carries a MAC over the address, `DigestServer::
//!   challenge_for`): a spoofed packet never saw our nonce;
//! * the lock is on the pair: the guilty username from that address gets
//!   `403 Forbidden` (not silence: the phone shows why), its neighbours keep
//!   registering and calling;
//! * an address that sprays usernames (ten times `authfailures` failures in
//!   the window, whatever the usernames) is refused as a whole for the block
//!   time: per-pair counting alone never catches `authfailures - 1` guesses
//!   at each of many users, and could fill the table;
//! * each refused attempt is logged at most once a second per pair;
//! * `sip show banned` lists the locks, `sip unban <address>` lifts them;
//! * the table is pruned of pairs whose window and lock are over, and is
//!   bounded: past [`MAX_PAIRS`] a new pair is not tracked (the existing
//!   locks stay).
//!
//! ```text
//!   (ip, user) ──failure──► counting (≤ authfailures in 60 s)
//!        ▲                      │ authfailures-th failure
//!        │ window over          ▼
//!     (pruned) ◄──time up── locked (authblocktime s): 403, logged ≤ 1/s
//!                               │ sip unban <ip>
//!                               ▼
//!                            (gone)
//! ```

use std::collections::HashMap;
use std::net::IpAddr;

/// Failures are counted over this many seconds.
const WINDOW_S: u64 = 60;

/// The most pairs tracked at once (an address cannot grow it alone: only
/// failures answering our challenges to it count, and a spraying address is
/// locked as a whole after [`SPRAY_FACTOR`] × `authfailures` of them).
pub const MAX_PAIRS: usize = 100_000;

/// An address failing this many times `authfailures` in the window, over
/// any usernames, is locked as a whole.
pub const SPRAY_FACTOR: u32 = 10;

/// The key of an address's all-usernames count (no username is empty: an
/// attempt without one is never counted).
const ANY: &str = "";

#[derive(Debug, Default, Clone)]
struct Pair {
    count: u32,
    window_start: u64,
    locked_until: u64,
    /// When a refused attempt was last logged (Unix seconds).
    logged: Option<u64>,
}

/// One lock, as `sip show banned` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The source address.
    pub ip: IpAddr,
    /// The username it failed with.
    pub user: String,
    /// Failures counted in the window that locked it.
    pub failures: u32,
    /// Seconds left.
    pub left: u64,
}

/// What a failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Counted; the pair is not locked (yet).
    Counted(u32),
    /// This failure locked the pair.
    Locked(u32),
    /// This failure locked the whole address (a spray of usernames).
    AddressLocked(u32),
    /// The pair is new and the table is full: not tracked.
    Untracked,
}

/// The table of failures and locks.
#[derive(Debug, Default)]
pub struct Lockout {
    pairs: HashMap<(IpAddr, String), Pair>,
    pruned: u64,
    /// When the table being full was last logged.
    full_logged: Option<u64>,
}

impl Lockout {
    /// Seconds left on the lock of (`ip`, `user`), if locked at `now`.
    pub fn locked(&self, ip: IpAddr, user: &str, now: u64) -> Option<u64> {
        // Looked up without building an owned key for the common miss.
        if self.pairs.is_empty() {
            return None;
        }
        let ip = ip.to_canonical();
        let left = |key: &str| {
            self.pairs
                .get(&(ip, key.to_string()))
                .filter(|p| p.locked_until > now)
                .map(|p| p.locked_until - now)
        };
        left(user).or_else(|| left(ANY))
    }

    /// Whether the table being full should be logged now (once a second).
    pub fn log_full(&mut self, now: u64) -> bool {
        self.full_logged != Some(now) && {
            self.full_logged = Some(now);
            true
        }
    }

    /// Whether a refused attempt of the locked pair should be logged now
    /// (at most once a second per pair).
    pub fn log_refusal(&mut self, ip: IpAddr, user: &str, now: u64) -> bool {
        let ip = ip.to_canonical();
        let key = match self.pairs.get(&(ip, user.to_string())) {
            Some(p) if p.locked_until > now => user,
            _ => ANY,
        };
        match self.pairs.get_mut(&(ip, key.to_string())) {
            Some(p) if p.logged != Some(now) => {
                p.logged = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Counts a failure of `user` from `ip`; locks the pair for `block_s`
    /// seconds at the `limit`-th within the window (0: never locks).
    pub fn fail(&mut self, ip: IpAddr, user: &str, now: u64, limit: u32, block_s: u32) -> Counted {
        self.prune(now);
        let ip = ip.to_canonical();
        // The address's own count first: a spray of usernames locks it.
        let any = self.count(ip, ANY, now, limit.saturating_mul(SPRAY_FACTOR), block_s);
        if let Counted::Locked(n) = any {
            return Counted::AddressLocked(n);
        }
        self.count(ip, user, now, limit, block_s)
    }

    /// Counts one failure under (`ip`, `key`), locking at `limit` (0: never).
    fn count(&mut self, ip: IpAddr, key: &str, now: u64, limit: u32, block_s: u32) -> Counted {
        let key = (ip, key.to_string());
        if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_PAIRS {
            return Counted::Untracked;
        }
        let p = self.pairs.entry(key).or_default();
        if p.locked_until > now {
            return Counted::Locked(p.count);
        }
        if now.saturating_sub(p.window_start) > WINDOW_S {
            p.count = 0;
            p.window_start = now;
        }
        p.count += 1;
        if limit > 0 && p.count >= limit {
            p.locked_until = now + u64::from(block_s);
            return Counted::Locked(p.count);
        }
        Counted::Counted(p.count)
    }

    /// The locks in force at `now`, by address then username.
    pub fn banned(&self, now: u64) -> Vec<Ban> {
        let mut v: Vec<Ban> = self
            .pairs
            .iter()
            .filter(|(_, p)| p.locked_until > now)
            .map(|((ip, user), p)| Ban {
                ip: *ip,
                // The address as a whole (a spray of usernames).
                user: if user == ANY {
                    "*".into()
                } else {
                    user.clone()
                },
                failures: p.count,
                left: p.locked_until - now,
            })
            .collect();
        v.sort_by(|a, b| (a.ip, &a.user).cmp(&(b.ip, &b.user)));
        v
    }

    /// Lifts every lock (and forgets every failure) of `ip`; how many
    /// locks were lifted.
    pub fn unban(&mut self, ip: IpAddr, now: u64) -> usize {
        let ip = ip.to_canonical();
        let before = self.banned(now).len();
        self.pairs.retain(|(a, _), _| *a != ip);
        before - self.banned(now).len()
    }

    /// How many pairs are tracked (locked or counting).
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no pair is tracked.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Drops the pairs whose window and lock are both over, at most once a
    /// second.
    fn prune(&mut self, now: u64) {
        if self.pruned == now {
            return;
        }
        self.pruned = now;
        self.pairs
            .retain(|_, p| p.locked_until > now || now.saturating_sub(p.window_start) <= WINDOW_S);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn a_pair_locks_at_the_limit_and_its_neighbours_do_not() {
        let mut l = Lockout::default();
        assert_eq!(l.fail(NAT, "alice", 1000, 3, 300), Counted::Counted(1));
        assert_eq!(l.fail(NAT, "alice", 1001, 3, 300), Counted::Counted(2));
        assert_eq!(l.locked(NAT, "alice", 1001), None);
        assert_eq!(l.fail(NAT, "alice", 1002, 3, 300), Counted::Locked(3));
        assert_eq!(l.locked(NAT, "alice", 1002), Some(300));
        assert_eq!(
            l.locked(NAT, "bob", 1002),
            None,
            "a neighbour behind the NAT"
        );
        let other = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 8));
        assert_eq!(l.locked(other, "alice", 1002), None);
        // Refusals are logged once a second.
        assert!(l.log_refusal(NAT, "alice", 1003));
        assert!(!l.log_refusal(NAT, "alice", 1003));
        assert!(l.log_refusal(NAT, "alice", 1004));
        // The lock ends on time.
        assert_eq!(l.locked(NAT, "alice", 1301), Some(1));
        assert_eq!(l.locked(NAT, "alice", 1302), None);
    }

    #[test]
    fn failures_outside_the_window_start_over_and_old_pairs_are_pruned() {
        let mut l = Lockout::default();
        l.fail(NAT, "alice", 1000, 3, 300);
        l.fail(NAT, "alice", 1010, 3, 300);
        assert_eq!(l.fail(NAT, "alice", 1071, 3, 300), Counted::Counted(1));
        l.fail(NAT, "bob", 1071, 3, 300);
        assert_eq!(l.len(), 3, "alice, bob and the address's own count");
        // Another pair's failure two minutes later prunes them all.
        l.fail(NAT, "carol", 1200, 3, 300);
        assert_eq!(l.len(), 2, "carol and the address's count, afresh");
    }

    #[test]
    fn limit_zero_never_locks() {
        let mut l = Lockout::default();
        for t in 0..50 {
            assert!(matches!(
                l.fail(NAT, "x", 1000 + t, 0, 300),
                Counted::Counted(_)
            ));
        }
        assert_eq!(l.locked(NAT, "x", 1050), None);
    }

    #[test]
    fn banned_lists_the_locks_and_unban_lifts_them() {
        let mut l = Lockout::default();
        let other = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 1));
        for _ in 0..2 {
            l.fail(NAT, "bob", 1000, 2, 60);
            l.fail(NAT, "alice", 1000, 2, 60);
            l.fail(other, "alice", 1000, 2, 60);
        }
        l.fail(NAT, "carol", 1000, 2, 60); // counting, not locked
        let b = l.banned(1010);
        let names: Vec<(String, &str, u64)> = b
            .iter()
            .map(|b| (b.ip.to_string(), b.user.as_str(), b.left))
            .collect();
        assert_eq!(
            names,
            [
                ("192.0.2.7".to_string(), "alice", 50),
                ("192.0.2.7".to_string(), "bob", 50),
                ("198.51.100.1".to_string(), "alice", 50)
            ]
        );
        assert_eq!(l.unban(NAT, 1010), 2);
        assert_eq!(l.banned(1010).len(), 1);
        assert_eq!(l.locked(NAT, "alice", 1010), None);
        assert_eq!(l.unban(NAT, 1010), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut l = Lockout::default();
        // Many addresses (a spray from one is locked long before).
        let addr = |i: usize| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
        for i in 0..MAX_PAIRS / 2 {
            l.fail(addr(i), "u", 1000, 10, 60);
        }
        assert_eq!(l.len(), MAX_PAIRS, "a pair and an address count each");
        assert_eq!(
            l.fail(addr(MAX_PAIRS), "u", 1000, 10, 60),
            Counted::Untracked
        );
        // A tracked pair still counts.
        assert_eq!(l.fail(addr(0), "u", 1000, 10, 60), Counted::Counted(2));
        assert_eq!(l.len(), MAX_PAIRS);
        assert!(l.log_full(1000) && !l.log_full(1000) && l.log_full(1001));
    }

    #[test]
    fn an_address_spraying_usernames_is_locked_as_a_whole() {
        let mut l = Lockout::default();
        // Two guesses at each of many users (authfailures 3: no pair locks).
        let mut n = 0;
        let mut last = Counted::Untracked;
        for user in 0..20 {
            for _ in 0..2 {
                n += 1;
                last = l.fail(NAT, &format!("user{user}"), 1000, 3, 300);
                if n == 30 {
                    break;
                }
            }
            if n == 30 {
                break;
            }
        }
        assert_eq!(last, Counted::AddressLocked(30), "10 x authfailures");
        assert_eq!(l.locked(NAT, "someone-else", 1001), Some(299));
        let b = l.banned(1001);
        assert_eq!((b.len(), b[0].user.as_str()), (1, "*"), "{b:?}");
        assert_eq!(l.unban(NAT, 1001), 1);
        assert_eq!(l.locked(NAT, "someone-else", 1001), None);
    }
}
