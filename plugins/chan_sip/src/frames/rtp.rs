//! RTP packets (RFC 3550 §5.1) as the frame path reads and writes them: the
//! fixed header, CSRCs, a header extension and padding taken off on the way
//! in; a stream of our own (SSRC, sequence, timestamp) on the way out. The
//! relay moves packets without looking past the payload type; only a leg
//! whose media goes to the core (a conference, a bridge to another
//! technology) is read this far.

/// What the frame path needs of a received packet's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The marker bit: the first packet of a talkspurt for audio.
    pub marker: bool,
    /// Payload type (7 bits).
    pub pt: u8,
    /// Sequence number.
    pub seq: u16,
    /// Media timestamp in the payload's RTP clock.
    pub timestamp: u32,
    /// The source.
    pub ssrc: u32,
}

/// The header and payload of an RTP version 2 packet; `None` for anything
/// else: too short, another version, RTCP sharing the port (RFC 5761:
/// packet types 200–204 read as marker + payload type 72–76), a CSRC list,
/// extension or padding longer than the packet.
pub fn parse(packet: &[u8]) -> Option<(Header, &[u8])> {
    let [b0, b1, s0, s1, t0, t1, t2, t3, i0, i1, i2, i3, ..] = *packet else {
        return None;
    };
    if b0 & 0xC0 != 0x80 || (72..=76).contains(&(b1 & 0x7f)) {
        return None;
    }
    let csrcs = usize::from(b0 & 0x0f);
    let mut start = 12 + 4 * csrcs;
    if b0 & 0x10 != 0 {
        // Extension: 16 bits of profile data, 16 bits of length in words.
        let words = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = packet.len();
    if b0 & 0x20 != 0 {
        let pad = usize::from(*packet.last()?);
        end = end.checked_sub(pad).filter(|e| *e >= start && pad > 0)?;
    }
    let payload = packet.get(start..end)?;
    Some((
        Header {
            marker: b1 & 0x80 != 0,
            pt: b1 & 0x7f,
            seq: u16::from_be_bytes([s0, s1]),
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            ssrc: u32::from_be_bytes([i0, i1, i2, i3]),
        },
        payload,
    ))
}

/// A stream we send: our SSRC, the next sequence number and the timestamp
/// of the next packet. Sequence and timestamp start at random values (RFC
/// 3550 §5.1) taken from the seed.
#[derive(Debug, Clone)]
pub struct Outgoing {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    /// The next voice packet starts a talkspurt (the first, or the first
    /// after a silence the sender left): its marker bit is set.
    talkspurt: bool,
}

impl Outgoing {
    /// A stream from a random `seed` (SSRC, first sequence number and first
    /// timestamp are all drawn from it).
    pub fn new(seed: u64) -> Outgoing {
        Outgoing {
            ssrc: (seed >> 32) as u32 | 1,
            seq: (seed >> 16) as u16,
            timestamp: seed as u32 & 0x7fff_ffff,
            talkspurt: true,
        }
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// A voice packet of `payload` in payload type `pt` that lasts `ticks`
    /// of the RTP clock; the timestamp then moves on by `ticks`.
    pub fn voice(&mut self, pt: u8, ticks: u32, payload: &[u8]) -> Vec<u8> {
        let marker = std::mem::replace(&mut self.talkspurt, false);
        let p = self.packet(pt, marker, self.timestamp, payload);
        self.timestamp = self.timestamp.wrapping_add(ticks);
        p
    }

    /// Nothing was sent for `ticks` of the RTP clock (the source had no
    /// audio): the timestamp keeps real time and the next packet is marked.
    pub fn skip(&mut self, ticks: u32) {
        self.timestamp = self.timestamp.wrapping_add(ticks);
        self.talkspurt = true;
    }

    /// The timestamp the next packet will carry (an RFC 4733 event takes
    /// it as its start).
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// Any packet of this stream (an RFC 4733 event: the caller chooses
    /// the marker and keeps the event's timestamp): the sequence moves on.
    pub fn packet(&mut self, pt: u8, marker: bool, timestamp: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + payload.len());
        p.push(0x80);
        p.push(pt & 0x7f | if marker { 0x80 } else { 0 });
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(b0: u8, b1: u8) -> Vec<u8> {
        vec![b0, b1, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xde, 0xad, 0xbe, 0xef]
    }

    #[test]
    fn a_plain_packet() {
        let mut p = header(0x80, 0x80);
        p.extend_from_slice(&[1, 2, 3]);
        let (h, payload) = parse(&p).unwrap();
        assert_eq!(
            h,
            Header {
                marker: true,
                pt: 0,
                seq: 0x1234,
                timestamp: 320,
                ssrc: 0xdead_beef
            }
        );
        assert_eq!(payload, [1, 2, 3]);
    }

    #[test]
    fn csrcs_extension_and_padding_are_taken_off() {
        // Two CSRCs, an extension of one word, three bytes of padding.
        let mut p = header(0x80 | 0x20 | 0x10 | 2, 8);
        p.extend_from_slice(&[0; 8]); // CSRCs
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension
        p.extend_from_slice(&[0xd5, 0xd5]); // payload
        p.extend_from_slice(&[0, 0, 3]); // padding
        let (h, payload) = parse(&p).unwrap();
        assert_eq!(h.pt, 8);
        assert_eq!(payload, [0xd5, 0xd5]);
    }

    #[test]
    fn what_is_not_rtp_is_refused() {
        assert_eq!(parse(&[0x80, 0, 0, 1]), None, "short");
        assert_eq!(parse(&header(0x40, 0)), None, "version 1");
        for pt in 200..=204u8 {
            assert_eq!(parse(&header(0x80, pt)), None, "RTCP {pt}");
        }
        let mut lying = header(0x80 | 3, 0); // three CSRCs, none there
        lying.push(1);
        assert_eq!(parse(&lying), None);
        let mut pad = header(0xa0, 0);
        pad.extend_from_slice(&[1, 40]); // 40 bytes of padding in 14
        assert_eq!(parse(&pad), None);
        let mut zero = header(0xa0, 0);
        zero.extend_from_slice(&[1, 0]);
        assert_eq!(parse(&zero), None, "padding of 0 bytes");
        let mut ext = header(0x90, 0);
        ext.extend_from_slice(&[0, 0, 0, 9]); // nine words announced
        assert_eq!(parse(&ext), None);
        let empty = header(0x80, 0);
        assert_eq!(parse(&empty).map(|(_, p)| p.len()), Some(0));
    }

    #[test]
    fn an_outgoing_stream_numbers_its_packets() {
        let mut s = Outgoing::new(0x0102_0304_0506_0708);
        let first = s.voice(0, 160, &[0xff; 160]);
        let (h, payload) = parse(&first).unwrap();
        assert!(h.marker, "the first packet starts a talkspurt");
        assert_eq!((h.ssrc, h.seq), (0x0102_0305, 0x0506));
        assert_eq!(h.timestamp, 0x0506_0708);
        assert_eq!(payload.len(), 160);
        let (h2, _) = parse(&s.voice(0, 160, &[0xff; 160])).unwrap();
        assert_eq!(
            (h2.marker, h2.seq, h2.timestamp),
            (false, 0x0507, 0x0506_0708 + 160)
        );
        s.skip(320);
        let (h3, _) = parse(&s.voice(8, 160, &[0xd5; 160])).unwrap();
        assert_eq!((h3.marker, h3.pt, h3.seq), (true, 8, 0x0508));
        assert_eq!(
            h3.timestamp,
            0x0506_0708 + 160 * 4,
            "real time kept across the gap"
        );
        assert_eq!(s.timestamp(), 0x0506_0708 + 160 * 5);
    }
}
