//! Signalling on every core: the endpoint sharded by Call-ID (issue #11).
//!
//! One endpoint on one thread set the ceiling at what one core does. Now
//! chan_sip runs `sipthreads` shards (one per core by default), each a full
//! endpoint (transactions, dialogs, sessions, timers) with its own driver
//! thread and its own relay thread, and every SIP message belongs to the
//! shard its Call-ID hashes to:
//!
//! ```text
//!   UDP socket (one port; shard 0 reads it, every shard sends on its own fd)
//!        │
//!   shard 0: recvfrom, peek the Call-ID ─ its own: endpoint.handle
//!        └── shard k's: queued to shard k (FIFO) ─▶ shard k: endpoint.handle
//!   core → chan_sip: by the channel's home (set when the channel is made)
//!   TCP: shard 0 frames, then passes on by Call-ID; any shard writes
//! ```
//!
//! One reader keeps each call's messages in their order of arrival (two
//! readers would let a message handed over be overtaken by the next one of
//! its call read directly by its shard).
//!
//! Why this works without locks on the call path: a call's two legs live on
//! one shard. An inbound leg's home is its Call-ID's; a Dial's outbound leg
//! is placed on the home of the channel that asked for it (the core passes
//! the requestor), and the Call-IDs a shard makes are drawn until they hash
//! to that shard, so the far end's answers come back to it. What every shard
//! shares sits in [`crate::Shared`] behind its own lock: the registrar, the
//! per-peer call counts ([`crate::inuse`]), the configuration, the port pool.
//! Clients that are not calls (`[[register]]` lines, qualify pokes) run on
//! shard 0 only.
//!
//! Only a transfer joins legs of two shards (both legs of a Dial share a
//! home; an attended transfer bridges the far ends of two calls whose
//! Call-IDs hash apart). Such a bridge runs on the first leg's relay with
//! the second leg's sockets *lent* to it (`Command::Lend`/`Borrow`, shared
//! `Arc`s): the lending shard keeps the call, its signalling and its ports,
//! and forwards what changes the relay (the far end's new address, the end
//! of the call); a hold crosses as a [`crate::endpoint::ShardMsg`].

use crate::driver::Command;
use parking_lot::Mutex;
use sirius_abi::{Cause, ChannelId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc::UnboundedSender;

/// Which shard an endpoint is, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Home {
    /// This shard's index.
    pub index: usize,
    /// How many shards there are.
    pub count: usize,
}

impl Home {
    /// The only shard (tests, `sipthreads = 1`).
    pub const SINGLE: Home = Home { index: 0, count: 1 };

    /// Whether `call_id` belongs here.
    pub fn owns(&self, call_id: &str) -> bool {
        shard_of(call_id.as_bytes(), self.count) == self.index
    }

    /// Whether this shard runs the clients that are not calls (outbound
    /// registrations, qualify pokes) and the registrar's expiry.
    pub fn runs_clients(&self) -> bool {
        self.index == 0
    }
}

/// The shard a Call-ID belongs to: FNV-1a over its bytes (surrounding
/// whitespace ignored, as the parser ignores it), modulo `count`. Any
/// function of the Call-ID alone would do, as long as every message of a
/// call maps to one shard; this one is cheap and spreads random IDs evenly.
pub fn shard_of(call_id: &[u8], count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let id = call_id.trim_ascii();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The high bits mix best.
    ((h >> 32) % count as u64) as usize
}

/// The Call-ID of a datagram, found without parsing it: the value of the
/// first `Call-ID:` (or compact `i:`) header line before the blank line.
/// `None` for anything without one (the shard that read it answers or drops
/// it: a message without a Call-ID belongs to no call).
pub fn peek_call_id(data: &[u8]) -> Option<&[u8]> {
    let mut lines = data.split(|&b| b == b'\n');
    lines.next()?; // the start line
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None; // end of headers
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            return Some(line[colon + 1..].trim_ascii());
        }
    }
    None
}

/// The shards' command queues and the home of every channel, for the
/// threads outside them (the core's, the console's) and for each other.
pub struct Shards {
    senders: Vec<UnboundedSender<Command>>,
    /// The shard each live channel of ours lives on; empty with one shard.
    homes: Mutex<HashMap<ChannelId, u16>>,
    /// Round robin for outbound calls without a SIP requestor.
    next: AtomicUsize,
}

