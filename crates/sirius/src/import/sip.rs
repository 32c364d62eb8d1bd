//! `sip.conf` → `sip.toml`: `[general]`, every peer/friend/user section,
//! `register =>` lines (and `rtp.conf`'s port range). What has no Sirius
//! equivalent is left out and reported with its line.

use super::conf::{Conf, Entry, Section};
use super::toml_out::{Doc, Value};
use super::Report;

/// `[general]` keys copied as they are, with their kind.
const GENERAL: &[(&str, Kind)] = &[
    ("tcpenable", Kind::Bool),
    ("realm", Kind::Str),
    ("context", Kind::Str),
    ("allowguest", Kind::Bool),
    ("alwaysauthreject", Kind::Bool),
    ("minexpiry", Kind::Int),
    ("maxexpiry", Kind::Int),
    ("defaultexpiry", Kind::Int),
    ("qualifyfreq", Kind::Int),
    ("useragent", Kind::Str),
    ("session-timers", Kind::Str),
    ("session-expires", Kind::Int),
    ("session-minse", Kind::Int),
    ("session-refresher", Kind::Str),
    ("rtptimeout", Kind::Int),
    ("rtpholdtimeout", Kind::Int),
    ("allowtransfer", Kind::Bool),
    ("allowsubscribe", Kind::Bool),
    ("subscribecontext", Kind::Str),
    ("subminexpiry", Kind::Int),
    ("submaxexpiry", Kind::Int),
    ("vmexten", Kind::Str),
];

/// Peer keys copied as they are.
const PEER: &[(&str, Kind)] = &[
    ("secret", Kind::Str),
    ("md5secret", Kind::Str),
    ("remotesecret", Kind::Str),
    ("defaultuser", Kind::Str),
    ("context", Kind::Str),
    ("call-limit", Kind::Int),
    ("dtmfmode", Kind::Str),
    ("callerid", Kind::Str),
    ("description", Kind::Str),
    ("accountcode", Kind::Str),
    ("mailbox", Kind::Str),
    ("session-timers", Kind::Str),
    ("session-expires", Kind::Int),
    ("session-minse", Kind::Int),
    ("session-refresher", Kind::Str),
    ("rtptimeout", Kind::Int),
    ("rtpholdtimeout", Kind::Int),
    ("allowtransfer", Kind::Bool),
    ("allowsubscribe", Kind::Bool),
    ("subscribecontext", Kind::Str),
    ("vmexten", Kind::Str),
];

/// Keys handled by hand below (not reported as unknown).
const PEER_SPECIAL: &[&str] = &[
    "type",
    "host",
    "port",
    "transport",
    "qualify",
    "allow",
    "disallow",
    "nat",
    "insecure",
    "permit",
    "deny",
    "username",
];

/// Keys whose job Sirius does without a setting: said once per key, not
/// as "no such option".
const BY_DESIGN: &[(&str, &str)] = &[
    (
        "directmedia",
        "Sirius always relays the media itself (native RTP relay)",
    ),
    (
        "canreinvite",
        "Sirius always relays the media itself (native RTP relay)",
    ),
    ("rtcachefriends", "Sirius has no realtime database"),
    ("language", "Sirius has no sound prompts"),
    ("tlsenable", "Sirius has no SIP over TLS"),
    ("encryption", "Sirius has no SRTP"),
    (
        "videosupport",
        "video is offered through when both legs have it; no setting",
    ),
];

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Str,
}

/// Asterisk's `ast_true`/`ast_false`.
fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "y" | "t" | "1" | "on" => Some(true),
        "no" | "false" | "n" | "f" | "0" | "off" => Some(false),
        _ => None,
    }
}

fn typed(e: &Entry, kind: Kind, report: &mut Report) -> Option<Value> {
    match kind {
        Kind::Str => Some(Value::Str(e.value.clone())),
        Kind::Bool => boolean(&e.value).map(Value::Bool).or_else(|| {
            report.note(
                &e.at,
                format!("{} = {}: not yes or no; left out", e.key, e.value),
            );
            None
        }),
        Kind::Int => e.value.parse().ok().map(Value::Int).or_else(|| {
            report.note(
                &e.at,
                format!("{} = {}: not a number; left out", e.key, e.value),
            );
            None
        }),
    }
}

