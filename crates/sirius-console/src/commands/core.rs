//! `core show …`, `core set verbose|debug`, `core stop now|gracefully`.

use super::ess;
use crate::table::{Args, Command, CommandError, CommandResult, JsonHandler};
use crate::view::{Record, Table};
use serde_json::{json, Value};
use sirius_abi::Direction;
use sirius_core::channels::Channel;
use sirius_core::{version_line, Core, ShutdownMode};
use std::sync::Arc;
use std::time::Duration;

/// The `core` group.
pub fn commands() -> Vec<Command> {
    vec![
        Command { words: "core show version", summary: "Display version info", usage: "Usage: core show version\n       Shows Sirius version information.", handler: show_version, complete: None },
        Command { words: "core show uptime", summary: "Show uptime information", usage: "Usage: core show uptime [seconds]\n       Shows Sirius uptime information.\n       The seconds word returns the uptime in seconds only.", handler: show_uptime, complete: Some(|_, _, pos| if pos == 3 { vec!["seconds".into()] } else { Vec::new() }) },
        Command { words: "core show settings", summary: "Show some core settings", usage: "Usage: core show settings\n       Show core misc settings", handler: show_settings, complete: None },
        Command { words: "core show hints", summary: "Show dialplan hints", usage: "Usage: core show hints\n       List registered hints.\n       Hint details are shown in five columns. In order from left to right, they are:\n       1. Hint extension URI.\n       2. List of mapped device state identifiers.\n       3. Current extension state. The aggregate of mapped device states.\n       4. Current presence state (not_set: Sirius has no presence providers).\n       5. Watchers - number of subscriptions watching this hint.", handler: show_hints, complete: None },
        Command { words: "core show channeltypes", summary: "List available channel types", usage: "Usage: core show channeltypes\n       Lists available channel types registered in your\n       Sirius server.", handler: show_channeltypes, complete: None },
        Command { words: "core show channels", summary: "Display information on channels", usage: "Usage: core show channels [concise|verbose|count]\n       Lists currently defined channels and some information about them. If\n       'concise' is specified, the format is abridged and in a more easily\n       machine parsable format. If 'verbose' is specified, the output includes\n       more and longer fields. If 'count' is specified only the channel and call\n       count is output.", handler: show_channels, complete: Some(|_, _, pos| if pos == 3 { vec!["concise".into(), "verbose".into(), "count".into()] } else { Vec::new() }) },
        Command { words: "core show channel", summary: "Display information on a specific channel", usage: "Usage: core show channel <channel>\n       Shows lots of information about the specified channel.", handler: show_channel, complete: Some(|core, _, pos| if pos == 3 { core.channels.snapshot().into_iter().map(|c| c.name).collect() } else { Vec::new() }) },
        Command { words: "core show calls", summary: "Display information on calls", usage: "Usage: core show calls [uptime [seconds]]\n       Lists number of currently active calls and total number of calls\n       processed through PBX since last restart. If 'uptime' is specified\n       the system uptime is also displayed.", handler: show_calls, complete: Some(|_, _, pos| if pos == 3 { vec!["uptime".into()] } else { Vec::new() }) },
        Command { words: "core set verbose", summary: "Set level of verbose chattiness", usage: "Usage: core set verbose {off|<level>}\n       Sets the level of verbose messages to be displayed.\n       0 or off means no messages should be displayed.", handler: set_verbose, complete: Some(|_, _, _| vec!["off".into()]) },
        Command { words: "core set debug", summary: "Set level of debug chattiness", usage: "Usage: core set debug {off|<level>}\n       Sets the level of debug messages to be displayed, in the core\n       and in every loaded module (1 = debug, 2 = trace).", handler: set_debug, complete: Some(|_, _, _| vec!["off".into()]) },
        Command { words: "core stop now", summary: "Shut down Sirius immediately", usage: "Usage: core stop now\n       Shuts down a running Sirius immediately, hanging up all active calls .", handler: stop_now, complete: None },
        Command { words: "core stop gracefully", summary: "Gracefully shut down Sirius", usage: "Usage: core stop gracefully\n       Causes Sirius to not accept new calls, and exit when all\n       active calls have terminated normally.", handler: stop_gracefully, complete: None },
    ]
}

