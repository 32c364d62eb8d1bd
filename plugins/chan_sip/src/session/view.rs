//! `sip show channels`, from the sessions themselves (the endpoint owns
//! the dialogs; a mirror elsewhere would drift).

use super::Role;
use crate::endpoint::Endpoint;
use sirius_abi::view::Table;
use sirius_abi::ChannelId;
use sirius_sip::message::Uri;

/// `sip show channels`' layout of one row.
fn channel_row(r: &[&str]) -> String {
    format!(
        "{:<15.15}  {:<15.15}  {:<15.15}  {:<15.15}  {:<7.7}  {:<15.15}  {:<10.10}  {:<10.10}\n",
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]
    )
}

/// The shards' rows as one table, every leg in channel order.
pub fn channels_table(shards: Vec<Vec<(ChannelId, Vec<String>)>>) -> Table {
    let mut legs: Vec<(ChannelId, Vec<String>)> = shards.into_iter().flatten().collect();
    legs.sort_by_key(|(chan, _)| *chan);
    let mut t = Table::new(&crate::show::CHANNEL_HEADERS);
    for (_, r) in legs {
        t.row(r);
    }
    let n = t.rows.len();
    t.totals.push(("active SIP dialogs", n.into()));
    t
}

/// `sip show channels`: the header, the rows, the count.
pub fn render_channels(t: &Table) -> String {
    let mut out = channel_row(&t.headers);
    for r in &t.rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        out.push_str(&channel_row(&r));
    }
    let n = t.rows.len();
    out.push_str(&format!(
        "{n} active SIP dialog{}\n",
        if n == 1 { "" } else { "s" }
    ));
    out
}

/// `sip show inuse [all]`: `* Peer name  In use  Limit`.
pub fn render_inuse(t: &Table) -> String {
    let mut o = format!(
        "{:<25} {:<15} {:<15} \n",
        t.headers[0], t.headers[1], t.headers[2]
    );
    for r in &t.rows {
        o += &format!("{:<25} {:<15} {:<15} \n", r[0], r[1], r[2]);
    }
    o
}

impl Endpoint {
    /// `sip show channels` in chan_sip's layout (`__sip_show_channels`): one row
    /// per call leg, in channel order. Asterisk also lists OPTIONS and REGISTER
    /// dialogs until they are destroyed; Sirius keeps those as transactions
    /// only, so every row here is a call.
    pub fn show_channels(&self) -> String {
        render_channels(&channels_table(vec![self.channel_rows()]))
    }

    /// This endpoint's rows of `sip show channels` (each shard gives its
    /// own; [`render_channels`] puts them together).
    pub fn channel_rows(&self) -> Vec<(ChannelId, Vec<String>)> {
        let mut legs: Vec<(ChannelId, Vec<String>)> = Vec::new();
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
                vec![
                    s.dest.ip().to_string(),
                    user,
                    s.invite
                        .as_ref()
                        .and_then(|i| i.call_id())
                        .unwrap_or("")
                        .to_string(),
                    format!("({})", names.join("|")),
                    if s.held { "Yes" } else { "No" }.to_string(),
                    s.last_msg.clone(),
                    String::new(),
                    s.peer.as_deref().unwrap_or("<guest>").to_string(),
                ],
            ));
        }
        legs
    }

    /// `sip show inuse [all]` (see [`crate::show::inuse`]).
    pub fn show_inuse(&self, all: bool) -> String {
        render_inuse(&crate::show::inuse(&self.shared, all))
    }
}
