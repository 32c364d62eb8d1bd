//! What a user agent server answers to a request it cannot accept, before any
//! transaction or dialog logic sees it (RFC 3261 §8.2, §16.3), and the checks
//! that decide whether a response is dropped.
//!
//! The order follows RFC 3261 §8.2: version, structure, method, URI scheme,
//! extensions, then content — so that a message with several faults gets the
//! answer the RFC 4475 corpus expects.

use crate::message::uri::UriError;
use crate::message::{
    CSeq, HeaderName, Message, Method, NameAddrRef, StartLine, Uri, ViaRef, SIP_VERSION,
};

/// A request refused before processing, with the response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers the response must carry (`Unsupported`, `Accept`, `Allow`).
    pub headers: Vec<(HeaderName, String)>,
}

impl Rejection {
    fn new(code: u16, reason: impl Into<String>) -> Rejection {
        Rejection {
            code,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }
    fn bad(why: impl Into<String>) -> Rejection {
        Rejection::new(400, why)
    }
}

/// What this user agent implements; the basis of 501, 420 and 415 answers.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Methods answered (others get 501 with `Allow`).
    pub methods: Vec<Method>,
    /// Option tags understood in `Require` (others get 420 with `Unsupported`).
    pub extensions: Vec<String>,
    /// Body types accepted (others get 415 with `Accept`).
    pub content_types: Vec<String>,
}

impl Default for Capabilities {
    fn default() -> Self {
        use Method::*;
        Capabilities {
            methods: vec![
                Invite, Ack, Cancel, Options, Bye, Refer, Subscribe, Notify, Info, Publish,
                Message, Register, Update, Prack,
            ],
            extensions: vec![
                "replaces".into(),
                "timer".into(),
                "path".into(),
                "outbound".into(),
            ],
            content_types: vec![
                "application/sdp".into(),
                "message/sipfrag".into(),
                "application/dtmf-relay".into(),
                "application/dtmf".into(),
                "text/plain".into(),
            ],
        }
    }
}

