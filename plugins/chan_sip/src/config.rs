//! `sip.toml`: Asterisk's sip.conf in TOML.
//!
//! ```toml
//! [general]
//! udpbindaddr = "127.0.0.1:5060"
//! realm = "sirius"
//!
//! [peers.alice]
//! type = "friend"
//! host = "dynamic"
//! secret = "alice-secret"
//! context = "demo"
//! call-limit = 2
//! allow = ["ulaw", "alaw"]
//! ```
//!
//! Unknown keys are errors with file and line (`sirius-conf`); a bad file on
//! `sip reload` is refused and the running configuration stays.

use crate::acl::Acl;
use serde::Deserialize;
use sirius_abi::Codec;
use sirius_sip::transaction::Transport;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// `[general]`.
    pub general: General,
    /// `[peers.<name>]`.
    pub peers: BTreeMap<String, PeerConfig>,
    /// `[[register]]`: outbound registrations.
    pub register: Vec<RegisterConfig>,
}

/// `[general]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct General {
    /// UDP listen address (loopback by default).
    pub udpbindaddr: SocketAddr,
    /// Listen for SIP over TCP too (Asterisk's `tcpenable`, off by default).
    pub tcpenable: bool,
    /// TCP listen address; unset: the UDP socket's address and port, so one
    /// `host:port` in Via and Contact serves both transports.
    pub tcpbindaddr: Option<SocketAddr>,
    /// Seconds a client's TCP connection may stay open before a request on
    /// it passes authentication (Asterisk's `tcpauthtimeout`).
    pub tcpauthtimeout: u32,
    /// Unauthenticated TCP connections open at once (Asterisk's `tcpauthlimit`).
    pub tcpauthlimit: u32,
    /// Unauthenticated TCP connections open at once from one address (ours:
    /// one host's flood takes only this many of `tcpauthlimit`).
    pub tcpauthperaddress: u32,
    /// Digest realm.
    pub realm: String,
    /// Context for guests.
    pub context: String,
    /// Accept calls from unknown sources into `context`.
    pub allowguest: bool,
    /// Answer unknown users exactly as wrong passwords (no user enumeration).
    pub alwaysauthreject: bool,
    /// Shortest registration accepted, seconds (shorter: 423).
    pub minexpiry: u32,
    /// Longest registration granted, seconds.
    pub maxexpiry: u32,
    /// Registration time when the phone asks for none.
    pub defaultexpiry: u32,
    /// Seconds between qualify pokes while a peer is OK.
    pub qualifyfreq: u32,
    /// RFC 3261 T1 in milliseconds.
    pub t1: u64,
    /// `User-Agent` / `Server` header.
    pub useragent: String,
    /// Failed authentications from one address before it is blocked.
    pub authfailures: u32,
    /// First port of the RTP range (Asterisk's rtp.conf `rtpstart`).
    pub rtpstart: u16,
    /// Last port of the RTP range (`rtpend`). RTP takes even ports, RTCP the next.
    pub rtpend: u16,
    /// Admission control: while the SIP event loop runs later than this
    /// many milliseconds (the lateness of its latest due timer), new calls
    /// get 503 with Retry-After, so that the calls in progress keep their
    /// timing; 0 for no limit.
    pub maxlag: u32,
    /// SIP signalling threads (shards of the endpoint, by Call-ID; each
    /// with its own relay thread): 0 for one per core. Read at load only.
    pub sipthreads: u32,
    /// How long a blocked address stays blocked, seconds.
    pub authblocktime: u32,
    /// RFC 4028 session timers: `accept` (run them when the far end asks),
    /// `originate` (ask for them too), `refuse`.
    pub session_timers: SessionTimers,
    /// The session interval we ask for or grant at most, seconds.
    pub session_expires: u32,
    /// The shortest session interval we accept (RFC 4028 Min-SE, at least 90).
    pub session_minse: u32,
    /// Who refreshes when we choose: `uas` or `uac`.
    pub session_refresher: Refresher,
    /// Hang up a bridged call after this many seconds without RTP from its
    /// far end (0: never), as Asterisk's `rtptimeout`.
    pub rtptimeout: u32,
    /// The same for a call on hold (`rtpholdtimeout`; 0: never).
    pub rtpholdtimeout: u32,
    /// Whether peers may transfer calls with REFER (Asterisk's
    /// `allowtransfer`, default yes); a peer's own setting wins. Refused
    /// transfers get `603 Declined`.
    pub allowtransfer: bool,
    /// Whether peers may subscribe to extension states (busy lamps, RFC
    /// 6665 `SUBSCRIBE`; Asterisk's `allowsubscribe`, default yes); a
    /// peer's own setting wins. Refused subscriptions get `403`.
    pub allowsubscribe: bool,
    /// The context whose hints subscriptions read (`subscribecontext`);
    /// unset: the subscriber's own context.
    pub subscribecontext: Option<String>,
    /// Shortest subscription granted, seconds (shorter: `423`); unset:
    /// `minexpiry`, as Asterisk's `subminexpiry`.
    pub subminexpiry: Option<u32>,
    /// Longest subscription granted, seconds (longer ones are cut); unset:
    /// `maxexpiry`, as Asterisk's `submaxexpiry`.
    pub submaxexpiry: Option<u32>,
    /// The extension phones call for their messages, named in MWI
    /// NOTIFYs' `Message-Account` (Asterisk's `vmexten`).
    pub vmexten: String,
}

