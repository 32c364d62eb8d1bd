//! Call transfer with real peers (issue #12): seed 002's blind transfer by
//! REFER, played by sipp message for message: a transferor (sipp UAC)
//! calls the transferee (a sipp UAS reached by Dial), holds, REFERs it to
//! 6003 and hangs up once told the target answered; the transferee goes
//! on with the target (a second sipp UAS). Then busy and unknown targets,
//! baresip pressing transfer, attended transfer (on one SIP thread and
//! across two), `Refer-Sub: false`, RFC 3725 media moves after a transfer,
//! and the ringback a transferee hears.

use sirius_blackbox::{first_then, free_udp_port, media_pair, wait_port, SippProcess};
use std::path::Path;
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;
#[path = "transfer_common.rs"]
mod transfer_common;
use transfer_common::*;

fn seed_flow(scenario: &str, held: bool) {
    let (callee_port, carol_port) = (free_udp_port(), free_udp_port());
    let d = transfer_pbx(callee_port, carol_port);
    let dir = d.root.path();
    let (t_trace, c_trace, carol_trace) = (
        dir.join("transferor.log"),
        dir.join("transferee.log"),
        dir.join("carol.log"),
    );
    let callee = phone(callee_port, "uas_transferee.xml", &[], &c_trace);
    let carol = phone(carol_port, "uas", &[], &carol_trace);
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
    if let Some(why) = sirius_blackbox::baresip_cannot_run() {
        eprintln!("{why}");
        return;
    }
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

    let cfg = sirius_blackbox::baresip_config("bob", "bob-secret", d.sip_port());
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
    let alice = phone(
        alice_port,
        "uas_media.xml",
        &[("mport", port_of(&a_rtp))],
        &alice_trace,
    );
    let carol = phone(
        carol_port,
        "uas_media.xml",
        &[("mport", port_of(&c_rtp))],
        &carol_trace,
    );

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
    let (alice_trace, carol_trace, t_trace) = (
        dir.join("alice.log"),
        dir.join("carol.log"),
        dir.join("transferor.log"),
    );
    let moves = [("mport", port_of(&a1)), ("mport2", port_of(&a2))];
    let alice = phone(callee_port, "uas_transferee_3pcc.xml", &moves, &alice_trace);
    let carol = phone(
        carol_port,
        "uas_media.xml",
        &[("mport", port_of(&c_rtp))],
        &carol_trace,
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
    let (alice_trace, carol_trace) = (dir.join("alice.log"), dir.join("carol.log"));
    let alice = phone(
        callee_port,
        "uas_media.xml",
        &[("mport", port_of(&a_rtp))],
        &alice_trace,
    );
    let ringing = [("mport", port_of(&c_rtp))];
    let carol = phone(carol_port, "uas_ring_media.xml", &ringing, &carol_trace);
    let t_trace = dir.join("transferor.log").to_str().unwrap().to_string();
    let args = [
        "-key",
        "target",
        "6003",
        "-trace_msg",
        "-message_file",
        &t_trace,
    ];
    let transfer = caller_in_thread(
        &d,
        "uac_refer_blind_nohold.xml",
        "200",
        &args.map(String::from),
    );
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