/// Converts `sip.conf` (and `rtp.conf`'s range, if there is one).
pub fn convert(sip: &Conf, rtp: Option<&Conf>, report: &mut Report) -> String {
    let mut doc = Doc::new(
        "chan_sip configuration converted from Asterisk's sip.conf by `sirius import-asterisk`.",
    );
    let empty = Section {
        name: "general".into(),
        at: super::conf::Place {
            file: "sip.conf".into(),
            line: 0,
        },
        entries: Vec::new(),
    };
    let general = sip.section("general").unwrap_or(&empty);
    let defaults = PeerDefaults::of(general);
    let table = doc.table("general");
    let mut bind = ("0.0.0.0".to_string(), 5060u16);
    let mut registers = Vec::new();
    for e in &general.entries {
        let key = e.key.to_ascii_lowercase();
        if let Some((_, kind)) = GENERAL.iter().find(|(k, _)| *k == key) {
            if let Some(v) = typed(e, *kind, report) {
                table.set(&key, v);
            }
            continue;
        }
        match key.as_str() {
            "bindaddr" => bind.0 = e.value.clone(),
            "bindport" => match e.value.parse() {
                Ok(p) => bind.1 = p,
                Err(_) => report.note(&e.at, format!("bindport = {}: not a port", e.value)),
            },
            "udpbindaddr" => match split_host_port(&e.value) {
                Some((h, p)) => bind = (h, p.unwrap_or(bind.1)),
                None => report.note(&e.at, format!("udpbindaddr = {}: not an address", e.value)),
            },
            "tcpbindaddr" => match split_host_port(&e.value) {
                Some((h, p)) => table.set(
                    "tcpbindaddr",
                    Value::Str(join_host_port(&h, p.unwrap_or(5060))),
                ),
                None => report.note(&e.at, format!("tcpbindaddr = {}: not an address", e.value)),
            },
            "register" => registers.push(e),
            // Defaults for every peer (below).
            "allow" | "disallow" | "nat" | "dtmfmode" | "insecure" | "transport" => {}
            _ => unconverted(e, "[general]", report),
        }
    }
    table.set("udpbindaddr", Value::Str(join_host_port(&bind.0, bind.1)));
    if let Some(rtp) = rtp.and_then(|r| r.section("general")) {
        for key in ["rtpstart", "rtpend"] {
            if let Some(e) = rtp.get(key) {
                if let Some(v) = typed(e, Kind::Int, report) {
                    doc.table("general").set(key, v);
                }
            }
        }
        for e in &rtp.entries {
            if !["rtpstart", "rtpend"].contains(&e.key.to_ascii_lowercase().as_str()) {
                unconverted(e, "rtp.conf [general]", report);
            }
        }
    }
    for s in &sip.sections {
        if s.name.eq_ignore_ascii_case("general") {
            continue;
        }
        if s.name.eq_ignore_ascii_case("authentication") {
            report.note(&s.at, "[authentication]: Sirius has no per-realm credentials for outgoing requests; use a peer's remotesecret".into());
            continue;
        }
        peer(&mut doc, s, &defaults, report);
    }
    for e in registers {
        register(&mut doc, e, report);
    }
    doc.render()
}

/// What `[general]` gives every peer that does not say otherwise.
struct PeerDefaults<'a> {
    codecs: Vec<&'a Entry>,
    nat: Option<&'a Entry>,
    dtmfmode: Option<&'a Entry>,
    insecure: Option<&'a Entry>,
    transport: Option<&'a Entry>,
}

impl<'a> PeerDefaults<'a> {
    fn of(general: &'a Section) -> Self {
        let key = |k: &str| {
            general
                .entries
                .iter()
                .rev()
                .find(|e| e.key.eq_ignore_ascii_case(k))
        };
        PeerDefaults {
            codecs: general
                .entries
                .iter()
                .filter(|e| {
                    e.key.eq_ignore_ascii_case("allow") || e.key.eq_ignore_ascii_case("disallow")
                })
                .collect(),
            nat: key("nat"),
            dtmfmode: key("dtmfmode"),
            insecure: key("insecure"),
            transport: key("transport"),
        }
    }
}

