//! Shared Call Appearance (seed 003; BroadWorks' call-info, as Kamailio's
//! `sca` and OpenSIPS' `b2b_sca` serve it: docs/plans/sca-reference.md): a
//! shared line is a peer with `shared-appearances = N` whose phones all
//! register as the line (`max-contacts`); each call on the line holds one of
//! its N appearances, and every phone subscribed to `Event: call-info` is
//! told each appearance's state in a `Call-Info` header.
//!
//! ```text
//!                                     a member PUBLISHes a trying dialog
//!                                     (RFC 7463): idle ──▶ seized ──┐ its INVITE
//!            inbound call to the line (Dial)      a member's own call   ▼ (same Call-ID)
//!   idle ──────────────▶ alerting            idle ──────────────▶ progressing
//!                          │ a phone answers            │ answered
//!                          ▼                            ▼
//!                        active ◀──── unhold ─── held  active
//!                          │ ── hold (its phone) ──▶ ▲
//!                          │                         │ another member's INVITE
//!                          │                         │ with Call-Info index N:
//!                          ▼                         │ takes the call over (active)
//!   the call ends ───────▶ idle (the appearance is free again)
//! ```
//!
//! One owner for the line state: [`Lines`], in the module's shared state (a
//! line's calls may be on any shard); a change is told to every shard, whose
//! call-info subscriptions of that line send the new `Call-Info`.

use parking_lot::Mutex;
use sirius_abi::ChannelId;
use sirius_sip::shared_appearance::{DialogIds, Direction, SharedDialog};
use std::collections::{BTreeMap, HashMap};

mod hooks;
pub(crate) mod publish;
pub(crate) use hooks::{uri_host, Pickup};
pub use publish::Publications;

/// The most appearances a line may have.
pub const MAX_APPEARANCES: u32 = 32;

/// An appearance's state, as `appearance-state` names it (idle is an
/// appearance no call holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApState {
    /// A member announced the call it is about to make (RFC 7463's
    /// seizure: a PUBLISHed `trying` dialog); no leg yet.
    Seized,
    /// A member's own call is being set up.
    Progressing,
    /// A call to the line rings its phones.
    Alerting,
    /// A member is on the call.
    Active,
    /// The member holding it put it on hold: another member may take it.
    Held,
    /// On hold, and private: its phone said so (a PUBLISH); no other member
    /// may take it.
    HeldPrivate,
}

impl ApState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApState::Seized => "seized",
            ApState::Progressing => "progressing",
            ApState::Alerting => "alerting",
            ApState::Active => "active",
            ApState::Held => "held",
            ApState::HeldPrivate => "held-private",
        }
    }
}

/// One appearance in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appearance {
    /// Its state.
    pub state: ApState,
    /// The other party, as `appearance-uri` shows it (a name-addr).
    pub uri: Option<String>,
    /// The member-side leg of the call holding it (the one answering for
    /// the line).
    pub chan: ChannelId,
    /// The shard that leg lives on.
    pub shard: usize,
    /// That leg's channel name (`sip show sharedlines`).
    pub name: String,
    /// Another member is taking this held call over: its leg (channel,
    /// name, shard). The old leg's end, which the takeover causes and
    /// which may come on another shard before the takeover is recorded,
    /// hands the appearance to it instead of freeing it.
    pub taking: Option<(ChannelId, String, usize)>,
    /// The member called out (`initiator` in RFC 7463's dialog-info);
    /// else the call came to the line.
    pub outgoing: bool,
    /// The member phone's dialog, as the phone sees it (local tag the
    /// phone's), once answered: what another member's Replaces names.
    pub dialog: Option<DialogIds>,
    /// Seized ahead of its INVITE: that call's Call-ID, and until when
    /// (Unix seconds) the seizure holds without it. The leg is [`NO_LEG`].
    pub seized: Option<(String, u64)>,
    /// Its phone said no other may take or join it (RFC 7463's
    /// `sa:exclusive`, in a PUBLISH), whether held or not.
    pub exclusive: bool,
}

impl Appearance {
    /// The state watchers are told: a held call its phone keeps exclusive
    /// is held privately.
    pub fn shown_state(&self) -> ApState {
        match self.state {
            ApState::Held if self.exclusive => ApState::HeldPrivate,
            s => s,
        }
    }

    /// Whether another phone may take it: not private, not exclusive.
    pub fn takeable(&self) -> bool {
        !self.exclusive && self.state != ApState::HeldPrivate
    }
}

