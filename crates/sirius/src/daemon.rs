//! The daemon: logging, core, modules, console socket, and an orderly stop.

use sirius_console::editor::{LineEditor, Next};
use sirius_console::{remote, CommandTable};
use sirius_core::config::{load_toml, ModulesConfig, Paths, Settings};
use sirius_core::io::IoContext;
use sirius_core::logging::LogHub;
use sirius_core::{version_line, Core, ShutdownMode};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How to run.
pub struct Options {
    /// Resolved directories.
    pub paths: Paths,
    /// `sirius.toml`.
    pub settings: Settings,
    /// Whether to run the interactive console on this terminal.
    pub console: bool,
    /// Console socket override (`-s`).
    pub socket: Option<PathBuf>,
    /// `-v` count, added to the configured verbosity.
    pub extra_verbose: u32,
    /// `-d` count, added to the configured debug level.
    pub extra_debug: u32,
}

/// Runs the daemon until `core stop` or a signal.
pub fn run(opts: Options) -> ExitCode {
    let g = &opts.settings.general;
    let log = LogHub::install(g.verbose + opts.extra_verbose, g.debug + opts.extra_debug);
    // logger.toml: a broken one is reported and the default channels used,
    // so the daemon still writes its record (as Asterisk does).
    let logger_conf = opts.paths.config_dir.join("logger.toml");
    let (logger, broken) = match sirius_core::logging::LoggerConfig::load(&logger_conf) {
        Ok(c) => (c, None),
        Err(e) => (sirius_core::logging::LoggerConfig::default(), Some(e)),
    };
    for e in log.configure(logger, &opts.paths.log_dir) {
        log::error!("{e}; that log channel is disabled");
    }
    if let Some(e) = broken {
        log::error!("{e}; using the default log channels");
    }
    let modules_file = opts.paths.config_dir.join("modules.toml");
    let modules_config = if modules_file.exists() {
        match load_toml::<ModulesConfig>(&modules_file) {
            Ok(m) => m,
            Err(e) => {
                log::error!("{e}");
                return ExitCode::from(1);
            }
        }
    } else {
        ModulesConfig::default()
    };
    let socket = opts.socket.clone().unwrap_or_else(|| opts.paths.socket());
    let io = match IoContext::new("console", 1) {
        Ok(io) => io,
        Err(e) => {
            log::error!("cannot start the console runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // SIGHUP's handler before anything slow: until it exists the signal's
    // default action ends the process (a `systemctl reload` right after the
    // start would stop the service, and systemd would not restart it).
    let hup = io
        .block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) });
    // Bind before loading anything: a second daemon on the same socket must not start.
    let listener = match io.block_on(async { remote::bind(&socket) }) {
        Ok(l) => l,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let core = match Core::new(
        opts.paths.clone(),
        opts.settings.clone(),
        modules_config,
        log.clone(),
    ) {
        Ok(c) => c,
        Err(e) => {
            log::error!("cannot start the core: {e}");
            return ExitCode::from(1);
        }
    };
    sirius_core::memory::start(&core);
    log::info!("{}", version_line());
    log::info!(
        "Configuration directory {}",
        core.paths.config_dir.display()
    );
    let maxfiles = core.settings.general.maxfiles;
    match sirius_core::limits::raise_open_files(maxfiles) {
        Ok(n) if n < 4096 => log::warn!(
            "Open files limit is {n}: at two sockets per call leg, that is about {} calls (set maxfiles in sirius.toml, or raise the hard limit)",
            n / 4
        ),
        Ok(n) => log::debug!("Open files limit: {n}"),
        Err(e) => log::warn!("Could not raise the open files limit to {maxfiles}: {e}"),
    }
    // The dialplan first: modules may start taking calls as soon as they load.
    let extensions = core.paths.config_dir.join("extensions.toml");
    match sirius_dialplan::DialplanEngine::load(extensions.clone()) {
        Ok(engine) => core.set_pbx_engine(Arc::new(engine)),
        // A broken file: an empty dialplan runs (every call is refused with
        // 404) so that `dialplan reload` loads the file once it is mended,
        // without a restart.
        Err(sirius_dialplan::DialplanError::Pool(e)) => {
            log::error!("{e}; running without a dialplan (every call is refused with 404)")
        }
        Err(e) => match sirius_dialplan::DialplanEngine::empty(extensions) {
            Ok(engine) => {
                log::error!(
                    "{e}; running with an empty dialplan (every call is refused with 404) until `dialplan reload` loads a mended file"
                );
                core.set_pbx_engine(Arc::new(engine));
            }
            Err(pool) => log::error!(
                "{e}; {pool}; running without a dialplan (every call is refused with 404)"
            ),
        },
    }
    let results = core.autoload();
    let loaded = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(sirius_core::loader::LoadOutcome::Loaded)))
        .count();
    log::info!(
        "{loaded} modules loaded; console socket {}",
        socket.display()
    );

    let table = Arc::new(CommandTable::with_core_commands());
    io.spawn(remote::serve(listener, core.clone(), table.clone()));
    // AMI (manager.toml), on the console's runtime; its `Command` action
    // runs lines through the console's table.
    let run: sirius_manager::CommandRunner = {
        let (core, table) = (Arc::downgrade(&core), table.clone());
        Arc::new(move |line: &str, json: bool| match core.upgrade() {
            Some(core) => {
                let out = if json {
                    table.execute_json(&core, line)
                } else {
                    table.execute(&core, line)
                };
                (out.ok, out.text)
            }
            None => (false, "Sirius is shutting down".into()),
        })
    };
    if let Err(e) = sirius_manager::start(&core, &io, run) {
        log::error!("{e}");
    }
    // Prometheus metrics (http.toml, prometheus.toml), on the same runtime.
    if let Err(e) = sirius_prometheus::start(&core, &io.handle()) {
        log::error!("{e}");
    }
    {
        let core = core.clone();
        io.spawn(async move {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => log::info!("Received SIGINT"),
                _ = term.recv() => log::info!("Received SIGTERM"),
            }
            core.request_shutdown(ShutdownMode::Now);
        });
    }
    if let Ok(mut hup) = hup {
        // SIGHUP: the log file reopened (logrotate's postrotate).
        let core = core.clone();
        io.spawn(async move {
            while hup.recv().await.is_some() {
                match core.log.reopen() {
                    Ok(()) => log::info!("Received SIGHUP: log files reopened"),
                    Err(e) => log::error!("Received SIGHUP: {e}"),
                }
            }
        });
    }
    println!("Sirius Ready.");

    if opts.console {
        let (core2, table2) = (core.clone(), table.clone());
        std::thread::Builder::new()
            .name("console".into())
            .spawn(move || local_console(core2, table2))
            .ok();
    }

    wait_for_shutdown(&core, &io);
    log::info!("Sirius is shutting down");
    core.unload_all();
    // The records of the calls just ended are written before we go.
    core.cdr.finish();
    core.sched.stop();
    let _ = std::fs::remove_file(&socket);
    io.shutdown(Duration::from_millis(500));
    log::logger().flush();
    ExitCode::SUCCESS
}

