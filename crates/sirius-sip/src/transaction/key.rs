//! Transaction matching keys (RFC 3261 §17.1.3, §17.2.3), as 128-bit hashes.
//!
//! The fields a transaction is matched on (branch, sent-by, method; for RFC
//! 2543 peers the request's identity) used to be formatted into a `String`
//! per message and hashed again with SipHash by each table: an allocation and
//! two passes over ~60 bytes for every request and response, on the one
//! thread that carries all signalling. Now they are fed once, without
//! allocating, into two independently seeded `foldhash` hashers (a fast,
//! well-kept keyed hash, the one `hashbrown` uses), and the 128 bits are the
//! key. Tables then hash the key by taking 64 of its bits, which costs
//! nothing.
//!
//! Two different keys colliding in 128 bits is out of reach by chance (a
//! table of a million live transactions has odds of about 2^-88 per new
//! key), and the seeds are random per process, so a peer cannot aim for it.

use crate::message::{HeaderName, Message, Method, BRANCH_MAGIC};
use crate::message::{HostRef, ViaRef};
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// A transaction's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(u128);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a uniform hash: 64 of its bits are the table hash.
        state.write_u64(self.0 as u64);
    }
}

/// The hasher a [`KeyMap`] uses: passes the key's own bits through.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `Key`; anything else still hashes.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard<V> = HashMap<Key, V, BuildHasherDefault<PassThrough>>;

/// Shards of a [`KeyMap`]: a power of two.
const SHARDS: usize = 16;

/// A table keyed by [`Key`], in [`SHARDS`] hash tables chosen by the key's
/// top bits. A hash table grows by moving every entry at once; at 300,000
/// live transactions that took milliseconds in one go (8.5 ms in the
/// `transaction_load` benchmark), all of it a stall of the SIP thread.
/// Sixteen tables grow one at a time, each moving a sixteenth.
pub(crate) struct KeyMap<V> {
    shards: Vec<Shard<V>>,
    /// Each shard's most entries since its table was allocated: whether a
    /// burst has written over the whole table (see [`KeyMap::shrink`]).
    peaks: Vec<usize>,
}

impl<V> std::fmt::Debug for KeyMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMap").field("len", &self.len()).finish()
    }
}

impl<V> KeyMap<V> {
    /// Room for `capacity` entries up front.
    pub(crate) fn with_capacity(capacity: usize) -> KeyMap<V> {
        KeyMap {
            shards: (0..SHARDS)
                .map(|_| Shard::with_capacity_and_hasher(capacity / SHARDS, Default::default()))
                .collect(),
            peaks: vec![0; SHARDS],
        }
    }

    fn shard(&self, k: &Key) -> usize {
        (k.0 >> 124) as usize % SHARDS
    }

    pub(crate) fn get(&self, k: &Key) -> Option<&V> {
        self.shards[self.shard(k)].get(k)
    }

    pub(crate) fn contains_key(&self, k: &Key) -> bool {
        self.shards[self.shard(k)].contains_key(k)
    }

    pub(crate) fn insert(&mut self, k: Key, v: V) -> Option<V> {
        let s = self.shard(&k);
        let old = self.shards[s].insert(k, v);
        self.peaks[s] = self.peaks[s].max(self.shards[s].len());
        old
    }

    pub(crate) fn remove(&mut self, k: &Key) -> Option<V> {
        let s = self.shard(k);
        self.shards[s].remove(k)
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.shards.iter().map(HashMap::capacity).sum()
    }

    /// Gives back the room of shards that are mostly empty after a burst,
    /// keeping at least `floor` entries' worth in all.
    ///
    /// A shard at its floor does not shrink that way, but a burst that
    /// filled a 64th of it has written to nearly every page of its table
    /// (keys spread over all of it: a page holds about 170 entries'
    /// slots), and those pages stay resident while the table lives: 5.4 MB
    /// for the default floors, idle or not (issue #11). So a shard back
    /// under 1/256 full after such a burst moves its few entries to a small
    /// table (twice their number) and the old one goes back to the
    /// allocator: once per burst and shard, a rehash of at most a few dozen
    /// entries. The next burst grows it again a shard at a
    /// time, each doubling moving at most a sixteenth of the entries (the
    /// floor only spares the first burst those).
    pub(crate) fn shrink(&mut self, floor: usize) {
        let floor = floor / SHARDS;
        // The room of a table made for `floor` entries (a power of two
        // buckets, seven-eighths of them usable).
        let base = (floor.max(64) * 8 / 7).next_power_of_two() / 8 * 7;
        for (m, peak) in self.shards.iter_mut().zip(&mut self.peaks) {
            let cap = m.capacity();
            if cap > base && m.len() < cap / 8 {
                m.shrink_to((m.len() * 2).max(floor));
                *peak = m.len();
            } else if *peak >= base / 64 && m.len() < base / 256 {
                let mut fresh =
                    Shard::with_capacity_and_hasher((m.len() * 2).max(64), Default::default());
                fresh.extend(m.drain());
                *m = fresh;
                *peak = m.len();
            }
        }
    }
}

/// Makes keys: two independently seeded hashers, 64 bits each.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keyer {
    lo: foldhash::quality::RandomState,
    hi: foldhash::quality::RandomState,
}

