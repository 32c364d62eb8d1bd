//! The one-buffer representation of a message: what is kept as received,
//! what is rewritten, and that writing a message back gives its bytes.

use super::*;

fn parse(text: &str) -> Message {
    parse_datagram(text.as_bytes(), &Limits::default()).expect("a message")
}

const RINGING: &str = "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK3c1a;received=192.0.2.10;rport=5060\r\n\
Via: SIP/2.0/TCP 198.51.100.1;branch=z9hG4bK77\r\n\
From: \"Alice\" <sip:alice@192.0.2.10>;tag=as5f\r\n\
To: <sip:600@203.0.113.5:5060>;tag=1928\r\n\
Call-ID: 6f1c3b2a@192.0.2.10\r\n\
CSeq: 102 INVITE\r\n\
P-Asserted-Identity: \"Réception\" <sip:600@203.0.113.5>\r\n\
Content-Length: 0\r\n\
\r\n";

#[test]
fn a_canonical_message_is_written_back_byte_for_byte() {
    let m = parse(RINGING);
    assert_eq!(String::from_utf8(m.to_bytes()).unwrap(), RINGING);
    assert_eq!(m.encoded_len(), RINGING.len());
    // write_to appends, into whatever the caller's buffer holds.
    let mut out = b"prefix".to_vec();
    m.write_to(&mut out);
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(&out[6..], RINGING.as_bytes());
    let body = "v=0\r\n";
    let with_body = RINGING.replace("Content-Length: 0", "Content-Length: 5") + body;
    let m = parse(&with_body);
    assert_eq!(m.body, body.as_bytes());
    assert_eq!(m.to_bytes(), with_body.as_bytes());
    assert_eq!(m.encoded_len(), with_body.len());
}

#[test]
fn values_are_ranges_of_the_section_as_received() {
    let m = parse(RINGING);
    // One buffer: the section copied once (up to the LF before the empty
    // line), nothing appended for plain lines.
    let section = &RINGING[RINGING.find('\n').unwrap() + 1..RINGING.len() - 3];
    assert_eq!(m.headers.buf, section);
    let e = &m.headers.items[0];
    assert_eq!(
        &m.headers.buf[e.start..e.end],
        m.headers.get(&HeaderName::Via).unwrap()
    );
    // Extension names are inline and compare without case.
    assert_eq!(
        m.headers
            .get(&HeaderName::Other("p-asserted-identity".into())),
        Some("\"Réception\" <sip:600@203.0.113.5>")
    );
}

#[test]
fn folded_values_are_unfolded_at_the_buffer_end() {
    let text = "OPTIONS sip:a@b SIP/2.0\r\n\
Subject: first\r\n  second \r\n\tthird\r\n\
X-Empty:\r\n only\r\n\
Call-ID: c1\r\n\
\r\n";
    let m = parse(text);
    assert_eq!(
        m.headers.get(&HeaderName::Subject),
        Some("first second third")
    );
    assert_eq!(
        m.headers.get(&HeaderName::Other("X-Empty".into())),
        Some("only")
    );
    assert_eq!(m.headers.get(&HeaderName::CallId), Some("c1"));
    // The unfolded values follow the section; Call-ID is still a range of it.
    let section_len = text.len() - "OPTIONS sip:a@b SIP/2.0\r\n".len() - 3;
    assert_eq!(&m.headers.buf[section_len..], "first second thirdonly");
    let out = String::from_utf8(m.to_bytes()).unwrap();
    assert!(
        out.contains("\r\nSubject: first second third\r\nX-Empty: only\r\n"),
        "{out}"
    );
    assert!(parse_datagram(
        b"OPTIONS sip:a@b SIP/2.0\r\n cont\r\n\r\n",
        &Limits::default()
    )
    .is_err());
}

