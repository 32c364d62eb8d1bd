//! RTP and RTCP ports for calls, from the configured range (Asterisk's
//! `rtp.conf` `rtpstart`/`rtpend`): RTP on an even port, RTCP on the next
//! one (RFC 3550 §11), so firewalls can be opened for exactly that range.
//!
//! The pairs this process holds are tracked here, and a pair a call is done
//! with stays bound: its sockets come back here when their last user (the
//! call, the relay thread) lets go of them, and the next call takes them as
//! they are, after draining what reached them since. A call thus costs no
//! `socket`/`bind`/`close` (six system calls a leg) on the SIP thread once
//! the pool is warm, and a few dozen pairs are bound ahead at load by a
//! thread of their own, so even a cold start begins warm. Ports never bound
//! yet come from a free list: probing the kernel port by port instead costs
//! a failed `socket`/`bind`/`close` for every pair already in use.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How many free pairs a request tries before giving up: a pair can fail
/// to bind when another process holds one of its ports.
const ATTEMPTS: usize = 64;

/// Pairs bound ahead when a range comes into force.
pub const PREBIND: usize = 32;

/// Descriptors reserved beyond the RTP range's: SIP, TCP connections,
/// files, the relay's epoll.
const DESCRIPTOR_SLACK: usize = 1024;

/// Grows this process's descriptor table now to `count` entries (at most
/// the open-files limit), so that no `socket` of a call grows it later;
/// returns the size reached.
///
/// Why: the kernel doubles a multi-threaded process's table when a new
/// descriptor does not fit, and waits for an RCU grace period to do it
/// (`expand_fdtable`): the `socket` of an RTP port took 5–16 ms on the SIP
/// thread each time the calls' sockets crossed 512, 1,024, 2,048… (seen
/// with `perf trace` at 3,000 calls/s), the worst stalls of a cold start.
/// Asking once for a descriptor at the top (`F_DUPFD`), then closing it,
/// pays that once, at load, off the SIP threads. The table never shrinks
/// (8 bytes an entry: 80 KB for the default range).
pub fn reserve_descriptors(count: usize) -> std::io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let soft = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
    let top = count.min(soft.saturating_sub(1)).min(i32::MAX as usize);
    let any = std::fs::File::open("/dev/null")?;
    // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we own onto the lowest
    // free number at or above `top`; the duplicate is closed at once.
    let dup = unsafe { libc::fcntl(any.as_raw_fd(), libc::F_DUPFD_CLOEXEC, top as libc::c_int) };
    if dup < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `dup` is ours and used nowhere else.
    unsafe { libc::close(dup) };
    Ok(top + 1)
}

/// The pairs of one range.
struct Pool {
    start: u16,
    end: u16,
    /// Even RTP ports not bound by us.
    free: Mutex<VecDeque<u16>>,
    /// Bound sockets given back, by RTP port, until both halves are back;
    /// `ready` lists the pairs whole again.
    idle: Mutex<Idle>,
    /// A newer range is in force (a reload): sockets given back close.
    retired: AtomicBool,
}

#[derive(Default)]
struct Idle {
    halves: HashMap<u16, (Option<UdpSocket>, Option<UdpSocket>)>,
    ready: Vec<u16>,
}

impl Pool {
    /// A socket of port `port` came back from its last user.
    fn give_back(&self, port: u16, socket: UdpSocket) {
        if self.retired.load(Ordering::Relaxed) {
            return; // closes
        }
        let rtp = port & !1;
        let mut idle = self.idle.lock();
        let halves = idle.halves.entry(rtp).or_default();
        if port == rtp {
            halves.0 = Some(socket);
        } else {
            halves.1 = Some(socket);
        }
        if halves.0.is_some() && halves.1.is_some() {
            idle.ready.push(rtp);
        }
    }

    /// A pair given back whole, drained of packets that reached it since.
    fn take_idle(self: &Arc<Self>) -> Option<(RtpSocket, RtpSocket)> {
        let (port, rtp, rtcp) = {
            let mut idle = self.idle.lock();
            let port = idle.ready.pop()?;
            let (rtp, rtcp) = idle.halves.remove(&port)?;
            (port, rtp?, rtcp?)
        };
        let mut buf = [0u8; 2048];
        for s in [&rtp, &rtcp] {
            // Non-blocking since bound: stops at the first empty read.
            while s.recv_from(&mut buf).is_ok() {}
        }
        Some((self.wrap(port, rtp), self.wrap(port + 1, rtcp)))
    }

