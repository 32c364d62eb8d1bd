//! `sip show peers|peer|settings|banned`, `sip unban`, `sip reload`, `sip set debug` — Asterisk's
//! layouts (chan_sip.c `_sip_show_peers`, `_sip_show_peer`, `sip_show_settings`).

use crate::show;
use crate::{unix_now, Shared};
use sirius_abi::view::Table;
use sirius_abi::CommandSpec;
use std::sync::atomic::Ordering;

/// The command table.
pub fn specs() -> Vec<CommandSpec> {
    let row = |w: &str, s: &str, u: &str| CommandSpec {
        words: w.into(),
        summary: s.into(),
        usage: u.into(),
    };
    vec![
        row("sip show peers", "List defined SIP peers", "Usage: sip show peers [like <pattern>]\n       Lists all known SIP peers."),
        row("sip show peer", "Show details on specific SIP peer", "Usage: sip show peer <name>\n       Shows all details on one SIP peer and the current status."),
        row("sip show settings", "Show SIP global settings", "Usage: sip show settings\n       Provides detailed list of the configuration of the SIP channel."),
        row("sip show channels", "List active SIP channels", "Usage: sip show channels\n       Lists all currently active SIP calls (dialogs)."),
        row("sip show subscriptions", "List active SIP subscriptions", "Usage: sip show subscriptions\n       Lists active SIP subscriptions for extension state (busy lamps)."),
        row("sip show sharedlines", "List shared lines and their appearances", "Usage: sip show sharedlines\n       Lists every shared line (a peer with shared-appearances) and the state of each\n       appearance in use: alerting, progressing, active or held, with whom and on which channel."),
        row("sip show inuse", "List all inuse/limits", "Usage: sip show inuse [all]\n       List all SIP peers' calls in use and their call-limit."),
        row("sip show lag", "Show how late the SIP event loop runs", "Usage: sip show lag\n       Shows the worst lateness of the SIP event loop's timers in each of the last 60 seconds:\n       the time the loop spent on other work while a timer was due (a stall detector),\n       then how long received datagrams waited before they were handled (the input queue)."),
        row("sip show registry", "List SIP registration status", "Usage: sip show registry\n       Lists all registration requests and status."),
        row("sip show banned", "List addresses and users locked out", "Usage: sip show banned\n       Lists the (address, username) pairs refused with 403 after too many failed\n       authentications (authfailures within 60 s), and the seconds left on each."),
        row("sip unban", "Lift the lockouts of an address", "Usage: sip unban <address>\n       Lifts every lockout of the address and forgets its failed authentications."),
        row("sip qualify peer", "Send an OPTIONS packet to a peer", "Usage: sip qualify peer <name>\n       Send a SIP OPTIONS request to a peer to check if it is up."),
        row("sip reload", "Reload SIP configuration", "Usage: sip reload\n       Reloads SIP configuration from sip.toml"),
        row("sip set debug", "Enable/Disable SIP debugging", "Usage: sip set debug {on|off|ip <host[:port]>|peer <peer>}\n       Enables or disables the SIP message trace in the log, for all traffic or one address."),
    ]
}

