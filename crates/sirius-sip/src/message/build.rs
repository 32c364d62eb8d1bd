//! Building the messages the protocol itself prescribes: responses to a
//! request (RFC 3261 §8.2.6), the ACK for a non-2xx final response (§17.1.1.3)
//! and CANCEL (§9.1).

use super::{HeaderName, Headers, HostRef, Message, Method, ViaRef};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// A response to `req`: Via, From, To, Call-ID and CSeq copied (§8.2.6.2);
/// the top Via gets `received` when the source IP differs from sent-by and
/// `rport=<port>` when the client asked for it (RFC 3581).
///
/// The copied values are written straight into the response's header
/// buffer, sized for them at once; the top Via is read in place and
/// rewritten there too, so a response costs no allocation per header.
pub fn response(req: &Message, code: u16, reason: &str, source: Option<SocketAddr>) -> Message {
    let mut r = Message::response(code, reason);
    const COPIED: [HeaderName; 4] = [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ];
    let bytes: usize = req
        .headers
        .all(&HeaderName::Via)
        .map(str::len)
        .sum::<usize>()
        + COPIED
            .iter()
            .filter_map(|n| req.headers.get(n))
            .map(str::len)
            .sum::<usize>();
    // Room for `received`, `rport` and a To tag the UAS adds.
    r.headers = Headers::with_capacity(8, bytes + 96);
    let mut vias = req.headers.values(&HeaderName::Via);
    if let Some(top) = vias.next() {
        match (source, ViaRef::parse(top)) {
            (Some(src), Ok(via)) => r
                .headers
                .push_with(HeaderName::Via, |out| write_top_via(out, &via, src)),
            _ => r.headers.push(HeaderName::Via, top),
        }
    }
    for v in vias {
        r.headers.push(HeaderName::Via, v);
    }
    for name in COPIED {
        if let Some(v) = req.headers.get(&name) {
            r.headers.push(name, v);
        }
    }
    // 100 Trying copies Timestamp (§8.2.6.1).
    if code == 100 {
        if let Some(ts) = req.headers.get(&HeaderName::Timestamp) {
            r.push(HeaderName::Timestamp, ts);
        }
    }
    r
}

/// The top Via of a response in normal form (as [`super::Via`] writes it),
/// with `received` set when the source differs from sent-by or `rport` was
/// asked for, and `rport` given the source port (RFC 3581); both replaced in
/// place when present, `received` appended otherwise.
fn write_top_via(out: &mut String, via: &ViaRef<'_>, src: SocketAddr) {
    let differs = match (via.host, src.ip()) {
        (HostRef::V4(a), IpAddr::V4(b)) => a != b,
        (HostRef::V6(a), IpAddr::V6(b)) => a != b,
        _ => true,
    };
    let rport = via.params.has("rport");
    let received = differs || rport;
    out.push_str("SIP/2.0/");
    out.extend(via.transport.chars().map(|c| c.to_ascii_uppercase()));
    out.push(' ');
    match via.host {
        HostRef::Name(n) => out.push_str(n),
        HostRef::V4(a) => push_ip(out, IpAddr::V4(a)),
        HostRef::V6(a) => {
            out.push('[');
            push_ip(out, IpAddr::V6(a));
            out.push(']');
        }
    }
    if let Some(p) = via.port {
        out.push(':');
        push_decimal(out, p.into());
    }
    let mut has_received = false;
    for (name, value) in via.params.iter() {
        out.push(';');
        out.push_str(name);
        if received && name.eq_ignore_ascii_case("received") {
            has_received = true;
            out.push('=');
            push_ip(out, src.ip());
        } else if rport && name.eq_ignore_ascii_case("rport") {
            out.push('=');
            push_decimal(out, src.port().into());
        } else if let Some(v) = value {
            out.push('=');
            out.push_str(v);
        }
    }
    if received && !has_received {
        out.push_str(";received=");
        push_ip(out, src.ip());
    }
}

/// Writes an address as `Display` does; IPv4 by hand (its `Display` goes
/// through the formatting machinery for each octet, which cost more than
/// the rest of the Via).
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            for (i, o) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, o.into());
            }
        }
        IpAddr::V6(a) => {
            let _ = write!(out, "{a}");
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| char::from(d)));
}

