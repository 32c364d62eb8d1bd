//! `SIPpeers` and `SIPshowpeer`. The peers live in the chan_sip plugin;
//! these actions read them as `sip show peers` / `sip show peer <name>`
//! give them to scripts (`sirius -rx --json`: the rows and fields of the
//! console's tables, by their snake-case headers), so nothing here depends
//! on a column's width, and put them under Asterisk's AMI names.

use crate::actions::list_start;
use crate::backend::Backend;
use crate::message::{Message, Reply};
use serde_json::Value;

/// A row's or record's text field (empty when absent).
fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
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
    match backend.command_json("sip show peers") {
        Ok(table) => peer_entries(m, &table),
        Err(_) => Reply::error(m, "SIP channel driver not loaded"),
    }
}

/// The `PeerEntry` events for `sip show peers`' rows, and the list's end.
fn peer_entries(m: &Message, table: &Value) -> String {
    let rows = table["rows"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = list_start(m, "Peer status list will follow");
    for p in rows {
        // `name/username` when the peer's username differs: the name alone.
        let name = text(p, "name_username")
            .split('/')
            .next()
            .unwrap_or_default();
        let host = match text(p, "host") {
            "" | "(Unspecified)" => "-none-",
            h => h,
        };
        let mut r = Reply::event("PeerEntry");
        r.action_id(m)
            .kv("Channeltype", "SIP")
            .kv("ObjectName", name)
            .kv("ChanObjectType", "peer")
            .kv("IPaddress", host)
            .kv("IPport", text(p, "port"))
            .kv("Dynamic", yes_no(text(p, "dyn") == "D"))
            .kv("AutoForcerport", "no")
            .kv("Forcerport", yes_no(text(p, "forcerport") == "Yes"))
            .kv("AutoComedia", "no")
            .kv("Comedia", yes_no(text(p, "comedia") == "Yes"))
            .kv("VideoSupport", "no")
            .kv("TextSupport", "no")
            .kv("ACL", yes_no(text(p, "acl") == "A"))
            .kv("Status", text(p, "status"))
            .kv("RealtimeDevice", "no")
            .kv("Description", text(p, "description"));
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
/// AMI names, read from `sip show peer <name>`'s record.
pub fn sip_show_peer(m: &Message, backend: &dyn Backend) -> String {
    let peer = m.get("Peer");
    if peer.is_empty() {
        return Reply::error(m, "Peer: <name> missing.");
    }
    if peer.contains(char::is_whitespace) || peer.contains('"') {
        return Reply::error(m, "Peer not found");
    }
    match backend.command_json(&format!("sip show peer {peer}")) {
        Ok(record) => peer_reply(m, &record),
        Err(_) => Reply::error(m, "Peer not found"),
    }
}

/// The `SIPshowpeer` response for `sip show peer`'s record.
fn peer_reply(m: &Message, p: &Value) -> String {
    let get = |k: &str| text(p, k);
    let yn = |k: &str| {
        if get(k).eq_ignore_ascii_case("yes") {
            "Y"
        } else {
            "N"
        }
    };
    let (ip, port) = match get("addr_ip") {
        "" | "(null)" => ("(null)".to_string(), "0".to_string()),
        a => match a.rsplit_once(':') {
            Some((ip, port)) => (ip.trim_matches(['[', ']']).to_string(), port.to_string()),
            None => (a.to_string(), "0".to_string()),
        },
    };
    let mut r = Reply::response("Success", m);
    r.kv("Channeltype", "SIP")
        .kv("ObjectName", get("name"))
        .kv("ChanObjectType", "peer")
        .kv(
            "SecretExist",
            if get("secret") == "<Set>" { "Y" } else { "N" },
        )
        .kv("RemoteSecretExist", "N")
        .kv("MD5SecretExist", "N")
        .kv("Context", get("context"))
        .kv("Language", "")
        .kv("ToHost", "")
        .kv("Accountcode", get("accountcode"))
        .kv("VoiceMailbox", get("mailbox"))
        .kv("Call-limit", get("call_limit"))
        .kv("Dynamic", yn("dynamic"))
        .kv("Callerid", get("callerid"))
        .kv("RegExpire", &format!("{} seconds", get("expire")))
        .kv("SIP-AuthInsecure", get("insecure"))
        .kv("SIP-Forcerport", yn("force_rport"))
        .kv("SIP-Comedia", yn("comedia"))
        .kv("ACL", yn("acl"))
        .kv("SIP-DTMFmode", get("dtmfmode"))
        .kv("Address-IP", &ip)
        .kv("Address-Port", &port)
        .kv("Default-Username", get("def_username"))
        .kv("Codecs", get("codecs"))
        .kv("Status", get("status"))
        .kv("SIP-Useragent", get("useragent"))
        .kv("Reg-Contact", get("reg_contact"))
        .kv("Description", get("description"));
    r.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action(name: &str) -> Message {
        let mut m = Message::default();
        m.headers.push(("Action".into(), name.into()));
        m.headers.push(("ActionID".into(), "7".into()));
        m
    }

    /// Three rows as chan_sip's `sip show peers` JSON gives them.
    #[test]
    fn peer_entries_from_the_rows() {
        let row =
            |n: &str, h: &str, d: &str, f: &str, acl: &str, port: &str, st: &str, desc: &str| {
                json!({"name_username": n, "host": h, "dyn": d, "forcerport": f, "comedia": f,
                   "acl": acl, "port": port, "status": st, "description": desc})
            };
        let table = json!({"rows": [
            row("alice/alice", "127.0.0.1", "D", "Yes", "", "5062", "OK (1 ms)", "Demo phone"),
            row("bob", "(Unspecified)", "D", "No", "A", "0", "UNKNOWN", ""),
            row("trunk", "10.0.0.1", "", "No", "", "5060", "LAGGED (2100 ms)", "Far away"),
        ], "sip_peers": 3});
        let out = peer_entries(&action("SIPpeers"), &table);
        let events: Vec<&str> = out.split("\r\n\r\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 5, "{out}");
        assert!(
            events[0].starts_with("Response: Success\r\nActionID: 7\r\n"),
            "{out}"
        );
        assert!(events[1].contains("ObjectName: alice\r\n"), "{out}");
        assert!(
            events[1].contains("IPaddress: 127.0.0.1\r\nIPport: 5062\r\nDynamic: yes\r\n"),
            "{out}"
        );
        assert!(
            events[1].contains("Forcerport: yes\r\n") && events[1].contains("ACL: no\r\n"),
            "{out}"
        );
        assert!(events[1].contains("Status: OK (1 ms)\r\n"), "{out}");
        assert!(events[1].ends_with("Description: Demo phone"), "{out}");
        assert!(
            events[2].contains("IPaddress: -none-\r\n") && events[2].contains("ACL: yes\r\n"),
            "{out}"
        );
        assert!(
            events[3].contains("Dynamic: no\r\n")
                && events[3].contains("Status: LAGGED (2100 ms)\r\n"),
            "{out}"
        );
        assert!(events[4].contains("Event: PeerlistComplete\r\n"), "{out}");
        assert!(events[4].ends_with("ListItems: 3"), "{out}");
    }

    #[test]
    fn peer_reply_from_the_record() {
        let rec = json!({"name": "alice", "secret": "<Set>", "context": "demo", "mailbox": "1234",
            "call_limit": "2", "dynamic": "Yes", "expire": "117", "insecure": "no",
            "force_rport": "Yes", "comedia": "No", "acl": "No", "dtmfmode": "rfc2833",
            "addr_ip": "[::1]:5062", "def_username": "alice", "codecs": "(ulaw|alaw)",
            "status": "OK (2 ms)", "useragent": "baresip", "reg_contact": "sip:alice@[::1]:5062",
            "description": "Demo phone"});
        let out = peer_reply(&action("SIPshowpeer"), &rec);
        for line in [
            "Response: Success",
            "ActionID: 7",
            "ObjectName: alice",
            "SecretExist: Y",
            "VoiceMailbox: 1234",
            "Call-limit: 2",
            "Dynamic: Y",
            "RegExpire: 117 seconds",
            "SIP-Forcerport: Y",
            "SIP-Comedia: N",
            "Address-IP: ::1",
            "Address-Port: 5062",
            "Codecs: (ulaw|alaw)",
            "Status: OK (2 ms)",
            "SIP-Useragent: baresip",
            "Reg-Contact: sip:alice@[::1]:5062",
            "Description: Demo phone",
        ] {
            assert!(out.contains(&format!("{line}\r\n")), "{line} in {out}");
        }
        let none = peer_reply(
            &action("SIPshowpeer"),
            &json!({"name": "bob", "addr_ip": "(null)"}),
        );
        assert!(
            none.contains("Address-IP: (null)\r\nAddress-Port: 0\r\n"),
            "{none}"
        );
    }
}
