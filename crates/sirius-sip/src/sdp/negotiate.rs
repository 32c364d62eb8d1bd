//! Offer/answer (RFC 3264).
//!
//! * [`answer`]: an offer arrived (INVITE, re-INVITE, or our late offer was
//!   answered in an ACK — see [`accept_answer`]): keep every m-line in order,
//!   accept each with the codecs both sides have — in *our* preference order,
//!   with the *offerer's* payload numbers — or reject it with port 0. No audio
//!   codec in common is reported as [`NegotiationError::NoCommonCodec`]; the
//!   caller answers 488 Not Acceptable Here.
//! * [`offer`]: our offer, for an outgoing INVITE or for the 200 OK of an
//!   INVITE that came without SDP (late offer).
//! * [`accept_answer`]: checks the peer's answer against our offer.

use super::{Attribute, Connection, Direction, Media, Origin, RtpFormat, SessionDescription};

/// A format we are willing to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatSpec {
    /// Encoding name (`PCMU`, `H263`, `speex`).
    pub encoding: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// RFC 3551 static payload type, if any; otherwise one from 96–127 is used in offers.
    pub static_pt: Option<u8>,
    /// fmtp to offer, if any.
    pub fmtp: Option<String>,
}

impl FormatSpec {
    /// A format spec.
    pub fn new(encoding: &str, clock_rate: u32, static_pt: Option<u8>) -> FormatSpec {
        FormatSpec {
            encoding: encoding.into(),
            clock_rate,
            static_pt,
            fmtp: None,
        }
    }

    fn matches(&self, f: &RtpFormat) -> bool {
        self.encoding.eq_ignore_ascii_case(&f.encoding)
            && self.clock_rate == f.clock_rate
            && f.channels.unwrap_or(1) == 1
    }
}

