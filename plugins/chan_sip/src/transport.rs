//! SIP over TCP (RFC 3261 §18): the connection table of the monitor.
//!
//! Every connection, accepted or opened by us, is one task that frames
//! messages out of the byte stream (`sirius_sip::message::Framer`) and hands
//! them to the monitor, and writes what the monitor queues for it. The monitor
//! keeps the table, keyed by the far end's address, so that
//! - a response goes back over the connection its request came on (the
//!   server transaction's peer is the connection's address),
//! - a request to a phone that registered over TCP reuses the phone's own
//!   connection (a phone behind NAT cannot accept one from us),
//! - a request to an address with no connection opens one, and the requests
//!   after it reuse it.
//!
//! - a response whose connection is gone goes to the top Via's `received`
//!   address and sent-by port (§18.2.2), not to the client's ephemeral port.
//!
//! Connections a client opens are *untrusted* until a request on them
//! passes authentication (a REGISTER answered 200, an INVITE or REFER from
//! a known peer): untrusted ones are closed after `tcpauthtimeout` seconds,
//! and at most `tcpauthlimit` of them are open at once, `tcpauthperaddress`
//! from one address, so an idle-connection flood from one host takes a few
//! slots and times out, and other clients are still served (Asterisk's
//! `tcpauthtimeout`/`tcpauthlimit`; the per-address cap is ours).
//!
//! ```text
//!   accept ──cap reached──► closed at once (logged once a second)
//!     │
//!     ▼
//!   untrusted ──tcpauthtimeout──► closed
//!     │ a request passes authentication
//!     ▼
//!   trusted ──far end closes / error──► gone
//!     (any state) ──unframable bytes──► reading stops; what is queued is
//!                                       written for LINGER, then closed
//! ```
//!
//! Written by hand over tokio: the SIP crates on crates.io bring their own
//! transaction layers and runtimes, and what is needed here is only a framed
//! socket per peer.

use sirius_sip::message::{Framer, Limits, Message, ParseError};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Connections beyond this many are refused when accepted, trusted or not:
/// the file descriptors' last line of defence.
pub const MAX_CONNECTIONS: usize = 4096;

/// How long a connection whose bytes stopped framing keeps writing what was
/// queued for it (the responses to the valid messages before the bad bytes,
/// which other SIP threads may still be answering) before it closes.
const LINGER: Duration = Duration::from_secs(2);

/// The limits on connections clients open (`sip.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPolicy {
    /// An untrusted connection is closed after this long (`tcpauthtimeout`).
    pub auth_timeout: Duration,
    /// Untrusted connections open at once, all addresses (`tcpauthlimit`).
    pub auth_limit: usize,
    /// Untrusted connections open at once from one address (`tcpauthperaddress`).
    pub per_address: usize,
}

impl TcpPolicy {
    /// From `[general]`.
    pub fn of(g: &crate::config::General) -> TcpPolicy {
        TcpPolicy {
            auth_timeout: Duration::from_secs(u64::from(g.tcpauthtimeout.max(1))),
            auth_limit: g.tcpauthlimit as usize,
            per_address: g.tcpauthperaddress as usize,
        }
    }
}

/// How long opening a connection may take before the requests waiting for it
/// fail as a transport error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the connection tasks tell the monitor.
#[derive(Debug)]
pub enum TcpEvent {
    /// A complete message arrived from `peer`.
    Message(Message, SocketAddr),
    /// `peer` sent a CRLF CRLF keep-alive ping (RFC 5626 §4.4.1): it expects
    /// a CRLF pong.
    Ping(SocketAddr),
    /// A connection ended: closed by the far end, reset, unframable, or never
    /// established (`error` says why, `None` for an orderly close).
    Closed {
        /// The far end.
        peer: SocketAddr,
        /// Which connection to `peer` (a newer one may have replaced it).
        id: u64,
        /// Why, when it was not an orderly close.
        error: Option<String>,
    },
}

struct Conn {
    id: u64,
    out: mpsc::UnboundedSender<Vec<u8>>,
    /// Counted among the untrusted (the one owner of that fact: cleared
    /// when the count is given back, so it is given back once).
    counted: bool,
    /// Tells the task it is trusted (its auth timer stops); `None` for one
    /// we opened to a peer of ours.
    trust: Option<watch::Sender<bool>>,
}