#[test]
fn compact_forms_and_odd_spacing_are_written_canonically() {
    let text = "INVITE sip:b@x SIP/2.0\r\n\
v:SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
f :\t<sip:a@x>;tag=1 \t\r\n\
t: <sip:b@x>\r\n\
i: c2\r\n\
m: <sip:a@h>\r\n\
k: timer\r\n\
c: text/plain\r\n\
l: 2\r\n\
\r\n\
hi";
    let m = parse(text);
    let out = String::from_utf8(m.to_bytes()).unwrap();
    assert_eq!(
        out,
        "INVITE sip:b@x SIP/2.0\r\n\
Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@x>;tag=1\r\n\
To: <sip:b@x>\r\n\
Call-ID: c2\r\n\
Contact: <sip:a@h>\r\n\
Supported: timer\r\n\
Content-Type: text/plain\r\n\
Content-Length: 2\r\n\
\r\n\
hi"
    );
    assert_eq!(parse(&out), m);
}

#[test]
fn edits_after_parse_leave_the_rest_as_received() {
    let mut m = parse(RINGING);
    build::set_to_tag(&mut m, "ignored"); // has one already
    assert_eq!(m.to_bytes(), RINGING.as_bytes());
    m.headers
        .push_front(HeaderName::Via, "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKnew");
    m.headers.set(HeaderName::CSeq, "103 INVITE");
    m.headers
        .remove(&HeaderName::Other("P-Asserted-Identity".into()));
    m.headers.push(HeaderName::Supported, "timer");
    let expected = RINGING
        .replace(
            "Via: SIP/2.0/UDP 192.0.2.10",
            "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKnew\r\nVia: SIP/2.0/UDP 192.0.2.10",
        )
        .replace("102 INVITE", "103 INVITE")
        .replace(
            "P-Asserted-Identity: \"Réception\" <sip:600@203.0.113.5>\r\n",
            "",
        )
        .replace("Content-Length: 0", "Supported: timer\r\nContent-Length: 0");
    assert_eq!(String::from_utf8(m.to_bytes()).unwrap(), expected);
    assert_eq!(m.top_via_ref().unwrap().branch(), Some("z9hG4bKnew"));
    assert_eq!(m.headers.count(&HeaderName::Via), 3);
}

#[test]
fn line_ends_and_white_space() {
    // Bare LF line ends, a CR right before the cut-off empty line, tabs.
    let m = parse("SIP/2.0 200 OK\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\t\nCall-ID: \tx \n\n");
    assert_eq!(m.call_id(), Some("x"));
    assert_eq!(
        m.headers.get(&HeaderName::Via),
        Some("SIP/2.0/UDP h;branch=z9hG4bK1")
    );
    for bad in [
        "SIP/2.0 200 OK\r\nCall-ID: a\rb\r\n\r\n",
        "SIP/2.0 200 OK\r\nCall ID: a\r\n\r\n",
        "SIP/2.0 200 OK\r\nCall-ID a\r\n\r\n",
        "SIP/2.0 200 OK\r\n: a\r\n\r\n",
    ] {
        assert!(
            matches!(
                parse_datagram(bad.as_bytes(), &Limits::default()),
                Err(ParseError::Header(_))
            ),
            "{bad:?}"
        );
    }
    // A value's non-ASCII white space is part of it (SIP's LWS is SP and HTAB).
    let m = parse("SIP/2.0 200 OK\r\nSubject: \u{a0}x\u{a0}\r\n\r\n");
    assert_eq!(m.headers.get(&HeaderName::Subject), Some("\u{a0}x\u{a0}"));
}

#[test]
fn a_to_tag_is_appended_in_place_or_written_in_normal_form() {
    let base = "SIP/2.0 200 OK\r\nCall-ID: c\r\n";
    let mut m = parse(&format!("{base}To: \"B\" <sip:b@x>;x=1\r\n\r\n"));
    build::set_to_tag(&mut m, "t1");
    assert_eq!(
        m.headers.get(&HeaderName::To),
        Some("\"B\" <sip:b@x>;x=1;tag=t1")
    );
    assert_eq!(m.call_id(), Some("c"));
    // Not in normal form: rewritten as NameAddr writes it, as before.
    let mut m = parse(&format!("{base}To: sip:b@x ; x = 1\r\n\r\n"));
    build::set_to_tag(&mut m, "t2");
    assert_eq!(m.headers.get(&HeaderName::To), Some("<sip:b@x>;x=1;tag=t2"));
    // A tag already there stays.
    build::set_to_tag(&mut m, "t3");
    assert_eq!(m.to_ref().unwrap().tag(), Some("t2"));
}
