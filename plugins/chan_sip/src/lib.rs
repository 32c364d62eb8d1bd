//! # chan_sip — the SIP channel technology
//!
//! A cdylib loaded by the Sirius core. Like Asterisk's chan_sip it owns a
//! "monitor": here a small tokio runtime of its own (the host's runtime is not
//! visible from a plugin) with the UDP socket, the transaction layer of
//! `sirius-sip` and the timers. The core owns the channels; this plugin keeps
//! the SIP side of each call keyed by the core's channel id.
//!
//! State of this driver (see the issue notes for what comes next):
//! configuration and reload, the UDP and TCP transports, transaction handling with the
//! validation answers (400/415/416/420/501/505), OPTIONS, the registrar with
//! digest auth and persisted bindings, inbound INVITE authentication and
//! hand-off to the dialplan, the channel technology's request checks, and the
//! `sip show …` console commands.

pub mod acl;
pub mod causes;
pub mod commands;
pub mod config;
pub mod driver;
pub mod endpoint;
pub mod epoll;
pub mod frames;
pub mod host_env;
pub mod inuse;
pub mod lag;
pub mod metrics;
pub mod mwi;
pub mod outbound;
pub mod outbox;
pub mod registrar;
pub mod relay;
pub mod rfc4733;
pub mod rtp_ports;
pub mod sca;
pub mod session;
pub mod shards;
pub mod show;
pub mod stamped;
pub mod tech;
pub mod tones;
pub mod transport;

use config::{Peer, SipConfig};
use parking_lot::{Mutex, RwLock};
use registrar::Registrar;
use sirius_abi::guest::{declined, failed, ChannelDriver, Host, PluginImpl};
use sirius_abi::{CommandSpec, LoadError, SupportLevel};
use sirius_media::io::IoContext;
use sirius_sip::transaction::Transport;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// mimalloc instead of glibc's malloc for this plugin: parsing and building
/// SIP messages on the monitor thread is most of the PBX's allocation, and
/// glibc's malloc and free were a sixth of that thread's time under load
/// (2,000 calls/s took a quarter less CPU with mimalloc). A cdylib has its
/// own global allocator; only abi_stable types, which carry their own
/// deallocators, cross into the core. The daemon keeps glibc's: with
/// mimalloc there too, the CPU saved was within noise and a held call took
/// 17.3 KiB instead of 13.8 (size-class rounding on every channel string).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

sirius_abi::export_plugin! {
    name: "chan_sip",
    description: "Session Initiation Protocol (SIP)",
    support: SupportLevel::Core,
    load: load,
}

/// Unix time in seconds (the plugin is the IO layer; sirius-sip never reads clocks).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Configuration in force: replaced as a whole on reload.
pub struct Running {
    /// The parsed file.
    pub cfg: SipConfig,
    /// Peers by name.
    pub peers: HashMap<String, Peer>,
}

