//! Busy-lamp subscriptions with real peers (issue #13): a sipp phone
//! subscribes to a hinted extension (`Event: dialog`), authenticates, and
//! follows a call to it NOTIFY by NOTIFY; `sip show subscriptions` lists it;
//! a presence fetch gets a PIDF body.

use sirius_blackbox::{free_udp_port, scenario, sipp, SippProcess};
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;

/// The NOTIFYs a sipp trace received, in order.
fn notifies(trace: &str) -> Vec<String> {
    trace
        .split("message received")
        .skip(1)
        .filter_map(|m| Some(m[m.find("NOTIFY sip:")?..].to_string()))
        .collect()
}

/// A phone watching 6001 (hint `SIP/callee`) is told idle, then ringing,
/// answered and idle again while sipp calls 6001 and the callee answers;
/// each NOTIFY's version is the next; it unsubscribes and is told the
/// subscription ended.
#[test]
fn a_busy_lamp_follows_a_call_to_its_extension() {
    let (watcher_port, callee_port) = (free_udp_port(), free_udp_port());
    let sip = format!(
        "{SIP_TOML}\n[peers.watcher]\ntype = \"friend\"\nhost = \"dynamic\"\nsecret = \"w-secret\"\ncontext = \"test\"\n\n\
         [peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\n"
    );
    let ext = "[test]\n\"6001\" = [\"Dial(SIP/callee,10)\", \"Hangup()\"]\n\n[test.hints]\n\"6001\" = \"SIP/callee\"\n";
    let d = pbx_with(&sip, ext);
    let dir = d.root.path().to_path_buf();
    let (w_trace, c_trace) = (dir.join("watcher.log"), dir.join("callee.log"));
    let w_errors = dir.join("watcher.errors");
    let target = format!("127.0.0.1:{}", d.sip_port());
    let file = scenario("uac_subscribe_blf.xml");
    let watcher = SippProcess::start(
        watcher_port,
        &[
            &target,
            "-sf",
            file.to_str().unwrap(),
            "-s",
            "6001",
            "-au",
            "watcher",
            "-ap",
            "w-secret",
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            w_trace.to_str().unwrap(),
            "-trace_err",
            "-error_file",
            w_errors.to_str().unwrap(),
        ],
    );
    let shown = d.wait_for("sip show subscriptions", Duration::from_secs(10), |o| {
        o.contains("1 active SIP subscription\n")
    });
    let row = format!("{:<15.15}  {:<15.15}  ", "127.0.0.1", "watcher");
    assert!(shown.contains(&row), "{shown}");
    assert!(
        shown.contains("6001@test        Idle           dialog-info+xml <none>     000120\n"),
        "{shown}"
    );
    assert!(d.rx("core show hints").ok().contains("Watchers  1"));

    // A call to 6001: the callee (sipp's own uas) rings and answers at
    // once; the caller hangs up after a second.
    let callee = sirius_blackbox::SippProcess::start(
        callee_port,
        &[
            "-sn",
            "uas",
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            c_trace.to_str().unwrap(),
        ],
    );
    let (code, out) = call(&d, &["-sn", "uac", "-s", "6001", "-d", "1000"]);
    assert_eq!(code, 0, "{out}\n{}", d.messages());
    assert_eq!(callee.finish(), Some(0));
    let end = watcher.finish();
    let t = std::fs::read_to_string(&w_trace).unwrap_or_default();
    let errors = std::fs::read_to_string(&w_errors).unwrap_or_default();
    assert_eq!(end, Some(0), "{errors}\n{t}\n{}", d.messages());
    let n = notifies(&t);
    assert_eq!(n.len(), 5, "{t}");
    for (i, m) in n.iter().enumerate() {
        assert!(m.contains(&format!("version=\"{i}\"")), "{m}");
        assert!(
            m.contains("Content-Type: application/dialog-info+xml"),
            "{m}"
        );
        assert!(
            m.contains("entity=\"sip:6001@127.0.0.1:"),
            "the entity is the URI subscribed to: {m}"
        );
    }
    assert!(t.contains("SIP/2.0 401 Unauthorized"), "{t}");
    d.wait_for("sip show subscriptions", Duration::from_secs(5), |o| {
        o.contains("\n0 active SIP subscriptions\n")
    });
    assert!(d.rx("core show hints").ok().contains("Watchers  0"));
}

/// `Event: presence` with `Accept: application/pidf+xml`, as a fetch
/// (`Expires: 0`): authenticated, answered 200, one NOTIFY with the
/// extension's presence in PIDF (open, Ready while the callee is free), and
/// nothing left behind. A package the PBX does not serve gets 489.
#[test]
fn a_presence_fetch_gets_pidf_and_an_unknown_package_489() {
    let sip = format!(
        "{SIP_TOML}\n[peers.watcher]\ntype = \"friend\"\nhost = \"dynamic\"\nsecret = \"w-secret\"\ncontext = \"test\"\n\n\
         [peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {}\n",
        free_udp_port()
    );
    let ext =
        "[test]\n\"6001\" = [\"Dial(SIP/callee,10)\"]\n\n[test.hints]\n\"6001\" = \"SIP/callee\"\n";
    let d = pbx_with(&sip, ext);
    let trace = d.root.path().join("fetch.log");
    let run = |event: &str, accept: &str| {
        sipp(&[
            &format!("127.0.0.1:{}", d.sip_port()),
            "-p",
            &free_udp_port().to_string(),
            "-m",
            "1",
            "-sf",
            scenario("uac_subscribe_fetch.xml").to_str().unwrap(),
            "-s",
            "6001",
            "-au",
            "watcher",
            "-ap",
            "w-secret",
            "-key",
            "event",
            event,
            "-key",
            "accept",
            accept,
            "-trace_msg",
            "-message_file",
            trace.to_str().unwrap(),
        ])
    };
    let (code, out) = run("presence", "application/pidf+xml");
    let t = std::fs::read_to_string(&trace).unwrap_or_default();
    assert_eq!(code, 0, "{out}\n{t}\n{}", d.messages());
    let n = &notifies(&t)[0];
    assert!(n.contains("Event: presence"), "{n}");
    assert!(n.contains("Content-Type: application/pidf+xml"), "{n}");
    assert!(n.contains("<note>Ready</note>"), "{n}");
    assert!(n.contains("<basic>open</basic>"), "{n}");
    assert!(d
        .rx("sip show subscriptions")
        .ok()
        .contains("\n0 active SIP subscriptions\n"));
    assert!(d.rx("core show hints").ok().contains("Watchers  0"));

    let _ = std::fs::remove_file(&trace);
    let (code, _) = run("message-summary;x=1", "application/simple-message-summary");
    assert_ne!(code, 0, "refused");
    let t = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(t.contains("SIP/2.0 489 Bad Event"), "{t}");
    assert!(t.contains("Allow-Events: dialog, presence"), "{t}");
}
