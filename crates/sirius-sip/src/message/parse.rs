//! Parsing and framing.
//!
//! * Datagrams ([`parse_datagram`]): one message per datagram; octets after
//!   `Content-Length` are discarded (RFC 3261 §18.3, RFC 4475 3.1.1.8); a body
//!   shorter than `Content-Length` is an error (3.1.2.2); without the header the
//!   body runs to the end of the datagram.
//! * Streams ([`Framer`]): messages are cut by `Content-Length`, which is then
//!   mandatory; CRLF keep-alives between messages are skipped (RFC 5626 §3.5.1).
//!
//! Limits bound every allocation, so no input can make the parser use more
//! than a few times `max_message` bytes; nothing here panics on any input
//! (fuzzed in `fuzz/`, property-tested in `tests/`).

use super::grammar::{is_token, is_token_byte, is_ws};
use super::headers::{Entry, HeaderName, Headers};
use super::{reason_text, version_text, Message, Method, StartLine};

/// Size limits, with errors that name the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, headers and body (UDP's practical maximum by default).
    pub max_message: usize,
    /// Most header lines.
    pub max_headers: usize,
    /// Longest header line, folding included.
    pub max_header_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 65_535,
            max_headers: 256,
            max_header_len: 16_384,
        }
    }
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but CRLFs: a keep-alive, not an error to answer.
    #[error("keep-alive")]
    KeepAlive,
    /// Over `max_message`.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The limit.
        max: usize,
        /// The size seen.
        len: usize,
    },
    /// Over `max_headers`.
    #[error("more than {max} header fields")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// A header line over `max_header_len`.
    #[error("header '{name}' of {len} bytes exceeds the limit of {max}")]
    HeaderTooLong {
        /// The header's name.
        name: String,
        /// The limit.
        max: usize,
        /// Its length.
        len: usize,
    },
    /// No empty line ends the header section.
    #[error("no empty line after the header fields")]
    Unterminated,
    /// The header section is not UTF-8.
    #[error("header section is not valid UTF-8")]
    Encoding,
    /// The Request-Line or Status-Line is malformed.
    #[error("bad start line: {0}")]
    StartLine(String),
    /// A header line is malformed.
    #[error("bad header line: {0}")]
    Header(String),
    /// Content-Length is not a non-negative number.
    #[error("bad Content-Length '{0}'")]
    ContentLength(String),
    /// Content-Length says more than the datagram holds.
    #[error("Content-Length {declared} exceeds the {available} body bytes received")]
    Truncated {
        /// Declared length.
        declared: usize,
        /// Bytes present.
        available: usize,
    },
    /// A stream message without Content-Length cannot be framed.
    #[error("Content-Length is required on stream transports")]
    MissingContentLength,
}

impl ParseError {
    /// The response a server sends when it can still address one.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            ParseError::TooLarge { .. } => (513, "Message Too Large"),
            _ => (400, "Bad Request"),
        }
    }
}

/// Where the header section ends (the LF of its last line) and the body
/// starts: the first empty line, CR LF or bare LF. Two vectorised substring
/// searches, where stopping at every line end cost a call and a test each:
/// first for LF CR LF (what nearly every peer sends), then for LF LF before it.
/// The searchers are built once: building one costs as much as a search.
fn find_header_end(b: &[u8]) -> Option<(usize, usize)> {
    use memchr::memmem::Finder;
    use std::sync::LazyLock;
    static LF_CRLF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\r\n"));
    static LF_LF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
    let crlf = LF_CRLF.find(b);
    let limit = crlf.map_or(b.len(), |i| i + 1);
    match LF_LF.find(&b[..limit]) {
        Some(i) => Some((i, i + 2)),
        None => crlf.map(|i| (i, i + 3)),
    }
}

fn skip_keepalive(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count()
}

/// Parses one datagram.
pub fn parse_datagram(data: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    if data.len() > limits.max_message {
        return Err(ParseError::TooLarge {
            max: limits.max_message,
            len: data.len(),
        });
    }
    let data = &data[skip_keepalive(data)..];
    if data.is_empty() {
        return Err(ParseError::KeepAlive);
    }
    let (head_end, body_start) = find_header_end(data).ok_or(ParseError::Unterminated)?;
    let mut msg = parse_head(&data[..head_end], limits)?;
    let available = data.len() - body_start;
    let body_len = match content_length(&msg.headers)? {
        Some(n) if n > available => {
            return Err(ParseError::Truncated {
                declared: n,
                available,
            })
        }
        Some(n) => n,
        None => available,
    };
    msg.body = data[body_start..body_start + body_len].to_vec();
    Ok(msg)
}

