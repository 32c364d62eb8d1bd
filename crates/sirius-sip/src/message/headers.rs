//! The ordered header list of a message, over one buffer.
//!
//! A parsed message keeps its header section as received, copied once into
//! the list's buffer, and each header is a name and the range of its value
//! in that buffer: parsing allocates the buffer and the list of entries and
//! nothing per header. A value that is not a plain slice of what was
//! received (a folded header, unfolded; a header added or set later) is
//! appended to the buffer's end. Bytes a `set` or `remove` left unreferenced
//! stay until the buffer next has to grow, when the live values are packed
//! again if they are less than half of it.

use super::grammar::ListIter;
pub use super::names::{HeaderName, OtherName};
use std::fmt;

/// One header field line, borrowed from a [`Headers`] list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name, compact forms expanded.
    pub name: &'a HeaderName,
    /// The value with folding replaced by single spaces and outer whitespace trimmed.
    pub value: &'a str,
}

/// One entry: a name and where its value lies in the buffer.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) name: HeaderName,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Header fields in wire order.
#[derive(Clone, Default)]
pub struct Headers {
    /// The header section as received, then every value stored since.
    pub(super) buf: String,
    pub(super) items: Vec<Entry>,
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.items.len() == other.items.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|h| (h.name, h.value)))
            .finish()
    }
}

impl Headers {
    /// An empty list with room for `n` headers and `bytes` of values.
    pub fn with_capacity(n: usize, bytes: usize) -> Headers {
        Headers {
            buf: String::with_capacity(bytes),
            items: Vec::with_capacity(n),
        }
    }

    /// Appends `value` to the buffer; its range.
    fn store(&mut self, value: &str) -> (usize, usize) {
        if self.buf.len() + value.len() > self.buf.capacity() {
            self.compact(value.len());
        }
        let start = self.buf.len();
        self.buf.push_str(value);
        (start, self.buf.len())
    }

    /// Before the buffer grows: packs the live values if they are less than
    /// half of it, so a message edited again and again (a stored request
    /// whose Via and CSeq are rewritten for each resend) stays its own size.
    fn compact(&mut self, more: usize) {
        let live: usize = self.items.iter().map(|e| e.end - e.start).sum();
        if live * 2 >= self.buf.len() {
            return;
        }
        let mut packed = String::with_capacity((live + more).max(64) * 2);
        for e in &mut self.items {
            let start = packed.len();
            packed.push_str(&self.buf[e.start..e.end]);
            (e.start, e.end) = (start, packed.len());
        }
        self.buf = packed;
    }

    fn value(&self, e: &Entry) -> &str {
        // Ranges always lie on the buffer's char boundaries; `get` keeps a
        // broken invariant from panicking.
        self.buf.get(e.start..e.end).unwrap_or_default()
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let (start, end) = self.store(value.as_ref());
        self.items.push(Entry { name, start, end });
    }

    /// Appends a header whose value `write` puts straight into the buffer:
    /// a value formatted from parts (a Via rewritten for a response) costs
    /// no `String` of its own. `write` must only append (what it removed
    /// would turn the values it held into empty strings).
    pub fn push_with(&mut self, name: HeaderName, write: impl FnOnce(&mut String)) {
        let start = self.buf.len();
        write(&mut self.buf);
        let end = self.buf.len();
        self.items.push(Entry { name, start, end });
    }

    /// Replaces every header of that name with one value (appended if absent).
    pub fn set(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let (start, end) = self.store(value.as_ref());
        match self.items.iter().position(|e| e.name == name) {
            Some(i) => {
                (self.items[i].start, self.items[i].end) = (start, end);
                let mut seen = 0;
                self.items.retain(|e| {
                    if e.name != name {
                        return true;
                    }
                    seen += 1;
                    seen == 1
                });
            }
            None => self.items.push(Entry { name, start, end }),
        }
    }

    /// Appends to the first value of that name what `write` writes, the
    /// value copied within the buffer (a To gaining its tag: no `String` of
    /// its own). Returns whether there was such a header. As with
    /// [`Headers::push_with`], `write` must only append.
    pub fn extend_value(&mut self, name: &HeaderName, write: impl FnOnce(&mut String)) -> bool {
        let Some(i) = self.items.iter().position(|e| e.name == *name) else {
            return false;
        };
        let (old_start, old_end) = (self.items[i].start, self.items[i].end);
        let start = self.buf.len();
        self.buf.extend_from_within(old_start..old_end);
        write(&mut self.buf);
        (self.items[i].start, self.items[i].end) = (start, self.buf.len());
        true
    }

    /// Inserts a header before all others (a new top Via, a Route).
    pub fn push_front(&mut self, name: HeaderName, value: impl AsRef<str>) {
        let (start, end) = self.store(value.as_ref());
        self.items.insert(0, Entry { name, start, end });
    }

    /// Removes every header of that name.
    pub fn remove(&mut self, name: &HeaderName) {
        self.items.retain(|e| e.name != *name);
    }

