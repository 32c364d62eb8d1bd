//! chan_sip driven by a real peer (sipp, Debian's sip-tester) on 127.0.0.1.

use sirius_blackbox::{
    free_udp_port, log_line, scenario, sipp, sipp_options, sipp_register, Daemon, Kamailio,
    SippProcess,
};
use std::time::Duration;

const SIP_TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:0"
realm = "sirius"
authfailures = 50

[peers.alice]
host = "dynamic"
secret = "alice-secret"
context = "demo"
nat = ["force_rport"]
description = "Alice's phone"

[peers.bob]
host = "dynamic"
secret = "bob-secret"
context = "demo"

[peers.trunk]
type = "peer"
host = "127.0.0.1"
port = 5999
qualify = 500
"#;

fn pbx() -> Daemon {
    Daemon::with_chan_sip(&[("sip.toml", SIP_TOML)])
}

#[test]
fn chan_sip_registers_the_sip_channel_type() {
    let d = pbx();
    assert!(d.rx("module show").ok().contains(&format!(
        "{:<30} {:<40}",
        "chan_sip.so", "Session Initiation Protocol (SIP)"
    )));
    let types = d.rx("core show channeltypes").ok();
    assert!(
        types.contains("\nSIP              Session Initiation Protocol (SIP)        yes"),
        "{types}"
    );
    // Transfer: yes, since Transfer() sends a REFER (tests/transfer.rs).
    let sip = types.lines().find(|l| l.starts_with("SIP ")).unwrap();
    assert_eq!(
        sip.split_whitespace().rev().take(4).collect::<Vec<_>>(),
        ["yes", "yes", "no", "yes"],
        "Transfer, Indications, Presencestate, Devicestate: {sip}"
    );
}

