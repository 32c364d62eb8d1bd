//! What chan_sip reports to the core's Prometheus endpoint (`/metrics`),
//! gathered when scraped from state chan_sip keeps anyway plus a few
//! relaxed counters on the message path.
//!
//! Names: Asterisk 20's res_prometheus for endpoints
//! (`asterisk_endpoints_count`, `asterisk_endpoints_state`,
//! `asterisk_endpoints_channels_count`), `sirius_sip_*` and `sirius_rtp_*`
//! for what Asterisk does not export.

use crate::Shared;
use sirius_abi::metrics::{Metric, MetricKind};
use sirius_sip::qualify::PeerStatus;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Counters kept on the message path, one set per SIP thread: each thread
/// writes only its own (on a cache line of its own, so two threads never
/// pull one line back and forth), and a scrape adds them up.
pub struct SipStats {
    shards: Vec<ShardStats>,
    /// RTP packets missing from what far ends sent (gaps in sequence
    /// numbers), counted by the relay.
    pub rtp_lost: Arc<AtomicU64>,
}

/// One SIP thread's counters.
#[repr(align(128))]
#[derive(Default)]
struct ShardStats {
    /// SIP responses by direction (0 sent, 1 received) and class (1xx–6xx).
    responses: [[AtomicU64; 6]; 2],
    /// Live transactions, stored at the end of the thread's turns.
    transactions: AtomicUsize,
}

/// Which way a message went.
#[derive(Clone, Copy)]
pub enum Direction {
    /// We sent it.
    Sent = 0,
    /// We received it.
    Received = 1,
}

impl SipStats {
    /// Counters for `shards` SIP threads.
    pub fn new(shards: usize) -> SipStats {
        SipStats {
            shards: (0..shards.max(1)).map(|_| ShardStats::default()).collect(),
            rtp_lost: Arc::new(AtomicU64::new(0)),
        }
    }

    fn shard(&self, shard: usize) -> &ShardStats {
        &self.shards[shard % self.shards.len()]
    }

