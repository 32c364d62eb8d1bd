//! Inbound calls from a real peer (sipp) through chan_sip and the dialplan.

use sirius_blackbox::{
    free_udp_port, media_pair, scenario, sipp, wait_port, Daemon, Setup, SippProcess,
};
use std::time::Duration;

const SIP_TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:0"
rtpstart = 30000
rtpend = 30999
# Two SIP threads whatever the machine: calls land on both, by Call-ID.
sipthreads = 2

[peers.sipp]
type = "peer"
host = "127.0.0.1"
insecure = ["invite", "port"]
context = "test"
allow = ["ulaw", "alaw"]
call-limit = 1
"#;

const EXTENSIONS: &str = r#"
[test]
"100" = ["Answer()", "Wait(5)", "Hangup()"]
"101" = ["Busy()"]
"102" = ["Ringing()", "Wait(20)"]
"103" = ["Answer()", "Wait(0.3)", "Hangup()"]
"104" = ["Set(N=${EXTEN:2})", "GotoIf(${N}?busy:cong)", "cong: Congestion()", "busy: Busy()"]
"105" = ["Answer()", "Wait(3)", "Hangup()"]
"600" = ["Answer()", "Echo()"]
"106" = ["Answer()", "Wait(60)", "Hangup()"]
"107" = ["Goto(logic,s,1)"]

[logic]
"s" = ["Set(N=$[2 * 3 + 1])", "GotoIf($[${N} > 6]?big:small)", "small: Congestion()", "big: Goto(nowhere,1)"]
"i" = ["Verbose(2,invalid ${INVALID_EXTEN} with N=${N})", "Busy()"]
"h" = ["Set(WHY=$[${HANGUPCAUSE} = 17 ? busy :: other])", "Verbose(2,h after cause ${HANGUPCAUSE} (${WHY}) with N=${N})"]
"#;

fn pbx() -> Daemon {
    pbx_with(SIP_TOML, EXTENSIONS)
}

/// A daemon with chan_sip loaded on this sip.toml and extensions.toml.
fn pbx_with(sip: &str, extensions: &str) -> Daemon {
    Daemon::with_chan_sip(&[("sip.toml", sip), ("extensions.toml", extensions)])
}

fn call(d: &Daemon, args: &[&str]) -> (i32, String) {
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let mut all = vec![target.as_str(), "-p", port.as_str(), "-m", "1"];
    all.extend_from_slice(args);
    sipp(&all)
}

fn sf(name: &str) -> String {
    scenario(name).to_str().unwrap().to_string()
}

#[test]
fn an_answered_call_ends_when_the_caller_hangs_up() {
    let d = pbx();
    let (code, out) = call(&d, &["-sn", "uac", "-s", "100", "-d", "300"]);
    assert_eq!(
        code, 0,
        "INVITE/200/ACK/BYE/200 with sipp's own UAC:\n{out}"
    );
    assert_eq!(
        d.rx("core show calls").ok().trim_end(),
        "0 active calls\n1 call processed"
    );
    let log = d.messages();
    assert!(
        log.contains("-- Executing [100@test:1] Answer(\"SIP/sipp-00000001\", \"\") in new stack"),
        "{log}"
    );
    assert!(
        log.contains("Hungup 'SIP/sipp-00000001' (NORMAL_CLEARING, 16)"),
        "{log}"
    );
}

/// As Asterisk: a call's progress lines are VERBOSE, written at the
/// verbose level that asks for them and not at all below it; notices stay.
#[test]
fn at_verbose_0_a_call_writes_no_progress_lines() {
    let d = pbx();
    d.rx("core set verbose 0").ok();
    let (code, out) = call(&d, &["-sn", "uac", "-s", "100", "-d", "100"]);
    assert_eq!(code, 0, "{out}");
    d.rx("core set verbose 3").ok();
    let (code, out) = call(&d, &["-sn", "uac", "-s", "100", "-d", "100"]);
    assert_eq!(code, 0, "{out}");
    let log = d.messages();
    assert!(!log.contains("SIP/sipp-00000001"), "{log}");
    assert!(
        log.contains("] VERBOSE:     -- Hungup 'SIP/sipp-00000002' (NORMAL_CLEARING, 16)"),
        "{log}"
    );
}

