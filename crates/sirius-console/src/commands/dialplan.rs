//! `dialplan show [context]`, `dialplan reload`.

use crate::table::{Args, Command, CommandError, CommandResult, JsonHandler};
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

/// The JSON form of `dialplan show`: contexts, their includes, extensions
/// and steps (priority, label, application, data, file line), as the text
/// lists them.
pub fn json() -> Vec<(&'static str, JsonHandler)> {
    vec![("dialplan show", |core, args| {
        let engine = core
            .pbx_engine()
            .ok_or_else(|| CommandError::Failed("No dialplan is loaded.".into()))?;
        let ctx = match args.rest {
            [] => None,
            [c] => Some(c.as_str()),
            _ => return Err(CommandError::Usage),
        };
        let text = engine.show_json(ctx).map_err(CommandError::Failed)?;
        serde_json::from_str(&text).map_err(|e| CommandError::Failed(e.to_string()))
    })]
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
