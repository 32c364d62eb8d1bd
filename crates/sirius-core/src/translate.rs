//! Which codecs the core can translate between.
//!
//! Only the G.711 family and signed linear are translatable here (µ-law ↔ A-law
//! ↔ slin are table lookups; anything else needs a real codec library). This is
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

#[cfg(test)]
mod tests {
    use super::*;

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
