//! Where transactions live: a slab in fixed-size chunks, addressed by
//! [`TxId`] (slot and generation).
//!
//! Why not a `HashMap<TxId, Tx>`: over UDP a transaction lingers 32 s after
//! its final response (Timers D, J, L, M), so at 3,000 calls/s some 300,000
//! are alive, and a hash table of them doubles by allocating, zeroing and
//! moving every entry at once. Profiles showed the SIP thread spending
//! 150–250 ms in `reserve_rehash` at such moments, long enough to make peers
//! retransmit, which made more transactions. Here growth adds one chunk and
//! moves nothing; a freed slot is reused by the next transaction, with a new
//! generation so that a stale id never reaches the newcomer.
//!
//! The lowest free slot is reused first, so after a burst the live
//! transactions gather at the front and the chunks at the end empty out;
//! those are given back (one spare kept, so that a load hovering at a chunk
//! boundary does not allocate and free in turn). Memory follows the load
//! down a minute after it ends instead of staying at its high-water mark.

use super::TxId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Slots per chunk: 1,024 transactions of a few hundred bytes, a few
/// hundred KiB allocated at a time.
const CHUNK: usize = 1024;

struct Slot<T> {
    /// The generation of the value in the slot (0: none since created).
    generation: u64,
    value: Option<T>,
}

/// The slab.
pub(crate) struct Slab<T> {
    chunks: Vec<Box<[Slot<T>]>>,
    /// Live values per chunk.
    live: Vec<u32>,
    /// Free slot indices, lowest first. May hold stale entries (an index
    /// past a chunk given back, or one already taken again after its chunk
    /// came back): `take_free` skips those.
    free: BinaryHeap<Reverse<u32>>,
    len: usize,
    /// The last generation handed out. One counter for the whole slab
    /// (40 bits: no wrap in centuries of calls), so an id stays dead even
    /// after its chunk was given back and made anew.
    generation: u64,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            live: Vec::new(),
            free: BinaryHeap::new(),
            len: 0,
            generation: 0,
        }
    }
}

impl<T> std::fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab")
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

/// Bits of a [`TxId`] that give the slot; the rest is the generation.
const INDEX_BITS: u32 = 24;

fn split(id: TxId) -> (u32, u64) {
    ((id.0 & ((1 << INDEX_BITS) - 1)) as u32, id.0 >> INDEX_BITS)
}

fn join(index: u32, generation: u64) -> TxId {
    TxId((generation << INDEX_BITS) | u64::from(index))
}

impl<T> Slab<T> {
    /// Live values.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Chunks allocated.
    #[cfg(test)]
    pub(crate) fn chunks(&self) -> usize {
        self.chunks.len()
    }

    fn slot(&self, index: u32) -> Option<&Slot<T>> {
        let i = index as usize;
        self.chunks.get(i / CHUNK).map(|c| &c[i % CHUNK])
    }

    fn slot_mut(&mut self, index: u32) -> Option<&mut Slot<T>> {
        let i = index as usize;
        self.chunks.get_mut(i / CHUNK).map(|c| &mut c[i % CHUNK])
    }

    /// The lowest free slot, skipping stale entries.
    fn take_free(&mut self) -> Option<u32> {
        while let Some(Reverse(i)) = self.free.pop() {
            if self.slot(i).is_some_and(|s| s.value.is_none()) {
                return Some(i);
            }
        }
        None
    }

    /// Stores `value`; returns its id, or `None` when 16 million slots
    /// are taken (memory runs out long before; never a panic).
    pub(crate) fn insert(&mut self, value: T) -> Option<TxId> {
        let index = match self.take_free() {
            Some(i) => i,
            None => {
                let base = self.chunks.len() * CHUNK;
                self.chunks.push(
                    (0..CHUNK)
                        .map(|_| Slot {
                            generation: 0,
                            value: None,
                        })
                        .collect(),
                );
                self.live.push(0);
                self.free
                    .extend((base as u32 + 1..(base + CHUNK) as u32).map(Reverse));
                base as u32
            }
        };
        if index >= 1 << INDEX_BITS {
            self.free.push(Reverse(index));
            return None;
        }
        self.len += 1;
        self.live[index as usize / CHUNK] += 1;
        // Generation 0 is never handed out: `TxId(0)` is no transaction.
        self.generation += 1;
        let generation = self.generation;
        let slot = self
            .slot_mut(index)
            .expect("free indices point into allocated chunks");
        slot.generation = generation;
        slot.value = Some(value);
        Some(join(index, generation))
    }