/// The JSON forms of the `core show` commands.
pub fn json() -> Vec<(&'static str, JsonHandler)> {
    vec![
        ("core show version", |_, _| {
            Ok(json!({ "version": version_line() }))
        }),
        ("core show uptime", |core, args| {
            uptime_json(core, args.rest)
        }),
        ("core show settings", |core, _| Ok(settings(core).to_json())),
        ("core show hints", |core, _| Ok(hints(core).to_json())),
        ("core show channeltypes", |core, _| {
            Ok(channeltypes(core).to_json())
        }),
        ("core show channels", |core, args| {
            let count = matches!(args.rest, [m] if m.eq_ignore_ascii_case("count"));
            let mut t = if count {
                Table::default()
            } else {
                channels_table(core)
            };
            t.totals = totals(core);
            let mut v = t.to_json();
            if count {
                v.as_object_mut().map(|o| o.remove("rows"));
            }
            Ok(v)
        }),
        ("core show channel", |core, args| {
            let [name] = args.rest else {
                return Err(CommandError::Usage);
            };
            let (record, vars) = channel_record(core, name)?;
            let mut v = record.to_json();
            v["variables"] = Value::Object(
                vars.into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            );
            Ok(v)
        }),
        ("core show calls", |core, args| {
            let mut v = json!({
                "active_calls": core.channels.active_calls(),
                "calls_processed": core.channels.calls_processed(),
            });
            if matches!(args.rest.first(), Some(u) if u.eq_ignore_ascii_case("uptime")) {
                for (k, x) in uptime_json(core, &[])?.as_object().into_iter().flatten() {
                    v[k] = x.clone();
                }
            }
            Ok(v)
        }),
    ]
}

fn uptime_json(core: &Core, rest: &[String]) -> Result<Value, CommandError> {
    match rest {
        [] => {}
        [s] if s.eq_ignore_ascii_case("seconds") => {}
        _ => return Err(CommandError::Usage),
    }
    // In seconds whatever the text's wording: for scripts.
    Ok(json!({
        "system_uptime": core.started.elapsed().as_secs(),
        "last_reload": core.last_reload.lock().elapsed().as_secs(),
    }))
}

/// `core show channels`' counts, as the text's last lines name them.
fn totals(core: &Core) -> Vec<(&'static str, Value)> {
    vec![
        ("active channels", core.channels.active_channels().into()),
        ("active calls", core.channels.active_calls().into()),
        ("calls processed", core.channels.calls_processed().into()),
    ]
}

fn show_version(_: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    Ok(version_line())
}

/// Asterisk's uptime wording: `1 minute, 25 seconds`.
pub fn uptime_words(d: Duration) -> String {
    let mut secs = d.as_secs();
    let units = [
        ("year", 365 * 86400),
        ("week", 7 * 86400),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
    ];
    let mut parts = Vec::new();
    for (name, size) in units {
        let n = secs / size;
        if n > 0 {
            parts.push(format!("{n} {name}{}", ess(n)));
            secs %= size;
        }
    }
    if secs > 0 || parts.is_empty() {
        parts.push(format!("{secs} second{}", ess(secs)));
    }
    parts.join(", ")
}

fn uptime_lines(core: &Core, seconds: bool) -> String {
    let up = core.started.elapsed();
    let reload = core.last_reload.lock().elapsed();
    if seconds {
        format!(
            "System uptime: {}\nLast reload: {}",
            up.as_secs(),
            reload.as_secs()
        )
    } else {
        format!(
            "System uptime: {}\nLast reload: {}",
            uptime_words(up),
            uptime_words(reload)
        )
    }
}

fn show_uptime(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    match args.rest {
        [] => Ok(uptime_lines(core, false)),
        [s] if s.eq_ignore_ascii_case("seconds") => Ok(uptime_lines(core, true)),
        _ => Err(CommandError::Usage),
    }
}

