//! A small TOML writer that keeps the order things were converted in
//! (sections and peers as the Asterisk file had them), which a serializer
//! over maps would sort. Values are written by the `toml` crate, so quoting
//! and escaping are its.

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(Vec<String>),
}

impl Value {
    fn render(&self) -> String {
        match self {
            Value::Str(s) => toml::Value::String(s.clone()).to_string(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::List(l) => {
                let items: Vec<String> = l
                    .iter()
                    .map(|s| toml::Value::String(s.clone()).to_string())
                    .collect();
                format!("[{}]", items.join(", "))
            }
        }
    }
}

/// A key as TOML needs it written: bare when it can be, else quoted.
pub fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_string()
    } else {
        toml::Value::String(k.to_string()).to_string()
    }
}

/// One `[table]` or `[[array]]` entry, its keys in order.
#[derive(Debug, Default)]
pub struct Table {
    header: String,
    array: bool,
    keys: Vec<(String, Value)>,
}

impl Table {
    /// Sets `k` (replacing an earlier value of it, in its place).
    pub fn set(&mut self, k: &str, v: Value) {
        match self.keys.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v,
            None => self.keys.push((k.to_string(), v)),
        }
    }
}

/// A whole file.
#[derive(Debug, Default)]
pub struct Doc {
    title: String,
    tables: Vec<Table>,
}

impl Doc {
    /// A file whose first line is a comment saying what it is.
    pub fn new(title: &str) -> Doc {
        Doc {
            title: title.to_string(),
            tables: Vec::new(),
        }
    }

    /// The table `[header]` (already quoted where its parts need it),
    /// made if it is not there yet.
    pub fn table(&mut self, header: &str) -> &mut Table {
        let i = match self
            .tables
            .iter()
            .position(|t| !t.array && t.header == header)
        {
            Some(i) => i,
            None => {
                self.tables.push(Table {
                    header: header.to_string(),
                    ..Table::default()
                });
                self.tables.len() - 1
            }
        };
        &mut self.tables[i]
    }

    /// A new `[[header]]` entry.
    pub fn array_table(&mut self, header: &str) -> &mut Table {
        self.tables.push(Table {
            header: header.to_string(),
            array: true,
            ..Table::default()
        });
        self.tables.last_mut().expect("just pushed")
    }

    /// The text.
    pub fn render(&self) -> String {
        let mut out = format!("# {}\n", self.title);
        for t in &self.tables {
            out.push('\n');
            if t.array {
                out.push_str(&format!("[[{}]]\n", t.header));
            } else {
                out.push_str(&format!("[{}]\n", t.header));
            }
            for (k, v) in &t.keys {
                out.push_str(&format!("{} = {}\n", key(k), v.render()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_quoting_are_kept() {
        let mut d = Doc::new("t");
        d.table("general").set("realm", Value::Str("a\"b".into()));
        d.table(&format!("peers.{}", key("alice.desk")))
            .set("call-limit", Value::Int(2));
        d.table("general").set("tcpenable", Value::Bool(true));
        d.array_table("register")
            .set("user", Value::Str("x".into()));
        d.table("general").set("realm", Value::Str("r".into()));
        let text = d.render();
        assert_eq!(
            text,
            "# t\n\n[general]\nrealm = \"r\"\ntcpenable = true\n\n[peers.\"alice.desk\"]\ncall-limit = 2\n\n[[register]]\nuser = \"x\"\n"
        );
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert!(parsed["peers"]["alice.desk"].is_table());
    }
}
