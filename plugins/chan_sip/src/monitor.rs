//! The monitor: one task on the plugin's runtime that owns the socket and the
//! transaction layer (Asterisk's `do_monitor`). Datagrams in, timers, and the
//! transaction user: what to answer to each request.

use crate::causes::cause_to_sip;
use crate::config::{General, Peer, PeerType};
use crate::registrar::AuthOutcome;
use crate::{unix_now, Shared};
use sirius_abi::{ChannelSpec, ChannelState, Direction};
use sirius_sip::dialog::{Classified, DialogTable};
use sirius_sip::message::{
    build, parse_datagram, HeaderName, Limits, Message, Method, ParseError, Uri,
};
use sirius_sip::sdp::negotiate::{answer as sdp_answer, LocalMedia};
use sirius_sip::sdp::{Direction as SdpDirection, SessionDescription};
use sirius_sip::transaction::{Config, Event, TransactionLayer, Transport, TxId};
use sirius_sip::validate::{inspect_request, inspect_response, Capabilities};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// The methods this driver answers today; others get 501 with this Allow list.
pub fn capabilities() -> Capabilities {
    use Method::*;
    Capabilities {
        methods: vec![Invite, Ack, Cancel, Options, Bye, Register],
        ..Capabilities::default()
    }
}

/// `Accept`, `Supported` as we really support them.
const ACCEPT: &str = "application/sdp";
const SUPPORTED: &str = "replaces, timer";

struct Monitor {
    shared: Arc<Shared>,
    socket: UdpSocket,
    layer: TransactionLayer,
    dialogs: DialogTable,
    caps: Capabilities,
}