/// Blocks until a stop is requested; for a graceful stop, until no channel is left.
fn wait_for_shutdown(core: &Arc<Core>, io: &IoContext) {
    let mut rx = core.shutdown_requested();
    io.block_on(async {
        loop {
            let mode = *rx.borrow_and_update();
            match mode {
                Some(ShutdownMode::Now) => {
                    // A moment for in-flight console replies (the
                    // `core stop now` that asked should see its answer)
                    // before the runtime that writes them stops.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return;
                }
                Some(ShutdownMode::Gracefully) => {
                    if core.channels.active_channels() == 0 {
                        return;
                    }
                    // Re-check the channel count, or switch to Now if asked.
                    let _ = tokio::time::timeout(Duration::from_millis(250), rx.changed()).await;
                }
                None => {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    });
}

fn local_console(core: Arc<Core>, table: Arc<CommandTable>) {
    let complete = {
        let (core, table) = (core.clone(), table.clone());
        Box::new(move |line: &str| table.complete(&core, line))
    };
    let mut editor = match LineEditor::new(complete) {
        Ok(e) => e,
        Err(e) => {
            log::error!("console: {e}");
            return;
        }
    };
    core.log.set_console_printer(editor.printer());
    editor.run(|line| {
        let out = table.execute(&core, line);
        if !out.text.is_empty() {
            println!("{}", out.text);
        }
        if core.shutdown_requested().borrow().is_some() {
            Next::Quit
        } else {
            Next::Continue
        }
    });
    core.log.set_console_printer(None);
    // Leaving the console (Ctrl-D / Ctrl-C) stops the daemon, as `asterisk -c` does.
    core.request_shutdown(ShutdownMode::Now);
}
