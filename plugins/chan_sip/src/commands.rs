//! `sip show peers|peer|settings|banned`, `sip unban`, `sip reload`, `sip set debug` — Asterisk's
//! layouts (chan_sip.c `_sip_show_peers`, `_sip_show_peer`, `sip_show_settings`).

use crate::config::Peer;
use crate::{unix_now, Shared};
use sirius_abi::{Capabilities, CommandSpec};
use sirius_sip::qualify::PeerStatus;
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
        ["sip", "show", "sharedlines"] => {
            let running = shared.running();
            let mut lines: Vec<(String, u32)> = running
                .peers
                .values()
                .filter(|p| p.shared_appearances > 0)
                .map(|p| (p.name.clone(), p.shared_appearances))
                .collect();
            lines.sort();
            Ok(crate::sca::render_sharedlines(&lines, &shared.lines))
        }
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
        ["sip", "show", "inuse"] => ask(shared, |tx| crate::driver::Command::ShowInuse(false, tx)),
        ["sip", "show", "inuse", "all"] => {
            ask(shared, |tx| crate::driver::Command::ShowInuse(true, tx))
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

fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

fn status(shared: &Shared, p: &Peer) -> (String, Option<bool>) {
    match shared.qualify.lock().get(&p.name) {
        None => ("Unmonitored".into(), None),
        Some(q) => (
            q.status().text(),
            Some(matches!(
                q.status(),
                PeerStatus::Ok(_) | PeerStatus::Lagged(_)
            )),
        ),
    }
}

fn show_peers(shared: &Shared, like: Option<&str>) -> String {
    let running = shared.running();
    let reg = shared.registrar.lock();
    let row = |a: &str, b: &str, c: &str, d: &str, e: &str, f: &str, g: &str, h: &str, i: &str| {
        format!("{a:<25.25} {b:<39.39} {c:<3.3} {d:<10.10} {e:<10.10} {f:<3.3} {g:<8} {h:<11} {i:<32.32}\n")
    };
    let mut out = row(
        "Name/username",
        "Host",
        "Dyn",
        "Forcerport",
        "Comedia",
        "ACL",
        "Port",
        "Status",
        "Description",
    );
    let (mut mon_on, mut mon_off, mut unmon_on, mut unmon_off) = (0, 0, 0, 0);
    let mut names: Vec<&String> = running.peers.keys().collect();
    names.sort();
    let mut shown = 0;
    for name in names {
        if like.is_some_and(|l| !name.contains(l)) {
            continue;
        }
        let p = &running.peers[name];
        let binding = reg.binding(name);
        let addr = binding.map(|b| b.addr).or(p.addr);
        let label = if binding.is_some() {
            format!("{name}/{}", p.username)
        } else {
            name.clone()
        };
        let host = addr.map_or_else(|| "(Unspecified)".to_string(), |a| a.ip().to_string());
        let port = addr.map_or(0, |a| a.port()).to_string();
        let (st, online) = status(shared, p);
        match (online, addr.is_some()) {
            (Some(true), _) => mon_on += 1,
            (Some(false), _) => mon_off += 1,
            (None, true) => unmon_on += 1,
            (None, false) => unmon_off += 1,
        }
        out += &row(
            &label,
            &host,
            if p.dynamic { "D" } else { "" },
            yes_no(p.force_rport),
            yes_no(p.comedia),
            if p.acl.is_set() { "A" } else { "" },
            &port,
            &st,
            &p.description,
        );
        shown += 1;
    }
    out += &format!(
        "{shown} sip peers [Monitored: {mon_on} online, {mon_off} offline Unmonitored: {unmon_on} online, {unmon_off} offline]"
    );
    out
}

fn show_peer(shared: &Shared, name: &str) -> Result<String, String> {
    let running = shared.running();
    let p = running
        .peers
        .get(name)
        .ok_or_else(|| format!("Peer {name} not found."))?;
    let reg = shared.registrar.lock();
    let b = reg.binding(name);
    let now = unix_now();
    let line = |k: &str, v: &str| format!("  {k:<13}: {v}\n");
    let mut o = String::from("\n\n");
    o += &format!("  * Name       : {name}\n");
    o += &line("Description", &p.description);
    o += &line(
        "Secret",
        if p.ha1.is_some() {
            "<Set>"
        } else {
            "<Not set>"
        },
    );
    o += &line("Context", &p.context);
    o += &line("Subscr.Cont.", &p.subscribecontext);
    o += &line("Accountcode", &p.accountcode);
    o += &line("Mailbox", p.mailbox.as_deref().unwrap_or(""));
    o += &line("VM Extension", &p.vmexten);
    let sent = shared.mwi.counts(&p.name).unwrap_or_default();
    o += &line("LastMsgsSent", &format!("{}/{}", sent.new, sent.old));
    o += &line("Call limit", &p.call_limit.to_string());
    o += &line("Dynamic", yes_no(p.dynamic));
    o += &line("Callerid", p.callerid.as_deref().unwrap_or(""));
    o += &line(
        "Expire",
        &b.map_or(-1i64, |b| b.expires_at.saturating_sub(now) as i64)
            .to_string(),
    );
    let insecure = match (p.insecure_port, p.insecure_invite) {
        (true, true) => "port,invite",
        (true, false) => "port",
        (false, true) => "invite",
        (false, false) => "no",
    };
    o += &line("Insecure", insecure);
    o += &line("Force rport", yes_no(p.force_rport));
    o += &line("Comedia", yes_no(p.comedia));
    o += &line("ACL", yes_no(p.acl.is_set()));
    o += &line("DTMFmode", &p.dtmfmode);
    // Asterisk's words: the transport in use, then the ones allowed.
    let words = |ts: &[sirius_sip::transaction::Transport]| {
        ts.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
    };
    let in_use = b.map_or(p.transports[0], |b| b.transport());
    o += &line("Transport", in_use.as_str());
    o += &line("Allowed.Trsp", &words(&p.transports));
    let addr = b.map(|b| b.addr).or(p.addr);
    o += &line(
        "Addr->IP",
        &addr.map_or_else(|| "(null)".to_string(), |a| a.to_string()),
    );
    o += &line("Def. Username", &p.username);
    o += &line("Codecs", &Capabilities::of(&p.codecs).to_string());
    o += &line(
        "Codec Order",
        &p.codecs
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(","),
    );
    o += &line("Status", &status(shared, p).0);
    o += &line("Useragent", b.map_or("", |b| b.useragent.as_str()));
    o += &line("Reg. Contact", b.map_or("", |b| b.contact.as_str()));
    // Every other contact the peer registered (max_contacts), newest first,
    // each with where it is and how long it has left.
    o += &line("Max contacts", &p.max_contacts.to_string());
    for c in reg.contacts(name).iter().skip(1) {
        o += &line(
            "Contact",
            &format!(
                "{} ({}, {} s)",
                c.contact,
                c.addr,
                c.expires_at.saturating_sub(now)
            ),
        );
    }
    o += &line(
        "Qualify",
        &p.qualify_maxms
            .map_or("no".to_string(), |ms| format!("{ms} ms")),
    );
    Ok(o)
}

/// A table only an endpoint can build, asked of the first shard's driver
/// and waited for, briefly.
fn ask(
    shared: &Shared,
    cmd: impl FnOnce(std::sync::mpsc::Sender<String>) -> crate::driver::Command,
) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    shared
        .shards
        .send(0, cmd(tx))
        .map_err(|_| "chan_sip is stopping".to_string())?;
    rx.recv_timeout(std::time::Duration::from_secs(2))
        .map_err(|_| "chan_sip did not answer in time".to_string())
}

