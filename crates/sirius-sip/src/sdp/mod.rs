//! SDP (RFC 4566): parsing and writing session descriptions, and offer/answer
//! ([`negotiate`], RFC 3264).
//!
//! Lines we do not interpret are kept in order and written back, so a
//! description passes through unchanged where we do not change it.

pub mod negotiate;

use std::fmt::{self, Write as _};

/// Why a body is not SDP we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// A line is not `x=value`.
    #[error("line {line}: not a 'type=value' line")]
    Line {
        /// 1-based line number.
        line: usize,
    },
    /// `v=0` missing or not first.
    #[error("missing v=0")]
    Version,
    /// `o=` malformed or missing.
    #[error("bad or missing o= line")]
    Origin,
    /// `c=` malformed.
    #[error("line {line}: bad c= line")]
    Connection {
        /// 1-based line number.
        line: usize,
    },
    /// `m=` malformed.
    #[error("line {line}: bad m= line")]
    Media {
        /// 1-based line number.
        line: usize,
    },
    /// Not UTF-8.
    #[error("SDP is not valid UTF-8")]
    Encoding,
}

/// `c=IN IP4 192.0.2.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IN`.
    pub net_type: String,
    /// `IP4` or `IP6`.
    pub addr_type: String,
    /// The address (may carry `/ttl`).
    pub address: String,
}

impl Connection {
    /// An `IN IP4`/`IN IP6` connection for an address.
    pub fn new(address: &str) -> Connection {
        let addr_type = if address.contains(':') { "IP6" } else { "IP4" };
        Connection {
            net_type: "IN".into(),
            addr_type: addr_type.into(),
            address: address.into(),
        }
    }

    /// Whether this is the RFC 2543 hold address.
    pub fn is_hold_address(&self) -> bool {
        self.address == "0.0.0.0" || self.address == "::"
    }

    fn parse(v: &str, line: usize) -> Result<Connection, SdpError> {
        let mut p = v.split_ascii_whitespace();
        match (p.next(), p.next(), p.next(), p.next()) {
            (Some(n), Some(a), Some(addr), None) => Ok(Connection {
                net_type: n.into(),
                addr_type: a.into(),
                address: addr.into(),
            }),
            _ => Err(SdpError::Connection { line }),
        }
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

/// `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (`-`).
    pub username: String,
    /// Session id (kept as text: some peers send more than 64 bits).
    pub session_id: String,
    /// Session version; must grow with each new offer in a dialog.
    pub session_version: String,
    /// The address part.
    pub connection: Connection,
}

/// An `a=` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name (`rtpmap`).
    pub name: String,
    /// Value after `:`, if any.
    pub value: Option<String>,
}

/// Media direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// We are asked only to receive / they only send.
    SendOnly,
    /// They only receive.
    RecvOnly,
    /// No media.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer takes for an offered one.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    fn from_attr(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `image`…
    pub kind: String,
    /// Port; 0 marks a rejected or disabled stream.
    pub port: u16,
    /// `/count` after the port, if given.
    pub port_count: Option<u16>,
    /// `RTP/AVP`…
    pub proto: String,
    /// Formats (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// `b=` lines.
    pub bandwidths: Vec<String>,
    /// `a=` lines in order.
    pub attributes: Vec<Attribute>,
    /// Other lines (`i=`, `k=`) in order.
    pub other: Vec<(char, String)>,
}

/// An RTP payload format as described by `rtpmap`/`fmtp` (or RFC 3551's static table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpFormat {
    /// Payload type.
    pub pt: u8,
    /// Encoding name as written (`PCMU`, `speex`).
    pub encoding: String,
    /// Clock rate.
    pub clock_rate: u32,
    /// Channels, when given.
    pub channels: Option<u8>,
    /// `fmtp` parameters.
    pub fmtp: Option<String>,
}

/// RFC 3551's static payload types that matter to a PBX.
fn static_format(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        26 => ("JPEG", 90000),
        31 => ("H261", 90000),
        34 => ("H263", 90000),
        _ => return None,
    })
}

