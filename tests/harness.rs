//! Test harness: starts the real `sirius` binary on a throw-away configuration
//! and talks to it the way an administrator does (`sirius -rx`).
//!
//! The binaries and plugin libraries are the ones `cargo build --workspace`
//! put next to the test executable's directory (`target/<profile>/`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "harness/sipp.rs"]
mod sipp;
pub use sipp::*;

#[path = "harness/json_view.rs"]
mod json_view;
pub use json_view::*;

/// The first line of `log` in Asterisk's shape `[date] LEVEL[tid]: file:line
/// module: message…` whose level and module are these and whose message
/// starts with `message`.
pub fn log_line<'a>(log: &'a str, level: &str, module: &str, message: &str) -> Option<&'a str> {
    log.lines().find(|l| {
        let Some((_, rest)) = l.split_once(&format!("] {level}[")) else {
            return false;
        };
        let Some((tid, rest)) = rest.split_once("]: ") else {
            return false;
        };
        let Some((place, rest)) = rest.split_once(' ') else {
            return false;
        };
        tid.parse::<u32>().is_ok()
            && place
                .rsplit_once(':')
                .is_some_and(|(f, n)| f.ends_with(".rs") && n.parse::<u32>().is_ok())
            && rest
                .strip_prefix(module)
                .and_then(|r| r.strip_prefix(": "))
                .is_some_and(|m| m.starts_with(message))
    })
}

