//! `SIPpeers` and `SIPshowpeer`. The peers live in the chan_sip plugin,
//! and the plugin interface gives the host its console commands only
//! (text in, text out): there is no structured route to a peer's fields.
//! So these actions run `sip show peers` / `sip show peer <name>` through
//! the console's table and read the tables back, by their fixed layout
//! (Asterisk's columns: Name/username 25, Host 39, Dyn 3, Forcerport 10,
//! Comedia 10, ACL 3, Port 8, Status 11, Description). A plugin method
//! returning rows would be sturdier; until the interface has one, the
//! layout is pinned by chan_sip's own tests and by `tests/ami.rs`.

use crate::actions::list_start;
use crate::backend::Backend;
use crate::message::{Message, Reply};

/// One row of `sip show peers`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerRow {
    /// Peer name (without `/username`).
    pub name: String,
    /// Its address, or empty.
    pub host: String,
    /// `D` column.
    pub dynamic: bool,
    /// Forcerport column.
    pub force_rport: bool,
    /// Comedia column.
    pub comedia: bool,
    /// ACL column.
    pub acl: bool,
    /// Port (0 unknown).
    pub port: String,
    /// `OK (1 ms)`, `UNREACHABLE`, `Unmonitored`…
    pub status: String,
    /// Description.
    pub description: String,
}

/// Splits a `sip show peers` table into rows (header and footer skipped).
pub fn parse_peers(text: &str) -> Vec<PeerRow> {
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        // The footer: "N sip peers [Monitored: …]".
        if line.contains(" sip peers [") || line.chars().count() < 97 {
            continue;
        }
        let col = |from: usize, len: usize| -> String {
            line.chars()
                .skip(from)
                .take(len)
                .collect::<String>()
                .trim()
                .to_string()
        };
        let label = col(0, 25);
        let name = label.split('/').next().unwrap_or("").to_string();
        let host = col(26, 39);
        let rest: String = line.chars().skip(96).collect();
        let rest = rest.trim_start();
        let (port, after) = rest.split_once(' ').unwrap_or((rest, ""));
        let after = after.trim_start();
        // A status with a delay runs to its ')': "OK (1 ms)", "LAGGED (2100 ms)".
        let status_end = if after.starts_with("OK (") || after.starts_with("LAGGED (") {
            after.find(')').map_or(after.len(), |i| i + 1)
        } else {
            after.find(' ').unwrap_or(after.len())
        };
        let (status, description) = after.split_at(status_end);
        rows.push(PeerRow {
            name,
            host: if host == "(Unspecified)" {
                String::new()
            } else {
                host
            },
            dynamic: col(66, 3) == "D",
            force_rport: col(70, 10) == "Yes",
            comedia: col(81, 10) == "Yes",
            acl: col(92, 3) == "A",
            port: port.to_string(),
            status: status.trim().to_string(),
            description: description.trim().to_string(),
        });
    }
    rows
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// `SIPpeers`: a `PeerEntry` event per peer (chan_sip's `_sip_show_peers`
/// in manager mode), then `PeerlistComplete`.
pub fn sip_peers(m: &Message, backend: &dyn Backend) -> String {
    let (ok, text) = backend.command("sip show peers");
    if !ok {
        return Reply::error(m, "SIP channel driver not loaded");
    }
    let rows = parse_peers(&text);
    let mut out = list_start(m, "Peer status list will follow");
    for p in &rows {
        let mut r = Reply::event("PeerEntry");
        r.action_id(m)
            .kv("Channeltype", "SIP")
            .kv("ObjectName", &p.name)
            .kv("ChanObjectType", "peer")
            .kv(
                "IPaddress",
                if p.host.is_empty() { "-none-" } else { &p.host },
            )
            .kv("IPport", &p.port)
            .kv("Dynamic", yes_no(p.dynamic))
            .kv("AutoForcerport", "no")
            .kv("Forcerport", yes_no(p.force_rport))
            .kv("AutoComedia", "no")
            .kv("Comedia", yes_no(p.comedia))
            .kv("VideoSupport", "no")
            .kv("TextSupport", "no")
            .kv("ACL", yes_no(p.acl))
            .kv("Status", &p.status)
            .kv("RealtimeDevice", "no")
            .kv("Description", &p.description);
        out.push_str(&r.end());
    }
    let mut r = Reply::event("PeerlistComplete");
    r.action_id(m)
        .kv("EventList", "Complete")
        .kv("ListItems", &rows.len().to_string());
    out.push_str(&r.end());
    out
}

