//! `channel request hangup <channel>|all`: ends calls from the console, as in
//! Asterisk (`handle_softhangup` in main/cli.c).

use crate::table::{Args, Command, CommandError, CommandResult};
use sirius_abi::Cause;
use sirius_core::Core;
use std::sync::Arc;

/// The `channel` group.
pub fn commands() -> Vec<Command> {
    vec![Command {
        words: "channel request hangup",
        summary: "Request a hangup on a given channel",
        usage: "Usage: channel request hangup <channel>|<all>\n       Request that a channel be hung up. The hangup takes effect\n       the next time the driver reads or writes from the channel.\n       If 'all' is specified instead of a channel name, all channels\n       will see the hangup request.",
        handler: request_hangup,
        complete: Some(|core, _, pos| {
            if pos != 3 {
                return Vec::new();
            }
            let mut names: Vec<String> = core
                .channels
                .snapshot()
                .into_iter()
                .map(|c| c.name)
                .collect();
            names.push("all".into());
            names
        }),
    }]
}

/// Hangs the channel up with NORMAL_CLEARING through its technology, so the
/// far end gets a BYE (or CANCEL, or a final response) and the dialplan ends.
fn request_hangup(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let [target] = args.rest else {
        return Err(CommandError::Usage);
    };
    let chans = if target.eq_ignore_ascii_case("all") {
        core.channels.snapshot()
    } else {
        match core.channels.find(target) {
            Some(c) => vec![c],
            None => {
                return Err(CommandError::Failed(format!(
                    "{target} is not a known channel"
                )))
            }
        }
    };
    let mut out = String::new();
    for c in chans {
        let _ = core.hangup(c.id, Cause::NORMAL_CLEARING);
        out.push_str(&format!("Requested Hangup on channel '{}'\n", c.name));
    }
    Ok(out.trim_end().to_string())
}
