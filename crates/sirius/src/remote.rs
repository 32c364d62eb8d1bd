//! `sirius -r` / `sirius -rx`: the remote console.

use sirius_console::editor::{LineEditor, Next};
use sirius_console::remote::{Client, Reply, Request};
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::mpsc;

/// Runs one command (`-rx`, as JSON with `--json`) or an interactive
/// session (`-r`).
pub fn run(socket: &Path, execute: Option<&str>, json: bool) -> ExitCode {
    let mut client = match Client::connect(socket) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(line) = execute {
        return match client.command_as(line, json, &mut |_| {}) {
            Ok(out) => {
                if !out.text.is_empty() {
                    // `sirius -rx "…" | head` closes the pipe early: that is
                    // the reader's choice, not an error worth a panic.
                    let mut stdout = std::io::stdout().lock();
                    let _ = writeln!(stdout, "{}", out.text);
                }
                if out.ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    interactive(client)
}

fn interactive(client: Client) -> ExitCode {
    println!("Connected to {}", client.server_version);
    let (reader, writer) = match client.split() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let writer = Rc::new(RefCell::new(writer));
    let (tx, rx) = mpsc::channel::<Reply>();
    let rx = Rc::new(rx);

    let send = {
        let writer = writer.clone();
        move |req: &Request| -> bool {
            let Ok(mut line) = serde_json_line(req) else {
                return false;
            };
            line.push('\n');
            writer.borrow_mut().write_all(line.as_bytes()).is_ok()
        }
    };
    let send = Rc::new(send);

    let complete = {
        let (send, rx) = (send.clone(), rx.clone());
        Box::new(move |line: &str| -> Vec<String> {
            if !send(&Request::Complete {
                line: line.to_string(),
            }) {
                return Vec::new();
            }
            match rx.recv() {
                Ok(Reply::Completions { items }) => items,
                _ => Vec::new(),
            }
        })
    };
    let mut editor = match LineEditor::new(complete) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("console: {e}");
            return ExitCode::from(2);
        }
    };
    let printer: sirius_core::logging::Printer = editor
        .printer()
        .unwrap_or_else(|| Box::new(|l: &str| println!("{l}")));
    // Reader thread: log lines go straight to the screen, replies to the main thread.
    std::thread::spawn(move || {
        let mut reader = reader;
        loop {
            let mut line = String::new();
            match std::io::BufRead::read_line(&mut reader, &mut line) {
                Ok(0) | Err(_) => {
                    printer("Disconnected from Sirius server");
                    let _ = tx.send(Reply::Output {
                        ok: false,
                        text: String::new(),
                    });
                    // Unblock a pending readline so the console ends with the daemon.
                    std::process::exit(0);
                }
                Ok(_) => match serde_json::from_str::<Reply>(&line) {
                    Ok(Reply::Log { line }) => printer(&line),
                    Ok(other) => {
                        if tx.send(other).is_err() {
                            return;
                        }
                    }
                    Err(_) => {}
                },
            }
        }
    });
    send(&Request::Subscribe);
    editor.run(|line| {
        if line == "exit" || line == "quit" {
            return Next::Quit;
        }
        if !send(&Request::Command {
            json: false,
            line: line.to_string(),
        }) {
            return Next::Quit;
        }
        match rx.recv() {
            Ok(Reply::Output { text, .. }) => {
                if !text.is_empty() {
                    println!("{text}");
                }
                Next::Continue
            }
            _ => Next::Quit,
        }
    });
    ExitCode::SUCCESS
}

fn serde_json_line(req: &Request) -> Result<String, serde_json::Error> {
    serde_json::to_string(req)
}