#[test]
fn the_pbx_hangs_up_an_answered_call_with_bye() {
    let d = pbx();
    let (code, out) = call(&d, &["-sf", &sf("uac_remote_bye.xml"), "-s", "103"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn busy_congestion_and_unknown_extensions_get_their_responses() {
    let d = pbx();
    let (code, out) = call(&d, &["-sf", &sf("uac_busy.xml"), "-s", "101"]);
    assert_eq!(code, 0, "Busy() must answer 486:\n{out}");
    // GotoIf on a substituted variable: 104 -> N=4 -> busy label.
    let (code, out) = call(&d, &["-sf", &sf("uac_busy.xml"), "-s", "104"]);
    assert_eq!(
        code, 0,
        "GotoIf(${{N}}?busy:cong) must reach Busy():\n{out}"
    );
    let (code, out) = call(&d, &["-sf", &sf("uac_not_found.xml"), "-s", "999"]);
    assert_eq!(code, 0, "an unknown extension must get 404:\n{out}");
    assert!(d
        .messages()
        .contains("to extension '999' rejected because extension not found in context 'test'."));
}

#[test]
fn no_common_codec_gets_488() {
    let d = pbx();
    let (code, out) = call(&d, &["-sf", &sf("uac_no_codec.xml"), "-s", "100"]);
    assert_eq!(
        code, 0,
        "a G.729-only offer to a ulaw/alaw peer must get 488:\n{out}"
    );
    assert_eq!(
        d.rx("core show calls").ok().trim_end(),
        "0 active calls\n0 calls processed"
    );
}

#[test]
fn expressions_the_invalid_extension_and_the_hangup_extension_run_as_in_asterisk() {
    let d = pbx();
    let (code, out) = call(&d, &["-sf", &sf("uac_busy.xml"), "-s", "107"]);
    assert_eq!(
        code, 0,
        "$[2 * 3 + 1] > 6 leads to 'i', which is Busy():\n{out}"
    );
    let log = d.wait_for_log("h after cause", Duration::from_secs(5));
    assert!(log.contains("invalid nowhere with N=7"), "{log}");
    assert!(log.contains("h after cause 17 (busy) with N=7"), "{log}");
    assert!(
        log.contains("    -- Sent into invalid extension 'nowhere' in context 'logic'"),
        "{log}"
    );
}

#[test]
fn over_maxcalls_a_new_call_gets_503_with_retry_after() {
    // Without the peer's own call-limit, which would answer 480 first.
    let sip = SIP_TOML.replace("call-limit = 1\n", "");
    let d = Daemon::start_with(
        Setup::chan_sip(&[("sip.toml", &sip), ("extensions.toml", EXTENSIONS)]),
        "maxcalls = 1",
    );
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let holder = sf("uac_remote_bye.xml");
    let first = std::thread::spawn(move || {
        sipp(&[&target, "-p", &port, "-m", "1", "-sf", &holder, "-s", "106"])
    });
    d.wait_for("core show channels", Duration::from_secs(5), |o| {
        o.contains("Wait(60)")
    });
    let trace = d.root.path().join("refused.log");
    let (code, out) = call(
        &d,
        &[
            "-sf",
            &sf("uac_congestion.xml"),
            "-s",
            "100",
            "-trace_msg",
            "-message_file",
            trace.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "the second call is refused with 503:\n{out}");
    let msgs = std::fs::read_to_string(&trace).unwrap();
    assert!(msgs.contains("Retry-After: 2"), "{msgs}");
    assert!(d
        .messages()
        .contains("Maximum call limit of 1 calls exceeded by"));
    d.rx("channel request hangup all").ok();
    let (code, out) = first.join().unwrap();
    assert_eq!(code, 0, "{out}");
}

#[test]
fn cancel_while_ringing_gets_487_and_frees_the_channel() {
    let d = pbx();
    let (code, out) = call(&d, &["-sf", &sf("uac_cancel.xml"), "-s", "102"]);
    assert_eq!(code, 0, "180 then CANCEL: 200 and 487:\n{out}");
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("0 active channels")
    });
}

#[test]
fn a_call_in_progress_shows_in_core_show_channels_and_holds_the_module() {
    let d = pbx();
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let caller = std::thread::spawn(move || {
        sipp(&[
            &target, "-p", &port, "-m", "1", "-sn", "uac", "-s", "105", "-d", "1500",
        ])
    });
    let chans = d.wait_for("core show channels", Duration::from_secs(5), |o| {
        o.contains("Wait(3)")
    });
    let row = format!(
        "{:<64} {:<32} {:<7} {:<30}",
        "SIP/sipp-00000001", "105@test:2", "Up", "Wait(3)"
    );
    assert!(chans.contains(&row), "{chans}");
    assert!(
        chans.contains("1 active channel\n1 active call\n"),
        "{chans}"
    );
    assert!(d.rx("module show").ok().contains(&format!(
        "{:<30} {:<40} {:<10}",
        "chan_sip.so", "Session Initiation Protocol (SIP)", 1
    )));
    assert!(d
        .rx("module unload chan_sip")
        .failed()
        .contains("in use (1 active)"));
    let (code, out) = caller.join().unwrap();
    assert_eq!(code, 0, "{out}");
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("0 active channels")
    });
}

