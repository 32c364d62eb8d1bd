//! Blind transfer by REFER (RFC 3515): the REFER usage of a call's dialog
//! and the implicit subscription that reports the transfer's progress.
//!
//! ```text
//!  REFER in a call's dialog
//!    │ no session / guest ─▶ 481 / 403      allowtransfer = no ─▶ 603
//!    │ Refer-To missing, several, not sip/sips/tel ─▶ 400
//!    │ a transfer of this dialog still reported ─▶ 491, the 5th ─▶ 403
//!    ▼
//!  202 Accepted, NOTIFY "100 Trying" (active)
//!    │ core: blind_transfer(transferor, TRANSFER_CONTEXT or peer context, exten)
//!    ├─ refused (no such extension, not bridged) ─▶ final NOTIFY 404 / 503;
//!    │                                              the transferor keeps its call
//!    ▼ made: the transferee runs the target in the dialplan
//!  Reporting ── transferee's Ringing/Progress ─▶ NOTIFY 180 / 183 (active)
//!    │  bridged with an answered leg ─▶ final NOTIFY 200 OK
//!    │  its busy, congestion, hangup ─▶ final NOTIFY 486 / 503 / cause
//!    │  180 s and nothing final ─▶ final NOTIFY (last status), reason=timeout
//!    ▼ final NOTIFY answered (or failed: 481, 408, Timer F)
//!  Ending: the transferor's BYE (the seed's order), or ours 4 s later
//! ```
//!
//! One NOTIFY is in flight at a time (RFC 6665 §4.2.2): a newer status
//! waits for the last one's answer, replacing any older one waiting; the
//! final one is always sent. The dialog outlives the transferor's BYE while
//! the subscription reports (RFC 5057 dialog usages): `on_bye` and
//! `send_bye` leave a dialog a subscription holds in the table.
//!
//! The progress is read on the transferee: the core's indications, bridge
//! and hangup of that channel, as Asterisk's `res_pjsip_refer` watches the
//! transferee's frames, and the end of its call under it (487). The
//! transferee is usually on this shard (it was the transferor's bridge
//! partner, and both legs of a Dial share a shard); after calls were joined
//! across shards by an earlier transfer it may be on another, which then
//! reports back (`ShardMsg::Watch`, `ShardMsg::Progress`). A transferee
//! whose new dialplan ends normally without a bridge (an IVR, a Playback)
//! got where it was sent: `200 OK`.

use crate::causes::cause_to_sip;
use crate::endpoint::{ClientUsage, Endpoint, Env, Now};
use sirius_abi::{Cause, ChannelId};
use sirius_sip::dialog::{DialogId, DialogState};
use sirius_sip::message::{HeaderName, Message, Method};
use sirius_sip::refer::{refer_sub_false, sipfrag, SubState, REFER_SUB, SIPFRAG};