/// Runs until `stop` turns true.
pub async fn run(shared: Arc<Shared>, socket: UdpSocket, mut stop: watch::Receiver<bool>) {
    let t1 = Duration::from_millis(shared.running().cfg.general.t1.max(1));
    let mut m = Monitor {
        shared,
        socket,
        layer: TransactionLayer::new(Config {
            t1,
            ..Config::default()
        }),
        dialogs: DialogTable::default(),
        caps: capabilities(),
    };
    let mut buf = vec![0u8; 65_536];
    let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
    loop {
        let deadline = m.layer.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            r = m.socket.recv_from(&mut buf) => match r {
                Ok((n, src)) => m.on_datagram(&buf[..n], src),
                Err(e) => log::warn!("UDP receive failed: {e}"),
            },
            _ = sleep_until(deadline) => m.layer.handle_timeout(Instant::now()),
            _ = housekeeping.tick() => {
                let gone = m.shared.registrar.lock().expire(unix_now());
                for peer in gone {
                    m.shared.host.post_event("PeerStatus", &[("Peer", format!("SIP/{peer}")), ("PeerStatus", "Unregistered".into()), ("Cause", "Expired".into())]);
                }
            }
            _ = stop.changed() => break,
        }
        m.process().await;
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Monitor {
    fn trace(&self, dir: &str, peer: SocketAddr, data: &[u8]) {
        if self.shared.debug.load(Ordering::Relaxed) {
            log::info!(
                "\n<--- SIP {dir} {peer} --->\n{}\n<------------->",
                String::from_utf8_lossy(data)
            );
        }
    }

    fn on_datagram(&mut self, data: &[u8], src: SocketAddr) {
        self.trace("read from", src, data);
        let msg = match parse_datagram(data, &Limits::default()) {
            Ok(m) => m,
            Err(ParseError::KeepAlive) => return,
            Err(e) => {
                // Not a message we can address a response to: dropped (RFC 3261 §18.3).
                log::debug!("dropping unparseable datagram from {src}: {e}");
                return;
            }
        };
        if msg.is_request() {
            if let Err(rej) = inspect_request(&msg, &self.caps) {
                if msg.method() != Some(&Method::Ack) {
                    log::debug!(
                        "refusing {} from {src}: {} {}",
                        msg.method().map_or("?", |m| m.as_str()),
                        rej.code,
                        rej.reason
                    );
                    let mut r = build::response(&msg, rej.code, &rej.reason, Some(src));
                    build::set_to_tag(&mut r, &build::random_token());
                    for (n, v) in &rej.headers {
                        r.push(n.clone(), v);
                    }
                    self.layer.send_stateless(src, Transport::Udp, &r);
                }
                return;
            }
        } else if inspect_response(&msg).is_err() {
            log::debug!("dropping malformed response from {src}");
            return;
        }
        self.layer
            .on_message(Instant::now(), msg, src, Transport::Udp);
    }

    async fn process(&mut self) {
        while let Some(ev) = self.layer.poll_event() {
            if let Event::Request {
                tx,
                msg,
                source,
                cancels,
                ..
            } = ev
            {
                self.on_request(tx, msg, source, cancels);
            }
            // Responses and timeouts belong to client transactions, which this
            // driver does not start yet (outbound calls, registrations, qualify).
        }
        while let Some(t) = self.layer.poll_transmit() {
            self.trace("send to", t.dest, &t.data);
            if let Err(e) = self.socket.send_to(&t.data, t.dest).await {
                log::warn!("UDP send to {} failed: {e}", t.dest);
            }
        }
    }

    fn respond(
        &mut self,
        tx: TxId,
        req: &Message,
        source: SocketAddr,
        code: u16,
        reason: &str,
        extra: &[(HeaderName, String)],
    ) {
        let mut r = build::response(req, code, reason, Some(source));
        build::set_to_tag(&mut r, &build::random_token());
        r.push(
            HeaderName::Server,
            &self.shared.running().cfg.general.useragent,
        );
        for (n, v) in extra {
            r.push(n.clone(), v);
        }
        self.send_response(tx, r);
    }

    fn send_response(&mut self, tx: TxId, r: Message) {
        if let Err(e) = self.layer.respond(Instant::now(), tx, &r) {
            log::debug!("cannot respond on {tx:?}: {e}");
        }
    }

    fn on_request(&mut self, tx: TxId, msg: Message, source: SocketAddr, cancels: Option<TxId>) {
        let method = msg.method().cloned().unwrap_or(Method::Ack);
        match (&method, self.dialogs.classify(&msg)) {
            (Method::Register, _) => self.on_register(tx, &msg, source),
            (Method::Options, _) => {
                let allow = self.caps.allow();
                self.respond(
                    tx,
                    &msg,
                    source,
                    200,
                    "OK",
                    &[
                        (HeaderName::Allow, allow),
                        (HeaderName::Accept, ACCEPT.into()),
                        (HeaderName::Supported, SUPPORTED.into()),
                    ],
                );
            }
            (Method::Cancel, _) => {
                // No INVITE of ours is pending answer yet (calls wait in the dialplan
                // only once it exists): a CANCEL that matches nothing gets 481.
                let _ = cancels;
                self.respond(
                    tx,
                    &msg,
                    source,
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                );
            }
            (Method::Invite, Classified::OutOfDialog) => self.on_invite(tx, &msg, source),
            (_, Classified::Unknown) | (Method::Bye, _) => {
                self.respond(
                    tx,
                    &msg,
                    source,
                    481,
                    "Call/Transaction Does Not Exist",
                    &[],
                );
            }
            _ => self.respond(
                tx,
                &msg,
                source,
                481,
                "Call/Transaction Does Not Exist",
                &[],
            ),
        }
    }

    fn on_register(&mut self, tx: TxId, msg: &Message, source: SocketAddr) {
        let running = self.shared.running();
        let out = self.shared.registrar.lock().handle(
            msg,
            source,
            unix_now(),
            &running.cfg.general,
            &running.peers,
        );
        if let Some((peer, binding)) = out.changed {
            let (status, addr) = match &binding {
                Some(b) => ("Registered", b.addr.to_string()),
                None => ("Unregistered", String::new()),
            };
            self.shared.host.post_event(
                "PeerStatus",
                &[
                    ("Peer", format!("SIP/{peer}")),
                    ("PeerStatus", status.into()),
                    ("Address", addr),
                ],
            );
        }
        if let Some(r) = out.response {
            self.send_response(tx, r);
        }
        // None: the source is blocked; the transaction ends unanswered.
    }

    /// Matches the peer an INVITE comes from: by From user for friends and
    /// users, by source address for static peers (port too, unless insecure=port).
    fn match_peer<'a>(
        running: &'a crate::Running,
        msg: &Message,
        source: SocketAddr,
    ) -> Option<&'a Peer> {
        let from_user = msg
            .from_header()
            .and_then(|f| Uri::parse(&f.uri).ok())
            .and_then(|u| u.user);
        if let Some(p) = from_user
            .as_deref()
            .and_then(|u| running.peers.get(u))
            .filter(|p| p.kind != PeerType::Peer)
        {
            return Some(p);
        }
        running.peers.values().find(|p| {
            p.addr.is_some_and(|a| {
                a.ip() == source.ip() && (p.insecure_port || a.port() == source.port())
            })
        })
    }

    fn on_invite(&mut self, tx: TxId, msg: &Message, source: SocketAddr) {
        let running = self.shared.running();
        let g: &General = &running.cfg.general;
        let peer = Self::match_peer(&running, msg, source);
        let needs_auth =
            peer.is_some_and(|p| !p.insecure_invite) || (peer.is_none() && !g.allowguest);
        if needs_auth {
            let auth = self.shared.registrar.lock().authenticate(
                msg,
                "INVITE",
                source,
                unix_now(),
                g,
                peer,
            );
            match auth {
                AuthOutcome::Ok => {}
                AuthOutcome::Respond(r) => return self.send_response(tx, *r),
                AuthOutcome::Ignore => return,
            }
        }
        let codecs = peer.map_or_else(
            || crate::config::DEFAULT_CODECS.to_vec(),
            |p| p.codecs.clone(),
        );
        // An offer in the INVITE must share an audio codec with the peer's list.
        if !msg.body.is_empty() {
            let Ok(offer) = SessionDescription::parse(&msg.body) else {
                return self.respond(tx, msg, source, 400, "Bad Request (SDP)", &[]);
            };
            let local = LocalMedia {
                address: self.shared.bound.ip().to_string(),
                session_id: 1,
                session_version: 1,
                audio: crate::tech::format_specs(&codecs),
                video: Vec::new(),
                telephone_event: true,
                audio_port: 0,
                video_port: 0,
                direction: SdpDirection::SendRecv,
            };
            if sdp_answer(&offer, &local).is_err() {
                log::info!(
                    "Rejecting INVITE {}: no audio codec in common with {}",
                    msg.call_id().unwrap_or("?"),
                    peer.map_or("the guest codec list", |p| p.name.as_str())
                );
                return self.respond(tx, msg, source, 488, "Not Acceptable Here", &[]);
            }
        }
        let exten = Uri::parse(msg.request_uri().unwrap_or_default())
            .ok()
            .and_then(|u| u.user)
            .unwrap_or_else(|| "s".into());
        let caller = msg
            .from_header()
            .and_then(|f| Uri::parse(&f.uri).ok())
            .and_then(|u| u.user)
            .unwrap_or_default();
        let spec = ChannelSpec {
            tech: "SIP".into(),
            resource: peer
                .map_or_else(|| source.ip().to_string(), |p| p.name.clone())
                .into(),
            state: ChannelState::Ring,
            direction: Direction::Inbound,
            context: peer
                .map_or_else(|| g.context.clone(), |p| p.context.clone())
                .into(),
            exten: exten.into(),
            caller_num: caller.into(),
            caller_name: msg
                .from_header()
                .and_then(|f| f.display)
                .unwrap_or_default()
                .into(),
            codecs: codecs.into(),
            accountcode: "".into(),
        };
        let info = match self.shared.host.channel_alloc(spec) {
            Ok(i) => i,
            Err(cause) => {
                let (code, reason) = cause_to_sip(cause);
                return self.respond(tx, msg, source, code, reason, &[]);
            }
        };
        match self.shared.host.pbx_start(info.id) {
            Err(cause) => {
                self.shared.host.channel_hangup(info.id, cause);
                let (code, reason) = cause_to_sip(cause);
                self.respond(tx, msg, source, code, reason, &[]);
            }
            Ok(()) => {
                // The dialplan has the call. Answering, ringing and bridging it is
                // the next step of this driver; until then the call is refused
                // cleanly rather than left hanging.
                log::warn!(
                    "'{}': inbound call state machine not implemented yet; refusing",
                    info.name
                );
                self.shared
                    .host
                    .channel_hangup(info.id, sirius_abi::Cause::FACILITY_NOT_IMPLEMENTED);
                self.respond(tx, msg, source, 501, "Not Implemented", &[]);
            }
        }
    }
}
