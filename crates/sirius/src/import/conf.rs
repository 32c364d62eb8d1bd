//! Asterisk's configuration file syntax (main/config.c), as far as
//! `sip.conf` and `extensions.conf` use it:
//!
//! * `[section]`, `[section](template,…)` (inherits the templates' entries
//!   first), `[section](!)` (a template: not a section of its own),
//!   `[section](!,template)`, `[section](+)` (appends to an earlier section);
//! * `key = value` and `key => value` (the arrow is what extensions.conf
//!   writes; both mean the same);
//! * `;` comments (`\;` is a literal semicolon), `;--` … `--;` block comments;
//! * `#include file` / `#include "file"` (relative to the including file's
//!   directory; globs are not expanded), `#tryinclude`; `#exec` is refused.
//!
//! Every entry keeps its file and line, so the importer can say where each
//! thing it could not convert came from.

use std::path::{Path, PathBuf};

/// Where an entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The file (as named relative to the imported directory).
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Key, as written (trimmed).
    pub key: String,
    /// Value, trimmed, comments removed.
    pub value: String,
    /// Where.
    pub at: Place,
}

/// One `[section]`, its own and inherited entries in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Its name.
    pub name: String,
    /// Where its header is.
    pub at: Place,
    /// Entries: the templates' first, then its own.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The last value of `key` (case-insensitive), as Asterisk's
    /// `ast_variable_retrieve` reads a key given twice.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }
}

/// A parsed file: its sections in order, and the lines it could not read.
#[derive(Debug, Default)]
pub struct Conf {
    /// Sections (templates excluded), in file order.
    pub sections: Vec<Section>,
    /// Lines that are not configuration (with why).
    pub problems: Vec<(Place, String)>,
}

/// `#include` depth at most (Asterisk has no limit; a loop would never end).
const MAX_DEPTH: usize = 8;

impl Conf {
    /// Reads `name` in `dir` (and what it includes). `Ok(None)` when the file
    /// does not exist.
    pub fn read(dir: &Path, name: &str) -> std::io::Result<Option<Conf>> {
        let path = dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut p = Parser {
            dir: dir.to_path_buf(),
            conf: Conf::default(),
            templates: Vec::new(),
            current: None,
        };
        p.text(name, &text, 0);
        p.finish();
        Ok(Some(p.conf))
    }

    /// Parses text as file `name` (no includes are read beside it: they are
    /// looked for in the current directory).
    #[cfg(test)]
    pub fn parse(name: &str, text: &str) -> Conf {
        let mut p = Parser {
            dir: PathBuf::from("."),
            conf: Conf::default(),
            templates: Vec::new(),
            current: None,
        };
        p.text(name, text, 0);
        p.finish();
        p.conf
    }

    /// The section named `name` (case-insensitive), the first if repeated.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

struct Parser {
    dir: PathBuf,
    conf: Conf,
    templates: Vec<Section>,
    /// The section being read, and whether it is a template.
    current: Option<(Section, bool)>,
}

impl Parser {
    fn text(&mut self, file: &str, text: &str, depth: usize) {
        let mut in_block = false;
        for (i, raw) in text.lines().enumerate() {
            let at = Place {
                file: file.to_string(),
                line: i + 1,
            };
            let line = strip_comments(raw, &mut in_block);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                self.directive(rest, at, depth);
            } else if line.starts_with('[') {
                self.header(line, at);
            } else {
                self.entry(line, at);
            }
        }
    }

    fn directive(&mut self, rest: &str, at: Place, depth: usize) {
        let (word, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let arg = arg.trim().trim_matches(['"', '<', '>']);
        match word {
            "include" | "tryinclude" => {
                if depth >= MAX_DEPTH {
                    self.problem(
                        at,
                        format!("#include {arg}: nested more than {MAX_DEPTH} deep"),
                    );
                    return;
                }
                match std::fs::read_to_string(self.dir.join(arg)) {
                    Ok(text) => self.text(arg, &text, depth + 1),
                    Err(_) if word == "tryinclude" => {}
                    Err(e) => self.problem(at, format!("#include {arg}: {e}")),
                }
            }
            _ => self.problem(
                at,
                format!("#{word}: not read (runs or means nothing outside Asterisk)"),
            ),
        }
    }

    fn header(&mut self, line: &str, at: Place) {
        let Some(close) = line.find(']') else {
            return self.problem(at, format!("'{line}': no closing ']'"));
        };
        let name = line[1..close].trim().to_string();
        let opts = line[close + 1..].trim();
        let mut template = false;
        let mut append = false;
        let mut inherits = Vec::new();
        if let Some(o) = opts.strip_prefix('(').and_then(|o| o.strip_suffix(')')) {
            for o in o.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                match o {
                    "!" => template = true,
                    "+" => append = true,
                    t => inherits.push(t.to_string()),
                }
            }
        } else if !opts.is_empty() {
            self.problem(
                at.clone(),
                format!("'{opts}' after [{name}]: not understood"),
            );
        }
        self.close();
        if append {
            if let Some(i) = self.conf.sections.iter().rposition(|s| s.name == name) {
                let s = self.conf.sections.remove(i);
                self.current = Some((s, false));
                return;
            }
        }
        let mut entries = Vec::new();
        for t in &inherits {
            match self.templates.iter().rev().find(|s| &s.name == t) {
                Some(tpl) => entries.extend(tpl.entries.iter().cloned()),
                None => self.conf.problems.push((
                    at.clone(),
                    format!("[{name}] inherits '{t}', which is not a template defined before it"),
                )),
            }
        }
        self.current = Some((Section { name, at, entries }, template));
    }

