//! A real softphone: baresip (Debian's package) registers to Sirius with
//! digest auth and calls the echo test; its own audio (a 440 Hz tone from
//! its `ausine` source) comes back to it through Sirius.

use sirius_blackbox::{baresip_config, Daemon};
use std::process::{Command, Stdio};
use std::time::Duration;

const SIP_TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:0"

[peers.alice]
host = "dynamic"
secret = "alice-secret"
context = "demo"
allow = ["ulaw", "alaw"]
nat = ["force_rport", "comedia"]
"#;

const EXTENSIONS: &str = r#"
[demo]
"600" = ["Answer()", "Echo()"]
"#;

#[test]
fn baresip_registers_and_hears_itself_through_the_echo_test() {
    if let Some(why) = sirius_blackbox::baresip_cannot_run() {
        eprintln!("{why}");
        return;
    }
    let d = Daemon::with_chan_sip(&[("sip.toml", SIP_TOML), ("extensions.toml", EXTENSIONS)]);
    let cfg = baresip_config("alice", "alice-secret", d.sip_port());
    let out = Command::new("timeout")
        .args(["30", "baresip", "-f"])
        .arg(cfg.path())
        .args(["-e", "/dial 600", "-t", "5"])
        .stdin(Stdio::null())
        .output()
        .expect("baresip (apt-get install baresip; scripts/test does)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("200 OK (Sirius PBX"), "registered:\n{text}");
    assert!(
        text.contains("Call established: sip:600@127.0.0.1"),
        "{text}"
    );
    assert!(
        text.contains("stream: incoming rtp for 'audio' established"),
        "its audio came back:\n{text}"
    );
    let log = d.wait_for_log("Unregistered SIP 'alice'", Duration::from_secs(10));
    assert!(
        log.contains("Registered SIP 'alice' at 127.0.0.1:"),
        "{log}"
    );
    assert!(
        log.contains("Executing [600@demo:2] Echo(\"SIP/alice-"),
        "{log}"
    );
    let relayed: u64 = d
        .rx("sip show settings")
        .ok()
        .lines()
        .find_map(|l| l.trim().strip_prefix("RTP packets relayed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // 50 packets a second for the seconds the call lasted.
    assert!(relayed >= 100, "echoed only {relayed} RTP packets");
}
