//! The command table: dispatch, tab completion and `help`.
//!
//! Built-in commands are rows of [`Command`] (one file per group under
//! `commands/`); plugin commands come from the core's module list at call time,
//! so a `module load` or `unload` changes what the console knows immediately.

use sirius_core::Core;
use std::sync::Arc;

/// What a command returns.
pub type CommandResult = Result<String, CommandError>;

/// Why a command did not succeed. Either makes `sirius -rx` exit non-zero.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    /// Wrong arguments: the usage text is shown.
    #[error("usage")]
    Usage,
    /// The command ran and failed; the text says why.
    #[error("{0}")]
    Failed(String),
}

/// A `show` command's JSON form (`sirius -rx --json`): the same rows and
/// fields as its text ([`crate::view`]).
pub type JsonHandler = fn(&Arc<Core>, &Args<'_>) -> Result<serde_json::Value, CommandError>;

/// The words after the command's own words.
pub struct Args<'a> {
    /// Every word of the line.
    pub all: &'a [String],
    /// The words after the command's fixed words.
    pub rest: &'a [String],
}

/// Completes the argument at word `pos` of a line (all its words given).
pub type ArgCompleter = fn(&Arc<Core>, &[String], usize) -> Vec<String>;

/// One built-in command.
pub struct Command {
    /// The fixed words, space separated (`core show channels`).
    pub words: &'static str,
    /// One line for `help`.
    pub summary: &'static str,
    /// Usage text shown on [`CommandError::Usage`] and by `help <command>`.
    pub usage: &'static str,
    /// Runs the command.
    pub handler: fn(&Arc<Core>, &Args<'_>) -> CommandResult,
    /// Completes the argument at `pos` (index into all words); `None`: no arguments.
    pub complete: Option<ArgCompleter>,
}

/// Where a line was routed.
enum Target<'a> {
    Builtin(&'a Command),
    Plugin {
        module: String,
        words: String,
        usage: String,
    },
}

/// The result of running one line, as the console prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the command succeeded (`-rx` exit status).
    pub ok: bool,
    /// What to print.
    pub text: String,
}

/// Built-in commands plus whatever the loaded plugins export.
pub struct CommandTable {
    builtins: Vec<Command>,
    /// The JSON forms of the built-ins that have one, by their words.
    json: Vec<(&'static str, JsonHandler)>,
}

/// Splits a command line into words; double quotes group words (`"a b"`).
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut has = false;
    for ch in line.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                has = true;
            }
            c if c.is_whitespace() && !quoted => {
                if has {
                    words.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        words.push(cur);
    }
    words
}

fn fixed_words(words: &str) -> Vec<&str> {
    words.split_whitespace().collect()
}

fn matches_prefix(fixed: &[&str], line: &[String]) -> bool {
    fixed.len() <= line.len()
        && fixed
            .iter()
            .zip(line)
            .all(|(f, w)| f.eq_ignore_ascii_case(w))
}

impl CommandTable {
    /// A table of the given built-ins.
    pub fn new(builtins: Vec<Command>) -> CommandTable {
        CommandTable {
            builtins,
            json: crate::commands::json_handlers(),
        }
    }

    /// The table with every built-in command group.
    pub fn with_core_commands() -> CommandTable {
        let mut all = Vec::new();
        all.extend(crate::commands::core::commands());
        all.extend(crate::commands::channel::commands());
        all.extend(crate::commands::bridge::commands());
        all.extend(crate::commands::module::commands());
        all.extend(crate::commands::dialplan::commands());
        all.extend(crate::commands::mwi::commands());
        all.extend(crate::commands::cdr::commands());
        all.extend(crate::commands::logger::commands());
        all.extend(crate::commands::manager::commands());
        all.extend(crate::commands::help::commands());
        CommandTable::new(all)
    }

    /// Every command as (words, summary, usage), built-ins and plugins, sorted.
    pub fn entries(&self, core: &Core) -> Vec<(String, String, String)> {
        let mut v: Vec<(String, String, String)> = self
            .builtins
            .iter()
            .map(|c| {
                (
                    c.words.to_string(),
                    c.summary.to_string(),
                    c.usage.to_string(),
                )
            })
            .collect();
        for (_, spec) in core.plugin_commands() {
            v.push((
                spec.words.to_string(),
                spec.summary.to_string(),
                spec.usage.to_string(),
            ));
        }
        v.sort();
        v
    }

