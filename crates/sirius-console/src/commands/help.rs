//! `help [words]` and its Asterisk alias `core show help`.

use crate::table::{Args, Command, CommandError, CommandResult, CommandTable};
use sirius_core::Core;
use std::sync::Arc;

const USAGE: &str = "Usage: help [topic]\n       When called with a topic as an argument, displays usage\n       information on the given command.  If called without a\n       topic, it provides a list of commands.";

/// The `help` group.
pub fn commands() -> Vec<crate::table::Command> {
    vec![
        Command {
            words: "help",
            summary: "Display help list, or specific help on a command",
            usage: USAGE,
            handler: help,
            complete: Some(complete),
        },
        Command {
            words: "core show help",
            summary: "Display help list, or specific help on a command",
            usage: USAGE,
            handler: help,
            complete: Some(complete),
        },
    ]
}

fn help(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    // The table is rebuilt here rather than threaded through every handler: help is rare.
    let table = CommandTable::with_core_commands();
    let topic = args.rest.join(" ").to_ascii_lowercase();
    let entries = table.entries(core);
    if let Some((_, _, usage)) = entries
        .iter()
        .find(|(w, _, _)| w.eq_ignore_ascii_case(&topic))
    {
        return Ok(usage.clone());
    }
    let rows: Vec<String> = entries
        .iter()
        .filter(|(w, _, _)| w.to_ascii_lowercase().starts_with(&topic))
        .map(|(w, s, _)| format!("{w:<30} -- {s}"))
        .collect();
    if rows.is_empty() {
        return Err(CommandError::Failed(format!("No such command '{topic}'.")));
    }
    Ok(rows.join("\n"))
}

fn complete(core: &Arc<Core>, words: &[String], pos: usize) -> Vec<String> {
    let skip = if words
        .first()
        .is_some_and(|w| w.eq_ignore_ascii_case("help"))
    {
        1
    } else {
        3
    };
    let line: Vec<&str> = words[skip..pos].iter().map(String::as_str).collect();
    let mut line = line.join(" ");
    if !line.is_empty() {
        line.push(' ');
    }
    line.push_str(&words[pos]);
    CommandTable::with_core_commands().complete(core, &line)
}
