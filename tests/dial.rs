//! Outbound legs: Dial to a second phone or trunk (sipp), its answers,
//! challenges, redirects, route sets, failures and re-INVITEs.

use sirius_blackbox::{free_udp_port, sipp, Daemon, SippProcess};
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;

#[test]
fn dial_connects_two_phones_and_a_bye_ends_both_legs() {
    let callee_port = free_udp_port();
    let d = dial_pbx(callee_port);
    let trace = d.root.path().join("callee_msgs.log");
    let callee = SippProcess::start(
        callee_port,
        &[
            "-sn",
            "uas",
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            trace.to_str().unwrap(),
        ],
    );
    let (code, out) = call(&d, &["-sn", "uac", "-s", "200", "-d", "800"]);
    assert_eq!(code, 0, "caller: INVITE, 200, ACK, BYE, 200:\n{out}");
    assert_eq!(
        callee.finish(),
        Some(0),
        "callee: INVITE, 180, 200, ACK, BYE from the PBX, 200"
    );
    // The caller's ID (sipp's From: `sipp <sip:sipp@…>`) is presented to the callee.
    let msgs = std::fs::read_to_string(&trace).unwrap();
    assert!(
        msgs.contains(&format!(
            "From: \"sipp\" <sip:sipp@127.0.0.1:{}>",
            d.sip_port()
        )),
        "{msgs}"
    );
    let log = d.messages();
    assert!(log.contains("    -- Called SIP/callee"), "{log}");
    assert!(
        log.contains("SIP/callee-00000002 answered SIP/sipp-00000001; bridged"),
        "{log}"
    );
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("0 active channels")
    });
    // The bridged call held no dialplan thread; the hangup finished its
    // dialplan: `h` ran on the caller's channel as it was.
    let log = d.wait_for_log("h ran for", Duration::from_secs(5));
    assert!(
        log.contains("h ran for SIP/sipp-00000001 after cause 16 with DIALSTATUS=ANSWER"),
        "{log}"
    );
}

#[test]
fn call_limit_on_an_outbound_peer_refuses_the_leg_over_it_with_user_busy() {
    let callee_port = free_udp_port();
    let d = dial_pbx(callee_port);
    let callee = SippProcess::start(callee_port, &["-sn", "uas", "-m", "1"]);
    let (code, out) = call(&d, &["-sn", "uac", "-s", "203", "-d", "300"]);
    assert_eq!(code, 0, "the leg within the limit connects:\n{out}");
    assert_eq!(
        callee.finish(),
        Some(0),
        "exactly one INVITE reached the peer"
    );
    let log = d.messages();
    assert!(
        log.contains("Call to peer 'limited' rejected due to usage limit of 1"),
        "{log}"
    );
    // call() is queued, not waited for (a dialplan task holds no PBX
    // worker meanwhile): the leg over the limit is refused by hanging it
    // up with USER_BUSY, which Dial reads as a busy callee.
    assert!(
        log.contains("    -- Hungup 'SIP/limited-00000003' (USER_BUSY, 17)"),
        "{log}"
    );
}

#[test]
fn channel_originate_calls_a_phone_and_runs_the_dialplan_or_an_application_on_it() {
    let callee_port = free_udp_port();
    let d = dial_pbx(callee_port);
    let callee = SippProcess::start(callee_port, &["-sn", "uas", "-m", "2"]);
    assert_eq!(
        d.rx("channel originate SIP/callee extension 204@test").ok(),
        "",
        "no output on success, as in Asterisk"
    );
    d.wait_for_log("Executing [204@test:3] Hangup(", Duration::from_secs(10));
    assert_eq!(
        d.rx("channel originate SIP/callee application Wait 0.2")
            .ok(),
        ""
    );
    assert_eq!(
        callee.finish(),
        Some(0),
        "two calls answered, each ended by our BYE"
    );
    let log = d.messages();
    assert!(log.contains("    -- Executing Wait(\"SIP/callee-"), "{log}");
    let refused = d
        .rx("channel originate SIP/ghost extension 204@test")
        .failed();
    assert!(
        refused.starts_with("Unable to originate a call to SIP/ghost (cause 20 - "),
        "{refused}"
    );
    assert!(d
        .rx("channel originate SIP/callee dance")
        .failed()
        .contains("Usage: channel originate"));
}

