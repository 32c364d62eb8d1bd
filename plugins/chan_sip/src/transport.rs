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
//! Written by hand over tokio: the SIP crates on crates.io bring their own
//! transaction layers and runtimes, and what is needed here is only a framed
//! socket per peer.

use sirius_sip::message::{Framer, Limits, Message, ParseError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Connections beyond this many are refused when accepted, so that a flood of
/// idle connections cannot exhaust file descriptors (Asterisk's `tcpauthlimit`
/// plays this part).
pub const MAX_CONNECTIONS: usize = 4096;

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
}

/// The live connections, by the far end's address.
pub struct TcpConnections {
    conns: HashMap<SocketAddr, Conn>,
    next_id: u64,
    events: mpsc::UnboundedSender<TcpEvent>,
    limits: Limits,
}

impl TcpConnections {
    /// An empty table whose connections report to `events`.
    pub fn new(events: mpsc::UnboundedSender<TcpEvent>) -> TcpConnections {
        TcpConnections {
            conns: HashMap::new(),
            next_id: 1,
            events,
            limits: Limits::default(),
        }
    }

    /// Takes over a connection the listener accepted. Refused (closed at
    /// once) when the table is full.
    pub fn adopt(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= MAX_CONNECTIONS {
            log::warn!(
                "SIP/TCP: refusing the connection from {peer}: {MAX_CONNECTIONS} connections open"
            );
            return;
        }
        log::debug!("SIP/TCP: connection from {peer}");
        self.start(peer, Some(stream));
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
        log::debug!("SIP/TCP: connecting to {dest}");
        let out = self.start(dest, None);
        let _ = out.send(data);
    }

    /// A connection reported its end: forget it unless a newer connection to
    /// the same address replaced it. Returns whether it was the current one.
    pub fn closed(&mut self, peer: SocketAddr, id: u64) -> bool {
        if self.conns.get(&peer).is_some_and(|c| c.id == id) {
            self.conns.remove(&peer);
            true
        } else {
            false
        }
    }

    /// Closes every connection (module unload): their tasks end once what is
    /// queued is written.
    pub fn close_all(&mut self) {
        self.conns.clear();
    }

    fn start(
        &mut self,
        peer: SocketAddr,
        stream: Option<TcpStream>,
    ) -> mpsc::UnboundedSender<Vec<u8>> {
        let id = self.next_id;
        self.next_id += 1;
        let (out, rx) = mpsc::unbounded_channel();
        self.conns.insert(
            peer,
            Conn {
                id,
                out: out.clone(),
            },
        );
        let events = self.events.clone();
        let limits = self.limits;
        tokio::spawn(async move {
            let error = connection(stream, peer, rx, &events, limits).await;
            let _ = events.send(TcpEvent::Closed { peer, id, error });
        });
        out
    }
}

/// One connection's life: connect if needed, then read and write until
/// either side ends. Returns the error that ended it, `None` when orderly.
async fn connection(
    stream: Option<TcpStream>,
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
        let mut buf = vec![0u8; 16 * 1024];
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
                    // point can be trusted, so the connection ends (§18.3).
                    Err(e) => return Some(format!("unframable stream: {e}")),
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
    tokio::select! {
        e = reader => e,
        e = writer => e,
    }
}
