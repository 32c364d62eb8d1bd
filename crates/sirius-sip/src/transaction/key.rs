//! Transaction matching keys (RFC 3261 §17.1.3, §17.2.3).

use crate::message::{HeaderName, Message, Method, BRANCH_MAGIC};

/// Client side: the top Via branch plus the CSeq method (a CANCEL shares its
/// INVITE's branch but is a different transaction).
pub fn client_key(msg: &Message) -> Option<String> {
    let via = msg.top_via()?;
    let branch = via.branch()?;
    let method = msg.cseq()?.method;
    Some(format!("c|{branch}|{method}"))
}

fn server_method(m: &Method) -> &str {
    if *m == Method::Ack {
        "INVITE"
    } else {
        m.as_str()
    }
}

/// Server side: branch, sent-by and method (ACK matches INVITE) for RFC 3261
/// branches; for RFC 2543 peers, the fields §17.2.3 lists instead of a branch.
pub fn server_key(msg: &Message) -> Option<String> {
    let via = msg.top_via()?;
    let method = msg.method()?;
    match via.branch() {
        Some(b) if b.starts_with(BRANCH_MAGIC) && b.len() > BRANCH_MAGIC.len() => Some(format!(
            "s|{b}|{}|{}",
            via.sent_by().to_ascii_lowercase(),
            server_method(method)
        )),
        _ => {
            let from_tag = msg
                .from_header()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default();
            Some(format!(
                "s2543|{}|{from_tag}|{}|{}|{}|{}",
                msg.request_uri().unwrap_or_default(),
                msg.call_id().unwrap_or_default(),
                msg.cseq().map_or(0, |c| c.seq),
                msg.headers
                    .values(&HeaderName::Via)
                    .next()
                    .unwrap_or_default(),
                server_method(method)
            ))
        }
    }
}

/// The key of the INVITE server transaction a CANCEL targets (§9.2).
pub fn invite_key_for_cancel(cancel: &Message) -> Option<String> {
    let mut m = cancel.clone();
    if let crate::message::StartLine::Request { method, .. } = &mut m.start {
        *method = Method::Invite;
    }
    let key = server_key(&m)?;
    Some(key)
}
