//! Dialogs (RFC 3261 §12): identity, route set, remote target, sequence numbers.
//!
//! A [`Dialog`] is created from the INVITE and the response that establishes it
//! (UAC side) or from the INVITE we answer (UAS side). It builds in-dialog
//! requests (BYE, re-INVITE, INFO, REFER, NOTIFY, the ACK for a 2xx) with the
//! right Request-URI, Route set and CSeq, and checks incoming ones: a CSeq
//! lower than the last one is refused with 500 (§12.2.2), and a request whose
//! To tag names no dialog gets 481 ([`DialogTable::classify`]).

use crate::message::{HeaderName, Headers, Message, Method, NameAddr, Via};
use std::fmt::Write as _;

/// Dialog identifier, from our side's point of view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Their tag.
    pub remote_tag: String,
}

/// Early (1xx with tag) or confirmed (2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Established by a provisional response.
    Early,
    /// Established by a 2xx.
    Confirmed,
}

/// Why a dialog cannot be built or a request not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header the dialog needs is missing or malformed.
    #[error("missing or bad {0}")]
    Header(&'static str),
    /// The request's CSeq is lower than the last one seen (answer 500).
    #[error("CSeq {got} is lower than the last remote CSeq {last}")]
    CSeqOutOfOrder {
        /// Received.
        got: u32,
        /// Last seen.
        last: u32,
    },
}

impl DialogError {
    /// The response to send for a refused request.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            DialogError::CSeqOutOfOrder { .. } => (500, "Server Internal Error"),
            DialogError::Header(_) => (400, "Bad Request"),
        }
    }
}

/// One dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Identity.
    pub id: DialogId,
    /// Early or confirmed.
    pub state: DialogState,
    /// Our URI (From of our requests), without tag.
    pub local_uri: String,
    /// Their URI (To of our requests), without tag.
    pub remote_uri: String,
    /// Last CSeq we used.
    pub local_seq: u32,
    /// Last CSeq they used.
    pub remote_seq: Option<u32>,
    /// Where our requests go (their Contact).
    pub remote_target: String,
    /// Route set, in the order our requests carry it.
    pub route_set: Vec<String>,
    /// Our Contact.
    pub local_contact: String,
}

fn contact_uri(msg: &Message) -> Option<String> {
    let c = msg.headers.values(&HeaderName::Contact).next()?;
    NameAddr::parse(c).ok().filter(|n| !n.star).map(|n| n.uri)
}

