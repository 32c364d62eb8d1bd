//! `cdr show status`: the call detail record engine's settings and backend
//! (Asterisk's layout), and how many records went where.

use crate::table::{Args, Command, CommandResult};
use sirius_core::Core;
use std::sync::Arc;

/// The `cdr` group.
pub fn commands() -> Vec<Command> {
    vec![Command {
        words: "cdr show status",
        summary: "Display the CDR status",
        usage:
            "Usage: cdr show status\n       Displays the Call Detail Record engine system status.",
        handler: status,
        complete: None,
    }]
}

fn status(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    Ok(core.cdr.render_status())
}