#[test]
fn options_are_answered_200_with_what_we_support() {
    let d = pbx();
    let target = format!("127.0.0.1:{}", d.sip_port());
    let trace = d.root.path().join("options_msgs.log");
    let (code, out) = sipp(&[
        &target,
        "-sf",
        scenario("options.xml").to_str().unwrap(),
        "-m",
        "3",
        "-p",
        &free_udp_port().to_string(),
        "-trace_msg",
        "-message_file",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "sipp failed:\n{out}");
    let msgs = std::fs::read_to_string(trace).unwrap();
    assert!(msgs.contains("SIP/2.0 200 OK"), "{msgs}");
    assert!(
        msgs.contains("Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER"),
        "{msgs}"
    );
    assert!(msgs.contains("Accept: application/sdp"), "{msgs}");
}

#[test]
fn register_with_digest_creates_a_binding_seen_in_sip_show_peers() {
    let d = pbx();
    let port = free_udp_port();
    let (code, out) = sipp_register(
        &d,
        "register_accepted.xml",
        "alice",
        "alice-secret",
        port,
        1,
    );
    assert_eq!(
        code, 0,
        "REGISTER with the right password must end in 200:\n{out}"
    );
    let peers = d.rx("sip show peers").ok();
    let row = format!(
        "{:<25} {:<39} {:<3} {:<10} {:<10} {:<3} {:<8} {:<11} {:<32}",
        "alice/alice", "127.0.0.1", "D", "Yes", "No", "", port, "Unmonitored", "Alice's phone"
    );
    assert!(peers.contains(&row), "row missing:\n{row}\nin:\n{peers}");
    assert!(
        peers.contains(&format!("{:<25} {:<39} {:<3}", "bob", "(Unspecified)", "D")),
        "{peers}"
    );
    assert!(
        peers.trim_end().ends_with(
            "3 sip peers [Monitored: 0 online, 1 offline Unmonitored: 1 online, 1 offline]"
        ),
        "{peers}"
    );
    let peer = d.rx("sip show peer alice").ok();
    assert!(
        peer.contains(&format!("  Addr->IP     : 127.0.0.1:{port}")),
        "{peer}"
    );
    assert!(peer.contains("  Useragent    : sipp"), "{peer}");
    let log = d.messages();
    assert!(
        log_line(
            &log,
            "NOTICE",
            "chan_sip",
            &format!("Registered SIP 'alice' at 127.0.0.1:{port}")
        )
        .is_some(),
        "{log}"
    );
}

#[test]
fn a_wrong_password_and_an_unknown_user_get_the_same_401_and_no_binding() {
    let d = pbx();
    let (code, out) = sipp_register(
        &d,
        "register_rejected.xml",
        "bob",
        "not-bobs",
        free_udp_port(),
        1,
    );
    assert_eq!(code, 0, "wrong password must be answered 401:\n{out}");
    let (code, out) = sipp_register(
        &d,
        "register_rejected.xml",
        "mallory",
        "whatever",
        free_udp_port(),
        1,
    );
    assert_eq!(
        code, 0,
        "unknown user must be answered 401 like a wrong password:\n{out}"
    );
    let peers = d.rx("sip show peers").ok();
    assert!(
        peers.contains(&format!("{:<25} {:<39}", "bob", "(Unspecified)")),
        "{peers}"
    );
    assert!(!peers.contains("mallory"));
    let log = d.messages();
    let bob = log_line(
        &log,
        "NOTICE",
        "chan_sip",
        "Registration from '<sip:bob@127.0.0.1>' failed for '127.0.0.1:",
    );
    assert!(
        bob.is_some_and(|l| l.ends_with("' - Wrong password")),
        "{log}"
    );
    let mallory = log_line(
        &log,
        "NOTICE",
        "chan_sip",
        "Registration from '<sip:mallory@127.0.0.1>' failed for '127.0.0.1:",
    );
    assert!(
        mallory.is_some_and(|l| l.ends_with("' - No matching peer found")),
        "{log}"
    );
    assert!(
        !log.contains("not-bobs") && !log.contains("bob-secret"),
        "passwords never reach the log"
    );
}

#[test]
fn bindings_survive_a_restart() {
    let mut d = pbx();
    let port = free_udp_port();
    assert_eq!(
        sipp_register(
            &d,
            "register_accepted.xml",
            "alice",
            "alice-secret",
            port,
            1
        )
        .0,
        0
    );
    d.restart();
    let peer = d.rx("sip show peer alice").ok();
    assert!(
        peer.contains(&format!("  Addr->IP     : 127.0.0.1:{port}")),
        "binding lost on restart:\n{peer}"
    );
}

#[test]
fn a_broken_sip_toml_is_refused_on_reload_and_the_running_config_stays() {
    let d = pbx();
    std::fs::write(
        d.etc().join("sip.toml"),
        SIP_TOML.replace("secret = \"bob-secret\"", "secrett = \"bob-secret\""),
    )
    .unwrap();
    let out = d.rx("sip reload").failed();
    assert!(
        out.contains("sip.toml:16: unknown field `secrett`"),
        "{out}"
    );
    assert!(d.rx("sip show peers").ok().contains("3 sip peers"));
    std::fs::write(
        d.etc().join("sip.toml"),
        SIP_TOML.replace(
            "[peers.trunk]",
            "[peers.carol]\nsecret = \"c\"\n\n[peers.trunk]",
        ),
    )
    .unwrap();
    assert!(d.rx("module reload chan_sip").ok().contains("Reloaded"));
    assert!(d.rx("sip show peers").ok().contains("4 sip peers"));
}

#[test]
fn chan_sip_unloads_and_loads_again_on_the_same_port() {
    let d = pbx();
    let port_before = d.sip_port();
    assert_eq!(
        d.rx("module unload chan_sip").ok().trim_end(),
        "Unloaded chan_sip.so"
    );
    assert!(d
        .rx("core show channeltypes")
        .ok()
        .contains("0 channel drivers registered."));
    assert_eq!(
        d.rx("module load chan_sip").ok().trim_end(),
        "Loaded chan_sip.so"
    );
    let (code, out) = sipp_options(&d, &[]);
    assert_eq!(code, 0, "OPTIONS after reload:\n{out}");
    let _ = port_before;
}

fn sipp_uas(file: &str, port: u16, extra: &[&str]) -> SippProcess {
    let sf = scenario(file);
    let mut args = vec!["-sf", sf.to_str().unwrap()];
    args.extend_from_slice(extra);
    SippProcess::start(port, &args)
}

#[test]
fn an_outbound_registration_reaches_registered_and_unregisters_on_unload() {
    let reg_port = free_udp_port();
    let registrar = sipp_uas("registrar_uas.xml", reg_port, &["-m", "1"]);
    let cfg = format!(
        "{SIP_TOML}\n[[register]]\nuser = \"carol\"\nsecret = \"carol-pw\"\nhost = \"127.0.0.1\"\nport = {reg_port}\nexpiry = 120\ncontact = \"5000\"\n"
    );
    let d = Daemon::with_chan_sip(&[("sip.toml", &cfg)]);
    let reg = d.wait_for("sip show registry", Duration::from_secs(10), |o| {
        o.contains("Registered")
    });
    let lines: Vec<&str> = reg.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{:<39} {:<6} {:<12}  {:>8} {:<20} {:<25}",
            "Host", "dnsmgr", "Username", "Refresh", "State", "Reg.Time"
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{:<39} {:<6} {:<12}  {:>8} {:<20} ",
            format!("127.0.0.1:{reg_port}"),
            "N",
            "carol",
            "60",
            "Registered"
        )),
        "{reg}"
    );
    assert_eq!(lines[2], "1 SIP registrations.");
    assert!(
        d.messages().contains("Request Sent -> Auth. Sent (401)"),
        "{}",
        d.messages()
    );
    // Unloading sends Expires: 0; the registrar scenario completes only if it does.
    assert_eq!(
        d.rx("module unload chan_sip").ok().trim_end(),
        "Unloaded chan_sip.so"
    );
    assert_eq!(
        registrar.finish(),
        Some(0),
        "sipp registrar scenario failed (digest, nc or Expires: 0 wrong)"
    );
}

