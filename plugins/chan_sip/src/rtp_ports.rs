//! RTP and RTCP ports for calls, from the configured range (Asterisk's
//! `rtp.conf` `rtpstart`/`rtpend`): RTP on an even port, RTCP on the next
//! one (RFC 3550 §11), so firewalls can be opened for exactly that range.

use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where the next search starts, so that consecutive calls do not all probe
/// the same busy ports first.
pub struct RtpPorts {
    cursor: AtomicU32,
}

impl Default for RtpPorts {
    fn default() -> Self {
        RtpPorts::new()
    }
}

impl RtpPorts {
    /// A fresh cursor (its start varies per process, as Asterisk picks a
    /// random first port).
    pub fn new() -> RtpPorts {
        let seed = std::process::id() ^ (crate::unix_now() as u32);
        RtpPorts {
            cursor: AtomicU32::new(seed),
        }
    }

    /// Binds an RTP socket on an even port of `start..=end` and its RTCP
    /// socket on the port after it. Fails when no pair in the range is free.
    pub fn bind_pair(
        &self,
        ip: IpAddr,
        start: u16,
        end: u16,
    ) -> std::io::Result<(UdpSocket, UdpSocket)> {
        let first = u32::from(start + start % 2);
        // Even RTP ports from `first` whose RTCP port (+1) is still in range.
        let pairs = u32::from(end).saturating_sub(first).div_ceil(2);
        if pairs == 0 {
            return Err(std::io::Error::other(format!(
                "RTP port range {start}-{end} holds no even/odd pair"
            )));
        }
        for _ in 0..pairs {
            let n = self.cursor.fetch_add(1, Ordering::Relaxed) % pairs;
            let port = (first + 2 * n) as u16;
            let Ok(rtp) = UdpSocket::bind((ip, port)) else {
                continue;
            };
            if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)) {
                return Ok((rtp, rtcp));
            }
        }
        Err(std::io::Error::other(format!(
            "no free RTP/RTCP port pair in {start}-{end}"
        )))
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
            let (rtp, rtcp) = ports.bind_pair(ip, 40000, 40099).unwrap();
            let (a, b) = (
                rtp.local_addr().unwrap().port(),
                rtcp.local_addr().unwrap().port(),
            );
            assert!((40000..=40098).contains(&a) && a % 2 == 0, "{a}");
            assert_eq!(b, a + 1);
            held.push((rtp, rtcp));
        }
        let mut seen: Vec<u16> = held
            .iter()
            .map(|(r, _)| r.local_addr().unwrap().port())
            .collect();
        seen.dedup();
        assert_eq!(seen.len(), 5);
        assert!(ports.bind_pair(ip, 40001, 40001).is_err(), "no pair fits");
    }
}
