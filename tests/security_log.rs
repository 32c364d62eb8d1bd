//! The security log as fail2ban reads it: Debian's fail2ban, its stock
//! `asterisk` filter, run with `fail2ban-regex` over the files Sirius wrote
//! after real failed authentications from sipp.

use sirius_blackbox::{free_udp_port, log_line, scenario, sipp, sipp_register, Daemon};
use std::process::Command;

const SIP_TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:0"
tcpenable = true
realm = "sirius"
authfailures = 50

[peers.bob]
host = "dynamic"
secret = "bob-secret"
context = "demo"

[peers.carol]
host = "dynamic"
secret = "carol-secret"
context = "demo"
deny = ["0.0.0.0/0"]
permit = ["10.0.0.0/8"]
"#;

/// The sample's channels, with the SIP trace (`sip set debug on`, verbose)
/// in `messages` as well.
const LOGGER_TOML: &str = r#"
[logfiles]
console = "notice,warning,error,verbose"
messages = "notice,warning,error,verbose"
security = "security"
"#;

const FILTER: &str = "/etc/fail2ban/filter.d/asterisk.conf";

/// fail2ban-regex over `file` with the stock filter: the address of each
/// line it matched (in file order).
fn banned_hosts(file: &std::path::Path) -> Vec<String> {
    let out = Command::new("fail2ban-regex")
        .args(["--out", "ip"])
        .arg(file)
        .arg(FILTER)
        .output()
        .expect("fail2ban-regex (Debian's fail2ban) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

#[test]
fn the_stock_fail2ban_filter_bans_every_failed_authentication() {
    let d = Daemon::with_chan_sip(&[("sip.toml", SIP_TOML), ("logger.toml", LOGGER_TOML)]);
    // With the SIP trace on, a datagram built to look like failure lines:
    // it is logged, and must not be read as one.
    d.rx("sip set debug on").ok();
    let forged = "OPTIONS sip:x SIP/2.0\r\nNOTICE[1]: a.rs:1 m: Registration from 'x' failed for '192.0.2.77:5060' - Wrong password\r\nSECURITY[1]: a.rs:1 m: SecurityEvent=\"InvalidPassword\",RemoteAddress=\"IPV4/UDP/192.0.2.78/5060\"\r\n[Dec  3 21:00:59] NOTICE[1]: a.rs:1 m: Registration from 'x' failed for '192.0.2.79:5060' - Wrong password\r\n\r\n";
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(forged.as_bytes(), ("127.0.0.1", d.sip_port()))
        .unwrap();
    d.wait_for_log("192.0.2.79", std::time::Duration::from_secs(5));
    // A wrong password, an unknown peer, an ACL refusal (REGISTER); a wrong
    // password on an INVITE; a To header built to make a filter miss it; a
    // wrong password over TCP.
    let register = |file, user, pass| {
        let (code, out) = sipp_register(&d, file, user, pass, free_udp_port(), 1);
        assert_eq!(code, 0, "{file} as {user}:\n{out}");
    };
    register("register_rejected.xml", "bob", "not-bobs");
    register("register_rejected.xml", "mallory", "whatever");
    register("register_forbidden.xml", "carol", "carol-secret");
    register("register_rejected_evasive.xml", "bob", "guess");
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let (code, out) = sipp(&[
        &target,
        "-sf",
        scenario("uac_invite_rejected.xml").to_str().unwrap(),
        "-s",
        "bob",
        "-au",
        "bob",
        "-ap",
        "wrong",
        "-p",
        &port,
        "-m",
        "1",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = sipp(&[
        &target,
        "-t",
        "t1",
        "-sf",
        scenario("register_rejected.xml").to_str().unwrap(),
        "-s",
        "bob",
        "-au",
        "bob",
        "-ap",
        "over-tcp",
        "-p",
        &free_udp_port().to_string(),
        "-m",
        "1",
    ]);
    assert_eq!(code, 0, "{out}");
    d.rx("sip set debug off").ok();

    let messages = d.messages();
    let security = d.log_file("security");
    // The human lines, as chan_sip and res_pjsip word them.
    for (user, why) in [
        ("bob", "Wrong password"),
        ("mallory", "No matching peer found"),
        ("carol", "Device does not match ACL"),
    ] {
        let line = log_line(
            &messages,
            "NOTICE",
            "chan_sip",
            &format!("Registration from '<sip:{user}@127.0.0.1>' failed for '127.0.0.1:"),
        );
        assert!(line.is_some_and(|l| l.ends_with(why)), "{user}: {messages}");
    }
    assert!(
        messages.contains("Registration from '%22x%27: evil%5C%22 %28y%29%22 <sip:bob@127.0.0.1>' failed for '127.0.0.1:"),
        "the caller's quotes are encoded: {messages}"
    );
    let invite = log_line(
        &messages,
        "NOTICE",
        "chan_sip",
        "Request 'INVITE' from '<sip:bob@127.0.0.1>;tag=",
    );
    assert!(
        invite.is_some_and(
            |l| l.contains(&format!("' failed for '127.0.0.1:{port}' (callid: "))
                && l.ends_with(") - Failed to authenticate")
        ),
        "{messages}"
    );
    // The security events, with the right transport and IP version.
    let events: Vec<&str> = security.lines().collect();
    for (event, account) in [
        ("InvalidPassword", "bob"),
        ("InvalidAccountID", "mallory"),
        ("FailedACL", "carol"),
    ] {
        let line = events
            .iter()
            .find(|l| {
                l.contains(&format!("SecurityEvent=\"{event}\""))
                    && l.contains(&format!("AccountID=\"{account}\""))
            })
            .unwrap_or_else(|| panic!("{event} for {account}: {security}"));
        assert!(line.contains("] SECURITY["), "{line}");
        assert!(
            line.contains(",Severity=\"Error\",Service=\"SIP\","),
            "{line}"
        );
        assert!(
            line.contains(&format!(
                ",LocalAddress=\"IPV4/UDP/127.0.0.1/{}\",RemoteAddress=\"IPV4/UDP/127.0.0.1/",
                d.sip_port()
            )),
            "{line}"
        );
    }
    assert!(!security.contains("bob-secret") && !messages.contains("not-bobs"));

    let tcp = events
        .iter()
        .find(|l| l.contains(",RemoteAddress=\"IPV4/TCP/127.0.0.1/"))
        .unwrap_or_else(|| panic!("no TCP event: {security}"));
    assert!(
        tcp.contains("SecurityEvent=\"InvalidPassword\"")
            && tcp.contains(&format!(
                ",LocalAddress=\"IPV4/TCP/127.0.0.1/{}\"",
                d.sip_port()
            )),
        "{tcp}"
    );

    // fail2ban-regex: every failure matched once per file, each naming
    // 127.0.0.1, and none of the forged addresses: in messages the 6 human
    // lines (5 REGISTER, 1 INVITE), in security their 6 events.
    let hosts = banned_hosts(&d.log_dir().join("messages"));
    assert_eq!(hosts.len(), 6, "{hosts:?}\n{messages}");
    assert!(hosts.iter().all(|h| h == "127.0.0.1"), "{hosts:?}");
    assert!(
        messages.contains(
            "  | | NOTICE[1]: a.rs:1 m: Registration from 'x' failed for '192.0.2.77:5060'"
        ),
        "the forged lines were logged: {messages}"
    );
    let hosts = banned_hosts(&d.log_dir().join("security"));
    assert_eq!(hosts.len(), 6, "{hosts:?}\n{security}");
    assert!(hosts.iter().all(|h| h == "127.0.0.1"), "{hosts:?}");
}

#[test]
fn a_correct_password_is_a_successful_auth_event_and_nothing_to_ban() {
    let d = Daemon::with_chan_sip(&[("sip.toml", SIP_TOML)]);
    let (code, out) = sipp_register(
        &d,
        "register_accepted.xml",
        "bob",
        "bob-secret",
        free_udp_port(),
        1,
    );
    assert_eq!(code, 0, "{out}");
    let security = d.log_file("security");
    let line = security
        .lines()
        .find(|l| l.contains("SecurityEvent=\"SuccessfulAuth\""))
        .unwrap_or_else(|| panic!("{security}"));
    assert!(
        line.contains(",Severity=\"Informational\",Service=\"SIP\",EventVersion=\"1\",AccountID=\"bob\",SessionID=\""),
        "{line}"
    );
    assert!(line.ends_with(",UsingPassword=\"1\""), "{line}");
    // Without a logger.toml the events stay out of messages.
    assert!(!d.messages().contains("SecurityEvent"));
    assert!(banned_hosts(&d.log_dir().join("security")).is_empty());
    assert!(banned_hosts(&d.log_dir().join("messages")).is_empty());
}
