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
//! * [`dialog_info`]: busy-lamp bodies (RFC 4235 `application/dialog-info+xml`)
//!   and subscription expiry grants (RFC 6665).
//! * [`pidf`]: presence bodies (RFC 3863 `application/pidf+xml`, RPID).
//! * [`mwi`]: message-waiting bodies (RFC 3842 `application/simple-message-summary`).
//! * [`registration`], [`qualify`]: outbound registration (Asterisk's state
//!   names, digest, refresh, back-off, `Expires: 0`) and OPTIONS pokes.
//! * [`sdp`]: SDP parsing/writing and RFC 3264 offer/answer (hold, rejected
//!   streams, late offer, no-common-codec).
//! * [`transaction`]: RFC 3261 §17 client and server transactions with every
//!   timer (A–M), matching, CANCEL/ACK rules, reliable-transport variants.
//! * [`refer`]: the grammar of transfer: `Refer-To`, `Replaces`, sipfrag
//!   bodies, `Event`, `Subscription-State`, `Refer-Sub`.
//! * [`validate`]: what a UAS answers to a request it cannot accept
//!   (400/416/420/505/…), per RFC 3261 §8.2 and the RFC 4475 corpus.
//!
//! ## Performance
//!
//! Counted, not timed, since the development machines are two shared
//! cores: `bench/parse_callgrind.sh` runs `benches/hot_path.rs` under
//! callgrind (2026-12-02, `bench/report-parse.md`). Per message of a call
//! (INVITE with SDP, 180, 200 with SDP, ACK, BYE):
//!
//! | what | instructions | allocations |
//! |---|---|---|
//! | parse | 7,100 | 3 |
//! | parse, then top Via, CSeq, From and To read in place | 11,900 | 3 |
//! | serialise into a reused buffer | 2,200 | 0 |
//! | one UAS call through the transaction layer (3 requests in, 3 responses out) | 66,000 per call | 31 per call |
//!
//! The header section is copied once per message and values are ranges of
//! it; see [`message`]. `cargo bench -p sirius-sip --bench parse` gives the
//! same paths in time (criterion).

pub mod auth;
pub mod dialog;
pub mod dialog_info;
pub mod message;
pub mod mwi;
pub mod pidf;
pub mod qualify;
pub mod refer;
pub mod registration;
pub mod sdp;
pub mod shared_appearance;
pub mod transaction;
pub mod validate;
