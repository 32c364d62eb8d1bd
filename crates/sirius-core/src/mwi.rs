//! Message-waiting counts per mailbox (Asterisk's MWI state, which
//! app_voicemail or res_mwi_external publish and chan_sip turns into
//! message-summary NOTIFYs). Sirius has no voicemail yet: the counts are set
//! from the console (`mwi update`), as res_mwi_external's `MWIUpdate` sets
//! them, and read by whoever watches a mailbox (a SIP phone's light).
//!
//! ```text
//!   mwi update 1234@default 2 1 ──▶ counts[1234@default] = 2/1 ──▶ MessageWaiting event
//!                                          │
//!   watch(["1234@default", "1235@default"]) ◀─ the sum of its mailboxes, when it changes
//! ```
//!
//! A mailbox is `box@context`; a bare `box` is `box@default`, as in
//! Asterisk. Counts live in memory: a restart forgets them (voicemail, when
//! it exists, will own them on disk).

use crate::core::Core;
use crate::events::Event;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Told a watched set of mailboxes' new total (new, old). Runs on the
/// thread that changed the counts, under its watch's lock: quick,
/// non-blocking work only, and never a change of the counts it watches
/// (that would wait on its own lock).
pub type MwiCallback = Box<dyn FnMut(u32, u32) + Send>;

/// A mailbox name that is not `box[@context]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a mailbox (box or box@context, no spaces)")]
pub struct BadMailbox(pub String);

/// `1234` → `1234@default`; `1234@sales` as it is.
pub fn mailbox_id(s: &str) -> Result<String, BadMailbox> {
    let s = s.trim();
    let bad = || BadMailbox(s.to_string());
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == ',') {
        return Err(bad());
    }
    match s.split_once('@') {
        None => Ok(format!("{s}@default")),
        Some((b, c)) if !b.is_empty() && !c.is_empty() && !c.contains('@') => Ok(s.to_string()),
        Some(_) => Err(bad()),
    }
}

/// A comma-separated list of mailboxes (a peer's `mailbox`), each named as
/// [`mailbox_id`] names it.
pub fn mailbox_list(s: &str) -> Result<Vec<String>, BadMailbox> {
    s.split(',').map(mailbox_id).collect()
}

struct Told {
    last: (u32, u32),
    callback: MwiCallback,
}

struct Watch {
    mailboxes: Vec<String>,
    told: Arc<Mutex<Told>>,
}

#[derive(Default)]
struct Inner {
    counts: BTreeMap<String, (u32, u32)>,
    watches: HashMap<u64, Watch>,
    next: u64,
}

impl Inner {
    fn total(&self, mailboxes: &[String]) -> (u32, u32) {
        mailboxes.iter().fold((0, 0), |(n, o), m| {
            let (a, b) = self.counts.get(m).copied().unwrap_or((0, 0));
            (n.saturating_add(a), o.saturating_add(b))
        })
    }
}

/// Every mailbox's counts, and who watches which.
#[derive(Default)]
pub struct Mailboxes {
    inner: Mutex<Inner>,
}

impl Mailboxes {
    /// `mailbox`'s counts (0/0 for one never set).
    pub fn get(&self, mailbox: &str) -> (u32, u32) {
        self.inner
            .lock()
            .counts
            .get(mailbox)
            .copied()
            .unwrap_or((0, 0))
    }

    /// Every mailbox set, by name.
    pub fn list(&self) -> Vec<(String, u32, u32)> {
        let inner = self.inner.lock();
        inner
            .counts
            .iter()
            .map(|(m, &(n, o))| (m.clone(), n, o))
            .collect()
    }

    /// How many watch `mailbox`.
    pub fn watchers(&self, mailbox: &str) -> usize {
        let inner = self.inner.lock();
        inner
            .watches
            .values()
            .filter(|w| w.mailboxes.iter().any(|m| m == mailbox))
            .count()
    }

    /// Sets `mailbox`'s counts (`None`: forgets it, 0/0); whether they
    /// changed. Its watchers whose total changed are told.
    fn set(&self, mailbox: &str, counts: Option<(u32, u32)>) -> bool {
        let affected: Vec<(Vec<String>, Arc<Mutex<Told>>)> = {
            let mut inner = self.inner.lock();
            let before = inner.counts.get(mailbox).copied();
            match counts {
                Some(c) => inner.counts.insert(mailbox.to_string(), c),
                None => inner.counts.remove(mailbox),
            };
            if before == counts {
                return false;
            }
            let mut w: Vec<(u64, Vec<String>, Arc<Mutex<Told>>)> = inner
                .watches
                .iter()
                .filter(|(_, w)| w.mailboxes.iter().any(|m| m == mailbox))
                .map(|(id, w)| (*id, w.mailboxes.clone(), w.told.clone()))
                .collect();
            // In the order the watches were made: one sequence to test.
            w.sort_by_key(|(id, ..)| *id);
            w.into_iter().map(|(_, m, t)| (m, t)).collect()
        };
        for (mailboxes, told) in affected {
            // The total is worked out under the watch's own lock, so two
            // changes racing tell it in order and the last one wins.
            let mut told = told.lock();
            let total = self.inner.lock().total(&mailboxes);
            if told.last != total {
                told.last = total;
                (told.callback)(total.0, total.1);
            }
        }
        true
    }

