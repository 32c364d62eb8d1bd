//! Header names (with RFC 3261 §7.3.3 compact forms) and the ordered header list.

use super::grammar::split_list;
use std::fmt;

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
            /// An extension header, as spelled on the wire.
            Other(String),
        }

        impl HeaderName {
            /// The canonical (long) spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $text, )*
                    HeaderName::Other(s) => s,
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
                HeaderName::Other(name.to_string())
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

/// One header field line, borrowed from a [`Headers`] list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name, compact forms expanded.
    pub name: &'a HeaderName,
    /// The value with folding replaced by single spaces and outer whitespace trimmed.
    pub value: &'a str,
}

/// Header fields in wire order.
///
/// Values live in one arena string per message rather than one `String` each:
/// parsing a typical INVITE then costs two allocations instead of twenty.
/// Replaced values leave their old bytes in the arena until the message is dropped.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    arena: String,
    items: Vec<(HeaderName, u32, u32)>,
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.items.len() == other.items.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl Eq for Headers {}

impl Headers {
    /// An empty list with room for `n` headers and `bytes` of values.
    pub fn with_capacity(n: usize, bytes: usize) -> Headers {
        Headers {
            arena: String::with_capacity(bytes),
            items: Vec::with_capacity(n),
        }
    }

    fn store(&mut self, value: &str) -> (u32, u32) {
        let start = self.arena.len() as u32;
        self.arena.push_str(value);
        (start, self.arena.len() as u32)
    }

    fn value_at(&self, start: u32, end: u32) -> &str {
        &self.arena[start as usize..end as usize]
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let (a, b) = self.store(value.as_ref());
        self.items.push((name, a, b));
    }

    /// Replaces every header of that name with one value (appended if absent).
    pub fn set(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let (a, b) = self.store(value.as_ref());
        match self.items.iter().position(|(n, _, _)| *n == name) {
            Some(i) => {
                self.items[i].1 = a;
                self.items[i].2 = b;
                let mut seen = 0;
                self.items.retain(|(n, _, _)| {
                    if *n != name {
                        return true;
                    }
                    seen += 1;
                    seen == 1
                });
            }
            None => self.items.push((name, a, b)),
        }
    }

    /// Inserts a header before all others (a new top Via, a Route).
    pub fn push_front(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let (a, b) = self.store(value.as_ref());
        self.items.insert(0, (name, a, b));
    }

    /// Removes every header of that name.
    pub fn remove(&mut self, name: &HeaderName) {
        self.items.retain(|(n, _, _)| n != name);
    }

    /// The first line of that name.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.items
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|&(_, a, b)| self.value_at(a, b))
    }

    /// Every line of that name, as written.
    pub fn all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.items
            .iter()
            .filter(move |(n, _, _)| n == name)
            .map(|&(_, a, b)| self.value_at(a, b))
    }

    /// Every value of that name: lines in order, each list line split at its commas
    /// (commas inside quotes and `<…>` do not split).
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        let list = name.is_list();
        self.all(name)
            .flat_map(move |v| if list { split_list(v) } else { vec![v] })
    }

    /// Number of lines of that name.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.items.iter().filter(|(n, _, _)| n == name).count()
    }

    /// Iterates over all lines.
    pub fn iter(&self) -> impl Iterator<Item = Header<'_>> {
        self.items.iter().map(|(n, a, b)| Header {
            name: n,
            value: self.value_at(*a, *b),
        })
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
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
    fn list_values_split_outside_quotes_and_brackets() {
        let mut h = Headers::default();
        h.push(HeaderName::Contact, "\"A, B\" <sip:a@x;p=1,2>, sip:b@y");
        h.push(HeaderName::Contact, "<sip:c@z>");
        h.push(HeaderName::Subject, "a, b");
        let c: Vec<&str> = h.values(&HeaderName::Contact).collect();
        assert_eq!(c, vec!["\"A, B\" <sip:a@x;p=1,2>", "sip:b@y", "<sip:c@z>"]);
        assert_eq!(
            h.values(&HeaderName::Subject).collect::<Vec<_>>(),
            vec!["a, b"]
        );
        h.set(HeaderName::Contact, "<sip:d@w>");
        assert_eq!(h.count(&HeaderName::Contact), 1);
        assert_eq!(h.get(&HeaderName::Contact), Some("<sip:d@w>"));
    }
}
