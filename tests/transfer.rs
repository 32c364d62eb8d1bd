//! Call transfer with real peers (issue #12): seed 002's blind transfer by
//! REFER, played by sipp message for message: a transferor (sipp UAC)
//! calls the transferee (a sipp UAS reached by Dial), holds, REFERs it to
//! 6003 and hangs up once told the target answered; the transferee goes
//! on with the target (a second sipp UAS).

use sirius_blackbox::{first_then, free_udp_port, media_pair, wait_port, Daemon, SippProcess};
use std::path::Path;
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;

/// The PBX: `sipp` (the transferor) in context `test`; `callee` (the
/// transferee) and `carol` (the target) at fixed ports.
fn transfer_pbx(callee_port: u16, carol_port: u16) -> Daemon {
    let sip = format!(
        "{SIP_TOML}\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\n\n\
         [peers.carol]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {carol_port}\n"
    );
    let ext = r#"
[test]
"200" = ["Dial(SIP/callee,10)", "Hangup()"]
"6003" = ["Verbose(2,transferred by ${BLINDTRANSFER} (SIPTRANSFER=${SIPTRANSFER}))", "Dial(SIP/carol,5)", "Verbose(2,after the target: ${DIALSTATUS})", "Hangup()"]
"h" = ["Verbose(2,h ran for ${CHANNEL})"]
"#;
    pbx_with(&sip, ext)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The transferor's sipp run: scenario `scenario`, REFER to `target`.
fn transferor(d: &Daemon, scenario: &str, target: &str, trace: &Path) -> (i32, String) {
    call(
        d,
        &[
            "-sf",
            &sf(scenario),
            "-s",
            "200",
            "-key",
            "target",
            target,
            "-trace_msg",
            "-message_file",
            trace.to_str().unwrap(),
        ],
    )
}

/// The messages of a sipp trace that are NOTIFYs we sent, in order.
fn notifies(trace: &str) -> Vec<String> {
    trace
        .split("message received")
        .skip(1)
        .filter_map(|m| {
            let start = m.find("NOTIFY sip:")?;
            Some(m[start..].to_string())
        })
        .collect()
}

fn seed_flow(scenario: &str, held: bool) {
    let (callee_port, carol_port) = (free_udp_port(), free_udp_port());
    let d = transfer_pbx(callee_port, carol_port);
    let dir = d.root.path();
    let (t_trace, c_trace, carol_trace) = (
        dir.join("transferor.log"),
        dir.join("transferee.log"),
        dir.join("carol.log"),
    );
    let callee = SippProcess::start(
        callee_port,
        &[
            "-sf",
            &sf("uas_transferee.xml"),
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            c_trace.to_str().unwrap(),
        ],
    );
    let carol = SippProcess::start(
        carol_port,
        &[
            "-sn",
            "uas",
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            carol_trace.to_str().unwrap(),
        ],
    );
    let (code, out) = transferor(&d, scenario, "6003", &t_trace);
    assert_eq!(
        code,
        0,
        "transferor: call, REFER, 202, NOTIFYs, BYE:\n{out}\n{}",
        read(&t_trace)
    );
    assert_eq!(
        callee.finish(),
        Some(0),
        "transferee: answered, re-INVITEs, then its own BYE:\n{}\n{}",
        read(&c_trace),
        d.messages()
    );
    assert_eq!(
        carol.finish(),
        Some(0),
        "target: called, answered, BYE passed on from the transferee:\n{}",
        read(&carol_trace)
    );

    // What the transferor was told, in seed 002's order.
    let t = read(&t_trace);
    let reports = notifies(&t);
    assert!(reports.len() >= 2, "{t}");
    let first = &reports[0];
    assert!(first.contains("Event: refer"), "{first}");
    assert!(
        first.contains("Subscription-State: active;expires=180"),
        "{first}"
    );
    assert!(
        first.contains("Content-Type: message/sipfrag;version=2.0"),
        "{first}"
    );
    assert!(first.contains("\nSIP/2.0 100 Trying"), "{first}");
    let last = reports.last().unwrap();
    assert!(
        last.contains("Subscription-State: terminated;reason=noresource"),
        "{last}"
    );
    assert!(last.contains("\nSIP/2.0 200 OK"), "{last}");
    assert!(
        t.find("SIP/2.0 202 Accepted").unwrap() < t.find("NOTIFY sip:").unwrap(),
        "202 before the first NOTIFY:\n{t}"
    );

    // The transferee heard the hold (when there was one) and its end.
    let c = read(&c_trace);
    let reinvites = c.matches("INVITE sip:transferee@").count();
    match held {
        true => {
            assert_eq!(reinvites, 2, "hold, then unhold:\n{c}");
            let (hold, unhold) = (
                c.find("a=sendonly").unwrap(),
                c.rfind("a=sendrecv").unwrap(),
            );
            assert!(hold < unhold, "{c}");
        }
        false => assert_eq!(reinvites, 0, "{c}"),
    }
    // The target was called for the transferee, with who referred it.
    let carol_msgs = read(&carol_trace);
    assert!(
        carol_msgs.contains("Referred-By: <sip:sipp@127.0.0.1:"),
        "{carol_msgs}"
    );

    let log = d.wait_for_log("h ran for SIP/sipp-", Duration::from_secs(10));
    assert!(
        log.contains("    -- Blind transfer of 'SIP/callee-"),
        "{log}"
    );
    assert!(log.contains("' to 6003@test by 'SIP/sipp-"), "{log}");
    assert!(
        log.contains("transferred by SIP/sipp-") && log.contains("(SIPTRANSFER=yes)"),
        "{log}"
    );
    assert!(
        log.contains("-- SIP/carol-00000003 answered SIP/callee-00000002; bridged"),
        "{log}"
    );
    d.wait_for("core show channels count", Duration::from_secs(10), |o| {
        o.starts_with("0 active channels")
    });
}

#[test]
fn seed_002s_blind_transfer_after_hold_reaches_the_target_and_reports_it() {
    seed_flow("uac_refer_blind.xml", true);
}

#[test]
fn a_blind_transfer_without_hold_goes_the_same_way() {
    seed_flow("uac_refer_blind_nohold.xml", false);
}

/// A busy target: the final NOTIFY carries 486, and the transferee
/// follows the dialplan after its Dial (DIALSTATUS BUSY), then is hung up.
#[test]
fn a_busy_target_is_reported_with_486_and_the_transferee_follows_the_dialplan() {
    let (callee_port, carol_port) = (free_udp_port(), free_udp_port());
    let d = transfer_pbx(callee_port, carol_port);
    let t_trace = d.root.path().join("transferor.log");
    let callee = SippProcess::start(callee_port, &["-sn", "uas", "-m", "1"]);
    let carol = SippProcess::start(carol_port, &["-sf", &sf("uas_busy.xml"), "-m", "1"]);
    let (code, out) = transferor(&d, "uac_refer_blind_nohold.xml", "6003", &t_trace);
    assert_eq!(code, 0, "{out}\n{}", read(&t_trace));
    assert_eq!(carol.finish(), Some(0), "the target answered 486");
    assert_eq!(
        callee.finish(),
        Some(0),
        "the transferee hung up by the PBX"
    );
    let t = read(&t_trace);
    let last = notifies(&t).pop().unwrap();
    assert!(last.contains("\nSIP/2.0 486 Busy Here"), "{last}");
    assert!(last.contains("terminated;reason=noresource"), "{last}");
    let log = d.wait_for_log("after the target: BUSY", Duration::from_secs(10));
    assert!(
        log.contains("    -- Blind transfer of 'SIP/callee-"),
        "{log}"
    );
    d.wait_for("core show channels count", Duration::from_secs(10), |o| {
        o.starts_with("0 active channels")
    });
}

/// A target the transferor's context lacks: the final NOTIFY says 404 and
/// nothing moved; the transferor then ends its call as usual.
#[test]
fn a_transfer_to_an_unknown_extension_is_reported_with_404_and_nothing_moves() {
    let (callee_port, carol_port) = (free_udp_port(), free_udp_port());
    let d = transfer_pbx(callee_port, carol_port);
    let t_trace = d.root.path().join("transferor.log");
    let callee = SippProcess::start(callee_port, &["-sn", "uas", "-m", "1"]);
    let (code, out) = transferor(&d, "uac_refer_blind_nohold.xml", "9999", &t_trace);
    assert_eq!(code, 0, "{out}\n{}", read(&t_trace));
    assert_eq!(
        callee.finish(),
        Some(0),
        "the transferee stayed bridged and got the PBX's BYE when the transferor hung up"
    );
    let t = read(&t_trace);
    let last = notifies(&t).pop().unwrap();
    assert!(last.contains("\nSIP/2.0 404 Not Found"), "{last}");
    let log = d.messages();
    assert!(!log.contains("Blind transfer of"), "{log}");
}

/// A real softphone transfers: baresip (bob) calls alice through the PBX,
/// then presses transfer (`/transfer sip:6003@…`); alice (a sipp UAS
/// whose media is a socket of this test) is connected to carol (the same)
/// and they hear each other; bob's leg is gone.
#[test]
fn baresip_blind_transfers_its_caller_to_a_third_phone_and_they_talk() {
    use std::io::{BufRead, Write};
    let (alice_port, carol_port) = (free_udp_port(), free_udp_port());
    let sip = format!(
        "{SIP_TOML}\n[peers.bob]\nhost = \"dynamic\"\nsecret = \"bob-secret\"\ncontext = \"test\"\n\
         allow = [\"ulaw\"]\nnat = [\"force_rport\", \"comedia\"]\n\n\
         [peers.alice]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {alice_port}\n\n\
         [peers.carol]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {carol_port}\n"
    );
    let ext = r#"
[test]
"200" = ["Dial(SIP/alice,20)", "Hangup()"]
"6003" = ["Dial(SIP/carol,10)", "Hangup()"]
"#;
    let d = pbx_with(&sip, ext);
    let dir = d.root.path().to_path_buf();
    let ((a_rtp, _a_rtcp), (c_rtp, _c_rtcp)) = (media_pair(), media_pair());
    let (alice_trace, carol_trace) = (dir.join("alice.log"), dir.join("carol.log"));
    let sipp_uas = |port: u16, media: &std::net::UdpSocket, trace: &Path| {
        let mport = media.local_addr().unwrap().port().to_string();
        SippProcess::start(
            port,
            &[
                "-sf",
                &sf("uas_media.xml"),
                "-key",
                "mport",
                &mport,
                "-m",
                "1",
                "-trace_msg",
                "-message_file",
                trace.to_str().unwrap(),
            ],
        )
    };
    let alice = sipp_uas(alice_port, &a_rtp, &alice_trace);
    let carol = sipp_uas(carol_port, &c_rtp, &carol_trace);

    let cfg = tempfile::tempdir().unwrap();
    let (bob_sip, bob_rtp) = (free_udp_port(), free_udp_port());
    let config = format!(
        "sip_listen 127.0.0.1:{bob_sip}\nsip_transports udp\n\
         audio_player aubridge,speaker\naudio_source ausine,440\naudio_alert aubridge,speaker\n\
         ausrc_srate 48000\nauplay_srate 48000\nausrc_channels 2\nauplay_channels 2\n\
         rtp_ports {bob_rtp}-{}\n\
         module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\n\
         module ausine.so\nmodule aubridge.so\nmodule_app account.so\nmodule_app menu.so\n",
        bob_rtp + 9
    );
    std::fs::write(cfg.path().join("config"), config).unwrap();
    std::fs::write(
        cfg.path().join("accounts"),
        format!(
            "<sip:bob@127.0.0.1:{};transport=udp>;auth_pass=bob-secret;regint=60\n",
            d.sip_port()
        ),
    )
    .unwrap();
    std::fs::write(cfg.path().join("contacts"), "").unwrap();
    let mut bob = std::process::Command::new("timeout")
        .args(["40", "baresip", "-f"])
        .arg(cfg.path())
        .args(["-e", "/dial 200", "-t", "30"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("baresip (apt-get install baresip; scripts/test does)");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = bob.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut said = String::new();
    let mut wait_for = |text: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !said.contains(text) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => said.push_str(&(line + "\n")),
                Err(_) => panic!("baresip never said '{text}':\n{said}"),
            }
        }
        said.clone()
    };
    wait_for("Call established: sip:200@127.0.0.1");
    let mut stdin = bob.stdin.take().unwrap();
    writeln!(stdin, "/transfer sip:6003@127.0.0.1:{}", d.sip_port()).unwrap();
    stdin.flush().unwrap();

    // Alice now talks with carol, both ways, through the PBX's relay.
    let alice_leg = wait_port(&alice_trace, "INVITE sip:");
    let carol_leg = wait_port(&carol_trace, "INVITE sip:");
    assert_eq!(
        first_then(&a_rtp, alice_leg, &c_rtp, 20),
        20,
        "alice -> carol"
    );
    assert_eq!(
        first_then(&c_rtp, carol_leg, &a_rtp, 20),
        20,
        "carol -> alice"
    );
    d.wait_for("core show channels", Duration::from_secs(10), |o| {
        o.contains("2 active channels") && !o.contains("SIP/bob-")
    });
    let log = d.messages();
    assert!(
        log.contains("    -- Blind transfer of 'SIP/alice-"),
        "{log}"
    );
    assert!(log.contains("' to 6003@test by 'SIP/bob-"), "{log}");
    assert_eq!(d.rx("channel request hangup all").ok().lines().count(), 2);
    assert_eq!(alice.finish(), Some(0), "alice: the PBX's BYE");
    assert_eq!(carol.finish(), Some(0), "carol: the PBX's BYE");
    d.wait_for("core show channels count", Duration::from_secs(10), |o| {
        o.starts_with("0 active channels")
    });
    assert!(
        wait_for("transferring call to sip:6003@").contains("Call established"),
        "{said}"
    );
    drop(stdin);
    let _ = bob.kill();
    let _ = bob.wait();
}

