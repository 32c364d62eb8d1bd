//! The brute-force lockout (issue #16 item 2): per (address, username), a
//! locked attempt answered 403, only answers to our own challenges counted,
//! `sip show banned` / `sip unban`.

use sirius_blackbox::{free_udp_port, sipp_register, Daemon};
use sirius_sip::auth::client::Challenge;
use sirius_sip::message::{parse_datagram, Limits, Message};
use std::net::UdpSocket;
use std::time::Duration;

const SIP_TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:0"
realm = "sirius"
authfailures = 3
authblocktime = 300

[peers.alice]
host = "dynamic"
secret = "alice-secret"

[peers.bob]
host = "dynamic"
secret = "bob-secret"
"#;

#[test]
fn a_locked_user_gets_403_and_its_neighbour_at_the_same_address_still_registers() {
    let d = Daemon::with_chan_sip(&[("sip.toml", SIP_TOML)]);
    // Three wrong passwords for bob from 127.0.0.1, each answered 401.
    let (code, out) = sipp_register(
        &d,
        "register_rejected.xml",
        "bob",
        "guess",
        free_udp_port(),
        3,
    );
    assert_eq!(code, 0, "{out}");
    // Now even bob's right password is refused there, with a 403.
    let (code, out) = sipp_register(
        &d,
        "register_locked.xml",
        "bob",
        "bob-secret",
        free_udp_port(),
        1,
    );
    assert_eq!(code, 0, "a locked pair gets 403:\n{out}\n{}", d.messages());
    // Alice, behind the same address, is not affected.
    let (code, out) = sipp_register(
        &d,
        "register_accepted.xml",
        "alice",
        "alice-secret",
        free_udp_port(),
        1,
    );
    assert_eq!(code, 0, "the neighbour registers:\n{out}\n{}", d.messages());
    let banned = d.rx("sip show banned").ok();
    let row = banned
        .lines()
        .find(|l| l.starts_with("127.0.0.1 "))
        .unwrap_or_else(|| panic!("{banned}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[..3], ["127.0.0.1", "bob", "3"], "{banned}");
    let left: u64 = cols[3].parse().unwrap();
    assert!((290..=300).contains(&left), "{banned}");
    assert!(
        banned.trim_end().ends_with("1 lockout in force."),
        "{banned}"
    );
    let log = d.messages();
    assert!(
        log.lines().any(
            |l| l.contains(" chan_sip: 'bob' refused from 127.0.0.1 for ")
                && l.ends_with(" s: 3 failed authentications in 60 s")
        ),
        "{log}"
    );
    assert!(
        log.contains("Refusing 'bob' from '127.0.0.1:"),
        "the refusal is logged:\n{log}"
    );
    // Lifted by hand: bob registers again.
    assert_eq!(
        d.rx("sip unban 127.0.0.1").ok().trim_end(),
        "Lifted 1 lockout of 127.0.0.1"
    );
    assert!(d
        .rx("sip show banned")
        .ok()
        .trim_end()
        .ends_with("0 lockouts in force."));
    let (code, out) = sipp_register(
        &d,
        "register_accepted.xml",
        "bob",
        "bob-secret",
        free_udp_port(),
        1,
    );
    assert_eq!(code, 0, "unbanned:\n{out}");
    assert_eq!(
        d.rx("sip unban 127.0.0.1").ok().trim_end(),
        "127.0.0.1 was not locked out"
    );
    assert!(d
        .rx("sip unban bogus")
        .failed()
        .contains("not an IP address"));
}

/// One REGISTER for bob from `from`, with `auth` as its Authorization;
/// the response.
fn exchange(d: &Daemon, from: &UdpSocket, cseq: u32, auth: Option<&str>) -> Message {
    let local = from.local_addr().unwrap();
    let mut req = format!(
        "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-lock-{cseq}-{lp}\r\n\
         From: <sip:bob@127.0.0.1>;tag=lock{lp}\r\n\
         To: <sip:bob@127.0.0.1>\r\n\
         Call-ID: lockout-{lp}@test\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:bob@{local}>\r\n\
         Max-Forwards: 70\r\n\
         Expires: 300\r\n",
        port = d.sip_port(),
        lp = local.port(),
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    from.send_to(req.as_bytes(), ("127.0.0.1", d.sip_port()))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = from.recv(&mut buf).expect("an answer within 5 s");
    parse_datagram(&buf[..n], &Limits::default()).unwrap()
}

#[test]
fn only_answers_to_challenges_sent_to_the_same_address_count() {
    let d = Daemon::with_chan_sip(&[("sip.toml", SIP_TOML)]);
    let socket = |ip: &str| {
        let s = UdpSocket::bind((ip, 0)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    // 127.0.0.2 is challenged; its nonce, answered with a wrong password,
    // is then sent from 127.0.0.1 (as a spoofer would, having seen it):
    // challenged again each time, never counted.
    let victim = socket("127.0.0.2");
    let challenge = exchange(&d, &victim, 1, None);
    assert_eq!(challenge.code(), Some(401));
    let c = Challenge::from_response(&challenge).unwrap().remove(0);
    let wrong = c
        .authorize(
            "bob",
            "guess",
            "REGISTER",
            &format!("sip:127.0.0.1:{}", d.sip_port()),
            b"",
            "c0ffee",
            1,
        )
        .unwrap();
    let elsewhere = socket("127.0.0.1");
    for cseq in 2..8 {
        let r = exchange(&d, &elsewhere, cseq, Some(&wrong));
        assert_eq!(r.code(), Some(401), "{r:?}");
    }
    let banned = d.rx("sip show banned").ok();
    assert!(
        banned.trim_end().ends_with("0 lockouts in force."),
        "{banned}"
    );
    // The same answer from the address it was sent to counts: the third
    // locks bob there, the fourth is refused.
    for cseq in 2..5 {
        assert_eq!(exchange(&d, &victim, cseq, Some(&wrong)).code(), Some(401));
    }
    assert_eq!(exchange(&d, &victim, 5, Some(&wrong)).code(), Some(403));
    let banned = d.rx("sip show banned").ok();
    assert!(
        banned
            .lines()
            .any(|l| l.starts_with("127.0.0.2 ") && l.contains(" bob ")),
        "{banned}"
    );
    assert!(
        banned.trim_end().ends_with("1 lockout in force."),
        "{banned}"
    );
}
