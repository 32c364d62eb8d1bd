//! `channel originate`: the PBX places a call and, once it is answered,
//! runs the dialplan (or one application) on it — Asterisk's
//! `ast_pbx_outgoing_exten` / `ast_pbx_outgoing_app`.

use crate::core::Core;
use sirius_abi::{Capabilities, Cause, ChannelId, Codec};
use std::sync::Arc;
use std::time::Duration;

/// How long the far end may ring before the originated call is given up
/// (Asterisk's CLI originate waits 30 s).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What runs on the originated channel once it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginateTarget {
    /// The dialplan at `exten@context`, priority 1.
    Extension {
        /// Context.
        context: String,
        /// Extension.
        exten: String,
    },
    /// One application with its arguments; the call ends when it returns.
    Application {
        /// Application name (`Echo`, `Wait`…).
        app: String,
        /// Its argument string.
        data: String,
    },
}

impl Core {
    /// Requests `tech/resource`, calls it, and in the background waits (up to
    /// [`ANSWER_TIMEOUT`]) for the answer, then starts `target` on it.
    /// Returns the new channel once the call is placed; a refusal is the
    /// technology's cause.
    pub fn originate(
        self: &Arc<Self>,
        tech: &str,
        resource: &str,
        target: OriginateTarget,
    ) -> Result<ChannelId, Cause> {
        // What runs once it answers needs the PBX engine, and so does the
        // wait for the answer (a task on its pool, not a thread per call).
        let Some(engine) = self.pbx.read().clone() else {
            log::warn!("No dialplan is loaded: cannot originate a call to {tech}/{resource}");
            return Err(Cause::NO_ROUTE_DESTINATION);
        };
        let caps = Capabilities::of(&[Codec::PCMU, Codec::PCMA]);
        let chan = self.request(tech, caps, resource, None)?;
        if let Err(c) = self.call(chan, resource, ANSWER_TIMEOUT.as_millis() as u32) {
            let _ = self.hangup(chan, c);
            return Err(c);
        }
        engine.await_answer(self, chan, target);
        Ok(chan)
    }

    /// An originated call was answered (`answered`), or not within
    /// [`ANSWER_TIMEOUT`], or failed: start `target` on it, or end it.
    pub fn originate_answered(
        self: &Arc<Self>,
        chan: ChannelId,
        answered: bool,
        target: OriginateTarget,
    ) {
        let name = self.channels.get(chan).map(|c| c.name);
        if !answered {
            match name {
                Some(name) => {
                    log::info!("Channel {name} was never answered.");
                    let _ = self.hangup(chan, Cause::NO_ANSWER);
                }
                None => log::info!(
                    "Originated call failed (cause {})",
                    self.channels.ended_cause(chan).map_or(0, |c| c.0)
                ),
            }
            return;
        }
        let started = match target {
            OriginateTarget::Extension { context, exten } => {
                self.channels.update(chan, |c| {
                    c.context = context;
                    c.exten = exten;
                    c.priority = 1;
                });
                self.pbx_start(chan)
            }
            OriginateTarget::Application { app, data } => self.pbx_run_app(chan, &app, &data),
        };
        if let Err(c) = started {
            log::warn!(
                "Unable to run the dialplan on originated channel {}: {c}",
                name.unwrap_or_default()
            );
            let _ = self.hangup(chan, c);
        }
    }
}
