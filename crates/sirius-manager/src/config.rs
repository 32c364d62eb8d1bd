//! `manager.toml`, Asterisk's manager.conf in TOML: a `[general]` table
//! (`enabled`, `port`, `bindaddr`, `authtimeout`, `authlimit`,
//! `displayconnects`, `timestampevents`) and one table per user (`secret`,
//! `permit`/`deny`, `read`/`write` class lists, `writetimeout`,
//! `displayconnects`), so an admin's manager.conf maps key by key.

use crate::acl::Acl;
use crate::perms::Perms;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// Why manager.toml could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or a key of the wrong type or unknown.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's words.
        message: String,
    },
    /// A value that parses but means nothing (`bindaddr = "nowhere"`).
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: String,
        /// Which key, which value.
        what: String,
    },
}

/// A list written either as `"system,call"` (manager.conf's form) or as a TOML array.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Default for OneOrMany {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl OneOrMany {
    fn items(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeneralFile {
    #[serde(default)]
    enabled: bool,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default = "default_bindaddr")]
    bindaddr: String,
    #[serde(default = "default_authtimeout")]
    authtimeout: u64,
    #[serde(default = "default_authlimit")]
    authlimit: usize,
    #[serde(default = "yes")]
    displayconnects: bool,
    #[serde(default)]
    timestampevents: bool,
}

fn default_port() -> u16 {
    5038
}
fn default_bindaddr() -> String {
    "0.0.0.0".into()
}
fn default_authtimeout() -> u64 {
    30
}
fn default_authlimit() -> usize {
    50
}
fn yes() -> bool {
    true
}
fn default_writetimeout() -> u64 {
    100
}

impl Default for GeneralFile {
    fn default() -> Self {
        GeneralFile {
            enabled: false,
            port: default_port(),
            bindaddr: default_bindaddr(),
            authtimeout: default_authtimeout(),
            authlimit: default_authlimit(),
            displayconnects: true,
            timestampevents: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFile {
    secret: Option<String>,
    #[serde(default)]
    permit: OneOrMany,
    #[serde(default)]
    deny: OneOrMany,
    #[serde(default)]
    read: OneOrMany,
    #[serde(default)]
    write: OneOrMany,
    #[serde(default = "default_writetimeout")]
    writetimeout: u64,
    displayconnects: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    general: GeneralFile,
    #[serde(flatten)]
    users: BTreeMap<String, UserFile>,
}

/// `[general]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct General {
    /// Whether AMI listens at all (Asterisk's default: no).
    pub enabled: bool,
    /// Where it listens (`bindaddr`:`port`; port 0 lets the system choose).
    pub bind: SocketAddr,
    /// Seconds a connection has to log in (`authtimeout`, 30).
    pub authtimeout: Duration,
    /// Connections not logged in at once (`authlimit`, 50): more are
    /// closed at once, so a flood of idle sockets cannot starve the users.
    pub authlimit: usize,
    /// Whether logins and logoffs are logged (verbose 2).
    pub displayconnects: bool,
    /// Whether events carry `Timestamp:`.
    pub timestampevents: bool,
}

/// One manager user.
#[derive(Debug, Clone)]
pub struct User {
    /// Its name (the table's).
    pub name: String,
    /// Its secret; a user without one cannot log in.
    pub secret: Option<String>,
    /// Addresses it may log in from.
    pub acl: Acl,
    /// Event classes it may receive.
    pub read: Perms,
    /// Action classes it may run.
    pub write: Perms,
    /// How long a write to its connection may block before the session
    /// is dropped (ms; Asterisk's 100).
    pub writetimeout: Duration,
    /// Overrides `[general] displayconnects`.
    pub displayconnects: Option<bool>,
}

/// The whole file.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[general]`.
    pub general: General,
    /// Users by name.
    pub users: BTreeMap<String, User>,
}

impl Settings {
    /// Reads manager.toml; a missing file means AMI is off.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: shown,
                    source,
                })
            }
        };
        Settings::parse(&text, &shown)
    }

    /// Parses the file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Settings, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.message().to_string(),
        })?;
        let g = file.general;
        let ip: IpAddr = g
            .bindaddr
            .trim()
            .parse()
            .map_err(|_| ConfigError::Invalid {
                path: path.into(),
                what: format!("bindaddr '{}' is not an IP address", g.bindaddr),
            })?;
        let general = General {
            enabled: g.enabled,
            bind: SocketAddr::new(ip, g.port),
            authtimeout: Duration::from_secs(g.authtimeout.max(1)),
            authlimit: g.authlimit.max(1),
            displayconnects: g.displayconnects,
            timestampevents: g.timestampevents,
        };
        let mut users = BTreeMap::new();
        for (name, u) in file.users {
            let acl = Acl::parse(&u.permit.items(), &u.deny.items()).map_err(|e| {
                ConfigError::Invalid {
                    path: path.into(),
                    what: format!("user '{name}': {e}"),
                }
            })?;
            let list = |l: &OneOrMany| {
                let items = l.items();
                Perms::parse_list(items.iter().map(String::as_str))
            };
            users.insert(
                name.clone(),
                User {
                    name,
                    secret: u.secret,
                    acl,
                    read: list(&u.read),
                    write: list(&u.write),
                    writetimeout: Duration::from_millis(u.writetimeout.max(1)),
                    displayconnects: u.displayconnects,
                },
            );
        }
        Ok(Settings { general, users })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_manager_conf_keys() {
        let s = Settings::parse(
            r#"
[general]
enabled = true
port = 0
bindaddr = "127.0.0.1"
authtimeout = 5

[admin]
secret = "s3cret"
deny = "0.0.0.0/0.0.0.0"
permit = ["127.0.0.1/255.255.255.0"]
read = "system,call,log"
write = ["system", "call", "originate", "command"]
"#,
            "manager.toml",
        )
        .unwrap();
        assert!(s.general.enabled);
        assert_eq!(s.general.bind, "127.0.0.1:0".parse().unwrap());
        assert_eq!(s.general.authlimit, 50);
        let u = &s.users["admin"];
        assert_eq!(u.secret.as_deref(), Some("s3cret"));
        assert!(u.acl.allows("127.0.0.1".parse().unwrap()));
        assert!(!u.acl.allows("10.1.1.1".parse().unwrap()));
        assert_eq!(u.read.user_list(), "system,call,log");
        assert!(u.write.intersects(Perms::ORIGINATE));
        assert!(!u.write.intersects(Perms::REPORTING));
        assert!(Settings::parse("[admin]\nsecrett = 1\n", "m").is_err());
        assert!(Settings::parse("[general]\nbindaddr = \"x\"\n", "m").is_err());
        assert!(!Settings::parse("", "m").unwrap().general.enabled);
    }

    #[test]
    fn the_shipped_files_read() {
        let sample = Settings::parse(include_str!("../../../etc/manager.toml"), "etc").unwrap();
        assert!(sample.general.enabled);
        assert_eq!(sample.general.bind, "127.0.0.1:5038".parse().unwrap());
        let admin = &sample.users["admin"];
        assert!(admin.acl.allows("127.0.0.1".parse().unwrap()));
        assert!(!admin.acl.allows("192.0.2.1".parse().unwrap()));
        assert!(admin.write.intersects(Perms::ORIGINATE));
        let packaged =
            Settings::parse(include_str!("../../../packaging/manager.toml"), "packaging").unwrap();
        assert!(!packaged.general.enabled && packaged.users.is_empty());
    }
}
