//! The TCP side: the listener, a task per connection, and the event
//! fan-out.
//!
//! * A connection not logged in counts against `authlimit` (more are
//!   closed at once) and has `authtimeout` to log in.
//! * Actions run on tokio's blocking pool (`Command` may wait on a plugin
//!   for up to two seconds), one at a time per session, in order.
//! * Events reach a session through a bounded queue ([`EVENT_QUEUE`]):
//!   the core never waits for a client. A session whose queue is full is
//!   disconnected, as Asterisk drops a session its writes time out on; a
//!   write that blocks longer than the user's `writetimeout` does the same.
//! * The fan-out subscribes to the core's event bus only while a session
//!   listens, so with AMI idle the call path builds no event at all
//!   (`EventBus::wanted`).

use crate::backend::Backend;
use crate::config::Settings;
use crate::message::{Framer, Reply};
use crate::perms::Perms;
use crate::session::{Output, PendingOriginate, Session, State};
use parking_lot::Mutex;
use sirius_core::Core;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, Notify};

/// Events a session may have waiting before it is disconnected.
pub const EVENT_QUEUE: usize = 4096;

/// The AMI version in the banner and `CoreSettings`: panoramisk and pyst2
/// read it after the banner's slash; the 5.0 line is Asterisk 16's, whose
/// action and event formats Sirius follows.
pub const AMI_VERSION: &str = "5.0.2";

/// The banner clients check, written on connect.
pub fn banner() -> String {
    format!("Asterisk Call Manager/{AMI_VERSION}\r\n")
}

/// One connection, as the fan-out and the console see it.
pub struct Handle {
    /// Session number.
    pub id: u64,
    /// The client.
    pub remote: SocketAddr,
    /// When it connected (seconds since the epoch).
    pub started: u64,
    /// When it connected.
    pub since: Instant,
    /// The user, once logged in.
    pub user: Mutex<Option<String>>,
    /// Its read and write classes, once logged in.
    pub perms: Mutex<(Perms, Perms)>,
    /// Classes of events it receives now.
    mask: AtomicU32,
    queue: mpsc::Sender<Arc<str>>,
    kick: Notify,
    /// Events it could not take (its queue was full).
    pub dropped: AtomicU64,
}

/// The manager: settings, the sessions, the fan-out.
pub struct Manager {
    /// manager.toml.
    pub settings: Arc<Settings>,
    /// Where it listens.
    pub local: SocketAddr,
    core: Arc<Core>,
    backend: Arc<dyn Backend>,
    sessions: Mutex<Vec<Arc<Handle>>>,
    unauthenticated: AtomicUsize,
    next_id: AtomicU64,
    /// Sessions listening changed: the fan-out re-checks its subscription.
    listeners_changed: Notify,
    /// The hint watches that feed `ExtensionStatus`, while a session listens.
    hint_watches: Mutex<Vec<u64>>,
}

impl Manager {
    /// Binds the listener (before anything else runs: a port in use is
    /// an error the daemon reports at start).
    pub async fn bind(
        settings: Arc<Settings>,
        core: Arc<Core>,
        backend: Arc<dyn Backend>,
    ) -> std::io::Result<(Arc<Manager>, TcpListener)> {
        let listener = TcpListener::bind(settings.general.bind).await?;
        let local = listener.local_addr()?;
        let mgr = Arc::new(Manager {
            settings,
            local,
            core,
            backend,
            sessions: Mutex::new(Vec::new()),
            unauthenticated: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            listeners_changed: Notify::new(),
            hint_watches: Mutex::new(Vec::new()),
        });
        Ok((mgr, listener))
    }

    /// The sessions now (for `manager show connected`).
    pub fn sessions(&self) -> Vec<Arc<Handle>> {
        self.sessions.lock().clone()
    }