/// The live connections, by the far end's address.
pub struct TcpConnections {
    conns: HashMap<SocketAddr, Conn>,
    next_id: u64,
    events: mpsc::UnboundedSender<TcpEvent>,
    limits: Limits,
    /// The limits the last accept was made under (the response fallback,
    /// which has no configuration at hand, applies them too).
    policy: TcpPolicy,
    /// Untrusted connections by address (entries removed at zero).
    untrusted: HashMap<IpAddr, usize>,
    untrusted_total: usize,
    /// When a refusal was last logged (at most once a second).
    refusal_logged: Option<Instant>,
}

impl TcpConnections {
    /// An empty table whose connections report to `events`.
    pub fn new(events: mpsc::UnboundedSender<TcpEvent>) -> TcpConnections {
        TcpConnections {
            conns: HashMap::new(),
            next_id: 1,
            events,
            limits: Limits::default(),
            policy: TcpPolicy {
                auth_timeout: Duration::from_secs(30),
                auth_limit: 100,
                per_address: 10,
            },
            untrusted: HashMap::new(),
            untrusted_total: 0,
            refusal_logged: None,
        }
    }

    /// Why an untrusted connection with `peer` may not be opened now, if
    /// it may not.
    fn refusal(&self, peer: SocketAddr) -> Option<String> {
        let ip = peer.ip().to_canonical();
        let from_here = self.untrusted.get(&ip).copied().unwrap_or(0);
        if self.conns.len() >= MAX_CONNECTIONS {
            Some(format!("{MAX_CONNECTIONS} connections open"))
        } else if self.untrusted_total >= self.policy.auth_limit {
            Some(format!(
                "{} unauthenticated connections open (tcpauthlimit)",
                self.untrusted_total
            ))
        } else if from_here >= self.policy.per_address {
            Some(format!(
                "{from_here} unauthenticated connections open from {ip} (tcpauthperaddress)"
            ))
        } else {
            None
        }
    }

