//! Several contacts per peer (`max_contacts`, issue #13) with real peers:
//! two sipp phones register as one peer; a call to it rings both, the
//! first answer wins, and the other phone's INVITE is cancelled with
//! `Reason: SIP;cause=200;text="Call completed elsewhere"`.

use sirius_blackbox::{free_udp_port, sipp_register, Sipp};
use std::time::Duration;

#[path = "calls_common.rs"]
mod common;
use common::*;

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
    // Phone a answers at once; phone b rings until cancelled.
    let phone_a = Sipp::builtin("uas").trace(&a_trace).start(a);
    let phone_b = Sipp::scenario("uas_ring_cancel.xml")
        .trace(&b_trace)
        .start(b);
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
