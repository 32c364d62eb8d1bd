//! Bridged calls' media: RTP relayed, translated and renumbered between
//! two phones whose sockets the test owns; hold, a moved far end, Echo.

use sirius_blackbox::{free_udp_port, media_pair, same_rows, sipp, wait_port, Daemon, SippProcess};
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;

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

/// The Prometheus endpoint scraped during a bridged call: Asterisk's
/// res_prometheus names for channels, calls, bridges and endpoints, and
/// chan_sip's SIP and RTP figures (packets relayed, and lost: a gap the
/// test leaves in the caller's sequence numbers). Prometheus's own parser
/// (prometheus_client, from PyPI) reads the page.
#[test]
fn metrics_are_scraped_during_a_bridged_call() {
    let call = BridgedCall::start("uac_media.xml", "uas_media.xml");
    assert_eq!(pump(&call.a.0, call.pbx_a, &call.b.0, 20), 20);
    // Sequence numbers 20..=24 never sent: five lost.
    let sink = &call.b.0;
    let mut buf = [0u8; 2048];
    for seq in 25u16..30 {
        let mut pkt = vec![0x80, 0x00];
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&[0u8; 168]);
        call.a.0.send_to(&pkt, ("127.0.0.1", call.pbx_a)).unwrap();
        sink.recv_from(&mut buf).expect("relayed");
    }
    let (code, page) = call.d.scrape(None);
    assert_eq!(code, 200, "{page}");
    let value = |sample: &str| -> f64 {
        page.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {sample} in:\n{page}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("asterisk_channels_count"), 2.0);
    assert_eq!(value("asterisk_calls_count"), 1.0);
    assert_eq!(value("asterisk_bridges_count"), 1.0);
    assert_eq!(value("sirius_rtp_packets_relayed_total"), 25.0);
    assert_eq!(value("sirius_rtp_packets_lost_total"), 5.0);
    assert!(value("sirius_sip_responses_total{direction=\"sent\",class=\"2xx\"}") >= 1.0);
    assert!(value("sirius_sip_responses_total{direction=\"received\",class=\"2xx\"}") >= 1.0);
    assert!(value("sirius_sip_transactions") >= 1.0);
    assert_eq!(value("asterisk_endpoints_count"), 5.0);
    assert_eq!(
        value("asterisk_endpoints_state{id=\"SIP/callee\",tech=\"SIP\",resource=\"callee\"}"),
        2.0,
        "a static peer is online"
    );
    assert_eq!(
        value("asterisk_endpoints_state{id=\"SIP/ghost\",tech=\"SIP\",resource=\"ghost\"}"),
        1.0,
        "an unregistered dynamic peer is offline"
    );
    assert_eq!(
        value(
            "asterisk_endpoints_channels_count{id=\"SIP/callee\",tech=\"SIP\",resource=\"callee\"}"
        ),
        1.0
    );
    let up: Vec<&str> = page
        .lines()
        .filter(|l| {
            l.starts_with("asterisk_channels_state{name=\"SIP/")
                && l.contains(",type=\"SIP\",linkedid=\"")
                && l.ends_with(" 6")
        })
        .collect();
    assert_eq!(up.len(), 2, "both legs Up (6):\n{page}");
    // Both legs carry the call's Linkedid: the caller's uniqueid.
    let label = |l: &str, k: &str| {
        l.split(&format!("{k}=\""))
            .nth(1)
            .and_then(|v| v.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    let caller = up
        .iter()
        .find(|l| l.contains("name=\"SIP/sipp-"))
        .expect("the caller's line");
    assert!(!label(caller, "id").is_empty(), "{caller}");
    for l in &up {
        assert_eq!(label(l, "linkedid"), label(caller, "id"), "{l}");
    }
    // Prometheus's own parser reads every family, with its type.
    let parsed = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\nfor f in p(sys.stdin.read()):\n    print(f.name, f.type, len(f.samples))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(page.as_bytes())?;
            c.wait_with_output()
        })
        .expect("python3 with prometheus_client (scripts/test installs it)");
    let families = String::from_utf8_lossy(&parsed.stdout);
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    for family in [
        "asterisk_calls_sum counter 1",
        "asterisk_channels_state gauge 2",
        "sirius_sip_responses counter 12",
        "sirius_rtp_packets_lost counter 1",
        "asterisk_core_uptime_seconds counter 1",
    ] {
        assert!(
            families.lines().any(|l| l == family),
            "{family} in:\n{families}"
        );
    }
    call.finish();
}

/// `sirius -rx --json` during a bridged call: the call-time tables
/// (channels, one channel, calls, bridges, SIP dialogs, peers in use) hold
/// the same rows as their text.
#[test]
fn the_call_time_tables_as_json() {
    let call = BridgedCall::start("uac_media.xml", "uas_media.xml");
    let d = &call.d;
    let rows = |c: &str| {
        let (text, json) = (d.rx(c).ok(), d.rx_json(c));
        (same_rows(c, &text, &json), json)
    };
    // The JSON carries the most fields the command has: its verbose form's.
    let text = d.rx("core show channels verbose").ok();
    let json = d.rx_json("core show channels");
    let n = same_rows("core show channels", &text, &json);
    assert_eq!(
        (n, json["active_channels"].as_u64()),
        (2, Some(2)),
        "{json}"
    );
    assert_eq!(json["active_calls"], 1, "{json}");
    let callee = json["rows"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find_map(|r| r["channel"].as_str()?.strip_prefix("SIP/callee-"))
        })
        .unwrap_or_else(|| panic!("the callee's channel: {json}"));
    let name = format!("SIP/callee-{callee}");
    let c = format!("core show channel {name}");
    let (text, json) = (d.rx(&c).ok(), d.rx_json(&c));
    sirius_blackbox::same_fields(&c, &text, &json, 8);
    assert_eq!(json["name"], name.as_str(), "{json}");
    assert_eq!(json["state"], "Up (6)", "{json}");
    assert!(json["variables"].is_object(), "{json}");
    assert_eq!(d.rx_json("core show calls")["active_calls"], 1);
    let (n, json) = rows("bridge show all");
    assert_eq!(n, 1, "{json}");
    assert_eq!(json["rows"][0]["chans"], "2", "{json}");
    let (n, json) = rows("sip show channels");
    assert_eq!(
        (n, json["active_sip_dialogs"].as_u64()),
        (2, Some(2)),
        "{json}"
    );
    let (_, json) = rows("sip show inuse");
    let callee = json["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["peer_name"] == "callee"))
        .unwrap_or_else(|| panic!("callee in use: {json}"));
    assert!(
        callee["in_use"].as_str().unwrap().starts_with("1/"),
        "{json}"
    );
    call.finish();
}
