//! Header names: the known ones as variants (with RFC 3261 §7.3.3 compact
//! forms), any other as it was spelled, kept inline when short.

use std::fmt;
use std::hash::{Hash, Hasher};

macro_rules! header_names {
    ($( $variant:ident => $text:literal $(, $compact:literal)? ; )*) => {
        /// A header field name. Known names are variants (matched
        /// case-insensitively, compact forms expanded); others keep their spelling.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $(
                #[doc = $text]
                $variant,
            )*
            /// An extension header, as spelled on the wire (compared
            /// case-insensitively, as RFC 3261 §7.3.1 compares all names).
            Other(OtherName),
        }

        impl HeaderName {
            /// The canonical (long) spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $text, )*
                    HeaderName::Other(s) => s.as_str(),
                }
            }

            /// Parses a header name, expanding compact forms.
            pub fn parse(name: &str) -> HeaderName {
                if name.len() == 1 {
                    let c = name.as_bytes()[0].to_ascii_lowercase();
                    $( $( if c == $compact { return HeaderName::$variant; } )? )*
                }
                // Most peers write the canonical spelling: an exact match compiles to a
                // length switch and one memcmp. Then the case-insensitive scan,
                // dispatched on the first letter (this runs for every header line).
                match name {
                    $( $text => return HeaderName::$variant, )*
                    _ => {}
                }
                let first = name.as_bytes().first().map_or(0, u8::to_ascii_lowercase);
                $(
                    if $text.as_bytes()[0].to_ascii_lowercase() == first && name.eq_ignore_ascii_case($text) {
                        return HeaderName::$variant;
                    }
                )*
                HeaderName::Other(OtherName::from(name))
            }
        }
    };
}

header_names! {
    Accept => "Accept";
    AcceptContact => "Accept-Contact", b'a';
    AcceptEncoding => "Accept-Encoding";
    AcceptLanguage => "Accept-Language";
    AlertInfo => "Alert-Info";
    Allow => "Allow";
    AllowEvents => "Allow-Events", b'u';
    AuthenticationInfo => "Authentication-Info";
    Authorization => "Authorization";
    CallId => "Call-ID", b'i';
    CallInfo => "Call-Info";
    Contact => "Contact", b'm';
    ContentDisposition => "Content-Disposition";
    ContentEncoding => "Content-Encoding", b'e';
    ContentLanguage => "Content-Language";
    ContentLength => "Content-Length", b'l';
    ContentType => "Content-Type", b'c';
    CSeq => "CSeq";
    Date => "Date";
    ErrorInfo => "Error-Info";
    Event => "Event", b'o';
    Expires => "Expires";
    From => "From", b'f';
    Identity => "Identity", b'y';
    InReplyTo => "In-Reply-To";
    MaxForwards => "Max-Forwards";
    MinExpires => "Min-Expires";
    MinSE => "Min-SE";
    MimeVersion => "MIME-Version";
    Organization => "Organization";
    Priority => "Priority";
    Reason => "Reason";
    ProxyAuthenticate => "Proxy-Authenticate";
    ProxyAuthorization => "Proxy-Authorization";
    ProxyRequire => "Proxy-Require";
    RAck => "RAck";
    RecordRoute => "Record-Route";
    ReferTo => "Refer-To", b'r';
    ReferredBy => "Referred-By", b'b';
    RejectContact => "Reject-Contact", b'j';
    Replaces => "Replaces";
    ReplyTo => "Reply-To";
    RequestDisposition => "Request-Disposition", b'd';
    Require => "Require";
    RetryAfter => "Retry-After";
    Route => "Route";
    RSeq => "RSeq";
    Server => "Server";
    SessionExpires => "Session-Expires", b'x';
    SipETag => "SIP-ETag";
    SipIfMatch => "SIP-If-Match";
    Subject => "Subject", b's';
    SubscriptionState => "Subscription-State";
    Supported => "Supported", b'k';
    Timestamp => "Timestamp";
    To => "To", b't';
    Unsupported => "Unsupported";
    UserAgent => "User-Agent";
    Via => "Via", b'v';
    Warning => "Warning";
    WwwAuthenticate => "WWW-Authenticate";
}

