//! The owner table: which usage owns each client transaction, through its
//! provisional and final responses.

use super::*;

/// The kinds of usage that own a client transaction now, sorted.
fn owners(h: &Harness) -> Vec<&'static str> {
    let mut kinds: Vec<_> =
        h.ep.owners
            .values()
            .map(|o| match o {
                Owner::Poke(_) => "poke",
                Owner::Register(_) => "register",
                Owner::Invite(_) => "invite",
                Owner::ReInvite(_) => "reinvite",
                Owner::Refresh(_) => "refresh",
                Owner::Cancelled(_) => "cancelled",
                Owner::ReferNotify(_) => "refer-notify",
                Owner::ReferOut(_) => "refer-out",
                Owner::SubNotify(_) => "sub-notify",
                Owner::ForkBranch(_) => "fork-branch",
                Owner::Fire(_) => "fire",
            })
            .collect();
    kinds.sort();
    kinds
}

#[test]
fn an_invite_stays_owned_after_its_2xx_and_a_bye_until_its_final_response() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, invite) = placed_outbound(&mut h, 100);
    assert_eq!(owners(&h), ["invite"]);
    h.recv(&reply(&invite, 180, "Ringing", "b1"), BOB);
    assert_eq!(owners(&h), ["invite"]);
    let mut ok = reply(&invite, 200, "OK", "b1");
    ok.push(HeaderName::Contact, format!("<sip:bob@{BOB}>"));
    ok.set_body("application/sdp", sdp(41_000, "sendrecv"));
    h.recv(&ok, BOB);
    // A second fork's 2xx must still reach the session (to be ACKed and ended).
    assert_eq!(owners(&h), ["invite"]);

    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    let bye = h
        .sent()
        .into_iter()
        .map(|(_, m)| m)
        .find(|m| m.method() == Some(&Method::Bye))
        .expect("BYE");
    assert_eq!(owners(&h), ["fire"]);
    h.recv(&reply(&bye, 100, "Trying", "b1"), BOB);
    assert_eq!(owners(&h), ["fire"]);
    h.recv(&reply(&bye, 200, "OK", "b1"), BOB);
    assert!(owners(&h).is_empty());
}

#[test]
fn a_cancelled_invite_is_owned_until_its_487() {
    let mut h = Harness::new(SIP_TOML);
    let (chan, invite) = placed_outbound(&mut h, 100);
    h.recv(&reply(&invite, 180, "Ringing", "b1"), BOB);
    h.input(Input::Hangup(chan, Cause::NORMAL_CLEARING));
    assert_eq!(h.expect_one(BOB).method(), Some(&Method::Cancel));
    assert_eq!(owners(&h), ["cancelled"]);
    h.recv(&reply(&invite, 183, "Session Progress", "b1"), BOB);
    assert_eq!(owners(&h), ["cancelled"]);
    h.recv(&reply(&invite, 487, "Request Terminated", "b1"), BOB);
    assert!(owners(&h).is_empty());
}
