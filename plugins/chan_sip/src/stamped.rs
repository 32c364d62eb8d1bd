//! Reading a SIP datagram together with the time the kernel received it
//! (`SO_TIMESTAMPNS`), so that the endpoint knows how long it waited.
//!
//! Why: under overload the event loop's timers still run on time (the loop
//! turns quickly, one datagram at a time) while the socket's receive queue
//! fills: an 8 MB queue holds more than a second of signalling. Every
//! message then reaches the endpoint late, peers retransmit, the queue
//! overflows and the kernel drops datagrams, ACKs and BYEs among them, so
//! calls linger with their RTP ports for 32 s. The age of the datagram
//! being handled is the lag a timer cannot see; admission control refuses
//! new calls on it (issue #11, item 6) before the queue gets that far.
//!
//! The kernel's stamp is CLOCK_REALTIME; ages are taken against
//! `SystemTime::now()` and a clock step makes one age wrong (a step back
//! reads as no wait), which the next datagrams put right.

use std::io;
use std::mem::{size_of, zeroed, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Asks the kernel to stamp every datagram `fd` receives.
pub fn enable(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_option(fd, libc::SO_TIMESTAMPNS, 1)
}

/// Sets a SOL_SOCKET option that takes an int (socket2 has no call for
/// SO_TIMESTAMPNS or SO_RCVBUFFORCE).
pub fn set_option(fd: BorrowedFd<'_>, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the stated length during the call.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One datagram read into `buf` (non-blocking): its length, source and
/// the kernel's receive time (`None` if the socket does not stamp).
pub fn recv(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<SystemTime>)> {
    // SAFETY: all-zero is a valid sockaddr_storage, iovec and msghdr.
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // Room for one timespec control message, aligned as cmsghdr wants.
    let mut control = [MaybeUninit::<u64>::uninit(); 8];
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 8]>() as _;
    // SAFETY: every pointer in `msg` points at a live buffer of the stated
    // length for the duration of the call.
    let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let src = crate::epoll::from_storage(&name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "source of unknown family"))?;
    Ok((n as usize, src, stamp_of(&msg)))
}

/// The SCM_TIMESTAMPNS control message of a received `msg`, if there is one.
fn stamp_of(msg: &libc::msghdr) -> Option<SystemTime> {
    // SAFETY: `msg` was filled by recvmsg, its control buffer is live, and
    // the CMSG macros stay within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                let since = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
                return UNIX_EPOCH.checked_add(since);
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    None
}

/// How long ago `stamp` was (zero for none, or for a stamp in the future).
pub fn age(stamp: Option<SystemTime>) -> Duration {
    stamp
        .and_then(|s| SystemTime::now().duration_since(s).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_stamped_datagram_says_when_it_arrived_and_from_whom() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(rx.as_fd()).unwrap();
        let before = SystemTime::now();
        tx.send_to(b"OPTIONS", rx.local_addr().unwrap()).unwrap();
        rx.set_nonblocking(false).unwrap();
        // Blocking socket: MSG_DONTWAIT still returns at once if nothing
        // is there yet, so wait for readability first.
        let mut probe = [0u8; 1];
        rx.peek_from(&mut probe).unwrap();
        let mut buf = [0u8; 64];
        let (n, src, stamp) = recv(rx.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"OPTIONS");
        assert_eq!(src, tx.local_addr().unwrap());
        let stamp = stamp.expect("the kernel stamps when asked");
        // The kernel's clock and ours: the stamp falls between the send and now.
        assert!(
            stamp + Duration::from_millis(1) >= before,
            "{stamp:?} {before:?}"
        );
        assert!(stamp <= SystemTime::now());
        assert!(age(Some(stamp)) < Duration::from_secs(5));
    }

    #[test]
    fn without_the_option_there_is_no_stamp_and_no_age() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        let mut probe = [0u8; 1];
        rx.peek_from(&mut probe).unwrap();
        let mut buf = [0u8; 8];
        let (n, _, stamp) = recv(rx.as_fd(), &mut buf).unwrap();
        assert_eq!((n, stamp), (1, None));
        assert_eq!(age(None), Duration::ZERO);
        let future = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(age(Some(future)), Duration::ZERO);
    }
}
