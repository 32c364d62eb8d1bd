//! What goes into the endpoint ([`Input`]) and what comes out of it
//! ([`Output`]: bytes, host actions, relay changes, messages to other
//! shards): the whole surface between the sans-IO endpoint and its driver.

use super::OutboundSetup;
use super::ShardMsg;
use sirius_abi::{Cause, ChannelId, ChannelState};
use sirius_sip::message::Message;
use sirius_sip::transaction::{Transmit, Transport};
use std::net::SocketAddr;

/// What happened outside the endpoint.
#[derive(Debug)]
pub enum Input<'a> {
    /// A UDP datagram.
    Datagram {
        /// Its bytes.
        data: &'a [u8],
        /// Who sent it.
        src: SocketAddr,
    },
    /// A message framed out of a TCP stream.
    Stream {
        /// The message.
        msg: Message,
        /// The connection's far end.
        src: SocketAddr,
    },
    /// A TCP connection failed: requests waiting on it get no answer.
    TransportError {
        /// The far end.
        peer: SocketAddr,
        /// Its transport.
        transport: Transport,
    },
    /// The core answers a call.
    Answer(ChannelId),
    /// The core hangs a call up.
    Hangup(ChannelId, Cause),
    /// The core signals an indication (ringing, busy…).
    Indicate(ChannelId, sirius_abi::Indication),
    /// `request_call` created an outbound channel.
    NewOutbound(OutboundSetup),
    /// `call()`: send the INVITE of an outbound channel. The core does not
    /// wait for the outcome (a dialplan task must not hold a worker while
    /// this thread is busy): a refusal hangs the channel up with its cause,
    /// which Dial reads as it reads any callee's end.
    Place(ChannelId),
    /// The core bridged two of our channels (or one with itself: Echo).
    Bridge(ChannelId, ChannelId),
    /// The core ended the native bridge (or early-media link) between two
    /// of our channels; they live on.
    Unbridge(ChannelId, ChannelId),
    /// `sip qualify peer X`: poke now.
    QualifyNow(String),
    /// The configuration was reloaded: start, stop or restart registrations and pokes.
    Reconcile,
    /// The module stops: end every call, unregister every line.
    Shutdown,
    /// The driver's answer to [`Output::Resolve`].
    Resolved {
        /// The name asked for.
        host: String,
        /// Its port.
        port: u16,
        /// Its address, or why there is none.
        result: Result<SocketAddr, String>,
    },
    /// The relay took a digit out of the RTP towards this channel, whose
    /// far end takes DTMF as SIP INFO: send it one (digit, ms).
    RelayDtmf(ChannelId, char, u32),
    /// Another shard asks or tells something about calls.
    Shard(ShardMsg),
    /// The core bridged our channel `chan` with `partner` of shard `to`:
    /// lend it to that shard's relay.
    Lend {
        /// Ours.
        chan: ChannelId,
        /// The shard of the other leg.
        to: usize,
        /// The other leg.
        partner: ChannelId,
    },
    /// Another shard lent us `leg` (its sockets are in the environment
    /// now): relay it with our `partner`.
    Borrowed(LegMedia, ChannelId),
    /// The core asks the far end of a call to call `1` instead
    /// (`Transfer()`): a REFER.
    Transfer(ChannelId, String),
    /// The mailboxes a subscription or a peer watches have new counts
    /// ([`super::Env::mwi_watch`]).
    MwiChanged {
        /// Who watches them.
        target: MwiTarget,
        /// Their summed counts now.
        counts: sirius_sip::mwi::Counts,
    },
    /// The hint a subscription watches changed ([`super::Env::hint_watch`]).
    HintChanged {
        /// The subscription.
        key: u64,
        /// Its extension state now (`AST_EXTENSION_*` bits).
        state: i32,
    },
}

/// Who watches a set of mailboxes ([`super::Env::mwi_watch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MwiTarget {
    /// A message-summary subscription, by key.
    Subscription(u64),
    /// A peer told without a subscription (`crate::mwi`), by name, and the
    /// watch's generation (a change heard from a watch a reload replaced
    /// is dropped).
    Peer(String, u64),
}