fn record_route(msg: &Message) -> Vec<String> {
    msg.headers
        .values(&HeaderName::RecordRoute)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn without_tag(n: &NameAddr) -> String {
    let mut n = n.clone();
    n.params.remove("tag");
    n.to_string()
}

impl Dialog {
    /// UAC side: from the INVITE we sent and a 1xx (with To tag) or 2xx.
    /// The route set is the response's Record-Route, reversed (§12.1.2).
    pub fn from_uac(
        invite: &Message,
        resp: &Message,
        local_contact: &str,
    ) -> Result<Dialog, DialogError> {
        let from = invite.from_header().ok_or(DialogError::Header("From"))?;
        let to = resp.to_header().ok_or(DialogError::Header("To"))?;
        let local_tag = from
            .tag()
            .ok_or(DialogError::Header("From tag"))?
            .to_string();
        let remote_tag = to.tag().ok_or(DialogError::Header("To tag"))?.to_string();
        let call_id = invite
            .call_id()
            .ok_or(DialogError::Header("Call-ID"))?
            .to_string();
        let seq = invite.cseq().ok_or(DialogError::Header("CSeq"))?.seq;
        let mut route_set = record_route(resp);
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag,
                remote_tag,
            },
            state: if resp.code().is_some_and(|c| (200..300).contains(&c)) {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local_uri: without_tag(&from),
            remote_uri: without_tag(&to),
            local_seq: seq,
            remote_seq: None,
            remote_target: contact_uri(resp)
                .unwrap_or_else(|| invite.request_uri().unwrap_or_default().to_string()),
            route_set,
            local_contact: local_contact.to_string(),
        })
    }

    /// UAS side: from the INVITE we answer with our tag. The route set is the
    /// request's Record-Route in order (§12.1.1).
    ///
    /// Our first in-dialog request counts from `local_seq` (RFC 3261
    /// §12.1.1 lets the UAS pick any start; the caller passes a random one,
    /// so this crate draws no randomness of its own here).
    pub fn from_uas(
        invite: &Message,
        local_tag: &str,
        local_contact: &str,
        local_seq: u16,
    ) -> Result<Dialog, DialogError> {
        let from = invite.from_header().ok_or(DialogError::Header("From"))?;
        let to = invite.to_header().ok_or(DialogError::Header("To"))?;
        let remote_tag = from
            .tag()
            .ok_or(DialogError::Header("From tag"))?
            .to_string();
        let call_id = invite
            .call_id()
            .ok_or(DialogError::Header("Call-ID"))?
            .to_string();
        let seq = invite.cseq().ok_or(DialogError::Header("CSeq"))?.seq;
        Ok(Dialog {
            id: DialogId {
                call_id,
                local_tag: local_tag.to_string(),
                remote_tag,
            },
            state: DialogState::Early,
            local_uri: without_tag(&to),
            remote_uri: without_tag(&from),
            local_seq: u32::from(local_seq),
            remote_seq: Some(seq),
            remote_target: contact_uri(invite).ok_or(DialogError::Header("Contact"))?,
            route_set: record_route(invite),
            local_contact: local_contact.to_string(),
        })
    }

    /// Marks the dialog confirmed (2xx sent or received).
    pub fn confirm(&mut self) {
        self.state = DialogState::Confirmed;
    }

    /// Checks an incoming in-dialog request's CSeq and records it (§12.2.2).
    /// ACK and CANCEL carry the INVITE's number and are not checked.
    pub fn accept_remote_cseq(&mut self, req: &Message) -> Result<(), DialogError> {
        let method = req.method().ok_or(DialogError::Header("method"))?;
        if matches!(method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let seq = req.cseq().ok_or(DialogError::Header("CSeq"))?.seq;
        if let Some(last) = self.remote_seq {
            if seq < last {
                return Err(DialogError::CSeqOutOfOrder { got: seq, last });
            }
        }
        self.remote_seq = Some(seq);
        Ok(())
    }

    /// Target refresh (§12.2): a re-INVITE, UPDATE or their 2xx to ours may carry a new Contact.
    pub fn refresh_target(&mut self, msg: &Message) {
        if let Some(uri) = contact_uri(msg) {
            self.remote_target = uri;
        }
    }

    /// Builds an in-dialog request. CSeq increments, except for ACK (the
    /// INVITE's number, pass it as `ack_of`) — CANCEL is not built here
    /// (it belongs to the transaction it cancels).
    pub fn request(&mut self, method: Method, via: &Via, ack_of: Option<u32>) -> Message {
        let seq = match (&method, ack_of) {
            (Method::Ack, Some(n)) => n,
            _ => {
                self.local_seq += 1;
                self.local_seq
            }
        };
        // Loose routing when the first route has `lr` (or there is no route set);
        // strict routing otherwise: the first route becomes the Request-URI and
        // the remote target goes last (§12.2.1.1).
        let strict = self
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .is_some_and(|n| !n.sip_uri().is_ok_and(|u| u.params.has("lr")));
        let (ruri, routes): (String, Vec<String>) = if strict {
            let first = NameAddr::parse(&self.route_set[0])
                .map(|n| n.uri)
                .unwrap_or_default();
            let mut rest: Vec<String> = self.route_set[1..].to_vec();
            rest.push(format!("<{}>", self.remote_target));
            (first, rest)
        } else {
            (self.remote_target.clone(), self.route_set.clone())
        };
        let via = via.to_string();
        let contact = !matches!(method, Method::Ack | Method::Bye | Method::Cancel);
        // The header lists made to measure: grown a header at a time they
        // kept room for eight headers and up to twice the bytes, and a
        // 2xx's ACK is kept for as long as the call lasts (issue #11).
        let bytes = via.len()
            + 2
            + routes.iter().map(String::len).sum::<usize>()
            + self.local_uri.len()
            + self.remote_uri.len()
            + 2 * ";tag=".len()
            + self.id.local_tag.len()
            + self.id.remote_tag.len()
            + self.id.call_id.len()
            + CSEQ_DIGITS
            + method.as_str().len()
            + if contact {
                self.local_contact.len() + 2
            } else {
                0
            };
        let mut m = Message::request(method.clone(), ruri);
        m.headers = Headers::with_capacity(6 + routes.len() + usize::from(contact), bytes);
        m.push(HeaderName::Via, via);
        m.push(HeaderName::MaxForwards, "70");
        for r in routes {
            m.push(HeaderName::Route, r);
        }
        let tagged = |b: &mut String, uri: &str, tag: &str| {
            b.push_str(uri);
            b.push_str(";tag=");
            b.push_str(tag);
        };
        m.headers.push_with(HeaderName::From, |b| {
            tagged(b, &self.local_uri, &self.id.local_tag)
        });
        m.headers.push_with(HeaderName::To, |b| {
            tagged(b, &self.remote_uri, &self.id.remote_tag)
        });
        m.push(HeaderName::CallId, &self.id.call_id);
        m.headers.push_with(HeaderName::CSeq, |b| {
            let _ = write!(b, "{seq} {method}");
        });
        if contact {
            m.headers.push_with(HeaderName::Contact, |b| {
                b.push('<');
                b.push_str(&self.local_contact);
                b.push('>');
            });
        }
        m
    }
}