#[test]
fn a_peer_that_stops_answering_goes_unreachable() {
    let peer_port = free_udp_port();
    let responder = sipp_uas("options_uas.xml", peer_port, &[]);
    let cfg = format!(
        "[general]\nudpbindaddr = \"127.0.0.1:0\"\nqualifyfreq = 1\n\n[peers.trunk]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {peer_port}\nqualify = 300\n"
    );
    let d = Daemon::with_chan_sip(&[("sip.toml", &cfg)]);
    let peers = d.wait_for("sip show peers", Duration::from_secs(10), |o| {
        o.contains(" OK (")
    });
    assert!(
        peers.trim_end().ends_with(
            "1 sip peers [Monitored: 1 online, 0 offline Unmonitored: 0 online, 0 offline]"
        ),
        "{peers}"
    );
    assert_eq!(
        d.rx("sip qualify peer trunk").ok().trim_end(),
        "Qualifying peer 'trunk'"
    );
    assert!(d
        .rx("sip qualify peer nobody")
        .failed()
        .contains("Peer 'nobody' not found"));
    drop(responder); // the far end stops answering
    let peers = d.wait_for("sip show peers", Duration::from_secs(10), |o| {
        o.contains("UNREACHABLE")
    });
    assert!(
        peers.trim_end().ends_with(
            "1 sip peers [Monitored: 0 online, 1 offline Unmonitored: 0 online, 0 offline]"
        ),
        "{peers}"
    );
    assert!(d.messages().contains("Peer 'trunk' is now Reachable."));
    let log = d.messages();
    assert!(
        log_line(
            &log,
            "WARNING",
            "chan_sip",
            "Peer 'trunk' is now UNREACHABLE!"
        )
        .is_some(),
        "{log}"
    );
}

#[test]
fn sip_debug_can_follow_one_address_or_one_peer() {
    let d = pbx();
    assert_eq!(
        d.rx("sip set debug peer trunk").ok().trim_end(),
        "SIP Debugging Enabled for IP: 127.0.0.1:5999"
    );
    assert!(d
        .rx("sip set debug peer alice")
        .failed()
        .contains("Unable to get IP address of peer 'alice'"));
    assert!(d
        .rx("sip set debug ip not-an-address")
        .failed()
        .contains("is not an IP address"));
    let (watched, other) = (free_udp_port(), free_udp_port());
    assert_eq!(
        d.rx(&format!("sip set debug ip 127.0.0.1:{watched}"))
            .ok()
            .trim_end(),
        format!("SIP Debugging Enabled for IP: 127.0.0.1:{watched}")
    );
    assert!(d
        .rx("sip show settings")
        .ok()
        .contains(&format!("Enabled for 127.0.0.1:{watched}")));
    let target = format!("127.0.0.1:{}", d.sip_port());
    for port in [other, watched] {
        let (code, out) = sipp(&[
            &target,
            "-sf",
            scenario("options.xml").to_str().unwrap(),
            "-m",
            "1",
            "-p",
            &port.to_string(),
        ]);
        assert_eq!(code, 0, "{out}");
    }
    let sent = format!("<--- SIP send to UDP:127.0.0.1:{watched} --->");
    let log = d.wait_for_log(&sent, std::time::Duration::from_secs(5));
    assert!(
        log.contains(&format!("<--- SIP read from UDP:127.0.0.1:{watched} --->")),
        "{log}"
    );
    assert!(!log.contains(&format!("127.0.0.1:{other} --->")), "{log}");
    assert_eq!(
        d.rx("sip set debug off").ok().trim_end(),
        "SIP Debugging Disabled"
    );
}

