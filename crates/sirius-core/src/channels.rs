//! The channel registry: every live call leg, its state, cause and codecs.
//!
//! The core owns the truth about channels. Plugins keep their private per-call
//! state (dialogs, RTP sockets) keyed by [`ChannelId`], and report changes here
//! through `CoreServices`; the console and the dialplan read from here.

use parking_lot::RwLock;
use sirius_abi::{Cause, ChannelId, ChannelInfo, ChannelSpec, ChannelState, Codec, Direction};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One call leg as the core knows it.
#[derive(Clone, Debug)]
pub struct Channel {
    /// Handle shared with the plugin.
    pub id: ChannelId,
    /// Unique name, `SIP/alice-00000001`.
    pub name: String,
    /// `${UNIQUEID}`.
    pub uniqueid: String,
    /// Technology type (`SIP`).
    pub tech: String,
    /// Resource part of the name (peer).
    pub resource: String,
    /// Current state.
    pub state: ChannelState,
    /// Inbound or outbound leg.
    pub direction: Direction,
    /// Hangup cause, once known.
    pub cause: Cause,
    /// Dialplan location: context.
    pub context: String,
    /// Dialplan location: extension.
    pub exten: String,
    /// Dialplan location: priority (1-based; 0 before the dialplan runs).
    pub priority: u32,
    /// Application running, if any (`Dial`), or `AppDial` for an outgoing leg.
    pub application: String,
    /// Its argument string.
    pub app_data: String,
    /// Caller ID number.
    pub caller_num: String,
    /// Caller ID name.
    pub caller_name: String,
    /// Account code.
    pub accountcode: String,
    /// Codecs usable on the leg, best first.
    pub codecs: Vec<Codec>,
    /// When the channel was created.
    pub created: Instant,
    /// When it was answered.
    pub answered: Option<Instant>,
    /// The channel it is bridged with.
    pub bridged_to: Option<ChannelId>,
    /// The far end signalled progress before answering (SIP 183): early
    /// media may flow; Dial passes it on to the caller.
    pub progress: bool,
    /// The early-media link this leg is in (`Core::early_media`: caller,
    /// callee), until it ends or becomes the bridge: whom to tell when it ends.
    pub early_media: Option<(ChannelId, ChannelId)>,
    /// Whether a dialplan (PBX) runs on it: such a channel counts as a call.
    pub pbx: bool,
    /// Channel variables (`Set()`, `${DIALSTATUS}`…).
    pub vars: Vars,
    /// Which run of the dialplan owns the channel: one more at each async
    /// goto (a transfer, `channel redirect`). A run that finds another
    /// number stops at its next step, without `h` (the new run owns it).
    pub plan: u32,
    /// The outcome of the transfer its technology was last asked for
    /// (`Transfer()`); `None` while none was asked or none came yet.
    pub transfer: Option<Result<(), Cause>>,
    /// The channel whose dialplan requested this one (a Dial's caller): a
    /// ringing callee may only be picked up for a Dial that waits on it.
    pub dialed_by: Option<ChannelId>,
    /// What its call detail record will say (`crate::cdr`).
    pub cdr: crate::cdr::CdrMarks,
    /// Asterisk's `Linkedid` when it is not the channel's own uniqueid:
    /// a Dial's callee gets its caller's, recorded when it is requested
    /// (only while someone listens to events), so that the callee's last
    /// events still name the call after the caller is gone. Empty: see
    /// [`ChannelRegistry::linkedid`].
    pub linkedid: Box<str>,
}

/// A channel's variables, sorted by name, each name and value allocated to
/// its length. A channel has a handful (a held call's legs, one or two):
/// a `BTreeMap` took 544 bytes for its first node alone, about a twentieth
/// of a held call's memory (issue #11, `bench/report-memory.md`); lookups
/// by binary search over a few entries cost no more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars(Vec<(Box<str>, Box<str>)>);

