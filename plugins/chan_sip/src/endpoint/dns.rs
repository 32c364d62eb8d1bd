//! Host names the endpoint meets in messages — a 3xx's Contact, a route
//! set's first hop — looked up without blocking it: a name not yet known
//! becomes an [`Output::Resolve`](super::Output::Resolve) the driver
//! answers from a blocking thread with [`Input::Resolved`](super::Input),
//! and the answer is kept (60 s, a failure 10 s). Until then a redirect
//! waits, and an in-dialog request goes to the leg's known address (the
//! previous hop, which is nearly always the route set's first one).
//!
//! ```text
//!   lookup(name) ──miss──▶ Pending ──(Output::Resolve)──▶ driver lookup
//!        ▲                     │                              │
//!        └──── Found / Failed ◀┴──── resolved(name, result) ◀──┘
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long an address is used before it is looked up again.
const TTL: Duration = Duration::from_secs(60);
/// How long a failed lookup is remembered.
const NEGATIVE_TTL: Duration = Duration::from_secs(10);
/// Names kept at most; past it, expired ones go first.
const MAX_NAMES: usize = 1024;

/// What a lookup knows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The address.
    Found(SocketAddr),
    /// The name does not resolve.
    Failed(String),
    /// Asked; the answer is not in yet. `ask` is true the first time: the
    /// caller emits the request.
    Pending { ask: bool },
}

enum Entry {
    Asked,
    Known(Result<SocketAddr, String>, Instant),
}

/// The endpoint's cache of names.
#[derive(Default)]
pub(crate) struct Dns {
    entries: HashMap<(String, u16), Entry>,
}

impl Dns {
    /// The address of `host:port` as of `now`.
    pub fn lookup(&mut self, host: &str, port: u16, now: Instant) -> Lookup {
        let key = (host.to_ascii_lowercase(), port);
        match self.entries.get(&key) {
            Some(Entry::Asked) => Lookup::Pending { ask: false },
            Some(Entry::Known(r, at)) => {
                let ttl = if r.is_ok() { TTL } else { NEGATIVE_TTL };
                if now.saturating_duration_since(*at) < ttl {
                    return match r {
                        Ok(a) => Lookup::Found(*a),
                        Err(e) => Lookup::Failed(e.clone()),
                    };
                }
                self.entries.insert(key, Entry::Asked);
                Lookup::Pending { ask: true }
            }
            None => {
                if self.entries.len() >= MAX_NAMES {
                    self.entries.retain(|_, e| match e {
                        Entry::Asked => true,
                        Entry::Known(_, at) => now.saturating_duration_since(*at) < TTL,
                    });
                }
                self.entries.insert(key, Entry::Asked);
                Lookup::Pending { ask: true }
            }
        }
    }

    /// The driver's answer for `host:port`.
    pub fn resolved(
        &mut self,
        host: &str,
        port: u16,
        result: Result<SocketAddr, String>,
        now: Instant,
    ) {
        self.entries
            .insert((host.to_ascii_lowercase(), port), Entry::Known(result, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_asked_once_then_known_until_it_expires() {
        let t0 = Instant::now();
        let mut dns = Dns::default();
        assert_eq!(
            dns.lookup("PBX.example", 5060, t0),
            Lookup::Pending { ask: true }
        );
        assert_eq!(
            dns.lookup("pbx.example", 5060, t0),
            Lookup::Pending { ask: false }
        );
        let addr: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        dns.resolved("pbx.example", 5060, Ok(addr), t0);
        assert_eq!(
            dns.lookup("pbx.example", 5060, t0 + TTL / 2),
            Lookup::Found(addr)
        );
        assert_eq!(
            dns.lookup("pbx.example", 5060, t0 + TTL),
            Lookup::Pending { ask: true },
            "expired: asked again"
        );
        assert_eq!(
            dns.lookup("pbx.example", 5070, t0),
            Lookup::Pending { ask: true }
        );
        dns.resolved("nowhere.example", 5060, Err("no".into()), t0);
        assert_eq!(
            dns.lookup("nowhere.example", 5060, t0 + NEGATIVE_TTL / 2),
            Lookup::Failed("no".into())
        );
    }
}
