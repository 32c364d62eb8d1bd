//! Shared Call Appearance with real peers (issue #13, seed 003): both phones
//! of a line register as the line; phone 2 watches `Event: call-info`; a
//! call to the line rings both (each INVITE with `Call-Info:
//! …;appearance-index=1`); phone 1 answers (phone 2's INVITE is cancelled
//! "Call completed elsewhere") and holds; phone 2 takes the call over (an
//! INVITE without a user, From = To = the line, `Call-Info` naming
//! appearance 1); phone 1's leg is released; the watcher sees idle,
//! alerting, active, held, active and idle again. (Phone 2 rings on the
//! port it registered from, and watches and picks up from ports of its own:
//! a sipp process plays one role.)

use sirius_blackbox::{free_udp_port, sipp_register, wait_for_file, Daemon, Sipp, SippProcess};
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;

/// A PBX whose peer `line` is a shared line (`line_keys`: its
/// `shared-appearances` and `max-contacts` lines), its phones registering
/// as the line with `l-secret`, on the dialplan `ext`.
fn line_pbx(line_keys: &str, ext: &str) -> Daemon {
    let sip = format!(
        "{SIP_TOML}\n[peers.line]\nhost = \"dynamic\"\nsecret = \"l-secret\"\ncontext = \"test\"\n{line_keys}"
    );
    pbx_with(&sip, ext)
}

/// sipp on `port` playing `scenario` as a phone of the line watching it
/// (authenticated as the line), tracing to `trace`; once subscribed.
fn watch_line(d: &Daemon, scenario: &str, trace: &std::path::Path, port: u16) -> SippProcess {
    let watcher = Sipp::scenario(scenario)
        .to(d)
        .service("line")
        .auth("line", "l-secret")
        .trace(trace)
        .start(port);
    d.wait_for("sip show subscriptions", Duration::from_secs(10), |o| {
        o.contains("1 active SIP subscription\n")
    });
    watcher
}

/// The NOTIFYs' `Call-Info` values in a sipp trace, in order.
fn call_infos(trace: &str) -> Vec<String> {
    trace
        .split("message received")
        .skip(1)
        .filter(|m| m.contains("NOTIFY sip:"))
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("Call-Info:"))
                .map(|l| l["Call-Info:".len()..].trim().to_string())
        })
        .collect()
}