fn content_length(h: &Headers) -> Result<Option<usize>, ParseError> {
    match h.get(&HeaderName::ContentLength) {
        None => Ok(None),
        Some(v) => {
            let v = v.trim();
            if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::ContentLength(v.to_string()));
            }
            v.parse()
                .map(Some)
                .map_err(|_| ParseError::ContentLength(v.to_string()))
        }
    }
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = |why: &str| ParseError::StartLine(format!("{why}: '{line}'"));
    let space = |from: usize| memchr::memchr(b' ', &line.as_bytes()[from..]).map(|i| from + i);
    if line.starts_with("SIP/") {
        let sp = space(4).ok_or_else(|| bad("no status code"))?;
        let version = &line[..sp];
        let (code, reason) = match space(sp + 1) {
            Some(i) => (&line[sp + 1..i], &line[i + 1..]),
            None => (&line[sp + 1..], ""),
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("status code must be three digits"));
        }
        let code: u16 = code.parse().map_err(|_| bad("bad status code"))?;
        if !(100..=699).contains(&code) {
            return Err(bad("status code out of range"));
        }
        return Ok(StartLine::Response {
            version: version_text(version),
            code,
            reason: reason_text(code, reason),
        });
    }
    let parts = space(0).and_then(|a| Some((a, space(a + 1)?)));
    let Some((a, b)) = parts.filter(|&(_, b)| space(b + 1).is_none()) else {
        return Err(bad("expected 'Method SP Request-URI SP SIP-Version'"));
    };
    let (method, uri, version) = (&line[..a], &line[a + 1..b], &line[b + 1..]);
    if !is_token(method) {
        return Err(bad("method is not a token"));
    }
    if uri.is_empty() || uri.bytes().any(|b| b == b'\t' || b == b'<' || b == b'>') {
        return Err(bad("bad Request-URI"));
    }
    let v = version
        .strip_prefix("SIP/")
        .ok_or_else(|| bad("bad SIP-Version"))?;
    let ok_version = v.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    if !ok_version {
        return Err(bad("bad SIP-Version"));
    }
    Ok(StartLine::Request {
        method: Method::from_token(method),
        uri: uri.to_string(),
        version: version_text(version),
    })
}

/// Parses the start line and header fields (no body).
fn parse_head(head: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    let head = std::str::from_utf8(head).map_err(|_| ParseError::Encoding)?;
    let first = memchr::memchr(b'\n', head.as_bytes()).unwrap_or(head.len());
    let line = &head[..first];
    let start = parse_start_line(line.strip_suffix('\r').unwrap_or(line))?;
    let section = head.get(first + 1..).unwrap_or_default();
    let headers = parse_headers(section, limits)?;
    Ok(Message {
        start,
        headers,
        body: Vec::new(),
    })
}

/// The end of the line starting at `from` (before its CR LF or LF) and the
/// start of the next. A CR is only legal as part of CR LF (or at the very
/// end, where the LF was cut off with the empty line): a bare one would end
/// the line for another parser and smuggle a header past us.
fn line_end(b: &[u8], from: usize) -> Result<(usize, usize), ParseError> {
    match memchr::memchr2(b'\r', b'\n', &b[from..]) {
        None => Ok((b.len(), b.len())),
        Some(i) => {
            let at = from + i;
            if b[at] == b'\n' {
                Ok((at, at + 1))
            } else if at + 1 == b.len() {
                Ok((at, b.len()))
            } else if b[at + 1] == b'\n' {
                Ok((at, at + 2))
            } else {
                Err(ParseError::Header("bare CR in a header line".into()))
            }
        }
    }
}

/// The range of `b[from..to]` without the SP and HTAB around it (RFC 3261
/// LWS after unfolding). By hand: `trim_matches` with a char pattern costs
/// several times as many instructions on lines this short.
fn lws_range(b: &[u8], mut from: usize, mut to: usize) -> (usize, usize) {
    while from < to && is_ws(b[from]) {
        from += 1;
    }
    while to > from && is_ws(b[to - 1]) {
        to -= 1;
    }
    (from, to)
}