#[test]
fn outbound_registrations_over_udp_and_tcp_reach_registered_at_kamailio_and_end_with_expires_0() {
    let kamailio = Kamailio::start("carol", "carol-pw");
    let k = kamailio.port;
    let cfg = format!(
        "{}\n[[register]]\nuser = \"carol\"\nsecret = \"carol-pw\"\nhost = \"127.0.0.1\"\nport = {k}\nexpiry = 120\ncontact = \"5000\"\n\n\
         [[register]]\nuser = \"carol\"\nsecret = \"carol-pw\"\nhost = \"localhost\"\nport = {k}\ntransport = \"tcp\"\nexpiry = 120\ncontact = \"5001\"\n",
        SIP_TOML.replace("realm = \"sirius\"", "realm = \"sirius\"\ntcpenable = true")
    );
    let d = Daemon::with_chan_sip(&[("sip.toml", &cfg)]);
    let reg = d.wait_for("sip show registry", Duration::from_secs(10), |o| {
        o.matches(" Registered ").count() == 2
    });
    assert!(reg.contains(&format!("127.0.0.1:{k}")), "{reg}");
    assert!(reg.contains(&format!("localhost:{k}")), "{reg}");
    let port = d.sip_port();
    let log = kamailio.wait_for_log(
        &format!(
            "user=carol proto=tcp expires=120 contact=<sip:5001@127.0.0.1:{port};transport=tcp>"
        ),
        Duration::from_secs(5),
    );
    assert!(
        log.contains(&format!(
            "user=carol proto=udp expires=120 contact=<sip:5000@127.0.0.1:{port}>"
        )),
        "{log}"
    );
    assert!(
        d.messages().contains("Request Sent -> Auth. Sent (401)"),
        "{}",
        d.messages()
    );
    assert_eq!(
        d.rx("module unload chan_sip").ok().trim_end(),
        "Unloaded chan_sip.so"
    );
    kamailio.wait_for_log("proto=udp expires=0 ", Duration::from_secs(5));
    kamailio.wait_for_log("proto=tcp expires=0 ", Duration::from_secs(5));
}

/// `sip reload` brings registrations in line with the file: a
/// `[[register]]` line added to it starts registering.
#[test]
fn a_register_line_added_on_reload_registers() {
    let reg_port = free_udp_port();
    let registrar = sipp_uas("registrar_uas.xml", reg_port, &["-m", "1"]);
    let d = Daemon::with_chan_sip(&[("sip.toml", SIP_TOML)]);
    assert!(d
        .rx("sip show registry")
        .ok()
        .contains("0 SIP registrations."));
    let cfg = format!(
        "{SIP_TOML}\n[[register]]\nuser = \"carol\"\nsecret = \"carol-pw\"\nhost = \"127.0.0.1\"\nport = {reg_port}\nexpiry = 120\ncontact = \"5000\"\n"
    );
    std::fs::write(d.etc().join("sip.toml"), cfg).unwrap();
    assert!(d.rx("sip reload").ok().contains("Reloaded"));
    d.wait_for("sip show registry", Duration::from_secs(10), |o| {
        o.contains("Registered")
    });
    assert_eq!(
        d.rx("module unload chan_sip").ok().trim_end(),
        "Unloaded chan_sip.so"
    );
    assert_eq!(registrar.finish(), Some(0));
}

