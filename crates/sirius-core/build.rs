//! Records who built the binary, where and when, for `core show version`
//! (Asterisk's "built by root @ vm on a x86_64 running Linux on …").

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let user = std::env::var("USER")
        .ok()
        .or_else(|| output("id", &["-un"]))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| output("uname", &["-n"]))
        .unwrap_or_else(|| "unknown".into());
    let date =
        output("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]).unwrap_or_else(|| "unknown".into());
    let os = output("uname", &["-s"]).unwrap_or_else(|| std::env::consts::OS.into());
    let kernel = output("uname", &["-r"]).unwrap_or_else(|| "unknown".into());
    // Asterisk's build options are its menuselect choices; ours are the
    // cargo profile the binary was built with.
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=SIRIUS_BUILD_USER={user}");
    println!("cargo:rustc-env=SIRIUS_BUILD_HOST={host}");
    println!("cargo:rustc-env=SIRIUS_BUILD_DATE={date}");
    println!("cargo:rustc-env=SIRIUS_BUILD_OS={os}");
    println!("cargo:rustc-env=SIRIUS_BUILD_KERNEL={kernel}");
    println!("cargo:rustc-env=SIRIUS_BUILD_OPTIONS={profile}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
}