fn peer(doc: &mut Doc, s: &Section, defaults: &PeerDefaults<'_>, report: &mut Report) {
    let name = s.name.clone();
    // chan_sip skips a section without `type` ("Section '…' lacks type").
    let Some(kind) = s.get("type") else {
        report.note(
            &s.at,
            format!("[{name}] has no type: Asterisk ignores such a section; left out"),
        );
        return;
    };
    let kind_name = kind.value.to_ascii_lowercase();
    if !["friend", "peer", "user"].contains(&kind_name.as_str()) {
        report.note(
            &kind.at,
            format!(
                "[{name}] type = {}: not friend, peer or user; left out",
                kind.value
            ),
        );
        return;
    }
    let t = doc.table(&format!("peers.{}", super::toml_out::key(&name)));
    t.set("type", Value::Str(kind_name.clone()));
    let kind = kind_name;
    for e in &s.entries {
        let key = e.key.to_ascii_lowercase();
        if let Some((_, k)) = PEER.iter().find(|(p, _)| *p == key) {
            if let Some(v) = typed(e, *k, report) {
                t.set(&key, v);
            }
        } else if !PEER_SPECIAL.contains(&key.as_str()) {
            unconverted(e, &format!("[{name}]"), report);
        }
    }
    if let Some(e) = s.get("username") {
        if s.get("defaultuser").is_none() {
            t.set("defaultuser", Value::Str(e.value.clone()));
        }
    }
    if let Some(host) = s.get("host") {
        t.set("host", Value::Str(host.value.clone()));
    } else if kind != "user" {
        report.note(&s.at, format!("[{name}] has no host: Asterisk refuses such a peer; converted as host = \"dynamic\""));
        t.set("host", Value::Str("dynamic".into()));
    }
    if let Some(e) = s.get("port") {
        if let Some(v) = typed(e, Kind::Int, report) {
            t.set("port", v);
        }
    }
    if let Some(e) = s.get("transport").or(defaults.transport) {
        let (ok, bad): (Vec<&str>, Vec<&str>) = e
            .value
            .split(',')
            .map(str::trim)
            .partition(|t| t.eq_ignore_ascii_case("udp") || t.eq_ignore_ascii_case("tcp"));
        if !bad.is_empty() {
            report.note(
                &e.at,
                format!(
                    "[{name}] transport {}: Sirius has UDP and TCP only",
                    bad.join(",")
                ),
            );
        }
        if !ok.is_empty() {
            t.set("transport", Value::Str(ok.join(",").to_ascii_lowercase()));
        }
    }
    if let Some(e) = s.get("qualify") {
        match boolean(&e.value) {
            Some(b) => t.set("qualify", Value::Bool(b)),
            None => match e.value.parse() {
                Ok(ms) => t.set("qualify", Value::Int(ms)),
                Err(_) => report.note(
                    &e.at,
                    format!("qualify = {}: not yes, no or milliseconds", e.value),
                ),
            },
        }
    }
    // Codecs: [general]'s allow/disallow lines, then the peer's, in order.
    let own: Vec<&Entry> = s
        .entries
        .iter()
        .filter(|e| e.key.eq_ignore_ascii_case("allow") || e.key.eq_ignore_ascii_case("disallow"))
        .collect();
    if !own.is_empty() || !defaults.codecs.is_empty() {
        let lines = defaults.codecs.iter().chain(own.iter()).copied();
        if let Some(list) = codecs(lines, &name, report) {
            t.set("allow", Value::List(list));
        }
    }
    if let Some(e) = s.get("nat").or(defaults.nat) {
        if let Some(list) = nat(e, &name, report) {
            t.set("nat", Value::List(list));
        }
    }
    if s.get("dtmfmode").is_none() {
        if let Some(e) = defaults.dtmfmode {
            t.set("dtmfmode", Value::Str(e.value.clone()));
        }
    }
    if let Some(e) = s.get("insecure").or(defaults.insecure) {
        let words: Vec<String> = match e.value.to_ascii_lowercase().as_str() {
            "very" => vec!["port".into(), "invite".into()],
            "yes" => vec!["port".into()],
            "no" => vec![],
            v => v.split(',').map(|w| w.trim().to_string()).collect(),
        };
        t.set("insecure", Value::List(words));
    }
    for list in ["permit", "deny"] {
        let nets: Vec<String> = s
            .entries
            .iter()
            .filter(|e| e.key.eq_ignore_ascii_case(list))
            .map(|e| e.value.clone())
            .collect();
        if !nets.is_empty() {
            t.set(list, Value::List(nets));
        }
    }
}

/// `disallow=all` / `allow=ulaw,alaw` lines in order → the allowed list.
fn codecs<'a>(
    lines: impl Iterator<Item = &'a Entry>,
    peer: &str,
    report: &mut Report,
) -> Option<Vec<String>> {
    const KNOWN: &[&str] = &["ulaw", "alaw", "g722", "h264", "vp8", "h263"];
    let mut list: Vec<String> = Vec::new();
    let mut said = false;
    for e in lines {
        let allow = e.key.eq_ignore_ascii_case("allow");
        for c in e
            .value
            .split([',', '&'])
            .map(|c| c.trim().to_ascii_lowercase())
        {
            if c.is_empty() {
                continue;
            }
            if c == "all" {
                if allow {
                    list = KNOWN.iter().map(|s| s.to_string()).collect();
                } else {
                    list.clear();
                }
                said = true;
                continue;
            }
            if !KNOWN.contains(&c.as_str()) {
                report.note(
                    &e.at,
                    format!("[{peer}] codec {c}: Sirius does not have it; left out"),
                );
                continue;
            }
            list.retain(|x| *x != c);
            if allow {
                list.push(c);
            }
            said = true;
        }
    }
    said.then_some(list)
}