    /// The value of a live id.
    pub(crate) fn get(&self, id: TxId) -> Option<&T> {
        let (index, generation) = split(id);
        self.slot(index)
            .filter(|s| s.generation == generation)
            .and_then(|s| s.value.as_ref())
    }

    /// The value of a live id, mutably.
    pub(crate) fn get_mut(&mut self, id: TxId) -> Option<&mut T> {
        let (index, generation) = split(id);
        self.slot_mut(index)
            .filter(|s| s.generation == generation)
            .and_then(|s| s.value.as_mut())
    }

    /// Takes a value out; its id is dead from now on.
    pub(crate) fn remove(&mut self, id: TxId) -> Option<T> {
        let (index, generation) = split(id);
        let slot = self.slot_mut(index)?;
        if slot.generation != generation {
            return None;
        }
        let value = slot.value.take()?;
        self.free.push(Reverse(index));
        self.len -= 1;
        self.live[index as usize / CHUNK] -= 1;
        // Give back empty chunks at the end, keeping one spare.
        while self.chunks.len() >= 2
            && self.live[self.chunks.len() - 1] == 0
            && self.live[self.chunks.len() - 2] == 0
        {
            self.chunks.pop();
            self.live.pop();
        }
        Some(value)
    }

    /// Every live value with its id, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (TxId, &T)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().enumerate().filter_map(move |(i, s)| {
                let index = (c * CHUNK + i) as u32;
                s.value.as_ref().map(|v| (join(index, s.generation), v))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_slot_is_reused_under_a_new_id_and_the_old_id_is_dead() {
        let mut s = Slab::default();
        let a = s.insert("a").unwrap();
        let b = s.insert("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.get(a), None);
        let c = s.insert("c").unwrap();
        assert_ne!(c, a, "same slot, new generation");
        assert_eq!(split(c).0, split(a).0);
        assert_eq!(s.get(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(c), Some(&"c"));
        assert_eq!(s.len(), 2);
        let mut all: Vec<_> = s.iter().map(|(_, v)| *v).collect();
        all.sort();
        assert_eq!(all, ["b", "c"]);
    }

    #[test]
    fn growth_adds_chunks_and_keeps_every_value_in_place() {
        let mut s = Slab::default();
        let ids: Vec<_> = (0..3 * CHUNK + 5).map(|i| s.insert(i).unwrap()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(s.get(*id), Some(&i));
        }
        assert_eq!(s.len(), 3 * CHUNK + 5);
        assert_eq!(s.chunks.len(), 4);
        assert_eq!(s.get(TxId(0)), None, "no id is ever zero");
    }

    #[test]
    fn chunks_emptied_at_the_end_are_given_back_and_slots_never_doubly_used() {
        let mut s = Slab::default();
        let ids: Vec<_> = (0..4 * CHUNK).map(|i| s.insert(i).unwrap()).collect();
        for id in &ids[CHUNK..] {
            s.remove(*id);
        }
        assert_eq!(s.chunks.len(), 2, "the first chunk and one spare");
        // Refill past the given-back chunks: every id distinct and readable.
        let again: Vec<_> = (0..3 * CHUNK)
            .map(|i| s.insert(10_000 + i).unwrap())
            .collect();
        let mut slots: Vec<_> = again.iter().map(|id| split(*id).0).collect();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 3 * CHUNK, "no slot handed out twice");
        for (i, id) in again.iter().enumerate() {
            assert_eq!(s.get(*id), Some(&(10_000 + i)));
        }
        for (i, id) in ids[..CHUNK].iter().enumerate() {
            assert_eq!(s.get(*id), Some(&i), "the survivors stayed in place");
        }
    }
}
