//! The SIP datagrams one turn of a shard's loop sends, written together
//! with `sendmmsg` at the end of the turn.
//!
//! Why: each `sendto` to a peer that sleeps wakes it, and the kernel lets
//! the woken peer take the CPU from the sender on the way back from the
//! system call. Profiled at 3,000 calls/s with sipp on the same two cores,
//! 8,457 of the SIP threads' 13,318 preemptions in six seconds came right
//! after a `sendto`: a thread switch per message, and a SIP loop that
//! waited behind the load generator with its timers due (the worst
//! event-loop lags). One `sendmmsg` per turn queues every datagram before
//! the return to user space, so the peer is woken once and finds them all.
//! The price is latency: a response leaves when its turn ends (a batch of
//! about 32 inputs, up to twice that when a hand-over of datagrams
//! completes it: one or two milliseconds), not at once.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Datagrams written by one `sendmmsg` at most (the kernel's UIO_MAXIOV is
/// 1,024; a turn's batch makes a few dozen).
const PER_CALL: usize = 64;

/// Datagrams waiting for the end of the turn, in the order they were made.
#[derive(Default)]
pub struct Outbox {
    queued: Vec<(Vec<u8>, SocketAddr)>,
    /// How many of `queued` have been sent (the rest wait for the socket).
    sent: usize,
}

impl Outbox {
    /// Queues `data` for `dest`.
    pub fn push(&mut self, data: Vec<u8>, dest: SocketAddr) {
        self.queued.push((data, dest));
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.sent == self.queued.len()
    }

    /// Sends what waits on `fd` (non-blocking), in order. A datagram the
    /// kernel refuses for a reason other than a full buffer (an unreachable
    /// port, a bad address) is skipped and reported through `failed`, as a
    /// failed `sendto` would be; `Err(WouldBlock)` when the socket's buffer
    /// is full, the rest kept for when it is writable.
    pub fn send(
        &mut self,
        fd: BorrowedFd<'_>,
        failed: &mut dyn FnMut(SocketAddr, io::Error),
    ) -> io::Result<()> {
        while self.sent < self.queued.len() {
            let batch = &mut self.queued[self.sent..];
            let n = batch.len().min(PER_CALL);
            // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
            let mut names: [libc::sockaddr_storage; PER_CALL] = unsafe { std::mem::zeroed() };
            let mut iovs: [libc::iovec; PER_CALL] = unsafe { std::mem::zeroed() };
            let mut msgs: [libc::mmsghdr; PER_CALL] = unsafe { std::mem::zeroed() };
            for (i, (data, dest)) in batch.iter_mut().take(n).enumerate() {
                let namelen = crate::epoll::to_storage(*dest, &mut names[i]);
                iovs[i] = libc::iovec {
                    iov_base: data.as_mut_ptr().cast(),
                    iov_len: data.len(),
                };
                msgs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
                msgs[i].msg_hdr.msg_namelen = namelen;
                msgs[i].msg_hdr.msg_iov = &mut iovs[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the first `n` headers point at live buffers, addresses
            // and iovecs of the stated lengths for the duration of the call.
            let r = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                self.sent += r as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Err(e);
            }
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The first datagram failed: skip it and go on with the rest.
            failed(self.queued[self.sent].1, e);
            self.sent += 1;
        }
        self.queued.clear();
        self.sent = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn a_turns_datagrams_leave_in_order_and_a_bad_one_is_skipped() {
        let from = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = UdpSocket::bind("127.0.0.1:0").unwrap();
        let dest = to.local_addr().unwrap();
        let mut out = Outbox::default();
        for i in 0..100u8 {
            out.push(vec![i; 10 + usize::from(i)], dest);
            if i == 50 {
                // Port 0 cannot be sent to: reported, skipped.
                out.push(b"lost".to_vec(), "127.0.0.1:0".parse().unwrap());
            }
        }
        assert!(!out.is_empty());
        let mut failures = Vec::new();
        out.send(from.as_fd(), &mut |d, e| failures.push((d, e.kind())))
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(failures.len(), 1, "{failures:?}");
        let mut buf = [0u8; 200];
        for i in 0..100u8 {
            let (n, src) = to.recv_from(&mut buf).unwrap();
            assert_eq!(src, from.local_addr().unwrap());
            assert_eq!(&buf[..n], &vec![i; 10 + usize::from(i)][..], "datagram {i}");
        }
    }
}