/// `nat=` → Sirius's list (`yes` is chan_sip's `force_rport,comedia`).
fn nat(e: &Entry, peer: &str, report: &mut Report) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for w in e.value.split(',').map(|w| w.trim().to_ascii_lowercase()) {
        match w.as_str() {
            "yes" => out.extend(["force_rport".to_string(), "comedia".to_string()]),
            "no" | "never" => {}
            "force_rport" | "comedia" => out.push(w),
            "auto_force_rport" | "auto_comedia" => {
                report.note(
                    &e.at,
                    format!(
                        "[{peer}] nat {w}: converted as {} (Sirius does not detect NAT)",
                        &w[5..]
                    ),
                );
                out.push(w[5..].to_string());
            }
            other => report.note(
                &e.at,
                format!("[{peer}] nat {other}: not understood; left out"),
            ),
        }
    }
    out.dedup();
    Some(out)
}

/// `register => [transport://]user[@domain][:secret[:authuser]]@host[:port][/contact][~expiry]`.
fn register(doc: &mut Doc, e: &Entry, report: &mut Report) {
    let shown = redacted(&e.value);
    let mut v = e.value.trim();
    let mut transport = "udp".to_string();
    if let Some((t, rest)) = v.split_once("://") {
        transport = t.to_ascii_lowercase();
        v = rest;
    }
    if v.contains('?') {
        report.note(&e.at, "register => peer?…: the peer-name prefix is not kept (Sirius matches the line by user and host)".into());
        v = v.split_once('?').map_or(v, |(_, r)| r);
    }
    let (v, expiry) = match v.rsplit_once('~') {
        Some((a, x)) => (a, x.parse::<i64>().ok()),
        None => (v, None),
    };
    let (v, contact) = match v.rsplit_once('/') {
        Some((a, c)) => (a, Some(c)),
        None => (v, None),
    };
    let Some((creds, hostport)) = v.rsplit_once('@') else {
        report.note(&e.at, format!("register => {shown}: no @host; left out"));
        return;
    };
    let mut parts = creds.splitn(3, ':');
    let user_dom = parts.next().unwrap_or("");
    let secret = parts.next();
    let authuser = parts.next();
    let (user, fromdomain) = match user_dom.split_once('@') {
        Some((u, d)) => (u, Some(d)),
        None => (user_dom, None),
    };
    let Some((host, port)) = split_host_port(hostport) else {
        report.note(
            &e.at,
            format!("register => {shown}: host '{hostport}' not understood; left out"),
        );
        return;
    };
    if transport != "udp" && transport != "tcp" {
        report.note(
            &e.at,
            format!(
                "register => {shown}: transport {transport}: Sirius has UDP and TCP only; left out"
            ),
        );
        return;
    }
    let t = doc.array_table("register");
    t.set("user", Value::Str(user.to_string()));
    t.set("secret", Value::Str(secret.unwrap_or("").to_string()));
    if let Some(a) = authuser.filter(|a| !a.is_empty()) {
        t.set("authuser", Value::Str(a.to_string()));
    }
    t.set("host", Value::Str(host));
    if let Some(p) = port {
        t.set("port", Value::Int(p.into()));
    }
    if transport == "tcp" {
        t.set("transport", Value::Str(transport));
    }
    if let Some(d) = fromdomain {
        t.set("fromdomain", Value::Str(d.to_string()));
    }
    if let Some(c) = contact.filter(|c| !c.is_empty()) {
        t.set("contact", Value::Str(c.to_string()));
    }
    if let Some(x) = expiry {
        t.set("expiry", Value::Int(x));
    }
}

/// A `register =>` value without its secret, for the report.
fn redacted(value: &str) -> String {
    let Some((creds, rest)) = value.rsplit_once('@') else {
        return value.to_string();
    };
    match creds.split_once(':') {
        // `transport://user:…`: the first colon is the scheme's.
        Some((scheme, after)) if after.starts_with("//") => match after.split_once(':') {
            Some((user, _)) => format!("{scheme}:{user}:…@{rest}"),
            None => value.to_string(),
        },
        Some((user, _)) => format!("{user}:…@{rest}"),
        None => value.to_string(),
    }
}

fn unconverted(e: &Entry, section: &str, report: &mut Report) {
    let key = e.key.to_ascii_lowercase();
    let why = BY_DESIGN
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("Sirius has no such option", |(_, w)| w);
    report.note(
        &e.at,
        format!("{section} {} = {}: not converted ({why})", e.key, e.value),
    );
}

/// `host`, `host:port`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), Some(p.parse().ok()?))),
        Some(_) => Some((s.to_string(), None)), // a bare IPv6 address
        None if !s.is_empty() => Some((s.to_string(), None)),
        None => None,
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