impl Shards {
    /// Over the shards' queues, in shard order.
    pub fn new(senders: Vec<UnboundedSender<Command>>) -> Shards {
        Shards {
            senders,
            homes: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// How many shards.
    pub fn count(&self) -> usize {
        self.senders.len()
    }

    /// Queues `cmd` for shard `index`.
    pub fn send(&self, index: usize, cmd: Command) -> Result<(), Cause> {
        self.senders
            .get(index)
            .ok_or(Cause::FAILURE)?
            .send(cmd)
            .map_err(|_| Cause::FAILURE)
    }

    /// Queues `cmd` for the shard `chan` lives on (shard 0 for a channel
    /// none knows: it answers as any shard would for a call it does not have).
    pub fn send_for(&self, chan: ChannelId, cmd: Command) -> Result<(), Cause> {
        self.send(self.home(chan), cmd)
    }

    /// Queues one command per shard.
    pub fn broadcast(&self, mut cmd: impl FnMut() -> Command) {
        for s in &self.senders {
            let _ = s.send(cmd());
        }
    }

    /// Asks every shard the command `make` builds around a reply channel
    /// and collects the answers, waiting `within` in all: one per shard, or
    /// fewer when one did not answer in time (or is gone).
    pub fn gather<T>(
        &self,
        make: impl Fn(std::sync::mpsc::Sender<T>) -> Command,
        within: std::time::Duration,
    ) -> Vec<T> {
        let (reply, answers) = std::sync::mpsc::channel();
        self.broadcast(|| make(reply.clone()));
        drop(reply);
        let deadline = std::time::Instant::now() + within;
        (0..self.count())
            .map_while(|_| {
                answers
                    .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                    .ok()
            })
            .collect()
    }

    /// The shard `chan` lives on.
    pub fn home(&self, chan: ChannelId) -> usize {
        if self.count() <= 1 {
            return 0;
        }
        self.homes.lock().get(&chan).map_or(0, |&k| usize::from(k))
    }

    /// Records that `chan` lives on shard `index`.
    pub fn settle(&self, chan: ChannelId, index: usize) {
        if self.count() > 1 {
            self.homes.lock().insert(chan, index as u16);
        }
    }

    /// `chan` is gone.
    pub fn forget(&self, chan: ChannelId) {
        if self.count() > 1 {
            let mut homes = self.homes.lock();
            homes.remove(&chan);
            // A burst's worth of entries leaves a big table behind.
            if homes.capacity() > 1024 && homes.len() < homes.capacity() / 8 {
                let keep = homes.len() * 2;
                homes.shrink_to(keep);
            }
        }
    }

    /// Where a new outbound channel goes: with the channel that asked for
    /// it when that is one of ours, else the next shard in turn.
    pub fn home_for_outbound(&self, requestor: Option<ChannelId>) -> usize {
        if self.count() <= 1 {
            return 0;
        }
        if let Some(k) = requestor.and_then(|r| self.homes.lock().get(&r).copied()) {
            return usize::from(k);
        }
        self.next.fetch_add(1, Ordering::Relaxed) % self.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_are_found_in_long_and_compact_form_before_the_body() {
        let long = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x\r\nCall-ID:  abc@h \r\n\r\n";
        assert_eq!(peek_call_id(long), Some(&b"abc@h"[..]));
        let compact = b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP x\r\ni:xyz\r\n\r\n";
        assert_eq!(peek_call_id(compact), Some(&b"xyz"[..]));
        let lower = b"BYE sip:a SIP/2.0\nCALL-id : q1\n\n";
        assert_eq!(peek_call_id(lower), Some(&b"q1"[..]));
        // Only headers count: a body line that looks like one does not.
        let body = b"MESSAGE sip:a SIP/2.0\r\nTo: <sip:a>\r\n\r\nCall-ID: in-body\r\n";
        assert_eq!(peek_call_id(body), None);
        // A header whose name merely starts like it does not either.
        let other = b"OPTIONS sip:a SIP/2.0\r\nCall-Info: <x>\r\nI-Am: y\r\n\r\n";
        assert_eq!(peek_call_id(other), None);
        assert_eq!(peek_call_id(b""), None);
        assert_eq!(peek_call_id(b"\r\n\r\n"), None);
    }

    #[test]
    fn every_message_of_a_call_maps_to_one_shard_and_ids_spread() {
        assert_eq!(shard_of(b"anything", 1), 0);
        assert_eq!(shard_of(b" abc@h ", 2), shard_of(b"abc@h", 2));
        let mut per = [0usize; 2];
        for i in 0..10_000 {
            per[shard_of(format!("{i:x}-call@10.0.0.1").as_bytes(), 2)] += 1;
        }
        assert!(per.iter().all(|&n| n > 4_500), "uneven: {per:?}");
        let home = Home { index: 1, count: 2 };
        let mine = (0..100)
            .map(|i| format!("id{i}"))
            .find(|id| home.owns(id))
            .unwrap();
        assert_eq!(shard_of(mine.as_bytes(), 2), 1);
        assert!(Home::SINGLE.owns("whatever"));
    }

    #[test]
    fn outbound_legs_follow_their_requestor_and_others_take_turns() {
        let (a, _ra) = tokio::sync::mpsc::unbounded_channel();
        let (b, _rb) = tokio::sync::mpsc::unbounded_channel();
        let shards = Shards::new(vec![a, b]);
        shards.settle(ChannelId(7), 1);
        assert_eq!(shards.home(ChannelId(7)), 1);
        assert_eq!(shards.home_for_outbound(Some(ChannelId(7))), 1);
        let turns: Vec<usize> = (0..4).map(|_| shards.home_for_outbound(None)).collect();
        assert_eq!(turns, [0, 1, 0, 1]);
        shards.forget(ChannelId(7));
        assert_eq!(shards.home(ChannelId(7)), 0);
    }
}
