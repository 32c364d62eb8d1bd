//! `sip show subscriptions`, in chan_sip's layout (`show_channels_cb` with
//! `FORMAT3`/`FORMAT4`): the subscriber's address (no port), its user, the
//! Call-ID, `exten@context` (`--` for message waiting), the last state by
//! Asterisk's name (`<none>` for message waiting), the body type, the
//! mailboxes, and the seconds granted in six digits.

use super::package::{Package, Source};
use crate::endpoint::Endpoint;
use sirius_sip::dialog_info;

impl Endpoint {
    /// This shard's rows, by Call-ID (see [`render_subscriptions`]).
    pub fn subscription_rows(&self) -> Vec<(String, String)> {
        self.subscriptions
            .subs
            .values()
            .map(|s| {
                let (exten, state, mailbox) = match (s.package, s.source) {
                    (Package::MessageSummary, _) => (
                        "--".to_string(),
                        "<none>",
                        s.mailbox.clone().unwrap_or_else(|| "<none>".into()),
                    ),
                    (_, Source::Hint(bits)) => (
                        format!("{}@{}", s.exten, s.context),
                        dialog_info::extension_state_name(bits),
                        "<none>".to_string(),
                    ),
                    (_, Source::Mailbox(_)) => ("--".into(), "<none>", "<none>".into()),
                    (_, Source::Line) => (s.exten.clone(), "<none>", "<none>".into()),
                };
                let row = format!(
                    "{:<15.15}  {:<15.15}  {:<15.15}  {:<15.15}  {:<13.13}  {:<15.15} {:<10.10} {:06}\n",
                    s.dest.ip().to_string(),
                    s.user,
                    s.dialog.call_id,
                    exten,
                    state,
                    s.package.text(),
                    mailbox,
                    s.granted,
                );
                (s.dialog.call_id.clone(), row)
            })
            .collect()
    }
}

/// `sip show subscriptions` from every shard's rows: chan_sip's header,
/// the rows by Call-ID, and the count.
pub fn render_subscriptions(mut rows: Vec<(String, String)>) -> String {
    rows.sort();
    let mut o = format!(
        "{:<15.15}  {:<15.15}  {:<15.15}  {:<15.15}  {:<13.13}  {:<15.15} {:<10.10} {:<6.6}\n",
        "Peer", "User", "Call ID", "Extension", "Last state", "Type", "Mailbox", "Expiry"
    );
    for (_, row) in &rows {
        o += row;
    }
    let n = rows.len();
    o += &format!(
        "{n} active SIP subscription{}\n",
        if n == 1 { "" } else { "s" }
    );
    o
}
