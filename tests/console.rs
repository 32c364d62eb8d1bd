//! The console as an administrator meets it: `-rx` exit codes, help, tab
//! completion over the remote protocol, `core show …` layouts, one daemon per
//! socket, and both ways of stopping.

use sirius_blackbox::{log_line, Daemon, Setup};
use sirius_console::remote::{Client, Reply, Request};
use std::time::Duration;

const TEST: &str = "fixture_chan_test";

#[test]
fn unknown_commands_and_usage_errors_exit_non_zero() {
    let d = Daemon::with_modules(&[]);
    let r = d.rx("foo bar");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.out.trim_end(),
        "No such command 'foo bar' (type 'core show help foo' for other possible commands)"
    );
    let usage = d.rx("core set verbose lots").failed();
    assert!(
        usage.starts_with("Usage: core set verbose {off|<level>}"),
        "{usage}"
    );
    assert!(d
        .rx("core show version extra")
        .failed()
        .starts_with("Usage: core show version"));
    assert!(d
        .rx("module show")
        .ok()
        .trim_end()
        .ends_with("0 modules loaded"));
}

#[test]
fn a_stopped_daemon_is_reported_with_exit_code_2() {
    let mut d = Daemon::with_modules(&[]);
    assert_eq!(
        d.rx("core stop now").ok().trim_end(),
        "Sirius is stopping now."
    );
    assert_eq!(d.wait_exit(Duration::from_secs(10)), Some(0));
    let r = d.rx("core show version");
    assert_eq!(r.code, 2);
    assert!(
        r.err
            .starts_with("Unable to connect to remote Sirius (does "),
        "{r:?}"
    );
    assert!(!d.socket().exists(), "socket removed on exit");
}

#[test]
fn help_lists_core_and_plugin_commands_and_shows_usage() {
    let d = Daemon::with_modules(&[TEST]);
    let help = d.rx("help").ok();
    assert!(
        help.contains(&format!(
            "{:<30} -- {}",
            "core show channels", "Display information on channels"
        )),
        "{help}"
    );
    assert!(
        help.contains(&format!(
            "{:<30} -- {}",
            "test show channels", "List Test channels"
        )),
        "{help}"
    );
    let core = d.rx("help core show").ok();
    assert!(core.lines().all(|l| l.starts_with("core show ")), "{core}");
    assert!(d
        .rx("help core show uptime")
        .ok()
        .starts_with("Usage: core show uptime [seconds]"));
    assert!(d
        .rx("core show help module load")
        .ok()
        .starts_with("Usage: module load <module name>"));
}