impl Vars {
    /// An empty set.
    pub fn new() -> Vars {
        Vars::default()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(name))
    }

    /// A variable's value, by its exact name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).ok().map(|i| &*self.0[i].1)
    }

    /// Sets a variable; returns the value it replaces.
    pub fn insert(&mut self, name: &str, value: &str) -> Option<String> {
        match self.find(name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value.into()).into()),
            Err(i) => {
                // One more slot, not the doubling a push makes.
                self.0.reserve_exact(1);
                self.0.insert(i, (name.into(), value.into()));
                None
            }
        }
    }

    /// Sets a variable as `Set()` does. The name keeps its inheritance
    /// prefix, as Asterisk stores it: `_VAR` is copied to the channels this
    /// one dials (without the underscore there), `__VAR` to them and on to
    /// every channel they dial in turn. Setting `VAR` with another prefix
    /// replaces it.
    pub fn store(&mut self, name: &str, value: &str) {
        let base = name.trim_start_matches('_');
        for prefix in ["", "_", "__"] {
            self.remove(&format!("{prefix}{base}"));
        }
        let prefix = match name.len() - base.len() {
            0 => "",
            1 => "_",
            _ => "__",
        };
        self.insert(&format!("{prefix}{base}"), value);
    }

    /// A variable by its name without prefix (`${VAR}` finds `__VAR`).
    pub fn fetch(&self, name: &str) -> Option<&str> {
        self.get(name)
            .or_else(|| self.get(&format!("_{name}")))
            .or_else(|| self.get(&format!("__{name}")))
    }

    /// Removes a variable; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.find(name).ok()?;
        Some(self.0.remove(i).1.into())
    }

    /// Name and value of each, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Vars {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Box<str>, Box<str>)>,
        fn(&'a (Box<str>, Box<str>)) -> (&'a str, &'a str),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Extend<(K, V)> for Vars {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k.as_ref(), v.as_ref());
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Vars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Vars {
        let mut v = Vars::new();
        v.extend(iter);
        v
    }
}

/// How many locks the channel table is split into (consecutive ids fall
/// under different locks).
const LOCK_SHARDS: usize = 16;

/// All live channels, with Asterisk's counters.
pub struct ChannelRegistry {
    /// Each channel boxed: ids only grow, so a B-tree's nodes split with
    /// the newest key and every node left behind stays about half full;
    /// with 470-byte channels inline that was 860 bytes a channel, boxed
    /// it is the channel and 16 bytes (memory per held call, issue #11).
    ///
    /// Split in [`LOCK_SHARDS`] by id, each under its own lock: with one
    /// lock, the SIP threads and the PBX pool's workers (four threads on two
    /// cores) queued on it for every step of every call, and a holder
    /// preempted by the load generator left the others spinning (issue #11).
    channels: [RwLock<BTreeMap<ChannelId, Box<Channel>>>; LOCK_SHARDS],
    /// Causes of recently ended channels, for whoever waited on them (Dial's
    /// DIALSTATUS). Bounded: the oldest entries go first.
    ended: parking_lot::Mutex<std::collections::VecDeque<(ChannelId, Cause)>>,
    /// Who waits on which channel: a change wakes only the waiters watching it
    /// (a global wake-up made every dialplan thread spin on every change).
    watchers: parking_lot::Mutex<std::collections::HashMap<ChannelId, Vec<std::sync::Arc<Signal>>>>,
    /// What runs when a channel goes (see [`ChannelRegistry::when_gone`]).
    gone_hooks: parking_lot::Mutex<std::collections::HashMap<ChannelId, Vec<GoneHook>>>,
    next_id: AtomicU64,
    name_seq: AtomicU32,
    calls_processed: AtomicU64,
    /// Live channels running a dialplan: kept as a count because `maxcalls`
    /// asks for it on every new call.
    active_calls: AtomicU64,
    /// Where `Newchannel` and `Newstate` go: the registry owns both changes
    /// (the core's bus; one of its own in unit tests).
    events: std::sync::Arc<crate::events::EventBus>,
}

impl Default for ChannelRegistry {
    fn default() -> Self {
        ChannelRegistry::new()
    }
}

impl ChannelRegistry {
    /// An empty registry, with an event bus of its own.
    pub fn new() -> ChannelRegistry {
        ChannelRegistry::with_events(Default::default())
    }