impl Media {
    /// A section with no attributes.
    pub fn new(kind: &str, port: u16, proto: &str) -> Media {
        Media {
            kind: kind.into(),
            port,
            port_count: None,
            proto: proto.into(),
            formats: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            attributes: Vec::new(),
            other: Vec::new(),
        }
    }

    /// The value of the first attribute of that name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.value.as_deref())
    }

    /// Adds an attribute.
    pub fn push_attr(&mut self, name: &str, value: Option<String>) {
        self.attributes.push(Attribute {
            name: name.into(),
            value,
        });
    }

    /// The direction attribute, if any, at media level.
    pub fn direction_attr(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .find_map(|a| Direction::from_attr(&a.name))
    }

    /// Whether the stream is RTP.
    pub fn is_rtp(&self) -> bool {
        self.proto.starts_with("RTP/")
    }

    /// The formats with their rtpmap/fmtp (static types filled from RFC 3551).
    /// Formats that are neither mapped nor static are left out.
    pub fn rtp_formats(&self) -> Vec<RtpFormat> {
        let mut out = Vec::new();
        for f in &self.formats {
            let Ok(pt) = f.parse::<u8>() else { continue };
            let map = self
                .attributes
                .iter()
                .filter(|a| a.name == "rtpmap")
                .find_map(|a| {
                    let v = a.value.as_deref()?;
                    let (n, rest) = v.split_once(' ')?;
                    (n.trim() == f).then(|| rest.trim().to_string())
                });
            let fmtp = self
                .attributes
                .iter()
                .filter(|a| a.name == "fmtp")
                .find_map(|a| {
                    let v = a.value.as_deref()?;
                    let (n, rest) = v.split_once(' ')?;
                    (n.trim() == f).then(|| rest.trim().to_string())
                });
            let (encoding, clock_rate, channels) = match map {
                Some(m) => {
                    let mut p = m.split('/');
                    let enc = p.next().unwrap_or("").to_string();
                    let Some(rate) = p.next().and_then(|r| r.parse().ok()) else {
                        continue;
                    };
                    (enc, rate, p.next().and_then(|c| c.parse().ok()))
                }
                None => match static_format(pt) {
                    Some((e, r)) => (e.to_string(), r, None),
                    None => continue,
                },
            };
            out.push(RtpFormat {
                pt,
                encoding,
                clock_rate,
                channels,
                fmtp,
            });
        }
        out
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=`.
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level `b=`.
    pub bandwidths: Vec<String>,
    /// `t=` lines.
    pub timing: Vec<String>,
    /// Session-level `a=` lines.
    pub attributes: Vec<Attribute>,
    /// Other session-level lines (`i=`, `u=`, `e=`, `p=`, `r=`, `z=`, `k=`) in order.
    pub other: Vec<(char, String)>,
    /// `m=` sections.
    pub media: Vec<Media>,
}

fn parse_attr(v: &str) -> Attribute {
    match v.split_once(':') {
        Some((n, val)) => Attribute {
            name: n.to_string(),
            value: Some(val.to_string()),
        },
        None => Attribute {
            name: v.to_string(),
            value: None,
        },
    }
}

impl SessionDescription {
    /// Parses an SDP body.
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::Encoding)?;
        let mut lines = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .enumerate()
            .filter(|(_, l)| !l.is_empty());
        match lines.next() {
            Some((_, "v=0")) => {}
            _ => return Err(SdpError::Version),
        }
        let mut origin = None;
        let mut sd = SessionDescription {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                session_version: String::new(),
                connection: Connection::new("0.0.0.0"),
            },
            session_name: String::new(),
            connection: None,
            bandwidths: Vec::new(),
            timing: Vec::new(),
            attributes: Vec::new(),
            other: Vec::new(),
            media: Vec::new(),
        };
        for (i, line) in lines {
            let n = i + 1;
            let b = line.as_bytes();
            if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
                return Err(SdpError::Line { line: n });
            }
            let (t, v) = (b[0] as char, &line[2..]);
            let media = sd.media.last_mut();
            match (t, media) {
                ('m', _) => {
                    let mut p = v.split_ascii_whitespace();
                    let (Some(kind), Some(port), Some(proto)) = (p.next(), p.next(), p.next())
                    else {
                        return Err(SdpError::Media { line: n });
                    };
                    let (port, count) = match port.split_once('/') {
                        Some((a, c)) => {
                            (a, Some(c.parse().map_err(|_| SdpError::Media { line: n })?))
                        }
                        None => (port, None),
                    };
                    let mut m = Media::new(
                        kind,
                        port.parse().map_err(|_| SdpError::Media { line: n })?,
                        proto,
                    );
                    m.port_count = count;
                    m.formats = p.map(str::to_string).collect();
                    if m.formats.is_empty() {
                        return Err(SdpError::Media { line: n });
                    }
                    sd.media.push(m);
                }
                ('o', None) => {
                    let p: Vec<&str> = v.split_ascii_whitespace().collect();
                    if p.len() != 6 {
                        return Err(SdpError::Origin);
                    }
                    origin = Some(Origin {
                        username: p[0].into(),
                        session_id: p[1].into(),
                        session_version: p[2].into(),
                        connection: Connection {
                            net_type: p[3].into(),
                            addr_type: p[4].into(),
                            address: p[5].into(),
                        },
                    });
                }
                ('s', None) => sd.session_name = v.to_string(),
                ('c', None) => sd.connection = Some(Connection::parse(v, n)?),
                ('c', Some(m)) => m.connection = Some(Connection::parse(v, n)?),
                ('b', None) => sd.bandwidths.push(v.to_string()),
                ('b', Some(m)) => m.bandwidths.push(v.to_string()),
                ('t', None) => sd.timing.push(v.to_string()),
                ('a', None) => sd.attributes.push(parse_attr(v)),
                ('a', Some(m)) => m.attributes.push(parse_attr(v)),
                (t, None) => sd.other.push((t, v.to_string())),
                (t, Some(m)) => m.other.push((t, v.to_string())),
            }
        }
        sd.origin = origin.ok_or(SdpError::Origin)?;
        Ok(sd)
    }

    /// The session-level direction attribute, if any.
    pub fn direction_attr(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .find_map(|a| Direction::from_attr(&a.name))
    }

    /// A media section's effective direction (media level, else session level, else sendrecv).
    pub fn direction(&self, m: &Media) -> Direction {
        m.direction_attr()
            .or_else(|| self.direction_attr())
            .unwrap_or(Direction::SendRecv)
    }

    /// A media section's effective connection.
    pub fn connection_for<'a>(&'a self, m: &'a Media) -> Option<&'a Connection> {
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// Writes the description with CRLF line ends, in RFC 4566 order.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(512);
        let o = &self.origin;
        let _ = write!(
            s,
            "v=0\r\no={} {} {} {}\r\ns={}\r\n",
            o.username, o.session_id, o.session_version, o.connection, self.session_name
        );
        for (t, v) in self.other.iter().filter(|(t, _)| "iuep".contains(*t)) {
            let _ = write!(s, "{t}={v}\r\n");
        }
        if let Some(c) = &self.connection {
            let _ = write!(s, "c={c}\r\n");
        }
        for b in &self.bandwidths {
            let _ = write!(s, "b={b}\r\n");
        }
        let timing: &[String] = if self.timing.is_empty() {
            &[]
        } else {
            &self.timing
        };
        if timing.is_empty() {
            s.push_str("t=0 0\r\n");
        }
        for t in timing {
            let _ = write!(s, "t={t}\r\n");
        }
        for (t, v) in self.other.iter().filter(|(t, _)| "rzk".contains(*t)) {
            let _ = write!(s, "{t}={v}\r\n");
        }
        for a in &self.attributes {
            write_attr(&mut s, a);
        }
        for m in &self.media {
            let _ = write!(s, "m={} {}", m.kind, m.port);
            if let Some(c) = m.port_count {
                let _ = write!(s, "/{c}");
            }
            let _ = write!(s, " {} {}\r\n", m.proto, m.formats.join(" "));
            for (t, v) in m.other.iter().filter(|(t, _)| *t == 'i') {
                let _ = write!(s, "{t}={v}\r\n");
            }
            if let Some(c) = &m.connection {
                let _ = write!(s, "c={c}\r\n");
            }
            for b in &m.bandwidths {
                let _ = write!(s, "b={b}\r\n");
            }
            for (t, v) in m.other.iter().filter(|(t, _)| *t != 'i') {
                let _ = write!(s, "{t}={v}\r\n");
            }
            for a in &m.attributes {
                write_attr(&mut s, a);
            }
        }
        f.write_str(&s)
    }
}

fn write_attr(s: &mut String, a: &Attribute) {
    match &a.value {
        Some(v) => {
            let _ = write!(s, "a={}:{v}\r\n", a.name);
        }
        None => {
            let _ = write!(s, "a={}\r\n", a.name);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The audio+video offer of the mobile video call (shared/seeds/000), ports filled in.
    pub const MOBILE_OFFER: &str = "v=0\r\n\
o=- 26069 29246 IN IP4 10.0.0.5\r\n\
s=-\r\n\
c=IN IP4 10.0.0.5\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 101 99 0 8 104\r\n\
a=rtpmap:101 speex/16000\r\n\
a=fmtp:101 vbr=on;mode=6\r\n\
a=rtpmap:99 speex/8000\r\n\
a=fmtp:99 vbr=on;mode=3\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:104 telephone-event/8000\r\n\
a=fmtp:104 0-15\r\n\
m=video 40002 RTP/AVP 97 34\r\n\
a=rtpmap:97 MP4V-ES/90000\r\n\
a=fmtp:97 profile-level-id=1\r\n\
a=rtpmap:34 H263/90000\r\n\
a=fmtp:34 QCIF=2 SQCIF=2/MaxBR=560\r\n";

    #[test]
    fn parses_and_writes_back_byte_for_byte() {
        let sd = SessionDescription::parse(MOBILE_OFFER.as_bytes()).unwrap();
        assert_eq!(sd.media.len(), 2);
        let audio = sd.media[0].rtp_formats();
        let names: Vec<(u8, &str, u32)> = audio
            .iter()
            .map(|f| (f.pt, f.encoding.as_str(), f.clock_rate))
            .collect();
        assert_eq!(
            names,
            vec![
                (101, "speex", 16000),
                (99, "speex", 8000),
                (0, "PCMU", 8000),
                (8, "PCMA", 8000),
                (104, "telephone-event", 8000)
            ]
        );
        assert_eq!(audio[0].fmtp.as_deref(), Some("vbr=on;mode=6"));
        assert_eq!(
            sd.media[1].rtp_formats()[1].fmtp.as_deref(),
            Some("QCIF=2 SQCIF=2/MaxBR=560")
        );
        assert_eq!(sd.to_string(), MOBILE_OFFER);
    }

    #[test]
    fn static_payloads_directions_and_errors() {
        let sd = SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=sendonly\r\nm=audio 5004 RTP/AVP 0 18\r\n").unwrap();
        let m = &sd.media[0];
        assert_eq!(
            m.rtp_formats()
                .iter()
                .map(|f| f.encoding.as_str())
                .collect::<Vec<_>>(),
            vec!["PCMU", "G729"]
        );
        assert_eq!(sd.direction(m), Direction::SendOnly);
        assert!(sd.connection_for(m).unwrap().is_hold_address());
        assert_eq!(
            SessionDescription::parse(b"o=x\r\n"),
            Err(SdpError::Version)
        );
        assert_eq!(
            SessionDescription::parse(b"v=0\r\ns=-\r\n"),
            Err(SdpError::Origin)
        );
        assert_eq!(
            SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n"),
            Err(SdpError::Media { line: 3 })
        );
        assert_eq!(
            SessionDescription::parse(b"v=0\r\nbogus\r\n"),
            Err(SdpError::Line { line: 2 })
        );
    }
}
