//! `sip show channels`, from the sessions themselves (the endpoint owns
//! the dialogs; a mirror elsewhere would drift).

use super::Role;
use crate::endpoint::Endpoint;
use sirius_abi::ChannelId;
use sirius_sip::message::Uri;

#[allow(clippy::too_many_arguments)] // the eight columns
fn channel_row(a: &str, b: &str, c: &str, d: &str, e: &str, f: &str, g: &str, h: &str) -> String {
    format!(
        "{:<15.15}  {:<15.15}  {:<15.15}  {:<15.15}  {:<7.7}  {:<15.15}  {:<10.10}  {:<10.10}\n",
        a, b, c, d, e, f, g, h
    )
}

/// `sip show channels` from the shards' rows: the header, every leg in
/// channel order, the count.
pub fn render_channels(shards: Vec<Vec<(ChannelId, String)>>) -> String {
    let mut out = channel_row(
        "Peer",
        "User/ANR",
        "Call ID",
        "Format",
        "Hold",
        "Last Message",
        "Expiry",
        "Peer",
    );
    let mut legs: Vec<(ChannelId, String)> = shards.into_iter().flatten().collect();
    legs.sort_by_key(|(chan, _)| *chan);
    for (_, r) in &legs {
        out.push_str(r);
    }
    let n = legs.len();
    out.push_str(&format!(
        "{n} active SIP dialog{}\n",
        if n == 1 { "" } else { "s" }
    ));
    out
}

impl Endpoint {
    /// `sip show channels` in chan_sip's layout (`__sip_show_channels`): one row
    /// per call leg, in channel order. Asterisk also lists OPTIONS and REGISTER
    /// dialogs until they are destroyed; Sirius keeps those as transactions
    /// only, so every row here is a call.
    pub fn show_channels(&self) -> String {
        render_channels(vec![self.channel_rows()])
    }

    /// This endpoint's rows of `sip show channels` (each shard gives its
    /// own; [`render_channels`] puts them together).
    pub fn channel_rows(&self) -> Vec<(ChannelId, String)> {
        let mut legs: Vec<(ChannelId, String)> = Vec::new();
        for chan in self.sessions.channels() {
            let Some(s) = self.sessions.get(chan) else {
                continue;
            };
            let user = match &s.role {
                Role::Uas { .. } => s
                    .invite
                    .as_ref()
                    .and_then(|i| i.from_header())
                    .and_then(|f| Uri::parse(&f.uri).ok())
                    .and_then(|u| u.user)
                    .unwrap_or_else(|| "(None)".into()),
                Role::Uac { ruri, .. } => Endpoint::uac_user(ruri),
            };
            let names: Vec<&str> = s.codecs.iter().map(|c| c.name()).collect();
            legs.push((
                chan,
                channel_row(
                    &s.dest.ip().to_string(),
                    &user,
                    s.invite.as_ref().and_then(|i| i.call_id()).unwrap_or(""),
                    &format!("({})", names.join("|")),
                    if s.held { "Yes" } else { "No" },
                    &s.last_msg,
                    "",
                    s.peer.as_deref().unwrap_or("<guest>"),
                ),
            ));
        }
        legs
    }

    /// `sip show inuse [all]`: `* Peer name  In use  Limit`, in use shown as
    /// Asterisk does, calls/ringing/on hold; without `all`, only peers with
    /// a call-limit or a call.
    pub fn show_inuse(&self, all: bool) -> String {
        let running = self.shared.running();
        let mut o = format!("{:<25} {:<15} {:<15} \n", "* Peer name", "In use", "Limit");
        let mut names: Vec<&String> = running.peers.keys().collect();
        names.sort();
        for n in names {
            let p = &running.peers[n];
            let (used, ringing, held) = self.shared.in_use.counts(n);
            if !all && p.call_limit == 0 && used == 0 {
                continue;
            }
            let limit = if p.call_limit == 0 {
                "N/A".to_string()
            } else {
                p.call_limit.to_string()
            };
            let counts = format!("{used}/{ringing}/{held}");
            o += &format!("{:<25} {:<15} {:<15} \n", n, counts, limit);
        }
        o
    }
}
