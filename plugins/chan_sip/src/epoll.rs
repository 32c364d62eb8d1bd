//! The RTP relay thread's system calls by hand over `libc`: an
//! edge-triggered epoll, and `recvmmsg`/`sendmmsg` to move every packet
//! waiting on a socket in one call each way ([`Batch`]).
//!
//! Why edge-triggered, and why not mio or tokio: a level-triggered epoll
//! polls every socket it reported once more on the next wait, only to find
//! it empty (an RTP leg carries a packet every 20 ms, so it nearly always
//! is): `sock_poll` and its callees were a tenth of the relay thread's time.
//! Edge-triggered, a reader must drain a socket before it may sleep again;
//! with `recvfrom` that costs a second, failing call per packet, but
//! `recvmmsg` drains in the one call (fewer packets than asked for means
//! the socket is empty). mio and tokio would add a task wake per packet on
//! top, and this is all of the unsafe code it takes.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One readiness event: the token given to [`Epoll::add`].
pub type Event = libc::epoll_event;

/// An epoll instance (closed on drop).
pub struct Epoll {
    fd: OwnedFd,
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Epoll {
    /// A new epoll instance, close-on-exec.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a
        // fresh descriptor that nothing else owns.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just created and is owned by nobody else.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches `fd` for input, edge-triggered (reported when data arrives,
    /// and at once if some waits already): the reader must drain it before
    /// waiting again. Events carry `token`. The caller must
    /// [`Epoll::delete`] it before closing the descriptor.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open (borrowed/owned), `ev` outlives the call.
        check(unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        })
        .map(drop)
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: both descriptors are open; DEL ignores the event pointer
        // (non-null for kernels before 2.6.9).
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        check(unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                &mut ev,
            )
        })
        .map(drop)
    }

    /// Waits up to `timeout_ms` (-1: forever) and fills `events` (up to its
    /// capacity) with what is ready. An interrupted wait returns no events.
    pub fn wait(&self, events: &mut Vec<Event>, timeout_ms: i32) -> io::Result<()> {
        events.clear();
        let room = events.capacity().min(libc::c_int::MAX as usize) as libc::c_int;
        // SAFETY: the kernel writes at most `room` events into the vector's
        // spare capacity, and says how many.
        let n =
            unsafe { libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), room, timeout_ms) };
        match check(n) {
            // SAFETY: the first `n` (<= capacity) entries were initialised by the kernel.
            Ok(n) => unsafe { events.set_len(n as usize) },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// The token an event carries (a copy: the kernel's struct is packed).
pub fn token(ev: &Event) -> u64 {
    ev.u64
}

/// Packets one [`Batch::recv`] takes from a socket at most. A leg carries a
/// packet every 20 ms, so a socket seldom holds more than one; several wait
/// after the relay was held up (a busy machine), which is when one call for
/// all of them pays most.
pub const BATCH: usize = 16;

/// Room for one packet: more than any RTP packet on an Ethernet path.
pub const PACKET: usize = 2048;

/// Room for a source address of either family.
const NAMELEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// Buffers for the packets of one socket, read with one `recvmmsg` and sent
/// on with one `sendmmsg` (a leg's far end is one address, so the whole
/// batch leaves by one socket to one destination). The kernel's headers are
/// laid out once, pointing into the same heap block, so a call fills in
/// only lengths and the destination, not a kilobyte of headers.
pub struct Batch {
    io: Box<Io>,
    n: usize,
}

/// What the kernel reads and writes; boxed so that the pointers between
/// its fields stay valid when the [`Batch`] moves.
struct Io {
    bufs: [[u8; PACKET]; BATCH],
    lens: [usize; BATCH],
    /// Whether packet `i` is to be sent on (a telephone event for an INFO
    /// leg is not).
    keep: [bool; BATCH],
    srcs: [libc::sockaddr_storage; BATCH],
    iov: [libc::iovec; BATCH],
    msgs: [libc::mmsghdr; BATCH],
    dest: libc::sockaddr_storage,
    out_iov: [libc::iovec; BATCH],
    out: [libc::mmsghdr; BATCH],
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    /// Buffers for [`BATCH`] packets, their headers laid out.
    pub fn new() -> Batch {
        // SAFETY: every field of `Io` is plain bytes, integers or raw
        // pointers, for which all zeroes is valid (null pointers, lengths 0).
        let mut io: Box<Io> = unsafe { Box::new(std::mem::zeroed()) };
        let io_ptr: *mut Io = &mut *io;
        for i in 0..BATCH {
            // SAFETY: `io_ptr` points at the live box; only addresses of its
            // fields are taken, to be dereferenced by the kernel later while
            // the box is alive.
            unsafe {
                let io = &mut *io_ptr;
                io.iov[i].iov_base = io.bufs[i].as_mut_ptr().cast();
                io.iov[i].iov_len = PACKET;
                io.msgs[i].msg_hdr.msg_name =
                    (&mut io.srcs[i] as *mut libc::sockaddr_storage).cast();
                io.msgs[i].msg_hdr.msg_namelen = NAMELEN;
                io.msgs[i].msg_hdr.msg_iov = &mut io.iov[i];
                io.msgs[i].msg_hdr.msg_iovlen = 1;
                io.out[i].msg_hdr.msg_name = (&mut io.dest as *mut libc::sockaddr_storage).cast();
                io.out[i].msg_hdr.msg_iov = &mut io.out_iov[i];
                io.out[i].msg_hdr.msg_iovlen = 1;
            }
        }
        Batch { io, n: 0 }
    }

    /// Reads the packets waiting on `fd` (non-blocking), up to [`BATCH`]:
    /// how many (0 when none waited). Fewer than [`BATCH`] means the socket
    /// is empty now. Each is marked to be sent on.
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.n = 0;
        let io = &mut *self.io;
        // SAFETY: the headers point at buffers and names inside `io`, valid
        // for writing for their stated lengths while `io` is borrowed here.
        // The system call itself, not glibc's `recvmmsg`: that one is a
        // thread cancellation point, and switching asynchronous
        // cancellation on and off around the call was 2 % of the relay
        // thread's time (the relay thread is never cancelled).
        let r = unsafe {
            libc::syscall(
                libc::SYS_recvmmsg,
                fd.as_raw_fd(),
                io.msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut::<libc::timespec>(),
            )
        } as libc::c_int;
        match check(r) {
            Ok(n) => {
                self.n = n as usize;
                for i in 0..self.n {
                    io.lens[i] = (io.msgs[i].msg_len as usize).min(PACKET);
                    io.keep[i] = true;
                    // The kernel wrote the source's length: room again for
                    // the next read (the headers not used kept theirs).
                    io.msgs[i].msg_hdr.msg_namelen = NAMELEN;
                }
                Ok(self.n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Packets read by the last [`Batch::recv`].
    pub fn count(&self) -> usize {
        self.n
    }

    /// Forgets the last read (nothing read from the socket at hand).
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Packet `i` of the last read.
    pub fn packet(&self, i: usize) -> &[u8] {
        &self.io.bufs[i][..self.io.lens[i]]
    }

    /// Packet `i` of the last read, to rewrite in place.
    pub fn packet_mut(&mut self, i: usize) -> &mut [u8] {
        let io = &mut *self.io;
        &mut io.bufs[i][..io.lens[i]]
    }

    /// Where packet `i` came from.
    pub fn source(&self, i: usize) -> Option<SocketAddr> {
        from_storage(&self.io.srcs[i])
    }

    /// Packet `i` is not to be sent on.
    pub fn drop_packet(&mut self, i: usize) {
        self.io.keep[i] = false;
    }

    /// Sends the packets still marked from `fd` to `dest`, in order, with
    /// one `sendmmsg` (more only if the kernel takes part of them): how many
    /// left. A packet the kernel refuses (a full buffer, an unreachable
    /// port) is skipped, as a failed `sendto` would be.
    pub fn send(&mut self, fd: BorrowedFd<'_>, dest: SocketAddr) -> usize {
        let io = &mut *self.io;
        let namelen = to_storage(dest, &mut io.dest);
        let mut m = 0;
        for i in (0..self.n).filter(|i| io.keep[*i]) {
            io.out_iov[m].iov_base = io.bufs[i].as_mut_ptr().cast();
            io.out_iov[m].iov_len = io.lens[i];
            io.out[m].msg_hdr.msg_namelen = namelen;
            m += 1;
        }
        if m == 1 {
            // The usual case (a packet per 20 ms per leg): `sendto` skips
            // the copying in of a header array, a tenth cheaper.
            // SAFETY: the buffer and the address are valid for their lengths.
            let r = unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    io.out_iov[0].iov_base,
                    io.out_iov[0].iov_len,
                    0,
                    (&io.dest as *const libc::sockaddr_storage).cast(),
                    namelen,
                )
            };
            return usize::from(r >= 0);
        }
        let (mut done, mut sent) = (0, 0);
        while done < m {
            // SAFETY: headers `done..m` point at live buffers and `io.dest`.
            let r = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    io.out[done..].as_mut_ptr(),
                    (m - done) as libc::c_uint,
                    0,
                )
            };
            match r {
                r if r > 0 => {
                    done += r as usize;
                    sent += r as usize;
                }
                // The first packet failed: skip it and go on with the rest.
                _ => done += 1,
            }
        }
        sent
    }
}

