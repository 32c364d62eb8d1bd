//! `manager show connected|users|user|settings`: AMI's sessions and
//! configuration, in Asterisk's layouts (main/manager.c
//! `handle_showmanconn`, `handle_showmanagers`, `handle_showmanager`,
//! `handle_manager_show_settings`). The manager registers itself in the
//! core (`Core::addon`); with AMI disabled the commands say so.

use crate::table::{Args, Command, CommandError, CommandResult};
use sirius_core::Core;
use sirius_manager::Manager;
use std::sync::Arc;

fn manager(core: &Core) -> Result<Arc<Manager>, CommandError> {
    core.addon::<Manager>(sirius_manager::ADDON).ok_or_else(|| {
        CommandError::Failed("The manager interface (AMI) is not enabled (manager.toml)".into())
    })
}

fn connected(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let m = manager(core)?;
    let row = |a: &str, b: &str, c: &str, d: &str, e: &str, f: &str, g: &str, h: &str| {
        format!("  {a:<15.15}  {b:<55.55}  {c:<10.10}  {d:<10.10}  {e:<8.8}  {f:<8.8}  {g:<10.10}  {h:<10.10}\n")
    };
    let mut out = row(
        "Username",
        "IP Address",
        "Start",
        "Elapsed",
        "FileDes",
        "HttpCnt",
        "ReadPerms",
        "WritePerms",
    );
    let sessions = m.sessions();
    for s in &sessions {
        let user = s.user.lock().clone().unwrap_or_default();
        let (read, write) = *s.perms.lock();
        out += &row(
            &user,
            &s.remote.ip().to_string(),
            &s.started.to_string(),
            &s.since.elapsed().as_secs().to_string(),
            "-1",
            "0",
            &read.0.to_string(),
            &write.0.to_string(),
        );
    }
    out += &format!("{} users connected.", sessions.len());
    Ok(out)
}

fn users(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let m = manager(core)?;
    if m.settings.users.is_empty() {
        return Ok("There are no manager users.".into());
    }
    let mut out = String::from("\nusername\n--------\n");
    for name in m.settings.users.keys() {
        out += name;
        out.push('\n');
    }
    out += &format!(
        "-------------------\n{} manager users configured.",
        m.settings.users.len()
    );
    Ok(out)
}

fn user(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let [name] = args.rest else {
        return Err(CommandError::Usage);
    };
    let m = manager(core)?;
    let Some(u) = m.settings.users.get(name.as_str()) else {
        return Err(CommandError::Failed(format!(
            "There is no manager called {name}"
        )));
    };
    let yes = |b: bool| if b { "yes" } else { "no" };
    Ok(format!(
        "\n          username: {}\n            secret: {}\n               ACL: {}\n         read perm: {}\n        write perm: {}\n   displayconnects: {}\nallowmultiplelogin: yes\n         Variables: ",
        u.name,
        if u.secret.is_some() { "<Set>" } else { "(N/A)" },
        yes(u.acl.is_set()),
        u.read.user_list(),
        u.write.user_list(),
        yes(u.displayconnects.unwrap_or(m.settings.general.displayconnects)),
    ))
}

fn settings(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let m = core.addon::<Manager>(sirius_manager::ADDON);
    let row = |k: &str, v: &str| format!("  {k:<25.25}  {v:<15.55}\n");
    let yes = |b: bool| if b { "Yes" } else { "No" };
    let mut out = String::from("\nGlobal Settings:\n----------------\n");
    out += &row("Manager (AMI):", yes(m.is_some()));
    out += &row("Web Manager (AMI/HTTP):", "No");
    let bind = m
        .as_ref()
        .map_or_else(|| "Disabled".to_string(), |m| m.local.to_string());
    out += &row("TCP Bindaddress:", &bind);
    out += &row("TLS Enable:", "No");
    out += &row("Allow multiple login:", "Yes");
    if let Some(m) = &m {
        let g = &m.settings.general;
        out += &row("Display connects:", yes(g.displayconnects));
        out += &row("Timestamp events:", yes(g.timestampevents));
        out += &row(
            "Auth timeout (seconds):",
            &g.authtimeout.as_secs().to_string(),
        );
        out += &row("Auth limit:", &g.authlimit.to_string());
    }
    Ok(out.trim_end().to_string())
}

fn commands_list(_: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let width = sirius_manager::actions::ACTIONS
        .iter()
        .map(|(n, _, _)| n.len())
        .chain(["Challenge".len()])
        .max()
        .unwrap_or(6);
    let row = |a: &str, b: &str| format!("  {a:<width$}  {b}\n");
    let mut out = row("Action", "Synopsis");
    out += &row("------", "--------");
    let session = [
        ("Login", "Login Manager."),
        ("Logoff", "Logoff Manager."),
        ("Challenge", "Generate Challenge for MD5 Auth."),
    ];
    let mut all: Vec<(&str, &str)> = session.to_vec();
    all.extend(
        sirius_manager::actions::ACTIONS
            .iter()
            .map(|(n, _, w)| (*n, *w)),
    );
    all.sort_by_key(|(n, _)| n.to_ascii_lowercase());
    for (name, what) in all {
        out += &row(name, what);
    }
    Ok(out.trim_end().to_string())
}

/// The `manager` group.
pub fn commands() -> Vec<Command> {
    vec![
        Command {
            words: "manager show connected",
            summary: "List connected manager interface users",
            usage: "Usage: manager show connected\n\tPrints a listing of the users that are currently connected to the\nAsterisk manager interface.",
            handler: connected,
            complete: None,
        },
        Command {
            words: "manager show users",
            summary: "List configured manager users",
            usage: "Usage: manager show users\n       Prints a listing of all managers that are currently configured on that\n system.",
            handler: users,
            complete: None,
        },
        Command {
            words: "manager show user",
            summary: "Display information on a specific manager user",
            usage: " Usage: manager show user <user>\n        Display all information related to the manager user specified.",
            handler: user,
            complete: Some(|core, _, pos| {
                if pos != 3 {
                    return Vec::new();
                }
                core.addon::<Manager>(sirius_manager::ADDON)
                    .map(|m| m.settings.users.keys().cloned().collect())
                    .unwrap_or_default()
            }),
        },
        Command {
            words: "manager show commands",
            summary: "Show manager interface commands",
            usage: "Usage: manager show commands\n\tPrints a listing of all the available Asterisk manager interface commands.",
            handler: commands_list,
            complete: None,
        },
        Command {
            words: "manager show settings",
            summary: "Show manager global settings",
            usage: "Usage: manager show settings\n       Provides detailed list of the configuration of the Manager.",
            handler: settings,
            complete: None,
        },
    ]
}