    /// Finds the command with the longest fixed-word prefix of `words`.
    fn route(&self, core: &Core, words: &[String]) -> Option<(usize, Target<'_>)> {
        let mut best: Option<(usize, Target<'_>)> = None;
        for c in &self.builtins {
            let fixed = fixed_words(c.words);
            if matches_prefix(&fixed, words) && best.as_ref().is_none_or(|(n, _)| fixed.len() > *n)
            {
                best = Some((fixed.len(), Target::Builtin(c)));
            }
        }
        for (module, spec) in core.plugin_commands() {
            let fixed = fixed_words(&spec.words);
            if matches_prefix(&fixed, words) && best.as_ref().is_none_or(|(n, _)| fixed.len() > *n)
            {
                best = Some((
                    fixed.len(),
                    Target::Plugin {
                        module,
                        words: spec.words.to_string(),
                        usage: spec.usage.to_string(),
                    },
                ));
            }
        }
        best
    }

    /// Runs one command line.
    pub fn execute(&self, core: &Arc<Core>, line: &str) -> Outcome {
        let words = split_words(line);
        if words.is_empty() {
            return Outcome {
                ok: true,
                text: String::new(),
            };
        }
        let failed = |text: String| Outcome { ok: false, text };
        match self.route(core, &words) {
            None => failed(format!(
                "No such command '{}' (type 'core show help {}' for other possible commands)",
                words.join(" "),
                words[0]
            )),
            Some((n, Target::Builtin(c))) => {
                let args = Args {
                    all: &words,
                    rest: &words[n..],
                };
                if c.complete.is_none() && !args.rest.is_empty() && !c.usage.is_empty() {
                    // A command without arguments given some: Asterisk shows the usage.
                    return failed(c.usage.to_string());
                }
                match (c.handler)(core, &args) {
                    Ok(text) => Outcome { ok: true, text },
                    Err(CommandError::Usage) => failed(c.usage.to_string()),
                    Err(CommandError::Failed(text)) => {
                        failed(format!("{text}\nCommand '{}' failed.", words.join(" ")))
                    }
                }
            }
            Some((
                _,
                Target::Plugin {
                    module,
                    words: fixed,
                    usage,
                },
            )) => match core.run_plugin_command(&module, &words) {
                Ok(text) => Outcome { ok: true, text },
                Err(e) if e.is_empty() => failed(usage),
                Err(e) => failed(format!("{e}\nCommand '{}' failed.", fixed)),
            },
        }
    }

    /// Runs one command line for a script (`sirius -rx --json`): a `show`
    /// command's rows and fields as JSON, pretty-printed. A command without
    /// a JSON form, or a failure, is `{"error": "…"}` with `ok` false.
    pub fn execute_json(&self, core: &Arc<Core>, line: &str) -> Outcome {
        let words = split_words(line);
        let failed = |text: String| Outcome {
            ok: false,
            text: serde_json::json!({ "error": text }).to_string(),
        };
        let ok = |v: serde_json::Value| Outcome {
            ok: true,
            text: serde_json::to_string_pretty(&v).unwrap_or_default(),
        };
        match self.route(core, &words) {
            None => failed(format!("No such command '{}'", words.join(" "))),
            Some((n, Target::Builtin(c))) => {
                let Some((_, handler)) = self.json.iter().find(|(w, _)| *w == c.words) else {
                    return failed(format!("'{}' has no JSON form", c.words));
                };
                let args = Args {
                    all: &words,
                    rest: &words[n..],
                };
                match handler(core, &args) {
                    Ok(v) => ok(v),
                    Err(CommandError::Usage) => failed(c.usage.to_string()),
                    Err(CommandError::Failed(text)) => failed(text),
                }
            }
            Some((
                _,
                Target::Plugin {
                    module,
                    words: fixed,
                    ..
                },
            )) => match core.run_plugin_command_json(&module, &words) {
                Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) => ok(v),
                    Err(e) => failed(format!("{module}: '{fixed}' gave no JSON: {e}")),
                },
                Err(e) => failed(e),
            },
        }
    }

    /// Completion candidates for the last word of `line` (the text before the cursor).
    pub fn complete(&self, core: &Arc<Core>, line: &str) -> Vec<String> {
        let mut words = split_words(line);
        if line.is_empty() || line.ends_with(char::is_whitespace) {
            words.push(String::new());
        }
        let pos = words.len() - 1;
        let partial = words[pos].to_ascii_lowercase();
        let typed = &words[..pos];
        let mut out: Vec<String> = Vec::new();
        let mut push = |w: &str| {
            if w.to_ascii_lowercase().starts_with(&partial) && !out.iter().any(|o| o == w) {
                out.push(w.to_string());
            }
        };
        // Next fixed word of every command whose fixed words extend what was typed.
        let mut all_fixed: Vec<String> =
            self.builtins.iter().map(|c| c.words.to_string()).collect();
        all_fixed.extend(
            core.plugin_commands()
                .into_iter()
                .map(|(_, s)| s.words.to_string()),
        );
        for f in &all_fixed {
            let fixed = fixed_words(f);
            if fixed.len() > pos && matches_prefix(&fixed[..pos], typed) {
                push(fixed[pos]);
            }
        }
        // Arguments of a command fully typed.
        if let Some((n, target)) = self.route(core, typed) {
            if pos >= n {
                let cands = match target {
                    Target::Builtin(c) => {
                        c.complete.map(|f| f(core, &words, pos)).unwrap_or_default()
                    }
                    Target::Plugin { module, .. } => {
                        core.complete_plugin_command(&module, &words, pos)
                    }
                };
                for c in cands {
                    push(&c);
                }
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_with_quotes() {
        assert_eq!(
            split_words("  core  show channels "),
            vec!["core", "show", "channels"]
        );
        assert_eq!(split_words("x \"a b\" c"), vec!["x", "a b", "c"]);
        assert_eq!(split_words("\"\""), vec![""]);
    }
}