#[test]
fn channel_request_hangup_ends_a_call_from_the_console() {
    let d = pbx();
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let scenario = sf("uac_remote_bye.xml");
    let caller = std::thread::spawn(move || {
        sipp(&[
            &target, "-p", &port, "-m", "1", "-sf", &scenario, "-s", "106",
        ])
    });
    d.wait_for("core show channels", Duration::from_secs(5), |o| {
        o.contains("Wait(60)")
    });
    assert!(d
        .rx("channel request hangup SIP/nobody-00000009")
        .failed()
        .contains("SIP/nobody-00000009 is not a known channel"));
    assert_eq!(
        d.rx("channel request hangup SIP/sipp-00000001")
            .ok()
            .trim_end(),
        "Requested Hangup on channel 'SIP/sipp-00000001'"
    );
    let (code, out) = caller.join().unwrap();
    assert_eq!(code, 0, "caller: BYE from the PBX, 200:\n{out}");
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("0 active channels")
    });
}

#[test]
fn call_limit_refuses_the_second_concurrent_call_with_480() {
    let d = pbx();
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let first = std::thread::spawn(move || {
        sipp(&[
            &target, "-p", &port, "-m", "1", "-sn", "uac", "-s", "105", "-d", "1500",
        ])
    });
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("1 active channel")
    });
    let inuse = d.rx("sip show inuse").ok();
    assert!(
        inuse.contains(&format!("{:<25} {:<15} {:<15} ", "sipp", "1/0/0", "1")),
        "{inuse}"
    );
    let (code, out) = call(&d, &["-sf", &sf("uac_call_limit.xml"), "-s", "100"]);
    assert_eq!(code, 0, "the second concurrent call must get 480:\n{out}");
    assert!(d
        .messages()
        .contains("Call from peer 'sipp' rejected due to usage limit of 1"));
    let (code, out) = first.join().unwrap();
    assert_eq!(code, 0, "the first call is unaffected:\n{out}");
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("0 active channels")
    });
    assert!(d
        .rx("sip show inuse")
        .ok()
        .contains(&format!("{:<25} {:<15} {:<15} ", "sipp", "0/0/0", "1")));
}

fn dial_pbx(callee_port: u16) -> Daemon {
    let sip = format!(
        "{SIP_TOML}\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\n\n[peers.alawphone]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\nallow = [\"alaw\"]\n\n[peers.limited]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\ncall-limit = 1\n\n[peers.ghost]\nhost = \"dynamic\"\nsecret = \"x\"\n"
    );
    let ext = r#"
[test]
"200" = ["Dial(SIP/callee,5)", "Hangup()"]
"201" = ["Dial(SIP/callee,5)", "Goto(st-${DIALSTATUS})", "st-BUSY: Busy()", "st-NOANSWER: Congestion()", "st-CHANUNAVAIL: Congestion()"]
"202" = ["Dial(SIP/ghost,5)", "Goto(st-${DIALSTATUS})", "st-BUSY: Busy()", "st-CHANUNAVAIL: Congestion()"]
"203" = ["Dial(SIP/limited&SIP/limited,5)", "Hangup()"]
"204" = ["Answer()", "Wait(0.3)", "Hangup()"]
"206" = ["Dial(SIP/alawphone,5)", "Hangup()"]
"205" = ["Set(_ONCE=1)", "Set(__ALWAYS=2)", "Set(PLAIN=3)", "Dial(SIP/callee,5)"]
"h" = ["Verbose(2,h ran for ${CHANNEL} after cause ${HANGUPCAUSE} with DIALSTATUS=${DIALSTATUS})"]
"#;
    pbx_with(&sip, ext)
}

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

