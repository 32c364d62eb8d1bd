//! Several contacts per peer (`max_contacts`, issue #13) with real peers:
//! two sipp phones register as one peer; a call to it rings both, the
//! first answer wins, and the other phone's INVITE is cancelled with
//! `Reason: SIP;cause=200;text="Call completed elsewhere"`.

use sirius_blackbox::{free_udp_port, sipp_register, SippProcess};
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;

fn to_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_call_to_a_peer_on_two_phones_rings_both_and_cancels_the_other() {
    let sip = format!(
        "{SIP_TOML}\n[peers.shared]\nhost = \"dynamic\"\nsecret = \"s-secret\"\nmax-contacts = 2\ncontext = \"test\"\n"
    );
    let ext = "[test]\n\"300\" = [\"Dial(SIP/shared,10)\", \"Hangup()\"]\n";
    let d = pbx_with(&sip, ext);
    let (a, b) = (free_udp_port(), free_udp_port());
    for port in [a, b] {
        let (code, out) = sipp_register(&d, "register_accepted.xml", "shared", "s-secret", port, 1);
        assert_eq!(code, 0, "{out}");
    }
    let peer = d.rx("sip show peer shared").ok();
    assert!(peer.contains("  Max contacts : 2\n"), "{peer}");
    assert!(
        peer.contains(&format!(
            "  Contact      : sip:shared@127.0.0.1:{a} (127.0.0.1:{a}, "
        )),
        "the older phone listed too:\n{peer}"
    );
    let dir = d.root.path().to_path_buf();
    let (a_trace, b_trace) = (dir.join("a.log"), dir.join("b.log"));
    let trace = |p: &std::path::Path| {
        vec![
            "-m".to_string(),
            "1".into(),
            "-trace_msg".into(),
            "-message_file".into(),
            p.to_str().unwrap().to_string(),
        ]
    };
    // Phone a answers at once; phone b rings until cancelled.
    let mut a_args = vec!["-sn".to_string(), "uas".into()];
    a_args.extend(trace(&a_trace));
    let mut b_args = vec!["-sf".to_string(), sf("uas_ring_cancel.xml")];
    b_args.extend(trace(&b_trace));
    let phone_a = SippProcess::start(a, &to_refs(&a_args));
    let phone_b = SippProcess::start(b, &to_refs(&b_args));
    let (code, out) = call(&d, &["-sn", "uac", "-s", "300", "-d", "500"]);
    assert_eq!(code, 0, "{out}\n{}", d.messages());
    assert_eq!(phone_a.finish(), Some(0), "a: answered, then the BYE");
    assert_eq!(phone_b.finish(), Some(0), "b: rang, then the CANCEL");
    let (ta, tb) = (
        std::fs::read_to_string(&a_trace).unwrap(),
        std::fs::read_to_string(&b_trace).unwrap(),
    );
    let call_id = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("Call-ID:"))
            .map(str::to_string)
    };
    assert_eq!(call_id(&ta), call_id(&tb), "one call, forked");
    assert!(
        tb.contains("Reason: SIP;cause=200;text=\"Call completed elsewhere\""),
        "{tb}"
    );
    d.wait_for("core show channels count", Duration::from_secs(5), |o| {
        o.starts_with("0 active channels")
    });
}
