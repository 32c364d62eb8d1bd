//! RFC 4475 torture messages: every valid one parses and is handled, every
//! invalid one is refused with the right code or dropped, nothing panics.
#![allow(clippy::disallowed_methods)] // a simulated clock starts from one real Instant

use sirius_sip::message::{
    build, parse_datagram, HeaderName, Limits, Message, Method, NameAddr, StartLine, Uri,
};
use sirius_sip::transaction::{Config, Event, TransactionLayer, Transport};
use sirius_sip::validate::{inspect_request, inspect_response, Capabilities};
use std::path::Path;
use std::time::Instant;

/// What must happen to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A request that is accepted and handed to the transaction user.
    Handled,
    /// A request answered with this status before any processing.
    Answered(u16),
    /// Not a message: answered 400 when it can be addressed, else dropped.
    Unparseable,
    /// A response passed on (it may then match no transaction).
    ResponseOk,
    /// A response dropped as malformed.
    ResponseDropped,
}

use Expect::*;

const CORPUS: &[(&str, &str, Expect)] = &[
    // 3.1.1 Valid messages
    ("3.1.1.1", "wsinv", Handled),
    ("3.1.1.2", "intmeth", Answered(501)),
    ("3.1.1.3", "esc01", Handled),
    ("3.1.1.4", "escnull", Handled),
    ("3.1.1.5", "esc02", Answered(501)),
    ("3.1.1.6", "lwsdisp", Handled),
    ("3.1.1.7", "longreq", Handled),
    ("3.1.1.8", "dblreq", Handled),
    ("3.1.1.9", "semiuri", Handled),
    ("3.1.1.10", "transports", Handled),
    ("3.1.1.11", "mpart01", Handled),
    ("3.1.1.12", "unreason", ResponseOk),
    ("3.1.1.13", "noreason", ResponseOk),
    // 3.1.2 Invalid messages
    ("3.1.2.1", "badinv01", Answered(400)),
    ("3.1.2.2", "clerr", Unparseable),
    ("3.1.2.3", "ncl", Unparseable),
    ("3.1.2.4", "scalar02", Answered(400)),
    ("3.1.2.5", "scalarlg", ResponseDropped),
    ("3.1.2.6", "quotbal", Answered(400)),
    ("3.1.2.7", "ltgtruri", Unparseable),
    ("3.1.2.8", "lwsruri", Unparseable),
    ("3.1.2.9", "lwsstart", Unparseable),
    ("3.1.2.10", "trws", Unparseable),
    ("3.1.2.11", "escruri", Answered(400)),
    ("3.1.2.12", "baddate", Handled),
    ("3.1.2.13", "regbadct", Handled),
    ("3.1.2.14", "badaspec", Answered(400)),
    ("3.1.2.15", "baddn", Answered(400)),
    ("3.1.2.16", "badvers", Answered(505)),
    ("3.1.2.17", "mismatch01", Answered(400)),
    ("3.1.2.18", "mismatch02", Answered(501)),
    ("3.1.2.19", "bigcode", Unparseable),
    // 3.2 Transaction layer semantics
    ("3.2.1", "badbranch", Handled),
    // 3.3 Application layer semantics
    ("3.3.1", "insuf", Answered(400)),
    ("3.3.2", "unkscm", Answered(416)),
    ("3.3.3", "novelsc", Answered(416)),
    ("3.3.4", "unksm2", Handled),
    ("3.3.5", "bext01", Answered(420)),
    ("3.3.6", "invut", Answered(415)),
    ("3.3.7", "regaut01", Handled),
    ("3.3.8", "multi01", Answered(400)),
    ("3.3.9", "mcl01", Answered(400)),
    ("3.3.10", "bcast", ResponseOk),
    ("3.3.11", "zeromf", Handled),
    ("3.3.12", "cparam01", Handled),
    ("3.3.13", "cparam02", Handled),
    ("3.3.14", "regescrt", Handled),
    ("3.3.15", "sdp01", Answered(406)),
    // 3.4 Backward compatibility
    ("3.4.1", "inv2543", Handled),
];

