//! The `logger` group, as Asterisk's: `logger reload` (logger.toml read again,
//! every file reopened: what logrotate's `postrotate` asks; SIGHUP reopens the
//! files too), `logger rotate` (Sirius moves the files away itself, by the
//! configured `rotatestrategy`) and `logger show channels`.

use crate::table::{Args, Command, CommandError, CommandResult, JsonHandler};
use crate::view::Table;
use sirius_core::Core;
use std::sync::Arc;

/// The `logger` group.
pub fn commands() -> Vec<Command> {
    vec![
        Command {
            words: "logger reload",
            summary: "Reopens the log files",
            usage: "Usage: logger reload\n       Reads logger.toml again and reopens every log file, e.g. after\n       logrotate moved them away (SIGHUP to the daemon reopens them too).\n       A broken logger.toml is reported and the running channels stay.",
            handler: reload,
            complete: None,
        },
        Command {
            words: "logger rotate",
            summary: "Rotates and reopens the log files",
            usage: "Usage: logger rotate\n       Moves every log file away (rotatestrategy in logger.toml:\n       sequential, rotate, timestamp or none) and opens it anew.",
            handler: rotate,
            complete: None,
        },
        Command {
            words: "logger show channels",
            summary: "List configured log channels",
            usage: "Usage: logger show channels\n       List configured logger channels.",
            handler: show_channels,
            complete: None,
        },
    ]
}

fn reload(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let dir = &core.paths.log_dir;
    let conf = core.paths.config_dir.join("logger.toml");
    if let Err(errors) = core.log.reload(&conf, dir) {
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(CommandError::Failed(format!(
            "{}; the other log channels are open",
            text.join("; ")
        )));
    }
    // The new files' first line says why they began.
    log::info!("Log files reopened (logger reload)");
    Ok(format!("Log files reopened in {}", dir.display()))
}

fn rotate(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let (moved, failed) = core.log.rotate();
    log::info!("Log files rotated (logger rotate)");
    let mut out = String::from("Log files rotated\n");
    for m in moved {
        out.push_str(&format!("  moved to {}\n", m.display()));
    }
    if !failed.is_empty() {
        let text: Vec<String> = failed.iter().map(ToString::to_string).collect();
        return Err(CommandError::Failed(format!("{}{}", out, text.join("\n"))));
    }
    Ok(out.trim_end().to_string())
}

/// The JSON form of `logger show channels`.
pub fn json() -> Vec<(&'static str, JsonHandler)> {
    vec![("logger show channels", |core, _| {
        let mut t = Table::new(&["Channel", "Type", "Formatter", "Status", "Configuration"]);
        for c in core.log.channels() {
            t.row(vec![
                c.channel,
                c.kind.into(),
                "default".into(),
                c.status.into(),
                c.levels,
            ]);
        }
        Ok(t.to_json())
    })]
}

fn show_channels(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    Ok(core.log.show_channels())
}