/// The leg of a seized appearance, whose INVITE has not come: no channel
/// (the core numbers its channels from 1).
pub const NO_LEG: ChannelId = ChannelId(0);

/// How long a seizure holds an appearance for an INVITE that does not come
/// (BroadWorks' line-seize is granted 15 s; a PUBLISH asks for longer).
pub const SEIZE_FOR: u64 = 30;

/// No appearance of the line is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("every appearance of the line is in use")]
pub struct LineFull;

/// Every shared line's appearances in use, by line and index.
#[derive(Debug, Default)]
pub struct Lines {
    inner: Mutex<HashMap<String, BTreeMap<u32, Appearance>>>,
}

impl Lines {
    /// Takes an appearance of `line` (of `max`) for `chan`: `wanted` when
    /// it is free and within the line, else the lowest free one.
    pub fn seize(
        &self,
        line: &str,
        max: u32,
        wanted: Option<u32>,
        ap: Appearance,
    ) -> Result<u32, LineFull> {
        let mut inner = self.inner.lock();
        let apps = inner.entry(line.to_string()).or_default();
        let free = |i: &u32| !apps.contains_key(i);
        let index = wanted
            .filter(|i| (1..=max).contains(i) && free(i))
            .or_else(|| (1..=max).find(free))
            .ok_or(LineFull)?;
        apps.insert(index, ap);
        Ok(index)
    }

    /// The INVITE of a call seized ahead (its Call-ID `call_id`) came:
    /// the seized appearance of `line` is `ap`'s now; its index.
    pub fn claim_seized(&self, line: &str, call_id: &str, ap: Appearance) -> Option<u32> {
        let mut inner = self.inner.lock();
        let (i, a) = inner.get_mut(line)?.iter_mut().find(|(_, a)| {
            a.chan == NO_LEG && a.seized.as_ref().is_some_and(|(c, _)| c == call_id)
        })?;
        *a = ap;
        Some(*i)
    }

    /// A seizure of `line`'s appearance `index` by call `call_id` ends
    /// (its dialog terminated before an INVITE); whether there was one.
    pub fn unseize(&self, line: &str, index: u32, call_id: &str) -> bool {
        let mut inner = self.inner.lock();
        let Some(apps) = inner.get_mut(line) else {
            return false;
        };
        let mine = apps.get(&index).is_some_and(|a| {
            a.chan == NO_LEG && a.seized.as_ref().is_some_and(|(c, _)| c == call_id)
        });
        if mine {
            apps.remove(&index);
            if apps.is_empty() {
                inner.remove(line);
            }
        }
        mine
    }

    /// Seizures whose INVITE never came by `now` (Unix seconds) end; the
    /// lines that changed.
    pub fn expire_seizures(&self, now: u64) -> Vec<String> {
        let mut inner = self.inner.lock();
        let mut changed = Vec::new();
        for (line, apps) in inner.iter_mut() {
            let before = apps.len();
            apps.retain(|_, a| {
                !(a.chan == NO_LEG && a.seized.as_ref().is_some_and(|(_, t)| *t <= now))
            });
            if apps.len() != before {
                changed.push(line.clone());
            }
        }
        inner.retain(|_, apps| !apps.is_empty());
        changed
    }

    /// The index `chan` holds on `line`.
    pub fn index_of(&self, line: &str, chan: ChannelId) -> Option<u32> {
        let inner = self.inner.lock();
        inner
            .get(line)?
            .iter()
            .find(|(_, a)| a.chan == chan)
            .map(|(i, _)| *i)
    }

    /// Appearance `index` of `line`.
    pub fn get(&self, line: &str, index: u32) -> Option<Appearance> {
        self.inner.lock().get(line)?.get(&index).cloned()
    }

    /// Runs `f` on appearance `index` of `line` under the lock; `None`
    /// when it is free.
    fn with<R>(&self, line: &str, index: u32, f: impl FnOnce(&mut Appearance) -> R) -> Option<R> {
        let mut inner = self.inner.lock();
        inner
            .get_mut(line)
            .and_then(|apps| apps.get_mut(&index))
            .map(f)
    }

    /// Appearance `index` of `line`, if in use, is in `state` now; whether
    /// that changed it (what a phone PUBLISHed).
    pub fn set_state_at(&self, line: &str, index: u32, state: ApState) -> bool {
        self.with(line, index, |a| {
            // A seizure's state is its own until its INVITE comes.
            a.chan != NO_LEG && std::mem::replace(&mut a.state, state) != state
        })
        .unwrap_or(false)
    }

