//! `sip show channels`, from the sessions themselves (the endpoint owns
//! the dialogs; a mirror elsewhere would drift).

use super::Role;
use crate::endpoint::Endpoint;
use sirius_abi::ChannelId;
use sirius_sip::message::Uri;

impl Endpoint {
    /// `sip show channels` in chan_sip's layout (`__sip_show_channels`): one row
    /// per call leg, in channel order. Asterisk also lists OPTIONS and REGISTER
    /// dialogs until they are destroyed; Sirius keeps those as transactions
    /// only, so every row here is a call.
    pub fn show_channels(&self) -> String {
        let row = |a: &str, b: &str, c: &str, d: &str, e: &str, f: &str, g: &str, h: &str| {
            format!(
                "{:<15.15}  {:<15.15}  {:<15.15}  {:<15.15}  {:<7.7}  {:<15.15}  {:<10.10}  {:<10.10}\n",
                a, b, c, d, e, f, g, h
            )
        };
        let mut out = row(
            "Peer",
            "User/ANR",
            "Call ID",
            "Format",
            "Hold",
            "Last Message",
            "Expiry",
            "Peer",
        );
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
                row(
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
}
