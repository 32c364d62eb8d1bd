//! sip.toml: parsing, peers, and the errors that name file and line.

use super::*;

#[test]
fn parses_peers_and_reports_bad_values_with_their_peer() {
    let text = r#"
[general]
udpbindaddr = "127.0.0.1:5070"
realm = "example"

[peers.alice]
host = "dynamic"
secret = "s3cret"
context = "demo"
call-limit = 2
qualify = true
allow = ["alaw", "ulaw"]
nat = ["force_rport", "comedia"]

[peers.trunk]
type = "peer"
host = "127.0.0.1"
port = 5080
qualify = 500
insecure = ["invite"]
"#;
    let cfg: SipConfig = sirius_conf::parse_toml(Path::new("sip.toml"), text).unwrap();
    let peers = cfg.resolve_peers("sip.toml").unwrap();
    let alice = &peers[0];
    assert!(alice.dynamic && alice.force_rport && alice.comedia);
    assert_eq!(alice.codecs, vec![Codec::PCMA, Codec::PCMU]);
    assert_eq!(alice.qualify_maxms, Some(2000));
    assert_eq!(
        alice.ha1.as_deref(),
        Some(sirius_sip::auth::ha1("alice", "example", "s3cret").as_str())
    );
    let trunk = &peers[1];
    assert_eq!(
        (trunk.addr, trunk.qualify_maxms, trunk.insecure_invite),
        (Some("127.0.0.1:5080".parse().unwrap()), Some(500), true)
    );
    assert_eq!(trunk.codecs, DEFAULT_CODECS.to_vec());
    assert_eq!(trunk.transports, vec![Transport::Udp]);

    let named = text.replace(
        "host = \"127.0.0.1\"",
        "host = \"localhost\"\ntransport = \"tcp,udp\"",
    );
    let cfg: SipConfig = sirius_conf::parse_toml(Path::new("sip.toml"), &named).unwrap();
    let trunk = cfg.resolve_peers("sip.toml").unwrap().remove(1);
    assert!(trunk
        .addr
        .is_some_and(|a| a.ip().is_loopback() && a.port() == 5080));
    assert_eq!(trunk.transports, vec![Transport::Tcp, Transport::Udp]);
    let sctp = named.replace("tcp,udp", "sctp");
    let cfg: SipConfig = sirius_conf::parse_toml(Path::new("sip.toml"), &sctp).unwrap();
    assert_eq!(
        cfg.resolve_peers("sip.toml").unwrap_err().to_string(),
        "sip.toml: peer 'trunk': unknown transport 'sctp' (udp or tcp)"
    );

    let bad = text.replace("allow = [\"alaw\", \"ulaw\"]", "allow = [\"g7231x\"]");
    let cfg: SipConfig = sirius_conf::parse_toml(Path::new("sip.toml"), &bad).unwrap();
    assert_eq!(
        cfg.resolve_peers("sip.toml").unwrap_err().to_string(),
        "sip.toml: peer 'alice': unknown codec 'g7231x' in allow"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sip.toml");
    std::fs::write(&file, "[general]\nrtpstart = 20000\nrtpend = 10000\n").unwrap();
    let e = SipConfig::load(&file).unwrap_err().to_string();
    assert!(
        e.ends_with("sip.toml: [general]: rtpstart 20000 must be below rtpend 10000"),
        "{e}"
    );
    let typo = text.replace("call-limit", "calllimit");
    let e = sirius_conf::parse_toml::<SipConfig>(Path::new("sip.toml"), &typo)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("sip.toml:10: unknown field `calllimit`"),
        "{e}"
    );
}

/// Subscriptions and message waiting: a peer's keys win over `[general]`'s,
/// a peer without `subscribecontext` uses its context, and a mailbox that
/// is not `box[@context]` is refused naming the peer.
#[test]
fn subscription_and_mailbox_keys() {
    let text = r#"
[general]
subminexpiry = 30
vmexten = "*97"

[peers.alice]
context = "office"
mailbox = "1234@default,1235"

[peers.bob]
allowsubscribe = false
subscribecontext = "blf"
vmexten = "8500"
"#;
    let cfg: SipConfig = sirius_conf::parse_toml(Path::new("sip.toml"), text).unwrap();
    let bounds = cfg.general.subscription_bounds();
    assert_eq!((bounds.min, bounds.max, bounds.default), (30, 3600, 120));
    let peers = cfg.resolve_peers("sip.toml").unwrap();
    let (alice, bob) = (&peers[0], &peers[1]);
    assert!(alice.allowsubscribe && !bob.allowsubscribe);
    assert_eq!(alice.subscribecontext, "office");
    assert_eq!(bob.subscribecontext, "blf");
    assert_eq!(alice.mailbox.as_deref(), Some("1234@default,1235"));
    assert_eq!(
        (alice.vmexten.as_str(), bob.vmexten.as_str()),
        ("*97", "8500")
    );
    for (bad, says) in [
        ("mailbox = \"12 34\"", "mailbox '12 34'"),
        ("mailbox = \"1234,1234@default\"", "names a mailbox twice"),
        ("vmexten = \"\"", "vmexten '' is not"),
        ("vmexten = \"a b\"", "vmexten 'a b' is not"),
    ] {
        let text = format!("[peers.carol]\n{bad}\n");
        let cfg: SipConfig = sirius_conf::parse_toml(Path::new("sip.toml"), &text).unwrap();
        let e = cfg.resolve_peers("sip.toml").unwrap_err().to_string();
        assert!(e.contains("carol") && e.contains(says), "{e}");
    }
}