/// Writes `addr` for the kernel into `st`; returns its length.
pub(crate) fn to_storage(addr: SocketAddr, st: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let at = (st as *mut libc::sockaddr_storage).cast::<u8>();
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: a sockaddr_in fits in (and is aligned for) the storage.
            unsafe { std::ptr::write(at.cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: a sockaddr_in6 fits in (and is aligned for) the storage.
            unsafe { std::ptr::write(at.cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    len as libc::socklen_t
}

/// The address the kernel wrote (IPv4 or IPv6; anything else: `None`).
pub(crate) fn from_storage(st: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(st.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*(st as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(st as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, Epoll};
    use std::os::fd::AsFd;

    /// Packets waiting on a socket come out of one read in order, with
    /// their sources, and leave in order to one address, those dropped
    /// left out; IPv6 addresses survive the round trip too.
    #[test]
    fn a_batch_reads_what_waits_and_sends_what_is_kept() {
        let relay = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        relay.set_nonblocking(true).unwrap();
        let phone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let far = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        far.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut b = Batch::new();
        assert_eq!(b.recv(relay.as_fd()).unwrap(), 0, "nothing waits");
        for p in [&b"one"[..], b"two", b"three"] {
            phone.send_to(p, relay.local_addr().unwrap()).unwrap();
        }
        // Read until all three are in (loopback delivers at once, but a
        // read may still find only part of them).
        let mut got = Vec::new();
        let ep = Epoll::new().unwrap();
        ep.add(relay.as_fd(), 1).unwrap();
        let mut events = Vec::with_capacity(4);
        while got.len() < 3 {
            ep.wait(&mut events, 2000).unwrap();
            assert!(!events.is_empty(), "the packets never came");
            let n = b.recv(relay.as_fd()).unwrap();
            for i in 0..n {
                assert_eq!(b.source(i), Some(phone.local_addr().unwrap()));
                got.push(b.packet_mut(i).to_vec());
            }
            if got.len() == 3 {
                // The last read: drop its first packet if it had two or more,
                // else the only one; what is kept goes out in order.
                b.drop_packet(0);
                let kept: Vec<Vec<u8>> = (1..n).map(|i| b.packet_mut(i).to_vec()).collect();
                assert_eq!(b.send(relay.as_fd(), far.local_addr().unwrap()), kept.len());
                let mut buf = [0u8; 16];
                for k in kept {
                    let (m, from) = far.recv_from(&mut buf).unwrap();
                    assert_eq!((&buf[..m], from), (&k[..], relay.local_addr().unwrap()));
                }
            }
        }
        assert_eq!(
            got,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        for a in ["127.0.0.1:5004", "[::1]:5006", "[fe80::1%2]:7"] {
            let a: std::net::SocketAddr = a.parse().unwrap();
            // SAFETY: all zeroes is a valid sockaddr_storage.
            let mut st = unsafe { std::mem::zeroed() };
            super::to_storage(a, &mut st);
            assert_eq!(super::from_storage(&st), Some(a));
        }
    }

    /// Edge-triggered: a socket is reported once per arrival, not again
    /// while a datagram waits unread; one already waiting when the socket
    /// is added is reported at once (a pair taken for a call).
    #[test]
    fn reports_a_socket_once_per_arrival() {
        let ep = Epoll::new().unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.send_to(b"x", a.local_addr().unwrap()).unwrap();
        ep.add(a.as_fd(), 7).unwrap();
        let mut events = Vec::with_capacity(8);
        ep.wait(&mut events, 1000).unwrap();
        assert_eq!(events.len(), 1, "waiting before it was added");
        assert_eq!(super::token(&events[0]), 7);
        ep.wait(&mut events, 0).unwrap();
        assert!(events.is_empty(), "unread, but reported once");
        b.send_to(b"y", a.local_addr().unwrap()).unwrap();
        ep.wait(&mut events, 1000).unwrap();
        assert_eq!(events.len(), 1, "a new arrival");
        ep.delete(a.as_fd()).unwrap();
    }
}
