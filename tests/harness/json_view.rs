//! `sirius -rx --json` as a script reads it, and the checks that its rows
//! and fields are the ones the text shows (issue #15 item 7: the same rows
//! and fields as the table, so scripts need no screen-scraping).

use super::{sirius_bin, Daemon};
use std::process::{Command, Stdio};

/// The longest prefix of a value the text is sure to show whole: columns
/// narrower than this print short values only.
const SHOWN: usize = 8;

impl Daemon {
    /// `sirius -rx --json <command>`, parsed; panics when it fails or is
    /// not JSON.
    #[track_caller]
    pub fn rx_json(&self, command: &str) -> serde_json::Value {
        let out = Command::new(sirius_bin())
            .arg("-C")
            .arg(self.etc())
            .arg("-rx")
            .arg(command)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .expect("run sirius -rx --json");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command} --json failed: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{command} --json is not JSON ({e}):\n{text}"))
    }
}

/// A value's first characters as the text prints them (a column cuts
/// longer ones).
fn shown(v: &str) -> &str {
    match v.char_indices().nth(SHOWN) {
        Some((i, _)) => &v[..i],
        None => v,
    }
}

/// Asserts every row of `json`'s `rows` is a line of `text` of its own
/// (each non-empty value on it, in the columns' order), and returns how
/// many rows there are.
#[track_caller]
pub fn same_rows(command: &str, text: &str, json: &serde_json::Value) -> usize {
    let rows = json["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("{command}: no rows in {json}"));
    let lines: Vec<&str> = text.lines().collect();
    let mut used = vec![false; lines.len()];
    for row in rows {
        let values: Vec<&str> = row
            .as_object()
            .unwrap_or_else(|| panic!("{command}: a row is not an object: {row}"))
            .values()
            .map(|v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{command}: {v} is not text"))
            })
            .filter(|v| !v.is_empty())
            .collect();
        let on = |line: &str| {
            let mut at = 0;
            values.iter().all(|v| match line[at..].find(shown(v)) {
                Some(i) => {
                    at += i + shown(v).len();
                    true
                }
                None => false,
            })
        };
        let i = (0..lines.len())
            .find(|&i| !used[i] && on(lines[i]))
            .unwrap_or_else(|| panic!("{command}: row {row} is no line of:\n{text}"));
        used[i] = true;
    }
    rows.len()
}

/// Asserts every text field of a record is shown in `text`, and that the
/// record has at least `min` of them.
#[track_caller]
pub fn same_fields(command: &str, text: &str, json: &serde_json::Value, min: usize) {
    let fields = json
        .as_object()
        .unwrap_or_else(|| panic!("{command}: not a record: {json}"));
    let mut n = 0;
    for (k, v) in fields {
        if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
            assert!(
                text.contains(s),
                "{command}: {k} = {s:?} is not in:\n{text}"
            );
            n += 1;
        }
    }
    assert!(
        n >= min,
        "{command}: {n} fields, expected {min} or more: {json}"
    );
}
