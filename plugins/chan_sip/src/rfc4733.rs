//! RFC 4733 telephone-events (DTMF in RTP) and SIP INFO DTMF bodies: what
//! the relay needs to turn one into the other, for peers with `dtmfmode =
//! "info"` bridged with peers that send and expect RTP events.
//!
//! ```text
//!  event packet:  RTP header (12 bytes + CSRCs + extension)
//!                 | event (8) | E R volume(6) | duration (16) |
//!  a digit:       start (marker bit) … updates every 20 ms … end ×3 (E bit)
//! ```

/// The events of RFC 4733 §3.2 that are DTMF, in order: 0-9, `*`, `#`, A-D.
const DIGITS: &[u8; 16] = b"0123456789*#ABCD";

/// A digit's event code.
pub fn event_of(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    DIGITS
        .iter()
        .position(|c| char::from(*c) == d)
        .map(|p| p as u8)
}

/// An event code's digit.
pub fn digit_of(event: u8) -> Option<char> {
    DIGITS.get(usize::from(event)).map(|c| char::from(*c))
}

/// One telephone-event packet as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The digit.
    pub digit: char,
    /// The E bit: the event's last packets.
    pub end: bool,
    /// Duration so far, in timestamp units (8 kHz: 8 per ms).
    pub duration: u16,
    /// The RTP timestamp: the same for every packet of one event.
    pub timestamp: u32,
}

/// Reads a telephone-event packet (header length from CSRC count and the
/// extension bit); `None` for anything that is not one.
pub fn parse(packet: &[u8]) -> Option<Event> {
    if packet.len() < 16 || packet[0] >> 6 != 2 {
        return None;
    }
    let mut header = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(header + 2..header + 4)?;
        header += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let p = packet.get(header..header + 4)?;
    Some(Event {
        digit: digit_of(p[0])?,
        end: p[1] & 0x80 != 0,
        duration: u16::from_be_bytes([p[2], p[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
    })
}

/// The packets of one digit, as a phone sends them: a first packet with
/// the marker bit, one every 20 ms of `duration_ms` after it, and the end
/// packet three times (RFC 4733 §2.5.1.4), all with timestamp `ts`.
pub fn packets(
    pt: u8,
    digit: char,
    duration_ms: u32,
    ssrc: u32,
    seq: u16,
    ts: u32,
) -> Vec<Vec<u8>> {
    let Some(event) = event_of(digit) else {
        return Vec::new();
    };
    let total = (duration_ms.clamp(40, 8000) * 8).min(u32::from(u16::MAX)) as u16;
    let mut out = Vec::new();
    let mut seq = seq;
    let mut push = |marker: bool, end: bool, duration: u16| {
        let mut p = Vec::with_capacity(16);
        p.push(0x80);
        p.push(if marker { 0x80 | pt } else { pt & 0x7f });
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.push(event);
        p.push(if end { 0x80 | 10 } else { 10 }); // volume -10 dBm0
        p.extend_from_slice(&duration.to_be_bytes());
        out.push(p);
        seq = seq.wrapping_add(1);
    };
    let mut d = 160u16.min(total);
    push(true, false, d);
    while d + 160 < total {
        d += 160;
        push(false, false, d);
    }
    for _ in 0..3 {
        push(false, true, total);
    }
    out
}

/// A SIP INFO body for a digit: `application/dtmf-relay` (Signal/Duration,
/// what Asterisk and most phones send and read).
pub fn info_body(digit: char, duration_ms: u32) -> String {
    format!("Signal={digit}\r\nDuration={duration_ms}\r\n")
}

/// The digit and duration (ms; 250 when not given) of an INFO body:
/// `application/dtmf-relay` (`Signal=5`, `Duration=160`) or
/// `application/dtmf` (the digit alone).
pub fn parse_info(content_type: &str, body: &[u8]) -> Option<(char, u32)> {
    let text = std::str::from_utf8(body).ok()?;
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let digit = |s: &str| {
        let s = s.trim();
        let mut chars = s.chars();
        let c = chars.next()?;
        (chars.next().is_none() && event_of(c).is_some()).then(|| c.to_ascii_uppercase())
    };
    match ct.as_str() {
        "application/dtmf" => Some((digit(text)?, 250)),
        "application/dtmf-relay" => {
            let mut signal = None;
            let mut duration = 250;
            for line in text.lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "signal" => signal = digit(v),
                    "duration" => duration = v.trim().parse().unwrap_or(250),
                    _ => {}
                }
            }
            Some((signal?, duration))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digit_becomes_a_start_updates_and_three_ends() {
        let p = packets(101, '5', 100, 7, 1000, 4242);
        // 100 ms = 800 units: 160, 320, 480, 640, then 800 three times.
        let events: Vec<Event> = p.iter().map(|x| parse(x).unwrap()).collect();
        assert_eq!(events.len(), 7);
        assert!(events.iter().all(|e| e.digit == '5' && e.timestamp == 4242));
        assert_eq!(
            events.iter().map(|e| e.duration).collect::<Vec<_>>(),
            vec![160, 320, 480, 640, 800, 800, 800]
        );
        assert_eq!(events.iter().filter(|e| e.end).count(), 3);
        assert_eq!(p[0][1], 0x80 | 101, "marker on the first");
        assert_eq!(p[1][1], 101);
        assert_eq!(
            u16::from_be_bytes([p[6][2], p[6][3]]),
            1006,
            "sequence counts"
        );
    }

    #[test]
    fn digits_and_codes_map_both_ways() {
        for (i, d) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(event_of(d), Some(i as u8));
            assert_eq!(digit_of(i as u8), Some(d));
        }
        assert_eq!(event_of('a'), Some(12));
        assert_eq!(event_of('x'), None);
        assert_eq!(digit_of(16), None, "flash and tones are not digits");
    }

    #[test]
    fn info_bodies_of_both_kinds_are_read() {
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', 160))
        );
        assert_eq!(
            parse_info("application/dtmf-relay", b"signal= #\n"),
            Some(('#', 250))
        );
        assert_eq!(parse_info("application/dtmf", b"9"), Some(('9', 250)));
        assert_eq!(parse_info("application/dtmf-relay", b"Signal=55\r\n"), None);
        assert_eq!(parse_info("text/plain", b"5"), None);
        assert_eq!(
            parse_info("application/dtmf-relay", info_body('*', 200).as_bytes()),
            Some(('*', 200))
        );
    }

    #[test]
    fn anything_else_is_not_an_event() {
        assert_eq!(parse(&[0x80, 0, 0, 1]), None);
        let mut voice = vec![0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        voice.extend_from_slice(&[0xff; 4]);
        assert_eq!(parse(&voice), None, "event 255 is no digit");
    }
}
