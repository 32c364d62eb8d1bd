//! The native RTP bridge: two legs of a call, both ours, relay each other's
//! media packets without decoding them and without any frame crossing into the
//! core (Asterisk's `bridge_p2p_rtp_write`).
//!
//! A leg's far end is taken from its SDP. With `comedia` (or when the SDP gave
//! no usable address) the far end is learned from where packets come from —
//! what a phone behind NAT needs.
//!
//! RFC 4733 events (DTMF) are relayed too. Each leg's far end chose its own
//! payload type for `telephone-event` in its SDP; when the two differ, the
//! relay renumbers event packets on the way (the payload itself is the same).

use sirius_sip::sdp::SessionDescription;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// What a far end's SDP says about its audio, from its first active audio
/// stream, parsed once per body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where it receives RTP (`None` when held at 0.0.0.0 or unusable).
    pub addr: Option<SocketAddr>,
    /// Its payload type for RFC 4733 `telephone-event` (8 kHz).
    pub dtmf_pt: Option<u8>,
    /// The G.711 payload types it accepts (0 µ-law, 8 A-law).
    pub g711: Vec<u8>,
}

impl RemoteMedia {
    /// Reads an SDP body; an unparsable one (or none) describes nothing.
    pub fn from_sdp(body: &[u8]) -> RemoteMedia {
        let Ok(sd) = SessionDescription::parse(body) else {
            return RemoteMedia::default();
        };
        let Some(m) = sd.media.iter().find(|m| m.kind == "audio" && m.port != 0) else {
            return RemoteMedia::default();
        };
        let addr = sd
            .connection_for(m)
            .and_then(|c| {
                c.address
                    .split('/')
                    .next()?
                    .parse::<std::net::IpAddr>()
                    .ok()
            })
            .filter(|ip| !ip.is_unspecified())
            .map(|ip| SocketAddr::new(ip, m.port));
        let formats = m.rtp_formats();
        let dtmf_pt = formats
            .iter()
            .find(|f| f.encoding.eq_ignore_ascii_case("telephone-event") && f.clock_rate == 8000)
            .map(|f| f.pt);
        let g711 = formats
            .iter()
            .filter(|f| f.clock_rate == 8000)
            .filter_map(|f| match f.encoding.to_ascii_uppercase().as_str() {
                "PCMU" => Some(0),
                "PCMA" => Some(8),
                _ => None,
            })
            .collect();
        RemoteMedia {
            addr,
            dtmf_pt,
            g711,
        }
    }
}

/// When the packet is G.711 the receiving far end does not accept but the
/// other law is, translates it (µ-law <-> A-law, Asterisk's generic bridge
/// with a translator, done here on the packet). RTP header length honours
/// CSRCs and the extension bit; anything unusual is left alone.
fn translate_g711(packet: &mut [u8], accepts: &[u8]) {
    use sirius_abi::Codec;
    if packet.len() < 12 || accepts.is_empty() || packet[0] >> 6 != 2 {
        return;
    }
    let pt = packet[1] & 0x7f;
    let (from, to, to_pt) = match pt {
        0 if !accepts.contains(&0) && accepts.contains(&8) => (Codec::PCMU, Codec::PCMA, 8),
        8 if !accepts.contains(&8) && accepts.contains(&0) => (Codec::PCMA, Codec::PCMU, 0),
        _ => return,
    };
    let mut header = 12 + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        let Some(ext) = packet.get(header + 2..header + 4) else {
            return;
        };
        header += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    let Some(payload) = packet.get_mut(header..) else {
        return;
    };
    sirius_core::translate::transcode_g711(payload, from, to);
    packet[1] = (packet[1] & 0x80) | to_pt;
}

/// Rewrites an RTP packet's payload type `from` into `to` (marker bit kept).
fn renumber(packet: &mut [u8], from: Option<u8>, to: Option<u8>) {
    if let (Some(from), Some(to), Some(b)) = (from, to, packet.get_mut(1)) {
        if from != to && *b & 0x7f == from {
            *b = (*b & 0x80) | to;
        }
    }
}