    /// Logs a refusal, at most once a second.
    fn log_refusal(&mut self, what: &str, why: &str) {
        let now = Instant::now();
        if self
            .refusal_logged
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.refusal_logged = Some(now);
            log::warn!("SIP/TCP: refusing {what}: {why} (logged at most once a second)");
        }
    }

    /// Takes over a connection the listener accepted, untrusted. Refused
    /// (closed at once) when the table, the untrusted ones or this
    /// address's untrusted ones are at their limit.
    pub fn adopt(&mut self, stream: TcpStream, peer: SocketAddr, policy: &TcpPolicy) {
        self.policy = *policy;
        if let Some(why) = self.refusal(peer) {
            self.log_refusal(&format!("the connection from {peer}"), &why);
            return; // dropped: closed
        }
        log::debug!("SIP/TCP: connection from {peer}");
        self.start(peer, Some(stream), true);
    }

    /// A request from `peer` passed authentication: its connection is
    /// trusted from now on (no timeout, not counted against the limits).
    pub fn trust(&mut self, peer: SocketAddr) {
        let Some(c) = self.conns.get_mut(&peer) else {
            return;
        };
        if let Some(t) = &c.trust {
            // Stored even when the task has ended (`send` would not).
            t.send_replace(true);
        }
        if std::mem::take(&mut c.counted) {
            self.uncount(peer.ip());
        }
    }

    fn count(&mut self, ip: IpAddr) {
        *self.untrusted.entry(ip.to_canonical()).or_default() += 1;
        self.untrusted_total += 1;
    }

    fn uncount(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        self.untrusted_total = self.untrusted_total.saturating_sub(1);
        if let Some(n) = self.untrusted.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.untrusted.remove(&ip);
            }
        }
    }

    /// Forgets a connection, and gives back its place among the untrusted.
    fn remove(&mut self, peer: SocketAddr) {
        if let Some(c) = self.conns.remove(&peer) {
            if c.counted {
                self.uncount(peer.ip());
            }
        }
    }

    /// Queues `data` for `dest` on its connection, opening one if there is
    /// none. Failures come back as [`TcpEvent::Closed`].
    pub fn send(&mut self, dest: SocketAddr, data: Vec<u8>) {
        let data = match self.conns.get(&dest) {
            Some(c) => match c.out.send(data) {
                Ok(()) => return,
                // The task ended and its Closed event is on its way: a new
                // connection carries this message.
                Err(mpsc::error::SendError(data)) => data,
            },
            None => data,
        };
        // A response whose request's connection is gone: to the top Via's
        // received address and sent-by port (§18.2.2), where the client
        // listens, not the ephemeral port it connected from. The client
        // chose that address: the connection is untrusted and counted as
        // an accepted one is (limits, auth timeout), and one that already
        // exists there is someone else's (another phone behind the same
        // NAT), so the response is dropped rather than misdelivered.
        if let Some(target) = response_target(&data) {
            if self.conns.contains_key(&target) {
                log::debug!("SIP/TCP: a response for {dest} is dropped: its connection is gone and {target} is another's");
                return;
            }
            if let Some(why) = self.refusal(target) {
                self.log_refusal(&format!("a connection to {target} for a response"), &why);
                return;
            }
            log::debug!("SIP/TCP: connecting to {target} for a response");
            let out = self.start(target, None, true);
            let _ = out.send(data);
            return;
        }
        if self.conns.len() >= MAX_CONNECTIONS {
            self.log_refusal(
                &format!("a connection to {dest}"),
                &format!("{MAX_CONNECTIONS} connections open"),
            );
            return;
        }
        log::debug!("SIP/TCP: connecting to {dest}");
        let out = self.start(dest, None, false);
        let _ = out.send(data);
    }

    /// Queues `data` on an open connection with `dest` only (a keep-alive
    /// pong: a ping's sender closed is not worth a new connection).
    pub fn send_on_open(&mut self, dest: SocketAddr, data: Vec<u8>) {
        if let Some(c) = self.conns.get(&dest) {
            let _ = c.out.send(data);
        }
    }

    /// A connection reported its end: forget it unless a newer connection to
    /// the same address replaced it. Returns whether it was the current one.
    pub fn closed(&mut self, peer: SocketAddr, id: u64) -> bool {
        if self.conns.get(&peer).is_some_and(|c| c.id == id) {
            self.remove(peer);
            true
        } else {
            false
        }
    }

    /// Closes every connection (module unload): their tasks end once what is
    /// queued is written.
    pub fn close_all(&mut self) {
        self.conns.clear();
        self.untrusted.clear();
        self.untrusted_total = 0;
    }

    /// Starts a connection's task on an accepted `stream`, or connecting
    /// to `peer`; an `untrusted` one is counted and must be trusted within
    /// the auth timeout.
    fn start(
        &mut self,
        peer: SocketAddr,
        stream: Option<TcpStream>,
        untrusted: bool,
    ) -> mpsc::UnboundedSender<Vec<u8>> {
        let id = self.next_id;
        self.next_id += 1;
        let (out, rx) = mpsc::unbounded_channel();
        // A connection replaced under the same address gives its place back.
        self.remove(peer);
        let (trust, auth) = if untrusted {
            self.count(peer.ip());
            let (tx, rx) = watch::channel(false);
            (Some(tx), Some((rx, self.policy.auth_timeout)))
        } else {
            (None, None)
        };
        self.conns.insert(
            peer,
            Conn {
                id,
                out: out.clone(),
                counted: untrusted,
                trust,
            },
        );
        let events = self.events.clone();
        let limits = self.limits;
        tokio::spawn(async move {
            let error = connection(stream, auth, peer, rx, &events, limits).await;
            let _ = events.send(TcpEvent::Closed { peer, id, error });
        });
        out
    }
}

/// Where a response goes when its request's connection is gone (RFC 3261
/// §18.2.2): the top Via's `received` address (else its sent-by host, when
/// that is an address) and its sent-by port (5060 when it has none).
/// `None` for a request, or a Via without a usable address.
fn response_target(data: &[u8]) -> Option<SocketAddr> {
    if !data.starts_with(b"SIP/2.0 ") {
        return None;
    }
    let msg = sirius_sip::message::parse_datagram(data, &Limits::default()).ok()?;
    let via = msg.top_via()?;
    use sirius_sip::message::Host;
    let ip: IpAddr = match (via.params.get("received"), &via.host) {
        (Some(r), _) => r
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?,
        (None, Host::V4(a)) => IpAddr::V4(*a),
        (None, Host::V6(a)) => IpAddr::V6(*a),
        (None, Host::Name(_)) => return None,
    };
    Some(SocketAddr::new(ip, via.port.unwrap_or(5060)))
}