pub(crate) use super::blind::{blind_target, refused_transfer, single_refer_to, BlindTarget};
use sirius_sip::transaction::{Transport, TxId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a transfer is reported at most (`Subscription-State:
/// active;expires=180`); then the last status goes as the final one.
const REPORT_FOR: Duration = Duration::from_secs(180);
/// After a transfer made and reported, how long the transferor has to
/// send its BYE (as seed 002 shows) before we end its leg ourselves.
pub(crate) const TRANSFEROR_GRACE: Duration = Duration::from_secs(4);
/// REFERs accepted in one dialog (a bound on what one call can start).
const REFERS_PER_DIALOG: u8 = 4;
/// NOTIFYs sent for one transfer, the final one included.
const NOTIFIES_PER_TRANSFER: u8 = 8;

/// One transfer being reported to its transferor.
pub(crate) struct ReferSub {
    /// The transferor's dialog, where the NOTIFYs go.
    dialog: DialogId,
    /// Where the transferor's requests go when no route set says otherwise.
    dest: SocketAddr,
    transport: Transport,
    /// The leg that sent the REFER (none for a REFER outside a dialog:
    /// click-to-dial, `third_party.rs`).
    transferor: Option<ChannelId>,
    /// Its bridge partner while its progress is watched.
    transferee: Option<ChannelId>,
    /// The core moved the transferee: the transferor's leg has nothing
    /// left to do once the outcome is reported.
    moved: bool,
    /// `Event: refer;id=<CSeq of the REFER>` from a dialog's second REFER on.
    event_id: Option<u32>,
    /// The last status sent.
    sent: Option<u16>,
    /// The next one, waiting for the NOTIFY in flight: (code, reason, final).
    queued: Option<(u16, String, bool)>,
    /// A NOTIFY waits for its answer.
    in_flight: bool,
    /// The final NOTIFY went out (`terminated`).
    final_sent: bool,
    /// Why the subscription ends (`noresource`, `timeout`).
    end_reason: &'static str,
    /// When reporting stops.
    expires: Instant,
    /// NOTIFYs sent.
    notifies: u8,
    /// The transferor's leg ends at this instant (after the final report)
    /// unless its own BYE came first.
    end_transferor_at: Option<Instant>,
    /// Another shard is asked for the call a Replaces names; no answer by
    /// then is "no such call" (`attended.rs`).
    finding: Option<Instant>,
    /// `Refer-Sub: false` (RFC 4488): nothing is reported; the outcome
    /// only ends the transferor's leg.
    silent: bool,
}

/// The endpoint's transfers, by id, transferee and dialog.
#[derive(Default)]
pub(crate) struct Refers {
    subs: HashMap<u64, ReferSub>,
    by_transferee: HashMap<ChannelId, u64>,
    by_dialog: HashMap<DialogId, u64>,
    /// REFERs accepted per dialog (bounded by [`REFERS_PER_DIALOG`]);
    /// forgotten with the dialog's last transfer.
    per_dialog: HashMap<DialogId, u8>,
    next: u64,
    /// `Referred-By` for the INVITE of an outbound leg not placed yet (kept
    /// here, not in every session, for the few legs that have one).
    pub(crate) referred_by: HashMap<ChannelId, String>,
    /// Legs called for a REFER outside a dialog: their dialplan starts
    /// when they answer (`third_party.rs`).
    start_pbx: std::collections::HashSet<ChannelId>,
    /// Channels whose far end we asked to transfer (`refer_out.rs`): a
    /// NOTIFY reporting success ends them.
    pub(crate) referring: std::collections::HashSet<ChannelId>,
    /// Legs of ours whose progress another shard's transfer reports: that
    /// shard and its transfer's key.
    remote: HashMap<ChannelId, (usize, u64)>,
    /// An attended transfer's blind fallback (`blind_move`), for a
    /// consultation call found still ringing (semi-attended transfer).
    pub(crate) fallback: HashMap<u64, BlindTarget>,
    /// INVITEs with Replaces waiting for another shard's answer, by ticket
    /// (`replaces.rs`; tickets and transfer keys are one counter).
    pub(crate) replacing: HashMap<u64, crate::session::replaces::PendingReplace>,
}

impl Refers {
    /// Whether a transfer still reports in dialog `id`: the dialog stays
    /// in the table after a BYE.
    pub(crate) fn holds(&self, id: &DialogId) -> bool {
        self.by_dialog.contains_key(id)
    }

    /// Whether nothing is being transferred (the common case: the hooks on
    /// every input cost one check).
    pub(crate) fn is_empty(&self) -> bool {
        self.subs.is_empty() && self.remote.is_empty() && self.replacing.is_empty()
    }

    /// `chan`'s dialplan starts when it answers.
    pub(crate) fn start_pbx_on_answer(&mut self, chan: ChannelId) {
        self.start_pbx.insert(chan);
    }

    /// Whether `chan` was to start its dialplan on answer (once).
    pub(crate) fn take_start_pbx(&mut self, chan: ChannelId) -> bool {
        self.start_pbx.remove(&chan)
    }

    /// Dialog `id` is gone: its REFER count goes with it.
    pub(crate) fn dialog_gone(&mut self, id: &DialogId) {
        if !self.per_dialog.is_empty() {
            self.per_dialog.remove(id);
        }
    }

    /// Whether a transfer `key` is still being reported.
    pub(crate) fn exists(&self, key: u64) -> bool {
        self.subs.contains_key(&key)
    }

    /// Dialogs with a REFER count (tests: nothing is left behind).
    #[cfg(test)]
    pub(crate) fn counted_dialogs(&self) -> usize {
        self.per_dialog.len()
    }

    /// Whether `chan`'s progress is reported to somebody.
    pub(crate) fn watches(&self, chan: ChannelId) -> bool {
        self.by_transferee.contains_key(&chan) || self.remote.contains_key(&chan)
    }

    /// Whether transfer `key` moved a transferee (its report goes on).
    pub(crate) fn watches_any_for(&self, key: u64) -> bool {
        self.subs.get(&key).is_some_and(|s| s.moved)
    }

    /// Whether no leg has any transfer state at all (one check per ended
    /// session in the common case).
    pub(crate) fn is_idle(&self) -> bool {
        self.referred_by.is_empty() && self.start_pbx.is_empty() && self.referring.is_empty()
    }

    /// A leg ended: what was kept for it alone goes.
    pub(crate) fn forget_leg(&mut self, chan: ChannelId) {
        self.referred_by.remove(&chan);
        self.start_pbx.remove(&chan);
        self.referring.remove(&chan);
    }

    /// A fresh key or ticket.
    pub(crate) fn next_ticket(&mut self) -> u64 {
        self.next += 1;
        self.next - 1
    }

    /// Transfer `key` waits for another shard's answer until `at`.
    pub(crate) fn finding(&mut self, key: u64, at: Instant) {
        if let Some(s) = self.subs.get_mut(&key) {
            s.finding = Some(at);
        }
    }

    /// Another shard answered for transfer `key`: true when it still waited.
    pub(crate) fn found(&mut self, key: u64) -> bool {
        self.subs
            .get_mut(&key)
            .is_some_and(|s| s.finding.take().is_some())
    }

    /// The leg that sent transfer `key`'s REFER.
    pub(crate) fn transferor_of(&self, key: u64) -> Option<ChannelId> {
        self.subs.get(&key).and_then(|s| s.transferor)
    }

    /// The core made transfer `key` (attended): the transferor's leg has
    /// nothing left to do once it is told.
    pub(crate) fn made(&mut self, key: u64) {
        if let Some(s) = self.subs.get_mut(&key) {
            s.moved = true;
        }
    }

    /// Transfers in progress.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.subs.len()
    }
}