impl General {
    /// How long subscriptions are granted: `subminexpiry`/`submaxexpiry`
    /// (else the registration bounds), `defaultexpiry` when a SUBSCRIBE
    /// names none (Asterisk has no subscription default of its own).
    pub fn subscription_bounds(&self) -> sirius_sip::dialog_info::ExpiryBounds {
        let min = self.subminexpiry.unwrap_or(self.minexpiry).max(1);
        let max = self.submaxexpiry.unwrap_or(self.maxexpiry).max(min);
        sirius_sip::dialog_info::ExpiryBounds {
            min,
            max,
            default: self.defaultexpiry.clamp(min, max),
        }
    }
}

/// `session-timers =` (Asterisk's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SessionTimers {
    /// Run a timer when the far end asks for one (Session-Expires).
    #[default]
    Accept,
    /// Ask for one in our INVITEs and grant one to every caller.
    Originate,
    /// Never: `Require: timer` gets 420.
    Refuse,
}

/// `session-refresher =`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Refresher {
    /// The side that answered the INVITE refreshes.
    #[default]
    Uas,
    /// The side that sent the INVITE refreshes.
    Uac,
}

/// The RFC 4028 and RTP-timeout settings in force for one peer (or for
/// guests: `[general]`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// `session-timers`.
    pub mode: SessionTimers,
    /// `session-expires`, seconds.
    pub expires: u32,
    /// `session-minse`, seconds.
    pub minse: u32,
    /// `session-refresher`.
    pub refresher: Refresher,
    /// `rtptimeout`, seconds (0: off).
    pub rtptimeout: u32,
    /// `rtpholdtimeout`, seconds (0: off).
    pub rtpholdtimeout: u32,
}

impl General {
    /// The timers of a call no peer's settings change.
    pub fn timers(&self) -> Timers {
        Timers {
            mode: self.session_timers,
            expires: self.session_expires,
            minse: self.session_minse,
            refresher: self.session_refresher,
            rtptimeout: self.rtptimeout,
            rtpholdtimeout: self.rtpholdtimeout,
        }
    }
}

/// RFC 4028 §4: no session interval below 90 seconds.
pub const MIN_SESSION_INTERVAL: u32 = 90;

/// Checks a session-timer pair: `session-minse` at least 90, and
/// `session-expires` not below it.
fn check_timers(t: &Timers) -> Result<(), String> {
    if t.minse < MIN_SESSION_INTERVAL {
        return Err(format!(
            "session-minse {} is below the RFC 4028 minimum of {MIN_SESSION_INTERVAL}",
            t.minse
        ));
    }
    if t.expires < t.minse {
        return Err(format!(
            "session-expires {} is below session-minse {}",
            t.expires, t.minse
        ));
    }
    Ok(())
}

