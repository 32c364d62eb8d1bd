//! SIP over TCP: sipp with `-t t1` (one TCP connection) and a raw TCP client
//! (a phone that registers and then takes a call on its own connection, which
//! sipp cannot play: it maps an incoming INVITE with a new Call-ID to no call).

use sirius_blackbox::{free_udp_port, scenario, sipp, sipp_options, Daemon, SippProcess};
use sirius_sip::auth::client::Challenge;
use sirius_sip::message::{build, Framer, HeaderName, Limits, Message};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const SIP_TOML: &str = r#"
[general]
udpbindaddr = "127.0.0.1:0"
tcpenable = true
realm = "sirius"

[peers.alice]
host = "dynamic"
secret = "alice-secret"
context = "test"
transport = "udp,tcp"

[peers.bob]
host = "dynamic"
secret = "bob-secret"
context = "test"

[peers.sipp]
type = "peer"
host = "127.0.0.1"
insecure = ["invite", "port"]
context = "test"
"#;

const EXTENSIONS: &str = r#"
[test]
"300" = ["Dial(SIP/tcpcallee,5)", "Hangup()"]
"400" = ["Dial(SIP/alice,5)", "Goto(st-${DIALSTATUS})", "st-BUSY: Busy()", "st-CHANUNAVAIL: Congestion()"]
"#;

fn pbx(extra_peers: &str) -> Daemon {
    let sip = format!("{SIP_TOML}\n{extra_peers}");
    Daemon::with_chan_sip(&[("sip.toml", &sip), ("extensions.toml", EXTENSIONS)])
}

fn sf(name: &str) -> String {
    scenario(name).to_str().unwrap().to_string()
}

#[test]
fn options_and_register_work_over_tcp_and_the_peer_shows_its_transport() {
    let d = pbx("");
    assert!(d.rx("sip show settings").ok().contains(&format!(
        "  TCP Bindaddress:        127.0.0.1:{}\n",
        d.sip_port()
    )));
    let target = format!("127.0.0.1:{}", d.sip_port());
    let (code, out) = sipp(&[
        &target,
        "-t",
        "t1",
        "-sf",
        &sf("options.xml"),
        "-m",
        "2",
        "-p",
        &free_udp_port().to_string(),
    ]);
    assert_eq!(code, 0, "OPTIONS over TCP:\n{out}");
    let register = |user: &str, pw: &str| {
        sipp(&[
            &target,
            "-t",
            "t1",
            "-sf",
            &sf("register_accepted.xml"),
            "-s",
            user,
            "-au",
            user,
            "-ap",
            pw,
            "-m",
            "1",
            "-p",
            &free_udp_port().to_string(),
        ])
    };
    let (code, out) = register("alice", "alice-secret");
    assert_eq!(code, 0, "REGISTER over TCP with digest:\n{out}");
    let peer = d.rx("sip show peer alice").ok();
    assert!(peer.contains("  Transport    : TCP\n"), "{peer}");
    assert!(peer.contains("  Allowed.Trsp : UDP,TCP\n"), "{peer}");
    // bob may only use UDP (the default): the right password is not enough.
    let (code, _) = register("bob", "bob-secret");
    assert_ne!(code, 0, "bob over TCP must be refused");
    assert!(d
        .rx("sip show peer bob")
        .ok()
        .contains("  Addr->IP     : (null)"));
    assert!(d
        .messages()
        .contains("Rejecting registration of peer 'bob' from 127.0.0.1:"));
}

#[test]
fn a_call_to_a_tcp_peer_opens_a_connection_and_completes_over_it() {
    let callee_port = free_udp_port();
    let d = pbx(&format!(
        "[peers.tcpcallee]\ntype = \"peer\"\nhost = \"127.0.0.1\"\nport = {callee_port}\ntransport = \"tcp\"\n"
    ));
    let trace = d.root.path().join("tcp_callee.log");
    let callee = SippProcess::start(
        callee_port,
        &[
            "-sn",
            "uas",
            "-t",
            "t1",
            "-m",
            "1",
            "-trace_msg",
            "-message_file",
            trace.to_str().unwrap(),
        ],
    );
    let target = format!("127.0.0.1:{}", d.sip_port());
    let (code, out) = sipp(&[
        &target,
        "-sn",
        "uac",
        "-s",
        "300",
        "-d",
        "300",
        "-m",
        "1",
        "-p",
        &free_udp_port().to_string(),
    ]);
    assert_eq!(code, 0, "UDP caller through the PBX:\n{out}");
    assert_eq!(callee.finish(), Some(0), "TCP callee: INVITE … BYE");
    let msgs = std::fs::read_to_string(&trace).unwrap();
    let port = d.sip_port();
    assert!(
        msgs.contains(&format!("Via: SIP/2.0/TCP 127.0.0.1:{port};branch=")),
        "{msgs}"
    );
    assert!(
        msgs.contains(&format!("<sip:sipp@127.0.0.1:{port};transport=tcp>")),
        "{msgs}"
    );
    assert!(msgs.contains("BYE sip:"), "{msgs}");
}

