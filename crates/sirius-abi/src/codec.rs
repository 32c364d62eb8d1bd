//! The codec vocabulary and capability sets.
//!
//! `Codec` is an index into a fixed table and `Capabilities` a 64-bit set over
//! it, both plain integers at the boundary: cheap to pass, and a plugin built
//! with a shorter table still interoperates (unknown bits are simply unnamed).

use abi_stable::StableAbi;
use std::fmt;

/// What a codec carries.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MediaKind {
    /// Audio samples.
    Audio,
    /// Video frames.
    Video,
    /// Out-of-band events in the media stream (RFC 4733 telephone-event).
    Event,
}

/// One codec, by its position in [`CODEC_TABLE`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Codec(pub u8);

/// Static description of a codec: Asterisk's short name, the SDP encoding name,
/// clock rate and static RTP payload type (if any).
#[derive(Debug, Clone, Copy)]
pub struct CodecInfo {
    /// Asterisk's name, as used in `allow=` (`ulaw`, `alaw`, `g722`…).
    pub name: &'static str,
    /// RTP/SDP encoding name (`PCMU`, `telephone-event`…).
    pub encoding: &'static str,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Static payload type from RFC 3551, when one exists.
    pub static_pt: Option<u8>,
    /// Audio, video or event.
    pub kind: MediaKind,
    /// Description for `core show codecs`.
    pub description: &'static str,
}

macro_rules! codecs {
    ($( $idx:literal $konst:ident: $name:literal, $enc:literal, $rate:literal, $pt:expr, $kind:ident, $desc:literal; )*) => {
        impl Codec {
            $(
                #[doc = $desc]
                pub const $konst: Codec = Codec($idx);
            )*
        }
        /// Every codec Sirius knows, indexed by [`Codec`].
        pub const CODEC_TABLE: &[CodecInfo] = &[
            $( CodecInfo { name: $name, encoding: $enc, clock_rate: $rate, static_pt: $pt, kind: MediaKind::$kind, description: $desc }, )*
        ];
    };
}

codecs! {
    0 PCMU: "ulaw", "PCMU", 8000, Some(0), Audio, "G.711 u-law";
    1 PCMA: "alaw", "PCMA", 8000, Some(8), Audio, "G.711 a-law";
    2 G722: "g722", "G722", 8000, Some(9), Audio, "G722";
    3 GSM: "gsm", "GSM", 8000, Some(3), Audio, "GSM";
    4 SPEEX: "speex", "speex", 8000, None, Audio, "SpeeX";
    5 SPEEX16: "speex16", "speex", 16000, None, Audio, "SpeeX 16khz";
    6 OPUS: "opus", "opus", 48000, None, Audio, "Opus Codec";
    7 TELEPHONE_EVENT: "telephone-event", "telephone-event", 8000, None, Event, "RFC 4733 telephone events (DTMF)";
    8 H263: "h263", "H263", 90000, Some(34), Video, "H.263 video";
    9 H264: "h264", "H264", 90000, None, Video, "H.264 video";
    10 MP4V_ES: "mpeg4", "MP4V-ES", 90000, None, Video, "MPEG4 video";
    11 G729: "g729", "G729", 8000, Some(18), Audio, "G.729A";
    12 SLIN: "slin", "L16", 8000, None, Audio, "16 bit Signed Linear PCM";
}