/// `core show settings`' fields; the directories after the `* Directories`
/// heading (the text's second section) are the last five.
fn settings(core: &Core) -> Record {
    let g = &core.settings.general;
    let p = &core.paths;
    let mut r = Record::default();
    r.field("Version:", sirius_core::VERSION);
    r.field("Build:", version_line());
    r.field("System name:", g.systemname.clone());
    r.field(
        "Maximum calls:",
        if g.maxcalls == 0 {
            "Not set".to_string()
        } else {
            format!("{} (Current {})", g.maxcalls, core.channels.active_calls())
        },
    );
    // Asterisk shows the limit the process got, which is what bounds calls:
    // each call leg holds two sockets.
    r.field(
        "Maximum open file handles:",
        sirius_core::limits::open_files()
            .map_or_else(|e| e.to_string(), |(soft, _)| soft.to_string()),
    );
    r.field("Maximum load average:", format!("{:.6}", g.maxload));
    r.field("Verbosity:", core.log.verbose().to_string());
    r.field("Debug level:", core.log.debug().to_string());
    r.field(
        "Startup time:",
        format!("{} ago", uptime_words(core.started.elapsed())),
    );
    r.field(
        "Last reload time:",
        format!("{} ago", uptime_words(core.last_reload.lock().elapsed())),
    );
    r.field(
        "Accepting new calls:",
        if core.refusing_calls() { "No" } else { "Yes" },
    );
    r.field(
        "Configuration directory:",
        p.config_dir.display().to_string(),
    );
    r.field("Module directory:", p.modules_dir.display().to_string());
    r.field("Run/Sockets directory:", p.run_dir.display().to_string());
    r.field("Log directory:", p.log_dir.display().to_string());
    r.field("Data directory:", p.data_dir.display().to_string());
    r
}

fn show_settings(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let r = settings(core);
    let row = |k: &str, v: &Value| format!("  {k:<30}{}\n", v.as_str().unwrap_or_default());
    let mut o = String::from("\nPBX Core settings\n-----------------\n");
    let split = r.fields.len() - 5;
    for (k, v) in &r.fields[..split] {
        o += &row(k, v);
    }
    o += "\n* Directories\n  -------------\n";
    for (k, v) in &r.fields[split..] {
        o += &row(k, v);
    }
    Ok(o)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `core show hints`' rows.
fn hints(core: &Core) -> Table {
    let mut t = Table::new(&["Hint", "Devices", "State", "Presence", "Watchers"]);
    for h in core.hints() {
        t.row(vec![
            format!("{}@{}", h.exten, h.context),
            h.devices.join("&"),
            core.hint_state(&h).as_str().to_string(),
            "not_set".into(),
            core.hint_watchers(&h.context, &h.exten).to_string(),
        ]);
    }
    let n = t.rows.len();
    t.totals.push(("hints registered", n.into()));
    t
}

/// `core show hints` in Asterisk's layout (`handle_show_hints`).
fn show_hints(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let t = hints(core);
    if t.rows.is_empty() {
        return Ok("There are no registered dialplan hints".into());
    }
    let mut o = String::from("\n    -= Registered Asterisk Dial Plan Hints =-\n");
    for r in &t.rows {
        o += &format!(
            "{:<30.30}: {:<60.60}  State:{:<15.15} Presence:{:<15.15} Watchers {:>2}\n",
            r[0], r[1], r[2], r[3], r[4]
        );
    }
    o += "----------------\n";
    o += &format!("- {} hints registered", t.rows.len());
    Ok(o)
}

const CHANNELTYPE_HEADERS: [&str; 6] = [
    "Type",
    "Description",
    "Devicestate",
    "Presencestate",
    "Indications",
    "Transfer",
];

fn channeltypes(core: &Core) -> Table {
    let mut t = Table::new(&CHANNELTYPE_HEADERS);
    for ty in core.channel_types() {
        let i = &ty.info;
        t.row(vec![
            i.tech_type.to_string(),
            i.description.to_string(),
            yes_no(i.devicestate).into(),
            yes_no(i.presencestate).into(),
            yes_no(i.indications).into(),
            yes_no(i.transfer).into(),
        ]);
    }
    let n = t.rows.len();
    t.totals.push(("channel drivers registered", n.into()));
    t
}

fn show_channeltypes(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    let fmt = |r: &[&str]| {
        format!(
            "{:<15.15}  {:<40.40} {:<13.13} {:<13.13} {:<13.13} {:<13.13}\n",
            r[0], r[1], r[2], r[3], r[4], r[5]
        )
    };
    let t = channeltypes(core);
    let mut o = fmt(&CHANNELTYPE_HEADERS);
    o += &fmt(&["-----------"; 6]);
    for r in &t.rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        o += &fmt(&r);
    }
    o += &format!("----------\n{} channel drivers registered.", t.rows.len());
    Ok(o)
}

fn location(c: &Channel) -> String {
    if c.exten.is_empty() && c.context.is_empty() {
        "(None)".into()
    } else {
        format!("{}@{}:{}", c.exten, c.context, c.priority)
    }
}