/// What the monitor, the console commands and the channel technology share.
pub struct Shared {
    /// The host's services.
    pub host: Host,
    /// `<config dir>/sip.toml`.
    pub config_path: PathBuf,
    /// Configuration in force.
    pub running: RwLock<Arc<Running>>,
    /// Registrar (bindings, digest, failure counters).
    pub registrar: Mutex<Registrar>,
    /// The address the UDP socket is bound to.
    pub bound: SocketAddr,
    /// The address the TCP listener is bound to (`tcpenable`).
    pub tcp_bound: Option<SocketAddr>,
    /// `sip set debug on` (or `ip`/`peer`, with [`Shared::debug_addr`]).
    pub debug: AtomicBool,
    /// `sip set debug ip|peer`: trace only traffic with this address (and this
    /// port when one was given), as Asterisk's `sip_debug_test_addr` does.
    pub debug_addr: Mutex<Option<(std::net::IpAddr, Option<u16>)>>,
    /// Set when the module stops.
    pub stopping: AtomicBool,
    /// Qualify state per peer.
    pub qualify: Mutex<outbound::QualifyMap>,
    /// Outbound registrations.
    pub outbound: Mutex<Vec<outbound::OutboundReg>>,
    /// The endpoint's shards: their command queues, and which channel
    /// lives on which.
    pub shards: shards::Shards,
    /// Calls in progress per peer, across the shards.
    pub in_use: Arc<inuse::InUse>,
    /// Peers' mailbox counts and message-summary subscriptions (`mwi.rs`).
    pub mwi: mwi::PeerMwi,
    /// Shared lines' appearances in use (`sca`).
    pub lines: sca::Lines,
    /// PUBLISHed event state, by entity-tag (`sca::publish`).
    pub publications: sca::Publications,
    /// RTP packets relayed by native bridges since load.
    pub rtp_relayed: Arc<std::sync::atomic::AtomicU64>,
    /// RTCP packets relayed by native bridges since load.
    pub rtcp_relayed: Arc<std::sync::atomic::AtomicU64>,
    /// How late each shard's event loop runs (`sip show lag`), by shard.
    pub lag: Vec<Mutex<lag::LagMeter>>,
    /// How long the datagrams each shard handled had waited since the
    /// kernel received them (`sip show lag`), by shard.
    pub wait: Vec<Mutex<lag::LagMeter>>,
    /// RTP/RTCP port pairs for calls.
    pub rtp_ports: rtp_ports::RtpPorts,
    /// Counters for the Prometheus endpoint (`metrics.rs`).
    pub stats: metrics::SipStats,
}

impl Shared {
    /// An RTP socket and its RTCP socket for a new call, from the range in force.
    pub fn bind_media(&self) -> std::io::Result<(rtp_ports::RtpSocket, rtp_ports::RtpSocket)> {
        let g = &self.running().cfg.general;
        self.rtp_ports
            .bind_pair(self.bound.ip(), g.rtpstart, g.rtpend)
    }

    /// A request's arrival as the security log names it: our address on
    /// that transport.
    pub fn arrival(
        &self,
        source: std::net::SocketAddr,
        transport: sirius_sip::transaction::Transport,
    ) -> registrar::Arrival {
        let local = match transport {
            sirius_sip::transaction::Transport::Tcp => self.tcp_bound.unwrap_or(self.bound),
            sirius_sip::transaction::Transport::Udp => self.bound,
        };
        registrar::Arrival {
            source,
            local,
            transport,
        }
    }
}

impl Shared {
    /// Peer `name`'s device state (`sip_devicestate`), the one answer for
    /// the core's question and for what the endpoint pushes: its legs
    /// first (held, ringing, busy at its call-limit, in use), then whether
    /// it can be reached (a dynamic peer unregistered, or a qualified one
    /// that stopped answering, is unavailable; a lamp shows it offline).
    /// `Invalid` for no such peer.
    pub fn device_state(&self, name: &str) -> sirius_abi::DeviceState {
        use sirius_abi::DeviceState;
        let running = self.running();
        let Some(p) = running.peers.get(name) else {
            return DeviceState::Invalid;
        };
        if let Some(state) = self.in_use.busy_state(name, p.call_limit) {
            return state;
        }
        if p.dynamic && self.registrar.lock().binding(name).is_none() {
            return DeviceState::Unavailable;
        }
        let unreachable = self
            .qualify
            .lock()
            .get(name)
            .is_some_and(|q| q.status() == sirius_sip::qualify::PeerStatus::Unreachable);
        match unreachable {
            true => DeviceState::Unavailable,
            false => DeviceState::NotInUse,
        }
    }
}

impl Shared {
    /// The configuration in force.
    pub fn running(&self) -> Arc<Running> {
        self.running.read().clone()
    }

