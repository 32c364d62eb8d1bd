//! Tones a SIP leg hears when the PBX has no other media for it: ringback
//! for an answered call asked to ring (a blind transfer's transferee while
//! the target rings; `Ringing()` on an answered call), as Asterisk plays
//! the `indications.conf` tone of a channel that cannot pass the indication
//! on. Its default country is `us`: 440 + 480 Hz, 2 s on, 4 s off.
//!
//! ```text
//!   Indicate(Ringing) on an answered leg, not in a relay ─▶ tone (20 ms RTP)
//!   bridge, echo, unbridge, release, Indicate(anything else) ─▶ stop
//! ```
//!
//! The packets come from the leg's own RTP socket, in the law its far end
//! accepts (µ-law unless it takes only A-law), with a sequence, timestamp
//! and SSRC of their own (the relay's packets after it are another source,
//! which RTP receivers expect after a change of stream).

use std::f64::consts::PI;
use std::time::Duration;

/// One packet's worth of audio.
pub const FRAME: Duration = Duration::from_millis(20);
/// Samples in a frame at 8 kHz.
const SAMPLES: usize = 160;
/// Each sine's peak, about -13 dBm0 for the two together: the level of a
/// network ringback, loud enough without clipping.
const AMPLITUDE: f64 = 4_000.0;

/// The US ringback as RTP packets, one per [`FRAME`].
pub struct Ringback {
    pt: u8,
    ssrc: u32,
    seq: u16,
    /// Samples sent so far (the RTP timestamp, and where in the cadence).
    t: u64,
}

impl Ringback {
    /// A tone in payload type `pt` (0: µ-law, 8: A-law) with source `ssrc`.
    pub fn new(pt: u8, ssrc: u32) -> Ringback {
        Ringback {
            pt: if pt == 8 { 8 } else { 0 },
            ssrc,
            seq: (ssrc >> 16) as u16,
            t: 0,
        }
    }

    /// The next 20 ms packet.
    pub fn next_packet(&mut self) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + SAMPLES);
        // V=2, no padding, extension or CSRC; the marker on the first packet.
        p.push(0x80);
        p.push(self.pt | if self.t == 0 { 0x80 } else { 0 });
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&(self.t as u32).to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        for i in 0..SAMPLES as u64 {
            let n = self.t + i;
            // 2 s on, 4 s off.
            let on = (n / 8_000) % 6 < 2;
            let s = match on {
                true => {
                    let x = n as f64 / 8_000.0;
                    AMPLITUDE * ((2.0 * PI * 440.0 * x).sin() + (2.0 * PI * 480.0 * x).sin())
                }
                false => 0.0,
            };
            let s = s as i16;
            p.push(match self.pt {
                8 => sirius_media::translate::linear_to_alaw(s),
                _ => sirius_media::translate::linear_to_ulaw(s),
            });
        }
        self.seq = self.seq.wrapping_add(1);
        self.t += SAMPLES as u64;
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sirius_media::translate::{alaw_to_linear, ulaw_to_linear};

    /// The loudest sample of a packet's payload.
    fn peak(p: &[u8], law: u8) -> i16 {
        p[12..]
            .iter()
            .map(|&b| match law {
                8 => alaw_to_linear(b),
                _ => ulaw_to_linear(b),
            })
            .map(i16::unsigned_abs)
            .max()
            .map_or(0, |m| m as i16)
    }

    #[test]
    fn ringback_is_rtp_in_the_far_ends_law_with_the_us_cadence() {
        let mut tone = Ringback::new(0, 0x1234_5678);
        let first = tone.next_packet();
        assert_eq!(first.len(), 12 + 160);
        assert_eq!((first[0], first[1]), (0x80, 0x80), "V=2, marker, PCMU");
        assert_eq!(&first[8..12], &0x1234_5678u32.to_be_bytes());
        let second = tone.next_packet();
        assert_eq!(second[1], 0, "no marker after the first");
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(seq(&second), seq(&first).wrapping_add(1));
        assert_eq!(ts(&second), ts(&first) + 160);
        assert!(peak(&second, 0) > 4_000, "the tone is on in the first 2 s");
        // 2 s on (100 packets), then 4 s of silence, then on again.
        let packets: Vec<Vec<u8>> = (2..300).map(|_| tone.next_packet()).collect();
        assert!(peak(&packets[97], 0) > 4_000, "still on at 1.98 s");
        assert!(peak(&packets[98], 0) < 10, "off from 2 s");
        assert!(peak(&packets[297], 0) < 10, "off until 6 s");
        let mut later = tone.next_packet();
        later = if peak(&later, 0) > 4_000 {
            later
        } else {
            tone.next_packet()
        };
        assert!(peak(&later, 0) > 4_000, "on again at 6 s");
        let mut alaw = Ringback::new(8, 1);
        let p = alaw.next_packet();
        assert_eq!(p[1] & 0x7f, 8);
        let p = alaw.next_packet();
        assert!(peak(&p, 8) > 4_000);
    }
}
