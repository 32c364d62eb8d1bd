//! Busy-lamp subscriptions with real peers (issue #13): a sipp phone
//! subscribes to a hinted extension (`Event: dialog`), authenticates, and
//! follows a call to it NOTIFY by NOTIFY; `sip show subscriptions` lists it;
//! a presence fetch gets a PIDF body; message-waiting lights follow `mwi
//! update`, subscribed or not.

use sirius_blackbox::{free_udp_port, wait_for_file, Sipp};
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
    let watcher = Sipp::scenario("uac_subscribe_blf.xml")
        .to(&d)
        .service("6001")
        .auth("watcher", "w-secret")
        .trace(&w_trace)
        .errors(&w_errors)
        .start(watcher_port);
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
    let callee = Sipp::builtin("uas").trace(&c_trace).start(callee_port);
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
        Sipp::scenario("uac_subscribe_fetch.xml")
            .to(&d)
            .service("6001")
            .auth("watcher", "w-secret")
            .key("event", event)
            .key("accept", accept)
            .trace(&trace)
            .run()
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
    let (code, _) = run("as-feature-event", "application/x-as-feature-event+xml");
    assert_ne!(code, 0, "refused");
    let t = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(t.contains("SIP/2.0 489 Bad Event"), "{t}");
    assert!(
        t.contains("Allow-Events: dialog, presence, message-summary, call-info"),
        "{t}"
    );
}

/// Message waiting (RFC 3842) both ways: a phone that only listens (a static
/// peer with `mailbox`) is sent its counts when chan_sip starts and when
/// `mwi update` changes them; a phone that subscribes to message-summary
/// (here a fetch) gets them in its NOTIFY. `mwi show` lists the mailbox.
#[test]
fn message_waiting_lights_follow_mwi_update() {
    let phone_port = free_udp_port();
    let dir = tempfile::tempdir().unwrap();
    let (l_trace, f_trace) = (
        dir.path().join("listener.log"),
        dir.path().join("fetch.log"),
    );
    // The listening phone first: chan_sip tells it its counts as it starts.
    let listener = Sipp::scenario("uas_mwi.xml")
        .calls(2)
        .trace(&l_trace)
        .start(phone_port);
    let sip = format!(
        "{SIP_TOML}\n[peers.phone]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {phone_port}\nmailbox = \"1234@default\"\nvmexten = \"*97\"\n\n\
         [peers.watcher]\ntype = \"friend\"\nhost = \"dynamic\"\nsecret = \"w-secret\"\ncontext = \"test\"\nmailbox = \"1234\"\n"
    );
    let d = pbx_with(&sip, "[test]\n\"100\" = [\"Hangup()\"]\n");
    wait_for_file(&l_trace, "Messages-Waiting: no", Duration::from_secs(10));
    assert_eq!(
        d.rx("mwi update 1234 2 1").ok().trim_end(),
        "Mailbox 1234@default: 2 new, 1 old"
    );
    assert_eq!(listener.finish(), Some(0), "{}", d.messages());
    let t = std::fs::read_to_string(&l_trace).unwrap();
    let n = notifies(&t);
    assert_eq!(n.len(), 2, "{t}");
    assert!(n[0].contains("Voice-Message: 0/0 (0/0)"), "{}", n[0]);
    assert!(n[1].contains("Messages-Waiting: yes"), "{}", n[1]);
    assert!(
        n[1].contains("Message-Account: sip:*97@127.0.0.1:"),
        "{}",
        n[1]
    );
    assert!(n[1].contains("Voice-Message: 2/1 (0/0)"), "{}", n[1]);
    assert!(
        !n[1].contains("Subscription-State"),
        "unsolicited: {}",
        n[1]
    );
    let peer = d.rx("sip show peer phone").ok();
    for l in [
        "  Mailbox      : 1234@default\n",
        "  VM Extension : *97\n",
        "  LastMsgsSent : 2/1\n",
    ] {
        assert!(peer.contains(l), "{l} not in:\n{peer}");
    }

    // Subscribed: the watcher's own mailbox (1234@default) in its NOTIFY.
    let (code, out) = Sipp::scenario("uac_subscribe_fetch.xml")
        .to(&d)
        .service("1234")
        .auth("watcher", "w-secret")
        .key("event", "message-summary")
        .key("accept", "application/simple-message-summary")
        .trace(&f_trace)
        .run();
    let t = std::fs::read_to_string(&f_trace).unwrap_or_default();
    assert_eq!(code, 0, "{out}\n{t}");
    let n = &notifies(&t)[0];
    assert!(n.contains("Event: message-summary"), "{n}");
    assert!(n.contains("Voice-Message: 2/1 (0/0)"), "{n}");
    let show = d.rx("mwi show").ok();
    assert!(show.contains("1234@default"), "{show}");
    assert!(show.contains("1 mailbox"), "{show}");
    assert!(d
        .rx("mwi update 12 34 x")
        .failed()
        .contains("'x' is not a message count"));
}