/// Reads the header section into one buffer (see [`Headers`]): the section
/// is copied as it is and each value is a range into it; only a folded
/// header's value is written again, unfolded, at the buffer's end.
fn parse_headers(section: &str, limits: &Limits) -> Result<Headers, ParseError> {
    let b = section.as_bytes();
    let mut h = Headers {
        buf: String::with_capacity(section.len()),
        // A header line is rarely shorter than 24 bytes: one entry per 24
        // bytes of section holds them all in the first allocation.
        items: Vec::with_capacity((b.len() / 24).clamp(4, limits.max_headers.max(4))),
    };
    h.buf.push_str(section);
    let mut pos = 0;
    while pos < b.len() {
        if is_ws(b[pos]) {
            return Err(ParseError::Header(
                "continuation line before any header".into(),
            ));
        }
        let (end, next) = line_end(b, pos)?;
        // The name is a token up to the colon, LWS allowed before it: one
        // pass over its bytes finds both.
        let mut colon = pos;
        while colon < end && is_token_byte(b[colon]) {
            colon += 1;
        }
        let name_end = colon;
        while colon < end && is_ws(b[colon]) {
            colon += 1;
        }
        if colon == end || b[colon] != b':' || name_end == pos {
            return Err(bad_name(&section[pos..end]));
        }
        if end - pos > limits.max_header_len {
            return Err(ParseError::HeaderTooLong {
                name: section[pos..name_end].to_string(),
                max: limits.max_header_len,
                len: end - pos,
            });
        }
        let name = HeaderName::parse(&section[pos..name_end]);
        // The buffer begins with `section`: offsets in one are offsets in the other.
        let mut range = lws_range(b, colon + 1, end);
        let line_len = end - pos;
        pos = next;
        if pos < b.len() && is_ws(b[pos]) {
            range = unfold(section, &mut pos, range, &name, line_len, &mut h, limits)?;
        }
        if h.items.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                max: limits.max_headers,
            });
        }
        h.items.push(Entry {
            name,
            start: range.0,
            end: range.1,
        });
    }
    Ok(h)
}

/// The error for a header line whose name is not a token followed by a colon.
fn bad_name(line: &str) -> ParseError {
    match line.find(':') {
        None => ParseError::Header(format!("no ':' in '{line}'")),
        Some(colon) => ParseError::Header(format!(
            "bad header name '{}'",
            line[..colon].trim_end_matches([' ', '\t'])
        )),
    }
}

/// Joins a folded value's lines with single spaces at the buffer's end;
/// `pos` moves past the continuation lines. Returns the value's range.
fn unfold(
    section: &str,
    pos: &mut usize,
    first: (usize, usize),
    name: &HeaderName,
    first_len: usize,
    h: &mut Headers,
    limits: &Limits,
) -> Result<(usize, usize), ParseError> {
    let b = section.as_bytes();
    let start = h.buf.len();
    h.buf.push_str(&section[first.0..first.1]);
    let mut raw = first_len;
    while *pos < b.len() && is_ws(b[*pos]) {
        let (end, next) = line_end(b, *pos)?;
        raw += end - *pos + 2;
        if raw > limits.max_header_len {
            return Err(ParseError::HeaderTooLong {
                name: name.to_string(),
                max: limits.max_header_len,
                len: raw,
            });
        }
        let (from, to) = lws_range(b, *pos, end);
        let piece = &section[from..to];
        if !piece.is_empty() {
            if h.buf.len() > start {
                h.buf.push(' ');
            }
            h.buf.push_str(piece);
        }
        *pos = next;
    }
    Ok((start, h.buf.len()))
}

/// Cuts messages out of a byte stream (TCP), by `Content-Length`.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    limits: Limits,
    failed: bool,
}

