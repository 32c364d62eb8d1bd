//! AMI (issue #15) driven from outside: the real PyPI clients panoramisk
//! 1.4 and pyst2 0.5.1 (scripts under `tests/ami/`, each asserting what
//! it receives and printing `ok:` lines), sipp calls whose events the
//! clients see, and raw sockets for the framing's edge cases. Every
//! daemon listens on an OS-chosen port (`manager show settings` says
//! which), on loopback; every wait is for a condition, bounded.

use sirius_blackbox::{free_udp_port, sipp_register, Daemon, Sipp};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "calls_common.rs"]
mod common;
use common::*;

/// manager.toml for the tests: port 0, a full user, a limited one, one
/// refused by its ACL.
fn manager_toml(general: &str) -> String {
    format!(
        r#"
[general]
enabled = true
port = 0
bindaddr = "127.0.0.1"
{general}

[admin]
secret = "admin-secret"
deny = "0.0.0.0/0.0.0.0"
permit = "127.0.0.1/255.255.255.255"
read = "all"
write = "all"

[viewer]
secret = "viewer-secret"
read = "call"
write = "reporting"

[faraway]
secret = "x"
deny = "0.0.0.0/0"
permit = "10.0.0.0/8"
"#
    )
}

/// A PBX with chan_sip (a `sipp` caller peer, a `callee` peer on
/// `callee_port`) and AMI.
fn ami_pbx(callee_port: u16, general: &str) -> Daemon {
    let sip = format!(
        "{SIP_TOML}\n[peers.callee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\n\n[peers.alice]\ntype = \"friend\"\nhost = \"dynamic\"\nsecret = \"alice-secret\"\ncontext = \"test\"\n"
    );
    let ext = r#"
[test]
"100" = ["Answer()", "Wait(5)", "Hangup()"]
"101" = ["Wait(10)", "Hangup()"]
"300" = ["Dial(SIP/callee,5)", "Hangup()"]

[test.hints]
"300" = "SIP/callee"
"#;
    let manager = manager_toml(general);
    Daemon::with_chan_sip(&[
        ("sip.toml", sip.as_str()),
        ("extensions.toml", ext),
        ("manager.toml", manager.as_str()),
    ])
}