/// The most a CSeq number and the space after it take (u32).
const CSEQ_DIGITS: usize = 11;

/// How an incoming request relates to the dialogs we have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// No To tag: a new dialog-creating (or out-of-dialog) request.
    OutOfDialog,
    /// Belongs to this dialog.
    InDialog(DialogId),
    /// Has a To tag naming no dialog of ours: answer 481 (except ACK: drop).
    Unknown,
}

/// The dialogs of an endpoint.
///
/// Each dialog is boxed and found by the id inside it: the table holds a
/// pointer per slot, not a copy of the id (three strings) beside a
/// 200-byte dialog. A hash table runs between under half and seven-eighths
/// full, and both legs of a held call have a dialog, so the inline layout
/// took about 1.3 KiB per held call at 4,000 calls (16,384 slots for 8,000
/// dialogs), a tenth of it all (issue #11, `bench/report-memory.md`).
#[derive(Default)]
pub struct DialogTable {
    dialogs: hashbrown::HashTable<Box<Dialog>>,
    hasher: foldhash::quality::RandomState,
}

impl std::fmt::Debug for DialogTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialogTable")
            .field("len", &self.dialogs.len())
            .finish()
    }
}

impl DialogTable {
    fn hash(&self, id: &DialogId) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, id)
    }

    /// Stores a dialog (replacing one with the same id).
    pub fn insert(&mut self, d: Dialog) {
        let hash = self.hash(&d.id);
        let hasher = &self.hasher;
        match self.dialogs.entry(
            hash,
            |x| x.id == d.id,
            |x| std::hash::BuildHasher::hash_one(hasher, &x.id),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut e) => **e.get_mut() = d,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(Box::new(d));
            }
        }
    }

    /// A dialog, to read.
    pub fn get(&self, id: &DialogId) -> Option<&Dialog> {
        self.dialogs
            .find(self.hash(id), |x| x.id == *id)
            .map(|b| &**b)
    }

    /// Removes a dialog.
    pub fn remove(&mut self, id: &DialogId) -> Option<Dialog> {
        let hash = self.hash(id);
        match self.dialogs.find_entry(hash, |x| x.id == *id) {
            Ok(e) => Some(*e.remove().0),
            Err(_) => None,
        }
    }

    /// A dialog by id.
    pub fn get_mut(&mut self, id: &DialogId) -> Option<&mut Dialog> {
        let hash = self.hash(id);
        self.dialogs
            .find_mut(hash, |x| x.id == *id)
            .map(|b| &mut **b)
    }

    /// Number of dialogs.
    pub fn len(&self) -> usize {
        self.dialogs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.dialogs.is_empty()
    }

    /// After a burst: gives back the room of a table now mostly empty. A
    /// hash table keeps the room of its largest size; when less than a
    /// quarter of it is used, this rehashes the dialogs left into a table
    /// twice their number (at least 64), a small cost once, so the endpoint
    /// calls it when many calls have ended, not per removal.
    pub fn shrink(&mut self) {
        let (len, cap) = (self.dialogs.len(), self.dialogs.capacity());
        if cap > 64 && len < cap / 4 {
            let hasher = &self.hasher;
            self.dialogs.shrink_to((len * 2).max(64), |x| {
                std::hash::BuildHasher::hash_one(hasher, &x.id)
            });
        }
    }

    /// Classifies a request by its Call-ID and tags (local = To tag, remote = From tag).
    pub fn classify(&self, req: &Message) -> Classified {
        let Some(to_tag) = req.to_ref().and_then(|t| t.tag().map(str::to_string)) else {
            return Classified::OutOfDialog;
        };
        let id = DialogId {
            call_id: req.call_id().unwrap_or_default().to_string(),
            local_tag: to_tag,
            remote_tag: req
                .from_ref()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default(),
        };
        if self.get(&id).is_some() {
            Classified::InDialog(id)
        } else {
            Classified::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{build, parse_datagram, Host, Limits};

    fn parse(s: &str) -> Message {
        parse_datagram(s.replace('\n', "\r\n").as_bytes(), &Limits::default()).unwrap()
    }

    fn invite() -> Message {
        parse(
            "INVITE sip:bob@biloxi.example.com SIP/2.0\n\
             Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\n\
             Max-Forwards: 70\n\
             From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\n\
             To: Bob <sip:bob@biloxi.example.com>\n\
             Call-ID: 3848276298220188511@atlanta.example.com\n\
             CSeq: 1 INVITE\n\
             Contact: <sip:alice@client.atlanta.example.com;transport=udp>\n\
             Record-Route: <sip:ss2.biloxi.example.com;lr>\n\
             Record-Route: <sip:ss1.atlanta.example.com;lr>\n\
             Content-Length: 0\n\n",
        )
    }

    fn ok_200(inv: &Message) -> Message {
        let mut r = build::response(inv, 200, "OK", None);
        build::set_to_tag(&mut r, "8321234356");
        r.push(
            HeaderName::Contact,
            "<sip:bob@client.biloxi.example.com;transport=udp>",
        );
        for rr in inv.headers.all(&HeaderName::RecordRoute) {
            r.push(HeaderName::RecordRoute, rr);
        }
        r
    }

    fn via() -> Via {
        Via::new(
            "UDP",
            Host::Name("client.atlanta.example.com".into()),
            Some(5060),
            "z9hG4bKnew",
        )
    }

    #[test]
    fn uac_dialog_routes_in_reverse_record_route_order() {
        let inv = invite();
        let mut d =
            Dialog::from_uac(&inv, &ok_200(&inv), "sip:alice@client.atlanta.example.com").unwrap();
        assert_eq!(d.state, DialogState::Confirmed);
        assert_eq!(d.id.remote_tag, "8321234356");
        let bye = d.request(Method::Bye, &via(), None);
        let text = bye.to_string();
        assert!(
            text.starts_with("BYE sip:bob@client.biloxi.example.com;transport=udp SIP/2.0\r\n"),
            "{text}"
        );
        let routes: Vec<&str> = bye.headers.all(&HeaderName::Route).collect();
        assert_eq!(
            routes,
            vec![
                "<sip:ss1.atlanta.example.com;lr>",
                "<sip:ss2.biloxi.example.com;lr>"
            ]
        );
        assert_eq!(bye.headers.get(&HeaderName::CSeq), Some("2 BYE"));
        assert_eq!(
            bye.headers.get(&HeaderName::From),
            Some("\"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl")
        );
        assert_eq!(
            bye.headers.get(&HeaderName::To),
            Some("\"Bob\" <sip:bob@biloxi.example.com>;tag=8321234356")
        );
        let ack = d.request(Method::Ack, &via(), Some(1));
        assert_eq!(ack.headers.get(&HeaderName::CSeq), Some("1 ACK"));
        assert_eq!(
            d.request(Method::Info, &via(), None)
                .headers
                .get(&HeaderName::CSeq),
            Some("3 INFO")
        );
    }

    #[test]
    fn uas_dialog_checks_cseq_and_refreshes_target() {
        let inv = invite();
        let mut d =
            Dialog::from_uas(&inv, "8321234356", "sip:bob@client.biloxi.example.com", 7).unwrap();
        assert_eq!(
            d.route_set,
            vec![
                "<sip:ss2.biloxi.example.com;lr>",
                "<sip:ss1.atlanta.example.com;lr>"
            ]
        );
        let mut reinvite = inv.clone();
        reinvite.headers.set(HeaderName::CSeq, "2 INVITE");
        reinvite
            .headers
            .set(HeaderName::Contact, "<sip:alice@198.51.100.7>");
        assert_eq!(d.accept_remote_cseq(&reinvite), Ok(()));
        d.refresh_target(&reinvite);
        assert_eq!(d.remote_target, "sip:alice@198.51.100.7");
        let mut stale = inv.clone();
        stale.headers.set(HeaderName::CSeq, "1 BYE");
        if let crate::message::StartLine::Request { method, .. } = &mut stale.start {
            *method = Method::Bye;
        }
        let err = d.accept_remote_cseq(&stale).unwrap_err();
        assert_eq!(err, DialogError::CSeqOutOfOrder { got: 1, last: 2 });
        assert_eq!(err.status(), (500, "Server Internal Error"));
        let mut ack = inv.clone();
        ack.headers.set(HeaderName::CSeq, "1 ACK");
        if let crate::message::StartLine::Request { method, .. } = &mut ack.start {
            *method = Method::Ack;
        }
        assert_eq!(
            d.accept_remote_cseq(&ack),
            Ok(()),
            "ACK carries the INVITE's CSeq"
        );
    }

    #[test]
    fn strict_route_moves_to_the_request_uri() {
        let inv = invite();
        let mut resp = ok_200(&inv);
        resp.headers.remove(&HeaderName::RecordRoute);
        resp.push(HeaderName::RecordRoute, "<sip:strict.example.com>");
        let mut d = Dialog::from_uac(&inv, &resp, "sip:alice@client.atlanta.example.com").unwrap();
        let bye = d.request(Method::Bye, &via(), None);
        assert_eq!(bye.request_uri(), Some("sip:strict.example.com"));
        assert_eq!(
            bye.headers.all(&HeaderName::Route).collect::<Vec<_>>(),
            vec!["<sip:bob@client.biloxi.example.com;transport=udp>"]
        );
    }

    #[test]
    fn unknown_dialogs_are_classified_for_481() {
        let inv = invite();
        let mut table = DialogTable::default();
        assert_eq!(table.classify(&inv), Classified::OutOfDialog);
        let d = Dialog::from_uas(&inv, "t1", "sip:bob@h", 7).unwrap();
        let id = d.id.clone();
        table.insert(d);
        let mut bye = inv.clone();
        bye.headers
            .set(HeaderName::To, "Bob <sip:bob@biloxi.example.com>;tag=t1");
        assert_eq!(table.classify(&bye), Classified::InDialog(id));
        bye.headers
            .set(HeaderName::To, "Bob <sip:bob@biloxi.example.com>;tag=nope");
        assert_eq!(table.classify(&bye), Classified::Unknown);
    }

    #[test]
    fn a_table_emptied_after_a_burst_gives_its_room_back() {
        let inv = invite();
        let mut table = DialogTable::default();
        let ids: Vec<DialogId> = (0..4000)
            .map(|i| {
                let d = Dialog::from_uas(&inv, &format!("t{i}"), "sip:bob@h", 7).unwrap();
                let id = d.id.clone();
                table.insert(d);
                id
            })
            .collect();
        let full = table.dialogs.capacity();
        // Still over a quarter full: kept as it is (it may fill again).
        for id in &ids[..2000] {
            table.remove(id);
        }
        table.shrink();
        // (Removals leave tombstones that count against the capacity.)
        assert!(table.dialogs.capacity() > full * 3 / 4);
        // Under a quarter full: room for twice the dialogs left.
        for id in &ids[2000..3900] {
            table.remove(id);
        }
        table.shrink();
        assert!(
            table.dialogs.capacity() < full / 8,
            "{}",
            table.dialogs.capacity()
        );
        assert!(table.dialogs.capacity() >= 200);
        assert_eq!(table.len(), 100);
        assert!(table.get(&ids[3999]).is_some());
    }
}