#[test]
fn dialled_channels_inherit_underscore_variables_and_core_show_channel_lists_them() {
    let callee_port = free_udp_port();
    let d = dial_pbx(callee_port);
    let callee = SippProcess::start(callee_port, &["-sn", "uas", "-m", "1"]);
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let caller = std::thread::spawn(move || {
        sipp(&[
            &target, "-p", &port, "-m", "1", "-sn", "uac", "-s", "205", "-d", "1500",
        ])
    });
    d.wait_for("bridge show all", Duration::from_secs(5), |o| {
        o.contains("native_rtp")
    });
    let out = d.rx("core show channel SIP/callee-00000002").ok();
    assert!(
        out.starts_with(" -- General --\n           Name: SIP/callee-00000002\n"),
        "{out}"
    );
    assert!(out.contains("\n          State: Up (6)\n"), "{out}");
    let vars = out.split_once("      Variables:\n").unwrap().1;
    assert_eq!(vars.trim_end(), "ONCE=1\n__ALWAYS=2", "{out}");
    let caller_vars = d.rx("core show channel SIP/sipp-00000001").ok();
    assert!(
        caller_vars
            .trim_end()
            .ends_with("      Variables:\nDIALSTATUS=ANSWER\nPLAIN=3\n_ONCE=1\n__ALWAYS=2"),
        "{caller_vars}"
    );
    assert!(d
        .rx("core show channel SIP/nobody")
        .failed()
        .contains("SIP/nobody is not a known channel"));
    let (code, out) = caller.join().unwrap();
    assert_eq!(code, 0, "{out}");
    assert_eq!(callee.finish(), Some(0));
}

#[test]
fn a_callee_answering_across_our_cancel_gets_ack_and_bye() {
    let callee_port = free_udp_port();
    let d = dial_pbx(callee_port);
    let callee = SippProcess::start(
        callee_port,
        &["-sf", &sf("uas_answer_after_cancel.xml"), "-m", "1"],
    );
    let (code, out) = call(&d, &["-sf", &sf("uac_cancel.xml"), "-s", "200"]);
    assert_eq!(code, 0, "the caller cancels while the callee rings:\n{out}");
    assert_eq!(
        callee.finish(),
        Some(0),
        "the callee's late 200 OK is ACKed, then the call is ended with BYE"
    );
    d.wait_for_log(
        "answered after our CANCEL: sending ACK and BYE",
        Duration::from_secs(5),
    );
}