impl Codec {
    /// The codec's static description, or `None` for an index this build does not know.
    pub fn info(self) -> Option<&'static CodecInfo> {
        CODEC_TABLE.get(self.0 as usize)
    }

    /// Asterisk's short name (`ulaw`), or `unknown`.
    pub fn name(self) -> &'static str {
        self.info().map_or("unknown", |i| i.name)
    }

    /// Audio, video or event; unknown codecs count as audio so they are never silently
    /// dropped from an audio negotiation.
    pub fn kind(self) -> MediaKind {
        self.info().map_or(MediaKind::Audio, |i| i.kind)
    }

    /// Finds a codec by Asterisk name (`ulaw`, `g722`; `g711u`/`pcmu` also accepted).
    pub fn from_name(name: &str) -> Option<Codec> {
        let n = name.trim().to_ascii_lowercase();
        let alias = match n.as_str() {
            "pcmu" | "g711u" | "mulaw" => "ulaw",
            "pcma" | "g711a" => "alaw",
            "h.263" => "h263",
            "h.264" => "h264",
            "mp4v-es" => "mpeg4",
            "speex8" => "speex",
            other => other,
        };
        CODEC_TABLE
            .iter()
            .position(|c| c.name == alias)
            .map(|i| Codec(i as u8))
    }

    /// Finds a codec by SDP encoding name and clock rate (`PCMU/8000`).
    pub fn from_rtpmap(encoding: &str, clock_rate: u32) -> Option<Codec> {
        CODEC_TABLE
            .iter()
            .position(|c| c.encoding.eq_ignore_ascii_case(encoding) && c.clock_rate == clock_rate)
            .map(|i| Codec(i as u8))
    }
}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of codecs (Asterisk's `ast_format_cap` without the preference order; an
/// ordered preference is a `Vec<Codec>` where it matters).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// The empty set.
    pub const NONE: Capabilities = Capabilities(0);

    /// Every codec this build knows.
    pub fn all() -> Capabilities {
        Capabilities((1u64 << CODEC_TABLE.len()) - 1)
    }

    /// The set holding exactly these codecs.
    pub fn of(codecs: &[Codec]) -> Capabilities {
        codecs.iter().fold(Capabilities::NONE, |c, &x| c.with(x))
    }

    /// This set plus `codec`.
    pub fn with(self, codec: Codec) -> Capabilities {
        Capabilities(self.0 | (1u64 << (codec.0 & 63)))
    }

    /// This set minus `codec`.
    pub fn without(self, codec: Codec) -> Capabilities {
        Capabilities(self.0 & !(1u64 << (codec.0 & 63)))
    }

    /// Whether `codec` is in the set.
    pub fn contains(self, codec: Codec) -> bool {
        self.0 & (1u64 << (codec.0 & 63)) != 0
    }

    /// Codecs in both sets.
    pub fn intersect(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & other.0)
    }

    /// Codecs in either set.
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Only the codecs of one media kind.
    pub fn of_kind(self, kind: MediaKind) -> Capabilities {
        Capabilities::of(&self.iter().filter(|c| c.kind() == kind).collect::<Vec<_>>())
    }

    /// Whether any audio codec is in the set: the test for "can these two talk".
    pub fn has_audio(self) -> bool {
        self.iter().any(|c| c.kind() == MediaKind::Audio)
    }

    /// The codecs, in table order.
    pub fn iter(self) -> impl Iterator<Item = Codec> {
        (0..64u8)
            .filter(move |i| self.0 & (1u64 << i) != 0)
            .map(Codec)
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Renders as Asterisk does: `(ulaw|alaw)`, or `(nothing)`.
impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(nothing)");
        }
        let names: Vec<&str> = self.iter().map(Codec::name).collect();
        write!(f, "({})", names.join("|"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_sets() {
        assert_eq!(Codec::from_name("PCMU"), Some(Codec::PCMU));
        assert_eq!(Codec::from_rtpmap("speex", 16000), Some(Codec::SPEEX16));
        assert_eq!(Codec::from_rtpmap("MP4V-ES", 90000), Some(Codec::MP4V_ES));
        let a = Capabilities::of(&[Codec::PCMU, Codec::H263, Codec::TELEPHONE_EVENT]);
        let b = Capabilities::of(&[Codec::PCMA, Codec::H263]);
        assert!(!a.intersect(b).has_audio());
        assert_eq!(a.intersect(b), Capabilities::of(&[Codec::H263]));
        assert_eq!(a.of_kind(MediaKind::Audio).to_string(), "(ulaw)");
        assert!(Capabilities::all().contains(Codec::SLIN));
        assert_eq!(Capabilities::NONE.to_string(), "(nothing)");
    }
}
