//! A dynamic peer's registrations move its device state: hints and their
//! watchers follow a phone that registers and one that leaves, not only its
//! calls.

use super::*;
use sirius_abi::DeviceState;
use sirius_sip::auth::client::Challenge;

const CAROL: &str = "127.0.0.1:5070";

const TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:5060"

[peers.carol]
host = "dynamic"
secret = "carol-secret"
"#;

/// A REGISTER from carol with `expires`, answering `challenge` (nonce
/// count `nc`) when given.
fn register(cseq: u32, expires: u32, challenge: Option<(&Challenge, u32)>) -> Message {
    let mut m = Message::request(Method::Register, "sip:127.0.0.1:5060");
    m.push(
        HeaderName::Via,
        format!("SIP/2.0/UDP {CAROL};branch=z9hG4bK-reg-{cseq}"),
    );
    m.push(HeaderName::From, "<sip:carol@127.0.0.1>;tag=c1");
    m.push(HeaderName::To, "<sip:carol@127.0.0.1>");
    m.push(HeaderName::CallId, "reg-carol");
    m.push(HeaderName::CSeq, format!("{cseq} REGISTER"));
    m.push(HeaderName::Contact, format!("<sip:carol@{CAROL}>"));
    m.push(HeaderName::Expires, expires.to_string());
    if let Some((c, nc)) = challenge {
        let value = c
            .authorize(
                "carol",
                "carol-secret",
                "REGISTER",
                "sip:127.0.0.1:5060",
                b"",
                "0a4f",
                nc,
            )
            .unwrap();
        m.push(c.answer_header(), value);
    }
    m.set_body("", Vec::new());
    m
}

#[test]
fn registering_and_leaving_push_the_peers_device_state() {
    let mut h = Harness::new(TOML);
    h.recv(&register(1, 300, None), CAROL);
    let challenge = h.expect_one(CAROL);
    assert_eq!(challenge.code(), Some(401));
    assert!(h.device_states().is_empty(), "a challenge changes nothing");
    let c = Challenge::from_response(&challenge).unwrap().remove(0);
    h.recv(&register(2, 300, Some((&c, 1))), CAROL);
    assert_eq!(h.expect_one(CAROL).code(), Some(200));
    assert_eq!(
        h.device_states(),
        [("SIP/carol".to_string(), DeviceState::NotInUse)]
    );
    h.recv(&register(3, 0, Some((&c, 2))), CAROL);
    assert_eq!(h.expect_one(CAROL).code(), Some(200));
    assert_eq!(
        h.device_states(),
        [("SIP/carol".to_string(), DeviceState::Unavailable)]
    );
}

/// Unsolicited MWI follows registrations and reloads: carol (dynamic, with
/// a mailbox) is told nothing while unregistered, her counts right after
/// the 200 to her REGISTER; a reload that changes her `mailbox` ends the old
/// watch and makes a new one (and tells her the new counts); one that
/// removes it ends the watch.
#[test]
fn a_registering_phone_learns_its_messages_and_reloads_move_the_watch() {
    use crate::endpoint::MwiTarget;
    let toml = format!("{TOML}mailbox = \"1234\"\n");
    let shared = shared(&toml);
    crate::driver::reconcile(&shared, Instant::now());
    let mut h = Harness::on_env(shared, crate::shards::Home::SINGLE, |env| {
        env.mailboxes
            .insert("1234".into(), sirius_sip::mwi::Counts { new: 1, old: 0 });
        env.mailboxes.insert(
            "99@sales".into(),
            sirius_sip::mwi::Counts { new: 0, old: 7 },
        );
    });
    h.collect();
    assert!(h.sent().is_empty(), "not registered: nowhere to send");
    assert_eq!(h.env.mwi_watches.len(), 1);
    h.recv(&register(1, 300, None), CAROL);
    let c = Challenge::from_response(&h.expect_one(CAROL))
        .unwrap()
        .remove(0);
    h.recv(&register(2, 300, Some((&c, 1))), CAROL);
    let sent = h.sent();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[0].1.code(), Some(200), "the 200 first");
    let n = &sent[1].1;
    assert_eq!(n.method(), Some(&Method::Notify));
    assert_eq!(n.request_uri(), Some(format!("sip:carol@{CAROL}").as_str()));
    assert!(String::from_utf8_lossy(&n.body).contains("Voice-Message: 1/0 (0/0)"));

    // Reload: another mailbox.
    h.reload(&format!("{TOML}mailbox = \"99@sales\"\n"));
    assert_eq!(h.env.mwi_watches.len(), 1, "the old watch ended");
    assert!(matches!(
        h.env.mwi_watches.values().next(),
        Some(MwiTarget::Peer(p, _)) if p == "carol"
    ));
    let n = h.expect_one(CAROL);
    assert!(String::from_utf8_lossy(&n.body).contains("Voice-Message: 0/7 (0/0)"));
    // Reload: no mailbox.
    h.reload(TOML);
    assert!(h.env.mwi_watches.is_empty());
    assert!(h.ep.shared.mwi.counts("carol").is_none());
}

/// With `max-contacts`, every phone registered as the peer has a light:
/// the counts go to each contact (not only the newest).
#[test]
fn every_contact_of_a_peer_gets_its_messages() {
    const CAROL2: &str = "127.0.0.1:5072";
    let toml = format!("{TOML}mailbox = \"1234\"\nmax-contacts = 2\n");
    let shared = shared(&toml);
    crate::driver::reconcile(&shared, Instant::now());
    let mut h = Harness::on_env(shared, crate::shards::Home::SINGLE, |env| {
        env.mailboxes
            .insert("1234".into(), sirius_sip::mwi::Counts { new: 3, old: 1 });
    });
    h.collect();
    h.recv(&register(1, 300, None), CAROL);
    let c = Challenge::from_response(&h.expect_one(CAROL))
        .unwrap()
        .remove(0);
    h.recv(&register(2, 300, Some((&c, 1))), CAROL);
    assert_eq!(h.sent().len(), 2, "the 200 and one NOTIFY");
    // The second phone: its own Contact, from its own address.
    let mut second = register(3, 300, Some((&c, 2)));
    second
        .headers
        .set(HeaderName::Contact, format!("<sip:carol@{CAROL2}>"));
    second.headers.set(
        HeaderName::Via,
        format!("SIP/2.0/UDP {CAROL2};branch=z9hG4bK-reg-3"),
    );
    h.recv(&second, CAROL2);
    let notified: Vec<SocketAddr> = h
        .sent()
        .into_iter()
        .filter(|(_, m)| m.method() == Some(&Method::Notify))
        .inspect(|(_, m)| {
            assert!(String::from_utf8_lossy(&m.body).contains("Voice-Message: 3/1 (0/0)"))
        })
        .map(|(to, _)| to)
        .collect();
    assert_eq!(notified.len(), 2, "{notified:?}");
    assert!(notified.contains(&addr(CAROL)) && notified.contains(&addr(CAROL2)));
}