/// Runs a command line (all words).
pub fn run(
    shared: &Shared,
    args: &[String],
    reload: impl Fn() -> Result<String, String>,
) -> Result<String, String> {
    let w: Vec<&str> = args.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["sip", "show", "peers"] => Ok(show_peers(shared, None)),
        ["sip", "show", "peers", "like", pat] => Ok(show_peers(shared, Some(pat))),
        ["sip", "show", "peer", name] => show_peer(shared, name),
        ["sip", "show", "settings"] => Ok(show_settings(shared)),
        ["sip", "show", "registry"] => Ok(show_registry(shared)),
        ["sip", "show", "lag"] => {
            let now = std::time::Instant::now();
            let render = |meters: &[parking_lot::Mutex<crate::lag::LagMeter>],
                          f: fn(&mut [&mut crate::lag::LagMeter], std::time::Instant) -> String| {
                let mut guards: Vec<_> = meters.iter().map(|m| m.lock()).collect();
                let mut refs: Vec<&mut crate::lag::LagMeter> =
                    guards.iter_mut().map(|g| &mut **g).collect();
                f(&mut refs, now)
            };
            let timers = render(&shared.lag, crate::lag::render);
            let waits = render(&shared.wait, crate::lag::render_waits);
            Ok(format!("{timers}\n{waits}"))
        }
        ["sip", "show", "channels"] => show_channels(shared),
        ["sip", "show", "subscriptions"] => show_subscriptions(shared),
        ["sip", "show", "sharedlines"] => Ok(crate::sca::render_sharedlines(&sharedlines(shared))),
        ["sip", "show", "banned"] => Ok(show_banned(shared)),
        ["sip", "unban", addr] => {
            let ip: std::net::IpAddr = addr
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("'{addr}' is not an IP address"))?;
            let lifted = shared.registrar.lock().lockout().unban(ip, unix_now());
            Ok(match lifted {
                0 => format!("{ip} was not locked out"),
                1 => format!("Lifted 1 lockout of {ip}"),
                n => format!("Lifted {n} lockouts of {ip}"),
            })
        }
        ["sip", "show", "inuse"] => Ok(crate::session::render_inuse(&show::inuse(shared, false))),
        ["sip", "show", "inuse", "all"] => {
            Ok(crate::session::render_inuse(&show::inuse(shared, true)))
        }
        ["sip", "qualify", "peer", name] => {
            if !shared.running().peers.contains_key(*name) {
                return Err(format!("Peer '{name}' not found"));
            }
            if !shared.qualify.lock().contains_key(*name) {
                return Err(format!("Peer '{name}' is not monitored (qualify is off)"));
            }
            // Pokes run on the first shard (crate::shards).
            shared
                .shards
                .send(0, crate::driver::Command::QualifyNow(name.to_string()))
                .map_err(|_| "chan_sip is stopping".to_string())?;
            Ok(format!("Qualifying peer '{name}'"))
        }
        ["sip", "reload"] => reload(),
        ["sip", "set", "debug", "on"] => {
            *shared.debug_addr.lock() = None;
            shared.debug.store(true, Ordering::Relaxed);
            Ok("SIP Debugging enabled".into())
        }
        ["sip", "set", "debug", "off"] => {
            *shared.debug_addr.lock() = None;
            shared.debug.store(false, Ordering::Relaxed);
            Ok("SIP Debugging Disabled".into())
        }
        ["sip", "set", "debug", "ip", addr] => {
            let filter = parse_debug_addr(addr)?;
            debug_only(shared, filter);
            Ok(format!("SIP Debugging Enabled for IP: {addr}"))
        }
        ["sip", "set", "debug", "peer", name] => {
            let running = shared.running();
            let p = running
                .peers
                .get(*name)
                .ok_or_else(|| format!("No such peer '{name}'"))?;
            let addr = p
                .addr
                .or_else(|| shared.registrar.lock().binding(name).map(|b| b.addr))
                .ok_or_else(|| format!("Unable to get IP address of peer '{name}'"))?;
            debug_only(shared, (addr.ip(), Some(addr.port())));
            Ok(format!("SIP Debugging Enabled for IP: {addr}"))
        }
        _ => Err(String::new()),
    }
}

/// Completion: peer names after `sip show peer`.
pub fn complete(shared: &Shared, args: &[String], pos: usize) -> Vec<String> {
    match (
        args.get(1).map(String::as_str),
        args.get(2).map(String::as_str),
        pos,
    ) {
        (Some("show"), Some("peer"), 3) => shared.running().peers.keys().cloned().collect(),
        (Some("qualify"), Some("peer"), 3) => shared.qualify.lock().keys().cloned().collect(),
        (Some("show"), Some("peers"), 3) => vec!["like".into()],
        (Some("set"), Some("debug"), 3) => {
            vec!["on".into(), "off".into(), "ip".into(), "peer".into()]
        }
        (Some("set"), Some("debug"), 4) if args.get(3).is_some_and(|a| a == "peer") => {
            shared.running().peers.keys().cloned().collect()
        }
        _ => Vec::new(),
    }
}

/// `sip set debug ip <ip[:port]>`: an IP address, optionally with a port.
fn parse_debug_addr(text: &str) -> Result<(std::net::IpAddr, Option<u16>), String> {
    if let Ok(sa) = text.parse::<std::net::SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .map(|ip| (ip, None))
        .map_err(|_| format!("'{text}' is not an IP address (ip or ip:port)"))
}

fn debug_only(shared: &Shared, filter: (std::net::IpAddr, Option<u16>)) {
    *shared.debug_addr.lock() = Some(filter);
    shared.debug.store(true, Ordering::Relaxed);
}

fn show_peers(shared: &Shared, like: Option<&str>) -> String {
    let t = show::peers(shared, like);
    let row = |r: &[&str]| {
        format!(
            "{:<25.25} {:<39.39} {:<3.3} {:<10.10} {:<10.10} {:<3.3} {:<8} {:<11} {:<32.32}\n",
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]
        )
    };
    let mut out = row(&show::PEER_HEADERS);
    for r in &t.rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        out += &row(&r);
    }
    let n = |k: &str| {
        t.totals
            .iter()
            .find(|(l, _)| *l == k)
            .map_or(0, |(_, v)| v.as_u64().unwrap_or(0))
    };
    out += &format!(
        "{} sip peers [Monitored: {} online, {} offline Unmonitored: {} online, {} offline]",
        t.rows.len(),
        n("monitored online"),
        n("monitored offline"),
        n("unmonitored online"),
        n("unmonitored offline")
    );
    out
}

