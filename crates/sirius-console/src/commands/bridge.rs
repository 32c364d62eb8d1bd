//! `bridge show all`: Asterisk's bridge list (main/bridge.c, `handle_bridge_show_all`).

use crate::table::{Args, Command, CommandError, CommandResult, JsonHandler};
use crate::view::Table;
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

/// The JSON form of `bridge show all`.
pub fn json() -> Vec<(&'static str, JsonHandler)> {
    vec![("bridge show all", |core, _| Ok(bridges(core).to_json()))]
}

const HEADERS: [&str; 6] = [
    "Bridge-ID",
    "Name",
    "Chans",
    "Type",
    "Technology",
    "Duration",
];

/// The rows. Bridges made by Dial have no name (`<unknown>`) and are of
/// the `basic` type.
fn bridges(core: &Core) -> Table {
    let mut t = Table::new(&HEADERS);
    for b in core.bridges.snapshot() {
        let s = b.started.elapsed().as_secs();
        t.row(vec![
            b.id.clone(),
            "<unknown>".into(),
            b.channels.len().to_string(),
            "basic".into(),
            b.technology.into(),
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
        ]);
    }
    t
}

/// `%-36s %-36s %5s %-15s %-15s %s` as Asterisk prints it.
fn show_all(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    if !args.rest.is_empty() {
        return Err(CommandError::Usage);
    }
    let row = |r: &[&str]| {
        format!(
            "{:<36} {:<36} {:>5} {:<15} {:<15} {}\n",
            r[0], r[1], r[2], r[3], r[4], r[5]
        )
    };
    let mut out = row(&HEADERS);
    for r in bridges(core).rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        out.push_str(&row(&r));
    }
    Ok(out.trim_end().to_string())
}