/// What we offer and accept.
#[derive(Debug, Clone)]
pub struct LocalMedia {
    /// Our media address.
    pub address: String,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` version; the dialog increments it for each new description.
    pub session_version: u64,
    /// Audio formats in preference order.
    pub audio: Vec<FormatSpec>,
    /// Video formats in preference order (empty: video is declined).
    pub video: Vec<FormatSpec>,
    /// Offer/accept RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// Our RTP port for audio.
    pub audio_port: u16,
    /// Our RTP port for video.
    pub video_port: u16,
    /// The direction we want (sendrecv normally; sendonly to put the peer on hold).
    pub direction: Direction,
}

/// The outcome for one m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// `audio`, `video`…
    pub kind: String,
    /// Rejected (port 0 in the answer, or offered with port 0).
    pub rejected: bool,
    /// The peer's address and port for this stream.
    pub remote: Option<(String, u16)>,
    /// The agreed formats, ours-first preference, with the payload types to use.
    pub formats: Vec<RtpFormat>,
    /// The agreed telephone-event format.
    pub telephone_event: Option<RtpFormat>,
    /// The direction as the peer described its side.
    pub remote_direction: Direction,
    /// The peer put us on hold (sendonly/inactive or c=0.0.0.0).
    pub on_hold: bool,
}

/// The agreed session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// One entry per m-line, in order.
    pub streams: Vec<Stream>,
}

impl Negotiated {
    /// The first accepted stream of a kind.
    pub fn first(&self, kind: &str) -> Option<&Stream> {
        self.streams.iter().find(|s| s.kind == kind && !s.rejected)
    }

    /// Whether the peer holds the call (every accepted stream on hold).
    pub fn on_hold(&self) -> bool {
        let active: Vec<&Stream> = self.streams.iter().filter(|s| !s.rejected).collect();
        !active.is_empty() && active.iter().all(|s| s.on_hold)
    }
}

/// Why offer/answer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// No audio format in common: answer 488 Not Acceptable Here.
    #[error("no audio codec in common")]
    NoCommonCodec,
    /// The answer does not fit our offer (m-line count, or formats we did not offer).
    #[error("answer does not match the offer: {0}")]
    AnswerMismatch(String),
}

fn is_dtmf(f: &RtpFormat) -> bool {
    f.encoding.eq_ignore_ascii_case("telephone-event")
}

fn stream_view(
    sd: &SessionDescription,
    m: &Media,
    formats: Vec<RtpFormat>,
    tel: Option<RtpFormat>,
    rejected: bool,
) -> Stream {
    let conn = sd.connection_for(m);
    let dir = sd.direction(m);
    let on_hold = matches!(dir, Direction::SendOnly | Direction::Inactive)
        || conn.is_some_and(Connection::is_hold_address);
    Stream {
        kind: m.kind.clone(),
        rejected,
        remote: conn.map(|c| {
            (
                c.address.split('/').next().unwrap_or("").to_string(),
                m.port,
            )
        }),
        formats,
        telephone_event: tel,
        remote_direction: dir,
        on_hold,
    }
}

fn push_format_attrs(media: &mut Media, f: &RtpFormat) {
    let chans = f.channels.map(|c| format!("/{c}")).unwrap_or_default();
    media.push_attr(
        "rtpmap",
        Some(format!("{} {}/{}{}", f.pt, f.encoding, f.clock_rate, chans)),
    );
    if let Some(p) = &f.fmtp {
        media.push_attr("fmtp", Some(format!("{} {p}", f.pt)));
    }
}

fn base(local: &LocalMedia) -> SessionDescription {
    SessionDescription {
        origin: Origin {
            username: "-".into(),
            session_id: local.session_id.to_string(),
            session_version: local.session_version.to_string(),
            connection: Connection::new(&local.address),
        },
        session_name: "Sirius".into(),
        connection: Some(Connection::new(&local.address)),
        bandwidths: Vec::new(),
        timing: vec!["0 0".into()],
        attributes: Vec::new(),
        other: Vec::new(),
        media: Vec::new(),
    }
}

/// Answers an offer.
pub fn answer(
    offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let mut sd = base(local);
    let mut streams = Vec::new();
    for m in &offer.media {
        let (prefs, port) = match m.kind.as_str() {
            "audio" => (&local.audio, local.audio_port),
            "video" => (&local.video, local.video_port),
            _ => (&Vec::new(), 0),
        };
        let offered = m.rtp_formats();
        let mut joint: Vec<RtpFormat> = Vec::new();
        if m.port != 0 && m.is_rtp() {
            for p in prefs {
                if let Some(f) = offered.iter().find(|f| p.matches(f) && !is_dtmf(f)) {
                    joint.push(f.clone());
                }
            }
        }
        let tel = (local.telephone_event && m.kind == "audio" && !joint.is_empty())
            .then(|| offered.iter().find(|f| is_dtmf(f)).cloned())
            .flatten();
        let mut out = Media::new(&m.kind, 0, &m.proto);
        if joint.is_empty() {
            // Rejected: port 0, formats copied from the offer (an m-line needs one).
            out.formats = m.formats.clone();
            streams.push(stream_view(offer, m, Vec::new(), None, true));
        } else {
            out.port = port;
            for f in joint.iter().chain(tel.iter()) {
                out.formats.push(f.pt.to_string());
                push_format_attrs(&mut out, f);
            }
            let dir = sd_answer_direction(offer.direction(m), local.direction);
            out.push_attr(dir.as_str(), None);
            streams.push(stream_view(offer, m, joint, tel, false));
        }
        sd.media.push(out);
    }
    if !streams.iter().any(|s| s.kind == "audio" && !s.rejected) {
        return Err(NegotiationError::NoCommonCodec);
    }
    Ok((sd, Negotiated { streams }))
}

/// Combines what the offer asks (RFC 3264 §6.1) with what we want.
fn sd_answer_direction(offered: Direction, ours: Direction) -> Direction {
    use Direction::*;
    match (offered.answer(), ours) {
        (Inactive, _) | (_, Inactive) => Inactive,
        (RecvOnly, SendOnly) | (SendOnly, RecvOnly) => Inactive,
        (RecvOnly, _) | (_, RecvOnly) => RecvOnly,
        (SendOnly, _) | (_, SendOnly) => SendOnly,
        (SendRecv, SendRecv) => SendRecv,
    }
}

/// Our offer: audio always, video when we have video formats.
pub fn offer(local: &LocalMedia) -> SessionDescription {
    let mut sd = base(local);
    let mut next_dynamic = 96u8;
    let mut section = |kind: &str, port: u16, specs: &[FormatSpec], dtmf: bool| {
        let mut m = Media::new(kind, port, "RTP/AVP");
        let mut fmts: Vec<RtpFormat> = specs
            .iter()
            .map(|s| {
                let pt = s.static_pt.unwrap_or_else(|| {
                    let p = next_dynamic;
                    next_dynamic = next_dynamic.saturating_add(1);
                    p
                });
                RtpFormat {
                    pt,
                    encoding: s.encoding.clone(),
                    clock_rate: s.clock_rate,
                    channels: None,
                    fmtp: s.fmtp.clone(),
                }
            })
            .collect();
        if dtmf {
            fmts.push(RtpFormat {
                pt: 101,
                encoding: "telephone-event".into(),
                clock_rate: 8000,
                channels: None,
                fmtp: Some("0-16".into()),
            });
        }
        for f in &fmts {
            m.formats.push(f.pt.to_string());
            push_format_attrs(&mut m, f);
        }
        if kind == "audio" {
            m.push_attr("ptime", Some("20".into()));
        }
        m.attributes.push(Attribute {
            name: local.direction.as_str().into(),
            value: None,
        });
        m
    };
    let audio = section(
        "audio",
        local.audio_port,
        &local.audio,
        local.telephone_event,
    );
    sd.media.push(audio);
    if !local.video.is_empty() {
        let video = section("video", local.video_port, &local.video, false);
        sd.media.push(video);
    }
    sd
}

/// Checks an answer against the offer we sent and returns what was agreed.
pub fn accept_answer(
    our_offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    if answer.media.len() != our_offer.media.len() {
        return Err(NegotiationError::AnswerMismatch(format!(
            "{} m-lines answered to {} offered",
            answer.media.len(),
            our_offer.media.len()
        )));
    }
    let mut streams = Vec::new();
    for (ours, theirs) in our_offer.media.iter().zip(&answer.media) {
        if ours.kind != theirs.kind {
            return Err(NegotiationError::AnswerMismatch(format!(
                "m-line '{}' answered as '{}'",
                ours.kind, theirs.kind
            )));
        }
        if theirs.port == 0 {
            streams.push(stream_view(answer, theirs, Vec::new(), None, true));
            continue;
        }
        let offered = ours.rtp_formats();
        let mut formats = Vec::new();
        let mut tel = None;
        for f in theirs.rtp_formats() {
            // Match by encoding (the answerer may renumber dynamic types).
            if !offered.iter().any(|o| {
                o.encoding.eq_ignore_ascii_case(&f.encoding) && o.clock_rate == f.clock_rate
            }) {
                continue;
            }
            if is_dtmf(&f) {
                tel = Some(f);
            } else {
                formats.push(f);
            }
        }
        let rejected = formats.is_empty();
        streams.push(stream_view(answer, theirs, formats, tel, rejected));
    }
    if !streams.iter().any(|s| s.kind == "audio" && !s.rejected) {
        return Err(NegotiationError::NoCommonCodec);
    }
    Ok(Negotiated { streams })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::tests::MOBILE_OFFER;

    fn local(audio: &[(&str, u32, Option<u8>)], video: &[(&str, u32, Option<u8>)]) -> LocalMedia {
        LocalMedia {
            address: "127.0.0.1".into(),
            session_id: 4242,
            session_version: 1,
            audio: audio
                .iter()
                .map(|(e, r, p)| FormatSpec::new(e, *r, *p))
                .collect(),
            video: video
                .iter()
                .map(|(e, r, p)| FormatSpec::new(e, *r, *p))
                .collect(),
            telephone_event: false,
            audio_port: 10000,
            video_port: 10002,
            direction: Direction::SendRecv,
        }
    }

    #[test]
    fn mobile_video_call_is_answered_with_pcmu_and_h263() {
        let offer = SessionDescription::parse(MOBILE_OFFER.as_bytes()).unwrap();
        let l = local(
            &[("PCMU", 8000, Some(0)), ("PCMA", 8000, Some(8))],
            &[("H263", 90000, Some(34))],
        );
        let (sd, neg) = answer(&offer, &l).unwrap();
        let text = sd.to_string();
        assert_eq!(
            text,
            "v=0\r\no=- 4242 1 IN IP4 127.0.0.1\r\ns=Sirius\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 10000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n\
             m=video 10002 RTP/AVP 34\r\na=rtpmap:34 H263/90000\r\na=fmtp:34 QCIF=2 SQCIF=2/MaxBR=560\r\na=sendrecv\r\n"
        );
        let audio = neg.first("audio").unwrap();
        assert_eq!(audio.formats[0].encoding, "PCMU");
        assert_eq!(audio.remote, Some(("10.0.0.5".into(), 40000)));
        assert_eq!(neg.first("video").unwrap().formats[0].encoding, "H263");
        assert!(!neg.on_hold());
    }

    #[test]
    fn preference_order_is_ours_and_payload_types_are_theirs() {
        let offer = SessionDescription::parse(MOBILE_OFFER.as_bytes()).unwrap();
        let mut l = local(&[("speex", 8000, None), ("PCMU", 8000, Some(0))], &[]);
        l.telephone_event = true;
        let (sd, neg) = answer(&offer, &l).unwrap();
        assert_eq!(sd.media[0].formats, vec!["99", "0", "104"]);
        assert_eq!(
            neg.first("audio")
                .unwrap()
                .telephone_event
                .as_ref()
                .map(|t| t.pt),
            Some(104)
        );
        // Video declined: port 0, formats copied.
        assert_eq!(
            (sd.media[1].port, sd.media[1].formats.clone()),
            (0, vec!["97".to_string(), "34".to_string()])
        );
        assert!(neg.streams[1].rejected);
    }

    #[test]
    fn no_common_audio_codec_is_an_error_to_answer_488() {
        let offer = SessionDescription::parse(MOBILE_OFFER.as_bytes()).unwrap();
        let l = local(&[("G729", 8000, Some(18))], &[("H263", 90000, Some(34))]);
        assert_eq!(
            answer(&offer, &l).unwrap_err(),
            NegotiationError::NoCommonCodec
        );
    }

    #[test]
    fn hold_and_directions() {
        let held = MOBILE_OFFER.replace("c=IN IP4 10.0.0.5", "c=IN IP4 0.0.0.0");
        let offer = SessionDescription::parse(held.as_bytes()).unwrap();
        let (_, neg) = answer(&offer, &local(&[("PCMU", 8000, Some(0))], &[])).unwrap();
        assert!(neg.on_hold());
        let sendonly =
            MOBILE_OFFER.replace("a=fmtp:104 0-15\r\n", "a=fmtp:104 0-15\r\na=sendonly\r\n");
        let offer = SessionDescription::parse(sendonly.as_bytes()).unwrap();
        let (sd, neg) = answer(&offer, &local(&[("PCMU", 8000, Some(0))], &[])).unwrap();
        assert!(neg.on_hold());
        assert_eq!(sd.media[0].direction_attr(), Some(Direction::RecvOnly));
        assert_eq!(
            sd_answer_direction(Direction::SendRecv, Direction::SendOnly),
            Direction::SendOnly
        );
        assert_eq!(
            sd_answer_direction(Direction::Inactive, Direction::SendRecv),
            Direction::Inactive
        );
    }

    #[test]
    fn late_offer_round_trip() {
        // INVITE without SDP: we offer in the 200 OK, the peer answers in the ACK.
        let mut l = local(
            &[("PCMU", 8000, Some(0)), ("speex", 16000, None)],
            &[("H263", 90000, Some(34))],
        );
        l.telephone_event = true;
        let ours = offer(&l);
        let text = ours.to_string();
        assert!(text.contains("m=audio 10000 RTP/AVP 0 96 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 speex/16000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"), "{text}");
        // The peer's answer, like the mobile operator's ACK: PCMU and H263.
        let ack_sdp = "v=0\r\no=iwfuser 3232404366 3232409445 IN IP4 192.0.2.160\r\ns=-\r\nt=0 0\r\n\
            m=audio 30000 RTP/AVP 0\r\nc=IN IP4 192.0.2.160\r\na=rtpmap:0 PCMU/8000/1\r\na=maxptime:400\r\na=sendrecv\r\n\
            m=video 30002 RTP/AVP 34\r\nc=IN IP4 192.0.2.160\r\na=rtpmap:34 H263/90000\r\na=sendrecv\r\n";
        let ans = SessionDescription::parse(ack_sdp.as_bytes()).unwrap();
        let neg = accept_answer(&ours, &ans).unwrap();
        assert_eq!(
            neg.first("audio").unwrap().remote,
            Some(("192.0.2.160".into(), 30000))
        );
        assert_eq!(neg.first("video").unwrap().formats[0].encoding, "H263");
        let bad = SessionDescription::parse(
            b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 18\r\n",
        )
        .unwrap();
        assert!(matches!(
            accept_answer(&ours, &bad),
            Err(NegotiationError::AnswerMismatch(_))
        ));
    }
}
