//! The core's event bus (Asterisk's manager events): `PeerStatus`, `Registry`,
//! `Newchannel`, `Hangup`… Subscribers (the console, later AMI) each get a copy.

use tokio::sync::broadcast;

/// One event: a name and ordered key/value fields, as AMI renders them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event name (`PeerStatus`).
    pub name: String,
    /// Fields in order (`Peer: SIP/bob`, `PeerStatus: Reachable`).
    pub fields: Vec<(String, String)>,
}

impl Event {
    /// The value of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// A broadcast bus; slow subscribers lose the oldest events rather than block the core.
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl EventBus {
    /// Publishes an event to current subscribers.
    pub fn publish(&self, event: Event) {
        log::debug!(target: "events", "{} {:?}", event.name, event.fields);
        let _ = self.tx.send(event);
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
