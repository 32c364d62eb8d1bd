//! The registrar: digest, bindings and their store, the lockout's counting.

use super::*;
use crate::config::SipConfig;
use sirius_sip::auth::client::Challenge;
use sirius_sip::message::{parse_datagram, Limits};

fn setup() -> (General, HashMap<String, Peer>) {
    let cfg: SipConfig = sirius_conf::parse_toml(
        std::path::Path::new("sip.toml"),
        "[general]\nrealm = \"sirius\"\nauthfailures = 3\n[peers.alice]\nsecret = \"pw\"\n[peers.carol]\nsecret = \"pw2\"\n[peers.trunk]\nhost = \"127.0.0.1\"\n",
    )
    .unwrap();
    let peers = cfg
        .resolve_peers("sip.toml")
        .unwrap()
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    (cfg.general, peers)
}

fn register(user: &str, cseq: u32, auth: Option<String>, expires: u32) -> Message {
    let mut t = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK{cseq}\r\nFrom: <sip:{user}@127.0.0.1>;tag=f\r\n\
         To: <sip:{user}@127.0.0.1>\r\nCall-ID: reg-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:5062>\r\nExpires: {expires}\r\n"
    );
    if let Some(a) = auth {
        t.push_str(&format!("Authorization: {a}\r\n"));
    }
    t.push_str("Content-Length: 0\r\n\r\n");
    parse_datagram(t.as_bytes(), &Limits::default()).unwrap()
}

/// A registrar with the settings and peers of [`setup`], and one phone
/// at `src` sending it REGISTERs over UDP.
struct Phone {
    reg: Registrar,
    g: General,
    peers: HashMap<String, Peer>,
    src: SocketAddr,
}

impl Phone {
    fn new(src: &str, store: Option<std::path::PathBuf>) -> Phone {
        let (g, peers) = setup();
        Phone {
            reg: Registrar::new("sirius", store, 1000),
            g,
            peers,
            src: src.parse().unwrap(),
        }
    }

    /// One REGISTER at `now`.
    fn ask(&mut self, req: &Message, now: u64) -> Outcome {
        self.reg
            .handle(req, udp(self.src), now, &self.g, &self.peers)
    }

    /// The response to one REGISTER at time 1000.
    fn send(&mut self, req: &Message) -> Message {
        self.ask(req, 1000).response
    }

    /// REGISTER as `user` with CSeq `cseq` (challenged), then again with
    /// CSeq `cseq + 1` answering the challenge with `pw`: the second
    /// outcome.
    fn login(&mut self, user: &str, cseq: u32, pw: &str, expires: u32) -> Outcome {
        let ch = self.send(&register(user, cseq, None, expires));
        let auth = answer(&ch, user, pw);
        self.ask(&register(user, cseq + 1, Some(auth), expires), 1000)
    }
}

fn answer(ch: &Message, user: &str, pw: &str) -> String {
    let c = Challenge::from_response(ch).unwrap().remove(0);
    c.authorize(user, pw, "REGISTER", "sip:127.0.0.1", b"", "abcd", 1)
        .unwrap()
}

#[test]
fn challenge_register_persist_unregister() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registrations.json");
    let mut phone = Phone::new("127.0.0.1:5062", Some(store.clone()));
    let r = phone.send(&register("alice", 1, None, 300));
    assert_eq!(r.code(), Some(401));
    let auth = answer(&r, "alice", "pw");
    let out = phone.ask(&register("alice", 2, Some(auth), 300), 1000);
    let ok = out.response;
    assert_eq!(ok.code(), Some(200));
    assert_eq!(
        ok.headers.get(&HeaderName::Contact),
        Some("<sip:alice@127.0.0.1:5062>;expires=300")
    );
    assert!(out.changed.unwrap().1.is_some());
    // Survives a restart.
    phone.reg.flush();
    let again = Registrar::new("sirius", Some(store.clone()), 1100);
    assert_eq!(again.binding("alice").unwrap().addr, phone.src);
    // And is gone after expiry.
    let mut later = Registrar::new("sirius", Some(store.clone()), 1100);
    assert_eq!(later.expire(1300), vec!["alice".to_string()]);
    drop(later);
    assert!(Registrar::new("sirius", Some(store), 1300)
        .binding("alice")
        .is_none());
}

