//! What a message-waiting light is told: `application/simple-message-summary`
//! (RFC 3842) for `Event: message-summary`, as Asterisk's chan_sip writes it
//! (`transmit_notify_with_mwi`): whether messages wait, the account to call
//! for them, and the voice messages new/old (urgent ones not counted: `(0/0)`).
//!
//! ```text
//!   Messages-Waiting: yes            <- new > 0
//!   Message-Account: sip:asterisk@pbx   <- the peer's vmexten at our address
//!   Voice-Message: 2/1 (0/0)         <- new/old (urgent new/urgent old)
//! ```

/// The body's MIME type.
pub const CONTENT_TYPE: &str = "application/simple-message-summary";

/// A mailbox's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Messages not heard yet.
    pub new: u32,
    /// Messages heard and kept.
    pub old: u32,
}

/// The body for `counts`, naming `account` (a SIP URI) as the place to
/// call for the messages.
pub fn body(account: &str, counts: Counts) -> String {
    format!(
        "Messages-Waiting: {}\r\nMessage-Account: {account}\r\nVoice-Message: {}/{} (0/0)\r\n",
        if counts.new > 0 { "yes" } else { "no" },
        counts.new,
        counts.old
    )
}

/// Reads a summary body back (RFC 3842 §5.2): whether messages wait and the
/// voice counts; `None` when `Messages-Waiting` is missing or not yes/no.
/// Header names are case-insensitive; other message classes are skipped.
pub fn parse(body: &str) -> Option<(bool, Option<Counts>)> {
    let mut waiting = None;
    let mut voice = None;
    for line in body.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.trim().eq_ignore_ascii_case("Messages-Waiting") {
            waiting = match value.to_ascii_lowercase().as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => return None,
            };
        } else if name.trim().eq_ignore_ascii_case("Voice-Message") {
            let counts = value.split_whitespace().next().unwrap_or("");
            voice = counts.split_once('/').and_then(|(n, o)| {
                Some(Counts {
                    new: n.parse().ok()?,
                    old: o.parse().ok()?,
                })
            });
        }
    }
    Some((waiting?, voice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_reads_as_asterisk_writes_it() {
        let b = body("sip:asterisk@127.0.0.1:5060", Counts { new: 2, old: 1 });
        assert_eq!(
            b,
            "Messages-Waiting: yes\r\nMessage-Account: sip:asterisk@127.0.0.1:5060\r\nVoice-Message: 2/1 (0/0)\r\n"
        );
        assert_eq!(parse(&b), Some((true, Some(Counts { new: 2, old: 1 }))));
        let none = body("sip:asterisk@pbx", Counts { new: 0, old: 3 });
        assert!(none.starts_with("Messages-Waiting: no\r\n"));
        assert_eq!(parse(&none), Some((false, Some(Counts { new: 0, old: 3 }))));
    }

    #[test]
    fn the_parser_follows_rfc_3842() {
        assert_eq!(parse("messages-waiting: NO\r\n"), Some((false, None)));
        assert_eq!(parse("Voice-Message: 1/0\r\n"), None, "no Messages-Waiting");
        assert_eq!(parse("Messages-Waiting: maybe\r\n"), None);
        assert_eq!(
            parse("Messages-Waiting: yes\r\nFax-Message: 1/0\r\nVoice-Message: 3/4 (1/0)\r\n"),
            Some((true, Some(Counts { new: 3, old: 4 })))
        );
    }
}
