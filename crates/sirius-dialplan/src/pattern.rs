//! Asterisk extension patterns (`_NXXNXXXXXX`, `_1[2-5]X`, `_X.`, `_9!`) and
//! the order Asterisk tries them in (`ext_cmp` in main/pbx.c).
//!
//! An extension is either exact (`600`, `s`, `h`) or a pattern (leading `_`):
//! `X` = 0-9, `Z` = 1-9, `N` = 2-9, `[1-5a]` = a set, `.` = one or more of
//! anything, `!` = zero or more of anything; other characters match themselves.
//! Exact extensions are tried before patterns; among patterns the one whose
//! characters admit fewer values at the first differing position wins (`_61X`
//! before `_6XX` before `_X.`).

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    /// A set of characters (a literal is a one-character set).
    Set(Vec<char>),
    /// `.`: one or more of anything.
    OneOrMore,
    /// `!`: zero or more of anything.
    ZeroOrMore,
}

impl Element {
    /// Asterisk's specificity weight: the set size, with `.` and `!` above any set.
    fn weight(&self) -> (usize, char) {
        match self {
            Element::Set(s) => (s.len(), s.first().copied().unwrap_or('\0')),
            Element::OneOrMore => (usize::MAX - 1, '\0'),
            Element::ZeroOrMore => (usize::MAX, '\0'),
        }
    }
}

/// A parsed extension name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    elements: Option<Vec<Element>>,
}

/// Why an extension name is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Empty name.
    #[error("empty extension")]
    Empty,
    /// `[` without `]`.
    #[error("unterminated [ in pattern '{0}'")]
    Unterminated(String),
    /// `[]` or a reversed range.
    #[error("bad character class in pattern '{0}'")]
    BadClass(String),
    /// `.` or `!` not at the end.
    #[error("'.' and '!' must end the pattern '{0}'")]
    WildcardNotLast(String),
}

impl Pattern {
    /// Parses an extension name.
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        let Some(p) = text.strip_prefix('_') else {
            return Ok(Pattern {
                text: text.to_string(),
                elements: None,
            });
        };
        let mut elements = Vec::new();
        let mut chars = p.chars().peekable();
        while let Some(c) = chars.next() {
            let e = match c {
                'X' | 'x' => Element::Set(('0'..='9').collect()),
                'Z' | 'z' => Element::Set(('1'..='9').collect()),
                'N' | 'n' => Element::Set(('2'..='9').collect()),
                '.' => Element::OneOrMore,
                '!' => Element::ZeroOrMore,
                '[' => {
                    let mut set = Vec::new();
                    let mut closed = false;
                    let mut prev: Option<char> = None;
                    while let Some(k) = chars.next() {
                        match k {
                            ']' => {
                                closed = true;
                                break;
                            }
                            '-' if prev.is_some() && chars.peek().is_some_and(|n| *n != ']') => {
                                let (Some(lo), Some(hi)) = (prev, chars.next()) else {
                                    break;
                                };
                                if hi < lo {
                                    return Err(PatternError::BadClass(text.into()));
                                }
                                set.extend((lo..=hi).skip(1));
                                prev = None;
                            }
                            k => {
                                set.push(k);
                                prev = Some(k);
                            }
                        }
                    }
                    if !closed {
                        return Err(PatternError::Unterminated(text.into()));
                    }
                    set.sort_unstable();
                    set.dedup();
                    if set.is_empty() {
                        return Err(PatternError::BadClass(text.into()));
                    }
                    Element::Set(set)
                }
                lit => Element::Set(vec![lit]),
            };
            if matches!(e, Element::OneOrMore | Element::ZeroOrMore) && chars.peek().is_some() {
                return Err(PatternError::WildcardNotLast(text.into()));
            }
            elements.push(e);
        }
        if elements.is_empty() {
            return Err(PatternError::Empty);
        }
        Ok(Pattern {
            text: text.to_string(),
            elements: Some(elements),
        })
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is a pattern (leading `_`).
    pub fn is_pattern(&self) -> bool {
        self.elements.is_some()
    }

    /// Whether `exten` matches.
    pub fn matches(&self, exten: &str) -> bool {
        let Some(elements) = &self.elements else {
            return self.text == exten;
        };
        // Walked, not collected: it runs for every step of every call.
        let mut chars = exten.chars();
        for e in elements {
            match e {
                Element::Set(s) => match chars.next() {
                    Some(c) if s.contains(&c) => {}
                    _ => return false,
                },
                Element::OneOrMore => return chars.next().is_some(),
                Element::ZeroOrMore => return true,
            }
        }
        chars.next().is_none()
    }

    /// Asterisk's try order: exact before patterns, then by specificity.
    pub fn specificity_cmp(&self, other: &Pattern) -> Ordering {
        match (&self.elements, &other.elements) {
            (None, None) => self.text.cmp(&other.text),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.weight().cmp(&y.weight()) {
                        Ordering::Equal => {}
                        o => return o,
                    }
                }
                a.len()
                    .cmp(&b.len())
                    .then_with(|| self.text.cmp(&other.text))
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn matching() {
        assert!(p("600").matches("600") && !p("600").matches("6000"));
        assert!(p("_NXXNXXXXXX").matches("2125551234") && !p("_NXXNXXXXXX").matches("1125551234"));
        assert!(p("_1[2-5]X").matches("134") && !p("_1[2-5]X").matches("164"));
        assert!(p("_X.").matches("12") && !p("_X.").matches("1"));
        assert!(p("_9!").matches("9") && p("_9!").matches("9123"));
        assert!(p("_[a-c]1").matches("b1"));
        assert!(p("_Z").matches("5") && !p("_Z").matches("0"));
    }

    #[test]
    fn asterisk_order() {
        let mut v: Vec<Pattern> = ["_X.", "_6XX", "_61X", "610", "_6!", "_6[0-4]X", "_NXX", "s"]
            .iter()
            .map(|s| p(s))
            .collect();
        v.sort_by(|a, b| a.specificity_cmp(b));
        let names: Vec<&str> = v.iter().map(Pattern::as_str).collect();
        assert_eq!(
            names,
            vec!["610", "s", "_61X", "_6[0-4]X", "_6XX", "_6!", "_NXX", "_X."]
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            Pattern::parse("_1[2-"),
            Err(PatternError::Unterminated("_1[2-".into()))
        );
        assert_eq!(
            Pattern::parse("_X.1"),
            Err(PatternError::WildcardNotLast("_X.1".into()))
        );
        assert_eq!(
            Pattern::parse("_[5-2]"),
            Err(PatternError::BadClass("_[5-2]".into()))
        );
        assert_eq!(Pattern::parse(""), Err(PatternError::Empty));
    }
}
