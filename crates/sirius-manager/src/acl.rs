//! A manager user's `permit`/`deny` lists (Asterisk's `ast_apply_acl`, in
//! the form sip.toml uses): an address is refused when a `deny` entry
//! matches and no `permit` entry does, so `deny = ["0.0.0.0/0"]` with a
//! few `permit`s reads as manager.conf does. chan_sip has the same rule
//! but lives in a plugin (its own copy of everything), so it cannot be
//! shared; it is a dozen lines.

use ipnet::IpNet;
use std::net::IpAddr;

/// One user's address rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    permit: Vec<IpNet>,
    deny: Vec<IpNet>,
}

/// `10.0.0.0/8`, `10.0.0.0/255.0.0.0` (manager.conf's form) or one address.
fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n);
    }
    if let Some((a, m)) = s.split_once('/') {
        let addr: IpAddr = a.parse().map_err(|_| format!("bad address '{s}'"))?;
        let mask: IpAddr = m.parse().map_err(|_| format!("bad mask '{s}'"))?;
        let prefix = ipnet::ip_mask_to_prefix(mask).map_err(|_| format!("bad mask '{s}'"))?;
        return IpNet::new(addr, prefix).map_err(|_| format!("bad network '{s}'"));
    }
    let addr: IpAddr = s.parse().map_err(|_| format!("bad address '{s}'"))?;
    Ok(IpNet::from(addr))
}

impl Acl {
    /// Parses the two lists.
    pub fn parse(permit: &[String], deny: &[String]) -> Result<Acl, String> {
        let list = |l: &[String]| {
            l.iter()
                .map(|s| parse_net(s))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Acl {
            permit: list(permit)?,
            deny: list(deny)?,
        })
    }

    /// Whether any rule is set.
    pub fn is_set(&self) -> bool {
        !self.permit.is_empty() || !self.deny.is_empty()
    }

    /// Whether `ip` may log in as this user. An IPv4 client seen on an IPv6
    /// socket (`::ffff:a.b.c.d`) is judged by its IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let denied = self.deny.iter().any(|n| n.contains(&ip));
        !denied || self.permit.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_all_permit_loopback() {
        let acl = Acl::parse(&["127.0.0.1/255.255.255.0".into()], &["0.0.0.0/0".into()]).unwrap();
        assert!(acl.allows("127.0.0.1".parse().unwrap()));
        assert!(acl.allows("::ffff:127.0.0.9".parse().unwrap()));
        assert!(!acl.allows("10.0.0.1".parse().unwrap()));
        assert!(Acl::default().allows("8.8.8.8".parse().unwrap()));
        assert!(Acl::parse(&["nonsense".into()], &[]).is_err());
    }
}
