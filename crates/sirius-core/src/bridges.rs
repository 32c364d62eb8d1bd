//! Live bridges, for `bridge show all`: which channels are joined, by which
//! bridge technology, since when. The channel registry already says who is
//! bridged to whom; this adds the bridge as an object with an identity and a
//! start time, as Asterisk's `ast_bridge` has.

use parking_lot::Mutex;
use sirius_abi::ChannelId;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// [`Bridge::technology`] of a bridge the legs' technology carries itself
/// (`ChannelTech::native_bridge`).
pub const NATIVE_RTP: &str = "native_rtp";

/// One bridge.
#[derive(Debug, Clone)]
pub struct Bridge {
    /// UUID-shaped identifier, like Asterisk's bridge uniqueid.
    pub id: String,
    /// `native_rtp` or `simple_bridge`.
    pub technology: &'static str,
    /// The joined channels.
    pub channels: Vec<ChannelId>,
    /// When the channels were joined.
    pub started: Instant,
}

/// Every live bridge.
#[derive(Debug, Default)]
pub struct BridgeRegistry {
    bridges: Mutex<Vec<Bridge>>,
    seq: AtomicU64,
    seed: RandomState,
}

impl BridgeRegistry {
    /// An empty registry.
    pub fn new() -> BridgeRegistry {
        BridgeRegistry::default()
    }

    /// Records a bridge between `a` and `b`; returns its id.
    pub fn add(&self, a: ChannelId, b: ChannelId, technology: &'static str) -> String {
        let id = self.new_id();
        self.bridges.lock().push(Bridge {
            id: id.clone(),
            technology,
            channels: vec![a, b],
            started: Instant::now(),
        });
        id
    }

    /// A channel left (hung up): a two-party bridge ends with it. Returns
    /// the bridges that ended (so that the core can tell a native bridge's
    /// technology).
    pub fn remove_channel(&self, chan: ChannelId) -> Vec<Bridge> {
        let mut ended = Vec::new();
        self.bridges.lock().retain(|b| {
            let stays = !b.channels.contains(&chan);
            if !stays {
                ended.push(b.clone());
            }
            stays
        });
        ended
    }

    /// The bridge of `a` and `b` ends with both legs alive (a transfer
    /// takes one of them elsewhere); returns it.
    pub fn remove_pair(&self, a: ChannelId, b: ChannelId) -> Option<Bridge> {
        let mut bridges = self.bridges.lock();
        let at = bridges
            .iter()
            .position(|x| x.channels.contains(&a) && x.channels.contains(&b))?;
        Some(bridges.remove(at))
    }

    /// The bridges, oldest first.
    pub fn snapshot(&self) -> Vec<Bridge> {
        self.bridges.lock().clone()
    }

    /// A random-looking, unique UUID (version 4 layout): a per-process random
    /// key hashes a sequence number, so no two bridges of a run share an id.
    fn new_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let word = |salt: u64| {
            let mut h = self.seed.build_hasher();
            h.write_u64(n);
            h.write_u64(salt);
            h.finish()
        };
        let (hi, lo) = (word(1), word(2));
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0x0fff,
            0x8000 | ((lo >> 48) & 0x3fff),
            lo & 0xffff_ffff_ffff
        )
    }
}

/// `BridgeEnter`/`BridgeLeave` as Asterisk 12+ writes them
/// (`manager_bridges.c`): the bridge's fields, then the channel's.
/// `bridge` is (uniqueid, technology, channels in it after the change).
pub fn bridge_event(
    name: &str,
    (id, technology, count): (&str, &str, usize),
    chan: &crate::channels::Channel,
    linkedid: &str,
) -> crate::events::Event {
    let mut e = crate::events::Event::new(name);
    e.push("BridgeUniqueid", id)
        .push("BridgeType", "basic")
        .push("BridgeTechnology", technology)
        .push("BridgeCreator", "<unknown>")
        .push("BridgeName", "<unknown>")
        .push("BridgeNumChannels", count.to_string())
        .push("BridgeVideoSourceMode", "none")
        .channel("", chan, linkedid);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridges_have_distinct_uuid_shaped_ids_and_end_with_a_channel() {
        let r = BridgeRegistry::new();
        let (a, b, c, d) = (ChannelId(1), ChannelId(2), ChannelId(3), ChannelId(4));
        let x = r.add(a, b, "native_rtp");
        let y = r.add(c, d, "simple_bridge");
        assert_ne!(x, y);
        assert_eq!(x.len(), 36);
        assert_eq!(x.as_bytes()[14], b'4');
        let ended = r.remove_channel(b);
        assert_eq!(ended.len(), 1);
        assert_eq!(
            (ended[0].id.as_str(), &ended[0].channels[..]),
            (x.as_str(), &[a, b][..])
        );
        let left = r.snapshot();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, y);
        assert_eq!(left[0].technology, "simple_bridge");
    }
}