impl Capabilities {
    /// The `Allow` header value.
    pub fn allow(&self) -> String {
        self.methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn single(msg: &Message, name: HeaderName) -> Result<&str, Rejection> {
    match msg.headers.count(&name) {
        0 => Err(Rejection::bad(format!("Missing {name} header"))),
        1 => Ok(msg.headers.get(&name).unwrap_or_default()),
        _ => Err(Rejection::bad(format!("Multiple {name} headers"))),
    }
}

fn bounded_number(v: &str, max: u64) -> bool {
    let v = v.trim();
    !v.is_empty()
        && v.len() <= 20
        && v.bytes().all(|b| b.is_ascii_digit())
        && v.parse::<u64>().is_ok_and(|n| n <= max)
}

fn is_call_id(v: &str) -> bool {
    use crate::message::grammar::is_word_byte as w;
    let mut parts = v.splitn(2, '@');
    let ok = |p: &str| !p.is_empty() && p.bytes().all(w);
    parts.next().is_some_and(ok) && parts.next().is_none_or(ok)
}

/// Checks shared by requests and responses: the headers every message needs, parsed strictly.
fn check_common(msg: &Message) -> Result<CSeq, Rejection> {
    if msg.headers.count(&HeaderName::Via) == 0 {
        return Err(Rejection::bad("Missing Via header"));
    }
    for v in msg.headers.values(&HeaderName::Via) {
        ViaRef::parse(v).map_err(|e| Rejection::bad(format!("Bad Via: {e}")))?;
    }
    let from = single(msg, HeaderName::From)?;
    NameAddrRef::parse(from).map_err(|e| Rejection::bad(format!("Bad From: {e}")))?;
    let to = single(msg, HeaderName::To)?;
    NameAddrRef::parse(to).map_err(|e| Rejection::bad(format!("Bad To: {e}")))?;
    let call_id = single(msg, HeaderName::CallId)?;
    if !is_call_id(call_id) {
        return Err(Rejection::bad("Bad Call-ID"));
    }
    let cseq = CSeq::parse(single(msg, HeaderName::CSeq)?)
        .map_err(|e| Rejection::bad(format!("Bad CSeq: {e}")))?;
    let lengths: Vec<&str> = msg
        .headers
        .all(&HeaderName::ContentLength)
        .map(str::trim)
        .collect();
    if lengths.len() > 1 {
        return Err(Rejection::bad("Multiple Content-Length headers"));
    }
    for c in msg.headers.values(&HeaderName::Contact) {
        NameAddrRef::parse(c).map_err(|e| Rejection::bad(format!("Bad Contact: {e}")))?;
    }
    if let Some(e) = msg.headers.get(&HeaderName::Expires) {
        if !bounded_number(e, u32::MAX as u64) {
            return Err(Rejection::bad("Bad Expires"));
        }
    }
    Ok(cseq)
}

/// Checks a received request; `Err` carries the response to send.
pub fn inspect_request(msg: &Message, caps: &Capabilities) -> Result<(), Rejection> {
    let StartLine::Request {
        method,
        uri,
        version,
    } = &msg.start
    else {
        return Err(Rejection::bad("not a request"));
    };
    if version != SIP_VERSION {
        return Err(Rejection::new(505, "Version Not Supported"));
    }
    let cseq = check_common(msg)?;
    match msg.headers.count(&HeaderName::MaxForwards) {
        0 => {}
        1 if msg
            .headers
            .all(&HeaderName::MaxForwards)
            .all(|mf| bounded_number(mf, 255)) => {}
        1 => return Err(Rejection::bad("Bad Max-Forwards")),
        _ => return Err(Rejection::bad("Multiple Max-Forwards headers")),
    }
    if !caps.methods.contains(method) {
        let mut r = Rejection::new(501, "Not Implemented");
        r.headers.push((HeaderName::Allow, caps.allow()));
        return Err(r);
    }
    if &cseq.method != method {
        return Err(Rejection::bad(
            "CSeq method does not match the Request-Line",
        ));
    }
    match Uri::parse(uri) {
        Ok(u) if u.headers.is_some() => {
            return Err(Rejection::bad("Request-URI must not carry headers"))
        }
        Ok(_) => {}
        Err(UriError::UnsupportedScheme(_)) => {
            return Err(Rejection::new(416, "Unsupported URI Scheme"))
        }
        Err(UriError::Syntax(e)) => return Err(Rejection::bad(format!("Bad Request-URI: {e}"))),
    }
    // A UAS ignores Proxy-Require; Require lists what it must understand.
    let unsupported: Vec<&str> = msg
        .headers
        .values(&HeaderName::Require)
        .filter(|t| !caps.extensions.iter().any(|e| e.eq_ignore_ascii_case(t)))
        .collect();
    if !unsupported.is_empty() && *method != Method::Ack && *method != Method::Cancel {
        let mut r = Rejection::new(420, "Bad Extension");
        r.headers
            .push((HeaderName::Unsupported, unsupported.join(", ")));
        return Err(r);
    }
    if !msg.body.is_empty() {
        let ct = msg.headers.get(&HeaderName::ContentType).unwrap_or("");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let multipart = mime.starts_with("multipart/");
        if !multipart && !caps.content_types.contains(&mime) {
            let mut r = Rejection::new(415, "Unsupported Media Type");
            r.headers
                .push((HeaderName::Accept, caps.content_types.join(", ")));
            return Err(r);
        }
    }
    if *method == Method::Invite {
        let accepts: Vec<String> = msg
            .headers
            .values(&HeaderName::Accept)
            .map(|a| {
                a.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        let ok = accepts.is_empty()
            || accepts.iter().any(|a| {
                a.is_empty() || a == "*/*" || a == "application/*" || a == "application/sdp"
            });
        if !ok {
            let mut r = Rejection::new(406, "Not Acceptable");
            r.headers
                .push((HeaderName::Accept, "application/sdp".into()));
            return Err(r);
        }
    }
    Ok(())
}

/// Checks a received response; `Err` means drop it (responses are never answered).
pub fn inspect_response(msg: &Message) -> Result<(), Rejection> {
    let StartLine::Response { version, .. } = &msg.start else {
        return Err(Rejection::bad("not a response"));
    };
    if version != SIP_VERSION {
        return Err(Rejection::new(505, "Version Not Supported"));
    }
    check_common(msg)?;
    if let Some(ra) = msg.headers.get(&HeaderName::RetryAfter) {
        let secs = ra.split([';', '(']).next().unwrap_or("").trim();
        if !bounded_number(secs, u32::MAX as u64) {
            return Err(Rejection::bad("Bad Retry-After"));
        }
    }
    for w in msg.headers.values(&HeaderName::Warning) {
        let code = w.split(' ').next().unwrap_or("");
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Rejection::bad("Bad Warning code"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse_datagram, Limits};

    fn req(start: &str, extra: &str, cseq_method: &str) -> Message {
        let text = format!(
            "{start}\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>\r\n\
             Call-ID: c1@x\r\nCSeq: 1 {cseq_method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        parse_datagram(text.as_bytes(), &Limits::default()).unwrap()
    }

    fn code(m: &Message) -> u16 {
        inspect_request(m, &Capabilities::default())
            .err()
            .map_or(0, |r| r.code)
    }

    #[test]
    fn answers_in_rfc_order() {
        assert_eq!(code(&req("OPTIONS sip:b@y SIP/2.0", "", "OPTIONS")), 0);
        assert_eq!(code(&req("OPTIONS sip:b@y SIP/7.0", "", "OPTIONS")), 505);
        assert_eq!(code(&req("OPTIONS sip:b@y SIP/2.0", "", "INVITE")), 400);
        // Unknown method and a CSeq mismatch: 501 wins (RFC 4475 3.1.2.18).
        let r = inspect_request(
            &req("NEWMETHOD sip:b@y SIP/2.0", "", "INVITE"),
            &Capabilities::default(),
        )
        .unwrap_err();
        assert_eq!(r.code, 501);
        assert!(r
            .headers
            .iter()
            .any(|(n, v)| *n == HeaderName::Allow && v.starts_with("INVITE, ACK, CANCEL")));
        assert_eq!(
            code(&req(
                "OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0",
                "",
                "OPTIONS"
            )),
            416
        );
        let r = inspect_request(
            &req("INVITE sip:b@y SIP/2.0", "Require: nothing\r\n", "INVITE"),
            &Capabilities::default(),
        )
        .unwrap_err();
        assert_eq!((r.code, r.headers[0].1.as_str()), (420, "nothing"));
        assert_eq!(
            code(&req(
                "INVITE sip:b@y SIP/2.0",
                "Accept: text/nobodyknowsthis\r\n",
                "INVITE"
            )),
            406
        );
        assert_eq!(
            code(&req(
                "INVITE sip:b@y?Route=%3Csip:example.com%3E SIP/2.0",
                "",
                "INVITE"
            )),
            400
        );
        assert_eq!(
            code(&req(
                "OPTIONS sip:b@y SIP/2.0",
                "Max-Forwards: 300\r\n",
                "OPTIONS"
            )),
            400
        );
        assert_eq!(
            code(&req(
                "OPTIONS sip:b@y SIP/2.0",
                "From: <sip:c@z>;tag=2\r\n",
                "OPTIONS"
            )),
            400
        );
        assert_eq!(
            code(&req(
                "REGISTER sip:y SIP/2.0",
                "Contact: ,,,sip:x@y\r\n",
                "REGISTER"
            )),
            400
        );
        assert_eq!(
            code(&req(
                "REGISTER sip:y SIP/2.0",
                "Expires: 10000000000000000000000000\r\n",
                "REGISTER"
            )),
            400
        );
        let mut m = req(
            "INVITE sip:b@y SIP/2.0",
            "Content-Type: application/unknownformat\r\n",
            "INVITE",
        );
        m.body = b"x".to_vec();
        assert_eq!(code(&m), 415);
    }

    #[test]
    fn bad_responses_are_dropped() {
        let text = "SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\n\
                    To: <sip:b@y>;tag=2\r\nCall-ID: c@x\r\nCSeq: 1 INVITE\r\nRetry-After: 949302838503028349304023988\r\n\
                    Warning: 1812 overture \"In Progress\"\r\nContent-Length: 0\r\n\r\n";
        let m = parse_datagram(text.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(inspect_response(&m).unwrap_err().code, 400);
    }
}