    /// Appearance `index` of `line` is exclusive or not now (what its
    /// phone PUBLISHed); whether that changed it.
    pub fn set_exclusive(&self, line: &str, index: u32, exclusive: bool) -> bool {
        self.with(line, index, |a| {
            a.chan != NO_LEG && std::mem::replace(&mut a.exclusive, exclusive) != exclusive
        })
        .unwrap_or(false)
    }

    /// Takes exactly appearance `index` of `line` for `ap` (a seizure), in
    /// one step under the lock; false when it is in use.
    pub fn seize_exact(&self, line: &str, index: u32, ap: Appearance) -> bool {
        let mut inner = self.inner.lock();
        let apps = inner.entry(line.to_string()).or_default();
        if apps.contains_key(&index) {
            return false;
        }
        apps.insert(index, ap);
        true
    }

    /// The line whose appearance `chan` holds (what a session's end or
    /// hold reads, not the configuration, which a reload may have changed).
    pub fn line_of(&self, chan: ChannelId) -> Option<String> {
        let inner = self.inner.lock();
        inner
            .iter()
            .find(|(_, apps)| apps.values().any(|a| a.chan == chan))
            .map(|(l, _)| l.clone())
    }

    /// `chan`'s appearance is in `state` now, its phone's dialog `dialog`
    /// when known; whether that changed it.
    pub fn set_state(
        &self,
        line: &str,
        chan: ChannelId,
        state: ApState,
        dialog: Option<DialogIds>,
    ) -> bool {
        let mut inner = self.inner.lock();
        let Some(a) = inner
            .get_mut(line)
            .and_then(|apps| apps.values_mut().find(|a| a.chan == chan))
        else {
            return false;
        };
        let moved = dialog.is_some_and(|d| a.dialog.replace(d.clone()) != Some(d));
        // A private hold stays private through the hold re-INVITE, which
        // may come after the phone's PUBLISH saying so (another shard).
        let state = match (a.state, state) {
            (ApState::HeldPrivate, ApState::Held) => ApState::HeldPrivate,
            (_, s) => s,
        };
        std::mem::replace(&mut a.state, state) != state || moved
    }

    /// `chan` (of `shard`) starts taking appearance `index`, the call of
    /// leg `from`, over (see [`Appearance::taking`]); false when it may
    /// not: another call holds it now, a call not held (`held_only`: seed
    /// 003's takeover by `Call-Info`), a private or exclusive one, or one
    /// being taken already.
    pub fn begin_takeover(
        &self,
        line: &str,
        index: u32,
        from: ChannelId,
        (chan, name): (ChannelId, &str),
        (shard, held_only): (usize, bool),
    ) -> bool {
        self.with(line, index, |a| {
            let may = match a.state {
                ApState::Held => true,
                ApState::Active => !held_only,
                _ => false,
            };
            let free = a.chan == from && may && a.takeable() && a.taking.is_none();
            if free {
                a.taking = Some((chan, name.to_string(), shard));
            }
            free
        })
        .unwrap_or(false)
    }

    /// The takeover of appearance `index` failed: it stays the held call's.
    pub fn abort_takeover(&self, line: &str, index: u32) {
        self.with(line, index, |a| a.taking = None);
    }

    /// Appearance `index` passes to `chan` (of `shard`), active, whatever
    /// its state: the core already put `chan` in the call's place. False
    /// when the appearance is free.
    pub fn reassign(
        &self,
        line: &str,
        index: u32,
        (chan, name): (ChannelId, &str),
        shard: usize,
    ) -> bool {
        self.with(line, index, |a| {
            (a.chan, a.name, a.shard) = (chan, name.to_string(), shard);
            (a.state, a.taking, a.dialog) = (ApState::Active, None, None);
            a.exclusive = false; // the new phone's to say
        })
        .is_some()
    }

    /// `chan`'s call ended: its appearance is free; whether it held one.
    pub fn release(&self, line: &str, chan: ChannelId) -> bool {
        let mut inner = self.inner.lock();
        let Some(apps) = inner.get_mut(line) else {
            return false;
        };
        let before = apps.len();
        let mut handed = false;
        for a in apps.values_mut().filter(|a| a.chan == chan) {
            // Taken over: the new leg's now, not free.
            if let Some((c, name, shard)) = a.taking.take() {
                (a.chan, a.name, a.shard, a.state) = (c, name, shard, ApState::Active);
                // The new leg's dialog when it is confirmed; its phone's
                // exclusivity when it says.
                (a.dialog, a.exclusive) = (None, false);
                handed = true;
            }
        }
        apps.retain(|_, a| a.chan != chan);
        let changed = handed || apps.len() != before;
        if apps.is_empty() {
            inner.remove(line);
        }
        changed
    }

