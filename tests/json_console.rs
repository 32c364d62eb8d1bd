//! `sirius -rx --json` (issue #15 item 7): every `show` command's rows and
//! fields as JSON, parsed here and checked against the text the same
//! command prints, on a PBX with something in each table: a registered
//! phone that watches a hint and has a mailbox, an outbound registration,
//! a shared line, an AMI session. The call-time tables (channels, calls,
//! bridges, SIP dialogs) are checked during a bridged call in `media.rs`.

use serde_json::Value;
use sirius_blackbox::{free_udp_port, same_fields, same_rows, sipp_register, Daemon, Sipp};
use std::io::{Read, Write};
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;

const MANAGER: &str = r#"
[general]
enabled = true
port = 0
bindaddr = "127.0.0.1"

[admin]
secret = "admin-secret"
read = "all"
write = "all"
"#;

fn pbx() -> Daemon {
    let (callee, registrar) = (free_udp_port(), free_udp_port());
    let sip = format!(
        "{SIP_TOML}\n\
         [peers.watcher]\ntype = \"friend\"\nhost = \"dynamic\"\nsecret = \"w-secret\"\ncontext = \"test\"\nmailbox = \"1234\"\ndescription = \"Reception desk\"\n\n\
         [peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee}\n\n\
         [peers.line]\ntype = \"friend\"\nhost = \"dynamic\"\nsecret = \"l-secret\"\ncontext = \"test\"\nshared-appearances = 2\n\n\
         [[register]]\nuser = \"trunk\"\nsecret = \"t-secret\"\nhost = \"127.0.0.1\"\nport = {registrar}\n"
    );
    let ext = "[test]\n\"6001\" = [\"Dial(SIP/callee,10)\", \"Hangup()\"]\n\n[test.hints]\n\"6001\" = \"SIP/callee\"\n";
    Daemon::with_chan_sip(&[
        ("sip.toml", sip.as_str()),
        ("extensions.toml", ext),
        ("manager.toml", MANAGER),
    ])
}

/// Text and JSON of one command.
fn both(d: &Daemon, command: &str) -> (String, Value) {
    (d.rx(command).ok(), d.rx_json(command))
}

/// A table's rows match the text's lines; returns how many.
#[track_caller]
fn rows(d: &Daemon, command: &str) -> (usize, Value) {
    let (text, json) = both(d, command);
    (same_rows(command, &text, &json), json)
}