/// `sip show subscriptions`: every shard's subscriptions, by Call-ID.
fn show_subscriptions(shared: &Shared) -> Result<String, String> {
    let rows = shared.shards.gather(
        crate::driver::Command::ShowSubscriptions,
        std::time::Duration::from_secs(2),
    );
    if rows.len() < shared.shards.count() {
        return Err("chan_sip did not answer in time".to_string());
    }
    Ok(crate::session::render_subscriptions(
        rows.into_iter().flatten().collect(),
    ))
}

/// `sip show channels`: every shard's sessions (each owns its own), in
/// channel order.
fn show_channels(shared: &Shared) -> Result<String, String> {
    let rows = shared.shards.gather(
        crate::driver::Command::ShowChannels,
        std::time::Duration::from_secs(2),
    );
    if rows.len() < shared.shards.count() {
        return Err("chan_sip did not answer in time".to_string());
    }
    Ok(crate::session::render_channels(rows))
}

/// `sip show banned`: the brute-force lockouts in force.
fn show_banned(shared: &Shared) -> String {
    let row =
        |a: &str, b: &str, c: &str, d: &str| format!("{a:<39.39} {b:<20.20} {c:>8.8} {d:>10.10}\n");
    let mut o = row("Address", "Username", "Failures", "Expires(s)");
    let bans = shared.registrar.lock().lockout().banned(unix_now());
    for b in &bans {
        o += &row(
            &b.ip.to_string(),
            &b.user,
            &b.failures.to_string(),
            &b.left.to_string(),
        );
    }
    o += &match bans.len() {
        1 => "1 lockout in force.".to_string(),
        n => format!("{n} lockouts in force."),
    };
    o
}

