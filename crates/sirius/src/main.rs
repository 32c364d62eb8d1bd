//! `sirius`: the PBX daemon, its console, and the remote console.
//!
//! ```text
//! sirius                 run on the sample config with a console (if on a terminal)
//! sirius -f              run in the foreground without a console
//! sirius -C /etc/sirius  use another configuration directory
//! sirius -r              attach to a running daemon
//! sirius -rx "cmd"       run one command on a running daemon and exit
//! sirius -rx "cmd" --json  a show command's rows and fields as JSON
//! sirius import-asterisk /etc/asterisk --out DIR
//!                        convert sip.conf and extensions.conf
//! ```

mod daemon;
mod import;
mod remote;

use clap::Parser;
use sirius_core::config::{load_toml, Paths, Settings};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Command-line options, Asterisk's letters where they exist.
#[derive(Parser, Debug)]
#[command(
    name = "sirius",
    version,
    about = "Sirius PBX",
    disable_help_flag = false
)]
struct Cli {
    /// Configuration directory (holds sirius.toml, modules.toml, sip.toml…).
    #[arg(short = 'C', value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Run in the foreground without a console.
    #[arg(short = 'f')]
    foreground: bool,
    /// Force a console even when standard input is not a terminal.
    #[arg(short = 'c')]
    console: bool,
    /// Increase verbosity (repeatable).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// Increase debug level (repeatable).
    #[arg(short = 'd', action = clap::ArgAction::Count)]
    debug: u8,
    /// Connect to a running daemon (remote console).
    #[arg(short = 'r')]
    remote: bool,
    /// With -r: run this command and exit (exit status 1 if it fails).
    #[arg(short = 'x', value_name = "COMMAND", requires = "remote")]
    execute: Option<String>,
    /// With -rx: print a `show` command's rows and fields as JSON.
    #[arg(long, requires = "execute")]
    json: bool,
    /// Console socket to use instead of the one in the configuration.
    #[arg(short = 's', value_name = "SOCKET")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Sub>,
}

/// What to do instead of running the PBX.
#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Converts an Asterisk configuration directory's sip.conf (and
    /// rtp.conf's port range) and extensions.conf into sip.toml and
    /// extensions.toml, and lists line by line what could not be converted.
    #[command(name = "import-asterisk")]
    ImportAsterisk {
        /// The Asterisk configuration directory (e.g. /etc/asterisk).
        dir: PathBuf,
        /// Where to write sip.toml and extensions.toml (files there are never overwritten).
        #[arg(long, default_value = "sirius-from-asterisk")]
        out: PathBuf,
    },
}

/// `sirius import-asterisk`: writes the files, prints what was left out.
fn import_asterisk(dir: &Path, out: &Path) -> ExitCode {
    match import::import(dir, out) {
        Ok((written, report)) => {
            for w in &written {
                println!("wrote {}", w.display());
            }
            let lines = report.lines();
            if lines.is_empty() {
                println!("Everything was converted.");
            } else {
                println!("Not converted ({}):", lines.len());
                for l in lines {
                    println!("  {l}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sirius import-asterisk: {e}");
            ExitCode::from(1)
        }
    }
}

/// Finds the configuration directory: `-C`, `$SIRIUS_CONFIG_DIR`, `./etc`, the
/// source tree's `etc/` next to the build output, then `/etc/sirius`.
fn config_dir(cli: &Cli, exe_dir: &Path) -> PathBuf {
    if let Some(d) = &cli.config_dir {
        return d.clone();
    }
    if let Some(d) = std::env::var_os("SIRIUS_CONFIG_DIR") {
        return PathBuf::from(d);
    }
    let candidates = [PathBuf::from("etc"), exe_dir.join("../../etc")];
    for c in candidates {
        if c.join("sirius.toml").is_file() {
            return c.canonicalize().unwrap_or(c);
        }
    }
    PathBuf::from("/etc/sirius")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::ImportAsterisk { dir, out }) = &cli.command {
        return import_asterisk(dir, out);
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let config_dir = config_dir(&cli, &exe_dir);
    let settings_file = config_dir.join("sirius.toml");
    let settings = if settings_file.exists() {
        match load_toml::<Settings>(&settings_file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sirius: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        Settings::default()
    };
    let paths = Paths::resolve(&config_dir, &settings, &exe_dir);
    if cli.remote {
        let socket = cli.socket.clone().unwrap_or_else(|| paths.socket());
        return remote::run(&socket, cli.execute.as_deref(), cli.json);
    }
    let console =
        cli.console || (!cli.foreground && std::io::IsTerminal::is_terminal(&std::io::stdin()));
    daemon::run(daemon::Options {
        paths,
        settings,
        console,
        socket: cli.socket,
        extra_verbose: cli.verbose.into(),
        extra_debug: cli.debug.into(),
    })
}
