//! `http.toml` (Asterisk's http.conf: the built-in HTTP server) and
//! `prometheus.toml` (res_prometheus's prometheus.conf: what it serves),
//! key by key as Asterisk names them. Both `[general]`. Without http.toml
//! the server is off, as Asterisk's is.

use serde::Deserialize;
use sirius_conf::ConfigError;
use std::net::IpAddr;
use std::path::Path;

/// `http.toml`'s `[general]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Serve at all.
    pub enabled: bool,
    /// Address to listen on (loopback by default: metrics are not for the world).
    pub bindaddr: IpAddr,
    /// Port (Asterisk's 8088); 0 picks a free one (logged).
    pub bindport: u16,
    /// Connections open at once; more are closed at accept.
    pub sessionlimit: usize,
    /// Milliseconds a connection may take to send its request.
    pub session_inactivity: u64,
    /// The `Server` header.
    pub servername: String,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            enabled: false,
            bindaddr: IpAddr::from([127, 0, 0, 1]),
            bindport: 8088,
            sessionlimit: 100,
            session_inactivity: 30_000,
            servername: format!("Sirius/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// `prometheus.toml`'s `[general]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prometheus {
    /// Serve metrics at all.
    pub enabled: bool,
    /// Include the core's metrics (channels, calls, bridges, uptime); the
    /// plugins' are always included.
    pub core_metrics_enabled: bool,
    /// The path, without its leading slash (`metrics`).
    pub uri: String,
    /// Basic authentication: both set, or neither.
    pub auth_username: Option<String>,
    /// See `auth_username`.
    pub auth_password: Option<String>,
    /// The realm the 401 names.
    pub auth_realm: String,
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus {
            enabled: true,
            core_metrics_enabled: true,
            uri: "metrics".into(),
            auth_username: None,
            auth_password: None,
            auth_realm: "Asterisk Prometheus Metrics".into(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File<T: Default> {
    #[serde(default)]
    general: T,
}

/// Both files; a missing file is its defaults.
pub fn load(dir: &Path) -> Result<(Http, Prometheus), ConfigError> {
    fn one<T: Default + for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
        if !path.exists() {
            return Ok(T::default());
        }
        Ok(sirius_conf::load_toml::<File<T>>(path)?.general)
    }
    let http: Http = one(&dir.join("http.toml"))?;
    let prom: Prometheus = one(&dir.join("prometheus.toml"))?;
    if prom.auth_username.is_some() != prom.auth_password.is_some() {
        return Err(ConfigError::Parse {
            path: dir.join("prometheus.toml"),
            line: 1,
            reason: "auth_username and auth_password go together".into(),
        });
    }
    Ok((http, prom))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let (h, p) = load(d).unwrap();
        assert!(!h.enabled);
        assert_eq!((h.bindport, p.uri.as_str()), (8088, "metrics"));
        std::fs::write(
            d.join("http.toml"),
            "[general]\nenabled = true\nbindport = 0\n",
        )
        .unwrap();
        std::fs::write(d.join("prometheus.toml"), "[general]\nuri = \"stats\"\n").unwrap();
        let (h, p) = load(d).unwrap();
        assert!(h.enabled && h.bindport == 0 && p.uri == "stats");
        std::fs::write(d.join("http.toml"), "[general]\nenable = true\n").unwrap();
        let e = load(d).unwrap_err().to_string();
        assert!(e.contains("http.toml:2: unknown field `enable`"), "{e}");
        std::fs::write(d.join("http.toml"), "").unwrap();
        std::fs::write(
            d.join("prometheus.toml"),
            "[general]\nauth_username = \"a\"\n",
        )
        .unwrap();
        assert!(load(d).unwrap_err().to_string().contains("go together"));
    }
}