/// One field separator, so that ("ab","c") and ("a","bc") differ.
const SEP: u8 = 0xff;

impl Keyer {
    fn key(&self, feed: impl Fn(&mut dyn Hasher)) -> Key {
        let mut lo = self.lo.build_hasher();
        let mut hi = self.hi.build_hasher();
        feed(&mut lo);
        feed(&mut hi);
        Key(u128::from(lo.finish()) | (u128::from(hi.finish()) << 64))
    }

    /// Client side: the top Via branch plus the CSeq method (a CANCEL shares
    /// its INVITE's branch but is a different transaction).
    pub(crate) fn client(&self, msg: &Message) -> Option<Key> {
        let via = msg.top_via_ref()?;
        let branch = via.branch()?;
        let method = msg.cseq()?.method;
        Some(self.key(|h| {
            h.write_u8(b'c');
            h.write(branch.as_bytes());
            h.write_u8(SEP);
            h.write(method.as_str().as_bytes());
        }))
    }

    /// Server side: branch, sent-by and method (ACK matches INVITE) for RFC
    /// 3261 branches; for RFC 2543 peers, the fields §17.2.3 lists instead.
    pub(crate) fn server(&self, msg: &Message) -> Option<Key> {
        self.server_as(msg, msg.method()?)
    }

    /// The key of the INVITE server transaction a CANCEL targets (§9.2).
    pub(crate) fn invite_for_cancel(&self, cancel: &Message) -> Option<Key> {
        self.server_as(cancel, &Method::Invite)
    }

    fn server_as(&self, msg: &Message, method: &Method) -> Option<Key> {
        let via = msg.top_via_ref()?;
        let method = if *method == Method::Ack {
            "INVITE"
        } else {
            method.as_str()
        };
        match via.branch() {
            Some(b) if b.starts_with(BRANCH_MAGIC) && b.len() > BRANCH_MAGIC.len() => {
                Some(self.key(|h| {
                    h.write_u8(b's');
                    h.write(b.as_bytes());
                    h.write_u8(SEP);
                    sent_by(h, &via);
                    h.write_u8(SEP);
                    h.write(method.as_bytes());
                }))
            }
            _ => {
                let from = msg.from_ref();
                let from_tag = from.as_ref().and_then(|f| f.tag()).unwrap_or_default();
                let ruri = msg.request_uri().unwrap_or_default();
                let call_id = msg.call_id().unwrap_or_default();
                let seq = msg.cseq().map_or(0, |c| c.seq);
                let top = msg.headers.values(&HeaderName::Via).next();
                Some(self.key(|h| {
                    h.write(b"s2543");
                    for part in [ruri, from_tag, call_id] {
                        h.write(part.as_bytes());
                        h.write_u8(SEP);
                    }
                    h.write_u32(seq);
                    h.write(top.unwrap_or_default().as_bytes());
                    h.write_u8(SEP);
                    h.write(method.as_bytes());
                }))
            }
        }
    }

    /// An INVITE's dialog-wide identity, Call-ID and CSeq number: what the
    /// ACK for a 2xx is matched on (it is a transaction of its own).
    pub(crate) fn call(&self, call_id: &str, seq: u32) -> Key {
        self.key(|h| {
            h.write_u8(b'd');
            h.write(call_id.as_bytes());
            h.write_u8(SEP);
            h.write_u32(seq);
        })
    }
}

/// sent-by compared as §17.2.3 does: host case-insensitively, port as written.
fn sent_by(h: &mut dyn Hasher, via: &ViaRef<'_>) {
    match via.host {
        HostRef::Name(n) => {
            for b in n.bytes() {
                h.write_u8(b.to_ascii_lowercase());
            }
        }
        HostRef::V4(a) => h.write(&a.octets()),
        HostRef::V6(a) => h.write(&a.octets()),
    }
    h.write_u8(SEP);
    h.write_u32(via.port.map_or(0, |p| u32::from(p) + 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key for shard `i % SHARDS`, spread over the shard's table.
    fn key(i: u64) -> Key {
        let spread = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Key((u128::from(i % SHARDS as u64) << 124) | u128::from(spread))
    }

    #[test]
    fn a_shard_written_over_by_a_burst_gets_a_fresh_table_once_empty() {
        let floor = SHARDS * 4096;
        let mut m: KeyMap<u64> = KeyMap::with_capacity(floor);
        let room = m.capacity();
        // A burst: a quarter of the room, then all but one a shard go.
        let n = (room / 4) as u64;
        for i in 0..n {
            m.insert(key(i), i);
        }
        m.shrink(floor);
        assert!(m.peaks.iter().all(|&p| p as u64 >= n / SHARDS as u64 - 1));
        for i in 16..n {
            m.remove(&key(i));
        }
        m.shrink(floor);
        // Small fresh tables, the entries left in them, and no second
        // rebuild until another burst.
        assert!(m.capacity() < room / 16, "{}", m.capacity());
        assert!(m.peaks.iter().all(|&p| p == 1), "{:?}", m.peaks);
        assert_eq!(m.len(), 16);
        assert!((0..16).all(|i| m.get(&key(i)) == Some(&i)));
        // A small load does not count as a burst.
        m.insert(key(100), 100);
        m.remove(&key(100));
        m.shrink(floor);
        assert!(m.peaks.iter().all(|&p| p <= 2));
    }
}
