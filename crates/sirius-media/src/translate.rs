//! Which codecs the core can translate between.
//!
//! Only the G.711 family and signed linear are translatable here (µ-law ↔ A-law
//! ↔ slin are table lookups, written here from the G.711 definitions: a few
//! lines each, not worth a dependency; anything else needs a real codec library). This is
//! the check behind BEARERCAPABILITY_NOTAVAIL: two legs that share no codec and
//! have no translation path cannot be bridged (Asterisk's
//! `ast_translator_best_choice` failing in `ast_request`).

use sirius_abi::{Capabilities, Codec, MediaKind};

/// Codecs with a translation path to one another.
const G711_FAMILY: [Codec; 3] = [Codec::PCMU, Codec::PCMA, Codec::SLIN];

/// Whether audio in `from` can be turned into audio in `to` (same codec or a path).
pub fn can_translate(from: Codec, to: Codec) -> bool {
    from == to || (G711_FAMILY.contains(&from) && G711_FAMILY.contains(&to))
}

/// Whether any audio codec of `from` reaches any audio codec of `to`.
pub fn translatable(from: Capabilities, to: Capabilities) -> bool {
    let (a, b) = (from.of_kind(MediaKind::Audio), to.of_kind(MediaKind::Audio));
    a.iter().any(|x| b.iter().any(|y| can_translate(x, y)))
}

/// µ-law byte → 16-bit linear (ITU-T G.711).
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// A-law byte → 16-bit linear (ITU-T G.711).
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// 16-bit linear → A-law byte (ITU-T G.711).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let (mask, magnitude) = if sample >= 0 {
        (0xd5u8, i32::from(sample))
    } else {
        (0x55u8, -i32::from(sample) - 1)
    };
    let magnitude = magnitude.min(0x7fff);
    let mut exponent = 7u8;
    while exponent > 0 && magnitude < (0x100 << (exponent - 1)) {
        exponent -= 1;
    }
    let mantissa = if exponent == 0 {
        (magnitude >> 4) & 0x0f
    } else {
        (magnitude >> (exponent + 3)) & 0x0f
    } as u8;
    ((exponent << 4) | mantissa) ^ mask
}

/// 16-bit linear → µ-law byte (ITU-T G.711).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let (sign, magnitude) = if sample < 0 {
        (0x80u8, (-i32::from(sample)).min(32635))
    } else {
        (0u8, i32::from(sample).min(32635))
    };
    let magnitude = magnitude + BIAS;
    let mut exponent = 7u8;
    while exponent > 0 && magnitude & (0x4000 >> (7 - exponent)) == 0 {
        exponent -= 1;
    }
    let mantissa = ((magnitude >> (exponent + 3)) & 0x0f) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// µ-law → A-law and back, one byte at a time: tables built once, so a
/// relayed packet costs one lookup per sample.
fn g711_tables() -> &'static ([u8; 256], [u8; 256]) {
    static TABLES: std::sync::OnceLock<([u8; 256], [u8; 256])> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let (mut u2a, mut a2u) = ([0u8; 256], [0u8; 256]);
        for b in 0..=255u8 {
            u2a[usize::from(b)] = linear_to_alaw(ulaw_to_linear(b));
            a2u[usize::from(b)] = linear_to_ulaw(alaw_to_linear(b));
        }
        (u2a, a2u)
    })
}

/// The law to translate G.711 audio in `from` into for a receiver that
/// `accepts` some codecs: the other law when it lacks `from` and takes that
/// one; `None` when no translation is needed (or none would help). Both the
/// core's generic bridge and chan_sip's native relay decide with this.
pub fn g711_target(from: Codec, accepts: impl Fn(Codec) -> bool) -> Option<Codec> {
    let other = match from {
        Codec::PCMU => Codec::PCMA,
        Codec::PCMA => Codec::PCMU,
        _ => return None,
    };
    (!accepts(from) && accepts(other)).then_some(other)
}

/// Translates G.711 samples in place from `from` to `to`; false (and the
/// payload untouched) for any other pair.
pub fn transcode_g711(payload: &mut [u8], from: Codec, to: Codec) -> bool {
    let (u2a, a2u) = g711_tables();
    let table = match (from, to) {
        (Codec::PCMU, Codec::PCMA) => u2a,
        (Codec::PCMA, Codec::PCMU) => a2u,
        _ => return from == to,
    };
    for b in payload {
        *b = table[usize::from(*b)];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_values_match_the_recommendation() {
        // Silence and the extremes, as tabulated in G.711.
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
        // Every code word survives a round trip through linear.
        for b in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "A-law {b:#x}");
            let u = linear_to_ulaw(ulaw_to_linear(b));
            assert!(u == b || (b == 0x7f && u == 0xff), "µ-law {b:#x} -> {u:#x}");
        }
    }

    #[test]
    fn transcoding_keeps_the_signal() {
        let mut pkt: Vec<u8> = (0..=255u8).collect();
        assert!(transcode_g711(&mut pkt, Codec::PCMU, Codec::PCMA));
        for (b, a) in (0..=255u8).zip(&pkt) {
            let (x, y) = (i32::from(ulaw_to_linear(b)), i32::from(alaw_to_linear(*a)));
            // Within one A-law quantisation step of the µ-law value.
            assert!(
                (x - y).abs() <= (x.abs() / 16).max(16),
                "{b:#x}: {x} vs {y}"
            );
        }
        let mut g729 = vec![1, 2, 3];
        assert!(!transcode_g711(&mut g729, Codec::G729, Codec::PCMA));
        assert_eq!(g729, vec![1, 2, 3]);
    }

    #[test]
    fn g711_translates_others_do_not() {
        let ulaw = Capabilities::of(&[Codec::PCMU]);
        let alaw = Capabilities::of(&[Codec::PCMA]);
        let g729 = Capabilities::of(&[Codec::G729]);
        assert!(translatable(ulaw, alaw));
        assert!(!translatable(ulaw, g729));
        assert!(translatable(g729, g729.with(Codec::GSM)));
        // Video alone is not a bearer for a call.
        let h263 = Capabilities::of(&[Codec::H263]);
        assert!(!translatable(h263, h263));
    }
}