/// The port AMI listens on, from `manager show settings`.
fn ami_port(d: &Daemon) -> u16 {
    let s = d.rx("manager show settings").ok();
    s.lines()
        .find(|l| l.contains("TCP Bindaddress:"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no bind address in:\n{s}"))
}

fn script(name: &str) -> String {
    format!("{}/ami/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs a client script to its end (bounded); asserts it passed.
#[track_caller]
fn run_client(name: &str, port: u16, d: &Daemon) -> String {
    let mut child = Command::new("python3")
        .arg(script(name))
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test installs panoramisk and pyst2)");
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(
        status.success() && out.contains("DONE"),
        "{name} failed ({status}):\n{out}\n{err}\n--- daemon log:\n{}",
        d.messages()
    );
    out
}

/// The security events logged so far (the `security` channel's file if
/// the logger has one, else the `messages` log).
fn security_log(d: &Daemon) -> String {
    let dir = d.root.path().join("log");
    let mut text = d.messages();
    text.push_str(&std::fs::read_to_string(dir.join("security")).unwrap_or_default());
    text
}

#[track_caller]
fn wait_for_security(d: &Daemon, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = security_log(d);
        if log.contains(what) {
            return log;
        }
        assert!(Instant::now() < deadline, "{what:?} not logged:\n{log}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn panoramisk_logs_in_pings_runs_commands_and_reads_sip_peers() {
    let d = ami_pbx(free_udp_port(), "");
    let port = ami_port(&d);
    let out = run_client("panoramisk_session.py", port, &d);
    assert!(out.contains("ok: MD5 login"), "{out}");
    // The refused MD5 key is a security event, with Asterisk's NOTICE line.
    let log = wait_for_security(&d, "SecurityEvent=\"ChallengeResponseFailed\"");
    assert!(
        log.contains("127.0.0.1 failed to authenticate as 'admin'"),
        "{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("SecurityEvent=\"ChallengeResponseFailed\""))
        .unwrap();
    assert!(
        line.contains("Service=\"AMI\"") && line.contains("RemoteAddress=\"IPV4/TCP/127.0.0.1/"),
        "{line}"
    );
    assert!(log.contains("SecurityEvent=\"SuccessfulAuth\""), "{log}");
}

#[test]
fn pyst2_logs_in_and_wrong_passwords_are_security_events() {
    let d = ami_pbx(free_udp_port(), "");
    let port = ami_port(&d);
    run_client("pyst2_session.py", port, &d);
    let log = wait_for_security(&d, "SecurityEvent=\"InvalidAccountID\"");
    // Asterisk's lines, which fail2ban's asterisk filter reads: the address
    // without its port, the user quoted.
    for l in [
        "127.0.0.1 failed to authenticate as 'admin'",
        "127.0.0.1 tried to authenticate with nonexistent user 'mallory'",
        "127.0.0.1 failed to authenticate as 'mallory'",
        "Manager 'admin' logged on from 127.0.0.1",
    ] {
        assert!(log.contains(l), "{l:?} not in:\n{log}");
    }
    let invalid = log
        .lines()
        .find(|l| l.contains("SecurityEvent=\"InvalidPassword\""))
        .unwrap_or_else(|| panic!("no InvalidPassword event:\n{log}"));
    assert!(
        invalid.contains("Service=\"AMI\"")
            && invalid.contains("AccountID=\"admin\"")
            && invalid.contains("SessionID=\"0x")
            && invalid.contains("LocalAddress=\"IPV4/TCP/127.0.0.1/"),
        "{invalid}"
    );
}

#[test]
fn a_call_shows_its_events_and_channels_to_panoramisk() {
    let callee_port = free_udp_port();
    let d = ami_pbx(callee_port, "");
    let port = ami_port(&d);
    let mut client = Command::new("python3")
        .arg(script("call_events.py"))
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    // Wait for READY (bounded by the script's own 60 s timeout).
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for l in lines.by_ref() {
        let l = l.unwrap_or_default();
        seen.push_str(&l);
        seen.push('\n');
        if l == "READY" || l.starts_with("FAILED") {
            break;
        }
    }
    assert!(seen.contains("READY"), "{seen}");
    let callee = Sipp::builtin("uas").start(callee_port);
    let (code, out) = call(&d, &["-sn", "uac", "-s", "300", "-d", "2000"]);
    assert_eq!(code, 0, "{out}\n{}", d.messages());
    assert_eq!(callee.finish(), Some(0));
    for l in lines {
        seen.push_str(&l.unwrap_or_default());
        seen.push('\n');
    }
    let status = client.wait().expect("client");
    let mut err = String::new();
    let _ = client.stderr.take().unwrap().read_to_string(&mut err);
    assert!(
        status.success() && seen.contains("DONE"),
        "call_events.py ({status}):\n{seen}\n{err}\n--- daemon log:\n{}",
        d.messages()
    );
}

#[test]
fn panoramisk_originates_and_hangs_up_a_call() {
    let callee_port = free_udp_port();
    let d = ami_pbx(callee_port, "");
    let port = ami_port(&d);
    let callee = Sipp::builtin("uas").start(callee_port);
    run_client("originate.py", port, &d);
    assert_eq!(callee.finish(), Some(0));
}

/// A raw AMI connection.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Reads until `end` arrives (bounded by the read timeout); returns
    /// everything up to and including it.
    #[track_caller]
    fn until(&mut self, end: &str) -> String {
        loop {
            if let Some(i) = find(&self.buf, end.as_bytes()) {
                let rest = self.buf.split_off(i + end.len());
                let got = std::mem::replace(&mut self.buf, rest);
                return String::from_utf8_lossy(&got).into_owned();
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => panic!(
                    "connection ended before {end:?}; got {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether the server closes the connection (within the read timeout).
    fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.s.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn framing_edge_cases_on_a_raw_socket() {
    let d = ami_pbx(free_udp_port(), "");
    let port = ami_port(&d);
    let mut c = Raw::connect(port);
    assert_eq!(c.until("\r\n"), "Asterisk Call Manager/5.0.2\r\n");
    // Before login: only Login, Challenge and Logoff.
    c.send(b"Action: Ping\r\nActionID: a1\r\n\r\n");
    assert_eq!(
        c.until("\r\n\r\n"),
        "Response: Error\r\nActionID: a1\r\nMessage: Permission denied\r\n\r\n"
    );
    // A message in pieces, bare \n line ends, header case ignored.
    for piece in [
        &b"ACTION: Lo"[..],
        b"gin\nusername: admin\n",
        b"SECRET: admin-secret\nEvents: off\n",
        b"\n",
    ] {
        c.send(piece);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        c.until("\r\n\r\n"),
        "Response: Success\r\nMessage: Authentication accepted\r\n\r\n"
    );
    // Events: off at login: no FullyBooted; the next answer is the Ping's.
    c.send(b"Action: Ping\r\nActionID: p2\r\n\r\n");
    let pong = c.until("\r\n\r\n");
    assert!(
        pong.starts_with("Response: Success\r\nActionID: p2\r\nPing: Pong\r\nTimestamp: "),
        "{pong}"
    );
    // An overlong line discards its message only; binary junk and empty
    // lines are nothing; the session goes on.
    let mut junk = b"Action: Ping\r\nActionID: lost\r\nJunk: ".to_vec();
    junk.extend(std::iter::repeat_n(b'x', 100_000));
    junk.extend_from_slice(
        b"\r\n\r\n\r\n\r\n\x00\xff\xfe\r\n\r\nAction: Ping\r\nActionID: kept\r\n\r\n",
    );
    c.send(&junk);
    let next = c.until("\r\n\r\n");
    assert!(next.contains("ActionID: kept"), "{next}");
    // Unknown action, missing action, a value that tries to add a header.
    c.send(b"Action: Frobnicate\r\nActionID: u\r\n\r\nActionID: m\r\n\r\n");
    assert_eq!(
        c.until("\r\n\r\n"),
        "Response: Error\r\nActionID: u\r\nMessage: Invalid/unknown command: Frobnicate. Use Action: ListCommands to show available commands.\r\n\r\n"
    );
    assert_eq!(
        c.until("\r\n\r\n"),
        "Response: Error\r\nActionID: m\r\nMessage: Missing action in request\r\n\r\n"
    );
    // Several actions in one write are answered in order.
    c.send(b"Action: Ping\r\nActionID: 1\r\n\r\nAction: Command\r\nActionID: 2\r\nCommand: core show version\r\n\r\nAction: Ping\r\nActionID: 3\r\n\r\n");
    assert!(c.until("\r\n\r\n").contains("ActionID: 1"));
    let cmd = c.until("\r\n\r\n");
    assert!(
        cmd.starts_with("Response: Success\r\nActionID: 2\r\nMessage: Command output follows\r\nOutput: Sirius "),
        "{cmd}"
    );
    assert!(c.until("\r\n\r\n").contains("ActionID: 3"));
    c.send(b"Action: Logoff\r\n\r\n");
    assert_eq!(
        c.until("\r\n\r\n"),
        "Response: Goodbye\r\nMessage: Thanks for all the fish.\r\n\r\n"
    );
    assert!(c.closed());

    // Permissions: the viewer may not run commands, nor originate.
    let mut v = Raw::connect(port);
    v.until("\r\n");
    v.send(b"Action: Login\r\nUsername: viewer\r\nSecret: viewer-secret\r\n\r\n");
    assert!(v.until("\r\n\r\n").contains("Authentication accepted"));
    v.send(b"Action: Command\r\nCommand: core show version\r\n\r\nAction: Originate\r\nChannel: SIP/callee\r\nExten: 100\r\n\r\n");
    assert_eq!(
        v.until("\r\n\r\n"),
        "Response: Error\r\nMessage: Permission denied\r\n\r\n"
    );
    assert_eq!(
        v.until("\r\n\r\n"),
        "Response: Error\r\nMessage: Permission denied\r\n\r\n"
    );
    // The ACL: faraway may only log in from 10/8.
    let mut f = Raw::connect(port);
    f.until("\r\n");
    f.send(b"Action: Login\r\nUsername: faraway\r\nSecret: x\r\n\r\n");
    assert_eq!(
        f.until("\r\n\r\n"),
        "Response: Error\r\nMessage: Authentication failed\r\n\r\n"
    );
    assert!(f.closed());
    wait_for_security(&d, "SecurityEvent=\"FailedACL\"");
    let log = d.messages();
    assert!(
        log.contains("127.0.0.1 failed to pass IP ACL as 'faraway'"),
        "{log}"
    );
    // `manager show connected` lists the viewer.
    let shown = d.rx("manager show connected").ok();
    assert!(
        shown.contains("  viewer  ") && shown.ends_with("1 users connected.\n"),
        "{shown}"
    );
    let cmds = d.rx("manager show commands").ok();
    assert!(
        cmds.contains("\n  Originate         Originate a call.\n"),
        "{cmds}"
    );
    let users = d.rx("manager show users").ok();
    assert!(
        users
            .contains("\nadmin\nfaraway\nviewer\n-------------------\n3 manager users configured."),
        "{users}"
    );
}

#[test]
fn unauthenticated_connections_are_bounded_in_number_and_time() {
    let d = ami_pbx(free_udp_port(), "authtimeout = 1\nauthlimit = 2\n");
    let port = ami_port(&d);
    let mut a = Raw::connect(port);
    let mut b = Raw::connect(port);
    a.until("\r\n");
    b.until("\r\n");
    // A third one while two wait to log in is closed at once, banner-less.
    let mut c = Raw::connect(port);
    assert!(c.closed(), "a third unauthenticated connection is refused");
    // The two are closed after authtimeout (1 s) without a login.
    let started = Instant::now();
    assert!(a.closed() && b.closed());
    assert!(started.elapsed() < Duration::from_secs(5));
    let log = d.wait_for_log(
        "failed to authenticate in 1 seconds",
        Duration::from_secs(5),
    );
    assert!(
        log.contains("Client from 127.0.0.1, failed to authenticate in 1 seconds"),
        "{log}"
    );
    // Then logging in works again; a login and actions in one write free
    // one place, not one per action.
    for _ in 0..3 {
        let mut ok = Raw::connect(port);
        ok.until("\r\n");
        ok.send(b"Action: Login\r\nUsername: admin\r\nSecret: admin-secret\r\nEvents: off\r\n\r\nAction: Ping\r\n\r\nAction: Ping\r\n\r\n");
        assert!(ok.until("\r\n\r\n").contains("Authentication accepted"));
        ok.until("Ping: Pong");
        ok.until("Ping: Pong");
    }
    let (mut x, mut y) = (Raw::connect(port), Raw::connect(port));
    x.until("\r\n");
    y.until("\r\n");
    let mut z = Raw::connect(port);
    assert!(z.closed(), "still two places for connections not logged in");
}

#[test]
fn ami_is_off_without_manager_toml() {
    let d = pbx();
    let s = d.rx("manager show settings").ok();
    assert!(s.contains("  TCP Bindaddress:           Disabled"), "{s}");
    let out = d.rx("manager show connected");
    assert_eq!(out.code, 1, "{out:?}");
}

#[test]
fn a_registration_is_a_peer_status_event() {
    let d = ami_pbx(free_udp_port(), "");
    let mut c = Raw::connect(ami_port(&d));
    c.until("\r\n");
    c.send(b"Action: Login\r\nUsername: admin\r\nSecret: admin-secret\r\n\r\n");
    c.until("Status: Fully Booted\r\n\r\n");
    // The fan-out subscribes once the session listens: a round trip after
    // the login makes sure it has.
    c.send(b"Action: Ping\r\n\r\n");
    c.until("Ping: Pong");
    let port = free_udp_port();
    let (code, out) = sipp_register(
        &d,
        "register_accepted.xml",
        "alice",
        "alice-secret",
        port,
        1,
    );
    assert_eq!(code, 0, "{out}");
    c.until("\r\n\r\nEvent: PeerStatus\r\n");
    let ev = c.until("\r\n\r\n");
    assert_eq!(
        ev,
        format!(
            "Privilege: system,all\r\nChannelType: SIP\r\nPeer: SIP/alice\r\nPeerStatus: Registered\r\nAddress: 127.0.0.1:{port}\r\n\r\n"
        )
    );
}

#[test]
fn core_stop_tells_the_sessions() {
    let mut d = ami_pbx(free_udp_port(), "");
    let mut c = Raw::connect(ami_port(&d));
    c.until("\r\n");
    c.send(b"Action: Login\r\nUsername: admin\r\nSecret: admin-secret\r\n\r\n");
    c.until("Status: Fully Booted\r\n\r\n");
    let _ = d.rx("core stop now");
    c.until("Event: Shutdown\r\n");
    assert_eq!(
        c.until("\r\n\r\n"),
        "Privilege: system,all\r\nShutdown: Cleanly\r\nRestart: False\r\n\r\n"
    );
    assert!(d.wait_exit(Duration::from_secs(10)).is_some());
}

#[test]
fn a_user_event_reaches_the_other_sessions() {
    let d = ami_pbx(free_udp_port(), "");
    let port = ami_port(&d);
    let login = |events: &str| {
        let mut c = Raw::connect(port);
        c.until("\r\n");
        c.send(
            format!("Action: Login\r\nUsername: admin\r\nSecret: admin-secret\r\nEvents: {events}\r\n\r\n")
                .as_bytes(),
        );
        c.until("Authentication accepted\r\n\r\n");
        c
    };
    let mut listener = login("user");
    listener.send(b"Action: Ping\r\n\r\n");
    listener.until("Ping: Pong");
    let mut sender = login("off");
    sender.send(
        b"Action: UserEvent\r\nActionID: 7\r\nUserEvent: CallbackRequested\r\nNumber: 6001\r\n\r\n",
    );
    assert_eq!(
        sender.until("\r\n\r\n"),
        "Response: Success\r\nActionID: 7\r\nMessage: Event Sent\r\n\r\n"
    );
    listener.until("Event: UserEvent\r\n");
    assert_eq!(
        listener.until("\r\n\r\n"),
        "Privilege: user,all\r\nUserEvent: CallbackRequested\r\nNumber: 6001\r\n\r\n"
    );
}
