//! `[[register]]` lines for an AOR of one domain at a registrar addressed
//! by IP (`msisdn@movistar.es` at 195.76.180.160): `fromdomain`/`fromuser`
//! name the AOR in From, To and the Request-URI while the REGISTER goes to
//! `host`, or to `outboundproxy`.

use sirius_blackbox::{free_udp_port, scenario, Daemon, SippProcess};
use std::time::Duration;

const GENERAL: &str = "[general]\nudpbindaddr = \"127.0.0.1:0\"\n";

/// A daemon whose one `[[register]]` line has these keys, and the sipp
/// registrar on `port` that accepts only `msisdn@movistar.es` with
/// Request-URI `sip:movistar.es`: Registered only if the REGISTER reached it
/// naming the domain.
fn registers_at_the_domain(port: u16, line: &str) {
    let registrar = SippProcess::start(
        port,
        &[
            "-sf",
            scenario("registrar_domain_uas.xml").to_str().unwrap(),
            "-m",
            "1",
        ],
    );
    let sip = format!(
        "{GENERAL}\n[[register]]\nuser = \"msisdn\"\nsecret = \"msisdn-pw\"\nexpiry = 120\n{line}"
    );
    let d = Daemon::with_chan_sip(&[("sip.toml", &sip)]);
    let reg = d.wait_for("sip show registry", Duration::from_secs(10), |o| {
        o.contains(" Registered ")
    });
    assert_eq!(
        registrar.finish(),
        Some(0),
        "the registrar's checks of Request-URI, From, To and digest failed:\n{reg}\n{}",
        d.messages()
    );
}

#[test]
fn fromdomain_names_the_domain_while_the_register_goes_to_the_registrar_ip() {
    let port = free_udp_port();
    registers_at_the_domain(
        port,
        &format!("host = \"127.0.0.1\"\nport = {port}\nfromdomain = \"movistar.es\"\n"),
    );
}

#[test]
fn outboundproxy_takes_the_register_for_the_domain_in_host() {
    // `host` is the domain and is never looked up (.invalid cannot resolve
    // either way: movistar.es is not ours to ask).
    let port = free_udp_port();
    registers_at_the_domain(
        port,
        &format!("host = \"movistar.es\"\noutboundproxy = \"127.0.0.1:{port}\"\n"),
    );
}

#[test]
fn fromuser_puts_another_user_in_the_aor_and_the_line_user_digests() {
    let port = free_udp_port();
    // The scenario wants msisdn in the AOR and as the digest user; the
    // line's `user` is neither: only `fromuser` can put msisdn in the AOR.
    let registrar = SippProcess::start(
        port,
        &[
            "-sf",
            scenario("registrar_domain_uas.xml").to_str().unwrap(),
            "-m",
            "1",
        ],
    );
    let sip = format!(
        "{GENERAL}\n[[register]]\nuser = \"someone-else\"\nauthuser = \"msisdn\"\nfromuser = \"msisdn\"\nsecret = \"msisdn-pw\"\nhost = \"127.0.0.1\"\nport = {port}\nfromdomain = \"movistar.es\"\n"
    );
    let d = Daemon::with_chan_sip(&[("sip.toml", &sip)]);
    let reg = d.wait_for("sip show registry", Duration::from_secs(10), |o| {
        o.contains(" Registered ")
    });
    assert!(reg.contains(&format!("127.0.0.1:{port}")), "{reg}");
    assert_eq!(registrar.finish(), Some(0), "{}", d.messages());
}