    /// Watches `mailboxes` (named as [`mailbox_id`] names them): `callback`
    /// hears their summed counts whenever the sum changes. The watch's id
    /// and the sum now.
    pub fn watch(&self, mailboxes: Vec<String>, callback: MwiCallback) -> (u64, (u32, u32)) {
        let mut inner = self.inner.lock();
        let total = inner.total(&mailboxes);
        inner.next += 1;
        let id = inner.next;
        let told = Arc::new(Mutex::new(Told {
            last: total,
            callback,
        }));
        inner.watches.insert(id, Watch { mailboxes, told });
        (id, total)
    }

    /// Ends a watch; false when it was not there.
    pub fn unwatch(&self, id: u64) -> bool {
        self.inner.lock().watches.remove(&id).is_some()
    }
}

impl Core {
    /// Sets a mailbox's counts (`MWIUpdate`): its watchers are told, and a
    /// `MessageWaiting` event goes on the bus when they changed.
    pub fn mwi_update(&self, mailbox: &str, new: u32, old: u32) -> Result<(), BadMailbox> {
        let mailbox = mailbox_id(mailbox)?;
        if self.mwi.set(&mailbox, Some((new, old))) {
            self.mwi_event(&mailbox, new, old);
        }
        Ok(())
    }

    /// Forgets a mailbox (`MWIDelete`): as 0/0 to its watchers. False when
    /// it was not set.
    pub fn mwi_delete(&self, mailbox: &str) -> Result<bool, BadMailbox> {
        let mailbox = mailbox_id(mailbox)?;
        let known = self.mwi.set(&mailbox, None);
        if known {
            self.mwi_event(&mailbox, 0, 0);
        }
        Ok(known)
    }

    fn mwi_event(&self, mailbox: &str, new: u32, old: u32) {
        self.events.publish(Event {
            name: "MessageWaiting".into(),
            fields: vec![
                ("Mailbox".into(), mailbox.to_string()),
                ("Waiting".into(), u32::from(new > 0).to_string()),
                ("New".into(), new.to_string()),
                ("Old".into(), old.to_string()),
            ],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_are_named_as_asterisk_names_them() {
        assert_eq!(mailbox_id("1234").unwrap(), "1234@default");
        assert_eq!(mailbox_id(" 1234@sales ").unwrap(), "1234@sales");
        for bad in ["", "a b", "@x", "x@", "a@b@c", "a,b"] {
            assert!(mailbox_id(bad).is_err(), "{bad}");
        }
        assert_eq!(
            mailbox_list("1234,1235@sales").unwrap(),
            vec!["1234@default".to_string(), "1235@sales".to_string()]
        );
    }

    #[test]
    fn a_watch_hears_the_sum_of_its_mailboxes_when_it_changes() {
        let m = Mailboxes::default();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        let boxes = mailbox_list("1234,1235").unwrap();
        let (id, now) = m.watch(boxes, Box::new(move |n, o| h.lock().push((n, o))));
        assert_eq!(now, (0, 0));
        assert!(m.set("1234@default", Some((2, 1))));
        assert!(m.set("1235@default", Some((1, 0))));
        assert!(!m.set("1235@default", Some((1, 0))), "no change");
        assert!(m.set("9999@default", Some((5, 5))), "not watched");
        // 1234's new messages heard (2/1 → 0/3), then 1235 forgotten.
        assert!(m.set("1234@default", Some((0, 3))));
        assert!(m.set("1235@default", None));
        assert_eq!(*heard.lock(), vec![(2, 1), (3, 1), (1, 3), (0, 3)]);
        assert_eq!(m.watchers("1234@default"), 1);
        assert!(m.unwatch(id));
        assert!(!m.unwatch(id));
        m.set("1234@default", Some((7, 0)));
        assert_eq!(heard.lock().len(), 4);
        assert_eq!(m.get("1234@default"), (7, 0));
        assert_eq!(m.list().len(), 2);
    }
}
