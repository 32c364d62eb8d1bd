//! Call detail records with real peers (issue #15): calls from sipp through
//! Sirius to a sipp callee leave one row each in `log/cdr-csv/Master.csv`,
//! in Asterisk's column order, read here as a CSV parser reads it: an
//! answered call (ANSWERED, the callee as `dstchannel`, `Dial` its last
//! application, the caller's `accountcode`), a busy one (BUSY: offered to
//! a callee, so recorded without `unanswered`), and none for a call that
//! only ran dialplan and was refused (Asterisk's `unanswered = no`);
//! `cdr show status` says where they go.

use sirius_blackbox::{free_udp_port, Daemon, Sipp};
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;

/// One CSV line split into its fields (quotes removed, doubled quotes
/// undone), as Asterisk's readers (and a spreadsheet) read Master.csv.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut chars) = (false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[test]
fn each_call_leaves_a_row_in_master_csv() {
    let callee_port = free_udp_port();
    let sip = format!(
        "{}\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\n",
        SIP_TOML.replace(
            "call-limit = 1\n",
            "call-limit = 1\naccountcode = \"acme\"\n"
        )
    );
    let ext = "[test]\n\"300\" = [\"Dial(SIP/callee,5)\", \"Hangup()\"]\n\"301\" = [\"Busy()\"]\n";
    let d = Daemon::with_chan_sip(&[
        ("sip.toml", sip.as_str()),
        ("extensions.toml", ext),
        (
            "cdr.toml",
            "[general]\nunanswered = false\n\n[csv]\nusegmtime = false\n",
        ),
    ]);
    let status = d.rx("cdr show status").ok();
    for l in [
        "  Logging:                    Enabled\n",
        "  Mode:                       Simple\n",
        "  Log unanswered calls:       No\n",
        "* Registered Backends\n  -------------------\n    csv\n",
    ] {
        assert!(status.contains(l), "{l:?} not in:\n{status}");
    }

    // Answered: the callee answers at once, the caller hangs up after 1 s.
    let callee = Sipp::builtin("uas").start(callee_port);
    let (code, out) = call(&d, &["-sn", "uac", "-s", "300", "-d", "1000"]);
    assert_eq!(code, 0, "{out}\n{}", d.messages());
    assert_eq!(callee.finish(), Some(0));
    // Busy: the callee refuses.
    let callee = Sipp::scenario("uas_busy.xml").start(callee_port);
    let _ = call(&d, &["-sn", "uac", "-s", "300"]);
    assert_eq!(callee.finish(), Some(0));

    // Refused by the dialplan itself, offered to nobody: no record.
    let _ = call(&d, &["-sn", "uac", "-s", "301"]);
    // A call after it, so that its absence is not a race with the writer.
    let callee = Sipp::builtin("uas").start(callee_port);
    let (code, out) = call(&d, &["-sn", "uac", "-s", "300"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(callee.finish(), Some(0));

    let file = d.root.path().join("log/cdr-csv/Master.csv");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let t = std::fs::read_to_string(&file).unwrap_or_default();
        if t.lines().count() >= 3 || std::time::Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let rows: Vec<Vec<String>> = text.lines().map(fields).collect();
    assert_eq!(
        rows.len(),
        3,
        "two answered, one busy, none for 301:\n{text}"
    );
    for r in &rows {
        assert_eq!(r.len(), 18, "Asterisk's 18 columns: {r:?}");
        assert_eq!(r[0], "acme", "accountcode");
        assert_eq!(r[1], "sipp", "src: the caller's number");
        assert_eq!(
            (r[2].as_str(), r[3].as_str()),
            ("300", "test"),
            "dst, dcontext"
        );
        assert_eq!(r[4], "\"sipp\" <sipp>", "clid");
        assert!(r[5].starts_with("SIP/sipp-"), "channel {r:?}");
        assert!(r[6].starts_with("SIP/callee-"), "dstchannel {r:?}");
        assert_eq!((r[7].as_str(), r[8].as_str()), ("Dial", "SIP/callee,5"));
        assert_eq!(r[9].len(), 19, "start YYYY-MM-DD HH:MM:SS: {r:?}");
        assert_eq!(r[15], "DOCUMENTATION");
        assert!(r[16].contains('.'), "uniqueid {r:?}");
    }
    let (answered, busy) = (&rows[0], &rows[1]);
    assert_eq!(answered[14], "ANSWERED", "{answered:?}");
    assert_eq!(answered[10].len(), 19, "answered at: {answered:?}");
    let (duration, billsec): (u64, u64) =
        (answered[12].parse().unwrap(), answered[13].parse().unwrap());
    assert!(
        (1..=3).contains(&billsec) && duration >= billsec,
        "{answered:?}"
    );
    assert_eq!(busy[14], "BUSY", "{busy:?}");
    assert_eq!(
        (busy[10].as_str(), busy[13].as_str()),
        ("", "0"),
        "never answered: {busy:?}"
    );
    assert!(
        text.lines().nth(1).unwrap().contains("\",,\""),
        "an empty answer is unquoted"
    );
    assert_eq!(rows[2][14], "ANSWERED");
    let status = d.rx("cdr show status").ok();
    assert!(
        status.contains("  Records: 3 posted, 3 written, 0 failed ("),
        "{status}"
    );
    // accountlogs: the caller's account has a file of its own.
    let acme = std::fs::read_to_string(d.root.path().join("log/cdr-csv/acme.csv")).unwrap();
    assert_eq!(acme, text);
}
