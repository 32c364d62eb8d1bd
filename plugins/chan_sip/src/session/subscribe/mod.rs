//! Subscriptions (RFC 6665): the usage of the dialog a SUBSCRIBE makes. A
//! phone watches `6001` and is told, by NOTIFY, whenever the hint of `6001`
//! changes (idle, ringing, in use, on hold, unavailable): a dialog-info body
//! for `Event: dialog` (RFC 4235 busy lamps), a PIDF one for `Event:
//! presence` (RFC 3856). Or it watches its own mailboxes (`Event:
//! message-summary`, RFC 3842) and is told their message counts: the
//! mailboxes are the subscriber's `mailbox` key, whatever the Request-URI
//! names, as in chan_sip.
//!
//! ```text
//!  SUBSCRIBE sip:6001@pbx  Event: dialog|presence|message-summary (no dialog)
//!    │ another package ─▶ 489 (Allow-Events: dialog, presence, message-summary)
//!    │ Accept without the package's body type ─▶ 406
//!    │ digest as for an INVITE (401 first; unknown users the same)
//!    │ allowsubscribe = no ─▶ 403        Expires < subminexpiry ─▶ 423
//!    │ no hint 6001 in the subscriber's subscribecontext ─▶ 404
//!    │ message-summary from a peer without a mailbox ─▶ 404
//!    ▼
//!  200 (Expires: granted), NOTIFY active;expires=N (version 0)
//!    │
//!  Active ─ the hint (mailboxes) change ─▶ NOTIFY (one in flight; changes meanwhile
//!    │                           collapse to the latest state)
//!    │    ─ SUBSCRIBE in the dialog ─▶ 200, NOTIFY of the state now
//!    │    ─ a NOTIFY answered 481, or never answered (Timer F) ─▶ gone
//!    ├─ SUBSCRIBE Expires: 0 ─▶ 200, NOTIFY terminated;reason=timeout ─▶ gone
//!    ├─ no refresh by the deadline ─▶ NOTIFY terminated;reason=timeout ─▶ gone
//!    ├─ a refresh finds the hint gone ─▶ 404, NOTIFY terminated;reason=noresource
//!    └─ the module stops ─▶ NOTIFY terminated;reason=deactivated ─▶ gone
//! ```
//!
//! Where Sirius follows RFC 6665 over chan_sip's habits: `489` names the
//! packages it has in `Allow-Events`; `Subscription-State: active` says
//! how long is left (`expires=`); a SUBSCRIBE without `Accept` gets the
//! package's default body, dialog-info (chan_sip answers it 489). Like
//! chan_sip: the 200 is followed at once by a NOTIFY, a refresh too; the
//! subscriber is authenticated as for a call, by From user; a NOTIFY's
//! other errors leave the subscription as it was.
//!
//! The hint's state and the mailboxes' counts are the core's
//! (`Env::hint_watch`, `Env::mwi_watch`): their changes come in as
//! [`crate::endpoint::Input::HintChanged`] and
//! [`crate::endpoint::Input::MwiChanged`] on this subscription's shard, the
//! one its Call-ID routes to.

use crate::endpoint::{ClientUsage, Endpoint, Env, HostAction, Now};
use sirius_sip::dialog::DialogId;
use sirius_sip::dialog_info::Granted;
use sirius_sip::message::{build, HeaderName, Message, Method, Uri};
use sirius_sip::mwi::Counts;
use sirius_sip::refer::SubState;
use sirius_sip::transaction::{Transport, TxId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod package;
mod view;
pub(crate) use package::PACKAGES;
use package::{accepts, body, Package, Source};
pub use view::{render_subscriptions, subscriptions_table};

/// Subscriptions one shard holds at most: a bound on what subscribers can
/// make us keep (each also holds a dialog and a hint watch). Past it, a new
/// one gets `503`.
const MAX_SUBSCRIPTIONS: usize = 20_000;

/// A watch the core keeps for a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// A hint's (`Env::hint_watch`).
    Hint(u64),
    /// Mailboxes' (`Env::mwi_watch`).
    Mailbox(u64),
}

