//! # sirius-prometheus
//!
//! Metrics for Prometheus at `http://<bindaddr>:<bindport>/<uri>`
//! (`http://127.0.0.1:8088/metrics` with the sample files), as Asterisk 20's
//! res_prometheus serves them from its built-in HTTP server: the core's
//! channels, calls, bridges and uptime ([`core_metrics`]) under Asterisk's
//! names, and what each plugin reports through the plugin interface
//! (`Plugin::metrics`: chan_sip's endpoints, registrations, transactions,
//! responses, RTP). Everything is gathered when scraped: between scrapes
//! this costs the PBX nothing but a once-a-second sample of the call counter.

pub mod config;
pub mod core_metrics;
pub mod render;
pub mod server;

use sirius_core::Core;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the endpoint did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// http.toml or prometheus.toml is wrong.
    #[error(transparent)]
    Config(#[from] sirius_conf::ConfigError),
    /// The address could not be bound.
    #[error("HTTP server: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads http.toml and prometheus.toml and, when the server is enabled,
/// serves the metrics on `handle`'s runtime. Returns the address listened
/// on (`None`: disabled).
pub fn start(
    core: &Arc<Core>,
    handle: &tokio::runtime::Handle,
) -> Result<Option<SocketAddr>, StartError> {
    let (http, prometheus) = config::load(&core.paths.config_dir)?;
    if !http.enabled {
        return Ok(None);
    }
    let want = SocketAddr::new(http.bindaddr, http.bindport);
    let std_listener = std::net::TcpListener::bind(want)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| StartError::Bind { addr: want, source })?;
    let addr = std_listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr: want, source })?;
    let _guard = handle.enter();
    let listener = tokio::net::TcpListener::from_std(std_listener)
        .map_err(|source| StartError::Bind { addr: want, source })?;
    let rate = Arc::new(core_metrics::CallRate::default());
    {
        let (core, rate) = (Arc::downgrade(core), rate.clone());
        handle.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(core) = core.upgrade() else { return };
                rate.sample(Instant::now(), core.channels.calls_processed());
            }
        });
    }
    let core_metrics = prometheus.core_metrics_enabled;
    let uri = prometheus.uri.clone();
    let enabled = prometheus.enabled;
    let site = Arc::new(server::Site::new(http, prometheus));
    let weak = Arc::downgrade(core);
    let page = move || {
        let (weak, rate) = (weak.clone(), rate.clone());
        async move {
            // Plugins are asked under their own locks: off the runtime's threads.
            // A plugin that panicked while gathering: None, answered 500.
            tokio::task::spawn_blocking(move || {
                let Some(core) = weak.upgrade() else {
                    return String::new();
                };
                let started = Instant::now();
                let mut all = core.plugin_metrics();
                if core_metrics {
                    let mut own = core_metrics::gather(&core, &rate, started);
                    own.append(&mut all);
                    all = own;
                }
                render::render(&all)
            })
            .await
            .ok()
        }
    };
    handle.spawn(server::serve(listener, site, page));
    if enabled {
        log::info!("Prometheus metrics at http://{addr}/{uri}");
    } else {
        log::info!("HTTP server listening on {addr} (prometheus.toml: metrics disabled)");
    }
    Ok(Some(addr))
}