    /// Counts `data` if it is a response (`SIP/2.0 NXX …`): one look at its
    /// first bytes, no parse.
    pub fn count(&self, shard: usize, dir: Direction, data: &[u8]) {
        if let [b'S', b'I', b'P', b'/', b'2', b'.', b'0', b' ', c @ b'1'..=b'6', ..] = data {
            self.shard(shard).responses[dir as usize][usize::from(c - b'1')]
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a response read already (over TCP) by its status code.
    pub fn count_code(&self, shard: usize, dir: Direction, code: u16) {
        if let Some(c) = (code / 100).checked_sub(1).filter(|c| *c < 6) {
            self.shard(shard).responses[dir as usize][usize::from(c)]
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notes how many transactions a thread holds now.
    pub fn set_transactions(&self, shard: usize, n: usize) {
        self.shard(shard).transactions.store(n, Ordering::Relaxed);
    }

    /// Responses of one direction and class (0 = 1xx), every thread's.
    fn responses(&self, dir: usize, class: usize) -> u64 {
        self.shards
            .iter()
            .map(|s| s.responses[dir][class].load(Ordering::Relaxed))
            .sum()
    }

    /// Transactions alive on every thread.
    fn transactions(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.transactions.load(Ordering::Relaxed))
            .sum()
    }
}

/// The metrics, now.
pub fn gather(shared: &Shared) -> Vec<Metric> {
    let running = shared.running();
    let mut names: Vec<&String> = running.peers.keys().collect();
    names.sort();
    let (mut state, mut channels, mut latency, mut registered) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Copies taken one lock at a time (never two held together, never one
    // held while formatting): the SIP threads take these on every REGISTER
    // and OPTIONS reply.
    let statuses: Vec<Option<PeerStatus>> = {
        let qualify = shared.qualify.lock();
        names
            .iter()
            .map(|n| qualify.get(*n).map(|q| q.status()))
            .collect()
    };
    let bindings: Vec<usize> = {
        let reg = shared.registrar.lock();
        names
            .iter()
            .map(|n| reg.bindings().get(*n).map_or(0, Vec::len))
            .collect()
    };
    for ((name, status), bound) in names.iter().zip(statuses).zip(bindings) {
        let p = &running.peers[*name];
        let labels = || {
            vec![
                ("id", format!("SIP/{name}")),
                ("tech", "SIP".to_string()),
                ("resource", name.to_string()),
            ]
        };
        let reachable = match status {
            Some(PeerStatus::Ok(_) | PeerStatus::Lagged(_)) => Some(true),
            Some(PeerStatus::Unreachable) => Some(false),
            Some(PeerStatus::Unknown) => None,
            // Not qualified: online when it has an address to reach.
            None => Some(!p.dynamic || bound > 0),
        };
        // ast_endpoint_state: 0 unknown, 1 offline, 2 online.
        let code = match reachable {
            None => 0.0,
            Some(false) => 1.0,
            Some(true) => 2.0,
        };
        state.push((labels(), code));
        channels.push((labels(), f64::from(shared.in_use.get(name))));
        if let Some(PeerStatus::Ok(ms) | PeerStatus::Lagged(ms)) = status {
            latency.push((vec![("peer", name.to_string())], f64::from(ms) / 1000.0));
        }
        if p.dynamic {
            registered.push((vec![("peer", name.to_string())], bound as f64));
        }
    }
    let outbound: Vec<_> = shared
        .outbound
        .lock()
        .iter()
        .map(|r| {
            let up = r.sm.state().as_str() == "Registered";
            (
                vec![("user", r.cfg.user.clone()), ("host", r.cfg.host.clone())],
                if up { 1.0 } else { 0.0 },
            )
        })
        .collect();
    let s = &shared.stats;
    let mut responses = Vec::new();
    for (d, dir) in ["sent", "received"].iter().enumerate() {
        for class in 0..6 {
            let n = s.responses(d, class);
            responses.push((
                vec![
                    ("direction", dir.to_string()),
                    ("class", format!("{}xx", class + 1)),
                ],
                n as f64,
            ));
        }
    }
    let transactions = s.transactions();
    vec![
        Metric::single(
            "asterisk_endpoints_count",
            "Current endpoint count.",
            MetricKind::Gauge,
            names.len() as f64,
        ),
        Metric::labelled(
            "asterisk_endpoints_state",
            "Individual endpoint states. 0=unknown; 1=offline; 2=online.",
            MetricKind::Gauge,
            state,
        ),
        Metric::labelled(
            "asterisk_endpoints_channels_count",
            "Count of the number of channels currently existing that are associated with the endpoint.",
            MetricKind::Gauge,
            channels,
        ),
        Metric::labelled(
            "sirius_sip_peer_latency_seconds",
            "Round trip of the last qualify OPTIONS a peer answered.",
            MetricKind::Gauge,
            latency,
        ),
        Metric::labelled(
            "sirius_sip_registrations",
            "Contacts registered for each dynamic peer.",
            MetricKind::Gauge,
            registered,
        ),
        Metric::labelled(
            "sirius_sip_outbound_registered",
            "Outbound registrations ([[register]]): 1 registered, 0 not.",
            MetricKind::Gauge,
            outbound,
        ),
        Metric::single(
            "sirius_sip_transactions",
            "SIP transactions alive (lingering ones included).",
            MetricKind::Gauge,
            transactions as f64,
        ),
        Metric::labelled(
            "sirius_sip_responses_total",
            "SIP responses by direction and class.",
            MetricKind::Counter,
            responses,
        ),
        Metric::single(
            "sirius_rtp_packets_relayed_total",
            "RTP packets the native relay forwarded.",
            MetricKind::Counter,
            shared.rtp_relayed.load(Ordering::Relaxed) as f64,
        ),
        Metric::single(
            "sirius_rtcp_packets_relayed_total",
            "RTCP packets the native relay forwarded.",
            MetricKind::Counter,
            shared.rtcp_relayed.load(Ordering::Relaxed) as f64,
        ),
        Metric::single(
            "sirius_rtp_packets_lost_total",
            "RTP packets missing from what far ends sent to the relay (gaps in sequence numbers).",
            MetricKind::Counter,
            s.rtp_lost.load(Ordering::Relaxed) as f64,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_counted_by_class_from_their_first_bytes() {
        let s = SipStats::new(2);
        s.count(0, Direction::Sent, b"SIP/2.0 200 OK\r\n");
        s.count(1, Direction::Sent, b"SIP/2.0 486 Busy Here\r\n");
        s.count(1, Direction::Received, b"SIP/2.0 180 Ringing\r\n");
        s.count(0, Direction::Sent, b"INVITE sip:a@b SIP/2.0\r\n");
        s.count(0, Direction::Sent, b"SIP/2.0 700 Nonsense\r\n");
        s.count(0, Direction::Sent, b"SIP/2.0");
        s.count_code(1, Direction::Received, 200);
        s.count_code(0, Direction::Received, 99);
        let n = |d: usize, c: usize| s.responses(d, c);
        assert_eq!((n(0, 1), n(0, 3), n(1, 0), n(1, 1)), (1, 1, 1, 1));
        let total: u64 = (0..2)
            .flat_map(|d| (0..6).map(move |c| (d, c)))
            .map(|(d, c)| n(d, c))
            .sum();
        assert_eq!(total, 4);
        s.set_transactions(0, 3);
        s.set_transactions(1, 4);
        assert_eq!(s.transactions(), 7, "every thread's");
        assert_eq!(std::mem::align_of::<ShardStats>(), 128);
    }
}
