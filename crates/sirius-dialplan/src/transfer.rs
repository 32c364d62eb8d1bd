//! `Transfer([Tech/]destination)`: asks the channel's technology to have
//! its far end call the destination (a SIP phone gets a REFER), as
//! Asterisk's app_transfer does, and sets `TRANSFERSTATUS`:
//!
//! ```text
//!   Tech/ given and not the channel's ──────────────▶ FAILURE
//!   the technology cannot transfer ─────────────────▶ UNSUPPORTED
//!   asked; the far end accepts (SIP 202) ───────────▶ SUCCESS
//!   it refuses, or says nothing within 30 s ────────▶ FAILURE
//! ```
//!
//! The wait holds no thread: the plan waits on the channel's changes, and
//! the technology's answer ([`sirius_core::Core::transfer_result`]) is one.
//! After SUCCESS the technology ends the call once the far end reports the
//! transfer made (chan_sip: a NOTIFY with a final 2xx), so the dialplan's
//! next steps usually find the channel gone.

use crate::exec::{alive, set_var, Next, Watch};
use sirius_abi::{Cause, ChannelId};
use sirius_core::Core;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the far end has to accept or refuse.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// The application.
pub(crate) async fn transfer(core: &Arc<Core>, chan: ChannelId, args: &[&str]) -> Next {
    let status = status(core, chan, args.first().map_or("", |a| a.trim())).await;
    set_var(core, chan, "TRANSFERSTATUS", status);
    match alive(core, chan) {
        true => Next::Continue,
        false => Next::Stop,
    }
}

async fn status(core: &Arc<Core>, chan: ChannelId, dest: &str) -> &'static str {
    if dest.is_empty() {
        log::warn!("Transfer requires an argument ([Tech/]destination)");
        return "FAILURE";
    }
    let Some(tech) = core.channels.read(chan, |c| c.tech.clone()) else {
        return "FAILURE";
    };
    let dest = match dest.split_once('/') {
        Some((t, rest)) if t.eq_ignore_ascii_case(&tech) => rest,
        Some((t, _)) => {
            log::warn!("Transfer to a {t} destination asked of a {tech} channel");
            return "FAILURE";
        }
        None => dest,
    };
    match core.transfer(chan, dest) {
        Ok(()) => {}
        Err(c) if c == Cause::FACILITY_NOT_IMPLEMENTED => return "UNSUPPORTED",
        Err(_) => return "FAILURE",
    }
    let watch = Watch::new(core, vec![chan]);
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        match core.channels.read(chan, |c| c.transfer) {
            Some(Some(Ok(()))) => return "SUCCESS",
            Some(Some(Err(_))) => return "FAILURE",
            // Gone meanwhile: the far end ended the call, transferred.
            None => return "SUCCESS",
            Some(None) if Instant::now() >= deadline => return "FAILURE",
            Some(None) => watch.changed(deadline).await,
        }
    }
}