#[test]
fn unknown_users_get_the_same_answer_as_wrong_passwords_and_a_guessed_user_is_locked_out() {
    let mut phone = Phone::new("127.0.0.1:5099", None);
    let ch = phone.send(&register("alice", 1, None, 300));
    let wrong = phone.send(&register(
        "alice",
        2,
        Some(answer(&ch, "alice", "nope")),
        300,
    ));
    let ch2 = phone.send(&register("mallory", 1, None, 300));
    let unknown = phone.send(&register(
        "mallory",
        2,
        Some(answer(&ch2, "mallory", "x")),
        300,
    ));
    for r in [&wrong, &unknown, &ch2] {
        assert_eq!(r.code(), Some(401));
        let c = Challenge::from_response(r).unwrap().remove(0);
        assert_eq!(
            (c.realm.as_str(), c.stale, c.qop.clone()),
            ("sirius", false, vec!["auth".to_string()])
        );
    }
    assert!(phone.reg.binding("alice").is_none() && phone.reg.binding("mallory").is_none());
    // A static peer cannot register either (same answer).
    let t = phone.send(&register("trunk", 1, Some(answer(&ch, "trunk", "x")), 300));
    assert_eq!(t.code(), Some(401));
    // Alice has failed once (above); two more wrong passwords follow.
    let ip = phone.src.ip();
    assert_eq!(phone.reg.lockout().locked(ip, "alice", 1000), None);
    for cseq in [3, 5] {
        let ch = phone.send(&register("alice", cseq, None, 300));
        let r = phone.send(&register(
            "alice",
            cseq + 1,
            Some(answer(&ch, "alice", "nope")),
            300,
        ));
        assert_eq!(r.code(), Some(401));
    }
    // Three wrong passwords for alice from this address (authfailures =
    // 3): her right one is now refused there with a 403 ...
    assert_eq!(phone.reg.lockout().locked(ip, "alice", 1000), Some(300));
    assert_eq!(
        phone.login("alice", 7, "pw", 300).response.code(),
        Some(403)
    );
    // ... while carol, behind the same address, registers.
    assert_eq!(
        phone.login("carol", 1, "pw2", 300).response.code(),
        Some(200)
    );
    // A request without credentials is challenged as ever.
    assert_eq!(
        phone.send(&register("alice", 9, None, 300)).code(),
        Some(401)
    );
    // The lock ends on time.
    let ch = phone.ask(&register("alice", 10, None, 300), 1301).response;
    let ok = phone.ask(
        &register("alice", 11, Some(answer(&ch, "alice", "pw")), 300),
        1301,
    );
    assert_eq!(ok.response.code(), Some(200));
}

#[test]
fn an_answer_to_another_address_s_challenge_is_not_counted() {
    let mut phone = Phone::new("192.0.2.1:5060", None);
    let ch = phone.send(&register("alice", 1, None, 300));
    let wrong = answer(&ch, "alice", "nope");
    // The same credentials, from another address: challenged again,
    // never counted (a spoofer cannot lock alice out).
    phone.src = "192.0.2.2:5060".parse().unwrap();
    for cseq in 2..10 {
        let r = phone.send(&register("alice", cseq, Some(wrong.clone()), 300));
        assert_eq!(r.code(), Some(401));
    }
    assert!(phone.reg.lockout().banned(1000).is_empty());
    assert_eq!(phone.reg.lockout().len(), 0);
    // Nor is a right password through another address's nonce accepted.
    let right = answer(&ch, "alice", "pw");
    let r = phone.send(&register("alice", 11, Some(right), 300));
    assert_eq!(r.code(), Some(401));
    assert!(phone.reg.binding("alice").is_none());
}

#[test]
fn expiry_rules() {
    let mut phone = Phone::new("127.0.0.1:5062", None);
    let brief = phone.login("alice", 1, "pw", 30).response;
    assert_eq!(
        (brief.code(), brief.headers.get(&HeaderName::MinExpires)),
        (Some(423), Some("60"))
    );
    let ok = phone.login("alice", 3, "pw", 99999).response;
    assert_eq!(
        ok.headers.get(&HeaderName::Expires),
        Some("3600"),
        "capped at maxexpiry"
    );
    let gone = phone.login("alice", 5, "pw", 0);
    assert_eq!(gone.response.code(), Some(200));
    assert_eq!(gone.changed, Some(("alice".into(), None)));
    assert!(phone.reg.binding("alice").is_none());
}

