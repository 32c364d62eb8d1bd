//! What a `show` command found, before it is laid out: the rows of a table
//! or the fields of a record, from which both the console's text (Asterisk's
//! layout, each command its own) and `sirius -rx --json` are made. A script
//! thus reads the same rows and fields an admin sees, with no screen-scraping
//! and nothing cut to a column's width. Here rather than in the console so
//! that the core's commands and a plugin's (`Plugin::run_command_json`)
//! name their keys the one same way; nothing of it crosses the interface
//! but the JSON text.
//!
//! JSON keys are the text's own headers and labels in snake case
//! (`Name/username` → `name_username`, `Maximum calls:` → `maximum_calls`).

use serde_json::{Map, Value};

/// Rows under headers, and the counts printed below them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column headers as the text prints them.
    pub headers: Vec<&'static str>,
    /// One entry per row, one value per header.
    pub rows: Vec<Vec<String>>,
    /// Figures printed under the table (`3 sip peers`), by label.
    pub totals: Vec<(&'static str, Value)>,
}

/// Fields by label (`core show settings`, `sip show peer`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// Label and value, in the text's order.
    pub fields: Vec<(String, Value)>,
}

impl Table {
    /// A table with these headers and no rows.
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            ..Table::default()
        }
    }

    /// Adds a row (one value per header).
    pub fn row(&mut self, values: Vec<String>) {
        debug_assert_eq!(values.len(), self.headers.len());
        self.rows.push(values);
    }

    /// `{"rows": [{header: value…}…], total…}`.
    pub fn to_json(&self) -> Value {
        let keys: Vec<String> = self.headers.iter().map(|h| key(h)).collect();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                Value::Object(
                    keys.iter()
                        .cloned()
                        .zip(r.iter().map(|v| Value::String(v.clone())))
                        .collect(),
                )
            })
            .collect();
        let mut o = Map::new();
        o.insert("rows".into(), Value::Array(rows));
        for (label, v) in &self.totals {
            o.insert(key(label), v.clone());
        }
        Value::Object(o)
    }
}

impl Record {
    /// Adds a field.
    pub fn field(&mut self, label: &str, value: impl Into<Value>) {
        self.fields.push((label.to_string(), value.into()));
    }

    /// `{label: value…}` in the text's order (a label given twice keeps
    /// its last value).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (key(k), v.clone()))
                .collect(),
        )
    }
}

/// A header or label as a JSON key: lower case, words joined by `_`.
pub fn key(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut gap = false;
    for c in label.chars() {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.extend(c.to_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_headers() {
        assert_eq!(key("Name/username"), "name_username");
        assert_eq!(key("Maximum calls:"), "maximum_calls");
        assert_eq!(key("  Addr->IP     "), "addr_ip");
        assert_eq!(key("Application(Data)"), "application_data");
        assert_eq!(key("Reg.Time"), "reg_time");
    }

    #[test]
    fn tables_and_records() {
        let mut t = Table::new(&["Channel", "State"]);
        t.row(vec!["SIP/a-1".into(), "Up".into()]);
        t.totals.push(("active channels", 1.into()));
        assert_eq!(
            t.to_json().to_string(),
            r#"{"rows":[{"channel":"SIP/a-1","state":"Up"}],"active_channels":1}"#
        );
        let mut r = Record::default();
        r.field("Name", "alice");
        r.field("Call limit", 2);
        assert_eq!(
            r.to_json().to_string(),
            r#"{"name":"alice","call_limit":2}"#
        );
    }
}
