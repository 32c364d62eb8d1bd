//! The dialplan as the core's PBX engine: holds the dialplan in force, swaps it
//! atomically on `dialplan reload` (a broken file is refused and the old
//! dialplan stays), decides where a new call goes, and owns the pool of
//! worker threads every call's dialplan runs on ([`crate::pool`]).

use crate::dialplan::Dialplan;
use crate::pool::Pool;
use parking_lot::RwLock;
use sirius_abi::{Cause, ChannelId};
use sirius_core::{Core, PbxEngine};
use std::path::PathBuf;
use std::sync::Arc;

/// The dialplan engine.
pub struct DialplanEngine {
    path: PathBuf,
    current: RwLock<Arc<Dialplan>>,
    /// One worker per core, started with the engine.
    pool: Pool,
}

impl DialplanEngine {
    /// Loads `path`; a missing file gives an empty dialplan (every call
    /// gets 404). Starts the PBX pool, one worker thread per core.
    pub fn load(path: PathBuf) -> Result<DialplanEngine, crate::dialplan::DialplanError> {
        let dp = if path.exists() {
            Dialplan::load(&path)?
        } else {
            Dialplan::default()
        };
        Ok(DialplanEngine::with_dialplan(path, dp, Pool::per_core()?))
    }

    /// An engine with an empty dialplan (every call gets 404) that
    /// `dialplan reload` fills from `path`: the daemon's start when the file
    /// is broken, so that mending it needs no restart.
    pub fn empty(path: PathBuf) -> Result<DialplanEngine, crate::pool::PoolError> {
        let dp = Dialplan {
            file: path.file_name().map_or_else(
                || path.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            ),
            ..Dialplan::default()
        };
        Ok(DialplanEngine::with_dialplan(path, dp, Pool::per_core()?))
    }

    /// An engine running `dp` (as if loaded from `path`) on `pool`.
    pub fn with_dialplan(path: PathBuf, dp: Dialplan, pool: Pool) -> DialplanEngine {
        DialplanEngine {
            path,
            current: RwLock::new(Arc::new(dp)),
            pool,
        }
    }

    /// The pool the calls' dialplans run on.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The dialplan in force.
    pub fn current(&self) -> Arc<Dialplan> {
        self.current.read().clone()
    }
}

impl PbxEngine for DialplanEngine {
    fn start(&self, core: &Arc<Core>, chan: ChannelId) -> Result<(), Cause> {
        let dp = self.current();
        // What the plan starts at, read without copying the channel.
        let start = core.channels.read(chan, |c| match dp.find(&c.context, &c.exten) {
            None => {
                log::info!(
                    "Call from '{}' ({}) to extension '{}' rejected because extension not found in context '{}'.",
                    c.resource,
                    c.caller_num,
                    c.exten,
                    c.context
                );
                Err(Cause::UNALLOCATED)
            }
            // From the channel's priority: 1 for a new call, another after
            // `channel redirect` to one.
            Some((ctx, _)) => Ok((ctx.name.clone(), c.exten.clone(), c.priority.max(1))),
        });
        let at = start.ok_or(Cause::INVALID_CALL_REFERENCE)??;
        crate::exec::spawn(self.pool.handle(), core.clone(), dp.clone(), chan, at);
        Ok(())
    }

    fn hints(&self) -> Vec<sirius_core::hints::Hint> {
        let dp = self.current();
        let mut v: Vec<sirius_core::hints::Hint> = dp
            .contexts
            .values()
            .flat_map(|c| {
                c.hints
                    .iter()
                    .map(|(exten, devices, _)| sirius_core::hints::Hint {
                        context: c.name.clone(),
                        exten: exten.clone(),
                        devices: devices.clone(),
                    })
            })
            .collect();
        v.sort_by(|a, b| (&a.context, &a.exten).cmp(&(&b.context, &b.exten)));
        v
    }

    fn show(&self, context: Option<&str>) -> Result<String, String> {
        self.current().show(context)
    }

    fn show_json(&self, context: Option<&str>) -> Result<String, String> {
        self.current().show_json(context)
    }

    fn exists(&self, context: &str, exten: &str) -> bool {
        self.current().find(context, exten).is_some()
    }

    fn run_app(
        &self,
        core: &Arc<Core>,
        chan: ChannelId,
        app: &str,
        data: &str,
    ) -> Result<(), Cause> {
        crate::exec::spawn_app(
            self.pool.handle(),
            core.clone(),
            chan,
            app.to_string(),
            data.to_string(),
        );
        Ok(())
    }

    fn await_answer(
        &self,
        core: &Arc<Core>,
        chan: ChannelId,
        target: sirius_core::originate::OriginateTarget,
    ) {
        let core = core.clone();
        self.pool.handle().spawn(async move {
            let answered =
                crate::exec::answered_within(&core, chan, sirius_core::originate::ANSWER_TIMEOUT)
                    .await;
            core.originate_answered(chan, answered, target);
        });
    }

    fn reload(&self) -> Result<String, String> {
        let dp = Dialplan::load(&self.path).map_err(|e| e.to_string())?;
        *self.current.write() = Arc::new(dp);
        Ok("Dialplan reloaded.".into())
    }
}
