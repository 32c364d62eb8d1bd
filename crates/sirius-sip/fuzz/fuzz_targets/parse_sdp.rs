//! SDP parsing and answering an arbitrary offer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sirius_sip::sdp::negotiate::{answer, FormatSpec, LocalMedia};
use sirius_sip::sdp::{Direction, SessionDescription};

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = SessionDescription::parse(data) {
        let local = LocalMedia {
            address: "127.0.0.1".into(),
            session_id: 1,
            session_version: 1,
            audio: vec![FormatSpec::new("PCMU", 8000, Some(0)), FormatSpec::new("opus", 48000, None)],
            video: vec![FormatSpec::new("H264", 90000, None)],
            telephone_event: true,
            audio_port: 10000,
            video_port: 10002,
            direction: Direction::SendRecv,
        };
        let _ = answer(&sd, &local);
        let _ = SessionDescription::parse(&sd.to_bytes()).expect("written SDP parses");
    }
});
