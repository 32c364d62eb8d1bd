//! `manager show connected|users|user|settings`: AMI's sessions and
//! configuration, in Asterisk's layouts (main/manager.c
//! `handle_showmanconn`, `handle_showmanagers`, `handle_showmanager`,
//! `handle_manager_show_settings`). The manager registers itself in the
//! core (`Core::addon`); with AMI disabled the commands say so.

use crate::table::{Args, Command, CommandError, CommandResult, JsonHandler};
use crate::view::{Record, Table};
use sirius_core::Core;
use sirius_manager::Manager;
use std::sync::Arc;

fn manager(core: &Core) -> Result<Arc<Manager>, CommandError> {
    core.addon::<Manager>(sirius_manager::ADDON).ok_or_else(|| {
        CommandError::Failed("The manager interface (AMI) is not enabled (manager.toml)".into())
    })
}

/// `manager show connected`'s rows.
fn connected_table(m: &Manager) -> Table {
    let mut t = Table::new(&[
        "Username",
        "IP Address",
        "Start",
        "Elapsed",
        "FileDes",
        "HttpCnt",
        "ReadPerms",
        "WritePerms",
    ]);
    for s in &m.sessions() {
        let user = s.user.lock().clone().unwrap_or_default();
        let (read, write) = *s.perms.lock();
        t.row(vec![
            user,
            s.remote.ip().to_string(),
            s.started.to_string(),
            s.since.elapsed().as_secs().to_string(),
            "-1".into(),
            "0".into(),
            read.0.to_string(),
            write.0.to_string(),
        ]);
    }
    let n = t.rows.len();
    t.totals.push(("users connected", n.into()));
    t
}

fn connected(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let t = connected_table(&*manager(core)?);
    let row = |r: &[&str]| {
        format!(
            "  {:<15.15}  {:<55.55}  {:<10.10}  {:<10.10}  {:<8.8}  {:<8.8}  {:<10.10}  {:<10.10}\n",
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]
        )
    };
    let mut out = row(&t.headers);
    for r in &t.rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        out += &row(&r);
    }
    out += &format!("{} users connected.", t.rows.len());
    Ok(out)
}

/// `manager show users`' rows.
fn users_table(m: &Manager) -> Table {
    let mut t = Table::new(&["username"]);
    for name in m.settings.users.keys() {
        t.row(vec![name.clone()]);
    }
    let n = t.rows.len();
    t.totals.push(("manager users configured", n.into()));
    t
}

fn users(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let t = users_table(&*manager(core)?);
    if t.rows.is_empty() {
        return Ok("There are no manager users.".into());
    }
    let mut out = String::from("\nusername\n--------\n");
    for r in &t.rows {
        out += &r[0];
        out.push('\n');
    }
    out += &format!(
        "-------------------\n{} manager users configured.",
        t.rows.len()
    );
    Ok(out)
}

/// `manager show user <name>`'s fields.
fn user_record(core: &Core, args: &Args<'_>) -> Result<Record, CommandError> {
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
    let mut r = Record::default();
    r.field("username", u.name.clone());
    r.field("secret", if u.secret.is_some() { "<Set>" } else { "(N/A)" });
    r.field("ACL", yes(u.acl.is_set()));
    r.field("read perm", u.read.user_list());
    r.field("write perm", u.write.user_list());
    r.field(
        "displayconnects",
        yes(u
            .displayconnects
            .unwrap_or(m.settings.general.displayconnects)),
    );
    r.field("allowmultiplelogin", "yes");
    r.field("Variables", "");
    Ok(r)
}

fn user(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let r = user_record(core, args)?;
    let mut out = String::new();
    for (k, v) in &r.fields {
        out += &format!("\n{k:>18}: {}", v.as_str().unwrap_or_default());
    }
    Ok(out)
}

/// `manager show settings`' fields.
fn settings_record(core: &Core) -> Record {
    let m = core.addon::<Manager>(sirius_manager::ADDON);
    let yes = |b: bool| if b { "Yes" } else { "No" };
    let mut r = Record::default();
    r.field("Manager (AMI):", yes(m.is_some()));
    r.field("Web Manager (AMI/HTTP):", "No");
    r.field(
        "TCP Bindaddress:",
        m.as_ref()
            .map_or_else(|| "Disabled".to_string(), |m| m.local.to_string()),
    );
    r.field("TLS Enable:", "No");
    r.field("Allow multiple login:", "Yes");
    if let Some(m) = &m {
        let g = &m.settings.general;
        r.field("Display connects:", yes(g.displayconnects));
        r.field("Timestamp events:", yes(g.timestampevents));
        r.field(
            "Auth timeout (seconds):",
            g.authtimeout.as_secs().to_string(),
        );
        r.field("Auth limit:", g.authlimit.to_string());
    }
    r
}

fn settings(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let mut out = String::from("\nGlobal Settings:\n----------------\n");
    for (k, v) in &settings_record(core).fields {
        out += &format!("  {k:<25.25}  {:<15.55}\n", v.as_str().unwrap_or_default());
    }
    Ok(out.trim_end().to_string())
}

/// `manager show commands`' rows: the session actions and every action
/// the manager answers, by name.
fn commands_table() -> Table {
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
    let mut t = Table::new(&["Action", "Synopsis"]);
    for (name, what) in all {
        t.row(vec![name.into(), what.into()]);
    }
    t
}

fn commands_list(_: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let t = commands_table();
    let width = t.rows.iter().map(|r| r[0].len()).max().unwrap_or(6).max(6);
    let row = |a: &str, b: &str| format!("  {a:<width$}  {b}\n");
    let mut out = row("Action", "Synopsis");
    out += &row("------", "--------");
    for r in &t.rows {
        out += &row(&r[0], &r[1]);
    }
    Ok(out.trim_end().to_string())
}

/// The JSON forms of the `manager show` commands.
pub fn json() -> Vec<(&'static str, JsonHandler)> {
    vec![
        ("manager show connected", |core, _| {
            Ok(connected_table(&*manager(core)?).to_json())
        }),
        ("manager show users", |core, _| {
            Ok(users_table(&*manager(core)?).to_json())
        }),
        ("manager show user", |core, args| {
            Ok(user_record(core, args)?.to_json())
        }),
        ("manager show settings", |core, _| {
            Ok(settings_record(core).to_json())
        }),
        ("manager show commands", |_, _| {
            Ok(commands_table().to_json())
        }),
    ]
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