fn application(c: &Channel) -> (String, String) {
    if !c.application.is_empty() {
        (c.application.clone(), c.app_data.clone())
    } else if c.direction == Direction::Outbound {
        ("AppDial".into(), "(Outgoing Line)".into())
    } else {
        (String::new(), String::new())
    }
}

/// `core show channel <name>`'s fields (the PBX ones from `Context` on)
/// and its variables.
fn channel_record(
    core: &Core,
    name: &str,
) -> Result<(Record, Vec<(String, String)>), CommandError> {
    let Some(c) = core.channels.find(name) else {
        return Err(CommandError::Failed(format!(
            "{name} is not a known channel"
        )));
    };
    let or_na = |s: &str| {
        if s.is_empty() {
            "(N/A)".to_string()
        } else {
            s.to_string()
        }
    };
    let secs = c.created.elapsed().as_secs();
    let formats: Vec<&str> = c.codecs.iter().map(|f| f.name()).collect();
    let bridge = core
        .bridges
        .snapshot()
        .into_iter()
        .find(|b| b.channels.contains(&c.id))
        .map_or("(Not bridged)".to_string(), |b| b.id.clone());
    let (app, data) = application(&c);
    let mut r = Record::default();
    r.field("Name", c.name.clone());
    r.field("Type", c.tech.clone());
    r.field("UniqueID", c.uniqueid.clone());
    r.field("Caller ID", or_na(&c.caller_num));
    r.field("Caller ID Name", or_na(&c.caller_name));
    r.field("DNID Digits", or_na(&c.exten));
    r.field("State", format!("{} ({})", c.state.as_str(), c.state as u8));
    r.field("NativeFormats", format!("({})", formats.join("|")));
    r.field(
        "Elapsed Time",
        format!("{}h{}m{}s", secs / 3600, secs % 3600 / 60, secs % 60),
    );
    r.field("Bridge ID", bridge);
    r.field("Context", c.context.clone());
    r.field("Extension", c.exten.clone());
    r.field("Priority", c.priority.to_string());
    r.field("Application", app);
    r.field(
        "Data",
        if data.is_empty() {
            "(Empty)".into()
        } else {
            data
        },
    );
    r.field("Account Code", or_na(&c.accountcode));
    r.field("Hangup Cause", c.cause.0.to_string());
    let vars = c
        .vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok((r, vars))
}

/// `core show channel <name>`: Asterisk's key/value dump (main/cli.c
/// `handle_showchan`), keys right-aligned, then the channel's variables.
fn show_channel(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let [name] = args.rest else {
        return Err(CommandError::Usage);
    };
    let (r, vars) = channel_record(core, name)?;
    let mut o = String::from(" -- General --\n");
    for (i, (k, v)) in r.fields.iter().enumerate() {
        if i == 10 {
            o += " --   PBX   --\n";
        }
        o += &format!("{k:>15}: {}\n", v.as_str().unwrap_or_default());
    }
    o += "      Variables:\n";
    for (k, v) in &vars {
        o += &format!("{k}={v}\n");
    }
    Ok(o.trim_end().to_string())
}

/// `core show channels verbose`'s rows (the most fields of its forms).
fn channels_table(core: &Core) -> Table {
    let mut t = Table::new(&[
        "Channel",
        "Context",
        "Extension",
        "Prio",
        "State",
        "Application",
        "Data",
        "CallerID",
        "Duration",
    ]);
    for c in core.channels.snapshot() {
        let (app, data) = application(&c);
        let secs = c.created.elapsed().as_secs();
        t.row(vec![
            c.name.clone(),
            c.context.clone(),
            c.exten.clone(),
            c.priority.to_string(),
            c.state.as_str().to_string(),
            app,
            data,
            c.caller_num.clone(),
            format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
        ]);
    }
    t
}

fn counts(core: &Core) -> String {
    let (ch, calls, done) = (
        core.channels.active_channels() as u64,
        core.channels.active_calls() as u64,
        core.channels.calls_processed(),
    );
    format!(
        "{ch} active channel{}\n{calls} active call{}\n{done} call{} processed",
        ess(ch),
        ess(calls),
        ess(done)
    )
}

