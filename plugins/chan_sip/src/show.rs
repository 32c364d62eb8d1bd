//! What chan_sip's `show` commands list, as rows and fields
//! (`sirius_abi::view`): the console's text is laid out from them in
//! `commands.rs` (Asterisk's layouts) and `sirius -rx --json` serializes
//! the same ones ([`json`]), so a script reads what an admin sees.

use crate::config::Peer;
use crate::{unix_now, Shared};
use serde_json::{json, Value};
use sirius_abi::view::{Record, Table};
use sirius_abi::Capabilities;
use sirius_sip::qualify::PeerStatus;
use std::sync::atomic::Ordering;

/// `sip show peers [like x]`' headers.
pub const PEER_HEADERS: [&str; 9] = [
    "Name/username",
    "Host",
    "Dyn",
    "Forcerport",
    "Comedia",
    "ACL",
    "Port",
    "Status",
    "Description",
];

pub(crate) fn yes_no(b: bool) -> &'static str {
    if b {
        "Yes"
    } else {
        "No"
    }
}

/// A peer's status text, and whether it is online (`None`: not monitored).
pub(crate) fn status(shared: &Shared, p: &Peer) -> (String, Option<bool>) {
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

/// `sip show peers`: the rows, and the counts of its last line.
pub fn peers(shared: &Shared, like: Option<&str>) -> Table {
    let running = shared.running();
    let mut t = Table::new(&PEER_HEADERS);
    let (mut mon_on, mut mon_off, mut unmon_on, mut unmon_off) = (0u32, 0u32, 0u32, 0u32);
    let mut names: Vec<&String> = running.peers.keys().collect();
    names.sort();
    // The registrar's lock is taken after the qualify map's, never while it
    // is held (status() takes it): the order the metrics take them in too.
    let rows: Vec<(String, Option<std::net::SocketAddr>, bool)> = {
        let reg = shared.registrar.lock();
        names
            .iter()
            .filter(|n| like.is_none_or(|l| n.contains(l)))
            .map(|n| {
                let b = reg.binding(n);
                (
                    n.to_string(),
                    b.map(|b| b.addr).or(running.peers[*n].addr),
                    b.is_some(),
                )
            })
            .collect()
    };
    for (name, addr, registered) in rows {
        let p = &running.peers[&name];
        let label = if registered {
            format!("{name}/{}", p.username)
        } else {
            name.clone()
        };
        let (st, online) = status(shared, p);
        match (online, addr.is_some()) {
            (Some(true), _) => mon_on += 1,
            (Some(false), _) => mon_off += 1,
            (None, true) => unmon_on += 1,
            (None, false) => unmon_off += 1,
        }
        t.row(vec![
            label,
            addr.map_or_else(|| "(Unspecified)".to_string(), |a| a.ip().to_string()),
            if p.dynamic { "D" } else { "" }.into(),
            yes_no(p.force_rport).into(),
            yes_no(p.comedia).into(),
            if p.acl.is_set() { "A" } else { "" }.into(),
            addr.map_or(0, |a| a.port()).to_string(),
            st,
            p.description.clone(),
        ]);
    }
    let n = t.rows.len();
    t.totals = vec![
        ("sip peers", n.into()),
        ("monitored online", mon_on.into()),
        ("monitored offline", mon_off.into()),
        ("unmonitored online", unmon_on.into()),
        ("unmonitored offline", unmon_off.into()),
    ];
    t
}

/// `sip show peer <name>`: its fields (a second contact and more are
/// `Contact` fields, in the JSON the list `other_contacts`).
pub fn peer(shared: &Shared, name: &str) -> Result<(Record, Vec<String>), String> {
    let running = shared.running();
    let p = running
        .peers
        .get(name)
        .ok_or_else(|| format!("Peer {name} not found."))?;
    let (st, _) = status(shared, p);
    let reg = shared.registrar.lock();
    let b = reg.binding(name);
    let now = unix_now();
    let mut r = Record::default();
    r.field("Name", name);
    r.field("Description", p.description.as_str());
    r.field(
        "Secret",
        if p.ha1.is_some() {
            "<Set>"
        } else {
            "<Not set>"
        },
    );
    r.field("Context", p.context.as_str());
    r.field("Subscr.Cont.", p.subscribecontext.as_str());
    r.field("Accountcode", p.accountcode.as_str());
    r.field("Mailbox", p.mailbox.as_deref().unwrap_or(""));
    r.field("VM Extension", p.vmexten.as_str());
    let sent = shared.mwi.counts(&p.name).unwrap_or_default();
    r.field("LastMsgsSent", format!("{}/{}", sent.new, sent.old));
    r.field("Call limit", p.call_limit.to_string());
    r.field("Dynamic", yes_no(p.dynamic));
    r.field("Callerid", p.callerid.as_deref().unwrap_or(""));
    r.field(
        "Expire",
        b.map_or(-1i64, |b| b.expires_at.saturating_sub(now) as i64)
            .to_string(),
    );
    r.field(
        "Insecure",
        match (p.insecure_port, p.insecure_invite) {
            (true, true) => "port,invite",
            (true, false) => "port",
            (false, true) => "invite",
            (false, false) => "no",
        },
    );
    r.field("Force rport", yes_no(p.force_rport));
    r.field("Comedia", yes_no(p.comedia));
    r.field("ACL", yes_no(p.acl.is_set()));
    r.field("DTMFmode", p.dtmfmode.as_str());
    // Asterisk's words: the transport in use, then the ones allowed.
    let words = |ts: &[sirius_sip::transaction::Transport]| {
        ts.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
    };
    let in_use = b.map_or(p.transports[0], |b| b.transport());
    r.field("Transport", in_use.as_str());
    r.field("Allowed.Trsp", words(&p.transports));
    let addr = b.map(|b| b.addr).or(p.addr);
    r.field(
        "Addr->IP",
        addr.map_or_else(|| "(null)".to_string(), |a| a.to_string()),
    );
    r.field("Def. Username", p.username.as_str());
    r.field("Codecs", Capabilities::of(&p.codecs).to_string());
    r.field(
        "Codec Order",
        p.codecs
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(","),
    );
    r.field("Status", st);
    r.field("Useragent", b.map_or("", |b| b.useragent.as_str()));
    r.field("Reg. Contact", b.map_or("", |b| b.contact.as_str()));
    r.field("Max contacts", p.max_contacts.to_string());
    // Every other contact the peer registered (max_contacts), newest first,
    // each with where it is and how long it has left.
    let contacts = reg
        .contacts(name)
        .iter()
        .skip(1)
        .map(|c| {
            format!(
                "{} ({}, {} s)",
                c.contact,
                c.addr,
                c.expires_at.saturating_sub(now)
            )
        })
        .collect();
    r.field(
        "Qualify",
        p.qualify_maxms
            .map_or("no".to_string(), |ms| format!("{ms} ms")),
    );
    Ok((r, contacts))
}

/// `sip show settings`' fields, with the text's labels.
pub fn settings(shared: &Shared) -> Record {
    let running = shared.running();
    let g = &running.cfg.general;
    let mut r = Record::default();
    r.field("UDP Bindaddress:", shared.bound.to_string());
    r.field(
        "TCP SIP Port:",
        shared
            .tcp_bound
            .map_or("Disabled".into(), |a| a.port().to_string()),
    );
    r.field(
        "TCP Bindaddress:",
        shared
            .tcp_bound
            .map_or("Disabled".into(), |a| a.to_string()),
    );
    r.field("Realm. (realm):", g.realm.as_str());
    r.field("Allow guest calls:", yes_no(g.allowguest));
    r.field("Always auth rejects:", yes_no(g.alwaysauthreject));
    r.field("Default context:", g.context.as_str());
    r.field("Reg. min duration", format!("{} secs", g.minexpiry));
    r.field("Reg. max duration:", format!("{} secs", g.maxexpiry));
    r.field(
        "Reg. default duration:",
        format!("{} secs", g.defaultexpiry),
    );
    r.field(
        "Qualify Freq :",
        format!("{} ms", u64::from(g.qualifyfreq) * 1000),
    );
    r.field("Timer T1:", g.t1.to_string());
    r.field("User Agent:", g.useragent.as_str());
    r.field("Auth failures to block:", g.authfailures.to_string());
    r.field(
        "SIP Debugging:",
        match (
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
    r.field("Peers:", running.peers.len().to_string());
    r.field(
        "RTP packets relayed:",
        shared.rtp_relayed.load(Ordering::Relaxed).to_string(),
    );
    r.field(
        "RTCP packets relayed:",
        shared.rtcp_relayed.load(Ordering::Relaxed).to_string(),
    );
    r.field(
        "Registered peers:",
        shared.registrar.lock().bindings().len().to_string(),
    );
    r
}

/// `sip show registry`' rows.
pub fn registry(shared: &Shared) -> Table {
    let mut t = Table::new(&["Host", "dnsmgr", "Username", "Refresh", "State", "Reg.Time"]);
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
        t.row(vec![
            r.host_column(),
            "N".into(),
            r.cfg.user.clone(),
            refresh,
            r.sm.state().as_str().to_string(),
            when,
        ]);
    }
    let n = t.rows.len();
    t.totals.push(("SIP registrations", n.into()));
    t
}

/// `sip show banned`' rows.
pub fn banned(shared: &Shared) -> Table {
    let mut t = Table::new(&["Address", "Username", "Failures", "Expires(s)"]);
    for b in shared.registrar.lock().lockout().banned(unix_now()) {
        t.row(vec![
            b.ip.to_string(),
            b.user.clone(),
            b.failures.to_string(),
            b.left.to_string(),
        ]);
    }
    let n = t.rows.len();
    t.totals.push(("lockouts in force", n.into()));
    t
}

/// `sip show inuse [all]`' rows: in use as Asterisk shows it,
/// calls/ringing/on hold; without `all`, only peers with a call-limit or a
/// call.
pub fn inuse(shared: &Shared, all: bool) -> Table {
    let running = shared.running();
    let mut t = Table::new(&["* Peer name", "In use", "Limit"]);
    let mut names: Vec<&String> = running.peers.keys().collect();
    names.sort();
    for n in names {
        let p = &running.peers[n];
        let (used, ringing, held) = shared.in_use.counts(n);
        if !all && p.call_limit == 0 && used == 0 {
            continue;
        }
        let limit = if p.call_limit == 0 {
            "N/A".to_string()
        } else {
            p.call_limit.to_string()
        };
        t.row(vec![n.clone(), format!("{used}/{ringing}/{held}"), limit]);
    }
    t
}

/// `sip show channels`' headers (chan_sip names two columns `Peer`: the
/// address, then the peer; the JSON calls the first `address`).
pub const CHANNEL_HEADERS: [&str; 8] = [
    "Peer",
    "User/ANR",
    "Call ID",
    "Format",
    "Hold",
    "Last Message",
    "Expiry",
    "Peer",
];

/// `sip show subscriptions`' headers.
pub const SUBSCRIPTION_HEADERS: [&str; 8] = [
    "Peer",
    "User",
    "Call ID",
    "Extension",
    "Last state",
    "Type",
    "Mailbox",
    "Expiry",
];

/// A table whose first column the JSON names otherwise than the text.
fn renamed(t: &Table, first: &'static str) -> Value {
    let mut t = t.clone();
    if let Some(h) = t.headers.first_mut() {
        *h = first;
    }
    t.to_json()
}

/// `sip show <what>` as JSON text (`sirius -rx --json`).
pub fn json(shared: &Shared, args: &[String]) -> Result<String, String> {
    let w: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = match w.as_slice() {
        ["sip", "show", "peers"] => peers(shared, None).to_json(),
        ["sip", "show", "peers", "like", pat] => peers(shared, Some(pat)).to_json(),
        ["sip", "show", "peer", name] => {
            let (r, contacts) = peer(shared, name)?;
            let mut v = r.to_json();
            v["other_contacts"] = json!(contacts);
            v
        }
        ["sip", "show", "settings"] => settings(shared).to_json(),
        ["sip", "show", "registry"] => registry(shared).to_json(),
        ["sip", "show", "banned"] => banned(shared).to_json(),
        ["sip", "show", "inuse"] => inuse(shared, false).to_json(),
        ["sip", "show", "inuse", "all"] => inuse(shared, true).to_json(),
        ["sip", "show", "channels"] => renamed(&crate::commands::channels(shared)?, "Address"),
        ["sip", "show", "subscriptions"] => {
            renamed(&crate::commands::subscriptions(shared)?, "Address")
        }
        ["sip", "show", "sharedlines"] => crate::commands::sharedlines(shared).to_json(),
        ["sip", "show", "lag"] => crate::commands::lag_json(shared),
        _ => return Err(format!("'{}' has no JSON form", w.join(" "))),
    };
    Ok(v.to_string())
}
