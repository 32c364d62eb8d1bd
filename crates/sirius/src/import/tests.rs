use super::*;

/// A small office's sip.conf as admins write them: the sample's templates
/// (`(!)`, a template inheriting one), friends, a trunk, `register =>`.
const SIP_CONF: &str = r#"; office PBX
[general]
context=public
allowoverlap=no
udpbindaddr=127.0.0.1:5080
tcpenable=yes
transport=udp
srvlookup=yes
realm=office.example
alwaysauthreject=yes
disallow=all
allow=ulaw
allow=alaw
nat=force_rport,comedia
register => 34600000000:s3cret@195.76.180.160/6000
register => tcp://trunkuser:pw:authname@sip.example.net:5070~600
register => tls://tlsuser:tls-pw@secure.example.net

[authentication]

[basic-options](!)
dtmfmode=rfc2833
context=from-office
type=friend

[natted-phone](!,basic-options)
directmedia=no
host=dynamic

[6001](natted-phone)
secret=alice-pw
callerid="Alice" <6001>
call-limit=2
mailbox=6001@default
qualify=yes

[6002](natted-phone)
secret=bob-pw
allow=g729
allow=g722
nat=yes
permit=192.168.1.0/255.255.255.0
deny=0.0.0.0/0.0.0.0
transport=udp,tls

[trunk]
type=peer
host=127.0.0.1
port=5999
insecure=port,invite
qualify=500
fromuser=office

[notype]
host=dynamic
"#;

const RTP_CONF: &str = "[general]\nrtpstart=12000\nrtpend=14000\nicesupport=yes\n";

/// An extensions.conf with the sample's constructs: [general], [globals],
/// includes, patterns, `same =>`, labels, hints, and what Sirius lacks.
const EXTENSIONS_CONF: &str = r#"[general]
static=yes
writeprotect=no
clearglobalvars=no
autofallthrough=no

[globals]
TRUNK=SIP/trunk

[from-office]
include => phones
include => outbound
include => parkedcalls
ignorepat => 9
exten => 600,1,Answer()
same => n,Echo()
same => n,Hangup()
exten => 6000,hint,SIP/6001&PJSIP/6002
exten => 6001,hint,SIP/6001,CustomPresence:6001

[phones]
exten => _600X,1,NoOp(call ${EXTEN})
exten => _600X,n,Dial(SIP/${EXTEN},20,tT)
exten => _600X,n,Goto(st-${DIALSTATUS})
exten => _600X,n(st-BUSY),Busy()
exten => _600X,n(st-NOANSWER),Playback(vm-nobodyavail)
exten => _600X,n,Hangup()
exten => 6002,1,Dial(PJSIP/6002&IAX2/remote/6002)
exten => 6003,1,Dial(DAHDI/g1/6003)
exten => 7000/6001,1,Hangup()

[outbound]
exten => _9NXXXXXX,1,Set(CALLERID(num)=6000)
exten => _9NXXXXXX,2,Dial(${TRUNK}/${EXTEN:1},30)
exten => _9NXXXXXX,5,Congestion()
exten => 8000,1,Goto(nowhere)
exten => 8001,1,VoiceMail(6001@default,u)
"#;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (n, t) in files {
        std::fs::write(dir.join(n), t).unwrap();
    }
}

fn converted() -> Converted {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        &[
            ("sip.conf", SIP_CONF),
            ("rtp.conf", RTP_CONF),
            ("extensions.conf", EXTENSIONS_CONF),
        ],
    );
    convert(d.path()).unwrap()
}

