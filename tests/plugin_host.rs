//! The plugin host is real: libraries are loaded at run time, checked, refused
//! with a readable reason when they do not fit, contained when they panic, and
//! loaded, unloaded and reloaded live — all seen from the console.

use sirius_blackbox::{build_dir, log_line, Daemon, Setup};
use std::time::Duration;

const TEST: &str = "fixture_chan_test";

#[test]
fn a_channel_plugin_registers_its_type_and_shows_in_module_show() {
    let d = Daemon::with_modules(&[TEST]);
    let show = d.rx("module show").ok();
    let lines: Vec<&str> = show.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{:<30} {:<40} {:<10} {:<11} {:>13}",
            "Module", "Description", "Use Count", "Status", "Support Level"
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "{:<30} {:<40} {:<10} {:<11} {:>13}",
            "fixture_chan_test.so", "Sirius test channel driver", 0, "Running", "extended"
        )
    );
    assert_eq!(lines[2], "1 module loaded");

    let types = d.rx("core show channeltypes").ok();
    assert!(types.starts_with("Type             Description"), "{types}");
    assert!(types.contains("\nTest             Test channel driver (fixture)            yes           no            yes           no"), "{types}");
    assert!(
        types
            .trim_end()
            .ends_with("----------\n1 channel drivers registered."),
        "{types}"
    );

    let version = d.rx("core show version").ok();
    assert!(version.starts_with("Sirius 0.1.0 built by "), "{version}");
    assert!(
        version.contains(&format!(" on a {} running ", std::env::consts::ARCH)),
        "{version}"
    );
}

#[test]
fn a_plugin_with_a_mismatched_interface_is_refused_and_the_daemon_keeps_serving() {
    // Listed first, so start-up meets it before the good plugin.
    let d = Daemon::with_modules(&["fixture_bad_abi", TEST]);
    let log = d.messages();
    assert!(
        log_line(&log, "ERROR", "sirius_core", "fixture_bad_abi: incompatible plugin interface: layout check failed: mismatched type (expected PluginModule, found BadModule)").is_some(),
        "{log}"
    );
    // The good plugin after it still loaded.
    assert!(d.rx("module show").ok().contains("fixture_chan_test.so"));

    let out = d.rx("module load fixture_bad_abi").failed();
    assert_eq!(
        out.trim_end(),
        "Unable to load module fixture_bad_abi.so: fixture_bad_abi: incompatible plugin interface: layout check failed: mismatched type (expected PluginModule, found BadModule)\nCommand 'module load fixture_bad_abi' failed."
    );
    assert!(!d.rx("module show").ok().contains("fixture_bad_abi"));
    assert!(d.rx("core show version").ok().starts_with("Sirius "));
}

#[test]
fn a_panic_in_load_or_in_a_command_is_contained() {
    let d = Daemon::with_modules(&[TEST]);
    let out = d.rx("module load fixture_panic").failed();
    assert!(
        out.starts_with("Unable to load module fixture_panic.so: fixture_panic: failed to load: fixture_panic: load panicked: fixture_panic: deliberate panic in load()"),
        "{out}"
    );
    // The plugin's own panic hook forwarded the location to the host log.
    let log = d.messages();
    assert!(
        log_line(
            &log,
            "ERROR",
            "fixture_panic",
            "panic at tests/fixtures/fixture_panic/src/lib.rs:"
        )
        .is_some(),
        "{log}"
    );

    let out = d.rx("test panic").failed();
    assert!(
        out.starts_with("command 'test panic' panicked: deliberate panic in fixture_chan_test"),
        "{out}"
    );
    // Still alive, plugin still loaded and working.
    assert!(d.rx("module show").ok().contains("fixture_chan_test.so"));
    assert!(d
        .rx("test show channels")
        .ok()
        .contains("0 test channel(s)"));
}

