//! `dialplan show [context]`, `dialplan reload`.

use crate::table::{Args, Command, CommandError, CommandResult};
use sirius_core::Core;
use std::sync::Arc;

/// The `dialplan` group.
pub fn commands() -> Vec<Command> {
    vec![
        Command {
            words: "dialplan show",
            summary: "Show dialplan",
            usage: "Usage: dialplan show [context]\n       Show dialplan contexts, extensions and priorities.",
            handler: show,
            complete: Some(|_, _, _| Vec::new()),
        },
        Command {
            words: "dialplan reload",
            summary: "Reload extensions and *only* extensions",
            usage: "Usage: dialplan reload\n       Reloads the dialplan from extensions.toml. A file with an error is\n       refused (file:line: reason) and the running dialplan stays.",
            handler: reload,
            complete: None,
        },
    ]
}

fn show(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let engine = core
        .pbx_engine()
        .ok_or_else(|| CommandError::Failed("No dialplan is loaded.".into()))?;
    let ctx = match args.rest {
        [] => None,
        [c] => Some(c.as_str()),
        _ => return Err(CommandError::Usage),
    };
    engine.show(ctx).map_err(CommandError::Failed)
}

fn reload(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let engine = core
        .pbx_engine()
        .ok_or_else(|| CommandError::Failed("No dialplan is loaded.".into()))?;
    let r = engine.reload().map_err(CommandError::Failed)?;
    *core.last_reload.lock() = std::time::Instant::now();
    Ok(r)
}