#[test]
fn a_forced_unload_ends_both_legs_of_a_bridged_call_with_bye() {
    let callee_port = free_udp_port();
    let d = dial_pbx(callee_port);
    let callee = SippProcess::start(callee_port, &["-sn", "uas", "-m", "1"]);
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let scenario = sf("uac_remote_bye.xml");
    let caller = std::thread::spawn(move || {
        sipp(&[
            &target, "-p", &port, "-m", "1", "-sf", &scenario, "-s", "200",
        ])
    });
    d.wait_for("core show channels", Duration::from_secs(5), |o| {
        o.contains("2 active channels")
    });
    // Both legs in `sip show channels`, chan_sip's columns.
    let table = d.wait_for("sip show channels", Duration::from_secs(5), |o| {
        o.contains("2 active SIP dialogs") && o.contains("Rx: ACK") && o.contains("Tx: ACK")
    });
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].trim_end(),
        "Peer             User/ANR         Call ID          Format           Hold     Last Message     Expiry      Peer"
    );
    let leg = |user: &str, last: &str, peer: &str| {
        let (head, tail) = (
            format!("{:<15}  {:<15}  ", "127.0.0.1", user),
            format!(
                "{:<15}  {:<7}  {:<15}  {:<10}  {}",
                "(ulaw)", "No", last, "", peer
            ),
        );
        lines
            .iter()
            .any(|l| l.starts_with(&head) && l.trim_end().ends_with(&tail))
    };
    assert!(leg("sipp", "Rx: ACK", "sipp"), "caller's leg:\n{table}");
    assert!(leg("callee", "Tx: ACK", "callee"), "callee's leg:\n{table}");
    // The bridge Dial made, in Asterisk's `bridge show all` columns.
    let bridges = d.rx("bridge show all").ok();
    let lines: Vec<&str> = bridges.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{:<36} {:<36} {:>5} {:<15} {:<15} Duration",
            "Bridge-ID", "Name", "Chans", "Type", "Technology"
        )
    );
    assert_eq!(lines.len(), 2, "{bridges}");
    assert_eq!(lines[1].as_bytes()[36], b' ', "{bridges}");
    assert!(
        lines[1][37..].starts_with(&format!(
            "{:<36} {:>5} {:<15} {:<15} 00:00:0",
            "<unknown>", 2, "basic", "native_rtp"
        )),
        "{bridges}"
    );
    assert!(d
        .rx("module unload chan_sip")
        .failed()
        .contains("in use (2 active)"));
    assert_eq!(
        d.rx("module unload -f chan_sip").ok().trim_end(),
        "Unloaded chan_sip.so"
    );
    let (code, out) = caller.join().unwrap();
    assert_eq!(code, 0, "caller: BYE from the PBX, 200:\n{out}");
    assert_eq!(
        callee.finish(),
        Some(0),
        "callee: INVITE, 180, 200, ACK, BYE from the PBX, 200"
    );
    assert_eq!(
        d.rx("bridge show all").ok().lines().count(),
        1,
        "the bridge ended with its channels"
    );
}

/// A trunk that challenges our INVITE: answered with its credentials (user
/// `defaultuser`, `remotesecret`), and a wrong password ends the call.
fn trunk_pbx(callee_port: u16, password: &str) -> Daemon {
    let sip = format!(
        "{SIP_TOML}\n[peers.trunk]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\ndefaultuser = \"trunkuser\"\nremotesecret = \"{password}\"\n"
    );
    let ext = r#"
[test]
"300" = ["Dial(SIP/trunk,5)", "Goto(st-${DIALSTATUS})", "st-ANSWER: Hangup()", "st-CONGESTION: Congestion()", "st-CHANUNAVAIL: Congestion()", "st-BUSY: Busy()"]
"#;
    pbx_with(&sip, ext)
}

#[test]
fn a_challenged_outbound_invite_is_retried_with_credentials() {
    let callee_port = free_udp_port();
    let d = trunk_pbx(callee_port, "trunk-pw");
    let callee = SippProcess::start(callee_port, &["-sf", &sf("uas_auth.xml"), "-m", "1"]);
    let (code, out) = call(&d, &["-sn", "uac", "-s", "300", "-d", "500"]);
    assert_eq!(code, 0, "caller: answered through the trunk:\n{out}");
    assert_eq!(
        callee.finish(),
        Some(0),
        "trunk: INVITE, 401, ACK, INVITE with a valid digest and CSeq 103, 200, ACK, BYE"
    );
}

#[test]
fn a_407_from_a_proxy_is_answered_with_proxy_authorization() {
    let callee_port = free_udp_port();
    let d = trunk_pbx(callee_port, "trunk-pw");
    let callee = SippProcess::start(callee_port, &["-sf", &sf("uas_proxy_auth.xml"), "-m", "1"]);
    let (code, out) = call(&d, &["-sn", "uac", "-s", "300", "-d", "500"]);
    assert_eq!(code, 0, "caller: answered through the proxy:\n{out}");
    assert_eq!(
        callee.finish(),
        Some(0),
        "proxy: INVITE, 407, ACK, INVITE with Proxy-Authorization and CSeq 103, 200, ACK, BYE"
    );
}