/// A SIP phone on one TCP connection, written by hand.
struct TcpPhone {
    stream: TcpStream,
    framer: Framer,
}

impl TcpPhone {
    fn connect(port: u16) -> TcpPhone {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        TcpPhone {
            stream,
            framer: Framer::new(Limits::default()),
        }
    }

    fn local_port(&self) -> u16 {
        self.stream.local_addr().unwrap().port()
    }

    fn send(&mut self, msg: &Message) {
        self.stream.write_all(&msg.to_bytes()).unwrap();
    }

    fn recv(&mut self) -> Message {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(m) = self.framer.next_message() {
                return m.unwrap();
            }
            let n = self.stream.read(&mut buf).expect("a message within 10 s");
            assert!(n > 0, "the PBX closed the connection");
            self.framer.push(&buf[..n]);
        }
    }

    /// OPTIONS on this connection; the response.
    fn options(&mut self, pbx_port: u16) -> Message {
        let me = self.local_port();
        let mut m = Message::request(
            sirius_sip::message::Method::Options,
            format!("sip:127.0.0.1:{pbx_port}"),
        );
        m.push(
            HeaderName::Via,
            format!("SIP/2.0/TCP 127.0.0.1:{me};branch=z9hG4bK-opt{me}"),
        );
        m.push(HeaderName::From, format!("<sip:probe@127.0.0.1>;tag=o{me}"));
        m.push(HeaderName::To, format!("<sip:127.0.0.1:{pbx_port}>"));
        m.push(HeaderName::CallId, format!("opt-{me}"));
        m.push(HeaderName::CSeq, "1 OPTIONS");
        m.push(HeaderName::MaxForwards, "70");
        m.set_body("", Vec::new());
        self.send(&m);
        self.recv()
    }

    fn register(&mut self, user: &str, password: &str, pbx_port: u16) {
        let me = self.local_port();
        let uri = format!("sip:127.0.0.1:{pbx_port}");
        let request = |cseq: u32, auth: Option<(HeaderName, String)>| {
            let mut m = Message::request(sirius_sip::message::Method::Register, uri.clone());
            m.push(
                HeaderName::Via,
                format!("SIP/2.0/TCP 127.0.0.1:{me};branch=z9hG4bK-reg{cseq}"),
            );
            m.push(
                HeaderName::From,
                format!("<sip:{user}@127.0.0.1>;tag=t{me}"),
            );
            m.push(HeaderName::To, format!("<sip:{user}@127.0.0.1>"));
            m.push(HeaderName::CallId, format!("reg-{me}"));
            m.push(HeaderName::CSeq, format!("{cseq} REGISTER"));
            m.push(
                HeaderName::Contact,
                format!("<sip:{user}@127.0.0.1:{me};transport=tcp>"),
            );
            m.push(HeaderName::Expires, "300");
            m.push(HeaderName::MaxForwards, "70");
            if let Some((name, value)) = auth {
                m.push(name, value);
            }
            m.set_body("", Vec::new());
            m
        };
        self.send(&request(1, None));
        let challenge = self.recv();
        assert_eq!(challenge.code(), Some(401));
        let c = Challenge::from_response(&challenge).unwrap().remove(0);
        let value = c
            .authorize(user, password, "REGISTER", &uri, b"", "0a4f113b", 1)
            .unwrap();
        self.send(&request(2, Some((c.answer_header(), value))));
        assert_eq!(self.recv().code(), Some(200));
    }
}

#[test]
fn a_phone_registered_over_tcp_is_called_over_its_own_connection() {
    let d = pbx("");
    let mut phone = TcpPhone::connect(d.sip_port());
    phone.register("alice", "alice-secret", d.sip_port());
    let target = format!("127.0.0.1:{}", d.sip_port());
    let port = free_udp_port().to_string();
    let busy = sf("uac_busy.xml");
    let caller = std::thread::spawn(move || {
        sipp(&[&target, "-p", &port, "-m", "1", "-sf", &busy, "-s", "400"])
    });
    // The INVITE for alice arrives on the connection she registered on.
    let invite = phone.recv();
    assert_eq!(
        invite.method().map(|m| m.as_str()),
        Some("INVITE"),
        "{invite:?}"
    );
    assert!(invite
        .headers
        .get(&HeaderName::Via)
        .unwrap()
        .starts_with("SIP/2.0/TCP "));
    let mut busy = build::response(&invite, 486, "Busy Here", None);
    build::set_to_tag(&mut busy, "phone-tag");
    phone.send(&busy);
    let ack = phone.recv();
    assert_eq!(ack.method().map(|m| m.as_str()), Some("ACK"));
    let (code, out) = caller.join().unwrap();
    assert_eq!(code, 0, "the caller gets the phone's busy as 486:\n{out}");
}