/// What the driver must do for the endpoint.
#[derive(Debug)]
pub enum Output {
    /// Send bytes.
    Transmit(Transmit),
    /// Tell the core.
    Host(HostAction),
    /// Change what the RTP relay does.
    Media(MediaAction),
    /// A request from this TCP peer passed authentication: its connection
    /// is trusted (`tcpauthtimeout` and the limits on unauthenticated
    /// connections no longer apply to it).
    Trusted(SocketAddr),
    /// Carry a message to shard `0` (it arrives there as [`Input::Shard`]).
    Shard(usize, ShardMsg),
    /// Look a host name up (A/AAAA) off the endpoint's thread and answer
    /// with [`Input::Resolved`].
    Resolve {
        /// The name.
        host: String,
        /// The port it goes with.
        port: u16,
    },
}

/// A host call that needs no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// `ast_setstate`.
    SetState(ChannelId, ChannelState),
    /// The call ended on the SIP side: the core frees the channel.
    Hangup(ChannelId, Cause),
    /// A digit from the far end (SIP INFO) on a channel nobody bridges
    /// natively: a DTMF frame for the core (digit, ms).
    Dtmf(ChannelId, char, u32),
    /// The far end signalled progress (SIP 183): early media may flow.
    Progress(ChannelId),
    /// A device's state changed (`SIP/alice` got its first call, or its
    /// last one ended): pushed to the core for hints and BLF.
    DeviceState(String, sirius_abi::DeviceState),
    /// The codecs the call carries now that offer/answer agreed on them.
    SetCodecs(ChannelId, Vec<sirius_abi::Codec>),
    /// Run the dialplan on an answered channel of ours (a leg called for a
    /// REFER outside a dialog); a refusal hangs it up.
    StartPbx(ChannelId),
    /// A hint watch ([`super::Env::hint_watch`]) is no longer needed.
    HintUnwatch(u64),
    /// A mailbox watch ([`super::Env::mwi_watch`]) is no longer needed.
    MwiUnwatch(u64),
    /// The outcome of the transfer the core asked for (`Transfer()`).
    TransferResult(ChannelId, Result<(), Cause>),
    /// An event for the core's bus (`PeerStatus`, `Registry`, `Hold`…).
    Event {
        /// Its name.
        name: &'static str,
        /// Its fields, in order.
        fields: Vec<(&'static str, String)>,
    },
}

/// One leg of a native bridge: whose sockets, and where its far end is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegMedia {
    /// The channel whose RTP/RTCP pair the relay reads.
    pub chan: ChannelId,
    /// The far end as its SDP describes it.
    pub remote: crate::relay::RemoteMedia,
    /// Learn the far end from the packets (`comedia`).
    pub learn: bool,
    /// The leg negotiated video: its video pair is relayed too.
    pub video: bool,
    /// The leg's far end takes DTMF as SIP INFO (`dtmfmode = "info"`).
    pub info_dtmf: bool,
    /// Its far end holds the call (its phone said sendonly).
    pub held: bool,
    /// We hold it (our re-INVITE said sendonly): passed on from its
    /// partner's hold.
    pub local_hold: bool,
}

/// A change to the native RTP relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaAction {
    /// Relay two legs to each other (RTP and RTCP).
    Bridge(LegMedia, LegMedia),
    /// Send a leg's RTP back to it (Echo).
    Echo(LegMedia),
    /// Send a digit to this leg's far end as RFC 4733 events (digit, ms).
    Dtmf(ChannelId, char, u32),
    /// A leg's far end moved (re-INVITE or its answer): the relay follows.
    Remote(ChannelId, crate::relay::RemoteMedia),
    /// A leg is gone: stop any relay it is in and free its ports.
    Release(ChannelId),
    /// The relay this leg is in ends (the core unbridged it): stop it, on
    /// both legs; their ports stay, the calls go on.
    Unbridge(ChannelId),
    /// The pair set aside for this inbound leg's callee
    /// ([`Env::set_aside`]) is not needed any more: back to the range.
    DropSpare(ChannelId),
    /// The core bridged this leg with one of shard `1` (channel `2`): that
    /// shard's relay carries both (a bridge across shards, after a transfer).
    Lend(LegMedia, usize, ChannelId),
    /// Play ringback to this answered leg (`crate::tones`) until its media
    /// is relayed or [`MediaAction::StopTone`]; nothing when it is relayed.
    Ringback(LegMedia),
    /// Stop the tone this leg hears, if any.
    StopTone(ChannelId),
}

/// Which of a call's media streams (each an RTP/RTCP pair of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// The `m=audio` stream.
    Audio,
    /// The `m=video` stream.
    Video,
}
