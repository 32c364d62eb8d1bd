//! Session behaviour with real peers (sipp): offer/answer in the ACK,
//! session timers, RTP timeouts, and saying only what we support.

use sirius_blackbox::{
    first_then, free_udp_port, media_pair, rtp, scenario, sdp_port_after, sipp, sipp_within,
    wait_port, Daemon, SippProcess,
};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const SIP_TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:0"
rtpstart = 31000
rtpend = 31999

[peers.sipp]
type = "peer"
host = "127.0.0.1"
insecure = ["invite", "port"]
context = "test"
allow = ["ulaw", "alaw"]
"#;

const EXTENSIONS: &str = r#"
[test]
"200" = ["Dial(SIP/callee,5)", "Hangup()"]
"300" = ["Answer()", "Wait(100)", "Hangup()"]
"#;

fn sf(name: &str) -> String {
    scenario(name).to_str().unwrap().to_string()
}

/// A daemon whose extension 200 dials a callee peer at `callee_port`;
/// `general` is added to `[general]`.
fn pbx(callee_port: u16, general: &str) -> Daemon {
    let sip = SIP_TOML.replace("rtpend = 31999\n", &format!("rtpend = 31999\n{general}\n"))
        + &format!(
            "\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\n"
        );
    Daemon::with_chan_sip(&[("sip.toml", &sip), ("extensions.toml", EXTENSIONS)])
}

/// A sipp caller dialling extension 200 and the sipp callee it reaches,
/// each running its scenario with `-key name port` pairs (its media
/// sockets) and writing a message trace into the daemon's directory.
struct Phones {
    caller: std::thread::JoinHandle<(i32, String)>,
    callee: SippProcess,
    caller_trace: std::path::PathBuf,
    callee_trace: std::path::PathBuf,
}

impl Phones {
    /// Starts the callee on `callee_port`, then the caller (its `extra`
    /// arguments before the keys, e.g. `-d`).
    fn start(
        d: &Daemon,
        callee_port: u16,
        (callee_sf, callee_keys): (&str, &[(&str, u16)]),
        (caller_sf, caller_keys): (&str, &[(&str, u16)]),
        extra: &[&str],
    ) -> Phones {
        let keys = |keys: &[(&str, u16)]| -> Vec<String> {
            keys.iter()
                .flat_map(|(k, v)| ["-key".to_string(), (*k).to_string(), v.to_string()])
                .collect()
        };
        let callee_trace = d.root.path().join("callee.log");
        let mut args: Vec<String> = vec!["-sf".into(), sf(callee_sf), "-m".into(), "1".into()];
        args.extend(keys(callee_keys));
        args.extend(["-trace_msg".into(), "-message_file".into()]);
        args.push(callee_trace.to_str().unwrap().into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let callee = SippProcess::start(callee_port, &refs);
        let caller_trace = d.root.path().join("caller.log");
        let mut args: Vec<String> = vec![
            format!("127.0.0.1:{}", d.sip_port()),
            "-sf".into(),
            sf(caller_sf),
            "-s".into(),
            "200".into(),
            "-p".into(),
            free_udp_port().to_string(),
            "-m".into(),
            "1".into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_string()));
        args.extend(keys(caller_keys));
        args.extend(["-trace_msg".into(), "-message_file".into()]);
        args.push(caller_trace.to_str().unwrap().into());
        let caller = std::thread::spawn(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            sipp(&refs)
        });
        Phones {
            caller,
            callee,
            caller_trace,
            callee_trace,
        }
    }

    /// Both scenarios ended well (`what` says what the caller had to see).
    fn finish(self, what: &str) {
        let (code, out) = self.caller.join().unwrap();
        assert_eq!(code, 0, "{what}{out}");
        assert_eq!(self.callee.finish(), Some(0));
    }
}