    fn entry(&mut self, line: &str, at: Place) {
        // The first `=` ends the key (main/config.c); `=>` is `=` and a `>`.
        let Some((key, value)) = line.split_once('=') else {
            return self.problem(at, format!("'{line}': not a `key = value` line"));
        };
        let value = value.strip_prefix('>').unwrap_or(value);
        let entry = Entry {
            key: key.trim().to_string(),
            value: value.trim().to_string(),
            at: at.clone(),
        };
        match self.current.as_mut() {
            Some((s, _)) => s.entries.push(entry),
            None => self.problem(at, format!("'{line}': before any [section]")),
        }
    }

    fn close(&mut self) {
        match self.current.take() {
            Some((s, true)) => self.templates.push(s),
            Some((s, false)) => self.conf.sections.push(s),
            None => {}
        }
    }

    fn finish(&mut self) {
        self.close();
    }

    fn problem(&mut self, at: Place, why: String) {
        self.conf.problems.push((at, why));
    }
}

/// The line without its comment: `;` to the end unless escaped (`\;` is a
/// semicolon), and `;--` … `--;` blocks, which may span lines.
fn strip_comments(line: &str, in_block: &mut bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        if *in_block {
            match rest.find("--;") {
                Some(i) => {
                    *in_block = false;
                    rest = &rest[i + 3..];
                }
                None => return out,
            }
        }
        let mut chars = rest.char_indices().peekable();
        let mut cut = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if rest[i + 1..].starts_with(';') => {
                    out.push(';');
                    chars.next();
                }
                ';' => {
                    cut = Some(i);
                    break;
                }
                c => out.push(c),
            }
        }
        match cut {
            Some(i) if rest[i..].starts_with(";--") => {
                *in_block = true;
                rest = &rest[i + 3..];
            }
            _ => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_templates_and_comments() {
        let c = Conf::parse(
            "sip.conf",
            "; a comment\n[general]\ncontext=default ; trailing\n\n[phone](!)\ntype=friend\nhost=dynamic\n\n[alice](phone)\nsecret=a\\;b\n;--\nblock\n--;\n[bob](phone)\ncontext => office\n[alice](+)\ncallerid=Alice <100>\n",
        );
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let names: Vec<_> = c.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["general", "bob", "alice"]);
        let alice = c.section("alice").unwrap();
        assert_eq!(alice.get("type").unwrap().value, "friend");
        assert_eq!(alice.get("type").unwrap().at.line, 6);
        assert_eq!(alice.get("secret").unwrap().value, "a;b");
        assert_eq!(alice.get("callerid").unwrap().value, "Alice <100>");
        assert_eq!(
            c.section("general").unwrap().get("context").unwrap().value,
            "default"
        );
        assert_eq!(
            c.section("bob").unwrap().get("context").unwrap().value,
            "office"
        );
    }

    #[test]
    fn arrows_and_equals_in_values() {
        let c = Conf::parse(
            "extensions.conf",
            "[demo]\nexten => 100,1,Set(A=1)\nexten = 101,1,GotoIf($[${A}=1]?yes)\nsame => n,NoOp(x=>y)\n",
        );
        let e = &c.sections[0].entries;
        assert_eq!(
            (e[0].key.as_str(), e[0].value.as_str()),
            ("exten", "100,1,Set(A=1)")
        );
        assert_eq!(
            (e[1].key.as_str(), e[1].value.as_str()),
            ("exten", "101,1,GotoIf($[${A}=1]?yes)")
        );
        assert_eq!(
            (e[2].key.as_str(), e[2].value.as_str()),
            ("same", "n,NoOp(x=>y)")
        );
    }

    #[test]
    fn what_cannot_be_read_is_listed_with_its_line() {
        let c = Conf::parse(
            "x.conf",
            "stray=1\n[a](nope)\n#exec /bin/true\n[b\nbare words\n",
        );
        let got: Vec<String> = c
            .problems
            .iter()
            .map(|(p, w)| format!("{p}: {w}"))
            .collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(
            got[0].starts_with("x.conf:1: 'stray=1': before any [section]"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("x.conf:2: [a] inherits 'nope'"),
            "{got:?}"
        );
        assert!(got[2].starts_with("x.conf:3: #exec"), "{got:?}");
        assert!(got[3].starts_with("x.conf:4: '[b': no closing"), "{got:?}");
        assert!(got[4].starts_with("x.conf:5: 'bare words'"), "{got:?}");
    }
}
