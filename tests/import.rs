//! `sirius import-asterisk` end to end: an Asterisk configuration directory
//! converted by the real binary, a daemon started on what it wrote, a phone
//! registering with its Asterisk password and a call through the converted
//! dialplan (sipp).

use sirius_blackbox::{free_udp_port, log_line, sipp, sipp_register, sirius_bin, Daemon};
use std::process::Command;

const SIP_CONF: &str = "[general]
udpbindaddr=127.0.0.1:0
context=public
srvlookup=yes
disallow=all
allow=ulaw

[office](!)
type=friend
host=dynamic
context=from-office
dtmfmode=rfc2833

[6001](office)
secret=alice-pw
callerid=\"Alice\" <6001>

[sipp]
type=peer
host=127.0.0.1
insecure=port,invite
context=from-office
directmedia=no
";

const EXTENSIONS_CONF: &str = "[general]
static=yes

[globals]
GREETING=hello

[from-office]
include => services
include => voicemail
exten => 6001,hint,SIP/6001

[services]
exten => 100,1,Answer()
 same => n,Verbose(2,${GREETING} from the imported dialplan)
 same => n,Playback(demo-congrats)
 same => n,Wait(1)
 same => n,Hangup()
";

#[test]
fn an_asterisk_directory_converted_runs_calls() {
    let asterisk = tempfile::tempdir().unwrap();
    std::fs::write(asterisk.path().join("sip.conf"), SIP_CONF).unwrap();
    std::fs::write(asterisk.path().join("extensions.conf"), EXTENSIONS_CONF).unwrap();
    let out = tempfile::tempdir().unwrap();
    let etc = out.path().join("etc");
    let run = Command::new(sirius_bin())
        .arg("import-asterisk")
        .arg(asterisk.path())
        .arg("--out")
        .arg(&etc)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains(&format!("wrote {}", etc.join("sip.toml").display())),
        "{stdout}"
    );
    // What was left out, line by line.
    for line in [
        "  extensions.conf:9: include => voicemail: extensions.conf has no such context; left out",
        "  extensions.conf:15: application Playback: Sirius does not have it;",
        "  sip.conf:4: [general] srvlookup = yes: not converted (Sirius has no such option)",
        "  sip.conf:23: [sipp] directmedia = no: not converted (Sirius always relays the media itself",
    ] {
        assert!(stdout.lines().any(|l| l.starts_with(line)), "{line}\n{stdout}");
    }
    assert!(stdout.contains("Not converted (4):"), "{stdout}");
    // A second run would overwrite: refused.
    let again = Command::new(sirius_bin())
        .arg("import-asterisk")
        .arg(asterisk.path())
        .arg("--out")
        .arg(&etc)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("sip.toml exists"));

    let sip = std::fs::read_to_string(etc.join("sip.toml")).unwrap();
    let ext = std::fs::read_to_string(etc.join("extensions.toml")).unwrap();
    let d = Daemon::with_chan_sip(&[("sip.toml", &sip), ("extensions.toml", &ext)]);
    // The phone registers with its Asterisk password.
    let (code, out) = sipp_register(
        &d,
        "register_accepted.xml",
        "6001",
        "alice-pw",
        free_udp_port(),
        1,
    );
    assert_eq!(code, 0, "{out}");
    let peer = d.rx("sip show peer 6001").ok();
    assert!(peer.contains("  Context      : from-office"), "{peer}");
    assert!(d.rx("core show hints").ok().contains("6001@from-office"));
    // A call from the trunk reaches the converted dialplan through its include.
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let (code, out) = sipp(&[
        &target, "-p", &port, "-m", "1", "-sn", "uac", "-s", "100", "-d", "200",
    ]);
    assert_eq!(code, 0, "{out}");
    let log = d.wait_for_log(
        "from the imported dialplan",
        std::time::Duration::from_secs(5),
    );
    assert!(
        log_line(
            &log,
            "NOTICE",
            "chan_sip",
            "Registered SIP '6001' at 127.0.0.1:"
        )
        .is_some(),
        "{log}"
    );
    assert!(
        log.contains("-- Executing [100@services:3] NoOp(\"SIP/sipp-"),
        "{log}"
    );
}
