//! The core's event bus (Asterisk's manager events): `PeerStatus`, `Registry`,
//! `Newchannel`, `Newstate`, `Hangup`, `DialBegin`/`DialEnd`,
//! `BridgeEnter`/`BridgeLeave`… Subscribers (AMI, tests) each get a copy.
//!
//! Publishing is on the call path (every channel's birth, state change and
//! end, at thousands of calls a second), so whoever builds an event first
//! asks [`EventBus::wanted`]: with no subscriber an event costs one check,
//! not a dozen strings built and dropped.

use crate::channels::Channel;
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
    /// An event without fields yet, room for a channel's block.
    pub fn new(name: &str) -> Event {
        Event {
            name: name.to_string(),
            fields: Vec::with_capacity(16),
        }
    }

    /// The value of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Appends a field.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Event {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// Appends a channel's fields as Asterisk 12+ writes them in every
    /// channel event (`ast_manager_build_channel_state_string_prefix`):
    /// `Channel`, `ChannelState`, `ChannelStateDesc`, `CallerIDNum`,
    /// `CallerIDName`, `ConnectedLineNum`, `ConnectedLineName`, `Language`,
    /// `AccountCode`, `Context`, `Exten`, `Priority`, `Uniqueid`, `Linkedid`,
    /// each name after `prefix` (`Dest` for a Dial's callee). Dashboards key
    /// on these names, so they are Asterisk's exactly; what Sirius does not
    /// track (connected line, language) reads as Asterisk prints it unset.
    pub fn channel(&mut self, prefix: &str, c: &Channel, linkedid: &str) -> &mut Event {
        let or_unknown = |s: &str| {
            if s.is_empty() {
                "<unknown>".to_string()
            } else {
                s.to_string()
            }
        };
        let f = &mut self.fields;
        f.push((format!("{prefix}Channel"), c.name.clone()));
        f.push((format!("{prefix}ChannelState"), (c.state as u8).to_string()));
        f.push((format!("{prefix}ChannelStateDesc"), c.state.as_str().into()));
        f.push((format!("{prefix}CallerIDNum"), or_unknown(&c.caller_num)));
        f.push((format!("{prefix}CallerIDName"), or_unknown(&c.caller_name)));
        f.push((format!("{prefix}ConnectedLineNum"), "<unknown>".into()));
        f.push((format!("{prefix}ConnectedLineName"), "<unknown>".into()));
        f.push((format!("{prefix}Language"), "en".into()));
        f.push((format!("{prefix}AccountCode"), c.accountcode.clone()));
        f.push((format!("{prefix}Context"), c.context.clone()));
        f.push((format!("{prefix}Exten"), c.exten.clone()));
        f.push((format!("{prefix}Priority"), c.priority.max(1).to_string()));
        f.push((format!("{prefix}Uniqueid"), c.uniqueid.clone()));
        f.push((format!("{prefix}Linkedid"), linkedid.to_string()));
        self
    }
}

/// A broadcast bus; slow subscribers lose the oldest events rather than block the core.
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    /// Live subscriptions, counted apart from the channel's own count
    /// (which sits behind its lock): [`EventBus::wanted`] is asked on every
    /// step of every call, from many threads, and reads only this.
    listeners: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(1024).0,
            listeners: Default::default(),
        }
    }
}

/// A subscription: a [`broadcast::Receiver`] (through `Deref`) that
/// counts itself among the bus's listeners until dropped.
pub struct Subscription {
    rx: broadcast::Receiver<Event>,
    listeners: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl std::ops::Deref for Subscription {
    type Target = broadcast::Receiver<Event>;
    fn deref(&self) -> &Self::Target {
        &self.rx
    }
}

impl std::ops::DerefMut for Subscription {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.rx
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.listeners
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.tx.receiver_count())
            .finish()
    }
}

impl EventBus {
    /// Publishes an event to current subscribers.
    pub fn publish(&self, event: Event) {
        log::debug!(target: "events", "{} {:?}", event.name, event.fields);
        let _ = self.tx.send(event);
    }

    /// Whether anybody listens: callers on the call path build an event
    /// only then (see the module's doc).
    pub fn wanted(&self) -> bool {
        self.listeners.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    /// Builds and publishes an event only when somebody listens.
    pub fn publish_with(&self, build: impl FnOnce() -> Event) {
        if self.wanted() {
            self.publish(build());
        }
    }

    /// A new subscription.
    pub fn subscribe(&self) -> Subscription {
        self.listeners
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Subscription {
            rx: self.tx.subscribe(),
            listeners: self.listeners.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_built_without_a_subscriber() {
        let bus = EventBus::default();
        let mut built = false;
        bus.publish_with(|| {
            built = true;
            Event::new("Newstate")
        });
        assert!(!built && !bus.wanted());
        let mut rx = bus.subscribe();
        bus.publish_with(|| Event::new("Newstate"));
        assert_eq!(rx.try_recv().unwrap().name, "Newstate");
        drop(rx);
        assert!(!bus.wanted(), "a dropped subscription stops counting");
    }
}