#[test]
fn unload_load_and_reload_work_live_and_module_show_follows() {
    let d = Daemon::with_modules(&[TEST]);
    assert_eq!(
        d.rx("module reload fixture_chan_test").ok().trim_end(),
        "Module 'fixture_chan_test.so' reloaded successfully.\ntest driver reloaded 1 time(s) since load"
    );
    assert!(d
        .rx("module reload fixture_chan_test.so")
        .ok()
        .contains("reloaded 2 time(s)"));

    assert_eq!(
        d.rx("module unload fixture_chan_test.so").ok().trim_end(),
        "Unloaded fixture_chan_test.so"
    );
    let show = d.rx("module show").ok();
    assert!(
        !show.contains("fixture_chan_test") && show.trim_end().ends_with("0 modules loaded"),
        "{show}"
    );
    assert!(d
        .rx("core show channeltypes")
        .ok()
        .contains("0 channel drivers registered."));
    // Its commands went with it.
    assert!(d
        .rx("test show channels")
        .failed()
        .starts_with("No such command 'test show channels'"));
    assert!(d
        .rx("module unload fixture_chan_test")
        .failed()
        .contains("not loaded"));

    assert_eq!(
        d.rx("module load fixture_chan_test").ok().trim_end(),
        "Loaded fixture_chan_test.so"
    );
    assert!(d.rx("module show").ok().contains("1 module loaded"));
    assert!(d.rx("core show channeltypes").ok().contains("\nTest "));
    // A fresh instance: its reload counter starts again.
    assert!(d
        .rx("module reload fixture_chan_test")
        .ok()
        .contains("reloaded 1 time(s)"));
    assert!(d
        .rx("module load fixture_chan_test")
        .failed()
        .contains("already loaded"));
}

#[test]
fn a_module_in_use_is_not_unloaded_without_force_and_channels_show() {
    let d = Daemon::with_modules(&[TEST]);
    let out = d.rx("test call 600").ok();
    assert!(
        out.starts_with("Test/600-00000001 created (no PBX: UNALLOCATED)"),
        "{out}"
    );
    let chans = d.rx("core show channels").ok();
    let expected_row = format!(
        "{:<64} {:<32} {:<7} {:<30}",
        "Test/600-00000001", "600@default:1", "Ring", "(None)"
    );
    assert!(chans.contains(&expected_row), "{chans}");
    assert!(
        chans
            .trim_end()
            .ends_with("1 active channel\n0 active calls\n0 calls processed"),
        "{chans}"
    );
    let concise = d.rx("core show channels concise").ok();
    assert!(
        concise.starts_with("Test/600-00000001!default!600!1!Ring!!!!!!3!"),
        "{concise}"
    );
    assert!(d.rx("module show").ok().contains(&format!(
        "{:<30} {:<40} {:<10}",
        "fixture_chan_test.so", "Sirius test channel driver", 1
    )));

    let out = d.rx("module unload fixture_chan_test").failed();
    assert!(
        out.contains("fixture_chan_test: in use (1 active), not unloaded"),
        "{out}"
    );
    assert!(d
        .rx("core show channels count")
        .ok()
        .starts_with("1 active channel\n"));

    assert_eq!(
        d.rx("module unload -f fixture_chan_test").ok().trim_end(),
        "Unloaded fixture_chan_test.so"
    );
    assert_eq!(
        d.rx("core show channels count").ok().trim_end(),
        "0 active channels\n0 active calls\n0 calls processed"
    );
    assert!(d
        .messages()
        .contains("Hungup 'Test/600-00000001' (NORMAL_CLEARING, 16)"));
}

#[test]
fn autoload_loads_category_prefixed_libraries_and_survives_a_non_plugin() {
    // A modules directory of our own: the real test driver under a chan_ name,
    // and a file that is not a shared library at all.
    let mods = tempfile::tempdir().unwrap();
    std::fs::copy(
        build_dir().join("libfixture_chan_test.so"),
        mods.path().join("libchan_test.so"),
    )
    .unwrap();
    std::fs::write(
        mods.path().join("libchan_garbage.so"),
        b"this is not an ELF file",
    )
    .unwrap();
    std::fs::write(mods.path().join("libnot_a_category.so"), b"never looked at").unwrap();
    let d = Daemon::start(Setup {
        modules_toml: "autoload = true\nnoload = []\n",
        modules_dir: Some(mods.path().to_path_buf()),
        files: &[],
    });
    let show = d.rx("module show").ok();
    assert!(
        show.contains("chan_test.so ") && show.contains("1 module loaded"),
        "{show}"
    );
    let log = d.messages();
    assert!(
        log_line(
            &log,
            "ERROR",
            "sirius_core",
            "chan_garbage: cannot open library:"
        )
        .is_some(),
        "{log}"
    );
    assert!(!log.contains("not_a_category"), "{log}");
    assert!(d
        .rx("module load chan_garbage")
        .failed()
        .contains("cannot open library"));
    assert!(d
        .rx("module load chan_nothere")
        .failed()
        .contains("chan_nothere: no such module in"));

    // noload is honoured.
    let d2 = Daemon::start(Setup {
        modules_toml: "autoload = true\nnoload = [\"chan_test.so\", \"chan_garbage\"]\n",
        modules_dir: Some(mods.path().to_path_buf()),
        files: &[],
    });
    assert!(d2.rx("module show").ok().contains("0 modules loaded"));
}