/// Sends `n` RTP-shaped datagrams from `from` to `to`; counts what `sink` receives.
fn pump(from: &std::net::UdpSocket, to: u16, sink: &std::net::UdpSocket, n: u16) -> u16 {
    sink.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut got = 0;
    let mut buf = [0u8; 2048];
    for seq in 0..n {
        let mut pkt = vec![0x80, 0x00];
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&[0u8; 168]);
        from.send_to(&pkt, ("127.0.0.1", to)).unwrap();
        if let Ok((len, _)) = sink.recv_from(&mut buf) {
            if len == pkt.len() && buf[2..4] == seq.to_be_bytes() {
                got += 1;
            }
        }
    }
    got
}

/// A call through `Dial` whose two phones have their media on sockets the
/// test owns: what a media test needs once the PBX has bridged it.
struct BridgedCall {
    d: Daemon,
    /// The caller's RTP and RTCP sockets.
    a: (std::net::UdpSocket, std::net::UdpSocket),
    /// The callee's.
    b: (std::net::UdpSocket, std::net::UdpSocket),
    /// Where the caller's media moves when its scenario re-INVITEs (`[mport2]`).
    a2: std::net::UdpSocket,
    /// The PBX's RTP ports towards the caller and towards the callee.
    pbx_a: u16,
    pbx_b: u16,
    caller: std::thread::JoinHandle<(i32, String)>,
    callee: SippProcess,
}

impl BridgedCall {
    fn start(caller_sf: &str, callee_sf: &str) -> BridgedCall {
        BridgedCall::start_to("200", caller_sf, callee_sf)
    }

    /// As [`BridgedCall::start`], dialling extension `exten`.
    fn start_to(exten: &str, caller_sf: &str, callee_sf: &str) -> BridgedCall {
        let callee_port = free_udp_port();
        let d = dial_pbx(callee_port);
        let (a, b, a2) = (media_pair(), media_pair(), media_pair().0);
        let (port_a, port_b) = (
            a.0.local_addr().unwrap().port(),
            b.0.local_addr().unwrap().port(),
        );
        let callee_trace = d.root.path().join("callee_msgs.log");
        let callee = SippProcess::start(
            callee_port,
            &[
                "-sf",
                &sf(callee_sf),
                "-m",
                "1",
                "-key",
                "mport",
                &port_b.to_string(),
                "-trace_msg",
                "-message_file",
                callee_trace.to_str().unwrap(),
            ],
        );
        let caller_trace = d.root.path().join("caller_msgs.log");
        let target = format!("127.0.0.1:{}", d.sip_port());
        let (caller_port, mport, mport2, trace, scenario, exten) = (
            free_udp_port().to_string(),
            port_a.to_string(),
            a2.local_addr().unwrap().port().to_string(),
            caller_trace.to_str().unwrap().to_string(),
            sf(caller_sf),
            exten.to_string(),
        );
        let caller = std::thread::spawn(move || {
            sipp(&[
                &target,
                "-sf",
                &scenario,
                "-s",
                &exten,
                "-p",
                &caller_port,
                "-m",
                "1",
                "-d",
                "2500",
                "-key",
                "mport",
                &mport,
                "-key",
                "mport2",
                &mport2,
                "-trace_msg",
                "-message_file",
                &trace,
            ])
        });
        // The PBX's RTP ports: in its 200 OK to the caller, and in its INVITE to the callee.
        let pbx_a = wait_port(&caller_trace, "SIP/2.0 200 OK");
        let pbx_b = wait_port(&callee_trace, "INVITE sip:");
        d.wait_for("core show channels count", Duration::from_secs(5), |o| {
            o.starts_with("2 active channels")
        });
        std::thread::sleep(Duration::from_millis(200)); // the bridge starts once both legs are up
        BridgedCall {
            d,
            a,
            b,
            a2,
            pbx_a,
            pbx_b,
            caller,
            callee,
        }
    }

    /// Waits for both phones' scenarios to end well; returns the daemon.
    fn finish(self) -> Daemon {
        let (code, out) = self.caller.join().unwrap();
        assert_eq!(code, 0, "{out}");
        assert_eq!(self.callee.finish(), Some(0));
        self.d
    }
}

