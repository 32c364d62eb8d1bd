//! Call control beyond REFER from a phone (issue #12), with real peers:
//! the dialplan's `Transfer()`, `channel redirect`, click-to-dial (a REFER
//! outside a call) and call pickup (INVITE with Replaces).

use sirius_blackbox::free_udp_port;
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;
#[path = "transfer_common.rs"]
mod transfer_common;
use transfer_common::*;

/// `channel redirect` from the console: a caller waiting in one extension
/// goes on in another, from the priority given, and its old dialplan stops.
#[test]
fn channel_redirect_moves_a_call_to_another_extension() {
    let d = pbx_with(
        SIP_TOML,
        r#"
[test]
"100" = ["Answer()", "Wait(20)", "Verbose(2,not redirected)", "Hangup()"]
"300" = ["Verbose(2,skipped)", "Verbose(2,redirected to ${EXTEN} at ${PRIORITY})", "Hangup()"]
"#,
    );
    let caller = caller_in_thread(&d, "uac_remote_bye.xml", "100", &[]);
    let chans = d.wait_for("core show channels", Duration::from_secs(10), |o| {
        o.contains("Wait(20)")
    });
    let name = chans
        .split_whitespace()
        .find(|w| w.starts_with("SIP/sipp-"))
        .unwrap()
        .to_string();
    assert_eq!(
        d.rx(&format!("channel redirect {name} 300,2")).ok(),
        format!("Channel '{name}' successfully redirected to test,300,2\n")
    );
    let (code, out) = caller.join().unwrap();
    assert_eq!(code, 0, "the caller got the PBX's BYE:\n{out}");
    let log = d.wait_for_log("redirected to 300 at 2", Duration::from_secs(5));
    assert!(
        !log.contains("skipped") && !log.contains("not redirected"),
        "{log}"
    );
    assert!(d
        .rx("channel redirect SIP/nobody 300,1")
        .failed()
        .starts_with("Channel 'SIP/nobody' not found"));
}