impl Default for General {
    fn default() -> Self {
        General {
            udpbindaddr: "127.0.0.1:5060".parse().unwrap_or_else(|_| unreachable!()),
            tcpenable: false,
            tcpbindaddr: None,
            tcpauthtimeout: 30,
            tcpauthlimit: 100,
            tcpauthperaddress: 10,
            realm: "sirius".into(),
            context: "default".into(),
            allowguest: false,
            alwaysauthreject: true,
            minexpiry: 60,
            maxexpiry: 3600,
            defaultexpiry: 120,
            qualifyfreq: 60,
            t1: 500,
            useragent: format!("Sirius PBX {}", env!("CARGO_PKG_VERSION")),
            authfailures: 10,
            rtpstart: 10000,
            rtpend: 20000,
            // Well short of T1 (500 ms), when callers start retransmitting,
            // and well above what scheduling alone causes on a busy machine.
            maxlag: 200,
            sipthreads: 0,
            authblocktime: 300,
            session_timers: SessionTimers::Accept,
            session_expires: 1800,
            session_minse: MIN_SESSION_INTERVAL,
            session_refresher: Refresher::Uas,
            rtptimeout: 0,
            rtpholdtimeout: 0,
            allowtransfer: true,
            allowsubscribe: true,
            subscribecontext: None,
            subminexpiry: None,
            submaxexpiry: None,
            vmexten: "asterisk".into(),
        }
    }
}

/// `type =`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PeerType {
    /// Both: may call us and be called.
    #[default]
    Friend,
    /// Called by us (and may register).
    Peer,
    /// Only calls us.
    User,
}

/// `qualify =`: `true`/`false`, or the maximum round trip in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum QualifySetting {
    /// `yes` (2000 ms) or `no`.
    Flag(bool),
    /// Maximum acceptable round trip in ms.
    MaxMs(u32),
}

impl Default for QualifySetting {
    fn default() -> Self {
        QualifySetting::Flag(false)
    }
}

impl QualifySetting {
    /// The maxms, if qualify is on.
    pub fn maxms(self) -> Option<u32> {
        match self {
            QualifySetting::Flag(true) => Some(2000),
            QualifySetting::Flag(false) | QualifySetting::MaxMs(0) => None,
            QualifySetting::MaxMs(ms) => Some(ms),
        }
    }
}

