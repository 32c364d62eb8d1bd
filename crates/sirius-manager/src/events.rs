//! The core's events as AMI writes them: `Event:`, `Privilege:` (the
//! event's class, then `all`), the fields in order. Each event is written
//! once per event, not once per session, and handed to the sessions that
//! read its class.

use crate::message::Reply;
use crate::perms::Perms;
use sirius_core::events::Event;

/// The class an event belongs to (Asterisk's `EVENT_FLAG_*` for it).
pub fn class_of(name: &str) -> Perms {
    match name {
        "PeerStatus" | "Registry" | "FullyBooted" | "Reload" | "Shutdown" => Perms::SYSTEM,
        "UserEvent" => Perms::USER,
        _ => Perms::CALL,
    }
}

/// The event's text.
pub fn render(e: &Event, timestamp: bool) -> String {
    let mut r = Reply::event(&e.name);
    r.kv("Privilege", &class_of(&e.name).privilege());
    if timestamp {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        r.kv(
            "Timestamp",
            &format!("{}.{:06}", now.as_secs(), now.subsec_micros()),
        );
    }
    // Asterisk's PeerStatus starts with the channel type; chan_sip's
    // event names the peer as `SIP/bob` only: the type is taken from it.
    if e.name == "PeerStatus" && e.get("ChannelType").is_none() {
        if let Some((tech, _)) = e.get("Peer").and_then(|p| p.split_once('/')) {
            r.kv("ChannelType", tech);
        }
    }
    r.fields(&e.fields);
    r.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_class() {
        let mut e = Event::new("PeerStatus");
        e.push("Peer", "SIP/bob").push("PeerStatus", "Reachable");
        assert_eq!(
            render(&e, false),
            "Event: PeerStatus\r\nPrivilege: system,all\r\nChannelType: SIP\r\nPeer: SIP/bob\r\nPeerStatus: Reachable\r\n\r\n"
        );
    }
}
