//! RTP and RTCP ports for calls, from the configured range (Asterisk's
//! `rtp.conf` `rtpstart`/`rtpend`): RTP on an even port, RTCP on the next
//! one (RFC 3550 §11), so firewalls can be opened for exactly that range.
//!
//! The pairs this process holds are tracked here (a free list, and a lease
//! per call that gives its pair back when dropped), so taking a pair costs
//! one `bind` per socket. Probing the kernel port by port instead costs a
//! failed `socket`/`bind`/`close` for every pair already in use: with
//! thousands of calls up that is thousands of system calls per new call,
//! and once the range is full, a full sweep for every call refused.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::net::{IpAddr, UdpSocket};
use std::sync::Arc;

/// How many free pairs a request tries before giving up: a pair can fail
/// to bind when another process holds one of its ports (or a call's relay
/// still holds the sockets a moment after the call let go of them).
const ATTEMPTS: usize = 16;

/// The free pairs of one range, as even RTP ports.
struct Pool {
    start: u16,
    end: u16,
    free: Mutex<VecDeque<u16>>,
}

/// The port pairs of the range in force.
pub struct RtpPorts {
    pool: Mutex<Option<Arc<Pool>>>,
}

impl Default for RtpPorts {
    fn default() -> Self {
        RtpPorts::new()
    }
}

/// A call's hold on its pair: the pair goes back to the free list when the
/// lease is dropped (with the call). The sockets themselves close when
/// their last owner (the call, a relay) drops them.
pub struct PortLease {
    pool: Arc<Pool>,
    port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.free.lock().push_back(self.port);
    }
}

impl std::fmt::Debug for PortLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortLease({}/{})", self.port, self.port + 1)
    }
}

impl RtpPorts {
    /// No range yet: the first request builds the free list.
    pub fn new() -> RtpPorts {
        RtpPorts {
            pool: Mutex::new(None),
        }
    }

    /// The pool for `start..=end`, built anew when the range changed (a
    /// reload): leases of the old range return to the old pool, unused.
    fn pool(&self, start: u16, end: u16) -> Arc<Pool> {
        let mut current = self.pool.lock();
        if let Some(p) = current
            .as_ref()
            .filter(|p| (p.start, p.end) == (start, end))
        {
            return p.clone();
        }
        let first = u32::from(start + start % 2);
        // Even RTP ports from `first` whose RTCP port (+1) is still in range,
        // in an order that starts at a per-process offset (Asterisk picks a
        // random first port): two daemons on one range do not collide at once.
        let ports: Vec<u16> = (first..u32::from(end))
            .step_by(2)
            .map(|p| p as u16)
            .collect();
        let offset = if ports.is_empty() {
            0
        } else {
            (std::process::id() ^ crate::unix_now() as u32) as usize % ports.len()
        };
        let mut free: VecDeque<u16> = ports.into();
        free.rotate_left(offset);
        let pool = Arc::new(Pool {
            start,
            end,
            free: Mutex::new(free),
        });
        *current = Some(pool.clone());
        pool
    }

    /// Binds an RTP socket on an even port of `start..=end` and its RTCP
    /// socket on the port after it. Fails when no pair in the range is free.
    pub fn bind_pair(
        &self,
        ip: IpAddr,
        start: u16,
        end: u16,
    ) -> std::io::Result<(UdpSocket, UdpSocket, PortLease)> {
        let pool = self.pool(start, end);
        for _ in 0..ATTEMPTS {
            let Some(port) = pool.free.lock().pop_front() else {
                break;
            };
            // Taken now: a failed bind below hands it back at the end of the list.
            let lease = PortLease {
                pool: pool.clone(),
                port,
            };
            let Ok(rtp) = UdpSocket::bind((ip, port)) else {
                continue;
            };
            if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)) {
                return Ok((rtp, rtcp, lease));
            }
        }
        if u32::from(end).saturating_sub(u32::from(start + start % 2)) < 1 {
            return Err(std::io::Error::other(format!(
                "RTP port range {start}-{end} holds no even/odd pair"
            )));
        }
        Err(std::io::Error::other(format!(
            "no free RTP/RTCP port pair in {start}-{end}"
        )))
    }

    /// Pairs free in the range in force (`None` before the first request).
    #[cfg(test)]
    fn free_pairs(&self) -> Option<usize> {
        self.pool.lock().as_ref().map(|p| p.free.lock().len())
    }
}

#[cfg(test)]
mod tests {
    use super::RtpPorts;

    #[test]
    fn pairs_are_even_and_odd_within_the_range_and_distinct() {
        let ports = RtpPorts::new();
        let ip = "127.0.0.1".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..5 {
            let (rtp, rtcp, lease) = ports.bind_pair(ip, 40000, 40099).unwrap();
            let (a, b) = (
                rtp.local_addr().unwrap().port(),
                rtcp.local_addr().unwrap().port(),
            );
            assert!((40000..=40098).contains(&a) && a % 2 == 0, "{a}");
            assert_eq!(b, a + 1);
            held.push((a, rtp, rtcp, lease));
        }
        let mut seen: Vec<u16> = held.iter().map(|h| h.0).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 5);
        assert!(ports.bind_pair(ip, 40001, 40001).is_err(), "no pair fits");
    }

    #[test]
    fn a_pair_comes_back_when_its_lease_is_dropped_and_a_full_range_fails_fast() {
        let ports = RtpPorts::new();
        let ip = "127.0.0.1".parse().unwrap();
        let (start, end) = (40200, 40203); // two pairs
        let one = ports.bind_pair(ip, start, end).unwrap();
        let two = ports.bind_pair(ip, start, end).unwrap();
        assert_eq!(ports.free_pairs(), Some(0));
        let err = ports.bind_pair(ip, start, end).unwrap_err();
        assert!(
            err.to_string().contains("no free RTP/RTCP port pair"),
            "{err}"
        );
        let port = one.0.local_addr().unwrap().port();
        drop(one);
        assert_eq!(ports.free_pairs(), Some(1));
        let again = ports.bind_pair(ip, start, end).unwrap();
        assert_eq!(again.0.local_addr().unwrap().port(), port);
        drop((two, again));
    }

    #[test]
    fn a_port_held_by_someone_else_is_skipped() {
        let ports = RtpPorts::new();
        let ip = "127.0.0.1".parse().unwrap();
        let (start, end) = (40300, 40303);
        // Taking and giving back one pair puts the other pair first in line.
        let probe = ports.bind_pair(ip, start, end).unwrap();
        let first = probe.0.local_addr().unwrap().port();
        drop(probe);
        let other = if first == start { start + 2 } else { start };
        // Someone else holds the other pair's RTCP port: it is skipped.
        let squatter = std::net::UdpSocket::bind((ip, other + 1)).unwrap();
        let a = ports.bind_pair(ip, start, end).unwrap();
        assert_eq!(a.0.local_addr().unwrap().port(), first);
        drop(squatter);
    }
}
