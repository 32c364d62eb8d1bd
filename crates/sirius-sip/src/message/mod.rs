//! SIP messages: the model, parsing, framing and serialisation.
//!
//! Written by hand rather than over rsip 0.4: rsip rejects compact header
//! forms, fails on unknown methods (we must parse them to answer `501`), fails
//! on `qop="auth,auth-int"`, and has no stream framing. Patching those four gaps
//! around it meant tokenising every message twice. Here a message is parsed once
//! into its start line and an ordered list of (canonical name, unfolded value)
//! pairs; typed views (Via, CSeq, name-addr…) parse a value only when asked,
//! which keeps the hot path at one pass over the bytes.
//!
//! The hot path allocates per message, not per header (issue #11): the
//! header section is copied once into the list's buffer and values are
//! ranges of it ([`Headers`]); extension names are held inline; the borrowed
//! views ([`ViaRef`], [`NameAddrRef`], [`ParamsRef`]) read a branch or a tag
//! in place; `SIP/2.0` and the standard reason phrases are constants, not
//! copies; [`Message::write_to`] serialises into the caller's buffer.
//! Parsing a message costs three allocations (the buffer, the list, and the
//! Request-URI or the body), where it cost sixteen
//! (`crates/sirius-sip/benches/hot_path.rs`, `bench/report-parse.md`).

pub mod build;
pub mod grammar;
mod headers;
mod names;
mod parse;
mod types;
pub(crate) mod uri;
mod views;

#[cfg(test)]
mod repr_tests;

pub use headers::{Header, HeaderName, Headers, OtherName};
pub use parse::{parse_datagram, Framer, Limits, ParseError};
pub use types::BRANCH_MAGIC;
pub use types::{CSeq, NameAddr, Params, Via};
pub use uri::{Host, HostRef, Uri, UriError};
pub use views::{NameAddrRef, ParamsRef, ViaRef};

use std::borrow::Cow;
use std::fmt;

/// A SIP method. Methods are case-sensitive (RFC 3261 §7.1): `invite` and
/// `IN%56ITE` are extension methods, not INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// OPTIONS.
    Options,
    /// REGISTER.
    Register,
    /// INFO (RFC 6086).
    Info,
    /// PRACK (RFC 3262).
    Prack,
    /// UPDATE (RFC 3311).
    Update,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other token.
    Extension(String),
}

