//! `[[register]]` lines: where the REGISTER goes and the AOR it names.

use super::{default_sip_port, resolve_host, RegisterConfig};
use std::net::SocketAddr;

impl RegisterConfig {
    /// The AOR's user in From/To.
    pub fn aor_user(&self) -> &str {
        self.fromuser.as_deref().unwrap_or(&self.user)
    }

    /// The AOR's domain: From/To host and Request-URI.
    pub fn aor_domain(&self) -> &str {
        self.fromdomain.as_deref().unwrap_or(&self.host)
    }

    /// Where the REGISTER goes: `outboundproxy` if set, else `host`/`port`,
    /// a name looked up now.
    pub fn destination(&self) -> Result<SocketAddr, String> {
        match &self.outboundproxy {
            Some(proxy) => {
                let (host, port) = split_host_port(proxy)
                    .ok_or_else(|| format!("outboundproxy '{proxy}' is not host[:port]"))?;
                resolve_host(host, port)
            }
            None => resolve_host(&self.host, self.port),
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` (port 5060 when absent);
/// `None` for an empty host or a bad port.
fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else if text.matches(':').count() == 1 {
        let (h, p) = text.split_once(':')?;
        (h, Some(p))
    } else {
        (text, None)
    };
    let port = match port {
        Some(p) => p.parse().ok().filter(|p| *p != 0)?,
        None => default_sip_port(),
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(extra: &str) -> RegisterConfig {
        let text = format!(
            "[[register]]\nuser = \"msisdn\"\nsecret = \"pw\"\nhost = \"195.76.180.160\"\n{extra}"
        );
        let cfg: super::super::SipConfig =
            sirius_conf::parse_toml(std::path::Path::new("sip.toml"), &text).unwrap();
        cfg.register.into_iter().next().unwrap()
    }

    #[test]
    fn the_aor_names_fromuser_and_fromdomain_while_the_request_goes_to_host() {
        let plain = line("port = 5070\n");
        assert_eq!(
            (plain.aor_user(), plain.aor_domain()),
            ("msisdn", "195.76.180.160")
        );
        assert_eq!(
            plain.destination(),
            Ok("195.76.180.160:5070".parse().unwrap())
        );
        let named = line("fromuser = \"34600000000\"\nfromdomain = \"movistar.es\"\n");
        assert_eq!(
            (named.aor_user(), named.aor_domain()),
            ("34600000000", "movistar.es")
        );
        assert_eq!(
            named.destination(),
            Ok("195.76.180.160:5060".parse().unwrap())
        );
    }

    #[test]
    fn outboundproxy_takes_the_request_and_host_is_not_looked_up() {
        let proxied = line("outboundproxy = \"127.0.0.1:5080\"\n");
        assert_eq!(proxied.destination(), Ok("127.0.0.1:5080".parse().unwrap()));
        let mut by_name = line("outboundproxy = \"[::1]\"\n");
        by_name.host = "registrar.invalid".into();
        assert_eq!(by_name.destination(), Ok("[::1]:5060".parse().unwrap()));
        assert_eq!(by_name.aor_domain(), "registrar.invalid");
        for bad in ["", ":5060", "127.0.0.1:0", "127.0.0.1:x", "[::1]5060"] {
            let mut l = line("");
            l.outboundproxy = Some(bad.into());
            assert!(
                l.destination().unwrap_err().contains("is not host[:port]"),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_unknown_key_on_a_register_line_is_refused() {
        let text =
            "[[register]]\nuser = \"u\"\nsecret = \"s\"\nhost = \"h\"\nfrom-domain = \"d\"\n";
        let err = sirius_conf::parse_toml::<super::super::SipConfig>(
            std::path::Path::new("sip.toml"),
            text,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("from-domain"), "{err}");
    }
}