    /// An empty registry publishing `Newchannel` and `Newstate` on `events`.
    pub fn with_events(events: std::sync::Arc<crate::events::EventBus>) -> ChannelRegistry {
        ChannelRegistry {
            channels: std::array::from_fn(|_| RwLock::new(BTreeMap::new())),
            ended: parking_lot::Mutex::new(std::collections::VecDeque::new()),
            watchers: parking_lot::Mutex::new(std::collections::HashMap::new()),
            gone_hooks: parking_lot::Mutex::new(std::collections::HashMap::new()),
            next_id: AtomicU64::new(1),
            name_seq: AtomicU32::new(1),
            calls_processed: AtomicU64::new(0),
            active_calls: AtomicU64::new(0),
            events,
        }
    }

    /// Asterisk's `Linkedid` of a channel: the uniqueid of the call's first
    /// channel (a Dial's caller for its callee, as recorded when it was
    /// requested, else as the caller says while it lives), else its own.
    pub fn linkedid(&self, c: &Channel) -> String {
        self.linked(&c.linkedid, &c.uniqueid, c.dialed_by)
    }

    /// [`ChannelRegistry::linkedid`] of a live channel, by id.
    pub fn linkedid_of(&self, id: ChannelId) -> Option<String> {
        let (lid, uid, up) = self.read(id, |a| {
            (a.linkedid.clone(), a.uniqueid.clone(), a.dialed_by)
        })?;
        Some(self.linked(&lid, &uid, up))
    }

    /// Up the chain of Dials (each channel read on its own, no lock held
    /// across two), to the first recorded Linkedid or the oldest live caller.
    fn linked(&self, linkedid: &str, uniqueid: &str, mut up: Option<ChannelId>) -> String {
        if !linkedid.is_empty() {
            return linkedid.to_string();
        }
        let mut oldest = uniqueid.to_string();
        for _ in 0..8 {
            let Some(id) = up else { break };
            let Some((lid, uid, next)) = self.read(id, |a| {
                (a.linkedid.clone(), a.uniqueid.clone(), a.dialed_by)
            }) else {
                break;
            };
            if !lid.is_empty() {
                return lid.into();
            }
            (oldest, up) = (uid, next);
        }
        oldest
    }

    /// A channel event (`Newstate`, `Hangup`…) with the channel's block of
    /// fields; `None` when nobody listens (nothing is built then).
    pub fn event(&self, name: &str, c: &Channel) -> Option<crate::events::Event> {
        if !self.events.wanted() {
            return None;
        }
        let mut e = crate::events::Event::new(name);
        e.channel("", c, &self.linkedid(c));
        Some(e)
    }

    /// The part of the table `id` lives in.
    fn table(&self, id: ChannelId) -> &RwLock<BTreeMap<ChannelId, Box<Channel>>> {
        &self.channels[(id.0 % LOCK_SHARDS as u64) as usize]
    }

