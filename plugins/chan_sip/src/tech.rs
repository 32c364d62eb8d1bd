//! The SIP channel technology as the core sees it (`ast_channel_tech` for SIP).

use crate::Shared;
use sirius_abi::guest::ChannelDriver;
use sirius_abi::{Capabilities, Cause, ChannelId, Codec, DeviceState, MediaKind, TechInfo};
use sirius_sip::sdp::negotiate::FormatSpec;
use sirius_sip::transaction::Transport;
use std::sync::Arc;

/// Everything SIP can carry.
pub fn sip_capabilities() -> Capabilities {
    Capabilities::of(&[
        Codec::PCMU,
        Codec::PCMA,
        Codec::G722,
        Codec::GSM,
        Codec::SPEEX,
        Codec::SPEEX16,
        Codec::OPUS,
        Codec::TELEPHONE_EVENT,
        Codec::H263,
        Codec::H264,
        Codec::MP4V_ES,
        Codec::G729,
    ])
}

/// SDP format specs for a codec preference list (audio/video only).
pub fn format_specs(codecs: &[Codec]) -> Vec<FormatSpec> {
    codecs
        .iter()
        .filter_map(|c| c.info())
        .filter(|i| i.kind != MediaKind::Event)
        .map(|i| FormatSpec::new(i.encoding, i.clock_rate, i.static_pt))
        .collect()
}

/// What a dial string names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `SIP/peer` or `SIP/exten@peer`.
    Peer {
        /// Peer name.
        peer: String,
        /// Extension to call at the peer, if given.
        exten: Option<String>,
    },
    /// `SIP/host[:port]` or `SIP/exten@host[:port]`.
    Address {
        /// Address.
        addr: std::net::SocketAddr,
        /// Extension, if given.
        exten: Option<String>,
    },
}

/// Parses the resource of a dial string.
pub fn parse_dest(dest: &str, is_peer: impl Fn(&str) -> bool) -> Option<Target> {
    let (exten, rest) = match dest.split_once('@') {
        Some((e, r)) => (Some(e.to_string()), r),
        None => (None, dest),
    };
    if rest.is_empty() {
        return None;
    }
    if is_peer(rest) {
        return Some(Target::Peer {
            peer: rest.to_string(),
            exten,
        });
    }
    let addr = rest.parse().ok().or_else(|| {
        rest.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| std::net::SocketAddr::new(ip, 5060))
    })?;
    Some(Target::Address { addr, exten })
}

/// The channel technology.
pub struct SipTech {
    shared: Arc<Shared>,
}

impl SipTech {
    /// The technology over the shared state.
    pub fn new(shared: Arc<Shared>) -> SipTech {
        SipTech { shared }
    }

    /// Calls in progress (the module's use count), counted by the
    /// endpoint that owns them (no mirror to keep in step); 0 once the
    /// driver is gone.
    pub fn calls(&self) -> u32 {
        self.shared
            .shards
            .gather(
                crate::driver::Command::Calls,
                std::time::Duration::from_secs(2),
            )
            .into_iter()
            .sum()
    }

    /// Queues `cmd` for the shard `chan` lives on.
    fn send(&self, chan: ChannelId, cmd: crate::driver::Command) -> Result<(), Cause> {
        self.shared.shards.send_for(chan, cmd)
    }
}

impl ChannelDriver for SipTech {
    fn info(&self) -> TechInfo {
        TechInfo {
            tech_type: "SIP".into(),
            description: "Session Initiation Protocol (SIP)".into(),
            capabilities: sip_capabilities(),
            devicestate: true,
            presencestate: false,
            indications: true,
            transfer: true,
        }
    }