    fn wrap(self: &Arc<Self>, port: u16, socket: UdpSocket) -> RtpSocket {
        RtpSocket {
            socket: Some(socket),
            home: Some((self.clone(), port)),
        }
    }
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

/// A bound RTP or RTCP socket of the range. When its last owner drops it,
/// it goes back to the pool bound, for a later call.
pub struct RtpSocket {
    socket: Option<UdpSocket>,
    /// The pool and port it returns to (none: a socket of no range, closed
    /// when dropped; tests use those).
    home: Option<(Arc<Pool>, u16)>,
}

impl RtpSocket {
    /// A socket that belongs to no range, made non-blocking as the pool's
    /// are (the relay reads until a read would block): closed when dropped.
    pub fn detached(socket: UdpSocket) -> std::io::Result<RtpSocket> {
        socket.set_nonblocking(true)?;
        Ok(RtpSocket {
            socket: Some(socket),
            home: None,
        })
    }
}

impl std::ops::Deref for RtpSocket {
    type Target = UdpSocket;
    fn deref(&self) -> &UdpSocket {
        self.socket.as_ref().expect("present until dropped")
    }
}

impl Drop for RtpSocket {
    fn drop(&mut self) {
        if let (Some(socket), Some((pool, port))) = (self.socket.take(), self.home.take()) {
            pool.give_back(port, socket);
        }
    }
}

impl std::fmt::Debug for RtpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.home {
            Some((_, port)) => write!(f, "RtpSocket({port})"),
            None => write!(f, "RtpSocket(detached)"),
        }
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
            idle: Mutex::new(Idle::default()),
            retired: AtomicBool::new(false),
        });
        if let Some(old) = current.replace(pool.clone()) {
            old.retired.store(true, Ordering::Relaxed);
            old.idle.lock().halves.clear(); // closes what waited there
        }
        pool
    }

    /// Binds up to `n` pairs ahead, into the pool of `start..=end`: what a
    /// thread of its own does when a range comes into force. The process's
    /// descriptor table is first grown to hold the whole range
    /// ([`reserve_descriptors`]).
    pub fn prebind(&self, ip: IpAddr, start: u16, end: u16, n: usize) {
        let range = usize::from(end.saturating_sub(start)) + 1;
        match reserve_descriptors(range + DESCRIPTOR_SLACK) {
            Ok(top) => log::debug!("descriptor table holds {top} descriptors"),
            Err(e) => log::debug!("descriptor table not grown ahead: {e}"),
        }
        let pairs: Vec<_> = (0..n)
            .map_while(|_| self.bind_pair(ip, start, end).ok())
            .collect();
        drop(pairs); // back to the pool, bound
    }

    /// An RTP socket on an even port of `start..=end` and its RTCP socket
    /// on the port after it: a pair given back by an earlier call, or one
    /// bound now. Fails when no pair in the range is free.
    pub fn bind_pair(
        &self,
        ip: IpAddr,
        start: u16,
        end: u16,
    ) -> std::io::Result<(RtpSocket, RtpSocket)> {
        let pool = self.pool(start, end);
        if let Some(pair) = pool.take_idle() {
            return Ok(pair);
        }
        for _ in 0..ATTEMPTS {
            let Some(port) = pool.free.lock().pop_front() else {
                break;
            };
            let bound = UdpSocket::bind((ip, port)).and_then(|rtp| {
                let rtcp = UdpSocket::bind((ip, port + 1))?;
                rtp.set_nonblocking(true)?;
                rtcp.set_nonblocking(true)?;
                Ok((rtp, rtcp))
            });
            match bound {
                Ok((rtp, rtcp)) => return Ok((pool.wrap(port, rtp), pool.wrap(port + 1, rtcp))),
                // Someone else's port: tried again last.
                Err(_) => pool.free.lock().push_back(port),
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

    /// Pairs free in the range in force, unbound and bound (`None` before
    /// the first request).
    pub fn free_pairs(&self) -> Option<usize> {
        self.pool
            .lock()
            .as_ref()
            .map(|p| p.free.lock().len() + p.idle.lock().ready.len())
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
            held.push((a, rtp, rtcp));
        }
        let mut seen: Vec<u16> = held.iter().map(|h| h.0).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 5);
        assert!(ports.bind_pair(ip, 40001, 40001).is_err(), "no pair fits");
    }

    #[test]
    fn a_pair_comes_back_bound_when_both_sockets_are_dropped_and_a_full_range_fails_fast() {
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
        // A stray packet reaches the pair after its call: not the next call's.
        let stray = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        stray.send_to(b"late", ("127.0.0.1", port)).unwrap();
        let (rtp, rtcp) = one;
        let rtp = std::sync::Arc::new(rtp); // the relay still has the RTP socket
        let relay = rtp.clone();
        drop((rtp, rtcp));
        assert_eq!(ports.free_pairs(), Some(0), "half a pair is not a pair");
        drop(relay);
        assert_eq!(ports.free_pairs(), Some(1));
        let again = ports.bind_pair(ip, start, end).unwrap();
        assert_eq!(again.0.local_addr().unwrap().port(), port);
        let mut buf = [0u8; 16];
        assert!(
            again.0.recv_from(&mut buf).is_err(),
            "drained: nothing left"
        );
        drop((two, again));
    }

    #[test]
    fn pairs_bound_ahead_wait_in_the_pool_and_a_new_range_closes_the_old_ones() {
        let ports = RtpPorts::new();
        let ip = "127.0.0.1".parse().unwrap();
        ports.prebind(ip, 40400, 40409, 10);
        assert_eq!(ports.free_pairs(), Some(5), "all five pairs, bound");
        let held = std::net::UdpSocket::bind((ip, 40400));
        assert!(held.is_err(), "bound ahead: the port is ours");
        // A reload with another range: the old pairs close.
        let _other = ports.bind_pair(ip, 40500, 40503).unwrap();
        let freed = std::net::UdpSocket::bind((ip, 40400));
        assert!(freed.is_ok(), "closed with the old range");
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
        let b = ports.bind_pair(ip, start, end);
        assert!(b.is_err(), "the other pair is someone else's");
        drop(squatter);
    }

    #[test]
    fn the_descriptor_table_is_grown_ahead_and_the_descriptor_given_back() {
        // The kernel's table size for this process (`FDSize` in its status).
        let table = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("FDSize:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap()
        };
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct passed.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        let want = 3000.min(limit.rlim_cur as usize - 1);
        let top = super::reserve_descriptors(3000).expect("grown");
        assert_eq!(top, want + 1, "capped by the open-files limit only");
        assert!(table() >= top, "FDSize {} < {top}", table());
        // The descriptor used to grow it was closed: the next one is low.
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        assert!(s.as_raw_fd() < 1000, "{}", s.as_raw_fd());
    }
}