/// `max_contacts`: a peer registered from two phones keeps both, newest
/// first, each answered in the 200; a third replaces the oldest; one
/// phone's `Expires: 0` removes only its contact; each contact expires on
/// its own; `Contact: *` removes them all.
#[test]
fn several_contacts_per_peer() {
    let cfg: SipConfig = sirius_conf::parse_toml(
        std::path::Path::new("sip.toml"),
        "[peers.line]\nmax-contacts = 2\n",
    )
    .unwrap();
    let g = cfg.general.clone();
    let peers: HashMap<String, Peer> = cfg
        .resolve_peers("sip.toml")
        .unwrap()
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let mut reg = Registrar::new("sirius", None, 1000);
    let from = |reg: &mut Registrar, port: u16, expires: u32, now: u64| {
        let t = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{port}{now}\r\n\
             From: <sip:line@127.0.0.1>;tag=f\r\nTo: <sip:line@127.0.0.1>\r\nCall-ID: reg-{port}\r\n\
             CSeq: {now} REGISTER\r\nContact: <sip:line@127.0.0.1:{port}>\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
        );
        let m = parse_datagram(t.as_bytes(), &Limits::default()).unwrap();
        let src: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        reg.handle(&m, udp(src), now, &g, &peers)
    };
    from(&mut reg, 5001, 300, 1000);
    let out = from(&mut reg, 5002, 120, 1001);
    assert_eq!(out.response.code(), Some(200));
    let contacts: Vec<&str> = out.response.headers.values(&HeaderName::Contact).collect();
    assert_eq!(
        contacts,
        [
            "<sip:line@127.0.0.1:5002>;expires=120",
            "<sip:line@127.0.0.1:5001>;expires=299"
        ]
    );
    assert_eq!(
        out.changed.unwrap().1.unwrap().addr.port(),
        5002,
        "the newest"
    );
    // A refresh moves its contact to the front; a third phone replaces the
    // oldest.
    from(&mut reg, 5001, 300, 1002);
    from(&mut reg, 5003, 300, 1003);
    let ports =
        |r: &Registrar| -> Vec<u16> { r.contacts("line").iter().map(|b| b.addr.port()).collect() };
    assert_eq!(ports(&reg), [5003, 5001]);
    // One phone leaves: the other stays.
    let out = from(&mut reg, 5003, 0, 1004);
    assert_eq!(ports(&reg), [5001]);
    assert_eq!(out.changed.unwrap().1.unwrap().addr.port(), 5001);
    // Expiry contact by contact: the peer is gone with its last.
    from(&mut reg, 5004, 60, 1005);
    assert!(reg.expire(1100).is_empty(), "5004 expired, 5001 stays");
    assert_eq!(ports(&reg), [5001]);
    assert_eq!(reg.expire(2000), vec!["line".to_string()]);
    assert!(reg.binding("line").is_none());
}

/// With one contact (the default), `Expires: 0` ends the registration
/// whatever its Contact says, as chan_sip's single binding; a contact
/// written differently (case, parameters) is the same contact.
#[test]
fn one_contact_unregisters_as_chan_sip_did() {
    let cfg: SipConfig = sirius_conf::parse_toml(
        std::path::Path::new("sip.toml"),
        "[peers.line]\nmax-contacts = 2\n[peers.solo]\n",
    )
    .unwrap();
    let g = cfg.general.clone();
    let peers: HashMap<String, Peer> = cfg
        .resolve_peers("sip.toml")
        .unwrap()
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let mut reg = Registrar::new("sirius", None, 1000);
    let mut send = |user: &str, contact: &str, expires: u32, n: u32| {
        let t = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKone{n}\r\n\
             From: <sip:{user}@127.0.0.1>;tag=f\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: one-{user}\r\n\
             CSeq: {n} REGISTER\r\nContact: <{contact}>\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
        );
        let m = parse_datagram(t.as_bytes(), &Limits::default()).unwrap();
        let src: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        reg.handle(&m, udp(src), 1000, &g, &peers)
    };
    assert!(send("solo", "sip:solo@127.0.0.1:5070", 300, 1).refreshed);
    let out = send("solo", "sip:other@10.0.0.1", 0, 2);
    assert!(!out.refreshed);
    assert!(out.changed.unwrap().1.is_none(), "unregistered");
    send("line", "sip:line@127.0.0.1:5070;transport=udp", 300, 3);
    send("line", "sip:line@127.0.0.1:5071", 300, 4);
    let out = send("line", "sip:line@127.0.0.1:5070;ob", 0, 5);
    assert!(!out.refreshed, "a removal refreshes nothing");
    let left = out.changed.unwrap().1.unwrap();
    assert_eq!(left.contact, "sip:line@127.0.0.1:5071");
}

/// A request over UDP from `src` to the registrar's 5060.
fn udp(src: SocketAddr) -> Arrival {
    Arrival {
        source: src,
        local: "127.0.0.1:5060".parse().unwrap(),
        transport: Transport::Udp,
    }
}
