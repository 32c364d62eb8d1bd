//! Why a Dial failed reaches the caller, as in Asterisk's app_dial:
//! `${HANGUPCAUSE}` names it after `Dial()` and in `h`, and when the dialplan
//! then ends the caller's channel is hung up with it (chan_sip answers the
//! caller of a busy Dial `486 Busy Here`, not `603 Declined`).

use sirius_blackbox::{free_udp_port, scenario, sipp, Daemon, SippProcess};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `sipp` calls in (any call from 127.0.0.1); `bob` takes one call at a
/// time; `ghost` never registered.
fn pbx(bob_port: u16) -> Daemon {
    let sip = format!(
        r#"
[general]
udpbindaddr = "127.0.0.1:0"
rtpstart = 31000
rtpend = 31999

[peers.sipp]
type = "peer"
host = "127.0.0.1"
insecure = ["invite", "port"]
context = "test"

[peers.bob]
type = "peer"
host = "127.0.0.1"
port = {bob_port}
call-limit = 1

[peers.ghost]
host = "dynamic"
secret = "x"
"#
    );
    let ext = r#"
[test]
"300" = ["Dial(SIP/bob,5)", "Verbose(2,Dial ended on ${CHANNEL}: DIALSTATUS=${DIALSTATUS} HANGUPCAUSE=${HANGUPCAUSE})"]
"301" = ["Dial(SIP/ghost,5)", "Verbose(2,Dial ended on ${CHANNEL}: DIALSTATUS=${DIALSTATUS} HANGUPCAUSE=${HANGUPCAUSE})", "Hangup()"]
"h" = ["Verbose(2,h on ${CHANNEL}: HANGUPCAUSE=${HANGUPCAUSE})"]
"#;
    Daemon::with_chan_sip(&[("sip.toml", &sip), ("extensions.toml", ext)])
}

/// A copy of `tests/scenarios/<name>` in `dir` with `from` replaced by `to`
/// (the same flow with another response code).
fn variant(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(scenario(name)).unwrap();
    assert!(text.contains(from), "{name} has no '{from}'");
    let path = dir.join(format!("{}-{}", to.replace(' ', "_"), name));
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

/// One call from sipp to `exten` with scenario file `sf`.
fn call(d: &Daemon, sf: &Path, exten: &str) -> (i32, String) {
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let sf = sf.to_str().unwrap();
    sipp(&[&target, "-p", &port, "-m", "1", "-sf", sf, "-s", exten])
}

#[test]
fn a_caller_dialing_a_peer_at_its_call_limit_gets_486_and_hangupcause_17() {
    let bob_port = free_udp_port();
    let d = pbx(bob_port);
    // Bob answers a first call and keeps it up: he is at his call-limit.
    let bob = SippProcess::start(bob_port, &["-sn", "uas", "-m", "1"]);
    let first = {
        let target = format!("127.0.0.1:{}", d.sip_port());
        let port = free_udp_port().to_string();
        std::thread::spawn(move || {
            sipp(&[
                &target, "-p", &port, "-m", "1", "-sn", "uac", "-s", "300", "-d", "4000",
            ])
        })
    };
    d.wait_for("sip show inuse", Duration::from_secs(10), |o| {
        o.lines()
            .any(|l| l.starts_with("bob ") && l.contains(" 1/0/0 "))
    });
    // The second caller: Dial gives BUSY, the dialplan runs out of steps,
    // and the caller hears busy.
    let (code, out) = call(&d, &scenario("uac_busy.xml"), "300");
    assert_eq!(code, 0, "the caller of a busy Dial must get 486:\n{out}");
    let log = d.wait_for_log("h on SIP/sipp-00000003", Duration::from_secs(5));
    assert!(
        log.contains("Call to peer 'bob' rejected due to usage limit of 1"),
        "{log}"
    );
    assert!(
        log.contains("Dial ended on SIP/sipp-00000003: DIALSTATUS=BUSY HANGUPCAUSE=17"),
        "{log}"
    );
    assert!(
        log.contains("Auto fallthrough, channel 'SIP/sipp-00000003' status is 'BUSY'"),
        "{log}"
    );
    assert!(
        log.contains("Hungup 'SIP/sipp-00000003' (USER_BUSY, 17)"),
        "{log}"
    );
    assert!(
        log.contains("h on SIP/sipp-00000003: HANGUPCAUSE=17"),
        "{log}"
    );
    let (code, out) = first.join().unwrap();
    assert_eq!(code, 0, "the call within the limit is unaffected:\n{out}");
    assert_eq!(bob.finish(), Some(0));
}

#[test]
fn hangupcause_names_a_rejecting_callee_and_the_caller_gets_its_response() {
    // Bob answers 480 (NO_ANSWER, 19), then 488 (BEARERCAPABILITY_NOTAVAIL, 58).
    for (response, cause, name) in [
        ("480 Temporarily Unavailable", 19, "NO_ANSWER"),
        ("488 Not Acceptable Here", 58, "BEARERCAPABILITY_NOTAVAIL"),
    ] {
        let bob_port = free_udp_port();
        let d = pbx(bob_port);
        let dir = d.root.path();
        let uas = variant(dir, "uas_busy.xml", "486 Busy Here", response);
        let uac = variant(
            dir,
            "uac_busy.xml",
            "\"486\"",
            &format!("\"{}\"", &response[..3]),
        );
        let bob = SippProcess::start(bob_port, &["-sf", uas.to_str().unwrap(), "-m", "1"]);
        let (code, out) = call(&d, &uac, "300");
        assert_eq!(code, 0, "the caller must get {response}:\n{out}");
        assert_eq!(bob.finish(), Some(0), "bob: INVITE, {response}, ACK");
        let log = d.wait_for_log("h on SIP/sipp-00000001", Duration::from_secs(5));
        assert!(
            log.contains(&format!(
                "Dial ended on SIP/sipp-00000001: DIALSTATUS={} HANGUPCAUSE={cause}",
                if cause == 19 {
                    "NOANSWER"
                } else {
                    "CHANUNAVAIL"
                }
            )),
            "{log}"
        );
        assert!(
            log.contains(&format!("Hungup 'SIP/sipp-00000001' ({name}, {cause})")),
            "{log}"
        );
        assert!(
            log.contains(&format!("h on SIP/sipp-00000001: HANGUPCAUSE={cause}")),
            "{log}"
        );
    }
}

#[test]
fn a_peer_that_cannot_be_requested_leaves_its_cause_and_hangup_uses_it() {
    let d = pbx(free_udp_port());
    // Ghost is not registered: SUBSCRIBER_ABSENT (20), CHANUNAVAIL; the
    // `Hangup()` without a cause that follows hangs up with it: 480.
    let uac = variant(d.root.path(), "uac_busy.xml", "\"486\"", "\"480\"");
    let (code, out) = call(&d, &uac, "301");
    assert_eq!(code, 0, "the caller must get 480:\n{out}");
    let log = d.wait_for_log("h on SIP/sipp-00000001", Duration::from_secs(5));
    assert!(
        log.contains("Dial ended on SIP/sipp-00000001: DIALSTATUS=CHANUNAVAIL HANGUPCAUSE=20"),
        "{log}"
    );
    assert!(
        log.contains("Hungup 'SIP/sipp-00000001' (SUBSCRIBER_ABSENT, 20)"),
        "{log}"
    );
    assert!(
        log.contains("h on SIP/sipp-00000001: HANGUPCAUSE=20"),
        "{log}"
    );
}
