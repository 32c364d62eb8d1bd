//! Building the messages the endpoint sends: responses with our tag and
//! Server header, requests outside a dialog with fresh tags and branches
//! (from the endpoint's own tokens), and where in-dialog requests go.

use super::{Endpoint, Now};
use sirius_sip::message::{build, HeaderName, Message, Method};
use sirius_sip::transaction::{Transport, TxId};
use std::net::SocketAddr;

impl Endpoint {
    /// A response to a request in server transaction `tx`, with a fresh To
    /// tag, our Server header and `extra` headers.
    pub(crate) fn respond(
        &mut self,
        now: Now,
        tx: TxId,
        req: &Message,
        source: SocketAddr,
        (code, reason): (u16, &str),
        extra: &[(HeaderName, String)],
    ) {
        let mut r = build::response(req, code, reason, Some(source));
        build::set_to_tag(&mut r, &self.tokens.token());
        r.push(
            HeaderName::Server,
            &self.shared.running().cfg.general.useragent,
        );
        for (n, v) in extra {
            r.push(n.clone(), v);
        }
        self.send_response(now, tx, r);
    }

    /// `481 Call/Transaction Does Not Exist` (RFC 3261 §12.2.2, §15.1.2).
    pub(crate) fn no_such_call(&mut self, now: Now, tx: TxId, req: &Message, source: SocketAddr) {
        self.respond(
            now,
            tx,
            req,
            source,
            (481, "Call/Transaction Does Not Exist"),
            &[],
        );
    }

    pub(crate) fn send_response(&mut self, now: Now, tx: TxId, r: Message) {
        if let Err(e) = self.layer.respond(now.mono, tx, &r) {
            log::debug!("cannot respond on {tx:?}: {e}");
        }
    }

    /// A top Via for a request we send on `transport`, with a new branch.
    pub(crate) fn via(&mut self, transport: Transport) -> sirius_sip::message::Via {
        let local = self.shared.local(transport);
        let host = match local.ip() {
            std::net::IpAddr::V4(a) => sirius_sip::message::Host::V4(a),
            std::net::IpAddr::V6(a) => sirius_sip::message::Host::V6(a),
        };
        let branch = format!(
            "{}{}",
            sirius_sip::message::BRANCH_MAGIC,
            self.tokens.token()
        );
        sirius_sip::message::Via::new(transport.as_str(), host, Some(local.port()), &branch)
    }

    /// The top Via of a request that starts a transaction outside a dialog
    /// (INVITE, OPTIONS and their retries), asking for `rport` (RFC 3581) so
    /// that answers find us behind NAT.
    pub(crate) fn via_rport(&mut self, transport: Transport) -> String {
        format!("{};rport", self.via(transport))
    }

    /// A Call-ID of ours at `host` that hashes to this shard, so that the
    /// answers to what carries it come back here (crate::shards).
    pub(crate) fn new_call_id(&mut self, host: std::net::IpAddr) -> String {
        loop {
            let id = format!("{}@{host}", self.tokens.token());
            if self.home.owns(&id) {
                return id;
            }
        }
    }

    /// A request outside any dialog from `from_user` at our address: fresh
    /// branch, tag and Call-ID (OPTIONS pokes, outgoing INVITEs).
    pub(crate) fn new_request(
        &mut self,
        method: Method,
        ruri: String,
        from_user: &str,
        transport: Transport,
    ) -> Message {
        let bound = self.shared.local(transport);
        let cseq = format!("102 {method}");
        let mut m = Message::request(method, ruri.clone());
        m.push(HeaderName::Via, self.via_rport(transport));
        m.push(HeaderName::MaxForwards, "70");
        m.push(
            HeaderName::From,
            format!("<sip:{from_user}@{bound}>;tag={}", self.tokens.token()),
        );
        m.push(HeaderName::To, format!("<{ruri}>"));
        let call_id = self.new_call_id(bound.ip());
        m.push(HeaderName::CallId, call_id);
        m.push(HeaderName::CSeq, cseq);
        let contact = self.shared.contact_uri(from_user, transport);
        m.push(HeaderName::Contact, format!("<{contact}>"));
        m.push(
            HeaderName::UserAgent,
            &self.shared.running().cfg.general.useragent,
        );
        m
    }
}

impl Endpoint {
    /// Where an in-dialog request goes when the dialog has a route set (RFC
    /// 3261 §12.2.1.1): the first `Route` when it is a loose router (`;lr`);
    /// else the Request-URI, which the dialog layer made the strict router's
    /// URI (the remote target then rides as the last Route). `None` without
    /// a Route (or with one that does not resolve): the caller then uses the
    /// leg's known address.
    pub(crate) fn route_hop(&mut self, req: &Message) -> Option<SocketAddr> {
        let route = req.headers.get(&HeaderName::Route)?;
        let first = sirius_sip::message::NameAddr::parse_list(route)
            .ok()?
            .into_iter()
            .next()?;
        let first = first.sip_uri().ok()?;
        if first.params.has("lr") {
            return self.uri_addr(&first);
        }
        self.uri_addr(&sirius_sip::message::Uri::parse(req.request_uri()?).ok()?)
    }

    /// The address a SIP URI names (default port 5060); `None` for a name
    /// whose lookup is not in yet (asked for now) or failed. Names (A/AAAA;
    /// no NAPTR/SRV, as Asterisk without `srvlookup`) go through the
    /// endpoint's cache, never blocking it.
    pub(crate) fn uri_addr(&mut self, uri: &sirius_sip::message::Uri) -> Option<SocketAddr> {
        match self.uri_lookup(uri) {
            super::Lookup::Found(a) => Some(a),
            _ => None,
        }
    }

    /// [`Endpoint::uri_addr`] saying why there is no address yet.
    pub(crate) fn uri_lookup(&mut self, uri: &sirius_sip::message::Uri) -> super::Lookup {
        let port = uri.port.unwrap_or(5060);
        let ip = match &uri.host {
            sirius_sip::message::Host::V4(a) => std::net::IpAddr::V4(*a),
            sirius_sip::message::Host::V6(a) => std::net::IpAddr::V6(*a),
            sirius_sip::message::Host::Name(name) => {
                let found = self.dns.lookup(name, port, self.now);
                match &found {
                    super::Lookup::Pending { ask: true } => {
                        self.out.push_back(super::Output::Resolve {
                            host: name.clone(),
                            port,
                        });
                    }
                    super::Lookup::Failed(e) => log::warn!("{e}"),
                    _ => {}
                }
                return found;
            }
        };
        super::Lookup::Found(SocketAddr::new(ip, port))
    }
}