#[test]
fn a_held_call_on_a_shared_line_is_taken_over_by_another_phone() {
    let ext = "[test]\n\"7000\" = [\"Dial(SIP/line,20)\", \"Hangup()\"]\n";
    let d = line_pbx("shared-appearances = 2\nmax-contacts = 2\n", ext);
    let dir = d.root.path().to_path_buf();
    let (w_trace, p1_trace, p2_trace, pick_trace) = (
        dir.join("watcher.log"),
        dir.join("phone1.log"),
        dir.join("phone2.log"),
        dir.join("picker.log"),
    );
    let (p1, p2, pw, pick) = (
        free_udp_port(),
        free_udp_port(),
        free_udp_port(),
        free_udp_port(),
    );
    // Phone 2 last: the newest contact (the call's own INVITE), phone 1 the
    // other branch of the fork, which answers.
    for port in [p1, p2] {
        let (code, out) = sipp_register(&d, "register_accepted.xml", "line", "l-secret", port, 1);
        assert_eq!(code, 0, "{out}");
    }
    let watcher = watch_line(&d, "uac_sca_watch.xml", &w_trace, pw);
    let phone1 = Sipp::scenario("uas_sca_hold.xml")
        .trace(&p1_trace)
        .start(p1);
    let phone2 = Sipp::scenario("uas_ring_cancel.xml")
        .trace(&p2_trace)
        .start(p2);
    // The caller: held, taken off hold by the takeover, then the PBX's BYE.
    let caller = {
        let caller = Sipp::scenario("uac_sca_caller.xml").to(&d).service("7000");
        std::thread::spawn(move || caller.run())
    };
    wait_for_file(
        &w_trace,
        "appearance-index=1;appearance-state=held",
        Duration::from_secs(15),
    );
    let lines = d.rx("sip show sharedlines").ok();
    assert!(
        lines.contains("\nline             1      held         \"Ovidiu Sas\" <sip:4164542289@"),
        "{lines}"
    );
    let (code, out) = Sipp::scenario("uac_sca_pickup.xml")
        .to(&d)
        .service("line")
        .auth("line", "l-secret")
        .trace(&pick_trace)
        .run_from(pick);
    let t = std::fs::read_to_string(&pick_trace).unwrap_or_default();
    assert_eq!(code, 0, "{out}\n{t}\n{}", d.messages());
    let (code, out) = caller.join().unwrap();
    assert_eq!(
        code, 0,
        "the caller talked to the new phone, then the BYE: {out}"
    );
    assert_eq!(
        phone1.finish(),
        Some(0),
        "phone 1: answered, held, released"
    );
    assert_eq!(phone2.finish(), Some(0), "phone 2: rang, then the CANCEL");
    let t2 = std::fs::read_to_string(&p2_trace).unwrap();
    assert!(
        t2.contains("Call-Info: <sip:line@127.0.0.1>;appearance-index=1"),
        "{t2}"
    );
    assert!(
        t2.contains("Reason: SIP;cause=200;text=\"Call completed elsewhere\""),
        "{t2}"
    );
    assert_eq!(watcher.finish(), Some(0), "{}", d.messages());
    let seen = call_infos(&std::fs::read_to_string(&w_trace).unwrap());
    let state = |s: &str| seen.iter().position(|c| c.contains(s));
    let idle = "<sip:line@127.0.0.1>;appearance-index=*;appearance-state=idle";
    assert_eq!(seen.first().map(String::as_str), Some(idle), "{seen:#?}");
    let held = state("appearance-index=1;appearance-state=held").unwrap();
    let active_after = seen[held..]
        .iter()
        .position(|c| c.contains("appearance-index=1;appearance-state=active"));
    assert!(
        active_after.is_some(),
        "taken over: active again: {seen:#?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some(idle), "{seen:#?}");
    assert!(
        seen.iter().any(|c| c.contains("appearance-uri=")),
        "the caller is shown: {seen:#?}"
    );
    assert!(d
        .rx("core show channels count")
        .ok()
        .starts_with("0 active channels"));
}

/// RFC 3903 with a real peer: a line's phone PUBLISHes call-info, refreshes
/// it with SIP-If-Match (a new SIP-ETag each time), is refused 412 for a
/// stale tag, and removes it.
#[test]
fn a_phone_publishes_call_info() {
    let d = line_pbx(
        "shared-appearances = 1\n",
        "[test]\n\"1\" = [\"Hangup()\"]\n",
    );
    let trace = d.root.path().join("publish.log");
    let (code, out) = Sipp::scenario("uac_publish.xml")
        .to(&d)
        .service("line")
        .auth("line", "l-secret")
        .trace(&trace)
        .run();
    let t = std::fs::read_to_string(&trace).unwrap_or_default();
    assert_eq!(code, 0, "{out}\n{t}\n{}", d.messages());
    assert!(t.contains("SIP/2.0 412 Conditional Request Failed"), "{t}");
}

/// An attribute's value in a dialog-info body (`call-id="…"`).
fn attr(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(body[at..].split('"').next()?.to_string())
}

/// The same line in RFC 7463's form, with real peers: the watcher
/// subscribes to `Event: dialog;shared` and is told the call as dialog-info
/// (early, confirmed with the phone's dialog, held); the other phone takes
/// the held call with `Replaces` naming that dialog (to-tag the PBX's,
/// from-tag the phone's); the first phone's leg is released, the appearance
/// stays with the call (confirmed, not held) and is freed when it ends.
#[test]
fn a_call_on_a_shared_line_is_taken_with_replaces_as_rfc_7463_has_it() {
    let ext = "[test]\n\"7000\" = [\"Dial(SIP/line,20)\", \"Hangup()\"]\n";
    let d = line_pbx("shared-appearances = 2\n", ext);
    let dir = d.root.path().to_path_buf();
    let (w_trace, p1_trace, pick_trace) = (
        dir.join("watcher.log"),
        dir.join("phone1.log"),
        dir.join("picker.log"),
    );
    let (p1, pw) = (free_udp_port(), free_udp_port());
    let (code, out) = sipp_register(&d, "register_accepted.xml", "line", "l-secret", p1, 1);
    assert_eq!(code, 0, "{out}");
    let watcher = watch_line(&d, "uac_sa_watch.xml", &w_trace, pw);
    let phone1 = Sipp::scenario("uas_sca_hold.xml")
        .trace(&p1_trace)
        .start(p1);
    let caller = {
        let caller = Sipp::scenario("uac_sca_caller.xml").to(&d).service("7000");
        std::thread::spawn(move || caller.run())
    };
    let t = wait_for_file(&w_trace, "pval=\"no\"", Duration::from_secs(15));
    // The held call's dialog, from the last NOTIFY so far.
    let last = &t[t.rfind("NOTIFY sip:").unwrap()..];
    let (call_id, phone_tag, pbx_tag) = (
        attr(last, "call-id").expect("the phone's dialog"),
        attr(last, "local-tag").unwrap(),
        attr(last, "remote-tag").unwrap(),
    );
    assert!(last.contains("<sa:appearance>1</sa:appearance>"), "{last}");
    assert!(
        last.contains("<sa:exclusive>false</sa:exclusive>"),
        "{last}"
    );
    let (code, out) = Sipp::scenario("uac_sa_replaces.xml")
        .to(&d)
        .service("line")
        .auth("line", "l-secret")
        .key("target", &call_id)
        .key("totag", &pbx_tag)
        .key("fromtag", &phone_tag)
        .trace(&pick_trace)
        .run();
    let pt = std::fs::read_to_string(&pick_trace).unwrap_or_default();
    assert_eq!(code, 0, "{out}\n{pt}\n{}", d.messages());
    let (code, out) = caller.join().unwrap();
    assert_eq!(code, 0, "the caller talked to the new phone: {out}");
    assert_eq!(
        phone1.finish(),
        Some(0),
        "phone 1: answered, held, released"
    );
    let end = watcher.finish();
    let t = std::fs::read_to_string(&w_trace).unwrap();
    assert_eq!(end, Some(0), "{t}\n{}", d.messages());
    let notifies: Vec<&str> = t
        .split("message received")
        .skip(1)
        .filter(|m| m.contains("NOTIFY sip:"))
        .collect();
    let states: Vec<&str> = notifies
        .iter()
        .map(|n| {
            if !n.contains("<dialog ") {
                "idle"
            } else if n.contains("pval=\"no\"") {
                "held"
            } else if n.contains("<state>confirmed</state>") {
                "confirmed"
            } else {
                "early"
            }
        })
        .collect();
    assert_eq!(states.first(), Some(&"idle"), "{states:?}");
    assert_eq!(states.last(), Some(&"idle"), "{states:?}");
    let held = states.iter().position(|s| *s == "held").unwrap();
    // Taken: the same appearance, the one call on the line, not held.
    let taken = notifies[held..]
        .iter()
        .find(|n| n.contains("<state>confirmed</state>") && !n.contains("pval=\"no\""))
        .unwrap_or_else(|| panic!("taken: confirmed, not held: {states:?}"));
    assert_eq!(taken.matches("<dialog ").count(), 1, "{taken}");
    assert!(
        taken.contains("<sa:appearance>1</sa:appearance>"),
        "{taken}"
    );
    assert!(states[..held].contains(&"early"), "rang first: {states:?}");
    assert!(d
        .rx("core show channels count")
        .ok()
        .starts_with("0 active channels"));
}

/// RFC 7463 §5.3.1 with a real peer: the line's phone PUBLISHes a seizure
/// of appearance 2 (a `trying` dialog naming its coming INVITE's Call-ID),
/// then calls out: the call holds appearance 2, not the lowest free one;
/// another call's seizure of it is refused 400 while the call is up.
#[test]
fn a_phone_seizes_an_appearance_before_calling_out() {
    let ext = "[test]\n\"7001\" = [\"Answer()\", \"Wait(3)\", \"Hangup()\"]\n";
    let d = line_pbx("shared-appearances = 2\n", ext);
    let trace = d.root.path().join("seize.log");
    let phone = {
        let phone = Sipp::scenario("uac_sa_seize.xml")
            .to(&d)
            .service("line")
            .auth("line", "l-secret")
            .key("dest", "7001")
            .trace(&trace);
        std::thread::spawn(move || phone.run())
    };
    let table = d.wait_for("sip show sharedlines", Duration::from_secs(10), |o| {
        o.contains("\nline             2      active ")
    });
    assert!(!table.contains("\nline             1 "), "{table}");
    let (code, out) = phone.join().unwrap();
    let t = std::fs::read_to_string(&trace).unwrap_or_default();
    assert_eq!(code, 0, "{out}\n{t}\n{}", d.messages());
    assert!(
        t.contains("SIP/2.0 400 Bad Request (appearance in use)"),
        "{t}"
    );
    d.wait_for("sip show sharedlines", Duration::from_secs(5), |o| {
        !o.contains("\nline             2 ")
    });
}
