//! Client-side state the console shows: outbound registrations (`register`
//! lines) and qualify pokes. The monitor drives them; `sip show registry` and
//! `sip show peers` read them.

use crate::config::{Peer, RegisterConfig};
use crate::Shared;
use sirius_sip::message::Host;
use sirius_sip::qualify::Qualify;
use sirius_sip::registration::{RegConfig, RegState, Registration};
use sirius_sip::transaction::Transport;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Asterisk polls an unreachable or lagged peer every 10 s (`DEFAULT_FREQ_NOTOK`).
pub const FREQ_NOTOK: Duration = Duration::from_secs(10);

/// One `register` line and its state.
pub struct OutboundReg {
    /// The configuration line.
    pub cfg: RegisterConfig,
    /// Where the REGISTER goes: the registrar (`host`/`port`) or the
    /// line's `outboundproxy`.
    pub dest: SocketAddr,
    /// The line's `transport`.
    pub transport: Transport,
    /// The state machine.
    pub sm: Registration,
    /// Unix time of the last successful registration (`Reg.Time`), from
    /// the endpoint's input (it reads no clock).
    pub registered_at: Option<u64>,
}

impl OutboundReg {
    /// Builds the state machine for a line, registering from our address on
    /// the line's transport. The registrar's host name is resolved now.
    pub fn new(cfg: RegisterConfig, shared: &Shared) -> Result<OutboundReg, String> {
        let line = |e: String| format!("register line for {}@{}: {e}", cfg.user, cfg.host);
        let transport = Transport::parse(&cfg.transport).ok_or_else(|| {
            line(format!(
                "unknown transport '{}' (udp or tcp)",
                cfg.transport
            ))
        })?;
        if transport == Transport::Tcp && shared.tcp_bound.is_none() {
            return Err(line(
                "transport tcp needs tcpenable = true in [general]".into(),
            ));
        }
        let dest = cfg.destination().map_err(line)?;
        let bound = shared.local(transport);
        let host = match bound.ip() {
            std::net::IpAddr::V4(a) => Host::V4(a),
            std::net::IpAddr::V6(a) => Host::V6(a),
        };
        // The digest user is `authuser`, else `user`, even when `fromuser`
        // puts another user in the AOR.
        let authuser = match (&cfg.authuser, &cfg.fromuser) {
            (Some(a), _) => Some(a.clone()),
            (None, Some(_)) => Some(cfg.user.clone()),
            (None, None) => None,
        };
        let reg_cfg = RegConfig {
            user: cfg.aor_user().into(),
            authuser,
            secret: cfg.secret.clone(),
            domain: cfg.aor_domain().into(),
            expiry: cfg.expiry,
            contact: shared.contact_uri(&cfg.contact, transport),
            via_transport: transport.as_str().into(),
            via_host: host,
            via_port: Some(bound.port()),
            retry_base: Duration::from_secs(20),
            retry_max: Duration::from_secs(600),
        };
        // Registrations run on the first shard: their Call-ID must hash
        // there, or the registrar's answers would reach another shard
        // (crate::shards). Half the draws do with two shards.
        let home = crate::shards::Home {
            index: 0,
            count: shared.shards.count(),
        };
        let sm = loop {
            let sm = Registration::new(reg_cfg.clone());
            if home.owns(sm.call_id()) {
                break sm;
            }
        };
        Ok(OutboundReg {
            cfg,
            dest,
            transport,
            sm,
            registered_at: None,
        })
    }

    /// The `Host` column: `host:port`.
    pub fn host_column(&self) -> String {
        format!("{}:{}", self.cfg.host, self.cfg.port)
    }

    /// Whether the line is registered.
    pub fn registered(&self) -> bool {
        self.sm.state() == RegState::Registered
    }
}

/// Qualify state for the peers that ask for it, by name.
pub type QualifyMap = BTreeMap<String, Qualify>;

/// Brings the qualify map in line with the peers: new ones start poking soon
/// (staggered), changed ones restart, removed ones go.
pub fn reconcile_qualify(map: &mut QualifyMap, peers: &[&Peer], freq_ok: Duration, now: Instant) {
    map.retain(|name, q| {
        peers
            .iter()
            .any(|p| p.name == *name && p.qualify_maxms == Some(q.maxms()))
    });
    for (i, p) in peers.iter().enumerate() {
        if let Some(maxms) = p.qualify_maxms {
            map.entry(p.name.clone()).or_insert_with(|| {
                let mut q = Qualify::new(maxms, freq_ok, FREQ_NOTOK);
                q.schedule(now + Duration::from_millis(100 + 50 * i as u64));
                q
            });
        }
    }
}
