//! # sirius-manager
//!
//! AMI, the Asterisk Manager Interface, on TCP 5038: what dashboards,
//! click-to-dial tools and call-centre software speak to a PBX. Configured
//! like Asterisk's manager.conf (`manager.toml`, [`config`]); the banner,
//! the framing, the actions and the events are Asterisk 16+'s, so the
//! PyPI clients (panoramisk, pyst2) work unchanged.
//!
//! * [`message`]: the wire format, bounded (line length, headers);
//! * [`session`]: one connection's state machine (login, MD5 challenge,
//!   permissions), without IO;
//! * [`actions`], [`sip`]: what each action answers;
//! * [`events`]: the core's events as AMI writes them;
//! * [`server`]: the listener, a task per connection, the event fan-out;
//! * [`backend`]: what actions ask of the PBX, behind a trait so the
//!   session is tested without a core.
//!
//! The crate sits beside the core, not in it: the core only publishes
//! events (and builds none while nobody listens).

pub mod acl;
pub mod actions;
pub mod backend;
pub mod config;
pub mod events;
pub mod message;
pub mod perms;
pub mod server;
pub mod session;
pub mod sip;

pub use backend::{Backend, CommandRunner, CoreBackend};
pub use config::{ConfigError, Settings};
pub use server::Manager;

use sirius_core::io::IoContext;
use sirius_core::Core;
use std::sync::Arc;

/// The name the manager is registered under in the core (`Core::addon`).
pub const ADDON: &str = "manager";

/// Why AMI could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// manager.toml is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The port could not be bound.
    #[error("AMI cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads `manager.toml` from the core's configuration directory and, when
/// `enabled`, listens on its runtime `io`. `run` runs console commands for
/// the `Command` action. `Ok(None)`: AMI is disabled.
pub fn start(
    core: &Arc<Core>,
    io: &IoContext,
    run: CommandRunner,
) -> Result<Option<Arc<Manager>>, StartError> {
    let settings = Settings::load(&core.paths.config_dir.join("manager.toml"))?;
    if !settings.general.enabled {
        log::debug!("AMI is disabled (manager.toml: [general] enabled)");
        return Ok(None);
    }
    let addr = settings.general.bind;
    let backend: Arc<dyn Backend> = Arc::new(CoreBackend {
        core: core.clone(),
        run,
    });
    let (mgr, listener) = io
        .block_on(Manager::bind(Arc::new(settings), core.clone(), backend))
        .map_err(|source| StartError::Bind { addr, source })?;
    log::info!(
        "Manager (AMI) listening on {} ({} users)",
        mgr.local,
        mgr.settings.users.len()
    );
    core.set_addon(ADDON, mgr.clone());
    io.spawn(mgr.clone().serve(listener));
    Ok(Some(mgr))
}