fn complete(c: &mut Client, line: &str) -> Vec<String> {
    c.send(&Request::Complete { line: line.into() }).unwrap();
    match c.read().unwrap() {
        Reply::Completions { items } => items,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn tab_completion_covers_commands_arguments_and_plugins() {
    let d = Daemon::with_modules(&[TEST]);
    let mut c = Client::connect(&d.socket()).unwrap();
    assert!(c.server_version.starts_with("Sirius "));
    assert_eq!(complete(&mut c, "core sh"), vec!["show"]);
    let shows = complete(&mut c, "core show ");
    for w in [
        "calls",
        "channels",
        "channeltypes",
        "help",
        "settings",
        "uptime",
        "version",
    ] {
        assert!(shows.contains(&w.to_string()), "{w} missing from {shows:?}");
    }
    assert_eq!(
        complete(&mut c, "core show channels c"),
        vec!["concise", "count"]
    );
    assert_eq!(
        complete(&mut c, "module unload "),
        vec!["fixture_chan_test.so"]
    );
    assert!(complete(&mut c, "module load fixture_p").contains(&"fixture_panic.so".to_string()));
    assert_eq!(complete(&mut c, "te"), vec!["test"]);
    assert_eq!(complete(&mut c, "test log d"), vec!["debug"]);
    let out = c.command("core show calls", &mut |_| {}).unwrap();
    assert!(out.ok);
    assert_eq!(out.text, "0 active calls\n0 calls processed");
}

#[test]
fn remote_consoles_receive_the_log() {
    let d = Daemon::with_modules(&[TEST]);
    let mut c = Client::connect(&d.socket()).unwrap();
    c.send(&Request::Subscribe).unwrap();
    let mut seen = Vec::new();
    // The subscription is processed before the next command on the same connection.
    let out = c
        .command("test log warn hello-remote-console", &mut |l| seen.push(l))
        .unwrap();
    assert!(out.ok);
    // The log line travels on its own task and may trail the reply: keep reading,
    // bounded by a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !seen.iter().any(|l| l.contains("hello-remote-console"))
        && std::time::Instant::now() < deadline
    {
        let _ = c
            .command("core show version", &mut |l| seen.push(l))
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        log_line(
            &seen.join("\n"),
            "WARNING",
            "fixture_chan_test",
            "hello-remote-console"
        )
        .is_some(),
        "{seen:?}"
    );
}

#[test]
fn uptime_settings_calls_and_verbose_layouts() {
    let d = Daemon::with_modules(&[]);
    let up = d.rx("core show uptime").ok();
    let mut lines = up.lines();
    assert!(lines.next().unwrap().starts_with("System uptime: "), "{up}");
    assert!(lines.next().unwrap().starts_with("Last reload: "), "{up}");
    let secs = d.rx("core show uptime seconds").ok();
    assert!(
        secs.lines().next().unwrap()["System uptime: ".len()..]
            .parse::<u64>()
            .is_ok(),
        "{secs}"
    );
    let settings = d.rx("core show settings").ok();
    assert!(
        settings.contains("PBX Core settings\n-----------------\n"),
        "{settings}"
    );
    // The daemon raised its soft open-files limit to the hard one at start.
    let hard = std::fs::read_to_string("/proc/self/limits")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4).map(str::to_string))
        .unwrap();
    assert!(
        settings.contains(&format!("  {:<30}{hard}\n", "Maximum open file handles:")),
        "{settings}"
    );
    assert!(
        settings.contains(&format!("  {:<30}0.000000\n", "Maximum load average:")),
        "{settings}"
    );
    assert!(
        settings.contains(&format!(
            "  {:<30}{}",
            "Configuration directory:",
            d.etc().display()
        )),
        "{settings}"
    );
    assert_eq!(
        d.rx("core show calls").ok().trim_end(),
        "0 active calls\n0 calls processed"
    );
    assert_eq!(
        d.rx("core set verbose 5").ok().trim_end(),
        "Verbosity was 3 and is now 5"
    );
    assert!(d
        .rx("core show settings")
        .ok()
        .contains(&format!("  {:<30}5", "Verbosity:")));
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_to_start() {
    let d = Daemon::with_modules(&[]);
    let mut second = d.spawn();
    let status = second.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        d.stderr()
            .contains("Sirius is already running (console socket"),
        "{}",
        d.stderr()
    );
    // The first one is unaffected.
    assert!(d.rx("core show version").ok().starts_with("Sirius "));
}

