//! # sirius-sip — SIP without IO
//!
//! The protocol engine under chan_sip, in the shape of quinn-proto: it takes
//! bytes, the current time and commands; it returns bytes to send, timers to
//! arm and events. It never reads the clock and never opens a socket, so every
//! behaviour — including every RFC 3261 timer — is tested with simulated time.
//!
//! * [`message`]: parsing (datagram and stream framing, compact forms, limits),
//!   typed views (Via, CSeq, name-addr, URI) and serialisation.
//! * [`auth`]: Digest authentication, client (401/407) and server (stateless
//!   nonces, replay protection).
//! * [`dialog`]: dialog identity, route sets, target refresh, CSeq rules,
//!   in-dialog requests, 481 classification.
//! * [`registration`], [`qualify`]: outbound registration (Asterisk's state
//!   names, digest, refresh, back-off, `Expires: 0`) and OPTIONS pokes.
//! * [`sdp`]: SDP parsing/writing and RFC 3264 offer/answer (hold, rejected
//!   streams, late offer, no-common-codec).
//! * [`transaction`]: RFC 3261 §17 client and server transactions with every
//!   timer (A–M), matching, CANCEL/ACK rules, reliable-transport variants.
//! * [`validate`]: what a UAS answers to a request it cannot accept
//!   (400/416/420/505/…), per RFC 3261 §8.2 and the RFC 4475 corpus.
//!
//! ## Performance
//!
//! `cargo bench -p sirius-sip` (criterion, one core of the 2-core development
//! machine, shared, 2026-11-22), for a 890-byte INVITE with SDP from a softphone:
//!
//! | what | time | rate |
//! |---|---|---|
//! | parse | 2.7 µs | ~370,000 / s |
//! | parse + read Via, CSeq, From, To | 4.9 µs | ~200,000 / s |
//! | serialise | 0.38 µs | ~2,600,000 / s |
//! | transaction layer, one UAS call (INVITE, 100, 200, ACK, BYE, 200) | 24 µs | ~41,000 calls / s |
//!
//! Parsing is one memchr-driven pass; header values share one arena string per
//! message (two allocations per parse instead of one per header).

pub mod auth;
pub mod dialog;
pub mod message;
pub mod qualify;
pub mod registration;
pub mod sdp;
pub mod transaction;
pub mod validate;