    /// Accepts connections until the runtime stops; runs the fan-out.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        tokio::spawn(self.clone().fan_out());
        tokio::spawn(self.clone().on_shutdown());
        loop {
            match listener.accept().await {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(self.clone().connection(stream, remote));
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    log::warn!("AMI: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// `core stop`: every session that reads `system` is told (Asterisk's
    /// `Shutdown` event: panoramisk reconnects on it, dashboards show the
    /// PBX as down rather than waiting for a timeout).
    async fn on_shutdown(self: Arc<Self>) {
        let mut rx = self.core.shutdown_requested();
        while rx.borrow_and_update().is_none() {
            if rx.changed().await.is_err() {
                return;
            }
        }
        let clean = if self.core.channels.active_channels() == 0 {
            "Cleanly"
        } else {
            "Uncleanly"
        };
        let mut r = Reply::event("Shutdown");
        r.kv("Privilege", &Perms::SYSTEM.privilege())
            .kv("Shutdown", clean)
            .kv("Restart", "False");
        let text: Arc<str> = r.end().into();
        for h in self.sessions.lock().iter() {
            if Perms(h.mask.load(Ordering::Relaxed)).intersects(Perms::SYSTEM) {
                let _ = h.queue.try_send(text.clone());
            }
        }
    }

    fn listening(&self) -> bool {
        self.sessions
            .lock()
            .iter()
            .any(|h| h.mask.load(Ordering::Relaxed) != 0)
    }

    /// Copies the core's events to the sessions that read their class;
    /// subscribed only while one does.
    async fn fan_out(self: Arc<Self>) {
        let mut rx: Option<sirius_core::events::Subscription> = None;
        loop {
            if !self.listening() {
                if rx.take().is_some() {
                    self.unwatch_hints();
                }
                self.listeners_changed.notified().await;
                continue;
            }
            if rx.is_none() {
                rx = Some(self.core.events.subscribe());
                self.watch_hints();
            }
            let Some(r) = rx.as_mut() else { continue };
            tokio::select! {
                ev = r.recv() => match ev {
                    Ok(e) => self.deliver(&e),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        log::warn!("AMI: {n} events lost (the event bus ran ahead of the manager)");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = self.listeners_changed.notified() => {}
            }
        }
    }

    /// Watches every hint of the dialplan (Asterisk's manager watches them
    /// all): each change of an extension's state becomes an
    /// `ExtensionStatus` event on the bus. Only while a session listens, so
    /// an idle AMI adds nothing to a device change.
    fn watch_hints(&self) {
        let mut ids = self.hint_watches.lock();
        for hint in self.core.hints() {
            let core = Arc::downgrade(&self.core);
            let (context, exten, devices) = (
                hint.context.clone(),
                hint.exten.clone(),
                hint.devices.join("&"),
            );
            let callback: sirius_core::hints::HintCallback = Box::new(move |state| {
                if let Some(core) = core.upgrade() {
                    let mut e = sirius_core::events::Event::new("ExtensionStatus");
                    e.push("Exten", exten.as_str())
                        .push("Context", context.as_str())
                        .push("Hint", devices.as_str())
                        .push("Status", state.bits().to_string())
                        .push("StatusText", state.as_str());
                    core.events.publish(e);
                }
            });
            if let Some((id, _)) = self.core.watch_hint(&hint.context, &hint.exten, callback) {
                ids.push(id);
            }
        }
    }

    fn unwatch_hints(&self) {
        for id in self.hint_watches.lock().drain(..) {
            self.core.unwatch_hint(id);
        }
    }

    /// Hands one event to every session reading its class: rendered once,
    /// queued without waiting; a full queue disconnects its session.
    fn deliver(&self, e: &sirius_core::events::Event) {
        let class = crate::events::class_of(&e.name);
        let mut text: Option<Arc<str>> = None;
        for h in self.sessions.lock().iter() {
            if !Perms(h.mask.load(Ordering::Relaxed)).intersects(class) {
                continue;
            }
            let t = text
                .get_or_insert_with(|| {
                    crate::events::render(e, self.settings.general.timestampevents).into()
                })
                .clone();
            if let Err(mpsc::error::TrySendError::Full(_)) = h.queue.try_send(t) {
                if h.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!(
                        "AMI: session from {} reads events too slowly ({EVENT_QUEUE} waiting): disconnecting it",
                        h.remote.ip()
                    );
                }
                h.kick.notify_one();
            }
        }
    }

    async fn connection(self: Arc<Self>, stream: TcpStream, remote: SocketAddr) {
        let general = &self.settings.general;
        if self.unauthenticated.fetch_add(1, Ordering::Relaxed) >= general.authlimit {
            self.unauthenticated.fetch_sub(1, Ordering::Relaxed);
            log::warn!(
                "AMI: {} connections are not logged in yet (authlimit): closing the one from {}",
                general.authlimit,
                remote.ip()
            );
            return;
        }
        let local = stream.local_addr().unwrap_or(self.local);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, mut events) = mpsc::channel::<Arc<str>>(EVENT_QUEUE);
        let handle = Arc::new(Handle {
            id,
            remote,
            started: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            since: Instant::now(),
            user: Mutex::new(None),
            perms: Mutex::new((Perms::NONE, Perms::NONE)),
            mask: AtomicU32::new(0),
            queue,
            kick: Notify::new(),
            dropped: AtomicU64::new(0),
        });
        self.sessions.lock().push(handle.clone());
        let session = Session::new(id, local, remote, self.settings.clone());
        self.run(stream, session, &handle, &mut events).await;
        self.sessions.lock().retain(|h| h.id != id);
        // A session that logged in gave its place back then (`sync`).
        if handle.user.lock().is_none() {
            self.unauthenticated.fetch_sub(1, Ordering::Relaxed);
        }
        self.listeners_changed.notify_one();
        let user = handle.user.lock().clone();
        if let Some(user) = user {
            let display = self
                .settings
                .users
                .get(&user)
                .and_then(|u| u.displayconnects)
                .unwrap_or(general.displayconnects);
            if display {
                sirius_abi::verbose!(
                    2,
                    "Manager '{}' logged off from {}",
                    sirius_abi::security::log_safe(&user),
                    remote.ip()
                );
            }
        }
    }

    /// The connection's loop, until the session or the socket ends.
    async fn run(
        &self,
        stream: TcpStream,
        mut session: Session,
        handle: &Arc<Handle>,
        events: &mut mpsc::Receiver<Arc<str>>,
    ) {
        let (mut rd, mut wr) = stream.into_split();
        let (done_tx, mut done) = mpsc::channel::<String>(64);
        let auth_deadline = tokio::time::Instant::now() + self.settings.general.authtimeout;
        let mut framer = Framer::new();
        let mut buf = vec![0u8; 8192];
        if write(&mut wr, &banner(), session.writetimeout())
            .await
            .is_err()
        {
            return;
        }
        loop {
            let authed = session.state() == State::Authenticated;
            tokio::select! {
                r = rd.read(&mut buf) => {
                    let n = match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let mut msgs = Vec::new();
                    framer.push(&buf[..n], &mut msgs);
                    if std::mem::take(&mut framer.discarded) > 0 {
                        log::warn!("Discarding message from {}. Line too long", handle.remote.ip());
                    }
                    for m in msgs {
                        // Per message: a Login and more actions may share a read.
                        let was_authed = session.state() == State::Authenticated;
                        let backend = self.backend.clone();
                        let Ok((s, outs)) = tokio::task::spawn_blocking(move || {
                            let outs = session.handle(&m, &*backend);
                            (session, outs)
                        })
                        .await
                        else {
                            // The action panicked: the session is lost with it.
                            log::error!("AMI: an action from {} failed; closing its session", handle.remote.ip());
                            return;
                        };
                        session = s;
                        self.sync(&session, handle, was_authed);
                        for o in outs {
                            match o {
                                Output::Write(t) => {
                                    if write(&mut wr, &t, session.writetimeout()).await.is_err() {
                                        return;
                                    }
                                }
                                Output::Pause => tokio::time::sleep(Duration::from_secs(1)).await,
                                Output::Close => {
                                    let _ = wr.shutdown().await;
                                    return;
                                }
                                Output::AwaitOriginate(p) => {
                                    tokio::spawn(await_originate(self.core.clone(), p, done_tx.clone()));
                                }
                            }
                        }
                    }
                }
                Some(t) = events.recv() => {
                    if write(&mut wr, &t, session.writetimeout()).await.is_err() {
                        return;
                    }
                }
                Some(t) = done.recv() => {
                    if write(&mut wr, &t, session.writetimeout()).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(auth_deadline), if !authed => {
                    sirius_abi::verbose!(
                        2,
                        "Client from {}, failed to authenticate in {} seconds",
                        handle.remote.ip(),
                        self.settings.general.authtimeout.as_secs()
                    );
                    return;
                }
                _ = handle.kick.notified() => return,
            }
        }
    }

    /// The handle follows the session (user, classes, event mask); a
    /// login frees its `authlimit` place; a change of listeners wakes the
    /// fan-out.
    fn sync(&self, s: &Session, h: &Handle, was_authed: bool) {
        let now_authed = s.state() == State::Authenticated;
        if now_authed && !was_authed {
            self.unauthenticated.fetch_sub(1, Ordering::Relaxed);
            *h.user.lock() = s.username().map(str::to_string);
            if let Some(u) = s.username().and_then(|n| self.settings.users.get(n)) {
                *h.perms.lock() = (u.read, u.write);
            }
        }
        let mask = s.event_mask().0;
        if h.mask.swap(mask, Ordering::Relaxed) != mask {
            self.listeners_changed.notify_one();
        }
    }
}

/// Writes, or fails when the client has not taken it within `timeout`.
async fn write(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    text: &str,
    timeout: Duration,
) -> Result<(), ()> {
    match tokio::time::timeout(timeout, w.write_all(text.as_bytes())).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Waits (holding no thread) for an originated call to be answered or to
/// end, then sends its `OriginateResponse` (after the response, for a
/// synchronous Originate).
async fn await_originate(core: Arc<Core>, p: PendingOriginate, done: mpsc::Sender<String>) {
    let signal = sirius_core::channels::Signal::new();
    core.channels.watch(&[p.chan], &signal);
    let deadline = tokio::time::Instant::now()
        + sirius_core::originate::ANSWER_TIMEOUT
        + Duration::from_secs(5);
    let outcome = loop {
        match core.channels.read(p.chan, |c| c.answered.is_some()) {
            Some(true) => break Ok(()),
            Some(false) => {}
            None => {
                break Err(core
                    .channels
                    .ended_cause(p.chan)
                    .unwrap_or(sirius_abi::Cause::NORMAL_CLEARING))
            }
        }
        if tokio::time::timeout_at(deadline, signal.raised())
            .await
            .is_err()
        {
            break Err(sirius_abi::Cause::NO_ANSWER);
        }
    };
    core.channels.unwatch(&[p.chan], &signal);
    let (ok, reason) = match outcome {
        Ok(()) => (true, 4),
        Err(c) => (false, crate::actions::reason_of(c)),
    };
    let mut text = String::new();
    if p.sync {
        text = if ok {
            Reply::ack(&p.action, "Originate successfully queued")
        } else {
            Reply::error(&p.action, "Originate failed")
        };
    }
    text.push_str(&crate::actions::originate_response(
        &p.action,
        ok,
        &p.name,
        &p.uniqueid,
        reason,
    ));
    let _ = done.send(text).await;
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
