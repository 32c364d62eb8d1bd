//! `bridge show all`: Asterisk's bridge list (main/bridge.c, `handle_bridge_show_all`).

use crate::table::{Args, Command, CommandError, CommandResult};
use sirius_core::Core;
use std::sync::Arc;

/// The `bridge` group.
pub fn commands() -> Vec<Command> {
    vec![Command {
        words: "bridge show all",
        summary: "List all bridges",
        usage: "Usage: bridge show all\n       List all bridges",
        handler: show_all,
        complete: None,
    }]
}

/// `%-36s %-36s %5s %-15s %-15s %s` as Asterisk prints it. Bridges made by
/// Dial have no name (`<unknown>`) and are of the `basic` type.
fn show_all(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    if !args.rest.is_empty() {
        return Err(CommandError::Usage);
    }
    let row = |id: &str, name: &str, chans: &str, kind: &str, tech: &str, dur: &str| {
        format!("{id:<36} {name:<36} {chans:>5} {kind:<15} {tech:<15} {dur}\n")
    };
    let mut out = row(
        "Bridge-ID",
        "Name",
        "Chans",
        "Type",
        "Technology",
        "Duration",
    );
    for b in core.bridges.snapshot() {
        let s = b.started.elapsed().as_secs();
        let duration = format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
        out.push_str(&row(
            &b.id,
            "<unknown>",
            &b.channels.len().to_string(),
            "basic",
            b.technology,
            &duration,
        ));
    }
    Ok(out.trim_end().to_string())
}
