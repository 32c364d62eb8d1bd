//! The shape of a log line, Asterisk's `plain` formatter (main/logger.c
//! `format_log_plain`, also its console's layout), whose `file:line
//! function:` part fail2ban's stock `asterisk` filter expects:
//!
//! ```text
//! [Dec  3 21:00:59] NOTICE[4242]: registrar.rs:399 chan_sip: Registration from '<sip:bob@…>' failed for '127.0.0.1:5061' - Wrong password
//! [Dec  3 21:00:59] SECURITY[4242]: security.rs:128 sirius_abi: SecurityEvent="InvalidPassword",…
//! [Dec  3 21:00:59] VERBOSE[4243] pbx.rs:     -- Executing [100@default:1] Dial("SIP/alice-00000001", "SIP/bob")
//! ```
//!
//! `LEVEL[thread id]: file:line module: message`, where Asterisk has the
//! C function in the module's place (Rust's `log` records carry the module
//! path, not the function). Every line has all four parts for a reason: the
//! filter's prefix ends with an *optional* ` function:` group, so on a line
//! without one that group swallows the message up to the first `: ` and a
//! caller who puts `: ` in a SIP header escapes the ban.
//!
//! A message's further lines (a SIP message at `sip set debug on`) start
//! with [`CONTINUATION`]: the filter needs no date and skips at most one
//! word (a host name) before the level, so two marks in front of whatever
//! a caller sent keep it from being read as a line of its own.

use super::config::Class;
use std::fmt::Write;

/// The place a record was logged from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin<'a> {
    /// Source file (`plugins/chan_sip/src/registrar.rs`).
    pub file: Option<&'a str>,
    /// Line in it.
    pub line: Option<u32>,
    /// Module path (`chan_sip::registrar`).
    pub module: Option<&'a str>,
}

/// The kernel's id of the calling thread (Asterisk's "LWP" in `NOTICE[…]`),
/// looked up once per thread.
pub fn thread_id() -> i32 {
    thread_local! {
        static TID: i32 = {
            // SAFETY: gettid has no preconditions and cannot fail.
            unsafe { libc::gettid() }
        };
    }
    TID.with(|t| *t)
}

/// The part of a source path a reader needs: below the crate's `src/`
/// (`endpoint/client.rs`), as Asterisk names `chan_sip.c`.
pub fn short_file(file: &str) -> &str {
    match file.rfind("/src/") {
        Some(i) => &file[i + 5..],
        None => file.rsplit('/').next().unwrap_or(file),
    }
}

/// The crate of a module path (`chan_sip::registrar` → `chan_sip`); the
/// target when there is no module path (`verbose:3` has none to give).
fn module_name<'a>(origin: &Origin<'a>, target: &'a str) -> &'a str {
    let m = origin.module.unwrap_or(target);
    m.split("::").next().unwrap_or(m)
}

/// One line for a file or the console, without the trailing newline.
pub fn line(stamp: &str, class: Class, origin: &Origin<'_>, target: &str, message: &str) -> String {
    let mut s = String::with_capacity(48 + message.len());
    let file = origin.file.map_or("?", short_file);
    let module = module_name(origin, target).replace(':', ".");
    let _ = match class {
        Class::Verbose => write!(s, "[{stamp}] VERBOSE[{}] {file}: ", thread_id()),
        _ => write!(
            s,
            "[{stamp}] {}[{}]: {file}:{} {module}: ",
            class.name(),
            thread_id(),
            origin.line.unwrap_or(0)
        ),
    };
    push_message(&mut s, message);
    s
}

/// Asterisk's console shows a verbose line as its bare text (`    -- …`).
pub fn console_verbose(message: &str) -> String {
    let mut s = String::with_capacity(message.len());
    push_message(&mut s, message);
    s
}

/// What starts each further line of a message (see the module's doc).
pub const CONTINUATION: &str = "  | | ";

/// Appends `message`, its further lines after [`CONTINUATION`] and
/// carriage returns dropped (see the module's doc).
fn push_message(s: &mut String, message: &str) {
    let message = message.trim_end_matches(['\r', '\n']);
    let mut lines = message.split('\n');
    if let Some(first) = lines.next() {
        s.push_str(first.trim_end_matches('\r'));
    }
    for l in lines {
        s.push('\n');
        s.push_str(CONTINUATION);
        s.push_str(l.trim_end_matches('\r'));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asterisk_shape() {
        let o = Origin {
            file: Some("plugins/chan_sip/src/registrar.rs"),
            line: Some(399),
            module: Some("chan_sip::registrar"),
        };
        let l = line(
            "Dec  3 21:00:59",
            Class::Notice,
            &o,
            "chan_sip::registrar",
            "hello: there",
        );
        let tid = thread_id();
        assert_eq!(
            l,
            format!("[Dec  3 21:00:59] NOTICE[{tid}]: registrar.rs:399 chan_sip: hello: there")
        );
        let l = line(
            "D",
            Class::Verbose,
            &o,
            "verbose:3",
            "    -- Called SIP/bob",
        );
        assert_eq!(
            l,
            format!("[D] VERBOSE[{tid}] registrar.rs:     -- Called SIP/bob")
        );
        // No origin at all (an old plugin): still four parts.
        let l = line("D", Class::Warning, &Origin::default(), "verbose:1", "x");
        assert_eq!(l, format!("[D] WARNING[{tid}]: ?:0 verbose.1: x"));
    }

    #[test]
    fn a_message_cannot_start_a_line() {
        let l = line(
            "D",
            Class::Debug,
            &Origin::default(),
            "m",
            "INVITE sip:x SIP/2.0\r\n\r\n[Dec  3 21:00:59] NOTICE[1]: a.rs:1 m: forged\r\n",
        );
        assert!(
            l.ends_with(
                "INVITE sip:x SIP/2.0\n  | | \n  | | [Dec  3 21:00:59] NOTICE[1]: a.rs:1 m: forged"
            ),
            "{l:?}"
        );
        assert_eq!(console_verbose("  -- x\n"), "  -- x");
    }

    #[test]
    fn short_files() {
        assert_eq!(
            short_file("plugins/chan_sip/src/endpoint/client.rs"),
            "endpoint/client.rs"
        );
        assert_eq!(
            short_file("/root/.cargo/registry/src/index/tokio-1/src/net.rs"),
            "net.rs"
        );
        assert_eq!(short_file("build.rs"), "build.rs");
    }
}