/// `target/<profile>`, where `sirius` and the plugin `.so` files are.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let sirius = dir.join("sirius");
    assert!(
        sirius.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`), \
         or run the README's test command",
        sirius.display()
    );
    dir
}

/// The `sirius` executable.
pub fn sirius_bin() -> PathBuf {
    build_dir().join("sirius")
}

/// Output of one `sirius -rx`.
#[derive(Debug)]
pub struct Rx {
    /// Exit status code.
    pub code: i32,
    /// Standard output.
    pub out: String,
    /// Standard error.
    pub err: String,
}

impl Rx {
    /// Asserts success and returns the output.
    #[track_caller]
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self.out
    }

    /// Asserts failure (exit 1) and returns the output.
    #[track_caller]
    pub fn failed(self) -> String {
        assert_eq!(self.code, 1, "command should have failed: {self:?}");
        self.out
    }
}

/// A running daemon on its own temporary directories. Killed on drop.
pub struct Daemon {
    child: Option<Child>,
    /// The temporary root (config in `etc/`, run/log/lib beside it).
    pub root: tempfile::TempDir,
}

/// What to put in the daemon's configuration directory.
pub struct Setup<'a> {
    /// `modules.toml` contents.
    pub modules_toml: &'a str,
    /// Modules directory; `None` for the build directory.
    pub modules_dir: Option<PathBuf>,
    /// Extra files for the configuration directory.
    pub files: &'a [(&'a str, &'a str)],
}

impl<'a> Setup<'a> {
    /// Only chan_sip, from the build directory, on these configuration files.
    pub fn chan_sip(files: &'a [(&'a str, &'a str)]) -> Setup<'a> {
        Setup {
            modules_toml: "autoload = false\nload = [\"chan_sip\"]\n",
            modules_dir: None,
            files,
        }
    }
}

impl Daemon {
    /// Starts a daemon loading the listed modules from the build directory.
    pub fn with_modules(load: &[&str]) -> Daemon {
        let list: Vec<String> = load.iter().map(|m| format!("{m:?}")).collect();
        let toml = format!("autoload = false\nload = [{}]\n", list.join(", "));
        Daemon::start(Setup {
            modules_toml: &toml,
            modules_dir: None,
            files: &[],
        })
    }

    /// A daemon that loads only chan_sip, on these configuration files
    /// (`sip.toml`, `extensions.toml`…).
    pub fn with_chan_sip(files: &[(&str, &str)]) -> Daemon {
        Daemon::start(Setup::chan_sip(files))
    }

    /// Starts a daemon with the given setup and waits until its console answers.
    pub fn start(setup: Setup<'_>) -> Daemon {
        Daemon::start_with(setup, "")
    }

    /// As [`Daemon::start`], with extra `[general]` lines in `sirius.toml`
    /// (`maxcalls = 1`…).
    pub fn start_with(setup: Setup<'_>, general: &str) -> Daemon {
        let root = tempfile::tempdir().expect("tempdir");
        let etc = root.path().join("etc");
        std::fs::create_dir_all(&etc).expect("etc");
        let modules = setup.modules_dir.unwrap_or_else(build_dir);
        let sirius_toml = format!(
            "[general]\nverbose = 3\n{general}\n\n[directories]\nmodules = {:?}\nrun = {:?}\nlog = {:?}\ndata = {:?}\n",
            modules.display().to_string(),
            root.path().join("run").display().to_string(),
            root.path().join("log").display().to_string(),
            root.path().join("lib").display().to_string(),
        );
        std::fs::write(etc.join("sirius.toml"), sirius_toml).expect("sirius.toml");
        std::fs::write(etc.join("modules.toml"), setup.modules_toml).expect("modules.toml");
        for (name, text) in setup.files {
            std::fs::write(etc.join(name), text).expect("config file");
        }
        let mut d = Daemon { child: None, root };
        d.child = Some(d.spawn());
        d.wait_ready();
        d
    }

    /// Stops the daemon (`core stop now`) and starts it again on the same
    /// directories: what a restart of the service does.
    pub fn restart(&mut self) {
        let _ = self.rx("core stop now");
        assert!(
            self.wait_exit(Duration::from_secs(10)).is_some(),
            "daemon did not stop"
        );
        self.child = Some(self.spawn());
        self.wait_ready();
    }

    /// The UDP port chan_sip bound (configure `udpbindaddr = "127.0.0.1:0"`).
    pub fn sip_port(&self) -> u16 {
        let settings = self.rx("sip show settings").ok();
        let line = settings
            .lines()
            .find(|l| l.contains("UDP Bindaddress:"))
            .expect("sip show settings has the bind address");
        line.rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .expect("a port")
    }

    /// Spawns another daemon process on this daemon's configuration.
    pub fn spawn(&self) -> Child {
        Command::new(sirius_bin())
            .arg("-f")
            .arg("-C")
            .arg(self.etc())
            .stdin(Stdio::null())
            .stdout(Stdio::from(self.output_file("stdout")))
            .stderr(Stdio::from(self.output_file("stderr")))
            .spawn()
            .expect("spawn sirius")
    }

    fn output_file(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join(name))
            .expect("output file")
    }

    /// `GET /metrics` from the daemon's Prometheus endpoint (http.toml with
    /// `enabled = true`, `bindport = 0`: the address is read from the log);
    /// returns the status line's code and the body.
    pub fn scrape(&self, auth: Option<&str>) -> (u16, String) {
        use std::io::{Read, Write};
        let log = self.wait_for_log("Prometheus metrics at http://", Duration::from_secs(10));
        let url = log
            .lines()
            .find_map(|l| l.split("Prometheus metrics at http://").nth(1))
            .expect("the metrics address");
        let (addr, path) = url.split_once('/').expect("host/path");
        let mut s = std::net::TcpStream::connect(addr).expect("connect to /metrics");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        write!(s, "GET /{path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let code = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (code, body.to_string())
    }

    /// The log directory (`messages`, `security`, `cdr-csv/`).
    pub fn log_dir(&self) -> PathBuf {
        self.root.path().join("log")
    }

    /// The configuration directory.
    pub fn etc(&self) -> PathBuf {
        self.root.path().join("etc")
    }

    /// The console socket.
    pub fn socket(&self) -> PathBuf {
        self.root.path().join("run").join("sirius.ctl")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "sirius exited during start-up ({status}):\n{}",
                    self.stderr()
                );
            }
            if self.socket().exists() && self.rx("core show version").code == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sirius did not answer within 20 s:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `sirius -rx <command>` against this daemon.
    pub fn rx(&self, command: &str) -> Rx {
        let out = Command::new(sirius_bin())
            .arg("-C")
            .arg(self.etc())
            .arg("-rx")
            .arg(command)
            .stdin(Stdio::null())
            .output()
            .expect("run sirius -rx");
        Rx {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The daemon's standard error (its console log when run with `-f`).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.root.path().join("stderr")).unwrap_or_default()
    }

    /// The `messages` log file, once what the daemon logged until now has
    /// reached it (its logger writes the file every few milliseconds).
    pub fn messages(&self) -> String {
        self.log_file("messages")
    }

    /// A log file by name (`messages`, `security`), after the logger's
    /// writer thread (every 5 ms) had time to write what is pending.
    pub fn log_file(&self, name: &str) -> String {
        std::thread::sleep(Duration::from_millis(60));
        std::fs::read_to_string(self.root.path().join("log").join(name)).unwrap_or_default()
    }

    /// The daemon's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("the daemon is running")
    }

    /// The daemon's resident memory now, KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .expect("VmRSS")
    }

    /// Waits (bounded) for the daemon process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return s.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until the `messages` log contains `text`; returns the log.
    #[track_caller]
    pub fn wait_for_log(&self, text: &str, within: Duration) -> String {
        wait_for_text(|| self.messages(), text, within, "the messages log")
    }

    /// Polls `cond` on a command's output until it holds (bounded by `within`).
    pub fn wait_for(&self, command: &str, within: Duration, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let out = self.rx(command).out;
            if cond(&out) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on '{command}'; last output:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Kamailio (Debian's `kamailio`) as a registrar with digest auth (qop=auth,
/// nonce counts checked) on `127.0.0.1:<port>`, UDP and TCP, in the
/// foreground; it logs every accepted REGISTER to its stderr. Killed on drop
/// (with its worker processes: it runs in its own process group).
pub struct Kamailio {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on (UDP and TCP).
    pub port: u16,
}

impl Kamailio {
    /// Starts Kamailio accepting `user` with `password`; waits until it answers.
    pub fn start(user: &str, password: &str) -> Kamailio {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_udp_port();
        let cfg = format!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "auth.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
modparam("auth", "nonce_count", 1)
modparam("usrloc", "db_mode", 0)
request_route {{
    if (is_method("REGISTER")) {{
        if ($au != "{user}" || !pv_www_authenticate("$td", "{password}", "0")) {{
            www_challenge("$td", "1");
            exit;
        }}
        xlog("L_NOTICE", "REGISTER accepted user=$au proto=$proto expires=$hdr(Expires) contact=$ct\n");
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    sl_send_reply("404", "Not Here");
}}
"#
        );
        let path = dir.path().join("kamailio.cfg");
        std::fs::write(&path, cfg).expect("kamailio.cfg");
        let log = std::fs::File::create(dir.path().join("stderr")).expect("log");
        let d = dir.path().display().to_string();
        let child = Command::new("kamailio")
            .args([
                "-f",
                path.to_str().unwrap(),
                "-DD",
                "-E",
                "-m",
                "32",
                "-M",
                "8",
            ])
            .args(["-w", &d, "-Y", &d, "-P", &format!("{d}/kamailio.pid")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("kamailio (apt-get install kamailio; scripts/test does)");
        let k = Kamailio { child, dir, port };
        k.wait_for_log("probe_max_receive_buffer", Duration::from_secs(10));
        // Its listener processes come up right after the sockets are probed.
        std::thread::sleep(Duration::from_millis(300));
        k
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Waits (bounded) until its log contains `text`; returns the log.
    #[track_caller]
    pub fn wait_for_log(&self, text: &str, within: Duration) -> String {
        wait_for_text(|| self.log(), text, within, "kamailio's log")
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// Polls `read` until its text contains `text` (bounded by `within`).
#[track_caller]
pub(crate) fn wait_for_text(
    read: impl Fn() -> String,
    text: &str,
    within: Duration,
    what: &str,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let now = read();
        if now.contains(text) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for '{text}' in {what}:\n{now}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The port of the first `m=<media>` line (`audio`, `video`) after `marker`
/// in a sipp message trace, once it is there.
pub fn sdp_port_after(trace: &Path, marker: &str, media: &str) -> Option<u16> {
    let text = std::fs::read_to_string(trace).ok()?;
    let at = text.find(marker)?;
    let line = format!("m={media} ");
    let m = text[at..].find(&line)?;
    text[at + m + line.len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `m=audio` port of the first SDP after `marker` in a sipp message
/// trace, waited for (10 s at most).
pub fn wait_port(trace: &Path, marker: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = sdp_port_after(trace, marker, "audio") {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "no SDP after '{marker}' in {}",
            trace.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A phone's media sockets: RTP on an even port, RTCP on the next.
pub fn media_pair() -> (std::net::UdpSocket, std::net::UdpSocket) {
    loop {
        let rtp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port % 2 == 1 {
            continue;
        }
        if let Ok(rtcp) = std::net::UdpSocket::bind(("127.0.0.1", port + 1)) {
            return (rtp, rtcp);
        }
    }
}

/// An RTP-shaped packet with sequence number `seq`.
pub fn rtp(seq: u16) -> Vec<u8> {
    let mut pkt = vec![0x80, 0x00];
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(&[0u8; 168]);
    pkt
}

/// Sends from `from` to the PBX's port `to` until `sink` receives one
/// packet (the relay is ready), within 5 s; then `n` more, each of which
/// must arrive. The count that arrived.
pub fn first_then(from: &std::net::UdpSocket, to: u16, sink: &std::net::UdpSocket, n: u16) -> u16 {
    sink.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seq = 1000;
    loop {
        from.send_to(&rtp(seq), ("127.0.0.1", to)).unwrap();
        if sink.recv_from(&mut buf).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing relayed to {:?}",
            sink.local_addr()
        );
        seq += 1;
    }
    sink.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut got = 0;
    for seq in 0..n {
        from.send_to(&rtp(seq), ("127.0.0.1", to)).unwrap();
        // Drain late copies of the readiness probes first.
        while let Ok((len, _)) = sink.recv_from(&mut buf) {
            if len >= 4 && buf[2..4] == seq.to_be_bytes() {
                got += 1;
                break;
            }
        }
    }
    got
}

/// Why baresip cannot run here, if it cannot. baresip 1.0 (Debian's) takes
/// its own address from the interface of the default route and skips the
/// loopback otherwise: on a machine whose only interface is the loopback
/// and that has no default route, it registers nothing ("Protocol not
/// supported") whatever `sip_listen` says. The tests that drive it say so
/// and stop there rather than fail the suite; the same flows are covered
/// with sipp, which binds where it is told. (`ip route add default dev lo`,
/// as root, is enough for baresip.)
pub fn baresip_cannot_run() -> Option<String> {
    // An IPv4 default route (the tests talk over 127.0.0.1): destination
    // 00000000 in the kernel's table.
    let default_route = std::fs::read_to_string("/proc/net/route").is_ok_and(|t| {
        t.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some("00000000"))
    });
    (!default_route).then(|| {
        "baresip 1.0 needs a default route to pick its own address, and this machine has none \
         (loopback only): its test is not run here"
            .to_string()
    })
}

/// A headless baresip's configuration directory: a sine tone as microphone,
/// a virtual bridge device as speaker (no sound card here), G.711 only, its
/// SIP and RTP on free loopback ports, and one account `user` with
/// `password` registering to the PBX at `pbx_port`.
pub fn baresip_config(user: &str, password: &str, pbx_port: u16) -> tempfile::TempDir {
    let cfg = tempfile::tempdir().unwrap();
    let (sip, rtp) = (free_udp_port(), free_udp_port());
    let config = format!(
        "sip_listen 127.0.0.1:{sip}\nsip_transports udp\n\
         audio_player aubridge,speaker\naudio_source ausine,440\naudio_alert aubridge,speaker\n\
         ausrc_srate 48000\nauplay_srate 48000\nausrc_channels 2\nauplay_channels 2\n\
         rtp_ports {rtp}-{}\n\
         module_path /usr/lib/baresip/modules\nmodule stdio.so\nmodule g711.so\n\
         module ausine.so\nmodule aubridge.so\nmodule_app account.so\nmodule_app menu.so\n",
        rtp + 9
    );
    std::fs::write(cfg.path().join("config"), config).unwrap();
    let account =
        format!("<sip:{user}@127.0.0.1:{pbx_port};transport=udp>;auth_pass={password};regint=60\n");
    std::fs::write(cfg.path().join("accounts"), account).unwrap();
    std::fs::write(cfg.path().join("contacts"), "").unwrap();
    cfg
}
