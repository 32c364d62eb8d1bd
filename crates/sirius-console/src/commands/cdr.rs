//! `cdr show status`: the call detail record engine's settings and backend
//! (Asterisk's layout), and how many records went where.

use crate::table::{Args, Command, CommandResult, JsonHandler};
use crate::view::Record;
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

/// The JSON form of `cdr show status`.
pub fn json() -> Vec<(&'static str, JsonHandler)> {
    vec![("cdr show status", |core, _| {
        let mut r = Record::default();
        for (k, v) in core.cdr.status() {
            r.field(k, v);
        }
        Ok(r.to_json())
    })]
}

fn status(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    Ok(core.cdr.render_status())
}
