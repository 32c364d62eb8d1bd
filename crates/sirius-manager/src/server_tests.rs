//! The server on a real socket and a real core (no daemon): a client that
//! stops reading is dropped, and the core's publishers never wait for it.

use super::*;
use crate::backend::{ChannelView, OriginateRequest, Originated};
use sirius_abi::Cause;
use sirius_core::events::Event;
use std::io::Write;

/// Answers nothing: these tests only log in.
struct Nothing;

impl Backend for Nothing {
    fn command(&self, _: &str) -> (bool, String) {
        (false, String::new())
    }
    fn command_json(&self, line: &str) -> Result<serde_json::Value, String> {
        Err(format!("No such command '{line}'"))
    }
    fn channels(&self) -> Vec<ChannelView> {
        Vec::new()
    }
    fn channel(&self, _: &str) -> Option<ChannelView> {
        None
    }
    fn hangup(&self, _: &str, _: Cause) -> Result<String, String> {
        Err("No such channel".into())
    }
    fn getvar(&self, _: &str, _: &str) -> Result<String, String> {
        Err("No such channel".into())
    }
    fn setvar(&self, _: &str, _: &str, _: &str) -> Result<(), String> {
        Err("No such channel".into())
    }
    fn redirect(&self, _: &str, _: &str, _: &str, _: u32) -> Result<(), String> {
        Err("No such channel".into())
    }
    fn originate(&self, _: &OriginateRequest) -> Result<Originated, Cause> {
        Err(Cause::FAILURE)
    }
    fn uptime(&self) -> (u64, u64) {
        (0, 0)
    }
}

#[track_caller]
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_never_slows_the_core() {
    let rec = sirius_core::test_support::Recorder::default();
    let (core, _dir) = sirius_core::test_support::core_with(&rec);
    let settings = Settings::parse(
        "[general]\nenabled = true\nport = 0\nbindaddr = \"127.0.0.1\"\n[admin]\nsecret = \"s\"\nread = \"all\"\nwrite = \"all\"\n",
        "manager.toml",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mgr, listener) = rt
        .block_on(Manager::bind(
            Arc::new(settings),
            core.clone(),
            Arc::new(Nothing),
        ))
        .unwrap();
    rt.spawn(mgr.clone().serve(listener));
    assert!(!core.events.wanted(), "nobody listens yet");

    let mut client = std::net::TcpStream::connect(mgr.local).unwrap();
    client
        .write_all(b"Action: Login\r\nUsername: admin\r\nSecret: s\r\n\r\n")
        .unwrap();
    wait_until("the session to listen", || core.events.wanted());
    assert_eq!(mgr.sessions().len(), 1);

    // The client reads nothing from now on. Events pile up in its socket,
    // then in its queue, until it is dropped; each publish returns at once.
    // (Paced a little, as calls are: a publisher far faster than the
    // fan-out only makes the fan-out skip events, never block.)
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut published, mut slowest) = (0u32, Duration::ZERO);
    let mut e = Event::new("UserEvent");
    e.push("Body", "x".repeat(1000));
    while !mgr.sessions().is_empty() {
        assert!(
            Instant::now() < deadline,
            "still connected after {published} events"
        );
        let t = Instant::now();
        core.events.publish(e.clone());
        slowest = slowest.max(t.elapsed());
        published += 1;
        if published.is_multiple_of(256) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a publish waited {slowest:?}"
    );
    wait_until("the bus to have no listener", || !core.events.wanted());
}
