//! A call we place, tried again: the INVITE re-sent with credentials for
//! a 401/407 challenge, with a longer session interval after a 422
//! (RFC 4028), or to the target a 3xx names (RFC 3261 §8.1.3.4). Each is
//! the same call (Call-ID, From tag) with the next CSeq and a new branch.

use super::{timer, Role};
use crate::endpoint::{Endpoint, Lookup, Now};
use sirius_abi::ChannelId;
use sirius_sip::message::{HeaderName, Message};
use sirius_sip::transaction::Transport;

/// What to do with a 3xx.
pub(super) enum Redirect {
    /// Send this INVITE to the new target.
    Retry(Message),
    /// A Contact's host is being looked up: wait for the answer.
    Wait,
    /// Nothing to follow: the call fails.
    Fail,
}

/// Redirects one outbound call may follow: enough for a forwarding chain,
/// few enough that two servers redirecting to each other cannot loop us.
pub(super) const MAX_REDIRECTS: u8 = 5;

impl Endpoint {
    /// `422 Session Interval Too Small` (RFC 4028 §7.4): the INVITE again
    /// asking for the far end's Min-SE, once; `None` when the 422 names no
    /// larger interval than we already asked for.
    pub(super) fn interval_retry(&mut self, chan: ChannelId, resp: &Message) -> Option<Message> {
        let min = timer::asked(resp).min_se?;
        let s = self.sessions.get_mut(chan)?;
        let Role::Uac { asked_interval, .. } = &mut s.role else {
            return None;
        };
        if asked_interval.is_some_and(|a| a >= min) {
            log::warn!("{} refused session interval {min} again (422)", s.name);
            return None;
        }
        *asked_interval = Some(min);
        let (mut invite, transport) = (s.invite.clone()?, s.transport);
        let cseq = invite.cseq()?.seq + 1;
        invite
            .headers
            .set(HeaderName::SessionExpires, min.to_string());
        invite.headers.set(HeaderName::MinSE, min.to_string());
        self.next_invite(&mut invite, cseq, transport);
        Some(invite)
    }

    /// The INVITE again with credentials for the challenge in `resp`: same
    /// Call-ID and tags, next CSeq, new branch (RFC 3261 §22.2). `None` when
    /// the peer has no secret or the challenge cannot be answered.
    pub(super) fn authorized_retry(&mut self, chan: ChannelId, resp: &Message) -> Option<Message> {
        let s = self.sessions.get(chan)?;
        let running = self.shared.running();
        let Some(peer) = s.peer.as_ref().and_then(|n| running.peers.get(n)) else {
            log::warn!(
                "Call to {} challenged, but it is not a configured peer",
                s.invite
                    .as_ref()
                    .and_then(|i| i.request_uri())
                    .unwrap_or("?")
            );
            return None;
        };
        let Some(secret) = peer.outbound_secret.as_deref() else {
            log::warn!(
                "Peer '{}' challenged our INVITE and has no secret to answer with",
                peer.name
            );
            return None;
        };
        let challenge = match sirius_sip::auth::client::Challenge::from_response(resp) {
            Ok(c) => c.into_iter().next()?,
            Err(e) => {
                log::warn!("Peer '{}' sent an unusable challenge: {e}", peer.name);
                return None;
            }
        };
        let mut invite = s.invite.clone()?;
        let transport = s.transport;
        let uri = invite.request_uri()?.to_string();
        let cseq = invite.cseq()?.seq + 1;
        let cnonce = self.tokens.token();
        let value = match challenge.authorize(
            &peer.username,
            secret,
            "INVITE",
            &uri,
            &invite.body,
            &cnonce[..8],
            1,
        ) {
            Ok(v) => v,
            Err(e) => {
                log::warn!("Cannot answer the challenge of peer '{}': {e}", peer.name);
                return None;
            }
        };
        self.next_invite(&mut invite, cseq, transport);
        invite.push(challenge.answer_header(), value);
        Some(invite)
    }

