//! A real softphone: baresip (Debian's package) registers to Sirius with
//! digest auth and calls the echo test; its own audio (a 440 Hz tone from
//! its `ausine` source) comes back to it through Sirius.

use sirius_blackbox::{free_udp_port, Daemon};
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
    let d = Daemon::with_chan_sip(&[("sip.toml", SIP_TOML), ("extensions.toml", EXTENSIONS)]);
    let cfg = tempfile::tempdir().unwrap();
    let (sip, rtp) = (free_udp_port(), free_udp_port());
    // A headless phone: a sine tone as microphone, a virtual bridge device as
    // speaker (no sound card here), G.711 only.
    let config = format!(
        "sip_listen 127.0.0.1:{sip}\nsip_transports udp\n\
         audio_player aubridge,speaker\naudio_source ausine,440\naudio_alert aubridge,speaker\n\
         ausrc_srate 48000\nauplay_srate 48000\nausrc_channels 2\nauplay_channels 2\n\
         rtp_ports {rtp}-{}\n\
         module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\n\
         module ausine.so\nmodule aubridge.so\nmodule_app account.so\nmodule_app menu.so\n",
        rtp + 9
    );
    std::fs::write(cfg.path().join("config"), config).unwrap();
    std::fs::write(
        cfg.path().join("accounts"),
        format!(
            "<sip:alice@127.0.0.1:{};transport=udp>;auth_pass=alice-secret;regint=60\n",
            d.sip_port()
        ),
    )
    .unwrap();
    std::fs::write(cfg.path().join("contacts"), "").unwrap();
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
