//! Transactions (RFC 3261 §17, with RFC 6026's Accepted state), sans-IO.
//!
//! The layer is driven like quinn-proto: [`TransactionLayer::on_message`] with
//! what arrived, [`TransactionLayer::handle_timeout`] when
//! [`TransactionLayer::poll_timeout`] says so, and commands
//! ([`TransactionLayer::send_request`], [`TransactionLayer::respond`],
//! [`TransactionLayer::cancel`]); it answers through
//! [`TransactionLayer::poll_transmit`] and [`TransactionLayer::poll_event`].
//! Time is always passed in; nothing here reads a clock.
//!
//! ```text
//!  client INVITE                      server INVITE
//!  Calling --1xx--> Proceeding        Proceeding --2xx--> Accepted --L--> Terminated
//!     |  \--2xx--> Accepted --M-->T      |   \--3xx-6xx--> Completed --ACK--> Confirmed --I--> T
//!     |--3xx-6xx (send ACK)--> Completed --D--> Terminated            \--H (no ACK)--> T
//!     \--B (timeout)--> Terminated
//!
//!  client non-INVITE                  server non-INVITE
//!  Trying --1xx--> Proceeding         Trying --1xx--> Proceeding
//!     \--final--> Completed --K--> T     \--final--> Completed --J--> Terminated
//!     \--F (timeout)--> Terminated
//! ```
//!
//! Retransmissions of requests are absorbed and answered with the stored
//! response; the 2xx to an INVITE is retransmitted by the layer (T1 doubling,
//! capped at T2) until the ACK arrives or 64·T1 passes (RFC 3261 §13.3.1.4).

mod key;
mod layer;
mod slab;
mod timers;

pub use layer::{CancelReason, TransactionLayer};

use crate::message::Message;
use std::net::SocketAddr;
use std::time::Duration;

/// Timer values (RFC 3261 §17.1.1.1 and table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// RTT estimate, 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Maximum duration a message remains in the network, 5 s.
    pub t4: Duration,
    /// Send `100 Trying` as soon as an INVITE arrives.
    pub auto_trying: bool,
    /// Transactions to make room for up front. Tables still grow past it,
    /// but each doubling moves every key at once; sizing them for the
    /// expected load keeps that out of the busy hours.
    pub capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            auto_trying: true,
            // 64 Ki keys: about 700 calls/s lingering 32 s, for 1.5 MiB.
            capacity: 65_536,
        }
    }
}

/// Transport class: timers differ for reliable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: the layer retransmits.
    Udp,
    /// TCP: no retransmissions, zero linger timers.
    Tcp,
}

impl Transport {
    /// Whether the transport is reliable.
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp)
    }

    /// The Via transport token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Reads a transport name as configuration files and URI `transport=`
    /// parameters write it (any case): `udp`, `tcp`.
    pub fn parse(s: &str) -> Option<Transport> {
        if s.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if s.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else {
            None
        }
    }

    /// The URI parameter that selects this transport (`;transport=tcp`); empty
    /// for UDP, the default a URI without the parameter means.
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        }
    }
}

/// A transaction handle: its slot in the layer's slab and a generation, so
/// a handle kept after its transaction ended never names the next one.
/// Never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub dest: SocketAddr,
    /// Over what.
    pub transport: Transport,
    /// The serialised message.
    pub data: Vec<u8>,
}

/// What the transaction user (dialog layer, chan_sip) must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new request (server transaction created). For CANCEL, `cancels` names
    /// the INVITE server transaction it matches, if any (else answer 481).
    Request {
        /// The new server transaction.
        tx: TxId,
        /// The request.
        msg: Message,
        /// Where it came from.
        source: SocketAddr,
        /// Transport it came over.
        transport: Transport,
        /// For CANCEL: the INVITE transaction it cancels.
        cancels: Option<TxId>,
    },
    /// An ACK that is not part of a transaction: the ACK for a 2xx (`tx` is the
    /// INVITE server transaction whose 2xx it acknowledges), or a stray one.
    Ack {
        /// The INVITE transaction acknowledged, if known.
        tx: Option<TxId>,
        /// The ACK (may carry the answer SDP of a late offer).
        msg: Message,
        /// Where it came from.
        source: SocketAddr,
    },
    /// A response for a client transaction (provisional, final, or a 2xx
    /// retransmission in Accepted: the TU re-sends its ACK).
    Response {
        /// The client transaction.
        tx: TxId,
        /// The response.
        msg: Message,
    },
    /// Timer B/F (client: act as on 408), H (server: no ACK for our error
    /// response) or L without ACK for our 2xx (server: send BYE).
    Timeout {
        /// The transaction.
        tx: TxId,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The request has no usable top Via branch.
    #[error("request has no Via branch")]
    NoBranch,
    /// A transaction with this key exists already.
    #[error("transaction already exists")]
    Duplicate,
    /// No such transaction (ended, or never existed).
    #[error("no transaction {0:?}")]
    Unknown(TxId),
    /// The transaction already sent its final response.
    #[error("transaction {0:?} already has a final response")]
    AlreadyFinal(TxId),
    /// Not a server transaction / not a client INVITE, as the command requires.
    #[error("wrong kind of transaction for this command")]
    WrongKind,
    /// No room for another transaction (16 million live).
    #[error("transaction table full")]
    Full,
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // simulated clocks start from one real Instant
mod tests;