/// `[peers.<name>]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct PeerConfig {
    /// friend, peer or user.
    #[serde(rename = "type")]
    pub kind: PeerType,
    /// `dynamic` (learned from REGISTER), an IP address or a host name
    /// (resolved when the file is loaded or reloaded).
    pub host: Option<String>,
    /// Port for a static host.
    pub port: Option<u16>,
    /// Digest password.
    pub secret: Option<String>,
    /// Precomputed MD5(user:realm:secret) instead of `secret`.
    pub md5secret: Option<String>,
    /// Password we answer the peer's 401/407 with when calling it, if it
    /// differs from `secret` (Asterisk's `remotesecret`).
    pub remotesecret: Option<String>,
    /// User part used when calling the peer, and the digest username.
    pub defaultuser: Option<String>,
    /// Dialplan context for calls from the peer.
    pub context: Option<String>,
    /// Concurrent calls allowed (0: no limit).
    pub call_limit: u32,
    /// OPTIONS pokes.
    pub qualify: QualifySetting,
    /// Codecs in preference order (Asterisk names: ulaw, alaw, g722…).
    pub allow: Vec<String>,
    /// Codecs removed from `allow` (`all` clears the list first).
    pub disallow: Vec<String>,
    /// `force_rport`, `comedia`…
    pub nat: Vec<String>,
    /// `port`, `invite`.
    pub insecure: Vec<String>,
    /// `rfc2833`, `info`, `inband`, `auto`.
    pub dtmfmode: Option<String>,
    /// Addresses allowed (CIDR).
    pub permit: Vec<String>,
    /// Addresses refused (CIDR).
    pub deny: Vec<String>,
    /// Caller ID for calls from the peer (`"Name" <num>`).
    pub callerid: Option<String>,
    /// Free text for `sip show peers`.
    pub description: Option<String>,
    /// Transports the peer may use, the first one for calls and pokes we send
    /// it (`"udp"`, `"tcp"`, `"tcp,udp"`; default `udp`). A registered peer is
    /// reached over the transport it registered with.
    pub transport: Option<String>,
    /// `[general]`'s `session-timers` for this peer.
    pub session_timers: Option<SessionTimers>,
    /// `[general]`'s `session-expires` for this peer.
    pub session_expires: Option<u32>,
    /// `[general]`'s `session-minse` for this peer.
    pub session_minse: Option<u32>,
    /// `[general]`'s `session-refresher` for this peer.
    pub session_refresher: Option<Refresher>,
    /// `[general]`'s `rtptimeout` for this peer.
    pub rtptimeout: Option<u32>,
    /// `[general]`'s `rtpholdtimeout` for this peer.
    pub rtpholdtimeout: Option<u32>,
    /// `[general]`'s `allowtransfer` for this peer.
    pub allowtransfer: Option<bool>,
    /// `[general]`'s `allowsubscribe` for this peer.
    pub allowsubscribe: Option<bool>,
    /// The context whose hints this peer's subscriptions read; unset:
    /// `[general]`'s `subscribecontext`, else the peer's `context`.
    pub subscribecontext: Option<String>,
    /// The mailboxes whose message-waiting light the peer shows
    /// (`1234@default`, comma-separated; a bare `1234` is in `default`).
    pub mailbox: Option<String>,
    /// `[general]`'s `vmexten` for this peer.
    pub vmexten: Option<String>,
    /// The account its calls are billed to: the call detail record's
    /// `accountcode` (Asterisk's `accountcode`, at most 80 characters).
    pub accountcode: Option<String>,
    /// Contacts the peer may register at once (pjsip's `max_contacts`,
    /// default 1: a new one replaces the old); a call rings them all.
    #[serde(alias = "max_contacts")]
    pub max_contacts: Option<u32>,
    /// A shared line (Shared Call Appearance): how many calls it holds at
    /// once, each shown to its phones by `Event: call-info`; 0: not one.
    pub shared_appearances: u32,
}

mod register;

/// `[[register]]`: an outbound registration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegisterConfig {
    /// AOR user.
    pub user: String,
    /// Password.
    pub secret: String,
    /// Digest username if different.
    pub authuser: Option<String>,
    /// Registrar host or address.
    pub host: String,
    /// Registrar port.
    #[serde(default = "default_sip_port")]
    pub port: u16,
    /// `udp` or `tcp`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// Requested expiry, seconds.
    #[serde(default = "default_reg_expiry")]
    pub expiry: u32,
    /// Extension calls to this registration arrive on (Contact user).
    #[serde(default = "default_contact_exten")]
    pub contact: String,
    /// The AOR's user in From/To when it is not `user` (sip.conf's
    /// `fromuser`); the digest user stays `authuser`, else `user`.
    pub fromuser: Option<String>,
    /// The AOR's domain in From/To and the Request-URI (`sip:<fromdomain>`)
    /// when it is not `host`: an operator's registrar addressed by IP that
    /// serves a named domain (`msisdn@movistar.es` at 195.76.180.160) only
    /// accepts its domain there (sip.conf's `fromdomain`).
    pub fromdomain: Option<String>,
    /// `host[:port]` (port 5060 by default) the REGISTER is sent to instead
    /// of `host`/`port`, the Request-URI still naming the domain (sip.conf's
    /// `outboundproxy`). `host` is then not looked up.
    pub outboundproxy: Option<String>,
}

fn default_sip_port() -> u16 {
    5060
}
fn default_transport() -> String {
    "udp".into()
}
fn default_reg_expiry() -> u32 {
    120
}
fn default_contact_exten() -> String {
    "s".into()
}