#[test]
fn every_show_command_prints_its_rows_as_json() {
    let d = pbx();
    // What fills the tables: a registered phone, its busy lamp, its
    // mailbox, an AMI login.
    let (code, out) = sipp_register(
        &d,
        "register_accepted.xml",
        "watcher",
        "w-secret",
        free_udp_port(),
        1,
    );
    assert_eq!(code, 0, "{out}");
    let _watcher = Sipp::scenario("uac_subscribe_blf.xml")
        .to(&d)
        .service("6001")
        .auth("watcher", "w-secret")
        .start(free_udp_port());
    d.wait_for("sip show subscriptions", Duration::from_secs(10), |o| {
        o.contains("1 active SIP subscription\n")
    });
    d.rx("mwi update 1234 2 1").ok();
    let ami_port: u16 = d.rx_json("manager show settings")["tcp_bindaddress"]
        .as_str()
        .and_then(|a| a.rsplit(':').next()?.parse().ok())
        .expect("AMI's port");
    let mut ami = std::net::TcpStream::connect(("127.0.0.1", ami_port)).unwrap();
    ami.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    ami.write_all(b"Action: Login\r\nUsername: admin\r\nSecret: admin-secret\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("Authentication accepted") {
        let mut b = [0u8; 1024];
        let n = ami.read(&mut b).expect("AMI answers");
        assert!(n > 0, "AMI closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
    }

    // core
    let (text, json) = both(&d, "core show version");
    assert_eq!(json["version"], text.trim_end());
    let json = d.rx_json("core show uptime");
    assert!(
        json["system_uptime"].is_u64() && json["last_reload"].is_u64(),
        "{json}"
    );
    let (text, json) = both(&d, "core show settings");
    same_fields("core show settings", &text, &json, 12);
    assert_eq!(json["system_name"], "sirius", "{json}");
    let (n, json) = rows(&d, "core show hints");
    assert_eq!(
        (n, json["hints_registered"].as_u64()),
        (1, Some(1)),
        "{json}"
    );
    // The phone's busy lamp and the AMI session (ExtensionStatus events).
    assert_eq!(json["rows"][0]["watchers"], "2", "{json}");
    assert_eq!(rows(&d, "core show channeltypes").0, 1);
    let (n, json) = rows(&d, "core show channels");
    assert_eq!(
        (n, json["active_channels"].as_u64()),
        (0, Some(0)),
        "{json}"
    );
    let json = d.rx_json("core show channels count");
    assert!(
        json.get("rows").is_none() && json["calls_processed"] == 0,
        "{json}"
    );
    assert_eq!(d.rx_json("core show calls")["active_calls"], 0);
    assert_eq!(rows(&d, "bridge show all").0, 0);
    let (n, json) = rows(&d, "module show");
    assert_eq!(n, 1, "{json}");
    assert_eq!(json["rows"][0]["module"], "chan_sip.so");
    assert_eq!(rows(&d, "module show like sip").0, 1);
    assert_eq!(rows(&d, "module show like nothing").0, 0);
    let (text, json) = both(&d, "dialplan show");
    let test = json["contexts"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["context"] == "test"))
        .unwrap_or_else(|| panic!("no context test: {json}"));
    let step = &test["extensions"][0]["steps"][0];
    assert_eq!(test["extensions"][0]["extension"], "6001", "{test}");
    assert_eq!(
        (step["application"].as_str(), step["data"].as_str()),
        (Some("Dial"), Some("SIP/callee,10"))
    );
    assert!(
        text.contains("'6001' =>") && text.contains("1. Dial(SIP/callee,10)"),
        "{text}"
    );
    let (n, json) = rows(&d, "mwi show");
    assert_eq!(n, 1, "{json}");
    assert_eq!(json["rows"][0]["new"], "2", "{json}");
    let (text, json) = both(&d, "cdr show status");
    same_fields("cdr show status", &text, &json, 6);
    assert!(rows(&d, "logger show channels").0 >= 1);
    let (text, json) = both(&d, "core show help sip show");
    assert!(same_rows("core show help", &text, &json) >= 10, "{json}");
    let (text, json) = both(&d, "core show help sip show peers");
    assert_eq!(json["usage"], text.trim_end(), "{json}");

    // manager
    assert_eq!(rows(&d, "manager show users").0, 1);
    let (n, json) = rows(&d, "manager show connected");
    assert_eq!(
        (n, json["users_connected"].as_u64()),
        (1, Some(1)),
        "{json}"
    );
    assert_eq!(json["rows"][0]["username"], "admin");
    let (text, json) = both(&d, "manager show user admin");
    same_fields("manager show user", &text, &json, 6);
    let (text, json) = both(&d, "manager show settings");
    same_fields("manager show settings", &text, &json, 8);
    assert!(rows(&d, "manager show commands").0 >= 15);

    // chan_sip
    let (n, json) = rows(&d, "sip show peers");
    assert_eq!(n, 4, "{json}");
    let watcher = json["rows"]
        .as_array()
        .and_then(|r| {
            r.iter().find(|r| {
                r["name_username"] == "watcher/watcher" || r["name_username"] == "watcher"
            })
        })
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(watcher["host"], "127.0.0.1", "registered: {json}");
    assert_eq!(rows(&d, "sip show peers like wat").0, 1);
    let (text, json) = both(&d, "sip show peer watcher");
    same_fields("sip show peer", &text, &json, 20);
    assert_eq!(json["description"], "Reception desk");
    assert!(
        json["reg_contact"]
            .as_str()
            .unwrap()
            .starts_with("sip:watcher@127.0.0.1:"),
        "{json}"
    );
    assert_eq!(
        json["other_contacts"],
        serde_json::json!([]),
        "one contact: {json}"
    );
    let (text, json) = both(&d, "sip show settings");
    same_fields("sip show settings", &text, &json, 12);
    let (n, json) = rows(&d, "sip show registry");
    assert_eq!(
        (n, json["sip_registrations"].as_u64()),
        (1, Some(1)),
        "{json}"
    );
    assert_eq!(json["rows"][0]["username"], "trunk", "{json}");
    assert!(rows(&d, "sip show inuse").0 >= 1);
    assert_eq!(rows(&d, "sip show inuse all").0, 4);
    let (n, json) = rows(&d, "sip show subscriptions");
    assert_eq!(n, 1, "{json}");
    assert_eq!(json["rows"][0]["extension"], "6001@test", "{json}");
    let (n, json) = rows(&d, "sip show sharedlines");
    assert_eq!((n, json["shared_lines"].as_u64()), (1, Some(1)), "{json}");
    let (n, json) = rows(&d, "sip show banned");
    assert_eq!(
        (n, json["lockouts_in_force"].as_u64()),
        (0, Some(0)),
        "{json}"
    );
    assert_eq!(rows(&d, "sip show channels").0, 0);
    let (text, json) = both(&d, "sip show lag");
    let per_second = json["timers"]["per_second_ms"]
        .as_array()
        .expect("lag figures");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("Per second (ms): "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(line.split(' ').count(), per_second.len(), "{text}\n{json}");
    assert_eq!(
        json["timers"]["threads"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );
}

/// Errors are JSON too, with exit status 1: a command that has no JSON
/// form, one that does not exist, a show command's own error, and `--json`
/// without `-x`.
#[test]
fn json_errors_are_json() {
    let d = Daemon::with_chan_sip(&[("sip.toml", SIP_TOML), ("extensions.toml", EXTENSIONS)]);
    let failed = |c: &str| {
        let out = std::process::Command::new(sirius_blackbox::sirius_bin())
            .arg("-C")
            .arg(d.etc())
            .args(["-rx", c, "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{c}: {out:?}");
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{c}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{c}: {v}"))
            .to_string()
    };
    assert_eq!(failed("sip reload"), "'sip reload' has no JSON form");
    assert_eq!(
        failed("core set verbose 3"),
        "'core set verbose' has no JSON form"
    );
    assert!(failed("no such thing").starts_with("No such command 'no such thing'"));
    assert!(failed("sip show peer nobody").contains("nobody"));
    assert!(failed("core show channel SIP/none-1").contains("SIP/none-1"));
    assert!(failed("manager show users").contains("not enabled"));
    let out = std::process::Command::new(sirius_blackbox::sirius_bin())
        .arg("-C")
        .arg(d.etc())
        .args(["-r", "--json"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-x"),
        "{out:?}"
    );
}