    /// Asterisk's `sip_request_call` checks: a destination we know, a shared
    /// audio codec (else BEARERCAPABILITY_NOTAVAIL), a registered dynamic peer
    /// (else UNREGISTERED).
    fn request_call(
        &self,
        caps: Capabilities,
        dest: &str,
        requestor: Option<ChannelId>,
    ) -> Result<ChannelId, Cause> {
        let running = self.shared.running();
        let target = parse_dest(dest, |n| running.peers.contains_key(n)).ok_or_else(|| {
            log::warn!("Unable to create channel of type 'SIP' (cause 3 - No route to destination): bad destination '{dest}'");
            Cause::NO_ROUTE_DESTINATION
        })?;
        if let Target::Peer { peer, .. } = &target {
            let p = &running.peers[peer];
            let joint = caps.intersect(Capabilities::of(&p.codecs));
            let translated = !joint.has_audio()
                && sirius_media::translate::translatable(caps, Capabilities::of(&p.codecs));
            if translated {
                log::info!(
                    "No common audio format with '{peer}' ({} vs {}): the bridge will translate",
                    caps.of_kind(MediaKind::Audio),
                    Capabilities::of(&p.codecs)
                );
            } else if !joint.has_audio() {
                log::warn!(
                    "No audio format found to offer to '{peer}': asked {}, peer allows {}",
                    caps.of_kind(MediaKind::Audio),
                    Capabilities::of(&p.codecs)
                );
                return Err(Cause::BEARERCAPABILITY_NOTAVAIL);
            }
            if p.dynamic && self.shared.registrar.lock().binding(peer).is_none() {
                log::info!("Peer '{peer}' is not registered: cannot call it");
                return Err(Cause::UNREGISTERED);
            }
        }
        let (addr, transport, exten, peer, codecs, others) = match &target {
            Target::Peer { peer, exten } => {
                let p = &running.peers[peer];
                // A static peer's address, or every contact the peer
                // registered (one snapshot, newest first, each address
                // once): the newest is called, the others ring beside it.
                let mut contacts: Vec<(std::net::SocketAddr, Transport)> = match p.addr {
                    Some(a) => vec![(a, p.transports[0])],
                    None => {
                        let reg = self.shared.registrar.lock();
                        reg.contacts(peer)
                            .iter()
                            .map(|b| (b.addr, b.transport()))
                            .collect()
                    }
                };
                let mut seen = std::collections::HashSet::new();
                contacts.retain(|c| seen.insert(*c));
                if contacts.is_empty() {
                    return Err(Cause::UNREGISTERED);
                }
                let (addr, transport) = contacts.remove(0);
                if self
                    .shared
                    .qualify
                    .lock()
                    .get(peer)
                    .is_some_and(|q| !q.status().reachable())
                {
                    log::info!("Peer '{peer}' is UNREACHABLE: not calling it");
                    return Err(Cause::SUBSCRIBER_ABSENT);
                }
                let mut codecs: Vec<Codec> = p
                    .codecs
                    .iter()
                    .copied()
                    .filter(|c| caps.contains(*c))
                    .collect();
                if !codecs.iter().any(|c| c.kind() == MediaKind::Audio) {
                    // No common audio codec: offer the peer's own that the
                    // caller's translate to (G.711 µ-law <-> A-law).
                    let audio = caps.of_kind(MediaKind::Audio);
                    codecs = p
                        .codecs
                        .iter()
                        .copied()
                        .filter(|c| {
                            audio
                                .iter()
                                .any(|a| sirius_media::translate::can_translate(a, *c))
                        })
                        .collect();
                }
                (
                    addr,
                    transport,
                    exten.clone().unwrap_or_else(|| p.username.clone()),
                    Some(peer.clone()),
                    codecs,
                    contacts,
                )
            }
            Target::Address { addr, exten } => {
                let codecs: Vec<Codec> = crate::config::DEFAULT_CODECS
                    .iter()
                    .copied()
                    .filter(|c| caps.contains(*c))
                    .collect();
                if codecs.is_empty() {
                    return Err(Cause::BEARERCAPABILITY_NOTAVAIL);
                }
                (
                    *addr,
                    Transport::Udp,
                    exten.clone().unwrap_or_else(|| "s".into()),
                    None,
                    codecs,
                    Vec::new(),
                )
            }
        };
        // The caller's ID goes into our From, as Asterisk presents the calling
        // channel's caller ID on the outbound leg.
        let (caller, caller_name) = requestor
            .and_then(|r| self.shared.host.channel_caller_id(r))
            .unwrap_or_default();
        // A transferred call's target learns who referred it (RFC 3892):
        // the REFER's Referred-By, left on the transferee (and inherited).
        let referred_by =
            requestor.and_then(|r| self.shared.host.channel_get_var(r, "SIPREFERREDBYHDR"));
        let accountcode = peer
            .as_ref()
            .and_then(|n| {
                self.shared
                    .running()
                    .peers
                    .get(n)
                    .map(|p| p.accountcode.clone())
            })
            .unwrap_or_default();
        let info = self.shared.host.channel_alloc(sirius_abi::ChannelSpec {
            tech: "SIP".into(),
            resource: peer.clone().unwrap_or_else(|| addr.ip().to_string()).into(),
            state: sirius_abi::ChannelState::Down,
            direction: sirius_abi::Direction::Outbound,
            context: "".into(),
            exten: "".into(),
            caller_num: caller.clone().into(),
            caller_name: caller_name.clone().into(),
            codecs: codecs.clone().into(),
            accountcode: accountcode.into(),
        })?;
        // With the channel that asked for it, so that both legs of the
        // call share a shard (crate::shards).
        let home = self.shared.shards.home_for_outbound(requestor);
        self.shared.shards.settle(info.id, home);
        let ruri = format!("sip:{exten}@{addr}{}", transport.uri_param());
        // A dynamic peer registered from several phones (max_contacts):
        // the others ring beside the newest.
        let forks = others
            .into_iter()
            .map(|(dest, transport)| crate::session::fork::ForkTarget {
                dest,
                transport,
                ruri: format!("sip:{exten}@{dest}{}", transport.uri_param()),
            })
            .collect();
        let setup = crate::driver::OutboundSetup {
            chan: info.id,
            dest: addr,
            transport,
            ruri,
            peer,
            name: info.name.to_string(),
            codecs,
            caller,
            caller_name,
            referred_by,
            requestor,
            forks,
        };
        if self
            .shared
            .shards
            .send(home, crate::driver::Command::NewOutbound(setup))
            .is_err()
        {
            self.shared.shards.forget(info.id);
            self.shared.host.channel_hangup(info.id, Cause::FAILURE);
            return Err(Cause::FAILURE);
        }
        Ok(info.id)
    }