/// A peer's settings checked and resolved.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Section name.
    pub name: String,
    /// friend/peer/user.
    pub kind: PeerType,
    /// Learns its address from REGISTER.
    pub dynamic: bool,
    /// Static address.
    pub addr: Option<SocketAddr>,
    /// Transports allowed, the first one for requests we send to `addr`.
    pub transports: Vec<Transport>,
    /// Digest username (defaultuser, else the peer name).
    pub username: String,
    /// HA1 for digest, if the peer authenticates.
    pub ha1: Option<String>,
    /// Password for answering the peer's challenges to our INVITEs
    /// (`remotesecret`, else `secret`). Kept in clear because the far end's
    /// realm is only known from its challenge.
    pub outbound_secret: Option<String>,
    /// Dialplan context.
    pub context: String,
    /// Call limit (0: none).
    pub call_limit: u32,
    /// Qualify maxms.
    pub qualify_maxms: Option<u32>,
    /// Codec preference.
    pub codecs: Vec<Codec>,
    /// nat=force_rport.
    pub force_rport: bool,
    /// nat=comedia.
    pub comedia: bool,
    /// insecure=invite.
    pub insecure_invite: bool,
    /// insecure=port.
    pub insecure_port: bool,
    /// DTMF mode.
    pub dtmfmode: String,
    /// permit/deny.
    pub acl: Acl,
    /// Caller ID text.
    pub callerid: Option<String>,
    /// Description.
    pub description: String,
    /// Session timers and RTP timeouts.
    pub timers: Timers,
    /// May transfer calls (REFER).
    pub allowtransfer: bool,
    /// May subscribe to extension states.
    pub allowsubscribe: bool,
    /// Where its subscriptions look hints up.
    pub subscribecontext: String,
    /// Its mailboxes (`box@context,…`), for message waiting.
    pub mailbox: Option<String>,
    /// The extension its phone calls for messages.
    pub vmexten: String,
    /// Its calls' `accountcode` (empty: none).
    pub accountcode: String,
    /// Contacts it may register at once.
    pub max_contacts: u32,
    /// Appearances, when it is a shared line (0: it is not).
    pub shared_appearances: u32,
}

/// The most contacts one peer may register (each is rung by every call to
/// it: a bound on what one REGISTER can make a call cost).
pub const MAX_CONTACTS: u32 = 20;

/// A `vmexten` must be a SIP URI's user part as written (it becomes the
/// `From`, `Contact` and `Message-Account` user of MWI NOTIFYs): RFC 3261's
/// unreserved and user-unreserved characters.
fn check_vmexten(v: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/".contains(c);
    match !v.is_empty() && v.chars().all(ok) {
        true => Ok(()),
        false => Err(format!("vmexten '{v}' is not a SIP user part")),
    }
}