#[test]
fn hold_and_unhold_pass_through_to_the_other_leg() {
    // The caller's hold and unhold re-INVITEs are answered by the PBX and
    // passed on as re-INVITEs to the callee (sendonly, then sendrecv); the
    // callee's scenario checks each direction and answers it.
    let call = BridgedCall::start("uac_hold.xml", "uas_held.xml");
    let d = call.finish();
    let log = d.messages();
    assert!(log.contains("put on hold by the far end"), "{log}");
    assert!(log.contains("Hold passed on to"), "{log}");
    assert!(log.contains("Unhold passed on to"), "{log}");
}

#[test]
fn a_re_invite_moving_the_media_moves_the_relay() {
    let call = BridgedCall::start("uac_media_move.xml", "uas_media.xml");
    assert_eq!(
        pump(&call.b.0, call.pbx_b, &call.a.0, 5),
        5,
        "before the move"
    );
    let trace = call.d.root.path().join("caller_msgs.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&trace).is_ok_and(|t| t.contains("CSeq: 2 ACK")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no re-INVITE answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        pump(&call.b.0, call.pbx_b, &call.a2, 20),
        20,
        "callee -> caller's new address"
    );
    assert_eq!(
        pump(&call.a2, call.pbx_a, &call.b.0, 20),
        20,
        "caller's new address -> callee"
    );
    call.finish();
}

#[test]
fn a_bridged_call_relays_rtp_both_ways() {
    let call = BridgedCall::start("uac_media.xml", "uas_media.xml");
    let (pbx_a, pbx_b) = (call.pbx_a, call.pbx_b);
    for port in [pbx_a, pbx_b] {
        assert!(
            (30000..=30998).contains(&port) && port % 2 == 0,
            "RTP port {port} from rtpstart-rtpend, even"
        );
    }
    assert_eq!(
        pump(&call.a.0, pbx_a, &call.b.0, 50),
        50,
        "caller -> callee"
    );
    assert_eq!(
        pump(&call.b.0, pbx_b, &call.a.0, 50),
        50,
        "callee -> caller"
    );
    // RTCP rides on the next ports, both ways.
    assert_eq!(
        pump(&call.a.1, pbx_a + 1, &call.b.1, 2),
        2,
        "caller RTCP -> callee"
    );
    assert_eq!(
        pump(&call.b.1, pbx_b + 1, &call.a.1, 2),
        2,
        "callee RTCP -> caller"
    );
    let d = call.finish();
    let relayed: u64 = d
        .rx("sip show settings")
        .ok()
        .lines()
        .find(|l| l.contains("RTP packets relayed:"))
        .and_then(|l| l.rsplit(':').next()?.trim().parse().ok())
        .unwrap();
    assert_eq!(relayed, 100);
    assert!(d
        .rx("sip show settings")
        .ok()
        .contains("  RTCP packets relayed:   4\n"));
    assert!(d
        .messages()
        .contains("answered SIP/sipp-00000001; bridged (native_rtp)"));
    // The stall detector the benchmarks read: one figure per second since load.
    let lag = d.rx("sip show lag").ok();
    let per_second: Vec<f64> = lag
        .lines()
        .find_map(|l| l.strip_prefix("Per second (ms): "))
        .map(|l| l.split(' ').map(|v| v.parse().unwrap()).collect())
        .unwrap_or_else(|| panic!("no per-second lags in {lag:?}"));
    assert!(!per_second.is_empty() && per_second.len() <= 61, "{lag}");
    // The worst of the two SIP threads, then each thread's own seconds.
    assert!(
        lag.contains("\nThread 0 (ms): ") && lag.contains("\nThread 1 (ms): "),
        "{lag}"
    );
}

/// Calls land on both SIP threads by their Call-IDs (sipp's are
/// `<n>-<pid>@<ip>`; twenty of them all on one thread would be a one in
/// half a million chance): every one of them is answered, ended, and
/// leaves nothing behind, whichever thread read its datagrams.
#[test]
fn calls_on_both_sip_threads_complete() {
    let d = pbx();
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let (code, out) = sipp(&[
        &target, "-p", &port, "-sn", "uac", "-s", "100", "-d", "100", "-m", "20", "-l", "1", "-r",
        "20",
    ]);
    assert_eq!(code, 0, "twenty calls, each answered and ended:\n{out}");
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("0 active channels")
    });
    d.wait_for("sip show channels", Duration::from_secs(5), |o| {
        o.contains("0 active SIP dialogs")
    });
}

