//! Core tests: the generic bridge, early media, and what the technology
//! hears when a bridge or an early-media link ends.

use crate::test_support::{core_with, leg, leg_with, Recorder};
use sirius_abi::{Cause, ChannelId, Codec, Frame};

#[test]
fn the_generic_bridge_passes_frames_and_translates_g711_for_the_other_leg() {
    let rec = Recorder::default();
    let (core, _dir) = core_with(&rec);
    let (ulaw, alaw) = (leg(&core, "ulaw"), leg_with(&core, "alaw", Codec::PCMA));
    assert_eq!(core.bridge(ulaw, alaw), Ok("simple_bridge"));
    let voice = |codec, byte| Frame {
        kind: sirius_abi::FrameKind::Voice.to_ne(),
        codec,
        subclass: 0,
        samples: 160,
        duration_ms: 0,
        timestamp: 0,
        seqno: 1,
        payload: vec![byte; 160].into(),
    };
    // µ-law silence to the A-law leg arrives as A-law silence; and back.
    core.bridge_frame(ulaw, voice(Codec::PCMU, 0xff));
    core.bridge_frame(alaw, voice(Codec::PCMA, 0xd5));
    let frames = rec.frames.lock().clone();
    assert_eq!(frames.len(), 2);
    assert_eq!((frames[0].0, frames[0].1.codec), (alaw, Codec::PCMA));
    assert!(frames[0].1.payload.iter().all(|b| *b == 0xd5));
    assert_eq!((frames[1].0, frames[1].1.codec), (ulaw, Codec::PCMU));
    // (A-law silence is +8, so it comes back as µ-law 8, not 0: G.711's
    // two laws do not share a zero; the tables are tested in `translate`.)
    let mut back = vec![0xd5u8; 160];
    crate::translate::transcode_g711(&mut back, Codec::PCMA, Codec::PCMU);
    assert_eq!(frames[1].1.payload.as_slice(), back.as_slice());
    assert_ne!(back[0], 0xd5, "translated, not passed through");
    // A codec the other leg carries passes untouched; non-voice frames too.
    let mut dtmf = voice(Codec::PCMU, 0);
    dtmf.kind = sirius_abi::FrameKind::DtmfEnd.to_ne();
    dtmf.subclass = u32::from(b'5');
    core.bridge_frame(alaw, dtmf);
    assert_eq!(rec.frames.lock()[2].1.kind, sirius_abi::FrameKind::DtmfEnd);
}

#[test]
fn a_leg_gone_before_the_bridge_is_made_takes_the_other_with_it() {
    let rec = Recorder::default();
    let (core, _dir) = core_with(&rec);
    // The caller's BYE lands between Dial seeing the answer and the bridge.
    let (caller, callee) = (leg(&core, "caller"), leg(&core, "callee"));
    core.channel_gone(caller, Cause::NORMAL_CLEARING);
    assert_eq!(core.bridge(caller, callee), Err(Cause::NORMAL_CLEARING));
    assert!(
        !core.channels.exists(callee),
        "the answered leg is not left up"
    );
    assert_eq!(*rec.hangups.lock(), vec![callee]);
    // The same with the callee gone first.
    let (caller, callee) = (leg(&core, "caller"), leg(&core, "callee"));
    core.channel_gone(callee, Cause::BUSY);
    assert_eq!(core.bridge(caller, callee), Err(Cause::BUSY));
    assert!(!core.channels.exists(caller));
    // Made in time, a hangup of either leg later ends both.
    let (caller, callee) = (leg(&core, "caller"), leg(&core, "callee"));
    assert_eq!(core.bridge(caller, callee), Ok("simple_bridge"));
    core.channel_gone(callee, Cause::NORMAL_CLEARING);
    assert!(!core.channels.exists(caller));
}