impl Framer {
    /// A framer with the given limits.
    pub fn new(limits: Limits) -> Framer {
        Framer {
            buf: Vec::new(),
            limits,
            failed: false,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// Whether a fatal error ended framing (the connection must be closed).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `None` if more bytes are needed. An error is
    /// fatal for the connection (the stream can no longer be framed): it is
    /// returned once, the buffer is dropped and later calls return `None` —
    /// except [`ParseError::KeepAlive`], reported once per CRLF run so the
    /// caller can pong.
    pub fn next_message(&mut self) -> Option<Result<Message, ParseError>> {
        match self.frame() {
            Some(Err(e)) if e != ParseError::KeepAlive => {
                self.failed = true;
                self.buf = Vec::new();
                Some(Err(e))
            }
            other => other,
        }
    }

    fn frame(&mut self) -> Option<Result<Message, ParseError>> {
        if self.failed {
            return None;
        }
        let skip = skip_keepalive(&self.buf);
        if skip > 0 {
            self.buf.drain(..skip);
            if skip >= 4 || self.buf.is_empty() {
                return Some(Err(ParseError::KeepAlive));
            }
        }
        if self.buf.is_empty() {
            return None;
        }
        let Some((head_end, body_start)) = find_header_end(&self.buf) else {
            if self.buf.len() > self.limits.max_message {
                return Some(Err(ParseError::TooLarge {
                    max: self.limits.max_message,
                    len: self.buf.len(),
                }));
            }
            return None;
        };
        let mut msg = match parse_head(&self.buf[..head_end], &self.limits) {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        let len = match content_length(&msg.headers) {
            Ok(Some(n)) => n,
            Ok(None) => return Some(Err(ParseError::MissingContentLength)),
            Err(e) => return Some(Err(e)),
        };
        if body_start + len > self.limits.max_message {
            return Some(Err(ParseError::TooLarge {
                max: self.limits.max_message,
                len: body_start + len,
            }));
        }
        if self.buf.len() < body_start + len {
            return None;
        }
        msg.body = self.buf[body_start..body_start + len].to_vec();
        self.buf.drain(..body_start + len);
        Some(Ok(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1\r\n\
        f: <sip:alice@127.0.0.1>;tag=a1\r\n\
        t: <sip:bob@127.0.0.1>\r\n\
        i: call-1\r\n\
        CSeq: 1 INVITE\r\n\
        l: 4\r\n\
        \r\n\
        body";

    #[test]
    fn parses_compact_forms_and_body() {
        let m = parse_datagram(INVITE.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.call_id(), Some("call-1"));
        assert_eq!(m.from_header().unwrap().tag(), Some("a1"));
        assert_eq!(m.body, b"body");
        let out = String::from_utf8(m.to_bytes()).unwrap();
        assert!(out.starts_with("INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\n"), "{out}");
        assert!(out.ends_with("Content-Length: 4\r\n\r\nbody"));
        // Serialising is a fixed point.
        assert_eq!(
            parse_datagram(out.as_bytes(), &Limits::default()).unwrap(),
            m
        );
    }

    #[test]
    fn datagram_body_rules() {
        let l = Limits::default();
        let extra = format!("{INVITE}TRAILING");
        assert_eq!(parse_datagram(extra.as_bytes(), &l).unwrap().body, b"body");
        let short = INVITE.replace("l: 4", "l: 40");
        assert_eq!(
            parse_datagram(short.as_bytes(), &l),
            Err(ParseError::Truncated {
                declared: 40,
                available: 4
            })
        );
        let neg = INVITE.replace("l: 4", "l: -4");
        assert!(matches!(
            parse_datagram(neg.as_bytes(), &l),
            Err(ParseError::ContentLength(_))
        ));
        let none = INVITE.replace("l: 4\r\n", "");
        assert_eq!(parse_datagram(none.as_bytes(), &l).unwrap().body, b"body");
        assert_eq!(parse_datagram(b"\r\n\r\n", &l), Err(ParseError::KeepAlive));
    }

    #[test]
    fn limits_are_enforced_with_named_errors() {
        let tight = Limits {
            max_message: 100,
            max_headers: 3,
            max_header_len: 40,
        };
        assert_eq!(
            parse_datagram(INVITE.as_bytes(), &tight),
            Err(ParseError::TooLarge {
                max: 100,
                len: INVITE.len()
            })
        );
        let l = Limits {
            max_message: 1000,
            ..tight
        };
        assert_eq!(
            parse_datagram(INVITE.as_bytes(), &l),
            Err(ParseError::HeaderTooLong {
                name: "Via".into(),
                max: 40,
                len: 48
            })
        );
        let l = Limits {
            max_header_len: 100,
            ..l
        };
        assert_eq!(
            parse_datagram(INVITE.as_bytes(), &l),
            Err(ParseError::TooManyHeaders { max: 3 })
        );
        assert_eq!(
            ParseError::TooLarge { max: 1, len: 2 }.status(),
            (513, "Message Too Large")
        );
    }

    #[test]
    fn start_lines() {
        let l = Limits::default();
        let r = parse_datagram(b"SIP/2.0 100 \r\n\r\n", &l).unwrap();
        assert_eq!(
            r.start,
            StartLine::Response {
                version: "SIP/2.0".into(),
                code: 100,
                reason: "".into()
            }
        );
        assert!(parse_datagram(
            b"SIP/2.0 4294967301 better not break the receiver\r\n\r\n",
            &l
        )
        .is_err());
        assert!(parse_datagram(b"INVITE  sip:a@b SIP/2.0\r\n\r\n", &l).is_err());
        assert!(parse_datagram(b"INVITE sip:a@b SIP/2.0 \r\n\r\n", &l).is_err());
        let r = parse_datagram(b"FOO sip:a@b SIP/7.0\r\n\r\n", &l).unwrap();
        assert_eq!(r.method(), Some(&Method::Extension("FOO".into())));
    }

    #[test]
    fn stream_framing() {
        let mut f = Framer::new(Limits::default());
        let two = format!("\r\n\r\n{INVITE}{INVITE}");
        let bytes = two.as_bytes();
        f.push(&bytes[..10]);
        assert_eq!(f.next_message(), Some(Err(ParseError::KeepAlive)));
        assert_eq!(f.next_message(), None);
        f.push(&bytes[10..100]);
        assert_eq!(f.next_message(), None);
        f.push(&bytes[100..]);
        assert!(f.next_message().unwrap().is_ok());
        assert!(f.next_message().unwrap().is_ok());
        assert_eq!(f.next_message(), None);
        assert_eq!(f.buffered(), 0);
        f.push(INVITE.replace("l: 4\r\n", "").as_bytes());
        assert_eq!(
            f.next_message(),
            Some(Err(ParseError::MissingContentLength))
        );
    }
}
