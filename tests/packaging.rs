//! The Debian package and service (issue #15 item 5), checked with the real
//! tools: cargo-deb builds the package from this tree's metadata and
//! dpkg-deb reads it back (what it installs, its conffiles, the maintainer
//! scripts with systemd's); systemd-analyze verifies the unit; and the
//! packaged configuration starts the real daemon with chan_sip loaded.

use sirius_blackbox::build_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a tool, its stdout; panics with what it said when it fails.
#[track_caller]
fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({e}): scripts/test installs it"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn the_debian_package_holds_the_daemon_its_config_and_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("sirius.deb");
    // The binaries the test build made (dev profile, unstripped: the test
    // is about the package's shape, not its size).
    run(
        Command::new("cargo")
            .current_dir(root())
            .args([
                "deb",
                "-p",
                "sirius",
                "--no-build",
                "--profile",
                "dev",
                "--no-strip",
                "--fast",
            ])
            .arg("-o")
            .arg(&deb),
        "cargo deb",
    );
    let contents = run(Command::new("dpkg-deb").arg("-c").arg(&deb), "dpkg-deb -c");
    for path in [
        "./usr/bin/sirius",
        "./usr/lib/sirius/modules/libchan_sip.so",
        "./etc/sirius/sirius.toml",
        "./etc/sirius/sip.toml",
        "./etc/sirius/extensions.toml",
        "./etc/sirius/modules.toml",
        "./etc/sirius/logger.toml",
        "./etc/sirius/prometheus.toml",
        "./usr/lib/systemd/system/sirius.service",
        "./etc/logrotate.d/sirius",
        "./usr/share/doc/sirius/install.md",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(path)),
            "{path} not in:\n{contents}"
        );
    }
    let secrets = contents
        .lines()
        .find(|l| l.ends_with("./etc/sirius/sip.toml"))
        .unwrap();
    assert!(
        secrets.starts_with("-rw-r-----"),
        "peers' secrets: {secrets}"
    );
    let info = |part: &str| {
        run(
            Command::new("dpkg-deb").arg("-I").arg(&deb).arg(part),
            "dpkg-deb -I",
        )
    };
    let conffiles = info("conffiles");
    for f in [
        "/etc/sirius/sip.toml",
        "/etc/sirius/sirius.toml",
        "/etc/sirius/logger.toml",
        "/etc/logrotate.d/sirius",
    ] {
        assert!(
            conffiles.lines().any(|l| l == f),
            "{f} not a conffile:\n{conffiles}"
        );
    }
    let control = info("control");
    assert!(control.contains("Depends: adduser"), "{control}");
    let postinst = info("postinst");
    assert!(postinst.contains("adduser --system --group"), "{postinst}");
    assert!(
        postinst.contains("deb-systemd-helper") && postinst.contains("sirius.service"),
        "the service enabled at install:\n{postinst}"
    );
}

/// The unit as systemd reads it: `systemd-analyze verify` on a copy whose
/// ExecStart is this build's binary (the packaged path exists only once
/// installed) and whose user exists here.
#[test]
fn the_service_unit_verifies() {
    let unit = std::fs::read_to_string(root().join("packaging/sirius.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/sirius -f -C /etc/sirius\n"));
    assert!(unit.contains("Restart=on-failure\n") && unit.contains("User=sirius\n"));
    let here = unit
        .replace(
            "/usr/bin/sirius",
            &build_dir().join("sirius").display().to_string(),
        )
        .replace("User=sirius", "User=root")
        .replace("Group=sirius", "Group=root");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("sirius.service");
    std::fs::write(&copy, here).unwrap();
    run(
        Command::new("systemd-analyze").arg("verify").arg(&copy),
        "systemd-analyze verify",
    );
}

/// The configuration the package installs in /etc/sirius, with its
/// directories moved under a temporary root, starts the daemon: chan_sip
/// loads from the modules directory, the console socket is where the
/// service's RuntimeDirectory is, the log in its LogsDirectory.
#[test]
fn the_packaged_configuration_starts_the_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc/sirius");
    std::fs::create_dir_all(&etc).unwrap();
    let moved = |p: &str| {
        tmp.path()
            .join(p.trim_start_matches('/'))
            .display()
            .to_string()
    };
    let sirius = std::fs::read_to_string(root().join("packaging/sirius.toml"))
        .unwrap()
        .replace(
            "\"/usr/lib/sirius/modules\"",
            &format!("{:?}", build_dir().display().to_string()),
        )
        .replace("\"/run/sirius\"", &format!("{:?}", moved("/run/sirius")))
        .replace(
            "\"/var/log/sirius\"",
            &format!("{:?}", moved("/var/log/sirius")),
        )
        .replace(
            "\"/var/lib/sirius\"",
            &format!("{:?}", moved("/var/lib/sirius")),
        );
    assert_eq!(
        sirius.matches(tmp.path().to_str().unwrap()).count(),
        3,
        "{sirius}"
    );
    std::fs::write(etc.join("sirius.toml"), sirius).unwrap();
    for f in ["modules.toml", "extensions.toml", "logger.toml"] {
        std::fs::copy(root().join("etc").join(f), etc.join(f)).unwrap();
    }
    // Its own port: the sample's 5060 may be taken on this machine.
    let sample = std::fs::read_to_string(root().join("etc/sip.toml")).unwrap();
    let bind = "udpbindaddr = \"127.0.0.1:5060\"";
    assert!(
        sample.contains(bind),
        "the sample's address moved: {sample}"
    );
    let sip = sample.replace(bind, "udpbindaddr = \"127.0.0.1:0\"");
    std::fs::write(etc.join("sip.toml"), sip).unwrap();
    let bin = build_dir().join("sirius");
    /// Killed however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let daemon = Running(
        Command::new(&bin)
            .args(["-f", "-C"])
            .arg(&etc)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = tmp.path().join("run/sirius/sirius.ctl");
    let rx = |cmd: &str| {
        let out = Command::new(&bin)
            .arg("-C")
            .arg(&etc)
            .args(["-rx", cmd])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let modules = loop {
        let (ok, out) = rx("module show like chan_sip");
        if ok && out.contains("chan_sip") {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "no console at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        modules.contains("chan_sip.so") && modules.contains("Running"),
        "{modules}"
    );
    assert!(socket.exists());
    sirius_blackbox::wait_for_file(
        &tmp.path().join("var/log/sirius/messages"),
        "Loaded chan_sip.so",
        Duration::from_secs(10),
    );
    let _ = rx("core stop now");
    drop(daemon);
}