/// The NOTIFY of a transfer report: its answer lets the next one go.
pub(crate) struct ReferNotify {
    id: u64,
}

impl ClientUsage for ReferNotify {
    fn on_response(self, ep: &mut Endpoint, now: Now, tx: TxId, _: &Message, code: u16) {
        match code {
            100..=199 => ep.own(tx, self),
            200..=299 => ep.refer_notified(now, self.id),
            // 481, 408 and the like end the subscription (RFC 6665 §4.1.2.2).
            _ => ep.refer_sub_failed(now, self.id, code),
        }
    }

    fn on_timeout(self, ep: &mut Endpoint, now: Now, _: TxId) {
        ep.refer_sub_failed(now, self.id, 408);
    }
}

impl Endpoint {
    /// A REFER in the dialog of call `chan` (see the module's diagram).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_refer(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        tx: TxId,
        msg: &Message,
        source: SocketAddr,
        transport: Transport,
        id: &DialogId,
        chan: Option<ChannelId>,
    ) {
        let Some((chan, s)) = chan.and_then(|c| Some((c, self.sessions.get(c)?))) else {
            return self.no_such_call(now, tx, msg, source);
        };
        let confirmed = self
            .dialogs
            .get(id)
            .is_some_and(|d| d.state == DialogState::Confirmed);
        let (peer_name, dest) = (s.peer.clone(), s.dest);
        let running = self.shared.running();
        let peer = peer_name.as_ref().and_then(|p| running.peers.get(p));
        let refusal = match (confirmed, peer) {
            (false, _) => Some((481, "Call/Transaction Does Not Exist")),
            // A guest has no context of its own to transfer with.
            (true, None) => Some((403, "Forbidden")),
            (true, Some(p)) if !p.allowtransfer => Some((603, "Declined")),
            _ => None,
        };
        if let Some(status) = refusal {
            return self.respond(now, tx, msg, source, status, &[]);
        }
        let peer_context = peer.map(|p| p.context.clone()).unwrap_or_default();
        drop(running);
        let Some(refer_to) = single_refer_to(msg) else {
            log::info!(
                "REFER from {source} refused: Refer-To missing, repeated or not a sip, sips or tel URI"
            );
            return self.respond(now, tx, msg, source, (400, "Bad Request"), &[]);
        };
        if refer_to
            .replaces
            .as_ref()
            .is_some_and(|r| r.dialog_id() == *id)
        {
            // A call cannot replace itself.
            return self.respond(now, tx, msg, source, (400, "Bad Request"), &[]);
        }
        if self.refers.holds(id) {
            return self.respond(now, tx, msg, source, (491, "Request Pending"), &[]);
        }
        let count = self.refers.per_dialog.get(id).copied().unwrap_or(0);
        if count >= REFERS_PER_DIALOG {
            return self.respond(now, tx, msg, source, (403, "Forbidden"), &[]);
        }
        self.refers.per_dialog.insert(id.clone(), count + 1);
        let contact = format!("<{}>", self.shared.contact_uri("", transport));
        self.note_msg(chan, "Rx: REFER".into());
        let event_id = (count > 0).then(|| msg.cseq().map(|c| c.seq)).flatten();
        let referred_by = msg.headers.get(&HeaderName::ReferredBy);
        let refer_to_value = msg.headers.get(&HeaderName::ReferTo).unwrap_or_default();
        let target = blind_target(
            env,
            chan,
            peer_context,
            (&refer_to, refer_to_value),
            referred_by,
        );
        // RFC 4488: no subscription asked for (an attended transfer keeps
        // its reports: the REFER is answered before the other call is found).
        let no_sub = refer_to.replaces.is_none()
            && msg
                .headers
                .get(&HeaderName::parse(REFER_SUB))
                .is_some_and(refer_sub_false);
        if no_sub {
            let how = (event_id, true);
            let key = self.start_report(now, id, (dest, transport), Some(chan), how);
            let (status, extra) = match self.blind_move(now, env, key, chan, target) {
                Ok(()) => (
                    (202, "Accepted"),
                    vec![
                        (HeaderName::Contact, contact),
                        (HeaderName::parse(REFER_SUB), "false".to_string()),
                    ],
                ),
                Err(status) => (status, Vec::new()),
            };
            return self.respond(now, tx, msg, source, status, &extra);
        }
        self.respond(
            now,
            tx,
            msg,
            source,
            (202, "Accepted"),
            &[(HeaderName::Contact, contact)],
        );
        let how = (event_id, false);
        let key = self.start_report(now, id, (dest, transport), Some(chan), how);
        if !self.refers.exists(key) {
            return; // not even the NOTIFY 100 could be sent: nothing moves
        }

        if let Some(replaces) = &refer_to.replaces {
            // Kept for a consultation call found still ringing: the
            // transfer is then made blind to the Refer-To's extension.
            self.refers.fallback.insert(key, target);
            return self.refer_replaces(now, env, key, replaces);
        }
        let _ = self.blind_move(now, env, key, chan, target);
    }

    /// The blind transfer of `chan`'s partner to `target` (context, exten,
    /// variables); transfer `key` reports it. The refusal's status, if the
    /// core refused.
    pub(crate) fn blind_move(
        &mut self,
        now: Now,
        env: &mut dyn Env,
        key: u64,
        chan: ChannelId,
        (context, exten, vars): BlindTarget,
    ) -> Result<(), (u16, &'static str)> {
        match env.blind_transfer(chan, &context, &exten, &vars) {
            Ok(transferee) => {
                self.refers.made(key);
                self.refer_watch(key, transferee);
                // The seed's flow holds the call first; the transferee was
                // put on hold through us, and must hear the target.
                self.unhold_anywhere(now, transferee);
                // A transferee of another shard (calls joined across shards
                // by an earlier transfer) reports from there.
                if self.sessions.get(transferee).is_none() {
                    let watch = crate::endpoint::ShardMsg::Watch {
                        chan: transferee,
                        from: self.home.index,
                        ticket: key,
                    };
                    self.tell_home_of(transferee, watch);
                }
                Ok(())
            }
            Err(cause) => {
                let (code, reason) = refused_transfer(cause);
                log::info!(
                    "Blind transfer to {exten}@{context} by {} refused: {code} {reason}",
                    self.sessions.name(chan)
                );
                self.refer_status(now, key, code, reason, true);
                Err((code, reason))
            }
        }
    }

    /// Starts reporting a transfer accepted in `dialog` (202 sent): the
    /// subscription, its deadline, and `NOTIFY 100 Trying` at once. Its key.
    pub(crate) fn start_report(
        &mut self,
        now: Now,
        dialog: &DialogId,
        (dest, transport): (SocketAddr, Transport),
        transferor: Option<ChannelId>,
        (event_id, silent): (Option<u32>, bool),
    ) -> u64 {
        let key = self.refers.next_ticket();
        let expires = now.mono + REPORT_FOR;
        let sub = ReferSub {
            dialog: dialog.clone(),
            dest,
            transport,
            transferor,
            transferee: None,
            moved: false,
            event_id,
            sent: None,
            queued: None,
            in_flight: false,
            final_sent: false,
            end_reason: "noresource",
            expires,
            notifies: 0,
            end_transferor_at: None,
            finding: None,
            silent,
        };
        self.refers.subs.insert(key, sub);
        self.refers.by_dialog.insert(dialog.clone(), key);
        self.refer_timers.insert((expires, key));
        if !silent {
            self.refer_status(now, key, 100, "Trying", false);
        }
        key
    }

    /// Transfer `key`'s outcome is `leg`'s: its progress is reported.
    pub(crate) fn refer_watch(&mut self, key: u64, leg: ChannelId) {
        if let Some(sub) = self.refers.subs.get_mut(&key) {
            sub.transferee = Some(leg);
            self.refers.by_transferee.insert(leg, key);
        }
    }

    /// What happens to a transferee, read from the inputs about it before
    /// they are handled: its progress is reported to the transferor.
    pub(crate) fn refer_progress(&mut self, now: Now, input: &crate::endpoint::Input<'_>) {
        use crate::endpoint::Input;
        use sirius_abi::Indication;
        match input {
            Input::Indicate(c, ind) => {
                let (code, reason, last) = match ind {
                    Indication::Ringing => (180, "Ringing", false),
                    Indication::Progress => (183, "Session Progress", false),
                    Indication::Busy => (486, "Busy Here", true),
                    Indication::Congestion => (503, "Service Unavailable", true),
                    _ => return,
                };
                self.report_on(now, *c, code, reason, last);
            }
            Input::Bridge(a, b) => {
                for (t, other) in [(a, b), (b, a)] {
                    if !self.refers.watches(*t) {
                        continue;
                    }
                    // Early media from a leg still ringing is progress; an
                    // answered one (or Echo, or a leg not ours) is the end.
                    let early = self
                        .sessions
                        .get(*other)
                        .and_then(|s| s.dialog.as_ref())
                        .and_then(|d| self.dialogs.get(d))
                        .is_none_or(|d| d.state == DialogState::Early)
                        && self.sessions.get(*other).is_some()
                        && other != t;
                    match early {
                        true => self.report_on(now, *t, 183, "Session Progress", false),
                        false => self.report_on(now, *t, 200, "OK", true),
                    }
                }
            }
            Input::Hangup(c, cause) => self.refer_transferee_gone(now, *c, *cause),
            _ => {}
        }
    }

    /// Reports `code` for the watched leg `chan`: to the transfer here, or
    /// to the shard whose REFER watches it (a transferee on this shard,
    /// its transferor on another: calls joined across shards earlier).
    fn report_on(&mut self, now: Now, chan: ChannelId, code: u16, reason: &str, last: bool) {
        if let Some(&key) = self.refers.by_transferee.get(&chan) {
            if last {
                self.refers.by_transferee.remove(&chan);
            }
            return self.refer_status(now, key, code, reason, last);
        }
        let Some(&(home, key)) = self.refers.remote.get(&chan) else {
            return;
        };
        if last {
            self.refers.remote.remove(&chan);
        }
        let msg = crate::endpoint::ShardMsg::Progress {
            ticket: key,
            code,
            reason: reason.to_string(),
            last,
        };
        self.out
            .push_back(crate::endpoint::Output::Shard(home, msg));
    }

    /// Shard `from`'s transfer `key` watches our leg `chan`.
    pub(crate) fn refer_watch_for(&mut self, chan: ChannelId, from: usize, key: u64) {
        if self.sessions.get(chan).is_some() {
            self.refers.remote.insert(chan, (from, key));
        }
    }

    /// What a leg we called reports itself (its INVITE's responses): for a
    /// leg called for a REFER outside a dialog, ringing, progress, the
    /// answer (which starts its dialplan and is the final report).
    pub(crate) fn refer_leg_progress(&mut self, chan: ChannelId, code: u16) {
        // Answered: its dialplan starts whether or not anybody is still
        // told (the dialer's subscription may have ended first).
        if (200..300).contains(&code) {
            self.refer_leg_answered(chan);
        }
        if !self.refers.watches(chan) {
            return;
        }
        let now = self.clock();
        let Some(&key) = self.refers.by_transferee.get(&chan) else {
            return;
        };
        match code {
            180 => self.refer_status(now, key, 180, "Ringing", false),
            183 => self.refer_status(now, key, 183, "Session Progress", false),
            200..=299 => self.refer_status(now, key, 200, "OK", true),
            _ => {}
        }
    }

    /// The transferee's call ended before the target answered (the core
    /// hung it up, or its far end sent BYE): the cause is the final report.
    pub(crate) fn refer_transferee_gone(&mut self, now: Now, chan: ChannelId, cause: Cause) {
        let (code, reason) = match cause.0 {
            // Its dialplan ended normally without bridging it (a Playback,
            // an IVR): the transferee got where it was sent.
            0 | 16 => (200, "OK"),
            _ => cause_to_sip(cause),
        };
        self.report_on(now, chan, code, reason, true);
    }

    /// A watched leg's call ended under it (its far end's BYE, no RTP, a
    /// session timer, shutdown) before the outcome was known.
    pub(crate) fn refer_transferee_left(&mut self, now: Now, chan: ChannelId) {
        self.report_on(now, chan, 487, "Request Terminated", true);
    }

    /// Reports `code` to the transferor: at once, or after the NOTIFY in
    /// flight. A status already sent is not sent again; nothing follows a
    /// final one.
    pub(crate) fn refer_status(&mut self, now: Now, key: u64, code: u16, reason: &str, last: bool) {
        let Some(sub) = self.refers.subs.get_mut(&key) else {
            return;
        };
        if sub.final_sent || (!last && sub.sent == Some(code)) {
            return;
        }
        if sub.in_flight {
            // A final one waiting is never replaced by a provisional one.
            if !sub.queued.as_ref().is_some_and(|q| q.2) {
                sub.queued = Some((code, reason.to_string(), last));
            }
            return;
        }
        // Room is kept for the final one.
        if !last && sub.notifies + 1 >= NOTIFIES_PER_TRANSFER {
            return;
        }
        if last {
            if let Some(t) = sub.transferee.take() {
                self.refers.by_transferee.remove(&t);
            }
        }
        if sub.silent {
            // Refer-Sub: false: nobody to tell; the end still ends things.
            if last {
                sub.sent = Some(code);
                sub.final_sent = true;
                self.refer_finished(now, key);
            }
            return;
        }
        self.send_refer_notify(now, key, code, reason, last);
    }

    fn send_refer_notify(&mut self, now: Now, key: u64, code: u16, reason: &str, last: bool) {
        let Some(sub) = self.refers.subs.get(&key) else {
            return;
        };
        let (dialog, dest, transport) = (sub.dialog.clone(), sub.dest, sub.transport);
        let state = match last {
            true => SubState::Terminated {
                reason: sub.end_reason.into(),
            },
            false => SubState::Active {
                expires: sub.expires.saturating_duration_since(now.mono).as_secs() as u32,
            },
        };
        let event = match sub.event_id {
            Some(n) => format!("refer;id={n}"),
            None => "refer".into(),
        };
        let via = self.via(transport);
        let Some(d) = self.dialogs.get_mut(&dialog) else {
            // The dialog is gone (our own BYE at shutdown): nobody to tell.
            return self.refer_finished(now, key);
        };
        let mut req = d.request(Method::Notify, &via, None);
        req.push(HeaderName::Event, &event);
        req.push(HeaderName::SubscriptionState, state.to_string());
        req.set_body(SIPFRAG, sipfrag(code, reason));
        let hop = self.route_hop(&req).unwrap_or(dest);
        let sent = self.send_client(req, hop, transport, ReferNotify { id: key }, now.mono);
        let Some(sub) = self.refers.subs.get_mut(&key) else {
            return;
        };
        sub.sent = Some(code);
        sub.notifies += 1;
        sub.in_flight = sent.is_some();
        sub.final_sent = last;
        if sent.is_none() {
            self.refer_finished(now, key);
        }
    }

    /// A NOTIFY was answered 2xx: the next status goes, or after the final
    /// one the transfer is over.
    pub(crate) fn refer_notified(&mut self, now: Now, key: u64) {
        let Some(sub) = self.refers.subs.get_mut(&key) else {
            return;
        };
        sub.in_flight = false;
        if sub.final_sent {
            return self.refer_finished(now, key);
        }
        if let Some((code, reason, last)) = sub.queued.take() {
            self.refer_status(now, key, code, &reason, last);
        }
    }

    /// The transferor refused a NOTIFY or never answered it: the
    /// subscription is over (RFC 6665 §4.1.2.2); a transfer made still
    /// ends the transferor's leg.
    pub(crate) fn refer_sub_failed(&mut self, now: Now, key: u64, code: u16) {
        if let Some(sub) = self.refers.subs.get(&key) {
            log::debug!(
                "transfer report to {} ended by {code}",
                sub.transferor
                    .map(|t| self.sessions.name(t))
                    .unwrap_or_default()
            );
        }
        self.refer_finished(now, key);
    }

    /// Reporting is over. When the transferee was moved, the transferor's
    /// leg has nothing left to do: it ends after [`TRANSFEROR_GRACE`]
    /// unless its own BYE comes first (a refused transfer leaves the call
    /// as it was).
    fn refer_finished(&mut self, now: Now, key: u64) {
        let Some(sub) = self.refers.subs.get_mut(&key) else {
            return;
        };
        if sub.end_transferor_at.is_some() {
            return; // already waiting for the transferor's BYE
        }
        if sub.moved
            && sub
                .transferor
                .is_some_and(|t| self.sessions.get(t).is_some())
        {
            let at = now.mono + TRANSFEROR_GRACE;
            sub.end_transferor_at = Some(at);
            sub.in_flight = false;
            sub.final_sent = true;
            self.refer_timers.insert((at, key));
            return;
        }
        self.refer_forget(key);
    }

    /// Drops every record of transfer `key`; its dialog goes too when no
    /// call uses it any more (the transferor's BYE came during the report).
    fn refer_forget(&mut self, key: u64) {
        self.refers.fallback.remove(&key);
        let Some(sub) = self.refers.subs.remove(&key) else {
            return;
        };
        if let Some(t) = sub.transferee {
            self.refers.by_transferee.remove(&t);
        }
        self.refers.by_dialog.remove(&sub.dialog);
        if self.sessions.by_dialog(&sub.dialog).is_none() {
            self.dialogs.remove(&sub.dialog);
            self.refers.per_dialog.remove(&sub.dialog);
        }
    }

    /// A transfer's deadline: the report runs out (the last status goes as
    /// final, `reason=timeout`), or the transferor's grace is over.
    pub(crate) fn refer_timer_due(&mut self, now: Now, key: u64, at: Instant) {
        if self.refers.replacing.contains_key(&key) {
            return self.replace_timed_out(now, key, at);
        }
        let Some(sub) = self.refers.subs.get_mut(&key) else {
            return;
        };
        if sub.end_transferor_at == Some(at) {
            let t = sub.transferor;
            self.refer_forget(key);
            if let Some(t) = t.filter(|t| self.sessions.get(*t).is_some()) {
                sirius_abi::verbose!(
                    3,
                    "    -- {} transferred its call and did not hang up: ending it",
                    self.sessions.name(t)
                );
                self.hangup_call(now, t, Cause::NORMAL_CLEARING);
                self.host(crate::endpoint::HostAction::Hangup(
                    t,
                    Cause::NORMAL_CLEARING,
                ));
            }
            return;
        }
        if sub.finding == Some(at) {
            sub.finding = None;
            return self.refer_status(now, key, 481, "Call/Transaction Does Not Exist", true);
        }
        if sub.expires != at || sub.final_sent {
            return;
        }
        sub.end_reason = "timeout";
        let code = sub.sent.unwrap_or(100);
        let reason = match code {
            180 => "Ringing",
            183 => "Session Progress",
            _ => "Trying",
        };
        self.refer_status(now, key, code, reason, true);
    }

    /// The transferor's leg ended (its BYE): a transfer made needs no
    /// grace timer any more.
    pub(crate) fn refer_transferor_gone(&mut self, id: &DialogId) {
        let Some(&key) = self.refers.by_dialog.get(id) else {
            return;
        };
        if self
            .refers
            .subs
            .get(&key)
            .is_some_and(|s| s.end_transferor_at.is_some())
        {
            self.refer_forget(key);
        }
    }
}