    /// Creates a channel named `<tech>/<resource>-<8 hex digits>` (`ast_channel_alloc`).
    pub fn alloc(&self, spec: &ChannelSpec) -> ChannelInfo {
        let id = ChannelId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let seq = self.name_seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}/{}-{:08x}", spec.tech, spec.resource, seq);
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let uniqueid = format!("{epoch}.{}", id.0);
        let chan = Channel {
            id,
            name: name.clone(),
            uniqueid: uniqueid.clone(),
            tech: spec.tech.to_string(),
            resource: spec.resource.to_string(),
            state: spec.state,
            direction: spec.direction,
            cause: Cause::NOT_DEFINED,
            context: spec.context.to_string(),
            exten: spec.exten.to_string(),
            priority: if spec.direction == Direction::Inbound {
                1
            } else {
                0
            },
            application: String::new(),
            app_data: String::new(),
            caller_num: spec.caller_num.to_string(),
            caller_name: spec.caller_name.to_string(),
            accountcode: spec.accountcode.to_string(),
            codecs: spec.codecs.to_vec(),
            created: Instant::now(),
            answered: None,
            bridged_to: None,
            progress: false,
            early_media: None,
            pbx: false,
            vars: Vars::new(),
            plan: 0,
            transfer: None,
            dialed_by: None,
            cdr: Default::default(),
            linkedid: Box::default(),
        };
        // `Newchannel` (Asterisk's fields), only built when someone listens.
        let event = self.event("Newchannel", &chan);
        self.table(id).write().insert(id, Box::new(chan));
        if let Some(e) = event {
            self.events.publish(e);
        }
        ChannelInfo {
            id,
            name: name.into(),
            uniqueid: uniqueid.into(),
        }
    }

    /// Applies `f` to a channel; false if it no longer exists.
    pub fn update(&self, id: ChannelId, f: impl FnOnce(&mut Channel)) -> bool {
        let found = match self.table(id).write().get_mut(&id) {
            Some(c) => {
                f(c);
                true
            }
            None => false,
        };
        if found {
            self.notify(id);
        }
        found
    }

    fn notify(&self, id: ChannelId) {
        if let Some(list) = self.watchers.lock().get(&id) {
            for s in list {
                s.raise();
            }
        }
    }

    /// Registers `signal` to be raised whenever one of `ids` changes or goes.
    /// Lets a waiting application react to an answer at once instead of polling.
    pub fn watch(&self, ids: &[ChannelId], signal: &std::sync::Arc<Signal>) {
        let mut w = self.watchers.lock();
        for id in ids {
            w.entry(*id).or_default().push(signal.clone());
        }
    }

    /// Removes `signal` from `ids`.
    pub fn unwatch(&self, ids: &[ChannelId], signal: &std::sync::Arc<Signal>) {
        let mut w = self.watchers.lock();
        for id in ids {
            if let Some(list) = w.get_mut(id) {
                list.retain(|s| !std::sync::Arc::ptr_eq(s, signal));
                if list.is_empty() {
                    w.remove(id);
                }
            }
        }
    }

    /// Runs `f` once, when the first of `ids` is removed (at once, on this
    /// thread, if one is already gone). A bridged call's dialplan needs no
    /// thread while the call is up: it leaves this behind instead of a
    /// thread blocked in a wait (at 10,000 held calls, 10,000 stacks).
    /// `f` runs on whichever thread removes the channel, with no registry
    /// lock held: it should only hand work on.
    ///
    /// `owner` is the channel whose dialplan left the hook behind: a
    /// transfer that starts a new dialplan on it cancels the old one's
    /// ([`ChannelRegistry::cancel_gone_hooks`]), so its `h` runs once.
    pub fn when_gone(
        &self,
        ids: &[ChannelId],
        owner: ChannelId,
        f: impl FnOnce() + Send + 'static,
    ) {
        let hook = GoneHook {
            owner,
            f: std::sync::Arc::new(parking_lot::Mutex::new(Some(Box::new(f)))),
        };
        let mut hooks = self.gone_hooks.lock();
        // Checked under the hooks lock: `remove` takes the channel out first
        // and the hooks second, so a channel seen here is seen there too.
        if ids.iter().any(|id| !self.exists(*id)) {
            drop(hooks);
            return hook.fire();
        }
        for id in ids {
            hooks.entry(*id).or_default().push(GoneHook {
                owner,
                f: hook.f.clone(),
            });
        }
    }

    /// Drops, without running them, the hooks `owner`'s dialplan left
    /// behind (under every channel they wait on): its call goes on in a
    /// new dialplan (a transfer). Returns how many hooks were cancelled.
    pub fn cancel_gone_hooks(&self, owner: ChannelId) -> usize {
        let mut cancelled = 0;
        for list in self.gone_hooks.lock().values() {
            for hook in list.iter().filter(|h| h.owner == owner) {
                // The closure is shared by the hook's copies: taken once.
                if hook.f.lock().take().is_some() {
                    cancelled += 1;
                }
            }
        }
        cancelled
    }

    /// The hooks `owner`'s dialplan left on `from` wait on `to` instead:
    /// a transfer took `from` out of the owner's call (a blind transfer's
    /// transferee now runs a plan of its own; an attended transfer's new
    /// pair replaces the old). A hook already waiting on `to` is not
    /// doubled. Returns how many moved.
    pub fn retarget_gone_hooks(&self, owner: ChannelId, from: ChannelId, to: ChannelId) -> usize {
        let mut hooks = self.gone_hooks.lock();
        let Some(list) = hooks.get_mut(&from) else {
            return 0;
        };
        let (moving, staying): (Vec<GoneHook>, Vec<GoneHook>) =
            list.drain(..).partition(|h| h.owner == owner);
        *list = staying;
        if list.is_empty() {
            hooks.remove(&from);
        }
        let moved = moving.len();
        if moved == 0 {
            return 0;
        }
        // `to` went already: its hooks fired and are gone, so these fire now.
        if !self.exists(to) {
            drop(hooks);
            moving.iter().for_each(GoneHook::fire);
            return moved;
        }
        let target = hooks.entry(to).or_default();
        for hook in moving {
            if !target.iter().any(|h| std::sync::Arc::ptr_eq(&h.f, &hook.f)) {
                target.push(hook);
            }
        }
        moved
    }

    /// Channels with a [`ChannelRegistry::when_gone`] hook pending.
    #[cfg(test)]
    fn pending_gone_hooks(&self) -> usize {
        self.gone_hooks.lock().len()
    }

    /// Records a state change; `Up` also records the answer time.
    /// A change of state publishes `Newstate` (when someone listens).
    pub fn set_state(&self, id: ChannelId, state: ChannelState) -> bool {
        let wanted = self.events.wanted();
        let mut changed = None;
        let found = self.update(id, |c| {
            if state == ChannelState::Up && c.answered.is_none() {
                c.answered = Some(Instant::now());
            }
            if wanted && c.state != state {
                c.state = state;
                changed = Some(c.clone());
            }
            c.state = state;
        });
        if let Some(e) = changed.and_then(|c| self.event("Newstate", &c)) {
            self.events.publish(e);
        }
        found
    }

    /// Marks the channel as running a dialplan; counts it as a processed call.
    pub fn start_pbx(&self, id: ChannelId) -> bool {
        let mut started = false;
        let ok = self.update(id, |c| {
            started = !c.pbx;
            c.pbx = true;
        });
        if started {
            self.calls_processed.fetch_add(1, Ordering::Relaxed);
            self.active_calls.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Undoes [`ChannelRegistry::start_pbx`] for a call the dialplan refused.
    pub fn unstart_pbx(&self, id: ChannelId) {
        let mut stopped = false;
        self.update(id, |c| {
            stopped = c.pbx;
            c.pbx = false;
        });
        if stopped {
            self.calls_processed.fetch_sub(1, Ordering::Relaxed);
            self.active_calls.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Sets a live channel's hangup cause without hanging it up (Asterisk's
    /// `ast_channel_hangupcause_set`): Dial records why it failed, so
    /// `${HANGUPCAUSE}` names it and the eventual hangup carries it.
    /// Returns false when the channel is gone.
    pub fn set_cause(&self, id: ChannelId, cause: Cause) -> bool {
        self.update(id, |c| c.cause = cause)
    }

    /// Removes a channel, recording its final cause; returns it as it was.
    /// The cause of the hangup wins (a BYE after a failed Dial is a normal
    /// clearing); the channel's own cause stays when the hangup gives none.
    pub fn remove(&self, id: ChannelId, cause: Cause) -> Option<Channel> {
        let mut c = *self.table(id).write().remove(&id)?;
        if c.pbx {
            self.active_calls.fetch_sub(1, Ordering::Relaxed);
        }
        if cause != Cause::NOT_DEFINED {
            c.cause = cause;
        }
        let mut ended = self.ended.lock();
        if ended.len() >= 4096 {
            ended.pop_front();
        }
        ended.push_back((id, c.cause));
        drop(ended);
        // Wake whoever watched it, and forget them: a gone channel changes no more.
        if let Some(list) = self.watchers.lock().remove(&id) {
            for s in list {
                s.raise();
            }
        }
        let hooks = self.gone_hooks.lock().remove(&id);
        for hook in hooks.into_iter().flatten() {
            hook.fire();
        }
        Some(c)
    }

    /// Why a channel that no longer exists ended, if it ended recently.
    pub fn ended_cause(&self, id: ChannelId) -> Option<Cause> {
        self.ended
            .lock()
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map(|(_, c)| *c)
    }

    /// Whether a channel exists (no copy: for loops that only need that).
    pub fn exists(&self, id: ChannelId) -> bool {
        self.table(id).read().contains_key(&id)
    }

    /// A channel's state (no copy of the rest).
    pub fn state(&self, id: ChannelId) -> Option<ChannelState> {
        self.table(id).read().get(&id).map(|c| c.state)
    }

    /// Whether the far end of a channel signalled progress (early media).
    pub fn progress(&self, id: ChannelId) -> bool {
        self.table(id).read().get(&id).is_some_and(|c| c.progress)
    }

    /// A copy of one channel.
    pub fn get(&self, id: ChannelId) -> Option<Channel> {
        self.table(id).read().get(&id).map(|c| (**c).clone())
    }

    /// What `f` reads of a channel, without the copy [`ChannelRegistry::get`]
    /// makes (a variable asked for on every outbound leg).
    pub fn read<T>(&self, id: ChannelId, f: impl FnOnce(&Channel) -> T) -> Option<T> {
        self.table(id).read().get(&id).map(|c| f(c))
    }

    /// Finds a channel by exact name, or by unique prefix of its name.
    pub fn find(&self, name: &str) -> Option<Channel> {
        // Copies of the matches only, the oldest first.
        let matching = |keep: &dyn Fn(&Channel) -> bool| {
            let mut found: Vec<Channel> = self
                .channels
                .iter()
                .flat_map(|t| {
                    let t = t.read();
                    t.values()
                        .filter(|c| keep(c))
                        .map(|c| (**c).clone())
                        .collect::<Vec<_>>()
                })
                .collect();
            found.sort_by_key(|c| c.id);
            found
        };
        if let Some(c) = matching(&|c| c.name.eq_ignore_ascii_case(name))
            .into_iter()
            .next()
        {
            return Some(c);
        }
        let mut prefixed = matching(&|c| c.name.starts_with(name)).into_iter();
        match (prefixed.next(), prefixed.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    }

    /// Copies of all channels, oldest first.
    pub fn snapshot(&self) -> Vec<Channel> {
        let mut all: Vec<Channel> = self
            .channels
            .iter()
            .flat_map(|t| t.read().values().map(|c| (**c).clone()).collect::<Vec<_>>())
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }

    /// Live channels.
    pub fn active_channels(&self) -> usize {
        self.channels.iter().map(|t| t.read().len()).sum()
    }

    /// Live channels of one technology (`Test`, `SIP`), for a plugin's use count.
    pub fn count_tech(&self, tech: &str) -> usize {
        self.channels
            .iter()
            .map(|t| {
                t.read()
                    .values()
                    .filter(|c| c.tech.eq_ignore_ascii_case(tech))
                    .count()
            })
            .sum()
    }

    /// After a burst (`memory.rs`): the waiter and hook indexes give back
    /// the room of their largest size (the channels' own tree shrinks as it
    /// empties).
    pub fn shrink(&self) {
        fn shrink_map<K: Eq + std::hash::Hash, V>(m: &mut std::collections::HashMap<K, V>) {
            if m.capacity() > 64 && m.len() < m.capacity() / 4 {
                m.shrink_to((m.len() * 2).max(64));
            }
        }
        shrink_map(&mut self.watchers.lock());
        shrink_map(&mut self.gone_hooks.lock());
    }

    /// Channels running a dialplan (`ast_active_calls`).
    pub fn active_calls(&self) -> usize {
        self.active_calls.load(Ordering::Relaxed) as usize
    }

    /// Dialplans started since boot (`ast_processed_calls`).
    pub fn calls_processed(&self) -> u64 {
        self.calls_processed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[path = "channels_tests.rs"]
mod tests;

#[cfg(test)]
mod event_tests {
    use super::*;

    /// `Newchannel` and `Newstate` as AMI shows them, and only while
    /// someone listens.
    #[test]
    fn channel_events_only_while_someone_listens() {
        let bus = std::sync::Arc::new(crate::events::EventBus::default());
        let reg = ChannelRegistry::with_events(bus.clone());
        let spec = ChannelSpec {
            tech: "SIP".into(),
            resource: "alice".into(),
            state: ChannelState::Ring,
            direction: Direction::Inbound,
            context: "demo".into(),
            exten: "600".into(),
            caller_num: "6001".into(),
            caller_name: "".into(),
            codecs: vec![Codec::PCMU].into(),
            accountcode: "".into(),
        };
        let quiet = reg.alloc(&spec);
        reg.set_state(quiet.id, ChannelState::Up);
        let mut rx = bus.subscribe();
        assert!(rx.try_recv().is_err(), "nothing built without a listener");
        let a = reg.alloc(&spec);
        let e = rx.try_recv().expect("Newchannel");
        assert_eq!(e.name, "Newchannel");
        let keys: Vec<&str> = e.fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "Channel",
                "ChannelState",
                "ChannelStateDesc",
                "CallerIDNum",
                "CallerIDName",
                "ConnectedLineNum",
                "ConnectedLineName",
                "Language",
                "AccountCode",
                "Context",
                "Exten",
                "Priority",
                "Uniqueid",
                "Linkedid"
            ]
        );
        assert_eq!(e.get("ChannelState"), Some("4"));
        assert_eq!(e.get("CallerIDName"), Some("<unknown>"));
        assert_eq!(e.get("Linkedid"), e.get("Uniqueid"));
        reg.set_state(a.id, ChannelState::Up);
        reg.set_state(a.id, ChannelState::Up);
        let e = rx.try_recv().expect("Newstate");
        assert_eq!(
            (e.name.as_str(), e.get("ChannelStateDesc")),
            ("Newstate", Some("Up"))
        );
        assert!(rx.try_recv().is_err(), "no Newstate without a change");
    }
}

/// A closure shared by the channels it waits on; the first to go runs it.
struct GoneHook {
    /// The channel whose dialplan left it.
    owner: ChannelId,
    f: std::sync::Arc<parking_lot::Mutex<Option<HookFn>>>,
}

type HookFn = Box<dyn FnOnce() + Send>;

impl GoneHook {
    fn fire(&self) {
        let f = self.f.lock().take();
        if let Some(f) = f {
            f();
        }
    }
}

/// A wake-up flag one waiter waits on (see [`ChannelRegistry::watch`]):
/// a thread with [`Signal::wait`] (an originated call waiting for its
/// answer), or a task with [`Signal::raised`] (the dialplan's applications
/// on its pool of worker threads, which must not block a worker while a
/// call rings). A signal serves one waiter in one of the two ways; the
/// other way may then see a spurious wake-up, which waiters tolerate as
/// they re-check the channels anyway.
#[derive(Default)]
pub struct Signal {
    raised: parking_lot::Mutex<bool>,
    cond: parking_lot::Condvar,
    /// For a task: `notify_one` keeps one permit while no task waits, so a
    /// change between the task's look at the channels and its `await` is
    /// not lost.
    notify: tokio::sync::Notify,
}

impl Signal {
    /// A new, lowered signal.
    pub fn new() -> std::sync::Arc<Signal> {
        std::sync::Arc::new(Signal::default())
    }

    fn raise(&self) {
        *self.raised.lock() = true;
        self.cond.notify_one();
        self.notify.notify_one();
    }

    /// Waits until raised or `timeout` passes, then lowers it.
    pub fn wait(&self, timeout: std::time::Duration) {
        let mut r = self.raised.lock();
        if !*r {
            self.cond.wait_for(&mut r, timeout);
        }
        *r = false;
    }

    /// Resolves once raised (at once if it was raised since the last
    /// wake-up), holding no thread meanwhile; the caller bounds it with
    /// its own timeout.
    pub async fn raised(&self) {
        self.notify.notified().await;
    }
}