#[test]
fn core_stop_gracefully_waits_for_the_last_channel() {
    let mut d = Daemon::with_modules(&[TEST]);
    d.rx("test call 600").ok();
    let out = d.rx("core stop gracefully").ok();
    assert!(
        out.starts_with(
            "Refusing new calls; Sirius stops when the last channel hangs up (1 active)."
        ),
        "{out}"
    );
    // Still running, refusing new calls.
    assert_eq!(
        d.wait_exit(Duration::from_millis(600)),
        None,
        "must wait for the call"
    );
    assert!(d
        .rx("test call 601")
        .failed()
        .contains("call refused: NORMAL_CIRCUIT_CONGESTION (34)"));
    assert!(d
        .rx("core show settings")
        .ok()
        .contains(&format!("  {:<30}No", "Accepting new calls:")));
    d.rx("test hangup all").ok();
    assert_eq!(d.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn dialplan_show_and_atomic_reload() {
    let d = sirius_blackbox::Daemon::start(sirius_blackbox::Setup {
        modules_toml: "autoload = false\n",
        modules_dir: None,
        files: &[("extensions.toml", "[demo]\ninclude = [\"services\"]\n\n[services]\n\"600\" = [\"Answer()\", \"Echo()\", \"Hangup()\"]\n\"_6XX\" = [\"Busy()\"]\n")],
    });
    let show = d.rx("dialplan show services").ok();
    assert!(
        show.starts_with("[ Context 'services' created by 'pbx_config' ]\n"),
        "{show}"
    );
    assert!(
        show.contains(&format!(
            "  {:<17} {:<45} [extensions.toml:5]\n",
            "'600' =>", "1. Answer()"
        )),
        "{show}"
    );
    assert!(
        show.trim_end()
            .ends_with("-= 2 extensions (4 priorities) in 1 context. =-"),
        "{show}"
    );
    assert!(d.rx("dialplan show").ok().contains(&format!(
        "  {:<17} {:<45} [pbx_config]",
        "Include =>", "'services'"
    )));
    assert!(d
        .rx("dialplan show nowhere")
        .failed()
        .starts_with("There is no existence of 'nowhere' context"));
    // A broken file is refused with file and line; the old dialplan stays.
    std::fs::write(
        d.etc().join("extensions.toml"),
        "[demo]\n\"_1[2\" = [\"NoOp()\"]\n",
    )
    .unwrap();
    let out = d.rx("dialplan reload").failed();
    assert!(
        out.contains("extensions.toml:2: unterminated [ in pattern '_1[2'"),
        "{out}"
    );
    assert!(d.rx("dialplan show").ok().contains("'600' =>"));
    std::fs::write(
        d.etc().join("extensions.toml"),
        "[demo]\n\"700\" = [\"NoOp(hello)\"]\n",
    )
    .unwrap();
    assert_eq!(
        d.rx("dialplan reload").ok().trim_end(),
        "Dialplan reloaded."
    );
    let show = d.rx("dialplan show").ok();
    assert!(
        show.contains("1. NoOp(hello)") && !show.contains("'600'"),
        "{show}"
    );
}

/// Issue #16's first-hour defects: a start on a broken extensions.toml
/// runs an empty dialplan that `dialplan reload` replaces once the file is
/// mended (it said "No dialplan is loaded" until a restart); `module
/// reload` without a name reloads the dialplan too; an unknown application
/// or a Goto to a missing label is refused at reload, naming file, line,
/// extension and priority.
#[test]
fn a_broken_dialplan_at_start_is_mended_by_a_reload() {
    let d = sirius_blackbox::Daemon::start(sirius_blackbox::Setup {
        modules_toml: "autoload = false\n",
        modules_dir: None,
        files: &[("extensions.toml", "[demo]\n\"600\" = [\"Answer(\"]\n")],
    });
    let log = d.messages();
    assert!(
        log.contains("extensions.toml:2: missing ')' in 'Answer('; running with an empty dialplan"),
        "{log}"
    );
    assert!(d
        .rx("dialplan show")
        .ok()
        .contains("-= 0 extensions (0 priorities) in 0 contexts. =-"));
    let write = |text: &str| std::fs::write(d.etc().join("extensions.toml"), text).unwrap();
    write("[demo]\n\"600\" = [\"Answer()\", \"Playbak(hello)\"]\n");
    let out = d.rx("dialplan reload").failed();
    assert!(
        out.contains("extensions.toml:2: no application 'Playbak' (extension '600' of context 'demo', priority 2)"),
        "{out}"
    );
    write("[demo]\n\"600\" = [\"Answer()\", \"Goto(again)\"]\n");
    let out = d.rx("dialplan reload").failed();
    assert!(
        out.contains("extensions.toml:2: Goto to priority or label 'again', which extension '600' of context 'demo' does not have (extension '600' of context 'demo', priority 2)"),
        "{out}"
    );
    write("[demo]\n\"600\" = [\"Answer()\", \"again: Wait(1)\", \"Goto(again)\"]\n");
    assert_eq!(
        d.rx("dialplan reload").ok().trim_end(),
        "Dialplan reloaded."
    );
    assert!(d.rx("dialplan show demo").ok().contains("'600' =>"));
    // `module reload` alone reloads the dialplan as well.
    write("[demo]\n\"700\" = [\"NoOp(hello)\"]\n");
    assert_eq!(d.rx("module reload").ok().trim_end(), "Dialplan reloaded.");
    let show = d.rx("dialplan show").ok();
    assert!(
        show.contains("'700' =>") && !show.contains("'600'"),
        "{show}"
    );
    // A broken file: reported, the running dialplan stays.
    write("[demo]\n\"800\" = [\"Nope()\"]\n");
    let out = d.rx("module reload").failed();
    assert!(
        out.starts_with("The dialplan could not be reloaded: ")
            && out
                .contains("no application 'Nope' (extension '800' of context 'demo', priority 1)"),
        "{out}"
    );
    assert!(d.rx("dialplan show").ok().contains("'700' =>"));
}

/// logrotate's way: the log file is moved away, then `logger reload` (its
/// `postrotate`) or SIGHUP makes the daemon open a new `messages`, which
/// gets the lines from then on; the moved file keeps what came before.
#[test]
fn the_log_file_is_reopened_by_logger_reload_and_sighup() {
    let d = Daemon::with_modules(&[]);
    let log = d.root.path().join("log/messages");
    sirius_blackbox::wait_for_file(&log, "NOTICE", Duration::from_secs(10));
    let old = d.root.path().join("log/messages.1");
    std::fs::rename(&log, &old).unwrap();
    let out = d.rx("logger reload").ok();
    assert!(out.starts_with("Log files reopened in "), "{out}");
    sirius_blackbox::wait_for_file(
        &log,
        "Log files reopened (logger reload)",
        Duration::from_secs(10),
    );
    std::fs::rename(&log, &old).unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    sirius_blackbox::wait_for_file(
        &log,
        "Received SIGHUP: log files reopened",
        Duration::from_secs(10),
    );
    let moved = std::fs::read_to_string(&old).unwrap();
    assert!(
        moved.contains("Log files reopened (logger reload)"),
        "{moved}"
    );
    assert!(!moved.contains("Received SIGHUP"), "{moved}");
    assert!(
        d.rx("core show version").ok().starts_with("Sirius"),
        "still running"
    );
}

/// `logger rotate` moves each file to `<name>.0` (Asterisk's sequential
/// strategy) and opens a new one; `logger show channels` lists what
/// logger.toml configured; a broken logger.toml on `logger reload` is
/// reported with its line and the running channels stay.
#[test]
fn logger_rotate_show_channels_and_a_broken_reload() {
    let d = Daemon::start(Setup {
        modules_toml: "autoload = false\n",
        modules_dir: None,
        files: &[(
            "logger.toml",
            "[logfiles]\nconsole = \"notice,warning,error\"\nmessages = \"notice,warning,error,verbose\"\nfull = \"*\"\n",
        )],
    });
    let log = d.log_dir();
    sirius_blackbox::wait_for_file(&log.join("full"), "NOTICE", Duration::from_secs(10));
    let show = d.rx("logger show channels").ok();
    let rows: Vec<&str> = show.lines().collect();
    assert_eq!(
        rows[2..5],
        [
            "Channel                             Type     Formatter  Status    Configuration",
            "-------                             ----     ---------  ------    -------------",
            "                                    Console  default    Enabled    - NOTICE WARNING ERROR ",
        ],
        "{show}"
    );
    let full = format!("{:<35.35} File     default    Enabled    - DEBUG TRACE NOTICE WARNING ERROR VERBOSE SECURITY ", log.join("full").display().to_string());
    assert!(rows.contains(&full.as_str()), "{show}");

    let out = d.rx("logger rotate").ok();
    assert!(out.starts_with("Log files rotated"), "{out}");
    assert!(
        out.contains(&format!("moved to {}", log.join("messages.0").display())),
        "{out}"
    );
    sirius_blackbox::wait_for_file(
        &log.join("messages"),
        "Log files rotated (logger rotate)",
        Duration::from_secs(10),
    );
    let before = std::fs::read_to_string(log.join("messages.0")).unwrap();
    assert!(
        before.contains("NOTICE") && !before.contains("Log files rotated"),
        "{before}"
    );

    std::fs::write(
        d.etc().join("logger.toml"),
        "[logfiles]\nmessages = \"notice\"\nfull = \"notice,fax\"\n",
    )
    .unwrap();
    let out = d.rx("logger reload").failed();
    assert!(
        out.contains("logger.toml:3: level 'fax': Sirius writes no fax log lines; remove it; the other log channels are open"),
        "{out}"
    );
    assert!(
        d.rx("logger show channels").ok().contains(&full),
        "the old channels stay"
    );
}