    /// Our address on a transport: what Via sent-by and Contact carry. TCP
    /// falls back to the UDP address when it is off (callers only ask for
    /// TCP once a peer or a registration chose it, which needs it on).
    pub fn local(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tcp => self.tcp_bound.unwrap_or(self.bound),
            Transport::Udp => self.bound,
        }
    }

    /// Our Contact URI on a transport, `sip:user@host:port;transport=tcp`
    /// (no user part when `user` is empty).
    pub fn contact_uri(&self, user: &str, transport: Transport) -> String {
        let at = if user.is_empty() { "" } else { "@" };
        format!(
            "sip:{user}{at}{}{}",
            self.local(transport),
            transport.uri_param()
        )
    }

    /// A top Via for a request we send on `transport`, with a new branch.
    pub fn via(&self, transport: Transport) -> sirius_sip::message::Via {
        let local = self.local(transport);
        let host = match local.ip() {
            std::net::IpAddr::V4(a) => sirius_sip::message::Host::V4(a),
            std::net::IpAddr::V6(a) => sirius_sip::message::Host::V6(a),
        };
        let branch = sirius_sip::message::build::new_branch();
        sirius_sip::message::Via::new(transport.as_str(), host, Some(local.port()), &branch)
    }

    /// The top Via of a request that starts a transaction outside a dialog
    /// (INVITE, OPTIONS and their retries), asking for `rport` (RFC 3581) so
    /// that answers find us behind NAT.
    pub fn via_rport(&self, transport: Transport) -> String {
        format!("{};rport", self.via(transport))
    }

    /// Whether a message to or from `addr` goes to the SIP trace.
    pub fn debug_for(&self, addr: SocketAddr) -> bool {
        if !self.debug.load(Ordering::Relaxed) {
            return false;
        }
        match *self.debug_addr.lock() {
            None => true,
            Some((ip, port)) => ip == addr.ip() && port.is_none_or(|p| p == addr.port()),
        }
    }
}

struct ChanSip {
    shared: Arc<Shared>,
    /// One runtime (one thread) per shard.
    io: Mutex<Vec<IoContext>>,
    stop: tokio::sync::watch::Sender<bool>,
    tech: Arc<tech::SipTech>,
}