#[test]
fn a_302_is_followed_to_the_contact_and_the_call_connects_there() {
    let (redirector_port, final_port) = (free_udp_port(), free_udp_port());
    let d = trunk_pbx(redirector_port, "trunk-pw");
    let fwd = final_port.to_string();
    let redirector = SippProcess::start(
        redirector_port,
        &[
            "-sf",
            &sf("uas_redirect.xml"),
            "-m",
            "1",
            "-key",
            "fwdport",
            &fwd,
        ],
    );
    let target = SippProcess::start(final_port, &["-sn", "uas", "-m", "1"]);
    let (code, out) = call(&d, &["-sn", "uac", "-s", "300", "-d", "500"]);
    assert_eq!(code, 0, "caller: answered by the redirect target:\n{out}");
    assert_eq!(redirector.finish(), Some(0), "redirector: INVITE, 302, ACK");
    assert_eq!(
        target.finish(),
        Some(0),
        "target: INVITE, 180, 200, ACK, BYE from the PBX, 200"
    );
    assert!(d.messages().contains(&format!(
        "redirected (302) to sip:final@127.0.0.1:{final_port}"
    )));
}

/// A PBX whose peer `silent` sits on a socket that swallows everything;
/// `general` and `silent_extra` are added to sip.toml's general and peer
/// sections, and `dial_timeout` is Dial's. Extension 400 answers Dial's
/// CONGESTION with 503 and NOANSWER with 486.
fn silent_peer_pbx(
    general: &str,
    silent_extra: &str,
    dial_timeout: u32,
) -> (Daemon, std::net::UdpSocket) {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let sip = SIP_TOML.replace("[general]\n", &format!("[general]\n{general}"))
        + &format!(
        "\n[peers.silent]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {port}\n{silent_extra}"
    );
    let ext = format!(
        "[test]\n\"400\" = [\"Dial(SIP/silent,{dial_timeout})\", \"Goto(st-${{DIALSTATUS}})\", \"st-CONGESTION: Congestion()\", \"st-NOANSWER: Busy()\"]\n"
    );
    (pbx_with(&sip, &ext), silent)
}

#[test]
fn an_invite_nobody_answers_is_auto_congested_after_timer_b() {
    // T1 = 20 ms makes Timer B 1.28 s.
    let (d, silent) = silent_peer_pbx("t1 = 20\n", "", 20);
    let (code, out) = call(&d, &["-sf", &sf("uac_congestion.xml"), "-s", "400"]);
    assert_eq!(code, 0, "caller: DIALSTATUS=CONGESTION, so 503:\n{out}");
    let mut buf = [0u8; 4096];
    silent
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let (n, _) = silent
        .recv_from(&mut buf)
        .expect("the INVITE reached the peer");
    assert!(buf[..n].starts_with(b"INVITE sip:"));
    assert!(
        d.messages().contains("Auto-congesting SIP/silent-00000002"),
        "{}",
        d.messages()
    );
}

#[test]
fn a_qualified_peer_is_auto_congested_at_four_times_its_maximum_round_trip() {
    // qualify = 100 ms: no response within 400 ms congests the call, long before
    // Dial's own 3 s timeout (which would give NOANSWER, answered 486 here).
    let (d, _silent) = silent_peer_pbx("", "qualify = 100\n", 3);
    let (code, out) = call(&d, &["-sf", &sf("uac_congestion.xml"), "-s", "400"]);
    assert_eq!(code, 0, "caller: DIALSTATUS=CONGESTION, so 503:\n{out}");
    assert!(
        d.messages().contains("Auto-congesting SIP/silent-00000002"),
        "{}",
        d.messages()
    );
}