/// chan_sip's `shards::shard_of` (FNV-1a of the Call-ID, modulo the
/// threads), copied: chan_sip is a plugin, not a dependency of the tests.
/// The test picks Call-IDs with it to put two calls on one SIP thread or
/// on two.
fn shard_of(call_id: &str, count: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in call_id.trim().as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % count as u64) as usize
}

/// A Call-ID of the form `<prefix>-<n>` on SIP thread `k` of two.
fn call_id_on(k: usize, prefix: &str) -> String {
    (0..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|id| shard_of(id, 2) == k)
        .unwrap()
}

/// The tag of `header` in the first 200 OK of a sipp trace.
fn tag_in_ok(trace: &str, header: &str) -> Option<String> {
    let ok = &trace[trace.find("SIP/2.0 200 OK")?..];
    let line = ok.lines().find(|l| l.starts_with(header))?;
    let tag = &line[line.find(";tag=")? + 5..];
    Some(tag.split(';').next()?.trim().to_string())
}

/// The transferor (peer sipp) calls the target carol (6003, its consultation
/// call) and then the transferee alice (200), and REFERs the call to alice
/// with Replaces naming the one to carol: alice and carol end up talking to
/// each other, both of the transferor's calls end. `across`: the two calls
/// on different SIP threads (the media of one leg is then relayed by the
/// other thread's relay).
fn attended(across: bool) {
    let (alice_port, carol_port) = (free_udp_port(), free_udp_port());
    let sip = format!(
        "{}\n[peers.alice]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {alice_port}\n\n\
         [peers.carol]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {carol_port}\n",
        SIP_TOML.replace("call-limit = 1", "call-limit = 4")
    );
    let ext = r#"
[test]
"200" = ["Dial(SIP/alice,10)", "Hangup()"]
"6003" = ["Dial(SIP/carol,10)", "Hangup()"]
"#;
    let d = pbx_with(&sip, ext);
    let dir = d.root.path().to_path_buf();
    let ((a_rtp, _a_rtcp), (c_rtp, _c_rtcp)) = (media_pair(), media_pair());
    let (alice_trace, carol_trace) = (dir.join("alice.log"), dir.join("carol.log"));
    let uas = |port: u16, media: &std::net::UdpSocket, trace: &Path| {
        let mport = media.local_addr().unwrap().port().to_string();
        SippProcess::start(
            port,
            &[
                "-sf",
                &sf("uas_media.xml"),
                "-key",
                "mport",
                &mport,
                "-m",
                "1",
                "-trace_msg",
                "-message_file",
                trace.to_str().unwrap(),
            ],
        )
    };
    let alice = uas(alice_port, &a_rtp, &alice_trace);
    let carol = uas(carol_port, &c_rtp, &carol_trace);

    // The consultation call, to carol, on thread 1; it waits for the BYE
    // the transfer brings.
    let (consult_id, main_id) = (
        call_id_on(1, "consult"),
        call_id_on(if across { 0 } else { 1 }, "main"),
    );
    let (b_media, _) = media_pair();
    let b_mport = b_media.local_addr().unwrap().port().to_string();
    let b_trace = dir.join("consultation.log");
    let consultation = {
        let target = format!("127.0.0.1:{}", d.sip_port());
        let (port, trace) = (free_udp_port().to_string(), b_trace.clone());
        let (mport, cid, scenario) = (
            b_mport.clone(),
            consult_id.clone(),
            sf("uac_media_wait_bye.xml"),
        );
        std::thread::spawn(move || {
            let trace = trace.to_str().unwrap().to_string();
            sirius_blackbox::sipp(&[
                &target,
                "-p",
                &port,
                "-m",
                "1",
                "-sf",
                &scenario,
                "-s",
                "6003",
                "-key",
                "mport",
                &mport,
                "-cid_str",
                &cid,
                "-trace_msg",
                "-message_file",
                &trace,
            ])
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (pbx_tag, our_tag) = loop {
        let t = read(&b_trace);
        if let (Some(to), Some(from)) = (tag_in_ok(&t, "To:"), tag_in_ok(&t, "From:")) {
            break (to, from);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no 200 for the consultation call:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    let t_trace = dir.join("transferor.log");
    let replaces = format!("{consult_id}%3Bto-tag%3D{pbx_tag}%3Bfrom-tag%3D{our_tag}");
    let (code, out) = call(
        &d,
        &[
            "-sf",
            &sf("uac_refer_attended.xml"),
            "-s",
            "200",
            "-key",
            "target",
            "6003",
            "-key",
            "replaces",
            &replaces,
            "-cid_str",
            &main_id,
            "-trace_msg",
            "-message_file",
            t_trace.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{}\n{}", read(&t_trace), d.messages());
    let (code, out) = consultation.join().unwrap();
    assert_eq!(code, 0, "the consultation call ended by the PBX:\n{out}");
    let last = notifies(&read(&t_trace)).pop().unwrap();
    assert!(last.contains("\nSIP/2.0 200 OK"), "{last}");

    // Alice and carol hear each other.
    let alice_leg = wait_port(&alice_trace, "INVITE sip:");
    let carol_leg = wait_port(&carol_trace, "INVITE sip:");
    assert_eq!(
        first_then(&a_rtp, alice_leg, &c_rtp, 20),
        20,
        "alice -> carol"
    );
    assert_eq!(
        first_then(&c_rtp, carol_leg, &a_rtp, 20),
        20,
        "carol -> alice"
    );
    let log = d.messages();
    assert!(
        log.contains("    -- Attended transfer of 'SIP/alice-") && log.contains("' to 'SIP/carol-"),
        "{log}"
    );
    d.wait_for("core show channels", Duration::from_secs(10), |o| {
        o.contains("2 active channels") && !o.contains("SIP/sipp-")
    });
    assert_eq!(d.rx("channel request hangup all").ok().lines().count(), 2);
    assert_eq!(alice.finish(), Some(0), "alice: the PBX's BYE");
    assert_eq!(carol.finish(), Some(0), "carol: the PBX's BYE");
    d.wait_for("core show channels count", Duration::from_secs(10), |o| {
        o.starts_with("0 active channels")
    });
}

#[test]
fn an_attended_transfer_joins_the_transferee_and_the_target() {
    attended(false);
}

#[test]
fn an_attended_transfer_joins_calls_of_two_sip_threads() {
    attended(true);
}

/// `channel redirect` from the console: a caller waiting in one extension
/// goes on in another, from the priority given, and its old dialplan stops.
#[test]
fn channel_redirect_moves_a_call_to_another_extension() {
    let d = pbx_with(
        SIP_TOML,
        r#"
[test]
"100" = ["Answer()", "Wait(20)", "Verbose(2,not redirected)", "Hangup()"]
"300" = ["Verbose(2,skipped)", "Verbose(2,redirected to ${EXTEN} at ${PRIORITY})", "Hangup()"]
"#,
    );
    let target = format!("127.0.0.1:{}", d.sip_port());
    let caller = std::thread::spawn(move || {
        let port = free_udp_port().to_string();
        sirius_blackbox::sipp(&[
            &target,
            "-p",
            &port,
            "-m",
            "1",
            "-sf",
            &sf("uac_remote_bye.xml"),
            "-s",
            "100",
        ])
    });
    let chans = d.wait_for("core show channels", Duration::from_secs(10), |o| {
        o.contains("Wait(20)")
    });
    let name = chans
        .split_whitespace()
        .find(|w| w.starts_with("SIP/sipp-"))
        .unwrap()
        .to_string();
    assert_eq!(
        d.rx(&format!("channel redirect {name} 300,2")).ok(),
        format!("Channel '{name}' successfully redirected to test,300,2\n")
    );
    let (code, out) = caller.join().unwrap();
    assert_eq!(code, 0, "the caller got the PBX's BYE:\n{out}");
    let log = d.wait_for_log("redirected to 300 at 2", Duration::from_secs(5));
    assert!(
        !log.contains("skipped") && !log.contains("not redirected"),
        "{log}"
    );
    assert!(d
        .rx("channel redirect SIP/nobody 300,1")
        .failed()
        .starts_with("Channel 'SIP/nobody' not found"));
}

/// Seed 002's third-party call control (click-to-dial): a dialer's REFER
/// outside any dialog asks the PBX to call alice and connect her to 6003;
/// alice answers, 6003 runs in her context (Dial carol), and the dialer
/// hears NOTIFY 100, 180 and the terminating 200.
#[test]
fn a_refer_outside_a_call_calls_the_phone_and_connects_it_to_the_target() {
    let (alice_port, carol_port) = (free_udp_port(), free_udp_port());
    let sip = format!(
        "{SIP_TOML}\n[peers.alice]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {alice_port}\ncontext = \"office\"\n\n\
         [peers.carol]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {carol_port}\n"
    );
    let ext = r#"
[office]
"6003" = ["Verbose(2,connecting ${CHANNEL} to carol)", "Dial(SIP/carol,10)", "Hangup()"]
"#;
    let d = pbx_with(&sip, ext);
    let dir = d.root.path().to_path_buf();
    let (alice_trace, carol_trace, t_trace) = (
        dir.join("alice.log"),
        dir.join("carol.log"),
        dir.join("dialer.log"),
    );
    let uas = |port: u16, trace: &Path| {
        SippProcess::start(
            port,
            &[
                "-sn",
                "uas",
                "-m",
                "1",
                "-trace_msg",
                "-message_file",
                trace.to_str().unwrap(),
            ],
        )
    };
    let alice = uas(alice_port, &alice_trace);
    let carol = uas(carol_port, &carol_trace);
    let (code, out) = call(
        &d,
        &[
            "-sf",
            &sf("uac_refer_out_of_dialog.xml"),
            "-s",
            "alice",
            "-key",
            "target",
            "6003",
            "-cid_str",
            "3@dialer.foo.com",
            "-trace_msg",
            "-message_file",
            t_trace.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{}\n{}", read(&t_trace), d.messages());
    let t = read(&t_trace);
    assert!(t.contains("SIP/2.0 202 Accepted"), "{t}");
    assert!(t.contains("Call-ID: 3@dialer.foo.com"), "{t}");
    let reports = notifies(&t);
    assert!(reports[0].contains("\nSIP/2.0 100 Trying"), "{t}");
    let last = reports.last().unwrap();
    assert!(last.contains("\nSIP/2.0 200 OK"), "{last}");
    assert!(last.contains("terminated;reason=noresource"), "{last}");
    let log = d.wait_for_log("connecting SIP/alice-", Duration::from_secs(10));
    assert!(log.contains("-- Executing [6003@office:1]"), "{log}");
    d.wait_for("core show channels", Duration::from_secs(10), |o| {
        o.contains("2 active channels")
    });
    assert!(read(&carol_trace).contains("INVITE sip:carol@"));
    assert_eq!(d.rx("channel request hangup all").ok().lines().count(), 2);
    assert_eq!(alice.finish(), Some(0), "alice: called, then the PBX's BYE");
    assert_eq!(carol.finish(), Some(0), "carol: called, then the PBX's BYE");
}

/// The dialplan's `Transfer(6005)` on a SIP caller: the caller gets a REFER
/// naming 6005 at the PBX, accepts it (TRANSFERSTATUS=SUCCESS) and reports
/// the outcome; its final NOTIFY 200 ends the call with a BYE.
#[test]
fn transfer_in_the_dialplan_sends_a_refer_and_hangs_up_once_it_succeeded() {
    let d = pbx_with(
        SIP_TOML,
        r#"
[test]
"700" = ["Answer()", "Transfer(6005)", "Verbose(2,TRANSFERSTATUS=${TRANSFERSTATUS})", "Wait(10)"]
"#,
    );
    let trace = d.root.path().join("transferred.log");
    let (code, out) = call(
        &d,
        &[
            "-sf",
            &sf("uac_transferred.xml"),
            "-s",
            "700",
            "-trace_msg",
            "-message_file",
            trace.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{}\n{}", read(&trace), d.messages());
    let t = read(&trace);
    assert!(
        t.contains(&format!("Refer-To: <sip:6005@127.0.0.1:{}>", d.sip_port())),
        "{t}"
    );
    assert!(t.contains("Referred-By: <sip:127.0.0.1:"), "{t}");
    let log = d.wait_for_log("TRANSFERSTATUS=SUCCESS", Duration::from_secs(5));
    assert!(log.contains("asked to transfer to 6005"), "{log}");
    d.wait_for("core show channels count", Duration::from_secs(10), |o| {
        o.starts_with("0 active channels")
    });
}

/// The tag of `header` in the first message starting with `start` in a
/// sipp trace.
fn tag_after(trace: &str, start: &str, header: &str) -> Option<String> {
    let at = trace.find(start)?;
    let line = trace[at..].lines().find(|l| l.starts_with(header))?;
    let tag = &line[line.find(";tag=")? + 5..];
    Some(tag.split(';').next()?.trim().to_string())
}

/// Call pickup with RFC 3891: the caller's Dial rings the callee; another
/// phone of the same peer sends an INVITE whose Replaces names that
/// ringing dialog: the callee gets CANCEL, the picker is answered and talks
/// with the caller. A Replaces naming nothing gets 481.
#[test]
fn an_invite_with_replaces_picks_up_a_ringing_call() {
    let callee_port = free_udp_port();
    let sip = format!(
        "{}\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\ncontext = \"test\"\n",
        SIP_TOML.replace("call-limit = 1", "call-limit = 4")
    );
    let d = pbx_with(
        &sip,
        r#"
[test]
"200" = ["Dial(SIP/callee,20)", "Hangup()"]
"#,
    );
    let dir = d.root.path().to_path_buf();
    let callee_trace = dir.join("callee.log");
    let callee = SippProcess::start(
        callee_port,
        &[
            "-sf",
            &sf("uas_ring_cancel.xml"),
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            callee_trace.to_str().unwrap(),
        ],
    );
    let target = format!("127.0.0.1:{}", d.sip_port());
    let caller = {
        let target = target.clone();
        std::thread::spawn(move || {
            let port = free_udp_port().to_string();
            sirius_blackbox::sipp(&[
                &target,
                "-p",
                &port,
                "-m",
                "1",
                "-sf",
                &sf("uac_remote_bye.xml"),
                "-s",
                "200",
                "-cid_str",
                &call_id_on(0, "caller"),
            ])
        })
    };
    // The ringing dialog as the PBX holds it: our tag is the INVITE's From
    // tag, the callee's its 180's To tag.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (call_id, ours, theirs) = loop {
        let t = read(&callee_trace);
        let found = (|| {
            let at = t.find("INVITE sip:")?;
            let cid = t[at..].lines().find(|l| l.starts_with("Call-ID:"))?[8..]
                .trim()
                .to_string();
            Some((
                cid,
                tag_after(&t, "INVITE sip:", "From:")?,
                tag_after(&t, "SIP/2.0 180", "To:")?,
            ))
        })();
        if let Some(f) = found {
            break f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the callee never rang:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let replaces = format!("{call_id};to-tag={ours};from-tag={theirs}");
    let picker = {
        let target = target.clone();
        std::thread::spawn(move || {
            let port = free_udp_port().to_string();
            sirius_blackbox::sipp(&[
                &target,
                "-p",
                &port,
                "-m",
                "1",
                "-sf",
                &sf("uac_replaces.xml"),
                "-s",
                "300",
                "-key",
                "replaces",
                &replaces,
                "-cid_str",
                &call_id_on(1, "picker"),
            ])
        })
    };
    assert_eq!(
        callee.finish(),
        Some(0),
        "the callee: CANCEL, 487\n{}",
        read(&callee_trace)
    );
    let log = d.wait_for_log(" picked up SIP/callee-", Duration::from_secs(10));
    d.wait_for("core show channels", Duration::from_secs(10), |o| {
        o.contains("2 active channels") && !o.contains("SIP/callee-")
    });
    assert!(log.contains("answered SIP/sipp-00000001; bridged"), "{log}");
    assert_eq!(d.rx("channel request hangup all").ok().lines().count(), 2);
    let (code, out) = caller.join().unwrap();
    assert_eq!(
        code, 0,
        "the caller: answered by the picker, then BYE:\n{out}"
    );
    let (code, out) = picker.join().unwrap();
    assert_eq!(code, 0, "the picker: 200, then BYE:\n{out}");

    // Nothing to replace: 481.
    let (code, out) = call(
        &d,
        &[
            "-sf",
            &sf("uac_replaces_481.xml"),
            "-s",
            "300",
            "-key",
            "replaces",
            "nothing@here;to-tag=a;from-tag=b",
        ],
    );
    assert_eq!(code, 0, "{out}");
}

/// RFC 3725 across a transfer: once blind-transferred to carol, the
/// transferee moves its media the way a third-party controller does (a
/// re-INVITE without SDP, the PBX's offer in the 200, its answer in the
/// ACK with a new port): carol's media follows it at once, both ways.
#[test]
fn a_transferee_moving_its_media_with_a_late_offer_still_talks_to_the_target() {
    let (callee_port, carol_port) = (free_udp_port(), free_udp_port());
    let d = transfer_pbx(callee_port, carol_port);
    let dir = d.root.path().to_path_buf();
    let ((a1, _), (a2, _a2c), (c_rtp, _c_rtcp)) = (media_pair(), media_pair(), media_pair());
    let port = |s: &std::net::UdpSocket| s.local_addr().unwrap().port().to_string();
    let (alice_trace, carol_trace, t_trace) = (
        dir.join("alice.log"),
        dir.join("carol.log"),
        dir.join("transferor.log"),
    );
    let alice = SippProcess::start(
        callee_port,
        &[
            "-sf",
            &sf("uas_transferee_3pcc.xml"),
            "-key",
            "mport",
            &port(&a1),
            "-key",
            "mport2",
            &port(&a2),
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            alice_trace.to_str().unwrap(),
        ],
    );
    let carol = SippProcess::start(
        carol_port,
        &[
            "-sf",
            &sf("uas_media.xml"),
            "-key",
            "mport",
            &port(&c_rtp),
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            carol_trace.to_str().unwrap(),
        ],
    );
    let (code, out) = transferor(&d, "uac_refer_blind_nohold.xml", "6003", &t_trace);
    assert_eq!(code, 0, "{out}\n{}", read(&t_trace));
    // Alice's own late-offer re-INVITE is done when her ACK is out.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !read(&alice_trace).contains("CSeq: 1 ACK") {
        assert!(
            std::time::Instant::now() < deadline,
            "no late-offer re-INVITE:\n{}",
            read(&alice_trace)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let alice_leg = wait_port(&alice_trace, "INVITE sip:");
    let carol_leg = wait_port(&carol_trace, "INVITE sip:");
    assert_eq!(
        first_then(&c_rtp, carol_leg, &a2, 20),
        20,
        "carol -> alice's new port"
    );
    assert_eq!(first_then(&a2, alice_leg, &c_rtp, 20), 20, "alice -> carol");
    assert_eq!(d.rx("channel request hangup all").ok().lines().count(), 2);
    assert_eq!(alice.finish(), Some(0), "{}", read(&alice_trace));
    assert_eq!(carol.finish(), Some(0));
}

/// "The transferee hears ringing meanwhile": between the transfer and the
/// target's answer, the transferee gets ringback (RTP from the PBX, 440 +
/// 480 Hz in µ-law) on its media port; once the target answers it hears the
/// target instead.
#[test]
fn a_transferee_hears_ringback_while_the_target_rings() {
    let (callee_port, carol_port) = (free_udp_port(), free_udp_port());
    let d = transfer_pbx(callee_port, carol_port);
    let dir = d.root.path().to_path_buf();
    let ((a_rtp, _a_rtcp), (c_rtp, _c_rtcp)) = (media_pair(), media_pair());
    let port = |s: &std::net::UdpSocket| s.local_addr().unwrap().port().to_string();
    let (alice_trace, carol_trace) = (dir.join("alice.log"), dir.join("carol.log"));
    let uas = |p: u16, scenario: &str, media: &std::net::UdpSocket, trace: &Path| {
        SippProcess::start(
            p,
            &[
                "-sf",
                &sf(scenario),
                "-key",
                "mport",
                &port(media),
                "-m",
                "1",
                "-trace_msg",
                "-message_file",
                trace.to_str().unwrap(),
            ],
        )
    };
    let alice = uas(callee_port, "uas_media.xml", &a_rtp, &alice_trace);
    let carol = uas(carol_port, "uas_ring_media.xml", &c_rtp, &carol_trace);
    let transfer = {
        let (target, t_trace) = (
            format!("127.0.0.1:{}", d.sip_port()),
            dir.join("transferor.log"),
        );
        std::thread::spawn(move || {
            let port = free_udp_port().to_string();
            sirius_blackbox::sipp(&[
                &target,
                "-p",
                &port,
                "-m",
                "1",
                "-sf",
                &sf("uac_refer_blind_nohold.xml"),
                "-s",
                "200",
                "-key",
                "target",
                "6003",
                "-trace_msg",
                "-message_file",
                t_trace.to_str().unwrap(),
            ])
        })
    };
    // Carol rings for 1.5 s: what reaches alice meanwhile is the tone.
    a_rtp
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (mut packets, mut loudest) = (0, 0u16);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while packets < 25 && std::time::Instant::now() < deadline {
        let Ok((n, _)) = a_rtp.recv_from(&mut buf) else {
            continue;
        };
        assert!(
            n == 172 && buf[0] == 0x80 && buf[1] & 0x7f == 0,
            "PCMU RTP: {n} bytes"
        );
        packets += 1;
        loudest = buf[12..n]
            .iter()
            .map(|&b| ulaw_peak(b))
            .fold(loudest, u16::max);
    }
    assert_eq!(packets, 25, "ringback packets");
    assert!(loudest > 2_000, "a tone, not silence: peak {loudest}");
    let (code, out) = transfer.join().unwrap();
    assert_eq!(code, 0, "{out}");
    // Carol answered: alice hears her (the tone stopped for the relay).
    let alice_leg = wait_port(&alice_trace, "INVITE sip:");
    let carol_leg = wait_port(&carol_trace, "INVITE sip:");
    assert_eq!(
        first_then(&c_rtp, carol_leg, &a_rtp, 20),
        20,
        "carol -> alice"
    );
    assert_eq!(
        first_then(&a_rtp, alice_leg, &c_rtp, 20),
        20,
        "alice -> carol"
    );
    assert_eq!(d.rx("channel request hangup all").ok().lines().count(), 2);
    assert_eq!(alice.finish(), Some(0));
    assert_eq!(carol.finish(), Some(0));
}

/// The magnitude of a µ-law sample (ITU-T G.711).
fn ulaw_peak(u: u8) -> u16 {
    let u = !u;
    let exponent = (u >> 4) & 0x07;
    let mantissa = u16::from(u & 0x0f);
    (((mantissa << 3) + 0x84) << exponent) - 0x84
}

/// RFC 4488 with a real peer: a REFER with `Refer-Sub: false` (and
/// `Require: norefersub`, which is supported) is answered 202 with
/// `Refer-Sub: false`, no NOTIFY follows, and the transfer happens.
#[test]
fn a_refer_without_subscription_transfers_and_sends_no_notify() {
    let (callee_port, carol_port) = (free_udp_port(), free_udp_port());
    let d = transfer_pbx(callee_port, carol_port);
    let t_trace = d.root.path().join("transferor.log");
    let callee = SippProcess::start(callee_port, &["-sn", "uas", "-m", "1"]);
    let carol = SippProcess::start(carol_port, &["-sn", "uas", "-m", "1"]);
    let (code, out) = transferor(&d, "uac_refer_nosub.xml", "6003", &t_trace);
    assert_eq!(code, 0, "{out}\n{}", read(&t_trace));
    let t = read(&t_trace);
    assert!(t.contains("Refer-Sub: false"), "{t}");
    assert!(!t.contains("NOTIFY sip:"), "{t}");
    d.wait_for_log(
        " -- SIP/carol-00000003 answered SIP/callee-00000002",
        Duration::from_secs(10),
    );
    assert_eq!(d.rx("channel request hangup all").ok().lines().count(), 2);
    assert_eq!(callee.finish(), Some(0));
    assert_eq!(carol.finish(), Some(0));
}