fn running_from(path: &std::path::Path) -> Result<Running, String> {
    let (cfg, peers) = SipConfig::load(path).map_err(|e| e.to_string())?;
    Ok(Running {
        cfg,
        peers: peers.into_iter().map(|p| (p.name.clone(), p)).collect(),
    })
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // The default receive buffer drops datagrams at a few thousand calls per
    // second. The kernel charges a loopback datagram of 600 bytes about
    // 1,280 against the buffer, so 8 MB (what SO_RCVBUF gives when
    // net.core.rmem_max allows 4 MB) holds 6,500 datagrams: 120 ms of input
    // at 8,000 calls/s, less than admission control's `maxlag` lets the
    // queue wait before it refuses calls, so the kernel dropped ACKs and
    // BYEs before Sirius refused a call (issue #11). With CAP_NET_ADMIN
    // (root) SO_RCVBUFFORCE passes rmem_max, as Kamailio's and OpenSIPS's
    // buffer probing would with a raised limit; without it, the largest
    // the limit allows.
    // (The kernel doubles the figure for its bookkeeping.)
    let forced =
        stamped::set_option(std::os::fd::AsFd::as_fd(&s), libc::SO_RCVBUFFORCE, 32 << 20).is_ok();
    if !forced {
        for size in [8 << 20, 4 << 20, 1 << 20] {
            if s.set_recv_buffer_size(size).is_ok() {
                break;
            }
        }
    }
    if let Ok(size) = s.recv_buffer_size() {
        if size < 8 << 20 {
            log::warn!(
                "SIP UDP receive buffer is {} KB (net.core.rmem_max); under overload the kernel may drop datagrams before maxlag refuses calls",
                size >> 10
            );
        }
    }
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    // Each datagram's arrival time: how long it waited is what admission
    // control reads under overload (stamped.rs says why).
    if let Err(e) = stamped::enable(std::os::fd::AsFd::as_fd(&s)) {
        log::warn!("SO_TIMESTAMPNS on the SIP socket: {e}; admission control sees only timer lag");
    }
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn load(host: Host) -> Result<Box<dyn PluginImpl>, LoadError> {
    let config_path = host.config_dir().join("sip.toml");
    if !config_path.exists() {
        return Err(declined(format!("no {}", config_path.display())));
    }
    let running = running_from(&config_path).map_err(failed)?;
    let bind = running.cfg.general.udpbindaddr;
    let std_socket = bind_udp(bind).map_err(|e| failed(format!("cannot bind UDP {bind}: {e}")))?;
    let bound = std_socket.local_addr().map_err(|e| failed(e.to_string()))?;
    let threads = match running.cfg.general.sipthreads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    }
    .min(64);
    // One runtime per shard, each a thread with its own reactor, and each
    // its own descriptor of the one UDP socket (crate::shards).
    let mut ios = Vec::with_capacity(threads);
    for k in 0..threads {
        let name = if threads == 1 {
            "chan_sip".to_string()
        } else {
            format!("chan_sip{k}")
        };
        ios.push(
            IoContext::new(&name, 1)
                .map_err(|e| failed(format!("cannot start the SIP monitor: {e}")))?,
        );
    }
    let mut sockets = Vec::with_capacity(threads);
    for io in &ios {
        let fd = std_socket
            .try_clone()
            .map_err(|e| failed(format!("UDP socket: {e}")))?;
        sockets.push(
            io.block_on(async { tokio::net::UdpSocket::from_std(fd) })
                .map_err(|e| failed(format!("UDP socket: {e}")))?,
        );
    }
    let listener = if running.cfg.general.tcpenable {
        let addr = running.cfg.general.tcpbindaddr.unwrap_or(bound);
        let l = ios[0]
            .block_on(async { tokio::net::TcpListener::bind(addr).await })
            .map_err(|e| failed(format!("cannot bind TCP {addr}: {e}")))?;
        Some(l)
    } else {
        None
    };
    let tcp_bound = match &listener {
        Some(l) => Some(l.local_addr().map_err(|e| failed(e.to_string()))?),
        None => None,
    };
    let store = host.data_dir().join("registrations.json");
    let registrar = Registrar::new(&running.cfg.general.realm, Some(store), unix_now());
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| tokio::sync::mpsc::unbounded_channel())
        .unzip();
    let now = std::time::Instant::now();
    let shared = Arc::new(Shared {
        host,
        config_path,
        running: RwLock::new(Arc::new(running)),
        registrar: Mutex::new(registrar),
        bound,
        tcp_bound,
        debug: AtomicBool::new(false),
        debug_addr: Mutex::new(None),
        stopping: AtomicBool::new(false),
        qualify: Mutex::new(outbound::QualifyMap::new()),
        outbound: Mutex::new(Vec::new()),
        shards: shards::Shards::new(senders),
        in_use: Arc::new(inuse::InUse::default()),
        mwi: Default::default(),
        lines: Default::default(),
        publications: Default::default(),
        rtp_relayed: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        rtcp_relayed: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        lag: (0..threads)
            .map(|_| Mutex::new(lag::LagMeter::new(now)))
            .collect(),
        wait: (0..threads)
            .map(|_| Mutex::new(lag::LagMeter::new(now)))
            .collect(),
        rtp_ports: rtp_ports::RtpPorts::new(),
        stats: metrics::SipStats::new(threads),
    });
    driver::reconcile(&shared, std::time::Instant::now());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (tcp_tx, tcp_rx) = tokio::sync::mpsc::unbounded_channel();
    let tcp = Arc::new(Mutex::new(transport::TcpConnections::new(tcp_tx)));
    let mut listener = listener;
    let mut tcp_rx = Some(tcp_rx);
    for (k, ((io, socket), commands)) in ios.iter().zip(sockets).zip(receivers).enumerate() {
        let shard = driver::ShardIo {
            home: shards::Home {
                index: k,
                count: threads,
            },
            socket,
            listener: listener.take(),
            tcp: tcp.clone(),
            tcp_events: tcp_rx.take(),
        };
        let driver = io.spawn(driver::run(
            shared.clone(),
            shard,
            stop_rx.clone(),
            commands,
        ));
        // A driver is a part of the module nothing replaces: if one dies (a
        // panic in the endpoint or a socket it cannot live without), the
        // core must stop sending calls here at once rather than time each
        // one out.
        let watch_host = shared.host.clone();
        let stop_rx = stop_rx.clone();
        io.spawn(async move {
            let ended = driver.await;
            if *stop_rx.borrow() {
                return; // unload: an orderly stop
            }
            let why = match ended {
                Err(e) if e.is_panic() => format!("the SIP driver (thread {k}) panicked"),
                Err(e) => format!("the SIP driver (thread {k}) was cancelled: {e}"),
                Ok(()) => format!("the SIP driver (thread {k}) stopped"),
            };
            log::error!("{why}; chan_sip can take no more calls");
            watch_host.plugin_failed(&why);
        });
    }
    log::info!("SIP listening on UDP {bound}");
    if let Some(t) = tcp_bound {
        log::info!("SIP listening on TCP {t}");
    }
    let tech = Arc::new(tech::SipTech::new(shared.clone()));
    Ok(Box::new(ChanSip {
        shared,
        io: Mutex::new(ios),
        stop,
        tech,
    }))
}