#[test]
fn sip_conf_becomes_sip_toml() {
    let c = converted();
    let sip: toml::Table = toml::from_str(c.sip.as_ref().unwrap()).unwrap();
    let g = &sip["general"];
    assert_eq!(g["udpbindaddr"].as_str(), Some("127.0.0.1:5080"));
    assert_eq!(g["tcpenable"].as_bool(), Some(true));
    assert_eq!(g["context"].as_str(), Some("public"));
    assert_eq!(g["realm"].as_str(), Some("office.example"));
    assert_eq!(g["rtpstart"].as_integer(), Some(12000));
    assert_eq!(g["rtpend"].as_integer(), Some(14000));
    let alice = &sip["peers"]["6001"];
    // From the templates (and the template's template).
    assert_eq!(alice["type"].as_str(), Some("friend"));
    assert_eq!(alice["host"].as_str(), Some("dynamic"));
    assert_eq!(alice["context"].as_str(), Some("from-office"));
    assert_eq!(alice["dtmfmode"].as_str(), Some("rfc2833"));
    assert_eq!(alice["secret"].as_str(), Some("alice-pw"));
    assert_eq!(alice["callerid"].as_str(), Some("\"Alice\" <6001>"));
    assert_eq!(alice["call-limit"].as_integer(), Some(2));
    assert_eq!(alice["qualify"].as_bool(), Some(true));
    // [general]'s codecs and nat are every peer's defaults.
    assert_eq!(alice["allow"], toml::Value::from(vec!["ulaw", "alaw"]));
    assert_eq!(
        alice["nat"],
        toml::Value::from(vec!["force_rport", "comedia"])
    );
    let bob = &sip["peers"]["6002"];
    assert_eq!(
        bob["allow"],
        toml::Value::from(vec!["ulaw", "alaw", "g722"])
    );
    assert_eq!(
        bob["permit"],
        toml::Value::from(vec!["192.168.1.0/255.255.255.0"])
    );
    assert_eq!(bob["deny"], toml::Value::from(vec!["0.0.0.0/0.0.0.0"]));
    assert_eq!(bob["transport"].as_str(), Some("udp"));
    let trunk = &sip["peers"]["trunk"];
    assert_eq!(trunk["type"].as_str(), Some("peer"));
    assert_eq!(trunk["port"].as_integer(), Some(5999));
    assert_eq!(trunk["qualify"].as_integer(), Some(500));
    assert_eq!(trunk["insecure"], toml::Value::from(vec!["port", "invite"]));
    assert_eq!(
        trunk["transport"].as_str(),
        Some("udp"),
        "[general]'s transport"
    );
    assert!(sip["peers"].get("notype").is_none());
    let regs = sip["register"].as_array().unwrap();
    assert_eq!(regs[0]["user"].as_str(), Some("34600000000"));
    assert_eq!(regs[0]["secret"].as_str(), Some("s3cret"));
    assert_eq!(regs[0]["host"].as_str(), Some("195.76.180.160"));
    assert_eq!(regs[0]["contact"].as_str(), Some("6000"));
    assert_eq!(regs[1]["transport"].as_str(), Some("tcp"));
    assert_eq!(regs[1]["authuser"].as_str(), Some("authname"));
    assert_eq!(regs[1]["port"].as_integer(), Some(5070));
    assert_eq!(regs[1]["expiry"].as_integer(), Some(600));
}