/// Seed 002's third-party call control (click-to-dial): a dialer's REFER
/// outside any dialog asks the PBX to call alice and connect her to 6003;
/// alice answers, 6003 runs in her context (Dial carol), and the dialer
/// hears NOTIFY 100, 180 and the terminating 200.
#[test]
fn a_refer_outside_a_call_calls_the_phone_and_connects_it_to_the_target() {
    let (alice_port, carol_port) = (free_udp_port(), free_udp_port());
    let sip = format!(
        "{SIP_TOML}\n[peers.alice]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {alice_port}\ncontext = \"office\"\n\n\
         [peers.carol]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {carol_port}\n"
    );
    let ext = r#"
[office]
"6003" = ["Verbose(2,connecting ${CHANNEL} to carol)", "Dial(SIP/carol,10)", "Hangup()"]
"#;
    let d = pbx_with(&sip, ext);
    let dir = d.root.path().to_path_buf();
    let (alice_trace, carol_trace, t_trace) = (
        dir.join("alice.log"),
        dir.join("carol.log"),
        dir.join("dialer.log"),
    );
    let alice = phone(alice_port, "uas", &[], &alice_trace);
    let carol = phone(carol_port, "uas", &[], &carol_trace);
    let (code, out) = call(
        &d,
        &[
            "-sf",
            &sf("uac_refer_out_of_dialog.xml"),
            "-s",
            "alice",
            "-key",
            "target",
            "6003",
            "-cid_str",
            "3@dialer.foo.com",
            "-trace_msg",
            "-message_file",
            t_trace.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{}\n{}", read(&t_trace), d.messages());
    let t = read(&t_trace);
    assert!(t.contains("SIP/2.0 202 Accepted"), "{t}");
    assert!(t.contains("Call-ID: 3@dialer.foo.com"), "{t}");
    let reports = notifies(&t);
    assert!(reports[0].contains("\nSIP/2.0 100 Trying"), "{t}");
    let last = reports.last().unwrap();
    assert!(last.contains("\nSIP/2.0 200 OK"), "{last}");
    assert!(last.contains("terminated;reason=noresource"), "{last}");
    let log = d.wait_for_log("connecting SIP/alice-", Duration::from_secs(10));
    assert!(log.contains("-- Executing [6003@office:1]"), "{log}");
    d.wait_for("core show channels", Duration::from_secs(10), |o| {
        o.contains("2 active channels")
    });
    assert!(read(&carol_trace).contains("INVITE sip:carol@"));
    assert_eq!(d.rx("channel request hangup all").ok().lines().count(), 2);
    assert_eq!(alice.finish(), Some(0), "alice: called, then the PBX's BYE");
    assert_eq!(carol.finish(), Some(0), "carol: called, then the PBX's BYE");
}

/// The dialplan's `Transfer(6005)` on a SIP caller: the caller gets a REFER
/// naming 6005 at the PBX, accepts it (TRANSFERSTATUS=SUCCESS) and reports
/// the outcome; its final NOTIFY 200 ends the call with a BYE.
#[test]
fn transfer_in_the_dialplan_sends_a_refer_and_hangs_up_once_it_succeeded() {
    let d = pbx_with(
        SIP_TOML,
        r#"
[test]
"700" = ["Answer()", "Transfer(6005)", "Verbose(2,TRANSFERSTATUS=${TRANSFERSTATUS})", "Wait(10)"]
"#,
    );
    let trace = d.root.path().join("transferred.log");
    let (code, out) = call(
        &d,
        &[
            "-sf",
            &sf("uac_transferred.xml"),
            "-s",
            "700",
            "-trace_msg",
            "-message_file",
            trace.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{}\n{}", read(&trace), d.messages());
    let t = read(&trace);
    assert!(
        t.contains(&format!("Refer-To: <sip:6005@127.0.0.1:{}>", d.sip_port())),
        "{t}"
    );
    assert!(t.contains("Referred-By: <sip:127.0.0.1:"), "{t}");
    let log = d.wait_for_log("TRANSFERSTATUS=SUCCESS", Duration::from_secs(5));
    assert!(log.contains("asked to transfer to 6005"), "{log}");
    d.wait_for("core show channels count", Duration::from_secs(10), |o| {
        o.starts_with("0 active channels")
    });
}

/// Call pickup with RFC 3891: the caller's Dial rings the callee; another
/// phone of the same peer sends an INVITE whose Replaces names that
/// ringing dialog: the callee gets CANCEL, the picker is answered and talks
/// with the caller. A Replaces naming nothing gets 481.
#[test]
fn an_invite_with_replaces_picks_up_a_ringing_call() {
    let callee_port = free_udp_port();
    let sip = format!(
        "{}\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\ncontext = \"test\"\n",
        SIP_TOML.replace("call-limit = 1", "call-limit = 4")
    );
    let d = pbx_with(
        &sip,
        r#"
[test]
"200" = ["Dial(SIP/callee,20)", "Hangup()"]
"#,
    );
    let dir = d.root.path().to_path_buf();
    let callee_trace = dir.join("callee.log");
    let callee = phone(callee_port, "uas_ring_cancel.xml", &[], &callee_trace);
    // The caller on SIP thread 0, the picker (below) on thread 1: the
    // pickup joins calls of two threads.
    let on_0 = ["-cid_str".to_string(), call_id_on(0, "caller")];
    let caller = caller_in_thread(&d, "uac_remote_bye.xml", "200", &on_0);
    // The ringing dialog as the PBX holds it: our tag is the INVITE's From
    // tag, the callee's its 180's To tag.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (call_id, ours, theirs) = loop {
        let t = read(&callee_trace);
        let found = (|| {
            let at = t.find("INVITE sip:")?;
            let cid = t[at..].lines().find(|l| l.starts_with("Call-ID:"))?[8..]
                .trim()
                .to_string();
            Some((
                cid,
                tag_after(&t, "INVITE sip:", "From:")?,
                tag_after(&t, "SIP/2.0 180", "To:")?,
            ))
        })();
        if let Some(f) = found {
            break f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the callee never rang:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let replaces = format!("{call_id};to-tag={ours};from-tag={theirs}");
    let args = [
        "-key",
        "replaces",
        &replaces,
        "-cid_str",
        &call_id_on(1, "picker"),
    ];
    let picker = caller_in_thread(&d, "uac_replaces.xml", "300", &args.map(String::from));
    assert_eq!(
        callee.finish(),
        Some(0),
        "the callee: CANCEL, 487\n{}",
        read(&callee_trace)
    );
    let log = d.wait_for_log(" picked up SIP/callee-", Duration::from_secs(10));
    d.wait_for("core show channels", Duration::from_secs(10), |o| {
        o.contains("2 active channels") && !o.contains("SIP/callee-")
    });
    assert!(log.contains("answered SIP/sipp-00000001; bridged"), "{log}");
    assert_eq!(d.rx("channel request hangup all").ok().lines().count(), 2);
    let (code, out) = caller.join().unwrap();
    assert_eq!(
        code, 0,
        "the caller: answered by the picker, then BYE:\n{out}"
    );
    let (code, out) = picker.join().unwrap();
    assert_eq!(code, 0, "the picker: 200, then BYE:\n{out}");

    // Nothing to replace: 481.
    let (code, out) = call(
        &d,
        &[
            "-sf",
            &sf("uac_replaces_481.xml"),
            "-s",
            "300",
            "-key",
            "replaces",
            "nothing@here;to-tag=a;from-tag=b",
        ],
    );
    assert_eq!(code, 0, "{out}");
}