fn read(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/test-data/rfc4475")
        .join(format!("{name}.dat"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn parse(name: &str) -> Message {
    parse_datagram(&read(name), &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_message_has_its_expected_outcome() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test-data/rfc4475");
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "dat")
        })
        .count();
    assert_eq!(
        on_disk,
        CORPUS.len(),
        "every file has an expectation and vice versa"
    );
    let caps = Capabilities::default();
    let peer = "192.0.2.1:5060".parse().unwrap();
    for &(section, name, expect) in CORPUS {
        let data = read(name);
        let parsed = parse_datagram(&data, &Limits::default());
        let got = match &parsed {
            Err(e) => {
                assert_eq!(
                    e.status().0,
                    400,
                    "{section} {name}: parse errors are answered 400"
                );
                Unparseable
            }
            Ok(m) if m.is_request() => match inspect_request(m, &caps) {
                Ok(()) => {
                    // Handled: the transaction layer takes it and hands it up.
                    let mut layer = TransactionLayer::new(Config::default());
                    layer.on_message(Instant::now(), m.clone(), peer, Transport::Udp);
                    let ev = layer.poll_event();
                    assert!(
                        matches!(ev, Some(Event::Request { .. })),
                        "{section} {name}: not handed to the TU: {ev:?}"
                    );
                    Handled
                }
                Err(r) => {
                    // The rejection is a well-formed response.
                    let mut resp = build::response(m, r.code, &r.reason, Some(peer));
                    for (n, v) in &r.headers {
                        resp.push(n.clone(), v);
                    }
                    let again = parse_datagram(&resp.to_bytes(), &Limits::default()).unwrap();
                    assert_eq!(again.code(), Some(r.code));
                    Answered(r.code)
                }
            },
            Ok(m) => match inspect_response(m) {
                Ok(()) => ResponseOk,
                Err(_) => ResponseDropped,
            },
        };
        assert_eq!(got, expect, "RFC 4475 {section} ({name})");
    }
}

#[test]
fn valid_messages_read_as_the_rfc_means() {
    // 3.1.1.1: SEMI, EQUAL, SLASH with LWS; folding; compact forms; leading zeros.
    let m = parse("wsinv");
    assert_eq!(m.to_header().unwrap().tag(), Some("1918181833n"));
    assert_eq!(m.from_header().unwrap().tag(), Some("98asjd8"));
    assert_eq!(
        m.from_header().unwrap().display.as_deref(),
        Some(r#"J Rosenberg \\\""#)
    );
    assert_eq!(m.headers.get(&HeaderName::MaxForwards), Some("0068"));
    assert_eq!(m.cseq().unwrap().seq, 9);
    let vias: Vec<_> = m
        .headers
        .values(&HeaderName::Via)
        .map(|v| sirius_sip::message::Via::parse(v).unwrap())
        .collect();
    let got: Vec<(String, String, Option<String>)> = vias
        .iter()
        .map(|v| {
            (
                v.transport.clone(),
                v.host.to_string(),
                v.branch().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("UDP".into(), "192.0.2.2".into(), Some("390skdjuw".into())),
            (
                "TCP".into(),
                "spindle.example.com".into(),
                Some("z9hG4bK9ikj8".into())
            ),
            (
                "UDP".into(),
                "192.168.255.111".into(),
                Some("z9hG4bK30239".into())
            ),
        ]
    );
    let contact = NameAddr::parse(m.headers.get(&HeaderName::Contact).unwrap()).unwrap();
    assert_eq!(
        (contact.params.get("newparam"), contact.params.get("q")),
        (Some("newvalue"), Some("0.33"))
    );
    assert!(contact.params.has("secondparam"));
    assert_eq!(m.headers.get(&HeaderName::Subject), Some(""));
    assert_eq!(
        m.headers.get(&HeaderName::Other("NewFangledHeader".into())),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(
        m.headers
            .get(&HeaderName::Other("UnknownHeaderWithUnusualValue".into())),
        Some(";;,,;;,;")
    );
    assert_eq!(m.body.len(), 150);

    // 3.1.1.2: methods are case-sensitive tokens; CSeq repeats the method.
    let m = parse("intmeth");
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method(), Some(&Method::Extension(method.into())));
    assert_eq!(m.cseq().unwrap().method, Method::Extension(method.into()));

    // 3.1.1.3 / 3.1.1.4: escapes stay escapes, and are written back as such.
    let m = parse("esc01");
    assert_eq!(
        Uri::parse(m.request_uri().unwrap())
            .unwrap()
            .host
            .to_string(),
        "example.net"
    );
    assert!(m
        .to_string()
        .starts_with("INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n"));
    let built = parse("escnull").to_bytes();
    assert!(
        !built.contains(&0u8),
        "an escaped NUL never becomes a raw one"
    );

    // 3.1.1.5: RE%47IST%45R is not REGISTER, and C%6Fntact is not Contact.
    let m = parse("esc02");
    assert_eq!(m.method(), Some(&Method::Extension("RE%47IST%45R".into())));
    assert_eq!(m.headers.count(&HeaderName::Contact), 2);

    // 3.1.1.6: no LWS between display name and <.
    assert_eq!(
        parse("lwsdisp").from_header().unwrap().display.as_deref(),
        Some("caller")
    );

    // 3.1.1.7: long values survive intact.
    let m = parse("longreq");
    assert_eq!(m.headers.count(&HeaderName::Via), 33);
    assert!(m
        .to_header()
        .unwrap()
        .display
        .unwrap()
        .ends_with("extreme proportion"));

    // 3.1.1.8: the INVITE after the REGISTER in the same datagram is discarded.
    let m = parse("dblreq");
    assert_eq!(m.method(), Some(&Method::Register));
    assert!(m.body.is_empty());
    assert!(!m.to_string().contains("INVITE"));

    // 3.1.1.9: ';' in the user part is not a URI parameter.
    let u = Uri::parse(parse("semiuri").request_uri().unwrap()).unwrap();
    assert_eq!(
        (u.user.as_deref(), u.params.is_empty()),
        (Some("user;par=u%40example.net"), true)
    );

    // 3.1.1.10: unknown transports are kept.
    let t: Vec<String> = parse("transports")
        .headers
        .values(&HeaderName::Via)
        .map(|v| sirius_sip::message::Via::parse(v).unwrap().transport)
        .collect();
    assert_eq!(t, vec!["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    // 3.1.1.11: a binary body is carried octet for octet.
    let raw = read("mpart01");
    let m = parse("mpart01");
    assert!(raw.ends_with(&m.body));
    assert!(m.body.contains(&0u8) && std::str::from_utf8(&m.body).is_err());

    // 3.1.1.12 / 3.1.1.13: reason phrases may be UTF-8 or empty.
    let m = parse("unreason");
    assert!(
        matches!(&m.start, StartLine::Response { code: 200, reason, .. } if reason == "= 2**3 * 5**2 но сто девяносто девять - простое")
    );
    assert!(parse("noreason")
        .to_string()
        .starts_with("SIP/2.0 100 \r\n"));
}