#[test]
fn an_unframable_stream_is_closed_and_the_pbx_carries_on() {
    let d = pbx("");
    let mut s = TcpStream::connect(("127.0.0.1", d.sip_port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // No Content-Length: on a stream the end of this message cannot be known.
    s.write_all(
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-x\r\n\
          From: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: bad\r\nCSeq: 1 OPTIONS\r\n\r\n",
    )
    .unwrap();
    let mut buf = [0u8; 512];
    assert_eq!(
        s.read(&mut buf).expect("closed, not left hanging"),
        0,
        "the PBX closes the connection"
    );
    d.wait_for_log("unframable stream", Duration::from_secs(5));
    let (code, out) = sipp_options(&d, &["-t", "t1"]);
    assert_eq!(code, 0, "a new connection still works:\n{out}");
}

/// Issue #16 item 1: a REGISTER followed on the same stream by bytes that
/// cannot be framed still gets its 401 before the connection closes (the
/// responses queued before the error used to be dropped with it).
#[test]
fn a_framing_error_after_a_valid_register_still_gets_its_401() {
    let d = pbx("");
    let mut s = TcpStream::connect(("127.0.0.1", d.sip_port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let me = s.local_addr().unwrap().port();
    let register = format!(
        "REGISTER sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{me};branch=z9hG4bK-fr1\r\n\
         From: <sip:alice@127.0.0.1>;tag=fr{me}\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: framing-{me}\r\n\
         CSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:{me};transport=tcp>\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        port = d.sip_port()
    );
    // Then a message without Content-Length: its end cannot be known.
    let bad = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK-x\r\n\
               From: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: bad\r\nCSeq: 1 OPTIONS\r\n\r\n";
    s.write_all(format!("{register}{bad}").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("the connection must end, not hang: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("SIP/2.0 401 Unauthorized\r\n")
            && text.contains(&format!("Call-ID: framing-{me}\r\n")),
        "{text}"
    );
    d.wait_for_log("unframable stream", Duration::from_secs(5));
}

/// Issue #16 item 1: idle connections that never authenticate. One address
/// opening 200 of them takes `tcpauthperaddress` (5) slots, the rest are
/// refused at once, the 5 close after `tcpauthtimeout` (2 s); a client at
/// another address is served meanwhile, and a connection that registered
/// stays open past the timeout.
#[test]
fn an_idle_connection_flood_leaves_room_for_other_clients() {
    let sip = SIP_TOML.replace(
        "tcpenable = true\n",
        "tcpenable = true\ntcpauthtimeout = 2\ntcpauthlimit = 20\ntcpauthperaddress = 5\n",
    );
    let d = Daemon::with_chan_sip(&[("sip.toml", &sip), ("extensions.toml", EXTENSIONS)]);
    // A phone that registers first: trusted, not counted.
    let mut phone = TcpPhone::connect(d.sip_port());
    phone.register("alice", "alice-secret", d.sip_port());
    let mut flood: Vec<TcpStream> = (0..200)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", d.sip_port())).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    d.wait_for_log(
        "5 unauthenticated connections open from 127.0.0.1 (tcpauthperaddress)",
        Duration::from_secs(5),
    );
    // Another address is served while the flood's connections are open.
    let (code, out) = sipp_options(&d, &["-t", "t1", "-i", "127.0.0.2"]);
    assert_eq!(code, 0, "a client at 127.0.0.2 is served:\n{out}");
    // Every flood connection ends: 195 at once, 5 after the auth timeout.
    let mut buf = [0u8; 64];
    for s in &mut flood {
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a flood connection must be closed: {other:?}"),
        }
    }
    d.wait_for_log(
        "not authenticated within 2 s (tcpauthtimeout)",
        Duration::from_secs(5),
    );
    // The registered connection outlived the timeout.
    assert_eq!(phone.options(d.sip_port()).code(), Some(200));
    // And the flooding address is served again.
    let mut again = TcpPhone::connect(d.sip_port());
    assert_eq!(again.options(d.sip_port()).code(), Some(200));
}
