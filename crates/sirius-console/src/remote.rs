//! The remote console: `sirius -r` and `sirius -rx` talk to the daemon over a
//! Unix socket (`<rundir>/sirius.ctl`, Asterisk's `asterisk.ctl`).
//!
//! Wire format: one JSON object per line, both ways. JSON rather than a custom
//! framing because command output is arbitrary text and serde_json already
//! escapes it correctly; one line per message keeps it debuggable with `socat`.
//!
//! ```text
//! daemon → client   {"kind":"hello","version":"Sirius 0.1.0 …"}
//! client → daemon   {"op":"command","line":"module show"}
//! daemon → client   {"kind":"output","ok":true,"text":"Module …"}
//! client → daemon   {"op":"complete","line":"core sh"}
//! daemon → client   {"kind":"completions","items":["show"]}
//! client → daemon   {"op":"subscribe"}            (interactive -r: stream the log)
//! daemon → client   {"kind":"log","line":"[Nov 22 02:10:38] NOTICE[…]: …"}
//! ```

use crate::table::{CommandTable, Outcome};
use serde::{Deserialize, Serialize};
use sirius_core::{version_line, Core};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// Client requests.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Run a command line.
    Command {
        /// The line.
        line: String,
        /// A `show` command's rows and fields as JSON (`sirius -rx --json`).
        #[serde(default)]
        json: bool,
    },
    /// Complete the last word of a line.
    Complete {
        /// Text before the cursor.
        line: String,
    },
    /// Start receiving log lines.
    Subscribe,
}

/// Daemon messages.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Reply {
    /// Sent once on connect.
    Hello {
        /// `core show version`.
        version: String,
    },
    /// A command's result.
    Output {
        /// Success.
        ok: bool,
        /// Text to print.
        text: String,
    },
    /// Completion candidates.
    Completions {
        /// Candidates.
        items: Vec<String>,
    },
    /// A log line (subscribed clients only).
    Log {
        /// The formatted line.
        line: String,
    },
}

/// Why the console socket could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A daemon already answers on the socket.
    #[error("Sirius is already running (console socket {0} answers)")]
    AlreadyRunning(PathBuf),
    /// Socket setup failed.
    #[error("cannot listen on {path}: {source}")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Binds the console socket, replacing a stale one but never a live daemon's.
pub fn bind(path: &Path) -> Result<UnixListener, ServeError> {
    let listen_err = |source| ServeError::Listen {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(listen_err)?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ServeError::AlreadyRunning(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(listen_err)?;
    }
    UnixListener::bind(path).map_err(listen_err)
}

/// Serves remote consoles until the task is dropped.
pub async fn serve(listener: UnixListener, core: Arc<Core>, table: Arc<CommandTable>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(session(stream, core.clone(), table.clone()));
            }
            Err(e) => {
                log::warn!("console socket accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn session(stream: tokio::net::UnixStream, core: Arc<Core>, table: Arc<CommandTable>) {
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Reply>(256);
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let Ok(mut line) = serde_json::to_string(&reply) else {
                continue;
            };
            line.push('\n');
            if wr.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let _ = tx
        .send(Reply::Hello {
            version: version_line(),
        })
        .await;
    let mut lines = tokio::io::BufReader::new(rd).lines();
    let mut log_task: Option<tokio::task::JoinHandle<()>> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx
                    .send(Reply::Output {
                        ok: false,
                        text: format!("bad request: {e}"),
                    })
                    .await;
                continue;
            }
        };
        match req {
            Request::Command { line, json } => {
                let (c, t) = (core.clone(), table.clone());
                let out = tokio::task::spawn_blocking(move || match json {
                    true => t.execute_json(&c, &line),
                    false => t.execute(&c, &line),
                })
                .await
                .unwrap_or_else(|e| Outcome {
                    ok: false,
                    text: format!("command failed: {e}"),
                });
                let _ = tx
                    .send(Reply::Output {
                        ok: out.ok,
                        text: out.text,
                    })
                    .await;
            }
            Request::Complete { line } => {
                let (c, t) = (core.clone(), table.clone());
                let items = tokio::task::spawn_blocking(move || t.complete(&c, &line))
                    .await
                    .unwrap_or_default();
                let _ = tx.send(Reply::Completions { items }).await;
            }
            Request::Subscribe => {
                if log_task.is_none() {
                    let mut logs = core.log.subscribe();
                    let tx = tx.clone();
                    log_task = Some(tokio::spawn(async move {
                        loop {
                            match logs.recv().await {
                                Ok(line) => {
                                    if tx
                                        .send(Reply::Log {
                                            line: line.to_string(),
                                        })
                                        .await
                                        .is_err()
                                    {
                                        break;
                                    }
                                }
                                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                                    let line = format!(
                                        "(remote console fell behind: {n} log lines dropped)"
                                    );
                                    let _ = tx.send(Reply::Log { line }).await;
                                }
                                Err(_) => break,
                            }
                        }
                    }));
                }
            }
        }
    }
    if let Some(t) = log_task {
        t.abort();
    }
    drop(tx);
    let _ = writer.await;
}

/// Why the remote console could not talk to the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("Unable to connect to remote Sirius (does {path} exist?): {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The daemon went away.
    #[error("Disconnected from Sirius server")]
    Disconnected,
    /// The daemon sent something unexpected.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// A blocking remote-console connection.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The daemon's version line from its hello.
    pub server_version: String,
}

impl Client {
    /// Connects and reads the hello.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let s = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let writer = s
            .try_clone()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut c = Client {
            reader: BufReader::new(s),
            writer,
            server_version: String::new(),
        };
        match c.read()? {
            Reply::Hello { version } => c.server_version = version,
            other => {
                return Err(ClientError::Protocol(format!(
                    "expected hello, got {other:?}"
                )))
            }
        }
        Ok(c)
    }

    /// Sends a request.
    pub fn send(&mut self, req: &Request) -> Result<(), ClientError> {
        let mut line =
            serde_json::to_string(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|_| ClientError::Disconnected)
    }

    /// Reads one message.
    pub fn read(&mut self) -> Result<Reply, ClientError> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => Err(ClientError::Disconnected),
            Ok(_) => serde_json::from_str(&line).map_err(|e| ClientError::Protocol(e.to_string())),
        }
    }

    /// Runs one command and returns its outcome (log lines, if subscribed, go to `on_log`).
    pub fn command(
        &mut self,
        line: &str,
        on_log: &mut dyn FnMut(String),
    ) -> Result<Outcome, ClientError> {
        self.command_as(line, false, on_log)
    }

    /// As [`Client::command`]; with `json`, a `show` command's rows and
    /// fields come back as JSON text.
    pub fn command_as(
        &mut self,
        line: &str,
        json: bool,
        on_log: &mut dyn FnMut(String),
    ) -> Result<Outcome, ClientError> {
        self.send(&Request::Command {
            line: line.to_string(),
            json,
        })?;
        loop {
            match self.read()? {
                Reply::Output { ok, text } => return Ok(Outcome { ok, text }),
                Reply::Log { line } => on_log(line),
                other => return Err(ClientError::Protocol(format!("unexpected {other:?}"))),
            }
        }
    }

    /// A second handle on the same connection, for a reader thread.
    pub fn split(self) -> Result<(BufReader<UnixStream>, UnixStream), ClientError> {
        Ok((self.reader, self.writer))
    }
}
