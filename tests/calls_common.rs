//! What the call test binaries share (`calls`, `dial`, `media`): a PBX
//! with a sipp peer and a dialplan, sipp scenarios, a PBX that dials a
//! callee. Each binary uses part of it.
#![allow(dead_code)]

use sirius_blackbox::{free_udp_port, scenario, sipp, Daemon};

pub const SIP_TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:0"
rtpstart = 30000
rtpend = 30999
# Two SIP threads whatever the machine: calls land on both, by Call-ID.
sipthreads = 2

[peers.sipp]
type = "peer"
host = "127.0.0.1"
insecure = ["invite", "port"]
context = "test"
allow = ["ulaw", "alaw"]
call-limit = 1
"#;

pub const EXTENSIONS: &str = r#"
[test]
"100" = ["Answer()", "Wait(5)", "Hangup()"]
"101" = ["Busy()"]
"102" = ["Ringing()", "Wait(20)"]
"103" = ["Answer()", "Wait(0.3)", "Hangup()"]
"104" = ["Set(N=${EXTEN:2})", "GotoIf(${N}?busy:cong)", "cong: Congestion()", "busy: Busy()"]
"105" = ["Answer()", "Wait(3)", "Hangup()"]
"600" = ["Answer()", "Echo()"]
"106" = ["Answer()", "Wait(60)", "Hangup()"]
"107" = ["Goto(logic,s,1)"]

[logic]
"s" = ["Set(N=$[2 * 3 + 1])", "GotoIf($[${N} > 6]?big:small)", "small: Congestion()", "big: Goto(nowhere,1)"]
"i" = ["Verbose(2,invalid ${INVALID_EXTEN} with N=${N})", "Busy()"]
"h" = ["Set(WHY=$[${HANGUPCAUSE} = 17 ? busy :: other])", "Verbose(2,h after cause ${HANGUPCAUSE} (${WHY}) with N=${N})"]
"#;

pub fn pbx() -> Daemon {
    pbx_with(SIP_TOML, EXTENSIONS)
}

/// The Prometheus endpoint on a port of the OS's choosing (`Daemon::scrape`).
pub const HTTP_TOML: &str = "[general]\nenabled = true\nbindport = 0\n";

/// A daemon with chan_sip loaded on this sip.toml and extensions.toml (and
/// its metrics served, `HTTP_TOML`).
pub fn pbx_with(sip: &str, extensions: &str) -> Daemon {
    Daemon::with_chan_sip(&[
        ("sip.toml", sip),
        ("extensions.toml", extensions),
        ("http.toml", HTTP_TOML),
    ])
}

pub fn call(d: &Daemon, args: &[&str]) -> (i32, String) {
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let mut all = vec![target.as_str(), "-p", port.as_str(), "-m", "1"];
    all.extend_from_slice(args);
    sipp(&all)
}

pub fn sf(name: &str) -> String {
    scenario(name).to_str().unwrap().to_string()
}

pub fn dial_pbx(callee_port: u16) -> Daemon {
    let sip = format!(
        "{SIP_TOML}\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\n\n[peers.alawphone]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\nallow = [\"alaw\"]\n\n[peers.limited]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\ncall-limit = 1\n\n[peers.ghost]\nhost = \"dynamic\"\nsecret = \"x\"\n"
    );
    let ext = r#"
[test]
"200" = ["Dial(SIP/callee,5)", "Hangup()"]
"201" = ["Dial(SIP/callee,5)", "Goto(st-${DIALSTATUS})", "st-BUSY: Busy()", "st-NOANSWER: Congestion()", "st-CHANUNAVAIL: Congestion()"]
"202" = ["Dial(SIP/ghost,5)", "Goto(st-${DIALSTATUS})", "st-BUSY: Busy()", "st-CHANUNAVAIL: Congestion()"]
"203" = ["Dial(SIP/limited&SIP/limited,5)", "Hangup()"]
"204" = ["Answer()", "Wait(0.3)", "Hangup()"]
"206" = ["Dial(SIP/alawphone,5)", "Hangup()"]
"205" = ["Set(_ONCE=1)", "Set(__ALWAYS=2)", "Set(PLAIN=3)", "Dial(SIP/callee,5)"]
"h" = ["Verbose(2,h ran for ${CHANNEL} after cause ${HANGUPCAUSE} with DIALSTATUS=${DIALSTATUS})"]
"#;
    pbx_with(&sip, ext)
}