/// Adds a To tag to a response if the To header has none (UAS side, §8.2.6.2).
pub fn set_to_tag(resp: &mut Message, tag: &str) {
    let Some(to) = resp.to_ref() else {
        return;
    };
    if to.tag().is_some() {
        return;
    }
    // Written in normal form already (as every To this stack copies from a
    // well-formed request is): the tag is appended to the value in place.
    let raw = resp.headers.get(&HeaderName::To).unwrap_or_default();
    if writes_as(&to, raw) {
        resp.headers.extend_value(&HeaderName::To, |out| {
            out.push_str(";tag=");
            out.push_str(tag);
        });
        return;
    }
    let mut value = String::with_capacity(raw.len() + tag.len() + 8);
    let _ = write!(value, "{to};tag={tag}");
    resp.headers.set(HeaderName::To, value);
}

/// Whether `v`'s `Display` output is exactly `text`, found without writing it.
fn writes_as(v: &impl std::fmt::Display, text: &str) -> bool {
    struct Compare<'a>(&'a str);
    impl std::fmt::Write for Compare<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0 = self.0.strip_prefix(s).ok_or(std::fmt::Error)?;
            Ok(())
        }
    }
    let mut c = Compare(text);
    write!(c, "{v}").is_ok() && c.0.is_empty()
}

/// The ACK a client INVITE transaction sends for a 300–699 response:
/// same Request-URI, top Via, From, Call-ID and Route; To from the response;
/// CSeq number of the INVITE with method ACK.
pub fn ack_for_non_2xx(invite: &Message, resp: &Message) -> Message {
    let uri = invite.request_uri().unwrap_or_default().to_string();
    let mut ack = Message::request(Method::Ack, uri);
    if let Some(v) = invite.headers.values(&HeaderName::Via).next() {
        ack.push(HeaderName::Via, v);
    }
    ack.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::CallId] {
        if let Some(v) = invite.headers.get(&name) {
            ack.push(name, v);
        }
    }
    if let Some(to) = resp
        .headers
        .get(&HeaderName::To)
        .or_else(|| invite.headers.get(&HeaderName::To))
    {
        ack.push(HeaderName::To, to);
    }
    let seq = invite.cseq().map_or(1, |c| c.seq);
    ack.push(HeaderName::CSeq, format!("{seq} ACK"));
    for r in invite.headers.all(&HeaderName::Route) {
        ack.push(HeaderName::Route, r);
    }
    ack
}

/// CANCEL for a pending request (§9.1).
pub fn cancel(req: &Message) -> Message {
    let uri = req.request_uri().unwrap_or_default().to_string();
    let mut c = Message::request(Method::Cancel, uri);
    if let Some(v) = req.headers.values(&HeaderName::Via).next() {
        c.push(HeaderName::Via, v);
    }
    c.push(HeaderName::MaxForwards, "70");
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId] {
        if let Some(v) = req.headers.get(&name) {
            c.push(name, v);
        }
    }
    let seq = req.cseq().map_or(1, |c| c.seq);
    c.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    for r in req.headers.all(&HeaderName::Route) {
        c.push(HeaderName::Route, r);
    }
    c
}

/// Tags, branches and Call-IDs from a generator its owner seeds
/// (splitmix64): sans-IO state machines draw no randomness of their own,
/// so their tests are repeatable; seeded at random, the tokens are as
/// unpredictable as [`random_token`]'s.
#[derive(Debug, Clone)]
pub struct Tokens(u64);

impl Tokens {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Tokens {
        Tokens(seed)
    }

    /// A generator seeded at random.
    pub fn random() -> Tokens {
        Tokens(rand::random())
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A token for a tag or a Call-ID (16 hex digits).
    pub fn token(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// A new RFC 3261 branch.
    pub fn branch(&mut self) -> String {
        format!("{}{}", super::BRANCH_MAGIC, self.token())
    }
}

/// A random token for tags, branches and Call-IDs (hex, 64 bits of entropy).
pub fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A new RFC 3261 branch.
pub fn new_branch() -> String {
    format!("{}{}", super::BRANCH_MAGIC, random_token())
}