#[test]
fn a_ulaw_caller_and_an_alaw_callee_are_bridged_with_translation() {
    let call = BridgedCall::start_to("206", "uac_media.xml", "uas_media_alaw.xml");
    let mut buf = [0u8; 2048];
    let mut cross =
        |from: &std::net::UdpSocket, to: u16, sink: &std::net::UdpSocket, pt: u8, sample: u8| {
            sink.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut pkt = vec![0x80, pt, 0, 9, 0, 0, 0, 160, 0, 0, 0, 1];
            pkt.extend_from_slice(&[sample; 160]);
            from.send_to(&pkt, ("127.0.0.1", to)).unwrap();
            let (n, _) = sink
                .recv_from(&mut buf)
                .expect("the packet crossed the bridge");
            assert_eq!(n, pkt.len());
            (buf[1], buf[12], buf[171])
        };
    // µ-law silence (0xff) reaches the A-law phone as A-law silence (0xd5).
    assert_eq!(
        cross(&call.a.0, call.pbx_a, &call.b.0, 0, 0xff),
        (8, 0xd5, 0xd5)
    );
    // Back: A-law's smallest positive step (+8; A-law has no exact zero) is µ-law 0xfe.
    assert_eq!(
        cross(&call.b.0, call.pbx_b, &call.a.0, 8, 0xd5),
        (0, 0xfe, 0xfe)
    );
    // A loud µ-law sample (0x80: +32124) becomes the A-law code for +32256 (0xaa).
    assert_eq!(
        cross(&call.a.0, call.pbx_a, &call.b.0, 0, 0x80),
        (8, 0xaa, 0xaa)
    );
    let d = call.finish();
    assert!(d
        .messages()
        .contains("No common audio format with 'alawphone'"));
}

#[test]
fn telephone_events_are_renumbered_when_the_legs_chose_different_payload_types() {
    // The caller offers telephone-event as 96, the PBX offers 101 to the callee.
    let call = BridgedCall::start("uac_media_dtmf96.xml", "uas_media_dtmf.xml");
    let mut buf = [0u8; 2048];
    let mut cross = |from: &std::net::UdpSocket, to: u16, sink: &std::net::UdpSocket, pt: u8| {
        sink.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        // An RFC 4733 event packet: marker set, digit 5, end bit, duration 800.
        let pkt = [
            0x80,
            0x80 | pt,
            0,
            7,
            0,
            0,
            0,
            160,
            0,
            0,
            0,
            1,
            5,
            0x80,
            0x03,
            0x20,
        ];
        from.send_to(&pkt, ("127.0.0.1", to)).unwrap();
        let (n, _) = sink
            .recv_from(&mut buf)
            .expect("the event crossed the bridge");
        assert_eq!(n, pkt.len());
        assert_eq!(buf[12..16], pkt[12..16], "the event itself is untouched");
        buf[1]
    };
    assert_eq!(
        cross(&call.a.0, call.pbx_a, &call.b.0, 96),
        0x80 | 101,
        "96 -> 101"
    );
    assert_eq!(
        cross(&call.b.0, call.pbx_b, &call.a.0, 101),
        0x80 | 96,
        "101 -> 96"
    );
    assert_eq!(
        cross(&call.a.0, call.pbx_a, &call.b.0, 0) & 0x7f,
        0,
        "audio keeps its type"
    );
    call.finish();
}

#[test]
fn the_echo_test_sends_the_callers_media_back() {
    let d = pbx();
    let media = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let trace = d.root.path().join("echo_msgs.log");
    let target = format!("127.0.0.1:{}", d.sip_port());
    let (port, mport, tr) = (
        free_udp_port().to_string(),
        media.local_addr().unwrap().port().to_string(),
        trace.to_str().unwrap().to_string(),
    );
    let caller = std::thread::spawn(move || {
        sipp(&[
            &target,
            "-sf",
            &sf("uac_media.xml"),
            "-s",
            "600",
            "-p",
            &port,
            "-m",
            "1",
            "-d",
            "1500",
            "-key",
            "mport",
            &mport,
            "-trace_msg",
            "-message_file",
            &tr,
        ])
    });
    let pbx_port = wait_port(&trace, "SIP/2.0 200 OK");
    d.wait_for("core show channels", Duration::from_secs(5), |o| {
        o.contains("Echo()")
    });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        pump(&media, pbx_port, &media, 20),
        20,
        "every packet comes back"
    );
    let (code, out) = caller.join().unwrap();
    assert_eq!(code, 0, "{out}");
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("0 active channels")
    });
}
