//! `mwi show`, `mwi update`, `mwi delete`: message-waiting counts per
//! mailbox, set by hand until voicemail exists (the names of
//! res_mwi_external's AMI actions MWIGet/MWIUpdate/MWIDelete).

use crate::table::{Args, Command, CommandError, CommandResult, JsonHandler};
use crate::view::Table;
use sirius_core::Core;
use std::sync::Arc;

/// The `mwi` group.
pub fn commands() -> Vec<Command> {
    vec![
        Command { words: "mwi show", summary: "Show message-waiting counts", usage: "Usage: mwi show\n       Lists every mailbox with counts: new and old messages, and how many\n       watch it (phones' message-waiting lights).", handler: show, complete: None },
        Command { words: "mwi update", summary: "Set a mailbox's message counts", usage: "Usage: mwi update <mailbox>[@context] <new> <old>\n       Sets the new and old message counts of a mailbox (context 'default'\n       when none is given); phones watching it are told at once.", handler: update, complete: Some(|core, _, pos| if pos == 2 { core.mwi.list().into_iter().map(|m| m.0).collect() } else { Vec::new() }) },
        Command { words: "mwi delete", summary: "Forget a mailbox's message counts", usage: "Usage: mwi delete <mailbox>[@context]\n       Forgets a mailbox's counts (its watchers see 0 new, 0 old).", handler: delete, complete: Some(|core, _, pos| if pos == 2 { core.mwi.list().into_iter().map(|m| m.0).collect() } else { Vec::new() }) },
    ]
}

/// The JSON form of `mwi show`.
pub fn json() -> Vec<(&'static str, JsonHandler)> {
    vec![("mwi show", |core, _| Ok(mailboxes(core).to_json()))]
}

fn mailboxes(core: &Core) -> Table {
    let mut t = Table::new(&["Mailbox", "New", "Old", "Watchers"]);
    for (m, new, old) in core.mwi.list() {
        let watchers = core.mwi.watchers(&m);
        t.row(vec![
            m,
            new.to_string(),
            old.to_string(),
            watchers.to_string(),
        ]);
    }
    let n = t.rows.len();
    t.totals.push(("mailboxes", n.into()));
    t
}

fn show(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let t = mailboxes(core);
    let row = |r: &[String]| format!("{:<30} {:>6} {:>6} {:>8}\n", r[0], r[1], r[2], r[3]);
    let headers: Vec<String> = t.headers.iter().map(|h| h.to_string()).collect();
    let mut o = row(&headers);
    for r in &t.rows {
        o += &row(r);
    }
    o += &format!(
        "{} mailbox{}",
        t.rows.len(),
        if t.rows.len() == 1 { "" } else { "es" }
    );
    Ok(o)
}

fn count(word: &str) -> Result<u32, CommandError> {
    word.parse()
        .map_err(|_| CommandError::Failed(format!("'{word}' is not a message count")))
}

fn update(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let [mailbox, new, old] = args.rest else {
        return Err(CommandError::Usage);
    };
    let (new, old) = (count(new)?, count(old)?);
    core.mwi_update(mailbox, new, old)
        .map_err(|e| CommandError::Failed(e.to_string()))?;
    let id = sirius_core::mwi::mailbox_id(mailbox).unwrap_or_default();
    Ok(format!("Mailbox {id}: {new} new, {old} old"))
}

fn delete(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let [mailbox] = args.rest else {
        return Err(CommandError::Usage);
    };
    let id =
        sirius_core::mwi::mailbox_id(mailbox).map_err(|e| CommandError::Failed(e.to_string()))?;
    match core
        .mwi_delete(mailbox)
        .map_err(|e| CommandError::Failed(e.to_string()))?
    {
        true => Ok(format!("Mailbox {id} deleted")),
        false => Err(CommandError::Failed(format!("Mailbox {id} has no counts"))),
    }
}