fn show_peer(shared: &Shared, name: &str) -> Result<String, String> {
    let (r, contacts) = show::peer(shared, name)?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let line = |k: &str, v: &str| format!("  {k:<13}: {v}\n");
    let mut o = String::from("\n\n");
    for (k, v) in &r.fields {
        match k.as_str() {
            "Name" => o += &format!("  * Name       : {}\n", text(v)),
            "Qualify" => {
                for c in &contacts {
                    o += &line("Contact", c);
                }
                o += &line(k, &text(v));
            }
            _ => o += &line(k, &text(v)),
        }
    }
    Ok(o)
}

/// `sip show subscriptions`' rows: every shard's subscriptions, by Call-ID.
pub(crate) fn subscriptions(shared: &Shared) -> Result<Table, String> {
    let rows = shared.shards.gather(
        crate::driver::Command::ShowSubscriptions,
        std::time::Duration::from_secs(2),
    );
    if rows.len() < shared.shards.count() {
        return Err("chan_sip did not answer in time".to_string());
    }
    Ok(crate::session::subscriptions_table(
        rows.into_iter().flatten().collect(),
    ))
}

fn show_subscriptions(shared: &Shared) -> Result<String, String> {
    Ok(crate::session::render_subscriptions(&subscriptions(
        shared,
    )?))
}

/// `sip show channels`' rows: every shard's sessions (each owns its own),
/// in channel order.
pub(crate) fn channels(shared: &Shared) -> Result<Table, String> {
    let rows = shared.shards.gather(
        crate::driver::Command::ShowChannels,
        std::time::Duration::from_secs(2),
    );
    if rows.len() < shared.shards.count() {
        return Err("chan_sip did not answer in time".to_string());
    }
    Ok(crate::session::channels_table(rows))
}

fn show_channels(shared: &Shared) -> Result<String, String> {
    Ok(crate::session::render_channels(&channels(shared)?))
}

/// `sip show sharedlines`' rows.
pub(crate) fn sharedlines(shared: &Shared) -> Table {
    let running = shared.running();
    let mut lines: Vec<(String, u32)> = running
        .peers
        .values()
        .filter(|p| p.shared_appearances > 0)
        .map(|p| (p.name.clone(), p.shared_appearances))
        .collect();
    lines.sort();
    crate::sca::sharedlines_table(&lines, &shared.lines)
}

/// `sip show lag` as JSON: the same figures as the text.
pub(crate) fn lag_json(shared: &Shared) -> serde_json::Value {
    let now = std::time::Instant::now();
    let json = |meters: &[parking_lot::Mutex<crate::lag::LagMeter>]| {
        let mut guards: Vec<_> = meters.iter().map(|m| m.lock()).collect();
        let mut refs: Vec<&mut crate::lag::LagMeter> =
            guards.iter_mut().map(|g| &mut **g).collect();
        crate::lag::section_json(&mut refs, now)
    };
    serde_json::json!({ "timers": json(&shared.lag), "input_wait": json(&shared.wait) })
}

/// `sip show banned`: the brute-force lockouts in force.
fn show_banned(shared: &Shared) -> String {
    let t = show::banned(shared);
    let row = |r: &[&str]| {
        format!(
            "{:<39.39} {:<20.20} {:>8.8} {:>10.10}\n",
            r[0], r[1], r[2], r[3]
        )
    };
    let mut o = row(&t.headers);
    for r in &t.rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        o += &row(&r);
    }
    o += &match t.rows.len() {
        1 => "1 lockout in force.".to_string(),
        n => format!("{n} lockouts in force."),
    };
    o
}

fn show_registry(shared: &Shared) -> String {
    let t = show::registry(shared);
    let row = |r: &[&str]| {
        format!(
            "{:<39.39} {:<6.6} {:<12.12}  {:>8.8} {:<20.20} {:<25.25}\n",
            r[0], r[1], r[2], r[3], r[4], r[5]
        )
    };
    let mut o = row(&t.headers);
    for r in &t.rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        o += &row(&r);
    }
    o += &format!("{} SIP registrations.", t.rows.len());
    o
}

fn show_settings(shared: &Shared) -> String {
    let mut o = String::from("\n\nGlobal Settings:\n----------------\n");
    for (k, v) in show::settings(shared).fields {
        o += &format!("  {k:<24}{}\n", v.as_str().unwrap_or_default());
    }
    o
}