/// The configuration failed a check beyond the TOML schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SipConfigError {
    /// Syntax or schema (file:line: reason).
    #[error(transparent)]
    Toml(#[from] sirius_conf::ConfigError),
    /// A `[general]` value makes no sense.
    #[error("{file}: [general]: {reason}")]
    General {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A value makes no sense.
    #[error("{file}: peer '{peer}': {reason}")]
    Peer {
        /// The file.
        file: String,
        /// The peer.
        peer: String,
        /// What is wrong.
        reason: String,
    },
}

/// The address of a static `host`: an IP address as written, or a name looked
/// up once now (A/AAAA through the system resolver, as Asterisk without
/// `srvlookup`/dnsmgr does). A name that does not resolve is an error: a peer
/// nobody can reach should be noticed at load, not at the first call.
pub fn resolve_host(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("host '{host}' does not resolve: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("host '{host}' does not resolve to any address"))
}

/// `transport = "tcp,udp"`: the allowed transports in order.
fn transport_list(text: &str) -> Result<Vec<Transport>, String> {
    let mut out = Vec::new();
    for word in text.split(',').map(str::trim) {
        let t = Transport::parse(word)
            .ok_or_else(|| format!("unknown transport '{word}' (udp or tcp)"))?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Asterisk's default codec list when `allow` is empty.
pub const DEFAULT_CODECS: [Codec; 2] = [Codec::PCMU, Codec::PCMA];

fn codec_list(allow: &[String], disallow: &[String]) -> Result<Vec<Codec>, String> {
    let mut out: Vec<Codec> = if allow.is_empty() {
        DEFAULT_CODECS.to_vec()
    } else {
        Vec::new()
    };
    for a in allow {
        if a == "all" {
            out = sirius_abi::CODEC_TABLE
                .iter()
                .enumerate()
                .map(|(i, _)| Codec(i as u8))
                .collect();
            continue;
        }
        let c = Codec::from_name(a).ok_or_else(|| format!("unknown codec '{a}' in allow"))?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    for d in disallow {
        if d == "all" {
            continue; // `disallow = ["all"]` with an explicit allow list is Asterisk's idiom
        }
        let c = Codec::from_name(d).ok_or_else(|| format!("unknown codec '{d}' in disallow"))?;
        out.retain(|x| *x != c);
    }
    Ok(out)
}

impl SipConfig {
    /// Loads and checks a file.
    pub fn load(path: &Path) -> Result<(SipConfig, Vec<Peer>), SipConfigError> {
        let cfg: SipConfig = sirius_conf::load_toml(path)?;
        let g = &cfg.general;
        if g.rtpstart >= g.rtpend {
            return Err(SipConfigError::General {
                file: path.display().to_string(),
                reason: format!("rtpstart {} must be below rtpend {}", g.rtpstart, g.rtpend),
            });
        }
        check_timers(&g.timers())
            .and_then(|_| check_vmexten(&g.vmexten))
            .map_err(|reason| SipConfigError::General {
                file: path.display().to_string(),
                reason,
            })?;
        let peers = cfg.resolve_peers(&path.display().to_string())?;
        Ok((cfg, peers))
    }

    /// Checks every peer and resolves its settings.
    pub fn resolve_peers(&self, file: &str) -> Result<Vec<Peer>, SipConfigError> {
        let err = |peer: &str, reason: String| SipConfigError::Peer {
            file: file.into(),
            peer: peer.into(),
            reason,
        };
        let mut out = Vec::new();
        for (name, p) in &self.peers {
            let host = p.host.as_deref().unwrap_or("dynamic");
            let (dynamic, addr) = if host.eq_ignore_ascii_case("dynamic") {
                (true, None)
            } else {
                let port = p.port.unwrap_or(5060);
                (
                    false,
                    Some(resolve_host(host, port).map_err(|e| err(name, e))?),
                )
            };
            let transports = transport_list(p.transport.as_deref().unwrap_or("udp"))
                .map_err(|e| err(name, e))?;
            let username = p.defaultuser.clone().unwrap_or_else(|| name.clone());
            let ha1 = match (&p.secret, &p.md5secret) {
                (_, Some(h)) => Some(h.to_ascii_lowercase()),
                (Some(s), None) => Some(sirius_sip::auth::ha1(&username, &self.general.realm, s)),
                (None, None) => None,
            };
            let codecs = codec_list(&p.allow, &p.disallow).map_err(|e| err(name, e))?;
            let acl = Acl::parse(&p.permit, &p.deny).map_err(|e| err(name, e))?;
            let dtmfmode = p.dtmfmode.clone().unwrap_or_else(|| "rfc2833".into());
            if !["rfc2833", "info", "shortinfo", "inband", "auto"].contains(&dtmfmode.as_str()) {
                return Err(err(name, format!("unknown dtmfmode '{dtmfmode}'")));
            }
            for n in &p.nat {
                if ![
                    "no",
                    "force_rport",
                    "comedia",
                    "auto_force_rport",
                    "auto_comedia",
                ]
                .contains(&n.as_str())
                {
                    return Err(err(name, format!("unknown nat setting '{n}'")));
                }
            }
            if let Some(m) = &p.mailbox {
                let bad = |b: &str| {
                    b.is_empty()
                        || b.chars().any(char::is_whitespace)
                        || b.starts_with('@')
                        || b.ends_with('@')
                        || b.matches('@').count() > 1
                };
                if m.split(',').any(bad) {
                    return Err(err(
                        name,
                        format!("mailbox '{m}' is not box[@context][,box[@context]…]"),
                    ));
                }
                // `1234` and `1234@default` are one mailbox: named twice, its
                // messages would count twice.
                let mut ids: Vec<String> = m
                    .split(',')
                    .map(|b| match b.contains('@') {
                        true => b.to_string(),
                        false => format!("{b}@default"),
                    })
                    .collect();
                ids.sort();
                if ids.windows(2).any(|w| w[0] == w[1]) {
                    return Err(err(name, format!("mailbox '{m}' names a mailbox twice")));
                }
            }
            if let Some(v) = &p.vmexten {
                check_vmexten(v).map_err(|e| err(name, e))?;
            }
            if let Some(a) = &p.accountcode {
                if a.chars().count() > 80 || a.chars().any(char::is_control) {
                    let why = format!(
                        "accountcode '{a}' is longer than 80 characters or has control characters"
                    );
                    return Err(err(name, why));
                }
            }
            if p.shared_appearances > crate::sca::MAX_APPEARANCES {
                return Err(err(
                    name,
                    format!(
                        "shared-appearances must be 0 to {}",
                        crate::sca::MAX_APPEARANCES
                    ),
                ));
            }
            if p.max_contacts
                .is_some_and(|n| !(1..=MAX_CONTACTS).contains(&n))
            {
                return Err(err(
                    name,
                    format!("max-contacts must be 1 to {MAX_CONTACTS}"),
                ));
            }
            for i in &p.insecure {
                if !["port", "invite"].contains(&i.as_str()) {
                    return Err(err(name, format!("unknown insecure setting '{i}'")));
                }
            }
            let g = self.general.timers();
            let timers = Timers {
                mode: p.session_timers.unwrap_or(g.mode),
                expires: p.session_expires.unwrap_or(g.expires),
                minse: p.session_minse.unwrap_or(g.minse),
                refresher: p.session_refresher.unwrap_or(g.refresher),
                rtptimeout: p.rtptimeout.unwrap_or(g.rtptimeout),
                rtpholdtimeout: p.rtpholdtimeout.unwrap_or(g.rtpholdtimeout),
            };
            check_timers(&timers).map_err(|e| err(name, e))?;
            out.push(Peer {
                name: name.clone(),
                kind: p.kind,
                dynamic,
                addr,
                transports,
                username,
                ha1,
                outbound_secret: p.remotesecret.clone().or_else(|| p.secret.clone()),
                context: p
                    .context
                    .clone()
                    .unwrap_or_else(|| self.general.context.clone()),
                call_limit: p.call_limit,
                qualify_maxms: p.qualify.maxms(),
                codecs,
                force_rport: p.nat.iter().any(|n| n.contains("force_rport")),
                comedia: p.nat.iter().any(|n| n.contains("comedia")),
                insecure_invite: p.insecure.iter().any(|i| i == "invite"),
                insecure_port: p.insecure.iter().any(|i| i == "port"),
                dtmfmode,
                acl,
                callerid: p.callerid.clone(),
                description: p.description.clone().unwrap_or_default(),
                timers,
                allowtransfer: p.allowtransfer.unwrap_or(self.general.allowtransfer),
                allowsubscribe: p.allowsubscribe.unwrap_or(self.general.allowsubscribe),
                subscribecontext: p
                    .subscribecontext
                    .clone()
                    .or_else(|| self.general.subscribecontext.clone())
                    .or_else(|| p.context.clone())
                    .unwrap_or_else(|| self.general.context.clone()),
                mailbox: p.mailbox.clone(),
                vmexten: p
                    .vmexten
                    .clone()
                    .unwrap_or_else(|| self.general.vmexten.clone()),
                max_contacts: p.max_contacts.unwrap_or(1),
                shared_appearances: p.shared_appearances,
                accountcode: p.accountcode.clone().unwrap_or_default(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