/// One subscriber watching one hint, or its mailboxes.
pub(crate) struct Subscription {
    /// The dialog the SUBSCRIBE made: where the NOTIFYs go.
    dialog: DialogId,
    /// Where the subscriber's requests came from (NOTIFYs go there when no
    /// route set says otherwise).
    dest: SocketAddr,
    transport: Transport,
    /// Who subscribed: the From user (`sip show subscriptions`' User).
    user: String,
    /// What it subscribed to.
    package: Package,
    /// The SUBSCRIBE's `Event` value, `id` parameter included: every
    /// NOTIFY carries it back (RFC 6665 §8.2.1).
    event: String,
    /// The hint watched: its extension and context.
    exten: String,
    context: String,
    /// The URI subscribed to (the SUBSCRIBE's To, without parameters): the
    /// body's `entity`.
    entity: String,
    /// The core's watch, while there is one.
    watch: Option<Watch>,
    /// What it watches, as last heard.
    source: Source,
    /// The mailboxes of a message-summary subscription.
    mailbox: Option<String>,
    /// Where messages are fetched (`Message-Account`: the subscriber's
    /// `vmexten` at our address).
    account: String,
    /// What the last NOTIFY showed.
    sent: Option<package::Shown>,
    /// The next NOTIFY's `version`.
    version: u32,
    /// Seconds granted by the last SUBSCRIBE.
    granted: u32,
    /// When it ends without a refresh.
    expires: Instant,
    /// A NOTIFY waits for its answer.
    in_flight: bool,
    /// The next NOTIFY goes even if the lamp is unchanged (a refresh asks
    /// for the state).
    force: bool,
    /// It ends: the reason the final NOTIFY gives.
    ending: Option<&'static str>,
    /// The final NOTIFY went out.
    final_sent: bool,
}

/// A shard's subscriptions, by key and by dialog.
#[derive(Default)]
pub(crate) struct Subscriptions {
    subs: HashMap<u64, Subscription>,
    by_dialog: HashMap<DialogId, u64>,
    next: u64,
}

impl Subscriptions {
    /// How many.
    pub(crate) fn len(&self) -> usize {
        self.subs.len()
    }

    /// The subscription of dialog `id`.
    pub(crate) fn by_dialog(&self, id: &DialogId) -> Option<u64> {
        self.by_dialog.get(id).copied()
    }
}

/// The NOTIFY of subscription `key`: its answer lets the next one go.
pub(crate) struct SubNotify {
    key: u64,
}

impl ClientUsage for SubNotify {
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, _: &Message, code: u16) {
        if code < 200 {
            return ep.own(tx, self);
        }
        ep.sub_notify_answered(now, self.key, code);
    }

    /// No answer (Timer F) or the transport failed: the subscriber is gone
    /// (RFC 6665 §4.2.2).
    fn on_timeout(self, ep: &mut Endpoint, _: Now, _: TxId) {
        ep.sub_forget(self.key);
    }
}

/// The `Expires` asked for; `None` when absent or unreadable (the default
/// is granted then).
fn expires_asked(msg: &Message) -> Option<u32> {
    msg.headers
        .get(&HeaderName::Expires)
        .and_then(|v| v.trim().parse().ok())
}

/// The SUBSCRIBE's To URI without its parameters: what the body names.
fn entity(msg: &Message) -> String {
    let uri = msg.to_ref().map(|t| t.uri.to_string()).unwrap_or_default();
    match uri.split_once(';') {
        Some((bare, _)) => bare.to_string(),
        None => uri,
    }
}