    /// Queued, not waited for: the driver may be busy with thousands of
    /// messages, and the dialplan task calling this would hold one of the
    /// PBX pool's few workers meanwhile (under load the pool then starved
    /// and Dials queued behind each other). A refusal (call-limit, a second
    /// `call`) hangs the channel up with its cause instead, which Dial
    /// reads as any callee's end (DIALSTATUS, HANGUPCAUSE).
    fn call(&self, chan: ChannelId, _dest: &str, _timeout_ms: u32) -> Result<(), Cause> {
        self.send(chan, crate::driver::Command::Place(chan))
    }

    fn answer(&self, chan: ChannelId) -> Result<(), Cause> {
        self.send(chan, crate::driver::Command::Answer(chan))
    }

    fn hangup(&self, chan: ChannelId, cause: Cause) -> Result<(), Cause> {
        self.send(chan, crate::driver::Command::Hangup(chan, cause))
    }

    fn indicate(&self, chan: ChannelId, indication: sirius_abi::Indication) -> Result<(), Cause> {
        self.send(chan, crate::driver::Command::Indicate(chan, indication))
    }

    /// Accepted at once when both legs live on one shard, and queued to
    /// it: waiting for the shard's answer held a PBX worker for a turn of a
    /// busy driver per call, and under load answered calls queued for
    /// their bridge holding their RTP ports (issue #11). Legs of two shards
    /// (joined by a transfer) are bridged on the first leg's shard with the
    /// second leg's sockets lent to it (`Command::Lend`). What the shard may
    /// still find (a leg that left meanwhile, no relay thread) it logs; the
    /// leg's own hangup ends the bridge as usual.
    fn native_bridge(&self, a: ChannelId, b: ChannelId) -> Result<(), Cause> {
        let shards = &self.shared.shards;
        let (home_a, home_b) = (shards.home(a), shards.home(b));
        if home_a != home_b {
            // Legs of two shards (a transfer joined them): `a`'s relay
            // carries both, `b`'s shard lends it b's sockets.
            let lend = crate::driver::Command::Lend {
                chan: b,
                to: home_a,
                partner: a,
            };
            return shards.send(home_b, lend);
        }
        shards.send(home_a, crate::driver::Command::Bridge(a, b))
    }

    /// `Transfer()`: queued to the call's thread, which sends the REFER;
    /// the outcome comes back as `channel_transfer_result`.
    fn transfer(&self, chan: ChannelId, dest: &str) -> Result<(), Cause> {
        self.send(
            chan,
            crate::driver::Command::Transfer(chan, dest.to_string()),
        )
    }

    /// Queued behind whatever the core asked before (a hangup of one of
    /// the legs, say), as every command is: the endpoint then finds the
    /// pair still relayed or not, and a notice about a pair no longer
    /// relayed does nothing.
    fn native_unbridge(&self, a: ChannelId, b: ChannelId) -> Result<(), Cause> {
        self.send(a, crate::driver::Command::Unbridge(a, b))
    }

    fn device_state(&self, resource: &str) -> DeviceState {
        self.shared.device_state(resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_strings() {
        let is_peer = |n: &str| n == "bob";
        assert_eq!(
            parse_dest("bob", is_peer),
            Some(Target::Peer {
                peer: "bob".into(),
                exten: None
            })
        );
        assert_eq!(
            parse_dest("600@bob", is_peer),
            Some(Target::Peer {
                peer: "bob".into(),
                exten: Some("600".into())
            })
        );
        assert_eq!(
            parse_dest("127.0.0.1:5070", is_peer),
            Some(Target::Address {
                addr: "127.0.0.1:5070".parse().unwrap(),
                exten: None
            })
        );
        assert_eq!(
            parse_dest("7@127.0.0.1", is_peer),
            Some(Target::Address {
                addr: "127.0.0.1:5060".parse().unwrap(),
                exten: Some("7".into())
            })
        );
        assert_eq!(parse_dest("nobody", is_peer), None);
        assert_eq!(parse_dest("x@", is_peer), None);
    }
}