    /// Every line's appearances in use (`sip show sharedlines`).
    pub fn snapshot(&self) -> Vec<(String, Vec<(u32, Appearance)>)> {
        let inner = self.inner.lock();
        let mut v: Vec<(String, Vec<(u32, Appearance)>)> = inner
            .iter()
            .map(|(l, apps)| {
                let list = apps.iter().map(|(i, a)| (*i, a.clone())).collect();
                (l.clone(), list)
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The `Call-Info` value a call-info NOTIFY carries for `line`
    /// (`line_uri` names it): each appearance in use by index, then every
    /// other one idle (`appearance-index=*`), as Kamailio's `sca` and the
    /// seed's presence server write it.
    pub fn call_info(&self, line: &str, line_uri: &str) -> String {
        let inner = self.inner.lock();
        let mut parts: Vec<String> = Vec::new();
        for (i, a) in inner.get(line).into_iter().flatten() {
            let mut p = format!(
                "<{line_uri}>;appearance-index={i};appearance-state={}",
                a.shown_state().as_str()
            );
            if let Some(u) = &a.uri {
                p.push_str(";appearance-uri=");
                p.push_str(&quote(u));
            }
            parts.push(p);
        }
        parts.push(format!(
            "<{line_uri}>;appearance-index=*;appearance-state=idle"
        ));
        parts.join(",")
    }
}

impl Lines {
    /// `line`'s appearances in use as RFC 7463's dialog-info shows them
    /// (`Event: dialog;shared`; see `sirius_sip::shared_appearance`).
    pub fn shared_dialogs(&self, line: &str) -> Vec<SharedDialog> {
        let inner = self.inner.lock();
        let Some(apps) = inner.get(line) else {
            return Vec::new();
        };
        apps.iter()
            .map(|(i, a)| {
                let (state, held) = match a.state {
                    ApState::Seized | ApState::Progressing => ("trying", false),
                    ApState::Alerting => ("early", false),
                    ApState::Active => ("confirmed", false),
                    ApState::Held | ApState::HeldPrivate => ("confirmed", true),
                };
                let exclusive = !a.takeable();
                SharedDialog {
                    // The leg's channel: unique, and kept while the call
                    // holds the appearance on that leg.
                    id: format!("{line}-{i}-{}", a.chan.0),
                    appearance: *i,
                    state,
                    direction: match a.outgoing {
                        true => Direction::Initiator,
                        false => Direction::Recipient,
                    },
                    ids: a.dialog.clone(),
                    held,
                    exclusive,
                    remote: a.uri.clone(),
                }
            })
            .collect()
    }
}

/// `sip show sharedlines`' rows: each line's appearances in use, or one
/// `idle` row for a line with none.
pub fn sharedlines_table(lines: &[(String, u32)], state: &Lines) -> sirius_abi::view::Table {
    let mut t =
        sirius_abi::view::Table::new(&["Line", "Index", "State", "Appearance URI", "Channel"]);
    let snapshot = state.snapshot();
    let mut used = 0usize;
    for (line, max) in lines {
        let apps = snapshot
            .iter()
            .find(|(l, _)| l == line)
            .map(|(_, a)| a.as_slice())
            .unwrap_or_default();
        used += apps.len();
        if apps.is_empty() {
            t.row(vec![
                line.clone(),
                "*".into(),
                "idle".into(),
                String::new(),
                format!("(of {max})"),
            ]);
        }
        for (i, a) in apps {
            t.row(vec![
                line.clone(),
                i.to_string(),
                a.shown_state().as_str().to_string(),
                a.uri.clone().unwrap_or_default(),
                a.name.clone(),
            ]);
        }
    }
    t.totals = vec![
        ("shared lines", lines.len().into()),
        ("appearances in use", used.into()),
    ];
    t
}

/// `sip show sharedlines`: the rows, then the lines and appearances in use.
pub fn render_sharedlines(t: &sirius_abi::view::Table) -> String {
    let row = |r: &[&str]| {
        format!(
            "{:<16.16} {:<6.6} {:<12.12} {:<36.36} {}\n",
            r[0], r[1], r[2], r[3], r[4]
        )
    };
    let mut o = row(&t.headers);
    for r in &t.rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        o += &row(&r);
    }
    let total = |k: &str| {
        t.totals
            .iter()
            .find(|(l, _)| *l == k)
            .map_or(0, |(_, v)| v.as_u64().unwrap_or(0))
    };
    let (n, used) = (total("shared lines"), total("appearances in use"));
    o += &format!(
        "{n} shared line{}, {used} appearance{} in use\n",
        if n == 1 { "" } else { "s" },
        if used == 1 { "" } else { "s" }
    );
    o
}

/// A quoted-string (RFC 3261 §25.1): `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// Each `appearance-index` a `Call-Info` value names (numbers only) with
/// the `appearance-state` given beside it, if any.
pub fn appearances_of(value: &str) -> Vec<(u32, Option<String>)> {
    value
        .split(',')
        .filter_map(|entry| {
            let mut index = None;
            let mut state = None;
            for p in entry.split(';').skip(1) {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "appearance-index" => index = v.trim().parse().ok(),
                    "appearance-state" => state = Some(v.trim().to_ascii_lowercase()),
                    _ => {}
                }
            }
            Some((index?, state))
        })
        .collect()
}

/// The `appearance-index` a request's `Call-Info` names (a number; `*` and
/// anything else are none). Parameters in any order, several entries
/// comma-separated: the first with an index counts.
pub fn appearance_index(msg: &sirius_sip::message::Message) -> Option<u32> {
    use sirius_sip::message::HeaderName;
    msg.headers
        .values(&HeaderName::CallInfo)
        .flat_map(|v| v.split(','))
        .find_map(|entry| {
            entry.split(';').skip(1).find_map(|p| {
                let (k, v) = p.split_once('=')?;
                match k.trim().eq_ignore_ascii_case("appearance-index") {
                    true => v.trim().parse().ok(),
                    false => None,
                }
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ap(chan: u64, state: ApState) -> Appearance {
        Appearance {
            state,
            uri: None,
            chan: ChannelId(chan),
            shard: 0,
            name: format!("SIP/line-{chan}"),
            taking: None,
            outgoing: false,
            dialog: None,
            seized: None,
            exclusive: false,
        }
    }

    #[test]
    fn appearances_are_taken_lowest_first_and_freed() {
        let l = Lines::default();
        assert_eq!(l.seize("line", 2, None, ap(1, ApState::Alerting)), Ok(1));
        assert_eq!(
            l.seize("line", 2, Some(1), ap(2, ApState::Progressing)),
            Ok(2)
        );
        assert_eq!(
            l.seize("line", 2, None, ap(3, ApState::Alerting)),
            Err(LineFull)
        );
        assert!(l.set_state("line", ChannelId(1), ApState::Active, None));
        assert!(!l.set_state("line", ChannelId(1), ApState::Active, None));
        assert!(l.set_state("line", ChannelId(1), ApState::Held, None));
        assert!(l.reassign("line", 1, (ChannelId(9), "SIP/line-9"), 1));
        assert!(
            !l.reassign("line", 3, (ChannelId(10), "SIP/line-10"), 1),
            "free"
        );
        assert_eq!(l.line_of(ChannelId(9)).as_deref(), Some("line"));
        assert_eq!(l.index_of("line", ChannelId(9)), Some(1));
        assert!(
            !l.release("line", ChannelId(1)),
            "taken over: not its any more"
        );
        assert!(l.release("line", ChannelId(9)));
        assert!(l.release("line", ChannelId(2)));
        assert!(l.snapshot().is_empty());
    }

    /// The seed's idle NOTIFY, byte for byte, and a busy line as Kamailio
    /// writes it (states by index, the caller quoted, idle last).
    #[test]
    fn call_info_reads_as_the_seed_and_kamailio_write_it() {
        let l = Lines::default();
        let uri = "sip:osas_shared@192.168.2.2";
        assert_eq!(
            l.call_info("osas_shared", uri),
            "<sip:osas_shared@192.168.2.2>;appearance-index=*;appearance-state=idle"
        );
        let mut a = ap(1, ApState::Alerting);
        a.uri = Some("\"Ovidiu Sas\" <sip:4164542289@192.168.2.2>".into());
        l.seize("osas_shared", 2, None, a).unwrap();
        assert_eq!(
            l.call_info("osas_shared", uri),
            "<sip:osas_shared@192.168.2.2>;appearance-index=1;appearance-state=alerting;\
             appearance-uri=\"\\\"Ovidiu Sas\\\" <sip:4164542289@192.168.2.2>\",\
             <sip:osas_shared@192.168.2.2>;appearance-index=*;appearance-state=idle"
        );
    }

    /// Two seizures of one appearance (two phones, two shards): one wins,
    /// the other is told so; the winner's is given back by its own call
    /// only.
    #[test]
    fn a_seizure_is_won_once() {
        let l = Lines::default();
        let seizure = |call: &str| Appearance {
            chan: NO_LEG,
            seized: Some((call.to_string(), 100)),
            ..ap(0, ApState::Seized)
        };
        assert!(l.seize_exact("line", 2, seizure("a")));
        assert!(!l.seize_exact("line", 2, seizure("b")));
        assert!(!l.unseize("line", 2, "b"));
        assert!(!l.set_state_at("line", 2, ApState::Held), "no leg to hold");
        assert_eq!(l.expire_seizures(99), Vec::<String>::new());
        assert!(l.unseize("line", 2, "a"));
        assert!(l.seize_exact("line", 2, seizure("b")));
        assert_eq!(l.expire_seizures(100), ["line"]);
        assert!(l.snapshot().is_empty());
    }

    /// The old leg's end racing the takeover it causes (on another shard)
    /// hands the appearance to the taker, never frees it; a failed takeover
    /// leaves it held.
    #[test]
    fn a_takeover_survives_the_old_legs_end_coming_first() {
        let l = Lines::default();
        l.seize("line", 2, None, ap(1, ApState::Held)).unwrap();
        let take = |from: u64, by: u64, held_only: bool| {
            let name = format!("SIP/line-{by}");
            l.begin_takeover(
                "line",
                1,
                ChannelId(from),
                (ChannelId(by), &name),
                (1, held_only),
            )
        };
        assert!(!take(5, 9, true), "not the call named");
        assert!(take(1, 9, true));
        assert!(!take(1, 10, true), "one taker at a time");
        assert!(l.release("line", ChannelId(1)), "changed: handed over");
        let a = l.get("line", 1).unwrap();
        assert_eq!((a.chan, a.state), (ChannelId(9), ApState::Active));
        assert!(l.reassign("line", 1, (ChannelId(9), "SIP/line-9"), 1));
        assert_eq!(l.get("line", 1).unwrap().taking, None);
        l.set_state("line", ChannelId(9), ApState::Active, None);
        assert!(!take(9, 11, true), "active: only by Replaces");
        l.set_exclusive("line", 1, true);
        assert!(!take(9, 11, false), "exclusive: by nobody");
        l.set_exclusive("line", 1, false);
        l.set_state("line", ChannelId(9), ApState::Held, None);
        assert!(take(9, 11, true));
        l.abort_takeover("line", 1);
        assert!(l.release("line", ChannelId(9)), "no taker: freed");
        assert!(l.get("line", 1).is_none());
    }

    #[test]
    fn sip_show_sharedlines_lists_every_line() {
        let l = Lines::default();
        let mut a = ap(7, ApState::Held);
        a.uri = Some("\"Alice\" <sip:100@pbx>".into());
        l.seize("sales", 2, Some(2), a).unwrap();
        let out = render_sharedlines(&sharedlines_table(
            &[("sales".into(), 2), ("support".into(), 1)],
            &l,
        ));
        assert_eq!(
            out,
            "Line             Index  State        Appearance URI                       Channel\n\
             sales            2      held         \"Alice\" <sip:100@pbx>                SIP/line-7\n\
             support          *      idle                                              (of 1)\n\
             2 shared lines, 1 appearance in use\n"
        );
    }

    #[test]
    fn the_index_is_read_in_any_order() {
        use sirius_sip::message::{parse_datagram, Limits};
        let with = |ci: &str| {
            let t = format!(
                "INVITE sip:192.168.2.2:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n\
                 From: <sip:l@h>;tag=a\r\nTo: <sip:l@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{ci}Content-Length: 0\r\n\r\n"
            );
            appearance_index(&parse_datagram(t.as_bytes(), &Limits::default()).unwrap())
        };
        assert_eq!(
            with("Call-Info: <sip:192.168.2.2:5080>;appearance-index=1\r\n"),
            Some(1)
        );
        assert_eq!(
            with("Call-Info: <sip:h>;appearance-uri=\"x\";appearance-index=2;appearance-state=held\r\n"),
            Some(2)
        );
        assert_eq!(
            with("Call-Info: <sip:h>;appearance-index=*;appearance-state=idle\r\n"),
            None
        );
        assert_eq!(with(""), None);
    }
}
