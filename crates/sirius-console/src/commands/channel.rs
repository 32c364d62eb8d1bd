//! `channel request hangup <channel>|all`: ends calls from the console, as in
//! Asterisk (`handle_softhangup` in main/cli.c); `channel originate`: places
//! a call that runs the dialplan or one application once answered
//! (res_clioriginate.c); `channel redirect`: sends a call elsewhere in the
//! dialplan (res_clioriginate's sibling in main/cli.c, `handle_redirect`).

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

fn redirect_command() -> Command {
    Command {
        words: "channel redirect",
        summary: "Redirect a call",
        usage: "Usage: channel redirect <channel> <[[context,]exten,]priority>\n    Redirect an active channel to a specified extension.",
        handler: redirect,
        complete: Some(|core, _, pos| match pos {
            2 => core.channels.snapshot().into_iter().map(|c| c.name).collect(),
            _ => Vec::new(),
        }),
    }
}

/// `[[context,]exten,]priority`, the missing parts the channel's own.
fn redirect_target(dest: &str, (context, exten): (&str, &str)) -> Option<(String, String, u32)> {
    let parts: Vec<&str> = dest.split(',').map(str::trim).collect();
    let (c, e, p) = match parts.as_slice() {
        [p] => (context, exten, *p),
        [e, p] => (context, *e, *p),
        [c, e, p] => (*c, *e, *p),
        _ => return None,
    };
    let prio = p.parse::<u32>().ok().filter(|n| *n > 0)?;
    (!c.is_empty() && !e.is_empty()).then(|| (c.to_string(), e.to_string(), prio))
}

/// Moves a channel to another place in the dialplan; a bridged call's
/// other party is hung up (as the other side of a two-party bridge is in
/// Asterisk when one leaves).
fn redirect(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let [name, dest] = args.rest else {
        return Err(CommandError::Usage);
    };
    let Some(chan) = core.channels.find(name) else {
        return Err(CommandError::Failed(format!("Channel '{name}' not found")));
    };
    let Some((context, exten, prio)) = redirect_target(dest, (&chan.context, &chan.exten)) else {
        return Err(CommandError::Usage);
    };
    let failed = |why: String| {
        CommandError::Failed(format!(
            "Channel '{}' failed to be redirected to {dest} ({why})",
            chan.name
        ))
    };
    match core.redirect(chan.id, &context, &exten, prio) {
        Ok(()) => Ok(format!(
            "Channel '{}' successfully redirected to {context},{exten},{prio}",
            chan.name
        )),
        Err(c) if c == Cause::UNALLOCATED => Err(failed(format!(
            "no extension '{exten}' in context '{context}'"
        ))),
        Err(c) => Err(failed(c.description().to_string())),
    }
}

/// The `channel` group.
pub fn commands() -> Vec<Command> {
    vec![originate_command(), redirect_command(), Command {
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

#[cfg(test)]
mod tests {
    use super::redirect_target;

    #[test]
    fn a_redirect_target_takes_what_it_lacks_from_the_channel() {
        let here = ("demo", "100");
        let t = |d| redirect_target(d, here);
        assert_eq!(t("3"), Some(("demo".into(), "100".into(), 3)));
        assert_eq!(t("600,1"), Some(("demo".into(), "600".into(), 1)));
        assert_eq!(t("other, 700 ,2"), Some(("other".into(), "700".into(), 2)));
        for bad in ["", "x", "600,0", "a,b,c,1", "600,one", ",600,1"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