/// A late offer (INVITE without SDP): the PBX offers in its 200 and the
/// caller answers in the ACK. RTP must flow both ways right after the ACK:
/// the callee's packets reach the caller before the caller has sent any
/// (the relay takes the caller's address from the ACK's answer, not from
/// its first packet).
#[test]
fn a_late_offer_call_has_rtp_both_ways_right_after_the_ack() {
    let callee_port = free_udp_port();
    let d = pbx(callee_port, "");
    let (a, b) = (media_pair(), media_pair());
    let phones = Phones::start(
        &d,
        callee_port,
        (
            "uas_media.xml",
            &[("mport", b.0.local_addr().unwrap().port())],
        ),
        (
            "uac_late_offer.xml",
            &[("mport", a.0.local_addr().unwrap().port())],
        ),
        &["-d", "3000"],
    );
    let pbx_a = wait_port(&phones.caller_trace, "SIP/2.0 200 OK");
    let pbx_b = wait_port(&phones.callee_trace, "INVITE sip:");
    // Callee to caller first: the caller has sent nothing yet.
    assert_eq!(first_then(&b.0, pbx_b, &a.0, 5), 5, "callee -> caller");
    assert_eq!(first_then(&a.0, pbx_a, &b.0, 5), 5, "caller -> callee");
    phones.finish("");
}

