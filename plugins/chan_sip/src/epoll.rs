//! Level-triggered epoll for the RTP relay thread, by hand over `libc`.
//!
//! Why not mio or tokio: both are edge-triggered, so a reader must drain a
//! socket until `EAGAIN` before it may sleep again. An RTP leg carries one
//! packet every 20 ms, so nearly every wake-up finds exactly one packet and
//! the drain doubles the `recvfrom` calls; tokio adds a task wake per packet on
//! top. Level-triggered, one `recvfrom` per readiness event is exactly what a
//! minimal C relay does, and this is all of the unsafe code it takes.

use std::io;
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

    /// Watches `fd` for input, level-triggered; events carry `token`. The
    /// caller must [`Epoll::delete`] it before closing the descriptor.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
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

#[cfg(test)]
mod tests {
    use super::Epoll;
    use std::os::fd::AsFd;

    #[test]
    fn reports_a_readable_socket_until_it_is_read() {
        let ep = Epoll::new().unwrap();
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        ep.add(a.as_fd(), 7).unwrap();
        let mut events = Vec::with_capacity(8);
        ep.wait(&mut events, 0).unwrap();
        assert!(events.is_empty());
        b.send_to(b"x", a.local_addr().unwrap()).unwrap();
        for _ in 0..2 {
            // Level-triggered: still ready while the datagram is unread.
            ep.wait(&mut events, 1000).unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(super::token(&events[0]), 7);
        }
        let mut buf = [0u8; 8];
        a.recv_from(&mut buf).unwrap();
        ep.wait(&mut events, 0).unwrap();
        assert!(events.is_empty());
        ep.delete(a.as_fd()).unwrap();
    }
}