fn show_channels(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let mode = match args.rest {
        [] => "",
        [m] if ["concise", "verbose", "count"].contains(&m.to_ascii_lowercase().as_str()) => {
            m.as_str()
        }
        _ => return Err(CommandError::Usage),
    };
    if mode.eq_ignore_ascii_case("count") {
        // Counters only: a copy of every channel here would cost more than
        // the calls themselves on a busy PBX polled for its count.
        return Ok(counts(core));
    }
    let chans = core.channels.snapshot();
    let mut o = String::new();
    match mode.to_ascii_lowercase().as_str() {
        "concise" => {
            for c in &chans {
                let (app, data) = application(c);
                let bridge = c.bridged_to.map(|b| b.0.to_string()).unwrap_or_default();
                o += &format!(
                    "{}!{}!{}!{}!{}!{}!{}!{}!{}!{}!{}!{}!{}!{}\n",
                    c.name,
                    c.context,
                    c.exten,
                    c.priority,
                    c.state,
                    app,
                    data,
                    c.caller_num,
                    c.accountcode,
                    "",
                    3,
                    c.created.elapsed().as_secs(),
                    bridge,
                    c.uniqueid
                );
            }
            return Ok(o.trim_end().to_string());
        }
        "verbose" => {
            let t = channels_table(core);
            let f = |r: &[&str]| {
                format!(
                    "{:<20.20} {:<20.20} {:<20.20} {:<4.4} {:<7.7} {:<12.12} {:<25.25} {:<15.15} {:<8.8}\n",
                    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]
                )
            };
            o += &f(&t.headers);
            for r in &t.rows {
                let r: Vec<&str> = r.iter().map(String::as_str).collect();
                o += &f(&r);
            }
        }
        _ => {
            let f = |a: &str, b: &str, c: &str, d: &str| {
                format!("{a:<64.64} {b:<32.32} {c:<7.7} {d:<30.30}\n")
            };
            o += &f("Channel", "Location", "State", "Application(Data)");
            for c in &chans {
                let (app, data) = application(c);
                let appdata = if app.is_empty() {
                    "(None)".to_string()
                } else {
                    format!("{app}({data})")
                };
                o += &f(&c.name, &location(c), c.state.as_str(), &appdata);
            }
        }
    }
    o += &counts(core);
    Ok(o)
}

fn show_calls(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let calls = core.channels.active_calls() as u64;
    let done = core.channels.calls_processed();
    let mut o = format!(
        "{calls} active call{}\n{done} call{} processed",
        ess(calls),
        ess(done)
    );
    match args.rest {
        [] => {}
        [u] if u.eq_ignore_ascii_case("uptime") => {
            o = format!("{o}\n{}", uptime_lines(core, false))
        }
        [u, s] if u.eq_ignore_ascii_case("uptime") && s.eq_ignore_ascii_case("seconds") => {
            o = format!("{o}\n{}", uptime_lines(core, true))
        }
        _ => return Err(CommandError::Usage),
    }
    Ok(o)
}

fn level_arg(args: &Args<'_>) -> Result<u32, CommandError> {
    match args.rest {
        [v] if v.eq_ignore_ascii_case("off") => Ok(0),
        [v] => v.parse().map_err(|_| CommandError::Usage),
        _ => Err(CommandError::Usage),
    }
}

fn set_verbose(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let n = level_arg(args)?;
    let old = core.log.set_verbose(n);
    core.push_log_level();
    Ok(if n == 0 {
        format!("Verbosity was {old} and is now OFF")
    } else {
        format!("Verbosity was {old} and is now {n}")
    })
}

fn set_debug(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let n = level_arg(args)?;
    let old = core.log.set_debug(n);
    core.push_log_level();
    Ok(if n == 0 {
        format!("Core debug was {old} and is now OFF")
    } else {
        format!("Core debug was {old} and is now {n}")
    })
}

fn stop_now(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    core.request_shutdown(ShutdownMode::Now);
    Ok("Sirius is stopping now.".into())
}

fn stop_gracefully(core: &Arc<Core>, _: &Args<'_>) -> CommandResult {
    core.request_shutdown(ShutdownMode::Gracefully);
    let n = core.channels.active_channels();
    Ok(format!(
        "Refusing new calls; Sirius stops when the last channel hangs up ({n} active)."
    ))
}

#[cfg(test)]
mod tests {
    use super::uptime_words;
    use std::time::Duration;

    #[test]
    fn uptime_reads_like_asterisk() {
        assert_eq!(
            uptime_words(Duration::from_secs(85)),
            "1 minute, 25 seconds"
        );
        assert_eq!(uptime_words(Duration::from_secs(0)), "0 seconds");
        assert_eq!(uptime_words(Duration::from_secs(3601)), "1 hour, 1 second");
        assert_eq!(uptime_words(Duration::from_secs(120)), "2 minutes");
    }
}