/// One leg as the relay sees it.
pub struct Leg {
    /// Our RTP socket for the leg.
    pub socket: UdpSocket,
    /// Where the leg's far end receives media.
    pub remote: Option<SocketAddr>,
    /// Learn the far end from received packets (comedia).
    pub learn: bool,
    /// The far end's `telephone-event` payload type (RTP legs only).
    pub dtmf_pt: Option<u8>,
    /// The G.711 payload types the far end accepts (RTP legs only; empty:
    /// unknown, relay as is).
    pub g711: Vec<u8>,
}

/// Echo: every packet from the leg's far end goes straight back to it (the
/// `Echo()` application, with the media never leaving the plugin).
pub async fn echo(leg: Leg, relayed: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 2048];
    loop {
        if let Ok((n, src)) = leg.socket.recv_from(&mut buf).await {
            if leg.socket.send_to(&buf[..n], src).await.is_ok() {
                relayed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Relays until aborted; counts relayed packets in `relayed`.
pub async fn run(a: Leg, b: Leg, relayed: Arc<AtomicU64>) {
    let (mut ra, mut rb) = (a.remote, b.remote);
    let mut buf_a = vec![0u8; 2048];
    let mut buf_b = vec![0u8; 2048];
    loop {
        tokio::select! {
            r = a.socket.recv_from(&mut buf_a) => if let Ok((n, src)) = r {
                if a.learn || ra.is_none() {
                    ra = Some(src);
                }
                if let Some(dest) = rb {
                    renumber(&mut buf_a[..n], a.dtmf_pt, b.dtmf_pt);
                    translate_g711(&mut buf_a[..n], &b.g711);
                    if b.socket.send_to(&buf_a[..n], dest).await.is_ok() {
                        relayed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
            r = b.socket.recv_from(&mut buf_b) => if let Ok((n, src)) = r {
                if b.learn || rb.is_none() {
                    rb = Some(src);
                }
                if let Some(dest) = ra {
                    renumber(&mut buf_b[..n], b.dtmf_pt, a.dtmf_pt);
                    translate_g711(&mut buf_b[..n], &a.g711);
                    if a.socket.send_to(&buf_b[..n], dest).await.is_ok() {
                        relayed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{renumber, translate_g711, RemoteMedia};

    #[test]
    fn g711_is_translated_only_where_the_far_end_needs_it() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        assert_eq!(RemoteMedia::from_sdp(sdp).g711, vec![8]);
        let mut pkt = vec![0x80, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        pkt.extend_from_slice(&[0xff; 160]); // µ-law silence
        translate_g711(&mut pkt, &[8]);
        assert_eq!(pkt[1], 8);
        assert!(pkt[12..].iter().all(|b| *b == 0xd5), "A-law silence");
        let mut same = pkt.clone();
        translate_g711(&mut same, &[8, 0]);
        assert_eq!(same, pkt, "accepted as is: untouched");
    }

    #[test]
    fn telephone_events_are_renumbered_between_legs_and_nothing_else_is() {
        let offer = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n";
        assert_eq!(RemoteMedia::from_sdp(offer).dtmf_pt, Some(96));
        let mut event = [0x80, 0x80 | 96, 0, 1];
        renumber(&mut event, Some(96), Some(101));
        assert_eq!(event[1], 0x80 | 101, "marker bit kept");
        let mut audio = [0x80, 0, 0, 2];
        renumber(&mut audio, Some(96), Some(101));
        assert_eq!(audio[1], 0);
        let mut same = [0x80, 101, 0, 3];
        renumber(&mut same, Some(101), None);
        assert_eq!(same[1], 101, "no event type on the other side: untouched");
    }

    #[test]
    fn finds_the_audio_address() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 34\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(
            RemoteMedia::from_sdp(sdp).addr,
            Some("127.0.0.1:4000".parse().unwrap())
        );
        let held = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        assert_eq!(RemoteMedia::from_sdp(held).addr, None);
    }
}
