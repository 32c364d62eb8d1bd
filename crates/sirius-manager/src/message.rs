//! The wire format: a message is `Key: Value` lines ending in an empty
//! line, each line ending in `\r\n` (a bare `\n` is accepted, as Asterisk's
//! `get_input` does). [`Framer`] cuts a byte stream into [`Message`]s with
//! bounds on what a client can make us hold: a line longer than
//! [`MAX_LINE`] discards its whole message (Asterisk: "Line too long"),
//! and headers after the [`MAX_HEADERS`]th are dropped (`AST_MAX_MANHEADERS`).
//! [`Reply`] writes responses and events, with values made single-line so
//! that no value can forge a header or end a message early.

/// Longest line kept, in bytes (Asterisk's input buffer is 1025 bytes).
pub const MAX_LINE: usize = 1024;

/// Headers kept per message (Asterisk's `AST_MAX_MANHEADERS`).
pub const MAX_HEADERS: usize = 128;

/// One action as the client sent it: headers in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// `(key, value)` in order, keys as sent.
    pub headers: Vec<(String, String)>,
}

impl Message {
    /// The first value of `key` (case-insensitive), `""` when absent, as
    /// `astman_get_header` returns.
    pub fn get(&self, key: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `key` (`Variable:` may repeat).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// A message from `Key: Value` pairs (tests, internal use).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Message {
        Message {
            headers: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// Cuts a byte stream into messages (sans IO: bytes in, messages out).
#[derive(Debug, Default)]
pub struct Framer {
    /// Bytes of the line being received.
    line: Vec<u8>,
    /// The message being received.
    current: Message,
    /// Whether the current line overflowed: its message is discarded.
    discarding: bool,
    /// Messages discarded for an overlong line since the last look.
    pub discarded: usize,
}

impl Framer {
    /// A framer at the start of a stream.
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Takes bytes read from the socket; appends the messages they complete.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Message>) {
        for &b in bytes {
            if b == b'\n' {
                self.end_line(out);
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            } else {
                self.discarding = true;
            }
        }
    }

    fn end_line(&mut self, out: &mut Vec<Message>) {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            // The end of a message; empty lines between messages are nothing.
            let m = std::mem::take(&mut self.current);
            if std::mem::take(&mut self.discarding) {
                self.discarded += 1;
            } else if !m.headers.is_empty() {
                out.push(m);
            }
            return;
        }
        if self.discarding || self.current.headers.len() >= MAX_HEADERS {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        if let Some((k, v)) = text.split_once(':') {
            let key = k.trim();
            if !key.is_empty() {
                self.current
                    .headers
                    .push((key.to_string(), v.trim_start().trim_end().to_string()));
            }
        }
    }
}

/// A response or event being written.
#[derive(Debug, Default, Clone)]
pub struct Reply(String);

/// A value on one line: CR and LF (and other controls) become spaces, so
/// a channel variable or a client's ActionID cannot add a header.
fn one_line(v: &str) -> std::borrow::Cow<'_, str> {
    if v.bytes().any(|b| b < 0x20 && b != b'\t') {
        std::borrow::Cow::Owned(
            v.chars()
                .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

impl Reply {
    /// `Response: <what>` then `ActionID` when the action had one.
    pub fn response(what: &str, action: &Message) -> Reply {
        let mut r = Reply(String::with_capacity(128));
        r.kv("Response", what);
        r.action_id(action);
        r
    }

    /// `Event: <name>`.
    pub fn event(name: &str) -> Reply {
        let mut r = Reply(String::with_capacity(256));
        r.kv("Event", name);
        r
    }

    /// `Response: Error` + `Message:` (`astman_send_error`).
    pub fn error(action: &Message, message: &str) -> String {
        let mut r = Reply::response("Error", action);
        r.kv("Message", message);
        r.end()
    }

    /// `Response: Success` + `Message:` (`astman_send_ack`).
    pub fn ack(action: &Message, message: &str) -> String {
        let mut r = Reply::response("Success", action);
        r.kv("Message", message);
        r.end()
    }

    /// Appends `Key: Value`.
    pub fn kv(&mut self, key: &str, value: &str) -> &mut Reply {
        self.0.push_str(key);
        self.0.push_str(": ");
        self.0.push_str(&one_line(value));
        self.0.push_str("\r\n");
        self
    }

    /// Appends the action's `ActionID`, if it had one.
    pub fn action_id(&mut self, action: &Message) -> &mut Reply {
        let id = action.get("ActionID");
        if !id.is_empty() {
            self.kv("ActionID", id);
        }
        self
    }

    /// Appends fields in order.
    pub fn fields<'a>(
        &mut self,
        fields: impl IntoIterator<Item = &'a (String, String)>,
    ) -> &mut Reply {
        for (k, v) in fields {
            self.kv(k, v);
        }
        self
    }

    /// The message with its closing empty line.
    pub fn end(mut self) -> String {
        self.0.push_str("\r\n");
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(chunks: &[&[u8]]) -> (Vec<Message>, usize) {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, &mut out);
        }
        (out, f.discarded)
    }

    #[test]
    fn messages_end_at_an_empty_line_whatever_the_chunks() {
        let (m, _) = frame(&[
            b"Action: Log",
            b"in\r\nUsername:  admin \r\n",
            b"\r",
            b"\n\r\nAction: Ping\n\n",
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].get("action"), "Login");
        assert_eq!(m[0].get("USERNAME"), "admin");
        assert_eq!(m[0].get("Secret"), "");
        assert_eq!(m[1].get("Action"), "Ping");
        // Values keep their colons; lines without one are ignored.
        let (m, _) = frame(&[b"Action: Command\r\nCommand: a:b c\r\nnonsense\r\n\r\n"]);
        assert_eq!(m[0].get("Command"), "a:b c");
        assert_eq!(m[0].headers.len(), 2);
    }

    #[test]
    fn an_overlong_line_discards_its_message_and_nothing_else() {
        let long = vec![b'x'; MAX_LINE * 4];
        let (m, discarded) = frame(&[
            b"Action: Ping\r\nJunk: ",
            &long,
            b"\r\n\r\nAction: Ping\r\nActionID: 2\r\n\r\n",
        ]);
        assert_eq!(discarded, 1);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].get("ActionID"), "2");
    }

    #[test]
    fn headers_are_bounded() {
        let mut text = String::from("Action: Setvar\r\n");
        for i in 0..1000 {
            text.push_str(&format!("Variable: v{i}\r\n"));
        }
        text.push_str("\r\n");
        let (m, _) = frame(&[text.as_bytes()]);
        assert_eq!(m[0].headers.len(), MAX_HEADERS);
        // Binary junk neither panics nor yields a message.
        let (m, _) = frame(&[&[0xff, 0xfe, 0, b'\n', b'\n', b':', b'\n', b'\n']]);
        assert!(m.is_empty());
    }

    #[test]
    fn values_cannot_add_headers() {
        let action = Message::from_pairs(&[("ActionID", "1\r\nEvent: Forged")]);
        let text = Reply::ack(&action, "ok\nResponse: Success");
        assert_eq!(
            text,
            "Response: Success\r\nActionID: 1  Event: Forged\r\nMessage: ok Response: Success\r\n\r\n"
        );
    }
}
