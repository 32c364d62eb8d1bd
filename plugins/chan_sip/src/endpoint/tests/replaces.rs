//! INVITE with Replaces (session/replaces.rs): call pickup of a ringing
//! leg, takeover of an answered one, and the refusals of RFC 3891.

use super::*;

/// Bob in alice's context: alice may pick up or replace his calls.
fn same_context() -> String {
    SIP_TOML.replace(
        "secret = \"bob-secret\"",
        "secret = \"bob-secret\"\ncontext = \"phones\"",
    )
}

/// Alice's INVITE with `Replaces: <value>`.
fn replacing_invite(call_id: &str, replaces: &str) -> Message {
    let mut m = alice_invite("200", call_id);
    m.push(HeaderName::Replaces, replaces);
    m
}

/// `Replaces` naming our dialog with bob: our tag is the to-tag.
fn naming(invite_to_bob: &Message, bob_tag: &str, extra: &str) -> String {
    let ours = invite_to_bob.from_ref().unwrap().tag().unwrap().to_string();
    format!(
        "{};to-tag={ours};from-tag={bob_tag}{extra}",
        invite_to_bob.call_id().unwrap()
    )
}

/// A Dial's callee rings; alice's INVITE naming that early dialog picks
/// it up: the core is asked for the pickup, no dialplan runs for her call.
#[test]
fn an_invite_replacing_a_ringing_callee_picks_it_up() {
    let mut h = Harness::new(&same_context());
    let (bob, invite) = placed_outbound(&mut h, 100);
    h.recv(&reply(&invite, 180, "Ringing", "b1"), BOB);
    h.take();
    h.recv(
        &replacing_invite("pick-1", &naming(&invite, "b1", "")),
        ALICE,
    );
    let picker = h.env.allocated.last().unwrap().0;
    assert_eq!(h.env.replaced, vec![("pickup", bob, picker)]);
    assert!(
        !h.env.started.contains(&picker),
        "no dialplan for the picker"
    );
    // Nothing final yet: the Dial answers her (Input::Answer).
    assert!(h
        .sent()
        .iter()
        .all(|(_, m)| m.code().is_none_or(|c| c < 200)));
}

/// An answered call: the new caller takes its place (Core::replace);
/// `early-only` refuses that with 486.
#[test]
fn an_invite_replacing_an_answered_leg_takes_its_place_unless_early_only() {
    let mut h = Harness::new(&same_context());
    let (bob, invite) = answered_outbound(&mut h, 100);
    h.take();
    h.recv(
        &replacing_invite("take-1", &naming(&invite, "b1", ";early-only")),
        ALICE,
    );
    assert_eq!(h.expect_one(ALICE).code(), Some(486));
    assert!(h.env.replaced.is_empty());
    h.recv(
        &replacing_invite("take-2", &naming(&invite, "b1", "")),
        ALICE,
    );
    let new = h.env.allocated.last().unwrap().0;
    assert_eq!(h.env.replaced, vec![("replace", bob, new)]);
}

/// RFC 3891's refusals: no such dialog (481), an early dialog we did not
/// start (481: alice's own ringing call), another context's call (403), a
/// Replaces that does not parse (400), a stranger (challenged; as an allowed
/// guest, 403).
#[test]
fn invites_with_replaces_that_cannot_be_served_are_refused() {
    let mut h = Harness::new(SIP_TOML);
    h.recv(
        &replacing_invite("r-1", "nothing;to-tag=a;from-tag=b"),
        ALICE,
    );
    assert_eq!(h.expect_one(ALICE).code(), Some(481));
    // Alice's own inbound call, ringing: an early dialog we are UAS of.
    h.recv(&alice_invite("100", "in-1"), ALICE);
    let ringing = h.env.started[0];
    h.input(Input::Indicate(ringing, Indication::Ringing));
    let ring = h.expect_one(ALICE);
    let ours = ring.to_ref().unwrap().tag().unwrap().to_string();
    h.recv(
        &replacing_invite("r-2", &format!("in-1;to-tag={ours};from-tag=a1")),
        ALICE,
    );
    assert_eq!(h.expect_one(ALICE).code(), Some(481));
    // Bob's call, in another context than alice's.
    let (_, invite) = answered_outbound(&mut h, 100);
    h.take();
    h.recv(&replacing_invite("r-3", &naming(&invite, "b1", "")), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(403));
    h.recv(&replacing_invite("r-4", "garbage"), ALICE);
    assert_eq!(h.expect_one(ALICE).code(), Some(400));
    let guest = "127.0.0.1:5999";
    let mut m = replacing_invite("r-5", &naming(&invite, "b1", ""));
    m.headers
        .set(HeaderName::From, "<sip:mallory@127.0.0.1>;tag=m");
    h.recv(&m, guest);
    assert_eq!(h.expect_one(guest).code(), Some(401), "challenged first");
    // With guests allowed, a guest still may not replace.
    let mut h = Harness::new(&SIP_TOML.replace(
        "context = \"default\"",
        "context = \"default\"\nallowguest = true",
    ));
    h.recv(&m, guest);
    assert_eq!(h.expect_one(guest).code(), Some(403));
    assert!(h.env.replaced.is_empty());
}
