//! Client-side state the console shows: outbound registrations (`register`
//! lines) and qualify pokes. The monitor drives them; `sip show registry` and
//! `sip show peers` read them.

use crate::config::{Peer, RegisterConfig};
use sirius_sip::message::Host;
use sirius_sip::qualify::Qualify;
use sirius_sip::registration::{RegConfig, RegState, Registration};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Asterisk polls an unreachable or lagged peer every 10 s (`DEFAULT_FREQ_NOTOK`).
pub const FREQ_NOTOK: Duration = Duration::from_secs(10);

/// One `register` line and its state.
pub struct OutboundReg {
    /// The configuration line.
    pub cfg: RegisterConfig,
    /// The registrar's address.
    pub dest: SocketAddr,
    /// The state machine.
    pub sm: Registration,
    /// Wall-clock time of the last successful registration (`Reg.Time`).
    pub registered_at: Option<chrono::DateTime<chrono::Local>>,
}

impl OutboundReg {
    /// Builds the state machine for a line, registering from `bound`.
    pub fn new(cfg: RegisterConfig, bound: SocketAddr) -> Result<OutboundReg, String> {
        let ip: std::net::IpAddr = cfg.host.parse().map_err(|_| {
            format!(
                "register line for {}: host '{}' must be an IP address (DNS is not supported yet)",
                cfg.user, cfg.host
            )
        })?;
        let dest = SocketAddr::new(ip, cfg.port);
        let host = match bound.ip() {
            std::net::IpAddr::V4(a) => Host::V4(a),
            std::net::IpAddr::V6(a) => Host::V6(a),
        };
        let sm = Registration::new(RegConfig {
            user: cfg.user.clone(),
            authuser: cfg.authuser.clone(),
            secret: cfg.secret.clone(),
            domain: cfg.host.clone(),
            expiry: cfg.expiry,
            contact: format!("sip:{}@{bound}", cfg.contact),
            via_transport: "UDP".into(),
            via_host: host,
            via_port: Some(bound.port()),
            retry_base: Duration::from_secs(20),
            retry_max: Duration::from_secs(600),
        });
        Ok(OutboundReg {
            cfg,
            dest,
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