    /// The INVITE again towards the first usable `Contact` of a 3xx (RFC 3261
    /// §8.1.3.4): same Call-ID and From tag, next CSeq, new branch, new
    /// Request-URI and destination; the target's `transport` parameter, if
    /// any, picks the transport (else the call keeps its own). A Contact
    /// naming a host not looked up yet makes the call wait for the answer
    /// (the endpoint never blocks on DNS); one that does not resolve is
    /// skipped for the next.
    pub(super) fn redirected_retry(
        &mut self,
        chan: ChannelId,
        resp: &Message,
        code: u16,
    ) -> Redirect {
        let contacts: Vec<sirius_sip::message::NameAddr> = resp
            .headers
            .values(&HeaderName::Contact)
            .filter_map(|v| sirius_sip::message::NameAddr::parse_list(v).ok())
            .flatten()
            .collect();
        let mut found = None;
        for na in contacts {
            let Ok(uri) = na.sip_uri() else { continue };
            match self.uri_lookup(&uri) {
                Lookup::Found(addr) => {
                    let transport = uri.params.get("transport").and_then(Transport::parse);
                    let target = na.uri.split('?').next().unwrap_or(&na.uri).to_string();
                    found = Some((target, addr, transport));
                    break;
                }
                Lookup::Failed(_) => continue,
                Lookup::Pending { .. } => {
                    if let Some(Role::Uac {
                        pending_redirect, ..
                    }) = self.sessions.get_mut(chan).map(|s| &mut s.role)
                    {
                        *pending_redirect = Some((Box::new(resp.clone()), code));
                    }
                    return Redirect::Wait;
                }
            }
        }
        let Some(s) = self.sessions.get_mut(chan) else {
            return Redirect::Fail;
        };
        let Role::Uac {
            ruri,
            redirects,
            auth_attempts,
            ..
        } = &mut s.role
        else {
            return Redirect::Fail;
        };
        let Some((target, dest, transport)) = found else {
            log::warn!("{code} from {ruri} has no Contact we can follow (a SIP URI that resolves); call fails");
            return Redirect::Fail;
        };
        let Some(mut invite) = s.invite.clone() else {
            return Redirect::Fail;
        };
        let Some(cseq) = invite.cseq().map(|c| c.seq + 1) else {
            return Redirect::Fail;
        };
        log::info!("    -- Call to {ruri} redirected ({code}) to {target}");
        *redirects += 1;
        *auth_attempts = 0;
        *ruri = target.clone();
        s.dest = dest;
        s.transport = transport.unwrap_or(s.transport);
        if let sirius_sip::message::StartLine::Request { uri, .. } = &mut invite.start {
            *uri = target;
        }
        let transport = s.transport;
        self.next_invite(&mut invite, cseq, transport);
        Redirect::Retry(invite)
    }

    /// A name came back from the driver: redirects that waited for it go on.
    pub(crate) fn redirects_resolved(&mut self, now: Now) {
        let waiting: Vec<(ChannelId, Box<Message>, u16)> = self
            .sessions
            .channels()
            .into_iter()
            .filter_map(|c| match &mut self.sessions.get_mut(c)?.role {
                Role::Uac {
                    pending_redirect, ..
                } => pending_redirect.take().map(|(m, code)| (c, m, code)),
                Role::Uas { .. } => None,
            })
            .collect();
        for (chan, resp, code) in waiting {
            match self.redirected_retry(chan, &resp, code) {
                Redirect::Retry(invite) => self.send_invite(now.mono, chan, invite),
                Redirect::Wait => {}
                Redirect::Fail => match self.own_invite_failed(chan, code) {
                    super::fork::OwnFailure::Wait => {}
                    super::fork::OwnFailure::End(best) => {
                        self.end_uac(chan, crate::causes::sip_to_cause(best))
                    }
                },
            }
        }
    }

    /// Makes `invite` the next request of the same call (RFC 3261 §8.1.3.5):
    /// new branch, CSeq `cseq`, no stale credentials.
    fn next_invite(&mut self, invite: &mut Message, cseq: u32, transport: Transport) {
        let via = self.via_rport(transport);
        invite.headers.set(HeaderName::Via, via);
        invite
            .headers
            .set(HeaderName::CSeq, format!("{cseq} INVITE"));
        invite.headers.remove(&HeaderName::Authorization);
        invite.headers.remove(&HeaderName::ProxyAuthorization);
    }
}
