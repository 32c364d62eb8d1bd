//! The session state machine without sockets: a fake backend, messages in,
//! outputs checked.

use super::*;
use crate::backend::{ChannelView, OriginateRequest, Originated};
use sirius_abi::Cause;

#[derive(Default)]
struct Fake {
    originated: parking_lot::Mutex<Vec<OriginateRequest>>,
    user_events: parking_lot::Mutex<Vec<Vec<(String, String)>>>,
}

impl Backend for Fake {
    fn command(&self, line: &str) -> (bool, String) {
        match line {
            "core show version" => (true, "Sirius 0.1.0 built by x\n".into()),
            "two lines" => (true, "a: 1\nb\n".into()),
            _ => (false, format!("No such command '{line}'")),
        }
    }
    fn command_json(&self, line: &str) -> Result<serde_json::Value, String> {
        Err(format!("No such command '{line}'"))
    }
    fn channels(&self) -> Vec<ChannelView> {
        vec![ChannelView {
            name: "SIP/a-00000001".into(),
            tech: "SIP".into(),
            block: vec![
                ("Channel".into(), "SIP/a-00000001".into()),
                ("Uniqueid".into(), "1.1".into()),
            ],
            application: "Wait".into(),
            data: "5".into(),
            seconds: 3661,
            ..Default::default()
        }]
    }
    fn channel(&self, name: &str) -> Option<ChannelView> {
        self.channels().into_iter().find(|c| c.name == name)
    }
    fn hangup(&self, name: &str, _: Cause) -> Result<String, String> {
        self.channel(name)
            .map(|c| c.name)
            .ok_or("No such channel".into())
    }
    fn getvar(&self, channel: &str, var: &str) -> Result<String, String> {
        match (channel, var) {
            ("SIP/a-00000001", "X") => Ok("1\r\nEvent: Forged".into()),
            ("SIP/a-00000001", _) => Ok(String::new()),
            _ => Err("No such channel".into()),
        }
    }
    fn setvar(&self, _: &str, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn redirect(&self, _: &str, _: &str, _: &str, _: u32) -> Result<(), String> {
        Ok(())
    }
    fn originate(&self, req: &OriginateRequest) -> Result<Originated, Cause> {
        self.originated.lock().push(req.clone());
        if req.resource == "busy" {
            return Err(Cause::USER_BUSY);
        }
        Ok(Originated {
            id: sirius_abi::ChannelId(7),
            name: "SIP/b-00000002".into(),
            uniqueid: "1.7".into(),
        })
    }
    fn uptime(&self) -> (u64, u64) {
        (42, 7)
    }
    fn user_event(&self, fields: Vec<(String, String)>) {
        self.user_events.lock().push(fields);
    }
}

fn settings() -> Arc<Settings> {
    Arc::new(
        Settings::parse(
            r#"
[general]
enabled = true
[admin]
secret = "s3cret"
read = "all"
write = "all"
[viewer]
secret = "v"
read = "call"
write = "reporting"
[lan]
secret = "l"
deny = "0.0.0.0/0"
permit = "10.0.0.0/8"
"#,
            "manager.toml",
        )
        .unwrap(),
    )
}

fn session() -> Session {
    Session::new(
        1,
        "127.0.0.1:5038".parse().unwrap(),
        "127.0.0.1:40000".parse().unwrap(),
        settings(),
    )
}

fn text(outs: &[Output]) -> String {
    outs.iter()
        .filter_map(|o| match o {
            Output::Write(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn act(s: &mut Session, pairs: &[(&str, &str)]) -> Vec<Output> {
    s.handle(&Message::from_pairs(pairs), &Fake::default())
}

fn logged_in(user: &str, secret: &str) -> Session {
    let mut s = session();
    let out = act(
        &mut s,
        &[("Action", "Login"), ("Username", user), ("Secret", secret)],
    );
    assert!(
        text(&out).starts_with("Response: Success\r\nMessage: Authentication accepted\r\n\r\n"),
        "{out:?}"
    );
    s
}

#[test]
fn plain_login_then_fully_booted_then_logoff() {
    let mut s = session();
    let out = act(
        &mut s,
        &[
            ("Action", "Login"),
            ("ActionID", "1"),
            ("Username", "admin"),
            ("Secret", "s3cret"),
        ],
    );
    assert_eq!(
        text(&out),
        "Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n\
         Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 42\r\nLastReload: 7\r\nStatus: Fully Booted\r\n\r\n"
    );
    assert_eq!(s.state(), State::Authenticated);
    assert_eq!(s.event_mask(), Perms::ALL);
    let out = act(
        &mut s,
        &[
            ("Action", "Login"),
            ("Username", "admin"),
            ("Secret", "s3cret"),
        ],
    );
    assert!(text(&out).contains("Already authenticated"));
    let out = act(&mut s, &[("Action", "Logoff"), ("ActionID", "9")]);
    assert_eq!(
        out,
        vec![
            Output::Write(
                "Response: Goodbye\r\nActionID: 9\r\nMessage: Thanks for all the fish.\r\n\r\n"
                    .into()
            ),
            Output::Close
        ]
    );
    assert_eq!(s.state(), State::Closed);
    assert!(
        act(&mut s, &[("Action", "Ping")]).is_empty(),
        "nothing after logoff"
    );
}

#[test]
fn refused_logins_pause_answer_and_close() {
    for (user, secret) in [("admin", "wrong"), ("nobody", "x"), ("lan", "l"), ("", "")] {
        let mut s = session();
        let out = act(
            &mut s,
            &[("Action", "Login"), ("Username", user), ("Secret", secret)],
        );
        assert_eq!(
            out,
            vec![
                Output::Pause,
                Output::Write("Response: Error\r\nMessage: Authentication failed\r\n\r\n".into()),
                Output::Close
            ],
            "{user}"
        );
        assert_eq!(s.state(), State::Closed);
    }
}

#[test]
fn md5_login_needs_the_challenge() {
    let mut s = session();
    let out = text(&act(
        &mut s,
        &[
            ("Action", "Challenge"),
            ("AuthType", "MD5"),
            ("ActionID", "c"),
        ],
    ));
    let challenge = out
        .lines()
        .find_map(|l| l.strip_prefix("Challenge: "))
        .expect("a challenge")
        .to_string();
    assert!(out.starts_with("Response: Success\r\nActionID: c\r\n"));
    assert!(challenge.bytes().all(|b| b.is_ascii_digit()));
    // The same challenge until used.
    let again = text(&act(
        &mut s,
        &[("Action", "Challenge"), ("AuthType", "md5")],
    ));
    assert!(again.contains(&challenge));
    let key = md5_key(&challenge, "s3cret");
    let out = act(
        &mut s,
        &[
            ("Action", "Login"),
            ("AuthType", "MD5"),
            ("Username", "admin"),
            ("Key", &key),
        ],
    );
    assert!(text(&out).contains("Authentication accepted"));
    // A wrong key, and a key without a challenge, are refused.
    let mut s = session();
    act(&mut s, &[("Action", "Challenge"), ("AuthType", "MD5")]);
    let out = act(
        &mut s,
        &[
            ("Action", "Login"),
            ("AuthType", "MD5"),
            ("Username", "admin"),
            ("Key", &key),
        ],
    );
    assert!(text(&out).contains("Authentication failed"));
    let mut s = session();
    let out = act(
        &mut s,
        &[
            ("Action", "Login"),
            ("AuthType", "MD5"),
            ("Username", "admin"),
            ("Key", &key),
        ],
    );
    assert!(text(&out).contains("Authentication failed"));
    let mut s = session();
    assert!(text(&act(&mut s, &[("Action", "Challenge")])).contains("Must specify AuthType"));
    assert_eq!(md5_key("12345", "s3cret").len(), 32);
}

#[test]
fn actions_before_login_unknown_actions_and_permissions() {
    let mut s = session();
    assert_eq!(
        text(&act(&mut s, &[("Action", "Ping"), ("ActionID", "p")])),
        "Response: Error\r\nActionID: p\r\nMessage: Permission denied\r\n\r\n"
    );
    assert_eq!(s.state(), State::Unauthenticated);
    assert!(text(&act(&mut s, &[("ActionID", "x")])).contains("Missing action in request"));
    let mut s = logged_in("viewer", "v");
    assert_eq!(s.event_mask(), Perms::CALL);
    assert_eq!(
        text(&act(&mut s, &[("Action", "Frobnicate"), ("ActionID", "u")])),
        "Response: Error\r\nActionID: u\r\nMessage: Invalid/unknown command: Frobnicate. Use Action: ListCommands to show available commands.\r\n\r\n"
    );
    assert!(text(&act(
        &mut s,
        &[("Action", "Command"), ("Command", "core show version")]
    ))
    .contains("Permission denied"));
    assert!(text(&act(
        &mut s,
        &[("Action", "Originate"), ("Channel", "SIP/b")]
    ))
    .contains("Permission denied"));
    // Getvar needs call or reporting: the viewer has reporting.
    assert!(text(&act(
        &mut s,
        &[
            ("Action", "Getvar"),
            ("Channel", "SIP/a-00000001"),
            ("Variable", "Y")
        ]
    ))
    .contains("Value: \r\n"));
    let ping = text(&act(&mut s, &[("Action", "ping"), ("ActionID", "p")]));
    assert!(
        ping.starts_with("Response: Success\r\nActionID: p\r\nPing: Pong\r\nTimestamp: "),
        "{ping}"
    );
}

#[test]
fn events_mask_stays_within_read() {
    let mut s = logged_in("viewer", "v");
    assert_eq!(
        text(&act(&mut s, &[("Action", "Events"), ("EventMask", "off")])),
        "Response: Success\r\nEvents: Off\r\n\r\n"
    );
    assert_eq!(s.event_mask(), Perms::NONE);
    assert_eq!(
        text(&act(
            &mut s,
            &[("Action", "Events"), ("EventMask", "system,call")]
        )),
        "Response: Success\r\nEvents: On\r\n\r\n"
    );
    assert_eq!(
        s.event_mask(),
        Perms::CALL,
        "system is not the viewer's to read"
    );
    assert!(text(&act(&mut s, &[("Action", "Events")])).contains("Invalid event mask"));
    // Login with Events: off.
    let mut s = session();
    act(
        &mut s,
        &[
            ("Action", "Login"),
            ("Username", "admin"),
            ("Secret", "s3cret"),
            ("Events", "off"),
        ],
    );
    assert_eq!(s.event_mask(), Perms::NONE);
}

#[test]
fn command_output_as_asterisk_16_writes_it() {
    let mut s = logged_in("admin", "s3cret");
    assert_eq!(
        text(&act(&mut s, &[("Action", "Command"), ("ActionID", "k"), ("Command", "two lines")])),
        "Response: Success\r\nActionID: k\r\nMessage: Command output follows\r\nOutput: a: 1\r\nOutput: b\r\n\r\n"
    );
    assert!(
        text(&act(&mut s, &[("Action", "Command"), ("Command", "nope")]))
            .starts_with("Response: Error\r\n")
    );
    assert!(text(&act(
        &mut s,
        &[("Action", "Command"), ("Command", "module unload chan_sip")]
    ))
    .contains("Command blacklisted"));
    assert!(text(&act(&mut s, &[("Action", "Command")])).contains("No command provided"));
}

#[test]
fn lists_carry_the_action_id_and_end_with_complete() {
    let mut s = logged_in("admin", "s3cret");
    let out = text(&act(
        &mut s,
        &[("Action", "CoreShowChannels"), ("ActionID", "L")],
    ));
    assert_eq!(
        out,
        "Response: Success\r\nActionID: L\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n\
         Event: CoreShowChannel\r\nActionID: L\r\nChannel: SIP/a-00000001\r\nUniqueid: 1.1\r\nApplication: Wait\r\nApplicationData: 5\r\nDuration: 01:01:01\r\nBridgeId: \r\n\r\n\
         Event: CoreShowChannelsComplete\r\nActionID: L\r\nEventList: Complete\r\nListItems: 1\r\n\r\n"
    );
    let out = text(&act(&mut s, &[("Action", "Status"), ("ActionID", "S")]));
    assert!(
        out.contains("Event: Status\r\nPrivilege: Call\r\nChannel: SIP/a-00000001\r\n"),
        "{out}"
    );
    assert!(out.ends_with("Event: StatusComplete\r\nActionID: S\r\nEventList: Complete\r\nListItems: 1\r\nItems: 1\r\n\r\n"), "{out}");
    assert!(text(&act(
        &mut s,
        &[("Action", "Status"), ("Channel", "SIP/none")]
    ))
    .contains("No such channel"));
}

#[test]
fn core_settings_and_status() {
    let mut s = logged_in("admin", "s3cret");
    let t = text(&act(
        &mut s,
        &[("Action", "CoreSettings"), ("ActionID", "cs")],
    ));
    assert!(
        t.starts_with(
            "Response: Success\r\nActionID: cs\r\nAMIversion: 5.0.2\r\nAsteriskVersion: \r\n"
        ),
        "{t}"
    );
    assert!(t.contains("CoreMaxLoadAvg: 0.000000\r\n"), "{t}");
    let t = text(&act(&mut s, &[("Action", "CoreStatus")]));
    assert!(
        t.contains("CoreCurrentCalls: 0\r\nCoreProcessedCalls: 0\r\n"),
        "{t}"
    );
    assert_eq!(
        t.lines()
            .find_map(|l| l.strip_prefix("CoreStartupDate: "))
            .map(str::len),
        Some(10),
        "{t}"
    );
}

#[test]
fn user_events_and_reload() {
    let mut s = logged_in("admin", "s3cret");
    let fake = Fake::default();
    let m = Message::from_pairs(&[
        ("Action", "UserEvent"),
        ("ActionID", "u"),
        ("UserEvent", "CallbackRequested"),
        ("Number", "6001"),
    ]);
    assert_eq!(
        text(&s.handle(&m, &fake)),
        "Response: Success\r\nActionID: u\r\nMessage: Event Sent\r\n\r\n"
    );
    assert_eq!(
        fake.user_events.lock()[0],
        vec![
            ("UserEvent".to_string(), "CallbackRequested".to_string()),
            ("Number".to_string(), "6001".to_string())
        ]
    );
    assert!(text(&act(&mut s, &[("Action", "UserEvent")])).contains("Missing UserEvent"));
    // The fake's console knows no `module reload`.
    assert!(text(&act(
        &mut s,
        &[("Action", "Reload"), ("Module", "chan_sip")]
    ))
    .starts_with("Response: Error\r\n"));
    let mut v = logged_in("viewer", "v");
    assert!(
        text(&act(&mut v, &[("Action", "UserEvent"), ("UserEvent", "x")]))
            .contains("Permission denied")
    );
}

#[test]
fn extension_state_without_a_hint() {
    let mut s = logged_in("admin", "s3cret");
    assert_eq!(
        text(&act(&mut s, &[("Action", "ExtensionState"), ("Exten", "6001"), ("Context", "demo")])),
        "Response: Success\r\nMessage: Extension Status\r\nExten: 6001\r\nContext: demo\r\nHint: \r\nStatus: -1\r\nStatusText: Unknown\r\n\r\n"
    );
}

#[test]
fn channel_actions() {
    let mut s = logged_in("admin", "s3cret");
    assert!(text(&act(
        &mut s,
        &[("Action", "Hangup"), ("Channel", "SIP/a-00000001")]
    ))
    .contains("Channel Hungup"));
    assert!(
        text(&act(&mut s, &[("Action", "Hangup"), ("Channel", "SIP/x")]))
            .contains("No such channel")
    );
    // A value cannot forge a header.
    let v = text(&act(
        &mut s,
        &[
            ("Action", "Getvar"),
            ("Channel", "SIP/a-00000001"),
            ("Variable", "X"),
        ],
    ));
    assert_eq!(
        v,
        "Response: Success\r\nVariable: X\r\nValue: 1  Event: Forged\r\n\r\n"
    );
    assert!(text(&act(
        &mut s,
        &[
            ("Action", "Setvar"),
            ("Channel", "SIP/a-00000001"),
            ("Variable", "X"),
            ("Value", "2")
        ]
    ))
    .contains("Variable Set"));
    assert!(text(&act(
        &mut s,
        &[
            ("Action", "Redirect"),
            ("Channel", "SIP/a-00000001"),
            ("Exten", "600")
        ]
    ))
    .contains("Redirect successful"));
    assert!(text(&act(
        &mut s,
        &[
            ("Action", "Redirect"),
            ("Channel", "SIP/a-00000001"),
            ("Exten", "600"),
            ("Priority", "x")
        ]
    ))
    .contains("Invalid priority"));
}

#[test]
fn originate_async_answers_at_once_and_waits_for_the_call() {
    let mut s = logged_in("admin", "s3cret");
    let fake = Fake::default();
    let m = Message::from_pairs(&[
        ("Action", "Originate"),
        ("ActionID", "o"),
        ("Channel", "SIP/bob"),
        ("Context", "test"),
        ("Exten", "100"),
        ("Async", "true"),
        ("CallerID", "\"Ops\" <900>"),
        ("Variable", "A=1,B=2"),
    ]);
    let out = s.handle(&m, &fake);
    assert_eq!(
        out[0],
        Output::Write(
            "Response: Success\r\nActionID: o\r\nMessage: Originate successfully queued\r\n\r\n"
                .into()
        )
    );
    assert!(matches!(&out[1], Output::AwaitOriginate(p) if !p.sync && p.name == "SIP/b-00000002"));
    let req = fake.originated.lock()[0].clone();
    assert_eq!((req.tech.as_str(), req.resource.as_str()), ("SIP", "bob"));
    assert_eq!(
        req.vars,
        vec![("A".into(), "1".into()), ("B".into(), "2".into())]
    );
    assert_eq!(req.caller_id, Some(("900".into(), "Ops".into())));
    // Refused at once: queued, then the failure as the event.
    let m = Message::from_pairs(&[
        ("Action", "Originate"),
        ("ActionID", "f"),
        ("Channel", "SIP/busy"),
        ("Application", "Echo"),
        ("Async", "yes"),
    ]);
    let t = text(&s.handle(&m, &fake));
    assert!(t.contains("Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: f\r\nResponse: Failure\r\nChannel: SIP/busy\r\nApplication: Echo\r\nData: \r\nReason: 5\r\n"), "{t}");
    // Synchronous: nothing until the outcome.
    let m = Message::from_pairs(&[
        ("Action", "Originate"),
        ("Channel", "SIP/bob"),
        ("Exten", "100"),
    ]);
    assert!(matches!(&s.handle(&m, &fake)[..], [Output::AwaitOriginate(p)] if p.sync));
    assert!(text(&s.handle(
        &Message::from_pairs(&[("Action", "Originate"), ("Channel", "bob")]),
        &fake
    ))
    .contains("Invalid channel"));
}

/// Any bytes, in any chunks: the framer and the session neither panic nor
/// hold more than their bounds (a small xorshift generator, fixed seed, so
/// a failure replays).
#[test]
fn random_input_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words: &[&[u8]] = &[
        b"Action: ",
        b"Login",
        b"Challenge",
        b"Originate",
        b"Command",
        b"Events",
        b"Getvar",
        b"Status",
        b"Hangup",
        b"Redirect",
        b"Username: admin",
        b"Secret: s3cret",
        b"AuthType: MD5",
        b"Key: ",
        b"EventMask: ",
        b"Channel: ",
        b"SIP/",
        b"Async: yes",
        b"Priority: ",
        b"\r\n",
        b"\n",
        b":",
        b"\r\n\r\n",
        b"\xff\xfe",
        b"\0",
        b"Variable: a=b,c",
        b"ActionID: ",
    ];
    let fake = Fake::default();
    for _ in 0..300 {
        let mut framer = crate::message::Framer::new();
        let mut s = session();
        let mut stream = Vec::new();
        for _ in 0..(next() % 200) {
            match next() % 4 {
                0 => stream.extend((0..next() % 50).map(|_| next() as u8)),
                _ => stream.extend_from_slice(words[(next() % words.len() as u64) as usize]),
            }
        }
        let mut at = 0;
        while at < stream.len() {
            let n = ((next() % 64) as usize + 1).min(stream.len() - at);
            let mut msgs = Vec::new();
            framer.push(&stream[at..at + n], &mut msgs);
            at += n;
            for m in msgs {
                assert!(m.headers.len() <= crate::message::MAX_HEADERS);
                let _ = s.handle(&m, &fake);
            }
        }
    }
}