#[test]
fn what_is_left_out_is_listed_line_by_line() {
    let c = converted();
    let lines = c.report.lines();
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    for expected in [
        "sip.conf:4: [general] allowoverlap = no: not converted (Sirius has no such option)",
                "sip.conf:8: [general] srvlookup = yes: not converted",
        "sip.conf:19: [authentication]:",
        "sip.conf:27: [6001] directmedia = no: not converted (Sirius always relays the media itself",
        "sip.conf:39: [6002] codec g729: Sirius does not have it; left out",
        "sip.conf:44: [6002] transport tls: Sirius has UDP and TCP only",
        "sip.conf:52: [trunk] fromuser = office: not converted",
        "sip.conf:54: [notype] has no type",
        "sip.conf:17: register => tls://tlsuser:…@secure.example.net: transport tls: Sirius has UDP and TCP only; left out",
        "rtp.conf:4: rtp.conf [general] icesupport = yes: not converted",
        "extensions.conf:5: [general] autofallthrough = no: not converted",
        "extensions.conf:13: include => parkedcalls: extensions.conf has no such context; left out",
        "extensions.conf:14: ignorepat => 9: not converted",
        "extensions.conf:18: hint 6000: PJSIP/6002 becomes SIP/6002",
        "extensions.conf:19: hint 6001: presence 'CustomPresence:6001' dropped",
        "extensions.conf:23: Dial options 'tT': dropped",
        "extensions.conf:26: application Playback: Sirius does not have it",
        "extensions.conf:28: Dial PJSIP/6002: PJSIP/ becomes SIP/",
        "extensions.conf:28: Dial IAX2/remote/6002: Sirius has no IAX2 channels; target dropped",
        "extensions.conf:29: Dial DAHDI/g1/6003: Sirius has no DAHDI channels",
        "extensions.conf:30: exten => 7000/6001: caller-ID matching is not in Sirius",
        "extensions.conf:33: [outbound] _9NXXXXXX: priorities [1, 2, 5] become 1 to 3",
        "extensions.conf:36: [outbound] 8000 step 1: Goto to ",
        "extensions.conf:37: application VoiceMail: Sirius does not have it",
    ] {
        assert!(has(expected), "missing {expected:?} in:\n{}", lines.join("\n"));
    }
    // No password reaches the report, and nothing is reported twice.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("alice-pw") || l.contains("s3cret") || l.contains("tls-pw")),
        "{lines:#?}"
    );
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "{lines:#?}");
}

#[test]
fn extensions_conf_becomes_a_dialplan_sirius_loads() {
    let c = converted();
    let text = c.extensions.as_ref().unwrap();
    let dp =
        sirius_dialplan::dialplan::Dialplan::parse(Path::new("extensions.toml"), text).unwrap();
    assert_eq!(
        dp.globals.get("TRUNK").map(String::as_str),
        Some("SIP/trunk")
    );
    let t: toml::Table = toml::from_str(text).unwrap();
    let office = &t["from-office"];
    assert_eq!(
        office["include"],
        toml::Value::from(vec!["phones", "outbound"])
    );
    assert_eq!(
        office["600"],
        toml::Value::from(vec!["Answer()", "Echo()", "Hangup()"])
    );
    assert_eq!(office["hints"]["6000"].as_str(), Some("SIP/6001&SIP/6002"));
    assert_eq!(office["hints"]["6001"].as_str(), Some("SIP/6001"));
    assert_eq!(
        t["phones"]["_600X"],
        toml::Value::from(vec![
            "NoOp(call ${EXTEN})",
            "Dial(SIP/${EXTEN},20)",
            "Goto(st-${DIALSTATUS})",
            "st-BUSY: Busy()",
            "st-NOANSWER: NoOp(Asterisk: Playback(vm-nobodyavail))",
            "Hangup()",
        ])
    );
    assert_eq!(
        t["phones"]["6002"],
        toml::Value::from(vec!["Dial(SIP/6002)"])
    );
    assert_eq!(
        t["phones"]["6003"],
        toml::Value::from(vec!["NoOp(Asterisk: Dial(DAHDI/g1/6003))"])
    );
    assert!(t["phones"].get("7000/6001").is_none());
    assert_eq!(
        t["outbound"]["_9NXXXXXX"],
        toml::Value::from(vec![
            "Set(CALLERID(num)=6000)",
            "Dial(${TRUNK}/${EXTEN:1},30)",
            "Congestion()"
        ])
    );
    assert_eq!(
        t["outbound"]["8000"],
        toml::Value::from(vec!["NoOp(Asterisk: Goto(nowhere))"])
    );
}

#[test]
fn files_are_written_once_and_never_over_others() {
    let src = tempfile::tempdir().unwrap();
    write(
        src.path(),
        &[("extensions.conf", "[demo]\nexten => 600,1,Echo()\n")],
    );
    let out = tempfile::tempdir().unwrap();
    let (written, report) = import(src.path(), out.path()).unwrap();
    assert_eq!(written, [out.path().join("extensions.toml")]);
    assert!(report.lines().is_empty());
    let e = import(src.path(), out.path()).unwrap_err();
    assert!(matches!(e, ImportError::Exists(_)), "{e}");
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        convert(empty.path()),
        Err(ImportError::Nothing(_))
    ));
}
