//! The interactive line editor shared by the local console and `sirius -r`:
//! history, tab completion through a callback, and log lines printed above the
//! prompt without garbling what is being typed.

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, ExternalPrinter, Helper};
use sirius_core::logging::Printer;
use std::path::PathBuf;

/// The prompt Asterisk users know.
pub const PROMPT: &str = "*CLI> ";

type CompleteFn = Box<dyn Fn(&str) -> Vec<String>>;

struct ConsoleHelper {
    complete: CompleteFn,
}

impl Completer for ConsoleHelper {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let items = (self.complete)(before)
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: format!("{w} "),
            })
            .collect();
        Ok((start, items))
    }
}
impl Hinter for ConsoleHelper {
    type Hint = String;
}
impl Highlighter for ConsoleHelper {}
impl Validator for ConsoleHelper {}
impl Helper for ConsoleHelper {}

/// What the loop should do after a line.
pub enum Next {
    /// Read another line.
    Continue,
    /// Leave the console.
    Quit,
}

/// History file in the user's home directory.
fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".sirius_history"))
}

/// A console session on the terminal.
pub struct LineEditor {
    editor: Editor<ConsoleHelper, DefaultHistory>,
}

impl LineEditor {
    /// Sets up the editor with `complete` as the completion source.
    pub fn new(complete: CompleteFn) -> rustyline::Result<LineEditor> {
        // List candidates like bash and Asterisk's console, rather than cycling through them.
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .build();
        let mut editor = Editor::with_config(config)?;
        editor.set_helper(Some(ConsoleHelper { complete }));
        if let Some(p) = history_path() {
            let _ = editor.load_history(&p);
        }
        Ok(LineEditor { editor })
    }

    /// A printer that writes above the prompt from any thread.
    pub fn printer(&mut self) -> Option<Printer> {
        let p = self.editor.create_external_printer().ok()?;
        let p = std::sync::Mutex::new(p);
        Some(Box::new(move |line: &str| {
            if let Ok(mut p) = p.lock() {
                let _ = p.print(format!("{line}\n"));
            }
        }))
    }

    /// Reads lines until `on_line` says quit or the user presses Ctrl-D / Ctrl-C.
    pub fn run(&mut self, mut on_line: impl FnMut(&str) -> Next) {
        loop {
            match self.editor.readline(PROMPT) {
                Ok(line) => {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    let _ = self.editor.add_history_entry(line);
                    if let Next::Quit = on_line(line) {
                        break;
                    }
                }
                Err(ReadlineError::Interrupted) | Err(ReadlineError::Eof) => break,
                Err(e) => {
                    eprintln!("console: {e}");
                    break;
                }
            }
        }
        if let Some(p) = history_path() {
            let _ = self.editor.save_history(&p);
        }
    }
}
