//! `permit`/`deny` address lists (Asterisk's ACL): an address is refused when a
//! `deny` entry matches and no `permit` entry does — so `deny = ["0.0.0.0/0"]`
//! with a few `permit`s reads as it does in sip.conf.

use ipnet::IpNet;
use std::net::IpAddr;

/// A peer's address rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    permit: Vec<IpNet>,
    deny: Vec<IpNet>,
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n);
    }
    // Asterisk also writes masks: 192.168.0.0/255.255.255.0, or a bare address.
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
        Ok(Acl {
            permit: permit
                .iter()
                .map(|s| parse_net(s))
                .collect::<Result<_, _>>()?,
            deny: deny
                .iter()
                .map(|s| parse_net(s))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Whether any rule is set (`A` in `sip show peers`).
    pub fn is_set(&self) -> bool {
        !self.permit.is_empty() || !self.deny.is_empty()
    }

    /// Whether `ip` may talk to us as this peer.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let denied = self.deny.iter().any(|n| n.contains(&ip));
        !denied || self.permit.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_all_permit_some() {
        let acl = Acl::parse(
            &["127.0.0.0/8".into(), "10.1.2.3".into()],
            &["0.0.0.0/0".into()],
        )
        .unwrap();
        assert!(acl.allows("127.0.0.1".parse().unwrap()));
        assert!(acl.allows("10.1.2.3".parse().unwrap()));
        assert!(!acl.allows("10.1.2.4".parse().unwrap()));
        let masked = Acl::parse(&[], &["192.168.0.0/255.255.0.0".into()]).unwrap();
        assert!(!masked.allows("192.168.7.7".parse().unwrap()));
        assert!(Acl::default().allows("8.8.8.8".parse().unwrap()));
        assert!(Acl::parse(&["nonsense".into()], &[]).is_err());
    }
}
