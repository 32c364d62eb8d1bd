//! `channel request hangup <channel>|all`: ends calls from the console, as in
//! Asterisk (`handle_softhangup` in main/cli.c); `channel originate`: places
//! a call that runs the dialplan or one application once answered
//! (res_clioriginate.c).

use crate::table::{Args, Command, CommandError, CommandResult};
use sirius_abi::Cause;
use sirius_core::originate::OriginateTarget;
use sirius_core::Core;
use std::sync::Arc;

fn originate_command() -> Command {
    Command {
        words: "channel originate",
        summary: "Originate a call",
        usage: "Usage: channel originate <tech/data> application <appname> [appdata]\n  Originate a call and connect it to the specified application.\n\n  Usage: channel originate <tech/data> extension [exten@][context]\n  Originate a call and connect it to the specified extension.\n  If no context is specified, 'default' is used; without an extension, 's'.",
        handler: originate,
        complete: Some(|_, _, pos| match pos {
            3 => vec!["application".into(), "extension".into()],
            _ => Vec::new(),
        }),
    }
}

/// No output on success, as in Asterisk: the call goes on in the background
/// (`core show channels` shows it).
fn originate(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let [dest, kind, rest @ ..] = args.rest else {
        return Err(CommandError::Usage);
    };
    let Some((tech, resource)) = dest.split_once('/') else {
        return Err(CommandError::Failed(format!(
            "'{dest}' is not tech/data (for example SIP/bob)"
        )));
    };
    let target = match (kind.to_ascii_lowercase().as_str(), rest) {
        ("application", [app, data @ ..]) => OriginateTarget::Application {
            app: app.to_string(),
            data: data.join(" "),
        },
        ("extension", [] | [_]) => {
            let spec = rest.first().map_or("", String::as_str);
            let (exten, context) = spec.split_once('@').unwrap_or((spec, ""));
            OriginateTarget::Extension {
                exten: if exten.is_empty() { "s" } else { exten }.to_string(),
                context: if context.is_empty() {
                    "default"
                } else {
                    context
                }
                .to_string(),
            }
        }
        _ => return Err(CommandError::Usage),
    };
    core.originate(tech, resource, target).map_err(|c| {
        CommandError::Failed(format!(
            "Unable to originate a call to {dest} (cause {} - {})",
            c.0,
            c.description()
        ))
    })?;
    Ok(String::new())
}

/// The `channel` group.
pub fn commands() -> Vec<Command> {
    vec![originate_command(), Command {
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