/// Issue #16 item 3: an out-of-dialog flood from one source holds no memory.
/// 30,000 OPTIONS (50 in flight at a time, each its own Call-ID and
/// branch): every one is answered 200, RSS stays within a few MB of idle
/// during the flood and after it (each used to leave a transaction for
/// 32 s: 500,000 of them took 245 MB).
#[test]
fn an_options_flood_is_answered_without_holding_memory() {
    let d = pbx();
    let idle = d.rss_kib();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let port = d.sip_port(); // (asks the console: once)
    let pbx_addr = ("127.0.0.1", port);
    // 50 in flight: their answers fit the socket's default receive buffer.
    let (total, window) = (30_000u32, 50u32);
    let (mut answered, mut peak) = (0u32, idle);
    let mut buf = [0u8; 2048];
    for start in (0..total).step_by(window as usize) {
        for n in start..start + window {
            let req = format!(
                "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-fl{n}\r\n\
                 From: <sip:flood@127.0.0.1>;tag=f{n}\r\nTo: <sip:127.0.0.1:{port}>\r\nCall-ID: flood-{n}\r\n\
                 CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            );
            sock.send_to(req.as_bytes(), pbx_addr).unwrap();
        }
        for _ in 0..window {
            let n = sock.recv(&mut buf).expect("every OPTIONS is answered");
            assert!(buf[..n].starts_with(b"SIP/2.0 200 OK\r\n"));
            answered += 1;
        }
        if start % 5_000 == 0 {
            peak = peak.max(d.rss_kib());
        }
    }
    assert_eq!(answered, total);
    let after = d.rss_kib();
    assert!(
        peak.saturating_sub(idle) < 8 * 1024 && after.saturating_sub(idle) < 8 * 1024,
        "RSS idle {idle} KiB, peak {peak} KiB, after {after} KiB"
    );
    // And the PBX is still itself.
    let (code, out) = sipp_options(&d, &[]);
    assert_eq!(code, 0, "{out}");
}

/// Hints (`[context.hints]` in extensions.toml) and `core show hints` in
/// Asterisk's layout: each hint's devices combined into its extension state.
#[test]
fn core_show_hints_lists_each_hint_with_its_extension_state() {
    let none = pbx();
    assert_eq!(
        none.rx("core show hints").ok().trim_end(),
        "There are no registered dialplan hints"
    );
    drop(none);
    let extensions = "[demo]\n\"6001\" = [\"Dial(SIP/alice,20)\"]\n\n[demo.hints]\n\
                      \"6001\" = \"SIP/alice\"\n\"6002\" = \"SIP/bob&SIP/alice\"\n\"6009\" = \"SIP/nobody\"\n";
    let d = Daemon::with_chan_sip(&[("sip.toml", SIP_TOML), ("extensions.toml", extensions)]);
    let row = |hint: &str, devices: &str, state: &str| {
        format!(
            "{:<30.30}: {:<60.60}  State:{:<15.15} Presence:{:<15.15} Watchers {:>2}\n",
            hint, devices, state, "not_set", 0
        )
    };
    let show = d.rx("core show hints").ok();
    assert!(
        show.starts_with("\n    -= Registered Asterisk Dial Plan Hints =-\n"),
        "{show}"
    );
    // alice and bob are dynamic and not registered: unavailable; a device
    // no technology knows is unavailable too.
    for r in [
        row("6001@demo", "SIP/alice", "Unavailable"),
        row("6002@demo", "SIP/bob&SIP/alice", "Unavailable"),
        row("6009@demo", "SIP/nobody", "Unavailable"),
    ] {
        assert!(show.contains(&r), "{r}\nnot in:\n{show}");
    }
    assert!(
        show.ends_with("----------------\n- 3 hints registered\n"),
        "{show}"
    );
    // Once alice registers, both hints she is in show Idle.
    let (code, out) = sipp_register(
        &d,
        "register_accepted.xml",
        "alice",
        "alice-secret",
        free_udp_port(),
        1,
    );
    assert_eq!(code, 0, "{out}");
    let show = d.rx("core show hints").ok();
    for r in [
        row("6001@demo", "SIP/alice", "Idle"),
        row("6002@demo", "SIP/bob&SIP/alice", "Idle"),
    ] {
        assert!(show.contains(&r), "{r}\nnot in:\n{show}");
    }
}
