//! `logger reload`: the log file closed and opened again, as logrotate's
//! `postrotate` asks (SIGHUP does the same).

use crate::table::{Args, Command, CommandError, CommandResult};
use sirius_core::Core;
use std::sync::Arc;

/// The `logger` group.
pub fn commands() -> Vec<Command> {
    vec![Command {
        words: "logger reload",
        summary: "Reopens the log files",
        usage: "Usage: logger reload\n       Closes and reopens the log file (messages), e.g. after logrotate\n       moved it away. SIGHUP to the daemon does the same.",
        handler: reload,
        complete: None,
    }]
}

fn reload(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let dir = &core.paths.log_dir;
    core.log.reopen_file(dir).map_err(|e| {
        CommandError::Failed(format!(
            "Cannot reopen the log file in {}: {e}",
            dir.display()
        ))
    })?;
    // The new file's first line says why it began.
    log::info!("Log files reopened (logger reload)");
    Ok(format!("Log files reopened in {}", dir.display()))
}
