//! No input makes the SIP stack panic, and what it accepts it writes back
//! faithfully. Property tests in the normal suite; `fuzz/` runs the same
//! entry points under libFuzzer for longer.

use proptest::prelude::*;
use sirius_sip::auth::params::AuthHeader;
use sirius_sip::message::{parse_datagram, CSeq, Framer, HeaderName, Limits, NameAddr, Uri, Via};
use sirius_sip::refer::{parse_sipfrag, Event, ReferTo, Replaces, SubState};
use sirius_sip::sdp::SessionDescription;
use sirius_sip::validate::{inspect_request, inspect_response, Capabilities};

const INVITE: &str = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\n\
To: <sip:bob@127.0.0.1>\r\n\
Call-ID: c1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5062>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 67\r\n\
\r\n\
v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

/// Everything a received message goes through, none of which may panic.
fn exercise(data: &[u8]) {
    let limits = Limits::default();
    if let Ok(m) = parse_datagram(data, &limits) {
        let _ = inspect_request(&m, &Capabilities::default());
        let _ = inspect_response(&m);
        let _ = (m.top_via(), m.cseq(), m.from_header(), m.to_header());
        let _ = SessionDescription::parse(&m.body);
        for h in m.headers.iter() {
            let _ = AuthHeader::parse(h.value);
            let _ = NameAddr::parse_list(h.value);
            // The transfer grammar reads these from any header value.
            let _ = ReferTo::parse(h.value).map(|r| r.exten());
            let _ = Replaces::parse(h.value);
            let _ = (SubState::parse(h.value), Event::parse(h.value));
        }
        let _ = parse_sipfrag(&m.body);
        if let Some(u) = m.request_uri() {
            let _ = Uri::parse(u);
        }
        // What we accept, we write back, and it reads the same (Content-Length is
        // always rewritten from the body, so it is compared through the body).
        let again = parse_datagram(&m.to_bytes(), &limits).expect("a serialised message parses");
        assert_eq!(again.start, m.start);
        assert_eq!(again.body, m.body);
        let strip = |m: &sirius_sip::message::Message| -> Vec<(String, String)> {
            m.headers
                .iter()
                .filter(|h| *h.name != HeaderName::ContentLength)
                .map(|h| (h.name.to_string(), h.value.to_string()))
                .collect()
        };
        assert_eq!(strip(&again), strip(&m));
    }
    let s = String::from_utf8_lossy(data);
    let _ = (
        Via::parse(&s),
        CSeq::parse(&s),
        NameAddr::parse(&s),
        Uri::parse(&s),
        AuthHeader::parse(&s),
    );
    let _ = SessionDescription::parse(data);
}

/// Small edits to a valid message: flips, insertions, deletions, truncation.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let base = INVITE.as_bytes().to_vec();
    let len = base.len();
    prop::collection::vec((0..len, any::<u8>(), 0u8..4), 1..8).prop_map(move |edits| {
        let mut b = base.clone();
        for (pos, byte, kind) in edits {
            let pos = pos.min(b.len().saturating_sub(1));
            match kind {
                0 if !b.is_empty() => b[pos] = byte,
                1 => b.insert(pos, byte),
                2 if !b.is_empty() => {
                    b.remove(pos);
                }
                _ => b.truncate(pos),
            }
        }
        b
    })
}

/// Bytes from SIP's own alphabet, so the parser gets past its first checks.
fn sipish() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        "INVITE ",
        "SIP/2.0",
        " ",
        "\r\n",
        "\n",
        ":",
        ";",
        ",",
        "<",
        ">",
        "\"",
        "\\",
        "=",
        "sip:",
        "@",
        "Via",
        "v",
        "CSeq",
        "1",
        "Content-Length",
        "l",
        "0",
        "99999",
        "-",
        "z9hG4bK",
        "To",
        "From",
        "tag",
        "[",
        "]",
        "::1",
        "%00",
        "\u{e9}",
        "\u{1f600}",
        "/",
        "\t",
        "Digest",
        "nonce",
        "m=audio",
        "v=0",
    ]);
    prop::collection::vec(pieces, 0..60).prop_map(|p| p.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        exercise(&data);
    }

    #[test]
    fn sip_alphabet_never_panics(data in sipish()) {
        exercise(&data);
    }

    #[test]
    fn mutated_invites_never_panic_and_round_trip(data in mutated()) {
        exercise(&data);
    }

    /// A member's PUBLISH body (RFC 7463) comes from the network too: any
    /// text made of XML's pieces is read or refused, never a panic.
    #[test]
    fn shared_appearance_bodies_never_panic(pieces in prop::collection::vec(prop::sample::select(vec![
        "<", ">", "/", "<?xml version='1.0'?>", "<dialog-info", "</dialog-info>", "<dialog", "</dialog>",
        " call-id=\"", " local-tag='", "\"", "'", "=", "<sa:appearance>", "</sa:appearance>", "7", "0",
        "-1", "<state>", "trying", "</state>", "<local>", "</local>", "<param pname='+sip.rendering' pval='no'/>",
        "<!--", "-->", "&", "&amp;", "&#x", "&#99999999;", ";", "é", " ", "<sa:replaced-dialog", "/>",
    ]), 0..50)) {
        let _ = sirius_sip::shared_appearance::parse(&pieces.concat());
    }

    #[test]
    fn stream_framing_is_independent_of_chunking(cuts in prop::collection::vec(1usize..80, 0..20)) {
        let stream = format!("\r\n\r\n{INVITE}{INVITE}");
        let bytes = stream.as_bytes();
        let mut f = Framer::new(Limits::default());
        let mut got = 0;
        let mut at = 0;
        for c in cuts.into_iter().chain(std::iter::once(bytes.len())) {
            let end = (at + c).min(bytes.len());
            f.push(&bytes[at..end]);
            at = end;
            while let Some(r) = f.next_message() {
                if r.is_ok() {
                    got += 1;
                }
            }
        }
        prop_assert_eq!(got, 2);
    }
}
