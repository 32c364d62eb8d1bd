//! The transaction layer under a PBX's steady load, on a simulated clock:
//! `RATE` calls a second for `SECONDS` seconds, each call two dialogs as
//! Sirius carries them (as UAS: INVITE → 100/200 → ACK, BYE → 200; as UAC:
//! INVITE → 200, BYE → 200), every message parsed from bytes as it would
//! arrive. Over UDP each transaction lingers 32 s after its answer, so the
//! layer holds about `RATE` × 100 of them once warm.
//!
//! What it reports is the time the layer's thread spends on each simulated
//! millisecond (the work of that millisecond: three calls' messages and the
//! timers due): median, p99, p99.9 and the worst. The worst is the stall a
//! SIP thread would suffer, the figure issue #11 is about (the tables that
//! doubled all at once). Run with
//! `cargo bench -p sirius-sip --bench transaction_load` (`RATE`, `SIM_SECONDS`
//! from the environment); `bench/transactions.sh` runs it on two builds in
//! the same session and writes the comparison.
#![allow(clippy::disallowed_methods)] // simulated time starts from one real Instant

use sirius_sip::message::{build, parse_datagram, Limits, Message};
use sirius_sip::transaction::{Config, Event, TransactionLayer, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn request(method: &str, call: u64, branch: &str, cseq: u32, to_tag: &str) -> Message {
    let text = format!(
        "{method} sip:600@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-{branch}-{call};rport\r\n\
         Max-Forwards: 70\r\n\
         Contact: <sip:alice@127.0.0.1:5062>\r\n\
         To: <sip:600@127.0.0.1:5060>{to_tag}\r\n\
         From: \"Alice\" <sip:alice@127.0.0.1:5060>;tag=f{call}\r\n\
         Call-ID: {call}-ZmQ3NzBkNjE5YzQyMzk0MWI2ZDc0ODY2\r\n\
         CSeq: {cseq} {method}\r\n\
         User-Agent: sipp\r\n\
         Content-Length: 0\r\n\r\n"
    );
    parse_datagram(text.as_bytes(), &Limits::default()).expect("a well-formed request")
}

fn reparse(m: &Message) -> Message {
    parse_datagram(&m.to_bytes(), &Limits::default()).expect("our own message parses")
}

fn main() {
    let rate: u64 = std::env::var("RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seconds: u64 = std::env::var("SIM_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let peer: SocketAddr = "127.0.0.1:5062".parse().unwrap();
    let callee: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    let mut layer = TransactionLayer::new(Config::default());
    let t0 = Instant::now();
    let mut ticks: Vec<Duration> = Vec::with_capacity((seconds * 1000) as usize);
    let mut peak = 0usize;
    let mut call = 0u64;
    let per_ms = rate as f64 / 1000.0;
    let mut owed = 0.0;
    let started = Instant::now();
    for ms in 0..seconds * 1000 {
        let now = t0 + Duration::from_millis(ms);
        // Build the millisecond's inputs before timing: the peers' work.
        owed += per_ms;
        let mut batch = Vec::new();
        while owed >= 1.0 {
            owed -= 1.0;
            call += 1;
            batch.push((
                request("INVITE", call, "i", 1, ""),
                request("ACK", call, "a", 1, ";tag=t"),
                request("BYE", call, "b", 2, ";tag=t"),
                request("INVITE", call, "o", 1, ""),
                request("BYE", call, "c", 2, ";tag=t"),
            ));
        }
        let began = Instant::now();
        for (invite, ack, bye, out_invite, out_bye) in batch {
            // As UAS: the caller's INVITE, our 200, its ACK, its BYE, our 200.
            layer.on_message(now, invite.clone(), peer, Transport::Udp);
            let mut ok = build::response(&invite, 200, "OK", Some(peer));
            build::set_to_tag(&mut ok, "t");
            while let Some(ev) = layer.poll_event() {
                if let Event::Request { tx, .. } = ev {
                    let _ = layer.respond(now, tx, &ok);
                }
            }
            layer.on_message(now, ack, peer, Transport::Udp);
            layer.on_message(now, bye.clone(), peer, Transport::Udp);
            let bye_ok = build::response(&bye, 200, "OK", Some(peer));
            while let Some(ev) = layer.poll_event() {
                if let Event::Request { tx, .. } = ev {
                    let _ = layer.respond(now, tx, &bye_ok);
                }
            }
            // As UAC: our INVITE answered 200, our BYE answered 200.
            let _ = layer.send_request(now, out_invite.clone(), callee, Transport::Udp);
            let mut ok = build::response(&out_invite, 200, "OK", None);
            build::set_to_tag(&mut ok, "t");
            layer.on_message(now, reparse(&ok), callee, Transport::Udp);
            let _ = layer.send_request(now, out_bye.clone(), callee, Transport::Udp);
            let bye_ok = build::response(&out_bye, 200, "OK", None);
            layer.on_message(now, reparse(&bye_ok), callee, Transport::Udp);
            while layer.poll_event().is_some() {}
        }
        if layer.poll_timeout().is_some_and(|t| t <= now) {
            layer.handle_timeout(now);
        }
        while layer.poll_transmit().is_some() {}
        while layer.poll_event().is_some() {}
        ticks.push(began.elapsed());
        peak = peak.max(layer.len());
    }
    let wall = started.elapsed();
    let busy: Duration = ticks.iter().sum();
    ticks.sort();
    let pick = |q: f64| ticks[((ticks.len() - 1) as f64 * q) as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "rate {rate}/s for {seconds} s: {call} calls, peak {peak} live transactions; \
         per simulated ms: median {:.0} us, p99 {:.0} us, p99.9 {:.0} us, worst {:.0} us; \
         {:.2} us of layer time per call; wall {:.1} s",
        us(pick(0.5)),
        us(pick(0.99)),
        us(pick(0.999)),
        us(ticks[ticks.len() - 1]),
        us(busy) / call as f64,
        wall.as_secs_f64()
    );
}