/// `SIPshowpeer`: one response with the peer's fields under Asterisk's
/// AMI names, read from `sip show peer <name>`'s `Key : value` lines.
pub fn sip_show_peer(m: &Message, backend: &dyn Backend) -> String {
    let peer = m.get("Peer");
    if peer.is_empty() {
        return Reply::error(m, "Peer: <name> missing.");
    }
    if peer.contains(char::is_whitespace) || peer.contains('"') {
        return Reply::error(m, "Peer not found");
    }
    let (ok, text) = backend.command(&format!("sip show peer {peer}"));
    if !ok {
        return Reply::error(m, "Peer not found");
    }
    let fields: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| {
            (
                k.trim().trim_start_matches("* ").to_string(),
                v.trim().to_string(),
            )
        })
        .collect();
    let get = |k: &str| {
        fields
            .iter()
            .find(|(x, _)| x == k)
            .map_or("", |(_, v)| v.as_str())
    };
    let yn = |v: &str| {
        if v.eq_ignore_ascii_case("yes") {
            "Y"
        } else {
            "N"
        }
    };
    let (ip, port) = match get("Addr->IP") {
        "" | "(null)" => ("(null)".to_string(), "0".to_string()),
        a => match a.rsplit_once(':') {
            Some((ip, port)) => (ip.trim_matches(['[', ']']).to_string(), port.to_string()),
            None => (a.to_string(), "0".to_string()),
        },
    };
    let mut r = Reply::response("Success", m);
    r.kv("Channeltype", "SIP")
        .kv("ObjectName", get("Name"))
        .kv("ChanObjectType", "peer")
        .kv(
            "SecretExist",
            if get("Secret") == "<Set>" { "Y" } else { "N" },
        )
        .kv("RemoteSecretExist", "N")
        .kv("MD5SecretExist", "N")
        .kv("Context", get("Context"))
        .kv("Language", "")
        .kv("ToHost", "")
        .kv("Accountcode", get("Accountcode"))
        .kv("VoiceMailbox", get("Mailbox"))
        .kv("Call-limit", get("Call limit"))
        .kv("Dynamic", yn(get("Dynamic")))
        .kv("Callerid", get("Callerid"))
        .kv("RegExpire", &format!("{} seconds", get("Expire")))
        .kv("SIP-AuthInsecure", get("Insecure"))
        .kv("SIP-Forcerport", yn(get("Force rport")))
        .kv("SIP-Comedia", yn(get("Comedia")))
        .kv("ACL", yn(get("ACL")))
        .kv("SIP-DTMFmode", get("DTMFmode"))
        .kv("Address-IP", &ip)
        .kv("Address-Port", &port)
        .kv("Default-Username", get("Def. Username"))
        .kv("Codecs", get("Codecs"))
        .kv("Status", get("Status"))
        .kv("SIP-Useragent", get("Useragent"))
        .kv("Reg-Contact", get("Reg. Contact"))
        .kv("Description", get("Description"));
    r.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows in chan_sip's exact layout (its `show_peers` format string).
    fn table() -> String {
        let row = |a: &str,
                   b: &str,
                   c: &str,
                   d: &str,
                   e: &str,
                   f: &str,
                   g: &str,
                   h: &str,
                   i: &str| {
            format!("{a:<25.25} {b:<39.39} {c:<3.3} {d:<10.10} {e:<10.10} {f:<3.3} {g:<8} {h:<11} {i:<32.32}\n")
        };
        let mut t = row(
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
        t += &row(
            "alice/alice",
            "127.0.0.1",
            "D",
            "Yes",
            "Yes",
            "",
            "5062",
            "OK (1 ms)",
            "Demo phone",
        );
        t += &row(
            "bob",
            "(Unspecified)",
            "D",
            "No",
            "No",
            "A",
            "0",
            "UNKNOWN",
            "",
        );
        t += &row(
            "trunk",
            "10.0.0.1",
            "",
            "No",
            "No",
            "",
            "5060",
            "LAGGED (2100 ms)",
            "Far away",
        );
        t += "3 sip peers [Monitored: 1 online, 2 offline Unmonitored: 0 online, 0 offline]";
        t
    }

    #[test]
    fn reads_sip_show_peers_back() {
        let rows = parse_peers(&table());
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            PeerRow {
                name: "alice".into(),
                host: "127.0.0.1".into(),
                dynamic: true,
                force_rport: true,
                comedia: true,
                acl: false,
                port: "5062".into(),
                status: "OK (1 ms)".into(),
                description: "Demo phone".into(),
            }
        );
        assert_eq!(
            (rows[1].host.as_str(), rows[1].acl, rows[1].status.as_str()),
            ("", true, "UNKNOWN")
        );
        assert_eq!(
            (rows[2].status.as_str(), rows[2].description.as_str()),
            ("LAGGED (2100 ms)", "Far away")
        );
    }
}