impl Method {
    /// The method for a token (case-sensitive).
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_string()),
        }
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `Method SP Request-URI SP SIP-Version`.
    Request {
        /// The method.
        method: Method,
        /// The Request-URI, as received (validated by [`Uri::parse`] when used).
        uri: String,
        /// `SIP/2.0` (others are answered 505 above the parser); the
        /// constant, not a copy, when it is `SIP/2.0`.
        version: Cow<'static, str>,
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`.
    Response {
        /// `SIP/2.0`.
        version: Cow<'static, str>,
        /// 100–699.
        code: u16,
        /// Reason phrase; may be empty, may be UTF-8. The constant, not a
        /// copy, when it is RFC 3261's phrase for the code.
        reason: Cow<'static, str>,
    },
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request-Line or Status-Line.
    pub start: StartLine,
    /// Header fields in order, compact names expanded.
    pub headers: Headers,
    /// The body, exactly `Content-Length` octets.
    pub body: Vec<u8>,
}

/// The SIP version this stack speaks.
pub const SIP_VERSION: &str = "SIP/2.0";

/// A start line's version: the constant when it is `SIP/2.0` (a message
/// then costs no allocation for it), else a copy.
pub(crate) fn version_text(v: &str) -> Cow<'static, str> {
    if v == SIP_VERSION {
        Cow::Borrowed(SIP_VERSION)
    } else {
        Cow::Owned(v.to_string())
    }
}

/// RFC 3261's reason phrases for the codes a PBX sends and receives most.
const REASONS: [(u16, &str); 20] = [
    (100, "Trying"),
    (180, "Ringing"),
    (181, "Call Is Being Forwarded"),
    (182, "Queued"),
    (183, "Session Progress"),
    (200, "OK"),
    (202, "Accepted"),
    (401, "Unauthorized"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (407, "Proxy Authentication Required"),
    (408, "Request Timeout"),
    (480, "Temporarily Unavailable"),
    (481, "Call/Transaction Does Not Exist"),
    (486, "Busy Here"),
    (487, "Request Terminated"),
    (488, "Not Acceptable Here"),
    (500, "Server Internal Error"),
    (503, "Service Unavailable"),
    (603, "Decline"),
];

/// A reason phrase: the constant when it is the standard one for the code.
pub(crate) fn reason_text(code: u16, reason: &str) -> Cow<'static, str> {
    match REASONS.iter().find(|&&(c, r)| c == code && r == reason) {
        Some(&(_, r)) => Cow::Borrowed(r),
        None => Cow::Owned(reason.to_string()),
    }
}

impl Message {
    /// A request with no headers.
    pub fn request(method: Method, uri: impl Into<String>) -> Message {
        Message {
            start: StartLine::Request {
                method,
                uri: uri.into(),
                version: Cow::Borrowed(SIP_VERSION),
            },
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// A response with no headers.
    pub fn response(code: u16, reason: impl AsRef<str>) -> Message {
        Message {
            start: StartLine::Response {
                version: Cow::Borrowed(SIP_VERSION),
                code,
                reason: reason_text(code, reason.as_ref()),
            },
            headers: Headers::default(),
            body: Vec::new(),
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, if a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code, if a response.
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI text, if a request.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// Adds a header at the end.
    pub fn push(&mut self, name: HeaderName, value: impl AsRef<str>) -> &mut Self {
        self.headers.push(name, value);
        self
    }

    /// Builder form of [`Message::push`].
    pub fn with(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets the body and its Content-Type; Content-Length is written on serialisation.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers.set(HeaderName::ContentType, content_type);
        self.body = body;
    }

    /// `Call-ID`.
    pub fn call_id(&self) -> Option<&str> {
        self.headers.get(&HeaderName::CallId)
    }

    /// `CSeq`, parsed.
    pub fn cseq(&self) -> Option<CSeq> {
        self.headers
            .get(&HeaderName::CSeq)
            .and_then(|v| CSeq::parse(v).ok())
    }

    /// The topmost `Via`, parsed.
    pub fn top_via(&self) -> Option<Via> {
        self.top_via_ref().map(|v| v.to_via())
    }

    /// `From`, parsed.
    pub fn from_header(&self) -> Option<NameAddr> {
        self.from_ref().map(|a| a.to_name_addr())
    }

    /// `To`, parsed.
    pub fn to_header(&self) -> Option<NameAddr> {
        self.to_ref().map(|a| a.to_name_addr())
    }

    /// The topmost `Via`, read in place: what transaction matching needs
    /// (branch, sent-by) without an allocation.
    pub fn top_via_ref(&self) -> Option<ViaRef<'_>> {
        self.headers
            .values(&HeaderName::Via)
            .next()
            .and_then(|v| ViaRef::parse(v).ok())
    }

    /// `From`, read in place (its tag without an allocation).
    pub fn from_ref(&self) -> Option<NameAddrRef<'_>> {
        self.headers
            .get(&HeaderName::From)
            .and_then(|v| NameAddrRef::parse(v).ok())
    }

    /// `To`, read in place (its tag without an allocation).
    pub fn to_ref(&self) -> Option<NameAddrRef<'_>> {
        self.headers
            .get(&HeaderName::To)
            .and_then(|v| NameAddrRef::parse(v).ok())
    }

    /// Writes the message. `Content-Length` is always written from the body's
    /// actual length (any stored value is replaced), last among the headers.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut out);
        out
    }

    /// The length of [`Message::to_bytes`]'s output, computed without writing it.
    pub fn encoded_len(&self) -> usize {
        let start = match &self.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => method.as_str().len() + uri.len() + version.len() + 4,
            StartLine::Response {
                version,
                code,
                reason,
            } => version.len() + decimal_len(usize::from(*code)) + reason.len() + 4,
        };
        start
            + self.headers.encoded_len(&HeaderName::ContentLength)
            + "Content-Length: \r\n\r\n".len()
            + decimal_len(self.body.len())
            + self.body.len()
    }

    /// Appends the message to `out`, as [`Message::to_bytes`] writes it: a
    /// sender serialises into one buffer it keeps, with no allocation once
    /// the buffer has grown to its largest message.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        match &self.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.push(b' ');
                out.extend_from_slice(version.as_bytes());
            }
            StartLine::Response {
                version,
                code,
                reason,
            } => {
                out.extend_from_slice(version.as_bytes());
                out.push(b' ');
                push_decimal(out, usize::from(*code));
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        self.headers.write_to(out, &HeaderName::ContentLength);
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, self.body.len());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
    }
}

/// Digits of `n` in decimal.
fn decimal_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Appends `n` in decimal (what `write!` did, without the formatting machinery).
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}