impl PluginImpl for ChanSip {
    fn channel_driver(&self) -> Option<Arc<dyn ChannelDriver>> {
        Some(self.tech.clone())
    }

    fn commands(&self) -> Vec<CommandSpec> {
        commands::specs()
    }

    fn run_command(&self, args: &[String]) -> Result<String, String> {
        commands::run(&self.shared, args, || self.reload())
    }

    fn complete(&self, args: &[String], pos: usize) -> Vec<String> {
        commands::complete(&self.shared, args, pos)
    }

    fn metrics(&self) -> Vec<sirius_abi::metrics::Metric> {
        metrics::gather(&self.shared)
    }

    fn run_command_json(&self, args: &[String]) -> Result<String, String> {
        show::json(&self.shared, args)
    }

    fn reload(&self) -> Result<String, String> {
        let new = running_from(&self.shared.config_path)?;
        let old = &self.shared.running().cfg.general;
        if new.cfg.general.udpbindaddr != old.udpbindaddr
            || new.cfg.general.tcpenable != old.tcpenable
            || new.cfg.general.tcpbindaddr != old.tcpbindaddr
        {
            log::warn!("bind address changes take effect when chan_sip is loaded again");
        }
        if new.cfg.general.sipthreads != old.sipthreads {
            log::warn!("sipthreads takes effect when chan_sip is loaded again");
        }
        self.shared
            .registrar
            .lock()
            .set_realm(&new.cfg.general.realm);
        let n = new.peers.len();
        *self.shared.running.write() = Arc::new(new);
        // Registrations and pokes follow the new file: lines that left are
        // unregistered, new ones start, qualify follows the peers.
        let _ = self.shared.shards.send(0, driver::Command::Reconcile);
        Ok(format!(
            "Reloaded {} ({n} peers)",
            self.shared.config_path.display()
        ))
    }

    fn unload(&self, force: bool) -> Result<(), String> {
        let calls = self.tech.calls();
        if calls > 0 && !force {
            return Err(format!("{calls} call(s) in progress"));
        }
        self.shared.stopping.store(true, Ordering::SeqCst);
        // The monitor hangs up every call, inbound and outbound, then unregisters
        // (Expires: 0) before it stops; bounded wait.
        self.shared
            .shards
            .gather(driver::Command::Shutdown, Duration::from_secs(3));
        let _ = self.stop.send(true);
        for io in self.io.lock().drain(..) {
            io.shutdown(Duration::from_secs(2));
        }
        // Bindings changed in the last moments are on disk before the
        // module is gone (the registrar writes them on a thread of its own).
        self.shared.registrar.lock().flush();
        log::info!("chan_sip stopped");
        Ok(())
    }

    fn use_count(&self) -> u32 {
        self.tech.calls()
    }
}