fn show_registry(shared: &Shared) -> String {
    let row = |a: &str, b: &str, c: &str, d: &str, e: &str, f: &str| {
        format!("{a:<39.39} {b:<6.6} {c:<12.12}  {d:>8.8} {e:<20.20} {f:<25.25}\n")
    };
    let mut o = row("Host", "dnsmgr", "Username", "Refresh", "State", "Reg.Time");
    let regs = shared.outbound.lock();
    for r in regs.iter() {
        let refresh = r.sm.granted_expiry().unwrap_or(r.cfg.expiry).to_string();
        let when = r
            .registered_at
            .and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%a, %d %b %Y %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        o += &row(
            &r.host_column(),
            "N",
            &r.cfg.user,
            &refresh,
            r.sm.state().as_str(),
            &when,
        );
    }
    o += &format!("{} SIP registrations.", regs.len());
    o
}

fn show_settings(shared: &Shared) -> String {
    let running = shared.running();
    let g = &running.cfg.general;
    let line = |k: &str, v: &str| format!("  {k:<24}{v}\n");
    let mut o = String::from("\n\nGlobal Settings:\n----------------\n");
    o += &line("UDP Bindaddress:", &shared.bound.to_string());
    o += &line(
        "TCP SIP Port:",
        &shared
            .tcp_bound
            .map_or("Disabled".into(), |a| a.port().to_string()),
    );
    o += &line(
        "TCP Bindaddress:",
        &shared
            .tcp_bound
            .map_or("Disabled".into(), |a| a.to_string()),
    );
    o += &line("Realm. (realm):", &g.realm);
    o += &line("Allow guest calls:", yes_no(g.allowguest));
    o += &line("Always auth rejects:", yes_no(g.alwaysauthreject));
    o += &line("Default context:", &g.context);
    o += &line("Reg. min duration", &format!("{} secs", g.minexpiry));
    o += &line("Reg. max duration:", &format!("{} secs", g.maxexpiry));
    o += &line(
        "Reg. default duration:",
        &format!("{} secs", g.defaultexpiry),
    );
    o += &line(
        "Qualify Freq :",
        &format!("{} ms", u64::from(g.qualifyfreq) * 1000),
    );
    o += &line("Timer T1:", &format!("{}", g.t1));
    o += &line("User Agent:", &g.useragent);
    o += &line("Auth failures to block:", &g.authfailures.to_string());
    o += &line(
        "SIP Debugging:",
        &match (
            shared.debug.load(Ordering::Relaxed),
            *shared.debug_addr.lock(),
        ) {
            (false, _) => "Disabled".to_string(),
            (true, None) => "Enabled".to_string(),
            (true, Some((ip, Some(port)))) => {
                format!("Enabled for {}", std::net::SocketAddr::new(ip, port))
            }
            (true, Some((ip, None))) => format!("Enabled for {ip}"),
        },
    );
    o += &line("Peers:", &running.peers.len().to_string());
    o += &line(
        "RTP packets relayed:",
        &shared.rtp_relayed.load(Ordering::Relaxed).to_string(),
    );
    o += &line(
        "RTCP packets relayed:",
        &shared.rtcp_relayed.load(Ordering::Relaxed).to_string(),
    );
    o += &line(
        "Registered peers:",
        &shared.registrar.lock().bindings().len().to_string(),
    );
    o
}