#[test]
fn progress_is_recorded_and_early_media_ties_no_fates() {
    let rec = Recorder::default();
    let (core, _dir) = core_with(&rec);
    let (caller, callee) = (leg(&core, "caller"), leg(&core, "callee"));
    assert!(!core.channels.progress(callee));
    core.bridge_frame(
        callee,
        sirius_abi::Frame::control(sirius_abi::Indication::Progress),
    );
    assert!(core.channels.progress(callee));
    // Early media asks the technology (the recorder has no native
    // bridge) and leaves both legs unbridged: the callee failing now
    // does not take the caller with it.
    assert!(core.early_media(caller, callee).is_err());
    assert_eq!(core.channels.get(caller).unwrap().bridged_to, None);
    core.channel_gone(callee, Cause::USER_BUSY);
    assert!(core.channels.exists(caller));
}

/// `bridge 1 2`-style log lines.
fn says(what: &str, chans: &[ChannelId]) -> String {
    let ids: Vec<String> = chans.iter().map(|c| c.0.to_string()).collect();
    format!("{what} {}", ids.join(" "))
}

#[test]
fn the_technology_hears_a_native_bridge_end_before_the_other_leg_is_hung_up() {
    let rec = Recorder::native();
    let (core, _dir) = core_with(&rec);
    let (a, b) = (leg(&core, "caller"), leg(&core, "callee"));
    assert_eq!(core.bridge(a, b), Ok("native_rtp"));
    assert_eq!(rec.take_log(), [says("bridge", &[a, b])]);
    // The callee's far end hangs up: the notice, then the caller's hangup;
    // the caller's own end tells nothing more.
    core.channel_gone(b, Cause::NORMAL_CLEARING);
    assert_eq!(
        rec.take_log(),
        [says("unbridge", &[a, b]), says("hangup", &[a])]
    );
    assert!(!core.channels.exists(a));
    // A generic bridge ending is none of the technology's business.
    let rec = Recorder::default();
    let (core, _dir) = core_with(&rec);
    let (a, b) = (leg(&core, "caller"), leg(&core, "callee"));
    assert_eq!(core.bridge(a, b), Ok("simple_bridge"));
    core.channel_gone(a, Cause::NORMAL_CLEARING);
    assert_eq!(rec.take_log(), [says("hangup", &[b])]);
}

#[test]
fn the_technology_hears_early_media_end_unless_the_answer_keeps_it() {
    let rec = Recorder::native();
    let (core, _dir) = core_with(&rec);
    let (caller, busy, other) = (leg(&core, "a"), leg(&core, "b"), leg(&core, "c"));
    assert_eq!(core.early_media(caller, busy), Ok(()));
    // The callee fails (or loses to another, or Dial gives up: each a
    // hangup of the callee): the caller lives on, the link is over.
    core.channel_gone(busy, Cause::USER_BUSY);
    assert_eq!(
        rec.take_log(),
        [
            says("bridge", &[caller, busy]),
            says("unbridge", &[caller, busy])
        ]
    );
    assert_eq!(core.channels.get(caller).unwrap().early_media, None);
    // A second callee's progress; then the caller hangs up.
    assert_eq!(core.early_media(caller, other), Ok(()));
    assert_eq!(core.hangup(caller, Cause::NORMAL_CLEARING), Ok(()));
    assert_eq!(
        rec.take_log(),
        [
            says("bridge", &[caller, other]),
            says("hangup", &[caller]),
            says("unbridge", &[caller, other])
        ]
    );
    assert_eq!(core.channels.get(other).unwrap().early_media, None);
    // The callee with early media answers: the link becomes the bridge,
    // and its end is told once, as a bridge's.
    let (caller, callee) = (leg(&core, "a"), leg(&core, "b"));
    assert_eq!(core.early_media(caller, callee), Ok(()));
    assert_eq!(core.bridge(caller, callee), Ok("native_rtp"));
    core.channel_gone(callee, Cause::NORMAL_CLEARING);
    assert_eq!(
        rec.take_log(),
        [
            says("bridge", &[caller, callee]),
            says("bridge", &[caller, callee]),
            says("unbridge", &[caller, callee]),
            says("hangup", &[caller])
        ]
    );
}
