//! What the transfer test binaries share (`transfer`, `call_control`): a
//! PBX with a transferee and a target, the transferor's sipp run, reading
//! traces, Call-IDs for a given SIP thread.
#![allow(dead_code)]

use super::common::*;
use sirius_blackbox::Daemon;
use std::path::Path;

/// The PBX: `sipp` (the transferor) in context `test`; `callee` (the
/// transferee) and `carol` (the target) at fixed ports.
pub fn transfer_pbx(callee_port: u16, carol_port: u16) -> Daemon {
    let sip = format!(
        "{SIP_TOML}\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\n\n\
         [peers.carol]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {carol_port}\n"
    );
    let ext = r#"
[test]
"200" = ["Dial(SIP/callee,10)", "Hangup()"]
"6003" = ["Verbose(2,transferred by ${BLINDTRANSFER} (SIPTRANSFER=${SIPTRANSFER}))", "Dial(SIP/carol,5)", "Verbose(2,after the target: ${DIALSTATUS})", "Hangup()"]
"h" = ["Verbose(2,h ran for ${CHANNEL})"]
"#;
    pbx_with(&sip, ext)
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The transferor's sipp run: scenario `scenario`, REFER to `target`.
pub fn transferor(d: &Daemon, scenario: &str, target: &str, trace: &Path) -> (i32, String) {
    call(
        d,
        &[
            "-sf",
            &sf(scenario),
            "-s",
            "200",
            "-key",
            "target",
            target,
            "-trace_msg",
            "-message_file",
            trace.to_str().unwrap(),
        ],
    )
}

/// The messages of a sipp trace that are NOTIFYs we sent, in order.
pub fn notifies(trace: &str) -> Vec<String> {
    trace
        .split("message received")
        .skip(1)
        .filter_map(|m| {
            let start = m.find("NOTIFY sip:")?;
            Some(m[start..].to_string())
        })
        .collect()
}

/// chan_sip's `shards::shard_of` (FNV-1a of the Call-ID, modulo the
/// threads), copied: chan_sip is a plugin, not a dependency of the tests.
/// The test picks Call-IDs with it to put two calls on one SIP thread or
/// on two.
pub fn shard_of(call_id: &str, count: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in call_id.trim().as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % count as u64) as usize
}

/// A Call-ID of the form `<prefix>-<n>` on SIP thread `k` of two.
pub fn call_id_on(k: usize, prefix: &str) -> String {
    (0..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|id| shard_of(id, 2) == k)
        .unwrap()
}

/// The tag of `header` in the first 200 OK of a sipp trace.
pub fn tag_in_ok(trace: &str, header: &str) -> Option<String> {
    let ok = &trace[trace.find("SIP/2.0 200 OK")?..];
    let line = ok.lines().find(|l| l.starts_with(header))?;
    let tag = &line[line.find(";tag=")? + 5..];
    Some(tag.split(';').next()?.trim().to_string())
}

/// The tag of `header` in the first message starting with `start` in a
/// sipp trace.
pub fn tag_after(trace: &str, start: &str, header: &str) -> Option<String> {
    let at = trace.find(start)?;
    let line = trace[at..].lines().find(|l| l.starts_with(header))?;
    let tag = &line[line.find(";tag=")? + 5..];
    Some(tag.split(';').next()?.trim().to_string())
}

/// A sipp phone answering calls at `port`: `scenario` is a file of
/// `tests/scenarios` or `uas` (sipp's own); `keys` become `-key name value`
/// (`mport`: its media socket); its messages are traced to `trace`.
pub fn phone(
    port: u16,
    scenario: &str,
    keys: &[(&str, String)],
    trace: &Path,
) -> sirius_blackbox::SippProcess {
    let file = sf(scenario);
    let mut args: Vec<&str> = match scenario {
        "uas" => vec!["-sn", "uas"],
        _ => vec!["-sf", &file],
    };
    for (k, v) in keys {
        args.extend(["-key", k, v]);
    }
    args.extend(["-m", "1", "-trace_msg", "-message_file"]);
    args.push(trace.to_str().unwrap());
    sirius_blackbox::SippProcess::start(port, &args)
}

/// The port of a media socket, for `-key mport`.
pub fn port_of(socket: &std::net::UdpSocket) -> String {
    socket.local_addr().unwrap().port().to_string()
}

/// A sipp caller running `scenario` to `service` at the PBX on a thread of
/// its own (it stays in its call while the test goes on), with `extra`
/// arguments; its exit code and output when joined.
pub fn caller_in_thread(
    d: &Daemon,
    scenario: &str,
    service: &str,
    extra: &[String],
) -> std::thread::JoinHandle<(i32, String)> {
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = sirius_blackbox::free_udp_port().to_string();
    let (file, service) = (sf(scenario), service.to_string());
    let extra = extra.to_vec();
    std::thread::spawn(move || {
        let mut args = vec![
            target.as_str(),
            "-p",
            &port,
            "-m",
            "1",
            "-sf",
            &file,
            "-s",
            &service,
        ];
        args.extend(extra.iter().map(String::as_str));
        sirius_blackbox::sipp(&args)
    })
}