#[test]
fn core_set_debug_takes_effect_inside_plugins_live() {
    let d = Daemon::with_modules(&[TEST]);
    d.rx("test log debug before-debug-on").ok();
    d.rx("test log warn a-warning").ok();
    assert_eq!(
        d.rx("core set debug 1").ok().trim_end(),
        "Core debug was 0 and is now 1"
    );
    d.rx("test log debug after-debug-on").ok();
    d.rx("test log trace trace-at-debug-1").ok();
    assert_eq!(
        d.rx("core set debug off").ok().trim_end(),
        "Core debug was 1 and is now OFF"
    );
    d.rx("test log debug after-debug-off").ok();
    let log = d.messages();
    assert!(
        log_line(&log, "WARNING", "fixture_chan_test", "a-warning").is_some(),
        "{log}"
    );
    assert!(
        log_line(&log, "DEBUG", "fixture_chan_test", "after-debug-on").is_some(),
        "{log}"
    );
    for absent in ["before-debug-on", "trace-at-debug-1", "after-debug-off"] {
        assert!(
            !log.contains(absent),
            "{absent} should not be logged:\n{log}"
        );
    }
}

#[test]
fn a_timer_added_by_a_plugin_runs_on_the_core_scheduler() {
    let d = Daemon::with_modules(&[TEST]);
    d.rx("test call 700").ok();
    // The plugin schedules the answer 300 ms ahead through CoreServices::sched_add.
    assert!(d
        .rx("test answer Test/700-00000001 300")
        .ok()
        .contains("answer scheduled"));
    let before = d.rx("core show channels concise").ok();
    assert!(
        before.contains("!Ring!"),
        "not answered before the timer fires: {before}"
    );
    d.wait_for("core show channels concise", Duration::from_secs(5), |o| {
        o.contains("!Up!")
    });
    d.rx("test hangup all").ok();
    assert!(d
        .rx("core show channels count")
        .ok()
        .starts_with("0 active channels"));
}

#[test]
fn a_plugin_whose_monitor_thread_dies_is_unregistered_and_calls_to_it_fail_at_once() {
    let d = Daemon::with_modules(&[TEST]);
    d.rx("test call 600").ok();
    assert!(d
        .rx("core show channels count")
        .ok()
        .starts_with("1 active channel\n"));
    d.rx("test die monitor lost its socket").ok();
    d.wait_for_log(
        " sirius_core: fixture_chan_test: plugin failed: thread 'test-monitor' panicked: monitor lost its socket",
        Duration::from_secs(5),
    );
    let log = d.messages();
    assert!(
        log_line(
            &log,
            "ERROR",
            "sirius_core",
            "fixture_chan_test: channel type 'Test' unregistered"
        )
        .is_some(),
        "{log}"
    );
    assert!(d
        .rx("core show channeltypes")
        .ok()
        .contains("0 channel drivers registered."));
    let show = d.rx("module show").ok();
    let row = show
        .lines()
        .find(|l| l.starts_with("fixture_chan_test.so "))
        .unwrap_or_default();
    assert_eq!(row.split_whitespace().nth(6), Some("Failed"), "{show}");
    // Its channel went with it; a new call is refused at once, not timed out.
    assert!(d
        .rx("core show channels count")
        .ok()
        .starts_with("0 active channels\n"));
    assert!(d
        .messages()
        .contains("Hungup 'Test/600-00000001' (REQUESTED_CHAN_UNAVAIL, 44)"));
    let out = d.rx("channel originate Test/700 application Echo").failed();
    assert!(
        out.starts_with("Unable to originate a call to Test/700 (cause 44 - "),
        "{out}"
    );
    // Unloading and loading again starts a fresh, working instance.
    assert_eq!(
        d.rx("module unload fixture_chan_test").ok().trim_end(),
        "Unloaded fixture_chan_test.so"
    );
    assert_eq!(
        d.rx("module load fixture_chan_test").ok().trim_end(),
        "Loaded fixture_chan_test.so"
    );
    assert!(d.rx("core show channeltypes").ok().contains("\nTest "));
    assert!(d.rx("module show").ok().contains("Running"));
}

#[test]
fn a_device_state_pushed_by_a_plugin_is_logged_once_per_change() {
    let d = Daemon::with_modules(&[TEST]);
    d.rx("core set debug 1").ok();
    d.rx("test devstate Test/alice inuse").ok();
    d.rx("test devstate Test/alice inuse").ok();
    d.rx("test devstate Test/alice notinuse").ok();
    d.wait_for_log("device 'Test/alice' is NOT_INUSE", Duration::from_secs(5));
    let log = d.messages();
    assert_eq!(
        log.matches("device 'Test/alice' is INUSE").count(),
        1,
        "{log}"
    );
}