/// A call whose callee answers through a record-routing proxy that is a
/// `sink` for the ACK and the BYE; `rrparams` are its Record-Route URI's parameters.
fn call_through_a_record_routing_proxy(sink: &str, rrparams: &str) {
    let (callee_port, proxy_port) = (free_udp_port(), free_udp_port());
    let d = dial_pbx(callee_port);
    let proxy = SippProcess::start(proxy_port, &["-sf", &sf(sink), "-m", "1"]);
    let pp = proxy_port.to_string();
    let callee = SippProcess::start(
        callee_port,
        &[
            "-sf",
            &sf("uas_record_route.xml"),
            "-m",
            "1",
            "-key",
            "proxyport",
            &pp,
            "-key",
            "rrparams",
            rrparams,
        ],
    );
    let (code, out) = call(&d, &["-sn", "uac", "-s", "200", "-d", "300"]);
    assert_eq!(code, 0, "caller:\n{out}");
    assert_eq!(callee.finish(), Some(0), "callee: INVITE, 200");
    assert_eq!(
        proxy.finish(),
        Some(0),
        "proxy: the ACK and the BYE routed through it ({sink})"
    );
}

#[test]
fn in_dialog_requests_follow_the_record_route_of_the_answer() {
    call_through_a_record_routing_proxy("uas_route_sink.xml", ";lr");
}

#[test]
fn a_strict_router_gets_in_dialog_requests_addressed_to_itself() {
    call_through_a_record_routing_proxy("uas_strict_route_sink.xml", ";transport=udp");
}

#[test]
fn a_wrong_trunk_password_fails_the_call_without_looping() {
    let callee_port = free_udp_port();
    let d = trunk_pbx(callee_port, "not-the-password");
    let callee = SippProcess::start(callee_port, &["-sf", &sf("uas_auth.xml"), "-m", "1"]);
    let (code, out) = call(&d, &["-sf", &sf("uac_congestion.xml"), "-s", "300"]);
    assert_eq!(
        code, 0,
        "caller: the failed Dial ends in Congestion (503):\n{out}"
    );
    assert_ne!(callee.finish(), Some(0), "the trunk refused the digest");
}

#[test]
fn a_busy_callee_sets_dialstatus_busy() {
    let callee_port = free_udp_port();
    let d = dial_pbx(callee_port);
    let callee = SippProcess::start(callee_port, &["-sf", &sf("uas_busy.xml"), "-m", "1"]);
    let (code, out) = call(&d, &["-sf", &sf("uac_busy.xml"), "-s", "201"]);
    assert_eq!(
        code,
        0,
        "DIALSTATUS=BUSY must lead to Busy() and a 486 for the caller:\n{out}\n{}",
        d.messages()
    );
    assert_eq!(callee.finish(), Some(0));
}

#[test]
fn an_unregistered_peer_sets_dialstatus_chanunavail() {
    let d = dial_pbx(free_udp_port());
    let (code, out) = call(&d, &["-sf", &sf("uac_congestion.xml"), "-s", "202"]);
    assert_eq!(
        code, 0,
        "DIALSTATUS=CHANUNAVAIL must lead to Congestion() and a 503:\n{out}"
    );
    assert!(d
        .messages()
        .contains("Peer 'ghost' is not registered: cannot call it"));
}

#[test]
fn the_caller_cancelling_cancels_the_ringing_callee() {
    let callee_port = free_udp_port();
    let d = dial_pbx(callee_port);
    let callee = SippProcess::start(callee_port, &["-sf", &sf("uas_ring_cancel.xml"), "-m", "1"]);
    let (code, out) = call(&d, &["-sf", &sf("uac_cancel.xml"), "-s", "200"]);
    assert_eq!(
        code, 0,
        "the caller sees 180 (passed back by Dial), then 200 and 487 for its CANCEL:\n{out}"
    );
    assert_eq!(
        callee.finish(),
        Some(0),
        "the callee must get a CANCEL and ACK its 487"
    );
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("0 active channels")
    });
}

#[test]
fn re_invites_hold_and_unhold_and_a_lower_cseq_is_refused() {
    let d = pbx();
    let (code, out) = call(&d, &["-sf", &sf("uac_reinvite.xml"), "-s", "100"]);
    assert_eq!(
        code, 0,
        "hold answered recvonly, unhold sendrecv, lower CSeq 500, BYE 200:\n{out}"
    );
    let log = d.messages();
    assert!(
        log.contains("put on hold by the far end") && log.contains("active (not on hold)"),
        "{log}"
    );
}
