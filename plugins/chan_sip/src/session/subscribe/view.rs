//! `sip show subscriptions`, in chan_sip's layout (`show_channels_cb` with
//! `FORMAT3`/`FORMAT4`): the subscriber's address (no port), its user, the
//! Call-ID, `exten@context` (`--` for message waiting), the last state by
//! Asterisk's name (`<none>` for message waiting), the body type, the
//! mailboxes, and the seconds granted in six digits.

use super::package::{Package, Source};
use crate::endpoint::Endpoint;
use sirius_abi::view::Table;
use sirius_sip::dialog_info;

impl Endpoint {
    /// This shard's rows, by Call-ID (see [`render_subscriptions`]).
    pub fn subscription_rows(&self) -> Vec<(String, Vec<String>)> {
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
                let row = vec![
                    s.dest.ip().to_string(),
                    s.user.clone(),
                    s.dialog.call_id.clone(),
                    exten,
                    state.to_string(),
                    s.package.text().to_string(),
                    mailbox,
                    format!("{:06}", s.granted),
                ];
                (s.dialog.call_id.clone(), row)
            })
            .collect()
    }
}

/// Every shard's rows as one table, by Call-ID, with the count.
pub fn subscriptions_table(rows: Vec<(String, Vec<String>)>) -> Table {
    let mut rows = rows;
    rows.sort();
    let mut t = Table::new(&crate::show::SUBSCRIPTION_HEADERS);
    for (_, r) in rows {
        t.row(r);
    }
    let n = t.rows.len();
    t.totals.push(("active SIP subscriptions", n.into()));
    t
}

/// `sip show subscriptions` from every shard's rows: chan_sip's header,
/// the rows by Call-ID, and the count.
pub fn render_subscriptions(t: &Table) -> String {
    let row = |r: &[&str]| {
        format!(
            "{:<15.15}  {:<15.15}  {:<15.15}  {:<15.15}  {:<13.13}  {:<15.15} {:<10.10} {}\n",
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]
        )
    };
    let mut o = row(&t.headers);
    for r in &t.rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        o += &row(&r);
    }
    let n = t.rows.len();
    o += &format!(
        "{n} active SIP subscription{}\n",
        if n == 1 { "" } else { "s" }
    );
    o
}