/// `rtptimeout`: while RTP flows both ways the bridged call stays up past
/// the timeout; once both phones fall silent, the PBX hangs both legs up
/// with BYE and says why, as Asterisk does.
#[test]
fn a_bridged_call_whose_phones_fall_silent_is_hung_up_after_rtptimeout() {
    let callee_port = free_udp_port();
    let d = pbx(callee_port, "rtptimeout = 2");
    let (a, b) = (media_pair(), media_pair());
    let phones = Phones::start(
        &d,
        callee_port,
        (
            "uas_media.xml",
            &[("mport", b.0.local_addr().unwrap().port())],
        ),
        (
            "uac_media_wait_bye.xml",
            &[("mport", a.0.local_addr().unwrap().port())],
        ),
        &[],
    );
    let pbx_a = wait_port(&phones.caller_trace, "SIP/2.0 200 OK");
    let pbx_b = wait_port(&phones.callee_trace, "INVITE sip:");
    assert_eq!(first_then(&a.0, pbx_a, &b.0, 1), 1);
    assert_eq!(first_then(&b.0, pbx_b, &a.0, 1), 1);
    // 3.5 s of RTP both ways (every 100 ms): longer than the timeout.
    let talking = Instant::now();
    while talking.elapsed() < Duration::from_millis(3500) {
        a.0.send_to(&rtp(1), ("127.0.0.1", pbx_a)).unwrap();
        b.0.send_to(&rtp(1), ("127.0.0.1", pbx_b)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        d.rx("core show channels count")
            .ok()
            .starts_with("2 active channels"),
        "a call with RTP must stay up"
    );
    // Silence: the PBX ends the call, both phones get a BYE.
    phones.finish("");
    let log = d.wait_for_log("for lack of RTP activity in", Duration::from_secs(5));
    assert!(log.contains("Disconnecting call 'SIP/"), "{log}");
}

/// RFC 4028 with a real peer: the caller asks for a 90 s session timer it
/// will refresh itself, the PBX grants it (Session-Expires and Require in
/// the 200, checked by the scenario), and when no refresh comes the PBX
/// ends the call with a BYE at 90 − 30 = 60 s.
#[test]
fn a_session_timer_nobody_refreshes_ends_the_call_with_bye() {
    let d = pbx(free_udp_port(), "");
    let target = format!("127.0.0.1:{}", d.sip_port());
    let started = Instant::now();
    let (code, out) = sipp_within(
        &[
            &target,
            "-sf",
            &sf("uac_session_timer.xml"),
            "-s",
            "300",
            "-p",
            &free_udp_port().to_string(),
            "-m",
            "1",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(code, 0, "{out}");
    let took = started.elapsed();
    assert!(
        (Duration::from_secs(59)..Duration::from_secs(75)).contains(&took),
        "BYE after {took:?}, not at the session's expiry"
    );
    assert!(
        d.messages().contains("Session-Timer expired"),
        "{}",
        d.messages()
    );
}

/// Say only what works: OPTIONS lists exactly what is implemented (UPDATE,
/// INFO, REFER, NOTIFY, SUBSCRIBE and PUBLISH for the packages served, and session
/// timers included; no MESSAGE), and an INVITE
/// requiring an extension we lack gets 420 naming it.
#[test]
fn options_says_only_what_works_and_an_unknown_require_gets_420() {
    let d = pbx(free_udp_port(), "");
    let target = format!("127.0.0.1:{}", d.sip_port());
    let trace = d.root.path().join("options.log");
    let (code, out) = sipp(&[
        &target,
        "-sf",
        &sf("options.xml"),
        "-m",
        "1",
        "-p",
        &free_udp_port().to_string(),
        "-trace_msg",
        "-message_file",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let msgs = std::fs::read_to_string(trace).unwrap();
    let line = |l: &str| msgs.lines().any(|m| m.trim_end() == l);
    assert!(
        line("Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER, UPDATE, INFO, REFER, NOTIFY, SUBSCRIBE, PUBLISH"),
        "{msgs}"
    );
    assert!(
        line("Allow-Events: dialog, presence, message-summary, call-info"),
        "{msgs}"
    );
    assert!(msgs.contains("Supported: timer"), "{msgs}");
    let (code, out) = sipp(&[
        &target,
        "-sf",
        &sf("uac_require.xml"),
        "-s",
        "300",
        "-m",
        "1",
        "-p",
        &free_udp_port().to_string(),
    ]);
    assert_eq!(
        code, 0,
        "the INVITE must get 420 Unsupported: 100rel:\n{out}"
    );
    assert!(d
        .rx("core show channels count")
        .ok()
        .starts_with("0 active channels"));
}

/// Seed 000's video call end to end: the caller's INVITE has no SDP; the
/// PBX dials a video-capable callee (offering H.263 in an `m=video` line of
/// its own, checked by the callee's scenario), offers audio and video to
/// the caller in its 200 (checked by the caller's), and the caller answers
/// both in the ACK. Then audio and video flow both ways, each stream on its
/// own ports.
#[test]
fn seed_000s_late_offer_video_call_carries_audio_and_video_both_ways() {
    let callee_port = free_udp_port();
    let d = {
        let sip = SIP_TOML.replace("allow = [\"ulaw\", \"alaw\"]", "allow = [\"ulaw\", \"h263\"]")
            + &format!(
                "\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\nallow = [\"ulaw\", \"h263\"]\n"
            );
        Daemon::with_chan_sip(&[("sip.toml", &sip), ("extensions.toml", EXTENSIONS)])
    };
    let (a, av, b, bv) = (media_pair(), media_pair(), media_pair(), media_pair());
    let port = |s: &(UdpSocket, UdpSocket)| s.0.local_addr().unwrap().port();
    let phones = Phones::start(
        &d,
        callee_port,
        (
            "uas_media_video.xml",
            &[("mport", port(&b)), ("vport", port(&bv))],
        ),
        (
            "uac_late_offer_video.xml",
            &[("mport", port(&a)), ("vport", port(&av))],
        ),
        &["-d", "4000"],
    );
    let (pbx_a, pbx_b) = (
        wait_port(&phones.caller_trace, "SIP/2.0 200 OK"),
        wait_port(&phones.callee_trace, "INVITE sip:"),
    );
    let video_port = |trace: &std::path::Path, marker: &str| {
        sdp_port_after(trace, marker, "video").expect("m=video after the marker")
    };
    let (pbx_av, pbx_bv) = (
        video_port(&phones.caller_trace, "SIP/2.0 200 OK"),
        video_port(&phones.callee_trace, "INVITE sip:"),
    );
    assert!(
        pbx_av != pbx_a && pbx_bv != pbx_b,
        "video has ports of its own"
    );
    assert_eq!(
        first_then(&b.0, pbx_b, &a.0, 5),
        5,
        "audio callee -> caller"
    );
    assert_eq!(
        first_then(&a.0, pbx_a, &b.0, 5),
        5,
        "audio caller -> callee"
    );
    assert_eq!(
        first_then(&bv.0, pbx_bv, &av.0, 5),
        5,
        "video callee -> caller"
    );
    assert_eq!(
        first_then(&av.0, pbx_av, &bv.0, 5),
        5,
        "video caller -> callee"
    );
    let channels = d.rx("sip show channels").ok();
    assert!(channels.contains("(ulaw|h263)"), "{channels}");
    phones.finish("");
}

/// Early media through Dial: the callee answers the PBX's INVITE with 183
/// and SDP (an announcement), the caller gets 183 with SDP too, the
/// announcement's RTP reaches the caller (and the caller's the callee)
/// before anyone answers; then the callee's 486 reaches the caller as 486.
#[test]
fn a_callees_early_media_reaches_the_caller_before_its_busy() {
    let callee_port = free_udp_port();
    let d = pbx(callee_port, "");
    let (a, b) = (media_pair(), media_pair());
    let phones = Phones::start(
        &d,
        callee_port,
        (
            "uas_early_media_busy.xml",
            &[("mport", b.0.local_addr().unwrap().port())],
        ),
        (
            "uac_early_media.xml",
            &[("mport", a.0.local_addr().unwrap().port())],
        ),
        &[],
    );
    let pbx_a = wait_port(&phones.caller_trace, "SIP/2.0 183");
    let pbx_b = wait_port(&phones.callee_trace, "INVITE sip:");
    assert_eq!(
        first_then(&b.0, pbx_b, &a.0, 5),
        5,
        "announcement -> caller"
    );
    assert_eq!(first_then(&a.0, pbx_a, &b.0, 5), 5, "caller -> callee");
    phones.finish("the caller gets 183 then 486:\n");
}

/// `dtmfmode = "info"`: a phone that sends DTMF by SIP INFO, bridged with a
/// callee that expects RFC 4733: the digit reaches the callee as
/// telephone-event packets on the payload type it chose (101).
#[test]
fn a_digit_sent_by_info_reaches_an_rfc4733_callee_as_rtp_events() {
    let callee_port = free_udp_port();
    let d = {
        let sip = SIP_TOML.replace(
            "context = \"test\"",
            "context = \"test\"\ndtmfmode = \"info\"",
        ) + &format!(
            "\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\n"
        );
        Daemon::with_chan_sip(&[("sip.toml", &sip), ("extensions.toml", EXTENSIONS)])
    };
    let (a, b) = (media_pair(), media_pair());
    let phones = Phones::start(
        &d,
        callee_port,
        (
            "uas_media_dtmf.xml",
            &[("mport", b.0.local_addr().unwrap().port())],
        ),
        (
            "uac_info_dtmf.xml",
            &[("mport", a.0.local_addr().unwrap().port())],
        ),
        &["-d", "2000"],
    );
    b.0.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut buf = [0u8; 2048];
    let mut events = 0;
    while Instant::now() < deadline && events < 4 {
        if let Ok((n, _)) = b.0.recv_from(&mut buf) {
            // RTP, payload type 101, event 5.
            if n >= 16 && buf[0] >> 6 == 2 && buf[1] & 0x7f == 101 && buf[12] == 5 {
                events += 1;
            }
        }
    }
    assert!(
        events >= 4,
        "the digit as RFC 4733 events (start, updates, 3 ends): {events}"
    );
    phones.finish("");
}

/// A 302 whose Contact names a host (`localhost`): the PBX looks it up off
/// its SIP thread and the call connects at the redirect target.
#[test]
fn a_302_to_a_host_name_is_followed_after_its_lookup() {
    let (redirector_port, final_port) = (free_udp_port(), free_udp_port());
    let d = pbx(redirector_port, "");
    let redirector = SippProcess::start(
        redirector_port,
        &[
            "-sf",
            &sf("uas_redirect_name.xml"),
            "-m",
            "1",
            "-key",
            "fwdport",
            &final_port.to_string(),
        ],
    );
    let target = SippProcess::start(final_port, &["-sn", "uas", "-m", "1"]);
    let (code, out) = sipp(&[
        &format!("127.0.0.1:{}", d.sip_port()),
        "-sn",
        "uac",
        "-s",
        "200",
        "-p",
        &free_udp_port().to_string(),
        "-m",
        "1",
        "-d",
        "500",
    ]);
    assert_eq!(code, 0, "answered by the redirect target:\n{out}");
    assert_eq!(redirector.finish(), Some(0));
    assert_eq!(target.finish(), Some(0));
    assert!(d.messages().contains(&format!(
        "redirected (302) to sip:final@localhost:{final_port}"
    )));
}

/// UPDATE (RFC 3311), advertised in Allow, with a real peer: an UPDATE in
/// the dialog whose SDP holds the call gets 200 with our answer (recvonly,
/// checked by the scenario), and the PBX logs the hold.
#[test]
fn an_update_in_a_dialog_is_answered_with_sdp() {
    let d = pbx(free_udp_port(), "");
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (code, out) = sipp(&[
        &format!("127.0.0.1:{}", d.sip_port()),
        "-sf",
        &sf("uac_update.xml"),
        "-s",
        "300",
        "-p",
        &free_udp_port().to_string(),
        "-m",
        "1",
        "-d",
        "300",
        "-key",
        "mport",
        &media.local_addr().unwrap().port().to_string(),
    ]);
    assert_eq!(code, 0, "the UPDATE must get 200 with a=recvonly:\n{out}");
    assert!(
        d.messages().contains("put on hold by the far end"),
        "{}",
        d.messages()
    );
}