impl Endpoint {
    /// A SUBSCRIBE outside any dialog (see the module's diagram).
    pub(crate) fn on_subscribe(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
    ) {
        let Some(package) = Package::of(msg) else {
            let allow = [(HeaderName::AllowEvents, PACKAGES.to_string())];
            return self.respond(now, tx, msg, source, (489, "Bad Event"), &allow);
        };
        if self
            .shared
            .stopping
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            // Unloading: every subscription is being ended, and a new one
            // would hold a watch nobody ends.
            let retry = [(HeaderName::RetryAfter, "60".to_string())];
            return self.respond(now, tx, msg, source, (503, "Service Unavailable"), &retry);
        }
        if !accepts(msg, package) {
            let accept = [(HeaderName::Accept, package.content_type().to_string())];
            return self.respond(now, tx, msg, source, (406, "Not Acceptable"), &accept);
        }
        let Some(peer) = self.authenticated_peer(now, (tx, msg), (source, transport), "SUBSCRIBE")
        else {
            return;
        };
        if !peer.allowsubscribe {
            return self.respond(now, tx, msg, source, (403, "Forbidden (policy)"), &[]);
        }
        let bounds = self.shared.running().cfg.general.subscription_bounds();
        let granted = bounds.grant(expires_asked(msg));
        if let Granted::TooBrief(min) = granted {
            let min = [(HeaderName::MinExpires, min.to_string())];
            return self.respond(now, tx, msg, source, (423, "Interval Too Brief"), &min);
        }
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            log::warn!("SUBSCRIBE from {source} refused: {MAX_SUBSCRIPTIONS} subscriptions held");
            return self.respond(now, tx, msg, source, (503, "Service Unavailable"), &[]);
        }
        let exten = Uri::parse(msg.request_uri().unwrap_or_default())
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_default();
        let account = self.shared.contact_uri(&peer.vmexten, transport);
        let (context, user, mailbox) = (peer.subscribecontext, peer.name, peer.mailbox);
        let key = self.subscriptions.next;
        // RFC 7463's form to a line that is not shared is a plain busy lamp.
        let package = match package {
            Package::SharedDialog if self.shared_line(Some(&exten)).is_none() => Package::Dialog,
            p => p,
        };
        let (watch, first) = match package {
            Package::CallInfo | Package::SharedDialog => {
                // A shared line's phones watch their own line: the
                // Request-URI names it, and the subscriber is it.
                if self.shared_line(Some(&exten)).is_none() {
                    return self.respond(now, tx, msg, source, (404, "Not Found"), &[]);
                }
                if user != exten {
                    let status = (403, "Forbidden (not a member of the line)");
                    return self.respond(now, tx, msg, source, status, &[]);
                }
                (None, Source::Line)
            }
            Package::MessageSummary => {
                let Some(boxes) = &mailbox else {
                    let status = (404, "Not Found (no mailbox)");
                    return self.respond(now, tx, msg, source, status, &[]);
                };
                let target = crate::endpoint::MwiTarget::Subscription(key);
                let Some((w, counts)) = env.mwi_watch(boxes, target) else {
                    return self.respond(now, tx, msg, source, (404, "Not Found"), &[]);
                };
                (Some(Watch::Mailbox(w)), Source::Mailbox(counts))
            }
            _ => {
                let Some((w, state)) = env.hint_watch(&context, &exten, key) else {
                    log::debug!("SUBSCRIBE from {source} to {exten}@{context}: no such hint");
                    return self.respond(now, tx, msg, source, (404, "Not Found"), &[]);
                };
                (Some(Watch::Hint(w)), Source::Hint(state))
            }
        };
        self.subscriptions.next += 1;
        // The subscription's dialog, made by this 200.
        let tag = self.tokens.token();
        let contact = self.shared.contact_uri(&exten, transport);
        let dialog = match sirius_sip::dialog::Dialog::from_uas(msg, &tag, &contact, 0) {
            Ok(d) => d,
            Err(e) => {
                if let Some(w) = watch {
                    self.unwatch(w);
                }
                log::info!("SUBSCRIBE from {source}: no dialog can be made ({e})");
                return self.respond(now, tx, msg, source, (400, "Bad Request"), &[]);
            }
        };
        let id = dialog.id.clone();
        self.dialogs.insert(dialog);
        let secs = match granted {
            Granted::For(n) => n,
            _ => 0,
        };
        let mut ok = build::response(msg, 200, "OK", Some(source));
        build::set_to_tag(&mut ok, &tag);
        ok.push(HeaderName::Expires, secs.to_string());
        ok.push(HeaderName::Contact, format!("<{contact}>"));
        self.send_response(now, tx, ok);
        let expires = now.mono + Duration::from_secs(u64::from(secs));
        let sub = Subscription {
            dialog: id.clone(),
            dest: source,
            transport,
            user,
            package,
            event: package::echoed_event(
                msg.headers.get(&HeaderName::Event).unwrap_or_default(),
                package,
            ),
            exten,
            context,
            entity: entity(msg),
            watch,
            source: first,
            mailbox,
            account,
            sent: None,
            version: 0,
            granted: secs,
            expires,
            in_flight: false,
            force: true,
            ending: None,
            final_sent: false,
        };
        log::debug!(
            "{} subscribes to {}@{} for {secs} s (Call-ID {})",
            sub.user,
            sub.exten,
            sub.context,
            id.call_id
        );
        if package == Package::MessageSummary {
            // Its peer's light is this subscription's now: no unsolicited
            // NOTIFYs (crate::mwi) while it lasts.
            self.shared.mwi.subscribed(&sub.user, true);
        }
        self.subscriptions.subs.insert(key, sub);
        self.subscriptions.by_dialog.insert(id, key);
        if secs == 0 {
            // A fetch (RFC 6665 §4.4.3): the state now, and it is over.
            self.sub_end(key, "timeout");
        } else {
            self.sub_timers.insert((expires, key));
        }
        self.sub_flush(now, key);
    }

    /// A SUBSCRIBE in subscription `key`'s dialog: a refresh, or `Expires:
    /// 0` ending it. Either way a NOTIFY of the state now follows the 200.
    pub(crate) fn on_resubscribe(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        key: u64,
    ) {
        let bounds = self.shared.running().cfg.general.subscription_bounds();
        let Some(sub) = self.subscriptions.subs.get_mut(&key) else {
            return self.no_such_call(now, tx, msg, source);
        };
        let asked = match Package::of(msg) {
            // Served as plain dialog from the start (not a shared line).
            Some(Package::SharedDialog) if sub.package == Package::Dialog => Some(Package::Dialog),
            p => p,
        };
        if asked != Some(sub.package) {
            // Another package in this dialog would be a second
            // subscription sharing it, which we do not make.
            let allow = [(HeaderName::AllowEvents, sub.package.event().to_string())];
            return self.respond(now, tx, msg, source, (489, "Bad Event"), &allow);
        }
        if sub.ending.is_some() {
            // Already ending: as if it were gone (RFC 6665 §4.1.2.2).
            return self.respond(
                now,
                tx,
                msg,
                source,
                (481, "Subscription Does Not Exist"),
                &[],
            );
        }
        let secs = match bounds.grant(expires_asked(msg)) {
            Granted::TooBrief(min) => {
                let min = [(HeaderName::MinExpires, min.to_string())];
                return self.respond(now, tx, msg, source, (423, "Interval Too Brief"), &min);
            }
            Granted::End => 0,
            Granted::For(n) => n,
        };
        let (context, exten) = (sub.context.clone(), sub.exten.clone());
        if secs > 0 && matches!(sub.source, Source::Hint(_)) {
            // The hint as the dialplan has it now (a reload may have
            // changed its devices, or removed it): a new watch for the old.
            let Some((watch, state)) = env.hint_watch(&context, &exten, key) else {
                self.respond(now, tx, msg, source, (404, "Not Found"), &[]);
                self.sub_end(key, "noresource");
                return self.sub_flush(now, key);
            };
            let Some(sub) = self.subscriptions.subs.get_mut(&key) else {
                return;
            };
            sub.source = Source::Hint(state);
            if let Some(old) = sub.watch.replace(Watch::Hint(watch)) {
                self.unwatch(old);
            }
        } else if secs > 0 && self.mailbox_moved(key) {
            // The subscriber's `mailbox` changed in a reload: its own
            // mailboxes now, or none left to tell it of.
            let boxes = self.subscriptions.subs.get(&key).and_then(|s| {
                let running = self.shared.running();
                running.peers.get(&s.user).and_then(|p| p.mailbox.clone())
            });
            let target = crate::endpoint::MwiTarget::Subscription(key);
            let watched = boxes
                .as_ref()
                .and_then(|b| env.mwi_watch(b, target).map(|w| (b.clone(), w)));
            let Some((boxes, (watch, counts))) = watched else {
                self.respond(now, tx, msg, source, (404, "Not Found (no mailbox)"), &[]);
                self.sub_end(key, "noresource");
                return self.sub_flush(now, key);
            };
            let Some(sub) = self.subscriptions.subs.get_mut(&key) else {
                return;
            };
            sub.source = Source::Mailbox(counts);
            sub.mailbox = Some(boxes);
            if let Some(old) = sub.watch.replace(Watch::Mailbox(watch)) {
                self.unwatch(old);
            }
        }
        let Some(sub) = self.subscriptions.subs.get_mut(&key) else {
            return;
        };
        sub.granted = secs;
        sub.force = true;
        let dialog = sub.dialog.clone();
        if secs > 0 {
            self.sub_timers.remove(&(sub.expires, key));
            sub.expires = now.mono + Duration::from_secs(u64::from(secs));
            self.sub_timers.insert((sub.expires, key));
        }
        let contact = self.dialogs.get_mut(&dialog).map(|d| {
            d.refresh_target(msg);
            d.local_contact.clone()
        });
        let mut ok = build::response(msg, 200, "OK", Some(source));
        ok.push(HeaderName::Expires, secs.to_string());
        // A target refresh's 2xx names our target (RFC 6665 §4.1.2.1), the
        // last one too.
        if let Some(c) = contact {
            ok.push(HeaderName::Contact, format!("<{c}>"));
        }
        self.send_response(now, tx, ok);
        if secs == 0 {
            self.sub_end(key, "timeout");
        }
        self.sub_flush(now, key);
    }

    /// The hint subscription `key` watches changed to `state`.
    pub(crate) fn hint_changed(&mut self, now: Now, key: u64, state: i32) {
        if let Some(sub) = self.subscriptions.subs.get_mut(&key) {
            sub.source = Source::Hint(state);
            self.sub_flush(now, key);
        }
    }

    /// The mailboxes subscription `key` watches have `counts` now.
    pub(crate) fn mailbox_changed(&mut self, now: Now, key: u64, counts: Counts) {
        if let Some(sub) = self.subscriptions.subs.get_mut(&key) {
            sub.source = Source::Mailbox(counts);
            self.sub_flush(now, key);
        }
    }

    /// Whether message-summary subscription `key` watches other mailboxes
    /// than its peer's `mailbox` key names now (a reload changed it).
    fn mailbox_moved(&self, key: u64) -> bool {
        let Some(sub) = self.subscriptions.subs.get(&key) else {
            return false;
        };
        if sub.package != Package::MessageSummary {
            return false;
        }
        let running = self.shared.running();
        let now = running
            .peers
            .get(&sub.user)
            .and_then(|p| p.mailbox.as_ref());
        now != sub.mailbox.as_ref()
    }

    /// Shared line `line` changed: its call-info subscribers on this shard
    /// are told the new `Call-Info`.
    pub(crate) fn line_subscribers_flush(&mut self, line: &str) {
        let now = self.clock();
        let keys: Vec<u64> = self
            .subscriptions
            .subs
            .iter()
            .filter(|(_, s)| s.source == Source::Line && s.exten == line)
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.sub_flush(now, key);
        }
    }

    /// Ends a watch of the core's.
    fn unwatch(&mut self, w: Watch) {
        self.host(match w {
            Watch::Hint(id) => HostAction::HintUnwatch(id),
            Watch::Mailbox(id) => HostAction::MwiUnwatch(id),
        });
    }

    /// Subscription `key` ends for `reason`: its watch goes now, its final
    /// NOTIFY when none is in flight.
    fn sub_end(&mut self, key: u64, reason: &'static str) {
        let Some(sub) = self.subscriptions.subs.get_mut(&key) else {
            return;
        };
        if sub.ending.is_none() {
            sub.ending = Some(reason);
        }
        if let Some(w) = sub.watch.take() {
            self.unwatch(w);
        }
    }

    /// Sends subscription `key` the NOTIFY it is owed, if one is and none
    /// is in flight: the state when its lamp changed (or a refresh asked
    /// for it), the final one once it ends.
    fn sub_flush(&mut self, now: Now, key: u64) {
        let Some(sub) = self.subscriptions.subs.get(&key) else {
            return;
        };
        if sub.in_flight || sub.final_sent {
            return;
        }
        let shown = match sub.source {
            Source::Line if sub.package == Package::SharedDialog => {
                package::Shown::Shared(self.shared.lines.shared_dialogs(&sub.exten))
            }
            Source::Line => {
                let uri = self.line_uri(&sub.exten);
                package::Shown::CallInfo(self.shared.lines.call_info(&sub.exten, &uri))
            }
            source => sub.package.shown(source),
        };
        let Some(sub) = self.subscriptions.subs.get(&key) else {
            return;
        };
        let last = sub.ending.is_some();
        if !last && !sub.force && sub.sent.as_ref() == Some(&shown) {
            return;
        }
        let state = match sub.ending {
            Some(reason) => SubState::Terminated {
                reason: reason.into(),
            },
            None => SubState::Active {
                expires: sub.expires.saturating_duration_since(now.mono).as_secs() as u32,
            },
        };
        let body = body(
            shown.clone(),
            &sub.entity,
            &sub.exten,
            sub.version,
            &sub.account,
        );
        let (package, event) = (sub.package, sub.event.clone());
        let (dialog, dest, transport) = (sub.dialog.clone(), sub.dest, sub.transport);
        let via = self.via(transport);
        let Some(d) = self.dialogs.get_mut(&dialog) else {
            return self.sub_forget(key);
        };
        let mut req = d.request(Method::Notify, &via, None);
        req.push(HeaderName::Event, event);
        req.push(HeaderName::SubscriptionState, state.to_string());
        match &shown {
            // A call-info NOTIFY says it all in its Call-Info header.
            package::Shown::CallInfo(v) => {
                req.push(HeaderName::CallInfo, v);
            }
            _ => req.set_body(package.content_type(), body.into_bytes()),
        }
        let hop = self.route_hop(&req).unwrap_or(dest);
        let sent = self.send_client(req, hop, transport, SubNotify { key }, now.mono);
        let Some(sub) = self.subscriptions.subs.get_mut(&key) else {
            return;
        };
        sub.version += 1;
        sub.sent = Some(shown);
        sub.force = false;
        sub.in_flight = sent.is_some();
        sub.final_sent = last;
        if sent.is_none() {
            self.sub_forget(key);
        }
    }

    /// A NOTIFY of subscription `key` was answered `code`: an answer that
    /// ends the usage (481, and the others RFC 5057 §5.1 lists) ends it;
    /// after the final one it is over; otherwise the next state, if any,
    /// goes (other errors change nothing, as in chan_sip).
    fn sub_notify_answered(&mut self, now: Now, key: u64, code: u16) {
        let Some(sub) = self.subscriptions.subs.get_mut(&key) else {
            return;
        };
        sub.in_flight = false;
        let ends_usage = matches!(code, 404 | 405 | 410 | 416 | 480..=485 | 489 | 501 | 604);
        if ends_usage || sub.final_sent {
            if ends_usage {
                log::debug!(
                    "{}'s subscription to {} ended by {code}",
                    sub.user,
                    sub.exten
                );
            }
            return self.sub_forget(key);
        }
        self.sub_flush(now, key);
    }

    /// Drops subscription `key`: its watch, its dialog.
    pub(crate) fn sub_forget(&mut self, key: u64) {
        let Some(sub) = self.subscriptions.subs.remove(&key) else {
            return;
        };
        self.subscriptions.by_dialog.remove(&sub.dialog);
        self.sub_timers.remove(&(sub.expires, key));
        if let Some(w) = sub.watch {
            self.unwatch(w);
        }
        if sub.package == Package::MessageSummary {
            self.shared.mwi.subscribed(&sub.user, false);
        }
        self.dialogs.remove(&sub.dialog);
    }

    /// A subscription's deadline came (checked against its own: a refresh
    /// leaves the old entry behind): it ends, `reason=timeout`.
    pub(crate) fn sub_timer_due(&mut self, now: Now, key: u64, at: Instant) {
        if self
            .subscriptions
            .subs
            .get(&key)
            .is_some_and(|s| s.expires == at && s.ending.is_none())
        {
            self.sub_end(key, "timeout");
            self.sub_flush(now, key);
        }
    }

    /// The module stops: every subscriber is told its subscription is over
    /// (`deactivated`: it may subscribe again at once, RFC 6665 §4.1.3, and
    /// finds the module back after a reload).
    pub(crate) fn end_subscriptions(&mut self, now: Now) {
        let keys: Vec<u64> = self.subscriptions.subs.keys().copied().collect();
        for key in keys {
            self.sub_end(key, "deactivated");
            self.sub_flush(now, key);
        }
    }

    /// Whether a subscription still waits to send or hear back its final
    /// NOTIFY (the driver's shutdown waits for them, briefly).
    pub fn subscriptions_ending(&self) -> bool {
        self.subscriptions.subs.values().any(|s| s.ending.is_some())
    }
}