    /// The first line of that name.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.items
            .iter()
            .find(|e| e.name == *name)
            .map(|e| self.value(e))
    }

    /// Every line of that name, as written.
    pub fn all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.items
            .iter()
            .filter(move |e| e.name == *name)
            .map(|e| self.value(e))
    }

    /// Every value of that name: lines in order, each list line split at its commas
    /// (commas inside quotes and `<…>` do not split).
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        let list = name.is_list();
        self.all(name).flat_map(move |v| {
            if list {
                ListIter::new(v)
            } else {
                ListIter::single(v)
            }
        })
    }

    /// Number of lines of that name.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.items.iter().filter(|e| e.name == *name).count()
    }

    /// Iterates over all lines.
    pub fn iter(&self) -> impl Iterator<Item = Header<'_>> {
        self.items.iter().map(|e| Header {
            name: &e.name,
            value: self.value(e),
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

    /// Bytes [`Headers::write_to`] writes, `skip` left out.
    pub(super) fn encoded_len(&self, skip: &HeaderName) -> usize {
        self.items
            .iter()
            .filter(|e| e.name != *skip)
            .map(|e| e.name.as_str().len() + 4 + (e.end - e.start))
            .sum()
    }

    /// Writes `Name: value\r\n` for every line but those named `skip`.
    pub(super) fn write_to(&self, out: &mut Vec<u8>, skip: &HeaderName) {
        for e in &self.items {
            if e.name == *skip {
                continue;
            }
            out.extend_from_slice(e.name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(self.value(e).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Edit {
        Push(usize, String),
        PushFront(usize, String),
        Set(usize, String),
        Remove(usize),
    }

    const NAMES: [&str; 4] = ["Via", "To", "X-Thing", "Subject"];

    fn edit() -> impl Strategy<Value = Edit> {
        let name = 0..NAMES.len();
        let value = "[a-z;=<>\" ]{0,40}";
        prop_oneof![
            (name.clone(), value).prop_map(|(n, v)| Edit::Push(n, v)),
            (name.clone(), value).prop_map(|(n, v)| Edit::PushFront(n, v)),
            (name.clone(), value).prop_map(|(n, v)| Edit::Set(n, v)),
            name.prop_map(Edit::Remove),
        ]
    }

    proptest! {
        /// Any run of edits leaves the list a plain list of (name, value)
        /// would hold, and the buffer never grows past a few times the most
        /// that was ever live (dead bytes stay until the buffer must grow).
        #[test]
        fn edits_match_a_plain_list(edits in prop::collection::vec(edit(), 0..200)) {
            let mut h = Headers::default();
            let mut model: Vec<(HeaderName, String)> = Vec::new();
            let mut peak = 0;
            for e in edits {
                match e {
                    Edit::Push(n, v) => {
                        h.push(HeaderName::parse(NAMES[n]), &v);
                        model.push((HeaderName::parse(NAMES[n]), v));
                    }
                    Edit::PushFront(n, v) => {
                        h.push_front(HeaderName::parse(NAMES[n]), &v);
                        model.insert(0, (HeaderName::parse(NAMES[n]), v));
                    }
                    Edit::Set(n, v) => {
                        let name = HeaderName::parse(NAMES[n]);
                        h.set(name.clone(), &v);
                        match model.iter().position(|(m, _)| *m == name) {
                            Some(i) => {
                                model[i].1 = v;
                                let mut seen = 0;
                                model.retain(|(m, _)| {
                                    seen += usize::from(*m == name);
                                    *m != name || seen == 1
                                });
                            }
                            None => model.push((name, v)),
                        }
                    }
                    Edit::Remove(n) => {
                        let name = HeaderName::parse(NAMES[n]);
                        h.remove(&name);
                        model.retain(|(m, _)| *m != name);
                    }
                }
                peak = peak.max(model.iter().map(|(_, v)| v.len()).sum::<usize>());
                prop_assert!(h.buf.len() <= 4 * peak + 256, "{} for {peak}", h.buf.len());
            }
            let got: Vec<(HeaderName, String)> =
                h.iter().map(|x| (x.name.clone(), x.value.to_string())).collect();
            prop_assert_eq!(got, model);
        }
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

    #[test]
    fn edits_keep_order_and_the_buffer_stays_small() {
        let mut h = Headers::default();
        h.push(HeaderName::Via, "SIP/2.0/UDP a;branch=z9hG4bK1");
        h.push(HeaderName::CSeq, "1 INVITE");
        h.push_front(HeaderName::Via, "SIP/2.0/UDP b;branch=z9hG4bK2");
        for i in 0..10_000 {
            h.set(HeaderName::CSeq, format!("{i} INVITE"));
        }
        let all: Vec<_> = h.iter().map(|h| (h.name.as_str(), h.value)).collect();
        assert_eq!(
            all,
            [
                ("Via", "SIP/2.0/UDP b;branch=z9hG4bK2"),
                ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"),
                ("CSeq", "9999 INVITE"),
            ]
        );
        assert!(h.buf.capacity() < 1024, "{}", h.buf.capacity());
        h.remove(&HeaderName::Via);
        assert_eq!(h.len(), 1);
        assert_eq!(format!("{h:?}"), r#"[(CSeq, "9999 INVITE")]"#);
    }
}