/// One connection's life: connect if needed, then read and write until
/// either side ends. Returns the error that ended it, `None` when orderly.
async fn connection(
    stream: Option<TcpStream>,
    auth: Option<(watch::Receiver<bool>, Duration)>,
    peer: SocketAddr,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    events: &mpsc::UnboundedSender<TcpEvent>,
    limits: Limits,
) -> Option<String> {
    let stream = match stream {
        Some(s) => s,
        None => match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Some(format!("cannot connect: {e}")),
            Err(_) => return Some(format!("cannot connect: no answer in {CONNECT_TIMEOUT:?}")),
        },
    };
    // SIP messages are small and latency matters more than packing.
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let reader = async {
        let mut framer = Framer::new(limits);
        // Small: an idle connection costs little (the framer grows for the
        // rare large message).
        let mut buf = vec![0u8; 4 * 1024];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) => return None,
                Ok(n) => n,
                Err(e) => return Some(e.to_string()),
            };
            framer.push(&buf[..n]);
            while let Some(next) = framer.next_message() {
                match next {
                    Ok(msg) => {
                        if events.send(TcpEvent::Message(msg, peer)).is_err() {
                            return None;
                        }
                    }
                    Err(ParseError::KeepAlive) => {
                        let _ = events.send(TcpEvent::Ping(peer));
                    }
                    // The stream cannot be framed any more: nothing after this
                    // point can be trusted, so the connection ends (§18.3),
                    // once the responses to the messages before it are
                    // written: the writer goes on while this lingers.
                    Err(e) => {
                        tokio::time::sleep(LINGER).await;
                        return Some(format!("unframable stream: {e}"));
                    }
                }
            }
        }
    };
    let writer = async {
        while let Some(data) = out.recv().await {
            if let Err(e) = wr.write_all(&data).await {
                return Some(e.to_string());
            }
        }
        // The monitor dropped the connection (unload): orderly close.
        let _ = wr.shutdown().await;
        None
    };
    // An untrusted connection must be trusted within its timeout.
    let unauthenticated = async {
        let Some((mut trusted, timeout)) = auth else {
            return std::future::pending().await;
        };
        // (The borrow `wait_for` returns is dropped here, before the await.)
        let in_time = tokio::time::timeout(timeout, trusted.wait_for(|t| *t))
            .await
            .is_ok();
        if in_time {
            // Trusted, or the table forgot it (unload): no timer any more.
            return std::future::pending().await;
        }
        Some(format!(
            "not authenticated within {} s (tcpauthtimeout)",
            timeout.as_secs()
        ))
    };
    tokio::select! {
        e = reader => e,
        e = writer => e,
        e = unauthenticated => e,
    }
}

#[cfg(test)]
mod tests {
    use super::response_target;

    #[test]
    fn a_response_without_its_connection_goes_to_the_via() {
        let resp = |via: &str| {
            format!("SIP/2.0 401 Unauthorized\r\nVia: {via}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n")
                .into_bytes()
        };
        assert_eq!(
            response_target(&resp(
                "SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bK1;received=192.0.2.9"
            )),
            Some("192.0.2.9:5070".parse().unwrap())
        );
        assert_eq!(
            response_target(&resp("SIP/2.0/TCP 10.0.0.5;branch=z9hG4bK1")),
            Some("10.0.0.5:5060".parse().unwrap())
        );
        assert_eq!(
            response_target(&resp("SIP/2.0/TCP [2001:db8::1]:5062;branch=z9hG4bK1")),
            Some("[2001:db8::1]:5062".parse().unwrap())
        );
        // A name without received: no address to use (the caller keeps its own).
        assert_eq!(
            response_target(&resp("SIP/2.0/TCP phone.example;branch=z9hG4bK1")),
            None
        );
        // A request is not a response.
        assert_eq!(response_target(b"OPTIONS sip:x SIP/2.0\r\n\r\n"), None);
    }
}
