use super::*;

/// The hub is one per process: its tests take turns.
static HUB_TESTS: Mutex<()> = Mutex::new(());

fn at(file: &'static str, line: u32) -> Origin<'static> {
    Origin {
        file: Some(file),
        line: Some(line),
        module: Some("chan_sip::registrar"),
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[test]
fn levels_follow_verbose_and_debug() {
    let _turn = HUB_TESTS.lock();
    let hub = LogHub::install(0, 0);
    hub.set_verbose(0);
    hub.set_debug(0);
    assert_eq!(hub.console_level(), LogLevel::Warn);
    assert_eq!(hub.file_level(), LogLevel::Info);
    hub.set_verbose(3);
    assert_eq!(hub.console_level(), LogLevel::Info);
    assert_eq!(hub.set_debug(1), 0);
    assert_eq!(hub.console_level(), LogLevel::Debug);
    assert_eq!(log::max_level(), log::LevelFilter::Debug);
    hub.set_debug(5);
    assert_eq!(hub.file_level(), LogLevel::Trace);
    hub.set_debug(0);
    hub.set_verbose(0);

    let dir = tempfile::tempdir().unwrap();
    assert!(hub
        .configure(LoggerConfig::default(), dir.path())
        .is_empty());
    let mut rx = hub.subscribe();
    hub.set_console_printer(Some(Box::new(|_| {})));
    let o = at("plugins/chan_sip/src/registrar.rs", 12);
    hub.write(LogLevel::Warn, "test", &o, "remote sees this");
    hub.write(LogLevel::Debug, "test", &o, "nobody sees this");
    hub.write(LogLevel::Info, "test", &o, "a notice for the file only");
    let line = rx.try_recv().unwrap();
    let tid = format::thread_id();
    assert!(
        line.ends_with(&format!(
            "] WARNING[{tid}]: registrar.rs:12 chan_sip: remote sees this"
        )),
        "{line}"
    );
    assert!(
        rx.try_recv().is_err(),
        "verbose 0: no notices on the console"
    );
    hub.flush_file();
    let text = read(dir.path(), "messages");
    assert!(
        text.contains("remote sees this") && !text.contains("nobody"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "NOTICE[{tid}]: registrar.rs:12 chan_sip: a notice for the file only\n"
    )));
}

#[test]
fn verbose_lines_follow_the_verbose_level_into_every_sink() {
    let _turn = HUB_TESTS.lock();
    let hub = LogHub::install(0, 0);
    let dir = tempfile::tempdir().unwrap();
    assert!(hub
        .configure(LoggerConfig::default(), dir.path())
        .is_empty());
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    hub.set_console_printer(Some(Box::new(move |l| s.lock().push(l.to_string()))));
    let o = at("crates/sirius-core/src/pbx.rs", 7);
    hub.set_verbose(2);
    hub.write(LogLevel::Info, "verbose:3", &o, "    -- Called SIP/quiet");
    hub.write(LogLevel::Info, "verbose:2", &o, "  == Spawn extension said");
    hub.write(
        LogLevel::Info,
        "chan_sip",
        &o,
        "a notice at any verbose level",
    );
    hub.set_verbose(3);
    hub.write(LogLevel::Info, "verbose:3", &o, "    -- Called SIP/loud");
    hub.set_verbose(0);
    hub.write(LogLevel::Info, "verbose:1", &o, "    -- not at 0");
    hub.write(LogLevel::Info, "chan_sip", &o, "still a notice");
    hub.flush_file();
    let text = read(dir.path(), "messages");
    let tid = format::thread_id();
    assert!(
        text.contains(&format!(
            "] VERBOSE[{tid}] pbx.rs:   == Spawn extension said\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("] VERBOSE[") && text.contains(" pbx.rs:     -- Called SIP/loud\n"),
        "{text}"
    );
    assert!(
        !text.contains("quiet") && !text.contains("not at 0"),
        "{text}"
    );
    assert!(
        text.contains("NOTICE[") && text.contains("chan_sip: still a notice"),
        "{text}"
    );
    // The console shows a verbose line bare, as Asterisk's does.
    let seen = seen.lock();
    assert!(
        seen.contains(&"  == Spawn extension said".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&"    -- Called SIP/loud".to_string()),
        "{seen:?}"
    );
    hub.set_console_printer(None);
}

#[test]
fn channels_take_what_logger_toml_says() {
    let _turn = HUB_TESTS.lock();
    let hub = LogHub::install(0, 0);
    hub.set_verbose(0);
    hub.set_debug(0);
    hub.set_console_printer(Some(Box::new(|_| {})));
    let dir = tempfile::tempdir().unwrap();
    let conf = LoggerConfig::parse(
        Path::new("logger.toml"),
        "[logfiles]\nmessages = \"notice,warning,error\"\nsecurity = \"security\"\nfull = \"*\"\nchatty = \"verbose(4)\"\n",
    )
    .unwrap();
    assert!(hub.configure(conf, dir.path()).is_empty());
    let o = at("crates/sirius-abi/src/security.rs", 99);
    hub.write(
        LogLevel::Warn,
        "security",
        &o,
        "SecurityEvent=\"InvalidPassword\"",
    );
    hub.write(LogLevel::Info, "verbose:4", &o, "    -- deep");
    hub.write(LogLevel::Debug, "x", &o, "debug while debug is 0");
    hub.write(LogLevel::Error, "x", &o, "an error");
    hub.set_debug(1);
    hub.write(LogLevel::Debug, "x", &o, "debug at 1");
    hub.set_debug(0);
    hub.flush_file();
    let (messages, security, full, chatty) = (
        read(dir.path(), "messages"),
        read(dir.path(), "security"),
        read(dir.path(), "full"),
        read(dir.path(), "chatty"),
    );
    let tid = format::thread_id();
    assert_eq!(
        security.lines().next().unwrap().split_once("] ").unwrap().1,
        format!("SECURITY[{tid}]: security.rs:99 chan_sip: SecurityEvent=\"InvalidPassword\"")
    );
    assert_eq!(security.lines().count(), 1, "{security}");
    assert!(
        !messages.contains("SecurityEvent") && messages.contains("an error"),
        "{messages}"
    );
    assert!(
        !messages.contains("deep") && !messages.contains("debug"),
        "{messages}"
    );
    // `*` takes everything produced; verbose 4 is above `core set verbose 0`.
    assert!(
        full.contains("SecurityEvent") && full.contains("debug at 1"),
        "{full}"
    );
    assert!(
        !full.contains("deep") && !full.contains("while debug is 0"),
        "{full}"
    );
    // verbose(4): this channel's own level.
    assert_eq!(chatty.lines().count(), 1, "{chatty}");
    assert!(chatty.contains("    -- deep"), "{chatty}");
    assert!(
        hub.show_channels().contains(&format!(
            "{:<35} File     default    Enabled    - SECURITY \n",
            dir.path().join("security").display().to_string()
        )),
        "{}",
        hub.show_channels()
    );
}

#[test]
fn rotate_and_reopen_keep_every_line() {
    let _turn = HUB_TESTS.lock();
    let hub = LogHub::install(0, 0);
    hub.set_console_printer(Some(Box::new(|_| {})));
    let dir = tempfile::tempdir().unwrap();
    assert!(hub
        .configure(LoggerConfig::default(), dir.path())
        .is_empty());
    let o = at("a/src/b.rs", 1);
    hub.write(LogLevel::Warn, "x", &o, "before rotate");
    let (moved, failed) = hub.rotate();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(moved.contains(&dir.path().join("messages.0")), "{moved:?}");
    hub.write(LogLevel::Warn, "x", &o, "after rotate");
    // logrotate's way: the file moved by someone else, then SIGHUP.
    std::fs::rename(dir.path().join("messages"), dir.path().join("messages.old")).unwrap();
    hub.write(LogLevel::Warn, "x", &o, "before reopen");
    hub.reopen().unwrap();
    hub.write(LogLevel::Warn, "x", &o, "after reopen");
    hub.flush_file();
    assert!(read(dir.path(), "messages.0").contains("before rotate"));
    let old = read(dir.path(), "messages.old");
    assert!(
        old.contains("after rotate") && old.contains("before reopen"),
        "{old}"
    );
    assert!(read(dir.path(), "messages").contains("after reopen"));
    // A reload with a broken file leaves the channels running, reopened
    // (logrotate's postrotate moved the files first).
    std::fs::write(
        dir.path().join("logger.toml"),
        "[logfiles]\nmessages = \"nope\"\n",
    )
    .unwrap();
    std::fs::rename(
        dir.path().join("messages"),
        dir.path().join("messages.rotated"),
    )
    .unwrap();
    let e = hub
        .reload(&dir.path().join("logger.toml"), dir.path())
        .unwrap_err();
    assert!(
        e[0].to_string()
            .contains("logger.toml:2: unknown level 'nope'"),
        "{e:?}"
    );
    hub.write(LogLevel::Warn, "x", &o, "still here");
    hub.flush_file();
    assert!(read(dir.path(), "messages").contains("still here"));
    assert!(!read(dir.path(), "messages.rotated").contains("still here"));
}

#[test]
fn a_channel_that_cannot_open_leaves_the_others_working() {
    let _turn = HUB_TESTS.lock();
    let hub = LogHub::install(0, 0);
    hub.set_console_printer(Some(Box::new(|_| {})));
    let dir = tempfile::tempdir().unwrap();
    // A file where the channel wants a directory.
    std::fs::write(dir.path().join("blocked"), "").unwrap();
    let conf = LoggerConfig::parse(
        Path::new("logger.toml"),
        "[logfiles]\nmessages = \"warning\"\n\"blocked/full\" = \"*\"\n",
    )
    .unwrap();
    let failed = hub.configure(conf, dir.path());
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].to_string().contains("blocked/full"),
        "{}",
        failed[0]
    );
    hub.write(LogLevel::Warn, "x", &at("a/src/b.rs", 1), "kept");
    hub.flush_file();
    assert!(read(dir.path(), "messages").contains("kept"));
    assert!(
        hub.show_channels()
            .contains(" File     default    Disabled  "),
        "{}",
        hub.show_channels()
    );
}

#[test]
fn fractions_of_a_second_are_not_kept_for_a_second() {
    assert!(shows_fractions("%T%.3f"));
    assert!(shows_fractions("%H:%M:%S.%6f"));
    assert!(shows_fractions("%f"));
    assert!(!shows_fractions("%b %e %T"));
    assert!(!shows_fractions("%F %%f"));
}
