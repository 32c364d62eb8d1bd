//! sipp (Debian's sip-tester) as the black-box tests drive it: free ports,
//! scenario files, one-shot runs, the `Sipp` command builder, and sipp
//! processes in the background (bound before a test goes on).

use super::{wait_for_text, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A UDP port free on loopback right now (for a sipp instance).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A sipp scenario file from `tests/scenarios/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// sipp registering `user` with `password` through `file` (a scenario of
/// `tests/scenarios/` taking `-s`/`-au`/`-ap`), `calls` times one after the
/// other, from `local_port`.
pub fn sipp_register(
    d: &Daemon,
    file: &str,
    user: &str,
    password: &str,
    local_port: u16,
    calls: u32,
) -> (i32, String) {
    let target = format!("127.0.0.1:{}", d.sip_port());
    let (port, calls) = (local_port.to_string(), calls.to_string());
    sipp(&[
        &target,
        "-sf",
        scenario(file).to_str().unwrap(),
        "-s",
        user,
        "-au",
        user,
        "-ap",
        password,
        "-p",
        &port,
        "-m",
        &calls,
        "-l",
        "1",
    ])
}

/// One OPTIONS from sipp (`tests/scenarios/options.xml`) to the daemon, from
/// a port of its own; `extra` adds sipp arguments (`-t t1`, `-i 127.0.0.2`).
pub fn sipp_options(d: &Daemon, extra: &[&str]) -> (i32, String) {
    let (target, port) = (
        format!("127.0.0.1:{}", d.sip_port()),
        free_udp_port().to_string(),
    );
    let file = scenario("options.xml");
    let mut args = vec![
        target.as_str(),
        "-sf",
        file.to_str().unwrap(),
        "-m",
        "1",
        "-p",
        &port,
    ];
    args.extend_from_slice(extra);
    sipp(&args)
}

/// Runs sipp (from Debian's sip-tester) to completion, bounded in time; returns
/// its exit code (0: every call succeeded) and its output.
pub fn sipp(args: &[&str]) -> (i32, String) {
    sipp_within(args, Duration::from_secs(20))
}

/// [`sipp`] for a scenario that legitimately runs longer than 20 s (a
/// session timer's expiry); sipp itself stops it at `limit`.
pub fn sipp_within(args: &[&str], limit: Duration) -> (i32, String) {
    let limit = format!("{}s", limit.as_secs());
    let mut cmd = Command::new("sipp");
    cmd.args(args)
        .args([
            "-nostdin",
            "-timeout",
            &limit,
            "-timeout_error",
            "-max_recv_loops",
            "100",
        ])
        .stdin(Stdio::null());
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run sipp ({e}): install it with `apt-get install sip-tester` (scripts/test does)"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// One sipp command line, said by what a test is about (a scenario, whom it
/// calls, as whom, where it traces) rather than as a list of flags: the
/// black-box tests of subscriptions, shared lines and contacts each ran sipp
/// a handful of times with the same fifteen arguments in different orders.
#[derive(Debug, Clone)]
pub struct Sipp {
    args: Vec<String>,
}

impl Sipp {
    /// sipp playing `file` of `tests/scenarios/`, one call.
    pub fn scenario(file: &str) -> Sipp {
        let path = scenario(file).to_string_lossy().into_owned();
        Sipp {
            args: vec!["-sf".into(), path, "-m".into(), "1".into()],
        }
    }

    /// sipp playing one of its built-in scenarios (`uas`, `uac`), one call.
    pub fn builtin(name: &str) -> Sipp {
        Sipp {
            args: vec!["-sn".into(), name.into(), "-m".into(), "1".into()],
        }
    }

    /// Sends to the daemon's SIP port.
    pub fn to(mut self, d: &Daemon) -> Sipp {
        self.args.insert(0, format!("127.0.0.1:{}", d.sip_port()));
        self
    }

    /// The Request-URI user (`-s`).
    pub fn service(self, user: &str) -> Sipp {
        self.arg("-s").arg(user)
    }

    /// Digest credentials (`-au`/`-ap`).
    pub fn auth(self, user: &str, password: &str) -> Sipp {
        self.arg("-au").arg(user).arg("-ap").arg(password)
    }

    /// How many calls the scenario makes (`-m`), instead of one.
    pub fn calls(mut self, n: u32) -> Sipp {
        if let Some(i) = self.args.iter().position(|a| a == "-m") {
            self.args[i + 1] = n.to_string();
        }
        self
    }

    /// A scenario `[key]` (`-key name value`).
    pub fn key(self, name: &str, value: &str) -> Sipp {
        self.arg("-key").arg(name).arg(value)
    }

    /// Every message sent and received, written to `file`.
    pub fn trace(self, file: &Path) -> Sipp {
        self.arg("-trace_msg")
            .arg("-message_file")
            .arg(&file.to_string_lossy())
    }

    /// Unexpected messages written to `file` (sipp's `-trace_err`).
    pub fn errors(self, file: &Path) -> Sipp {
        self.arg("-trace_err")
            .arg("-error_file")
            .arg(&file.to_string_lossy())
    }

    /// Any other sipp argument.
    pub fn arg(mut self, a: &str) -> Sipp {
        self.args.push(a.to_string());
        self
    }

    /// Runs it to the end (bounded, see [`sipp`]) from a free local port.
    pub fn run(&self) -> (i32, String) {
        self.run_from(free_udp_port())
    }

    /// Runs it to the end from `port` (a port the daemon knows the phone by).
    pub fn run_from(&self, port: u16) -> (i32, String) {
        let port = port.to_string();
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend(["-p", &port]);
        sipp(&args)
    }

    /// Starts it in the background on `port`.
    pub fn start(&self, port: u16) -> SippProcess {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        SippProcess::start(port, &args)
    }
}

/// Waits (bounded by `within`) until the file at `path` (a sipp trace) holds
/// `text`; its contents then.
#[track_caller]
pub fn wait_for_file(path: &Path, text: &str, within: Duration) -> String {
    let what = path.display().to_string();
    wait_for_text(
        || std::fs::read_to_string(path).unwrap_or_default(),
        text,
        within,
        &what,
    )
}

/// A sipp process in the background (a callee, a registrar, an OPTIONS
/// responder), bound to `127.0.0.1:<port>`. Killed on drop.
pub struct SippProcess(Child);

impl SippProcess {
    /// Starts sipp with `args` on `port` and gives it a moment to bind.
    pub fn start(port: u16, args: &[&str]) -> SippProcess {
        let child = Command::new("sipp")
            .args(args)
            .args([
                "-p",
                &port.to_string(),
                "-i",
                "127.0.0.1",
                "-nostdin",
                "-timeout",
                "30s",
                "-timeout_error",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sipp (apt-get install sip-tester)");
        let mut process = SippProcess(child);
        process.wait_bound(port);
        process
    }

    /// Waits (bounded) until sipp has bound its port, which it does
    /// before it reads the scenario's first message. Read from the kernel's
    /// socket table rather than by trying to bind the port ourselves, which
    /// would hold it for an instant in which sipp's own bind could fail.
    fn wait_bound(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let local = format!("0100007F:{port:04X}");
        let bound = |table: &str| {
            std::fs::read_to_string(table)
                .unwrap_or_default()
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
        };
        // UDP, or TCP for a sipp started with `-t t1`.
        while !bound("/proc/net/udp") && !bound("/proc/net/tcp") {
            if let Ok(Some(_)) = self.0.try_wait() {
                return; // done already (or failed): `finish` says which
            }
            assert!(Instant::now() < deadline, "sipp never bound port {port}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (bounded) for the scenario to end; sipp's exit status.
    pub fn finish(mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.0.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for SippProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
