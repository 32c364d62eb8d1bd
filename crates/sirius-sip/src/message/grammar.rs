//! RFC 3261 §25 lexical rules used by the typed header parsers.

/// `token` characters as a table: the parser tests every byte of every
/// header name, and a lookup is one load where the test it replaces was a
/// range check and a scan of eight punctuation bytes.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// `token` characters: alphanum and `-.!%*_+`'~`.
pub fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Whether `s` is a non-empty token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// `word` characters (Call-ID): token plus `()<>:\"/[]?{}`.
pub fn is_word_byte(b: u8) -> bool {
    is_token_byte(b) || b"()<>:\\\"/[]?{}".contains(&b)
}

/// Splits a list header value at top-level commas (not inside a quoted string or
/// `<…>`). Elements are trimmed; empty elements are kept so that strict parsers
/// can reject `a,,b`.
pub fn split_list(v: &str) -> Vec<&str> {
    ListIter::new(v).collect()
}

/// The elements of a list header value, as [`split_list`] cuts them, one at a
/// time: reading the first Via of a message allocates nothing.
#[derive(Debug, Clone)]
pub struct ListIter<'a> {
    rest: Option<&'a str>,
    split: bool,
}

impl<'a> ListIter<'a> {
    /// The elements of `v`.
    pub fn new(v: &'a str) -> ListIter<'a> {
        ListIter {
            rest: Some(v),
            split: true,
        }
    }

    /// `v` as the one element (the value of a header that is not a list).
    pub fn single(v: &'a str) -> ListIter<'a> {
        ListIter {
            rest: Some(v),
            split: false,
        }
    }
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let v = self.rest?;
        if !self.split {
            self.rest = None;
            return Some(v);
        }
        let bytes = v.as_bytes();
        let (mut quoted, mut angle) = (false, false);
        // Most values have no quote and no `<` before their first comma (a
        // Via, a Supported): one vectorised search settles those.
        let mut i = match memchr::memchr3(b',', b'"', b'<', bytes) {
            None => bytes.len(),
            Some(at) if bytes[at] == b',' => {
                self.rest = Some(&v[at + 1..]);
                return Some(v[..at].trim());
            }
            Some(at) => at,
        };
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                b',' if !quoted && !angle => {
                    self.rest = Some(&v[i + 1..]);
                    return Some(v[..i].trim());
                }
                _ => {}
            }
            i += 1;
        }
        self.rest = None;
        Some(v.trim())
    }
}

/// Reads a quoted string at the start of `s` (which begins with `"`), honouring
/// `\` quoted-pairs. Returns the content (escapes kept) and the rest after the
/// closing quote, or `None` if the quote never closes.
pub fn quoted_string(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&s[1..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Whether a byte is linear white space (after unfolding: SP or HTAB).
pub fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without the SP and HTAB around it (LWS, after unfolding). By bytes:
/// `str::trim` decodes characters to find Unicode white space, which SIP's
/// grammar does not treat as white space anyway, at several times the cost.
pub fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut from, mut to) = (0, b.len());
    while from < to && is_ws(b[from]) {
        from += 1;
    }
    while to > from && is_ws(b[to - 1]) {
        to -= 1;
    }
    &s[from..to]
}

/// `s` without the SP and HTAB it starts with.
pub fn trim_lws_start(s: &str) -> &str {
    let n = s.bytes().take_while(|&b| is_ws(b)).count();
    &s[n..]
}

/// Where the first SP or HTAB of `s` is.
pub fn find_ws(s: &str) -> Option<usize> {
    s.bytes().position(is_ws)
}

/// Finds the first top-level occurrence of `needle` (not inside quotes).
pub fn find_unquoted(s: &str, needle: u8) -> Option<usize> {
    let b = s.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            c if c == needle && !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_and_lists() {
        assert_eq!(
            quoted_string(r#""a \" b" rest"#),
            Some((r#"a \" b"#, " rest"))
        );
        assert_eq!(quoted_string(r#""unterminated"#), None);
        assert_eq!(split_list("a, ,b"), vec!["a", "", "b"]);
        assert!(is_token("!interesting-Method0123456789_*+`.%indeed'~"));
        assert!(!is_token("a b"));
        assert_eq!(find_unquoted(r#""x;y";z"#, b';'), Some(5));
    }
}
