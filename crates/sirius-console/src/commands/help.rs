//! `help [words]` and its Asterisk alias `core show help`.

use crate::table::{Args, Command, CommandError, CommandResult, CommandTable, JsonHandler};
use crate::view::Table;
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

/// The commands whose words start with the topic, or the one command the
/// topic names (then its usage).
enum Help {
    Usage(String),
    List(Table),
}

fn lookup(core: &Arc<Core>, args: &Args<'_>) -> Result<Help, CommandError> {
    // The table is rebuilt here rather than threaded through every handler: help is rare.
    let table = CommandTable::with_core_commands();
    let topic = args.rest.join(" ").to_ascii_lowercase();
    let entries = table.entries(core);
    if let Some((_, _, usage)) = entries
        .iter()
        .find(|(w, _, _)| w.eq_ignore_ascii_case(&topic))
    {
        return Ok(Help::Usage(usage.clone()));
    }
    let mut t = Table::new(&["Command", "Summary"]);
    for (w, s, _) in entries
        .iter()
        .filter(|(w, _, _)| w.to_ascii_lowercase().starts_with(&topic))
    {
        t.row(vec![w.clone(), s.clone()]);
    }
    if t.rows.is_empty() {
        return Err(CommandError::Failed(format!("No such command '{topic}'.")));
    }
    Ok(Help::List(t))
}

fn help(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    Ok(match lookup(core, args)? {
        Help::Usage(u) => u,
        Help::List(t) => t
            .rows
            .iter()
            .map(|r| format!("{:<30} -- {}", r[0], r[1]))
            .collect::<Vec<_>>()
            .join("\n"),
    })
}

/// `core show help [topic]` as JSON: the matching commands, or the one
/// command's usage.
pub fn json() -> Vec<(&'static str, JsonHandler)> {
    vec![("core show help", |core, args| {
        Ok(match lookup(core, args)? {
            Help::Usage(u) => serde_json::json!({ "usage": u }),
            Help::List(t) => t.to_json(),
        })
    })]
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