impl HeaderName {
    /// Whether several values may share one header line, comma-separated
    /// (RFC 3261 §7.3.1). Authorization-like headers and Date are not lists.
    pub fn is_list(&self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Accept
                | AcceptContact
                | AcceptEncoding
                | AcceptLanguage
                | AlertInfo
                | Allow
                | AllowEvents
                | CallInfo
                | Contact
                | ContentEncoding
                | ContentLanguage
                | ErrorInfo
                | InReplyTo
                | ProxyRequire
                | RecordRoute
                | RejectContact
                | Require
                | Route
                | Supported
                | Unsupported
                | Via
                | Warning
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest extension name kept inline: every name seen in practice
/// (`P-Asserted-Identity`, `X-Sirius-Cause`, `Remote-Party-ID`) fits.
const INLINE: usize = 22;

/// The name of an extension header. Short names (up to 22 bytes) are held
/// inline, so a message with unknown headers still parses without an
/// allocation per header; longer ones go to the heap. Equality and hashing
/// ignore ASCII case (RFC 3261 §7.3.1).
#[derive(Clone)]
pub struct OtherName(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl OtherName {
    /// The name as spelled.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Built from a whole &str of at most INLINE bytes: always UTF-8.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }
}

impl From<&str> for OtherName {
    fn from(s: &str) -> OtherName {
        if s.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            OtherName(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            OtherName(Repr::Heap(s.into()))
        }
    }
}

impl From<String> for OtherName {
    fn from(s: String) -> OtherName {
        OtherName::from(s.as_str())
    }
}

impl std::ops::Deref for OtherName {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for OtherName {
    fn eq(&self, other: &OtherName) -> bool {
        self.as_str().eq_ignore_ascii_case(other.as_str())
    }
}

impl Eq for OtherName {}

impl PartialEq<str> for OtherName {
    fn eq(&self, other: &str) -> bool {
        self.as_str().eq_ignore_ascii_case(other)
    }
}

impl PartialEq<&str> for OtherName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str().eq_ignore_ascii_case(other)
    }
}

impl Hash for OtherName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.as_str().bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}

impl fmt::Debug for OtherName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for OtherName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_expand_and_names_are_case_insensitive() {
        for (c, long) in [
            ("v", "Via"),
            ("f", "From"),
            ("t", "To"),
            ("i", "Call-ID"),
            ("m", "Contact"),
            ("l", "Content-Length"),
            ("c", "Content-Type"),
            ("k", "Supported"),
            ("s", "Subject"),
            ("e", "Content-Encoding"),
            ("o", "Event"),
            ("u", "Allow-Events"),
            ("V", "Via"),
        ] {
            assert_eq!(HeaderName::parse(c).as_str(), long, "{c}");
        }
        assert_eq!(HeaderName::parse("cseq"), HeaderName::CSeq);
        assert_eq!(HeaderName::parse("X-Foo").as_str(), "X-Foo");
        assert_eq!(HeaderName::parse("z"), HeaderName::Other("z".into()));
    }

    #[test]
    fn extension_names_inline_or_not_compare_without_case() {
        let short = HeaderName::parse("P-Asserted-Identity");
        assert_eq!(short, HeaderName::Other("p-asserted-identity".into()));
        assert_eq!(short.as_str(), "P-Asserted-Identity");
        let long = "X-A-Rather-Long-Extension-Header-Name";
        let l = HeaderName::parse(long);
        assert_eq!(l.as_str(), long);
        assert_eq!(l, HeaderName::Other(long.to_ascii_uppercase().into()));
        let exact = "X-Exactly-22-Bytes-Abc";
        assert_eq!(exact.len(), INLINE);
        assert_eq!(HeaderName::parse(exact).as_str(), exact);
        let hash = |n: &HeaderName| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            n.hash(&mut h);
            h.finish()
        };
        assert_eq!(
            hash(&short),
            hash(&HeaderName::parse("P-ASSERTED-IDENTITY"))
        );
        assert_eq!(std::mem::size_of::<HeaderName>(), 24);
    }
}
