//! Video calls: an `m=video` line of its own, its own RTP pair, relayed
//! when both legs have it, declined with port 0 where a leg has none.

use super::*;

/// Alice's phone and a trunk that both allow H.263 video.
fn video_toml() -> String {
    SIP_TOML
        .replace(
            "context = \"phones\"",
            "context = \"phones\"\nallow = [\"ulaw\", \"h263\"]",
        )
        .replace(
            "secret = \"bob-secret\"",
            "secret = \"bob-secret\"\nallow = [\"ulaw\", \"h263\"]",
        )
}

fn av_sdp(audio: u16, video: u16) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {audio} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         m=video {video} RTP/AVP 34\r\na=rtpmap:34 H263/90000\r\n"
    )
    .into_bytes()
}

/// The m-lines of an SDP body: (kind, port, formats).
fn m_lines(body: &[u8]) -> Vec<(String, u16, String)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|l| l.strip_prefix("m="))
        .map(|m| {
            let mut w = m.split_whitespace();
            let kind = w.next().unwrap().to_string();
            let port = w.next().unwrap().parse().unwrap();
            let _proto = w.next();
            (kind, port, w.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

#[test]
fn a_video_offer_is_answered_with_its_own_m_line_and_port() {
    let mut h = Harness::new(&video_toml());
    let mut invite = alice_invite("100", "v-1");
    invite.set_body("application/sdp", av_sdp(40_000, 40_002));
    h.recv(&invite, ALICE);
    let chan = h.env.started[0];
    assert_eq!(
        h.env.reserved,
        vec![(chan, StreamKind::Audio), (chan, StreamKind::Video)]
    );
    let codecs = h.env.allocated[0].1.codecs.to_vec();
    assert_eq!(codecs, vec![Codec::PCMU, Codec::H263]);
    h.input(Input::Answer(chan));
    let ok = h.expect_one(ALICE);
    assert_eq!(
        m_lines(&ok.body),
        vec![
            ("audio".into(), 10_002, "0 101".into()),
            ("video".into(), 10_004, "34".into())
        ]
    );
    assert!(h.ep.show_channels().contains("(ulaw|h263)"));
}

/// A peer without video gets the video stream declined (port 0) and the
/// call goes on with audio; no video codec lands in m=audio.
#[test]
fn a_peer_without_video_gets_m_video_0() {
    let mut h = Harness::new(SIP_TOML);
    let mut invite = alice_invite("100", "v-2");
    invite.set_body("application/sdp", av_sdp(40_000, 40_002));
    h.recv(&invite, ALICE);
    let chan = h.env.started[0];
    assert_eq!(h.env.reserved, vec![(chan, StreamKind::Audio)]);
    h.input(Input::Answer(chan));
    let ok = h.expect_one(ALICE);
    let lines = m_lines(&ok.body);
    assert_eq!(lines[0], ("audio".into(), 10_002, "0 101".into()));
    assert_eq!((lines[1].0.as_str(), lines[1].1), ("video", 0));
}

#[test]
fn our_offer_puts_video_codecs_in_m_video_only() {
    let mut h = Harness::new(&video_toml());
    let chan = ChannelId(100);
    h.input(Input::NewOutbound(OutboundSetup {
        codecs: vec![Codec::PCMU, Codec::H263],
        ..call_to("bob", chan)
    }));
    h.ep.place(h.now, chan).unwrap();
    h.collect();
    let invite = h.expect_one(BOB);
    assert_eq!(
        m_lines(&invite.body),
        vec![
            ("audio".into(), 10_002, "0 101".into()),
            ("video".into(), 10_004, "34".into())
        ]
    );
    // Bob answers audio only: the channel carries audio only from then on.
    let mut ok = reply(&invite, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.set_body("application/sdp", av_sdp(41_000, 0));
    h.recv(&ok, BOB);
    assert!(h
        .host_actions()
        .contains(&HostAction::SetCodecs(chan, vec![Codec::PCMU])));
}

/// Seed 000's video call: an INVITE without SDP; our 200 offers audio and
/// video; the ACK answers both; bridged with a video trunk, both streams
/// are relayed, each to the address its side's SDP gave.
#[test]
fn a_late_offer_video_call_is_bridged_audio_and_video() {
    let mut h = Harness::new(&video_toml());
    let mut invite = alice_invite("100", "v-3");
    invite.set_body("application/sdp", Vec::new());
    invite.headers.remove(&HeaderName::ContentType);
    h.recv(&invite, ALICE);
    let a = h.env.started[0];
    h.input(Input::Answer(a));
    let ok_a = h.expect_one(ALICE);
    assert_eq!(
        m_lines(&ok_a.body),
        vec![
            ("audio".into(), 10_002, "0 101".into()),
            ("video".into(), 10_004, "34".into())
        ]
    );
    let (b, invite_b) = placed_outbound_with(&mut h, 100, vec![Codec::PCMU, Codec::H263]);
    let mut ok_b = reply(&invite_b, 200, "OK", "b1");
    ok_b.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok_b.set_body("application/sdp", av_sdp(41_000, 41_002));
    h.recv(&ok_b, BOB);
    h.input(Input::Bridge(a, b));
    h.take();
    let mut ack = in_dialog("ACK", &ok_a, ALICE, 1, "ack");
    ack.set_body("application/sdp", av_sdp(40_000, 40_002));
    h.recv(&ack, ALICE);
    let actions = h.take();
    let remote = actions.iter().find_map(|o| match o {
        Output::Media(MediaAction::Remote(c, m)) if *c == a => Some(m.clone()),
        _ => None,
    });
    let remote = remote.expect("the relay follows the ACK's answer");
    assert_eq!(remote.addr, Some(addr("127.0.0.1:40000")));
    assert_eq!(remote.video, Some(addr("127.0.0.1:40002")));
    // The answer kept every codec offered: the channel already says so.
    assert!(!actions
        .iter()
        .any(|o| matches!(o, Output::Host(HostAction::SetCodecs(..)))));
    assert_eq!(
        h.ep.sessions.get(a).unwrap().codecs,
        vec![Codec::PCMU, Codec::H263]
    );
}

fn placed_outbound_with(h: &mut Harness, chan: u64, codecs: Vec<Codec>) -> (ChannelId, Message) {
    let chan = ChannelId(chan);
    h.input(Input::NewOutbound(OutboundSetup {
        codecs,
        ..call_to("bob", chan)
    }));
    h.ep.place(h.now, chan).unwrap();
    h.collect();
    let invite = h.expect_one(BOB);
    (chan, invite)
}
