//! `extensions.toml`: Asterisk's extensions.conf in TOML.
//!
//! ```toml
//! [globals]
//! TRUNK = "SIP/trunk"
//!
//! [demo]
//! include = ["internal"]
//! "600" = ["Answer()", "Echo()", "Hangup()"]
//! "_6XX" = ["Dial(SIP/${EXTEN},20)", "Hangup()"]
//! "700" = ["Answer()", "again: Wait(1)", "Goto(again)"]
//! ```
//!
//! Each top-level table is a context (`globals` holds global variables), each
//! key an extension and its value the steps, numbered 1, 2, 3… as Asterisk's
//! `n` priorities are. A step may carry a label (`again: Wait(1)`). `include`
//! lists contexts searched after this one, in order. A context's `hints`
//! table maps extensions to the devices whose state they show (Asterisk's
//! `exten => 6001,hint,SIP/alice`):
//!
//! ```toml
//! [demo.hints]
//! "6001" = "SIP/alice"
//! "6000" = "SIP/alice&SIP/bob"
//! ```

use crate::pattern::Pattern;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use toml::Spanned;

/// One priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based priority.
    pub priority: u32,
    /// Label, if any.
    pub label: Option<String>,
    /// Application name (`Dial`).
    pub app: String,
    /// Its argument string, unexpanded.
    pub data: String,
    /// Line in the file.
    pub line: usize,
}

/// An extension and its steps.
#[derive(Debug, Clone)]
pub struct Extension {
    /// Name or pattern.
    pub pattern: Pattern,
    /// Priorities in order.
    pub steps: Vec<Step>,
}

/// A context.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Name.
    pub name: String,
    /// Included contexts with the line they are named on.
    pub includes: Vec<(String, usize)>,
    /// Extensions in the order they are tried (exact first, then by specificity).
    pub extensions: Vec<Extension>,
    /// Hints: extension, devices (`Tech/resource`), line.
    pub hints: Vec<(String, Vec<String>, usize)>,
}

/// The applications a step may run (`exec.rs`), in lower case; anything
/// else is refused when the file is loaded.
pub const APPLICATIONS: &[&str] = &[
    "answer",
    "busy",
    "congestion",
    "dial",
    "echo",
    "goto",
    "gotoif",
    "hangup",
    "noop",
    "progress",
    "ringing",
    "set",
    "transfer",
    "verbose",
    "wait",
];

/// A loaded dialplan.
#[derive(Debug, Clone, Default)]
pub struct Dialplan {
    /// File name shown by `dialplan show` (`extensions.toml`).
    pub file: String,
    /// `[globals]`.
    pub globals: BTreeMap<String, String>,
    /// Contexts by name.
    pub contexts: BTreeMap<String, Context>,
}

/// Why a dialplan file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialplanError {
    /// TOML syntax or shape.
    #[error(transparent)]
    Toml(#[from] sirius_conf::ConfigError),
    /// A step, pattern or include makes no sense.
    #[error("{file}:{line}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The PBX pool's worker threads could not start (the engine cannot
    /// run calls without them).
    #[error(transparent)]
    Pool(#[from] crate::pool::PoolError),
}

/// A key's value: a list of steps (extensions, `include`), a string
/// (globals) or a table of strings (`hints`).
enum Entry {
    List(Vec<Spanned<String>>),
    Text(String),
    Table(Vec<(Spanned<String>, Spanned<String>)>),
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of steps, or a string in [globals]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
                Ok(Entry::Text(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    v.push(s);
                }
                Ok(Entry::List(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    v.push((k, map.next_value::<Spanned<String>>()?));
                }
                Ok(Entry::Table(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A context's keys with their spans, in file order.
type KeyList = Vec<(Spanned<String>, Entry)>;

/// The file: context name → its keys, in file order.
struct File(Vec<(String, KeyList)>);

impl<'de> Deserialize<'de> for File {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<File, D::Error> {
        struct Outer;
        impl<'de> Visitor<'de> for Outer {
            type Value = File;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("contexts as tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<File, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let Keys(keys) = map.next_value::<Keys>()?;
                    out.push((name, keys));
                }
                Ok(File(out))
            }
        }
        struct Keys(KeyList);
        impl<'de> Deserialize<'de> for Keys {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
                struct Inner;
                impl<'de> Visitor<'de> for Inner {
                    type Value = Keys;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a table of extensions")
                    }
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
                        let mut out = Vec::new();
                        while let Some(k) = map.next_key::<Spanned<String>>()? {
                            out.push((k, map.next_value::<Entry>()?));
                        }
                        Ok(Keys(out))
                    }
                }
                d.deserialize_map(Inner)
            }
        }
        d.deserialize_map(Outer)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// A hint's devices: `Tech/resource` joined by `&`. A presence provider
/// after a comma (Asterisk's `SIP/alice,CustomPresence:alice`) is refused:
/// Sirius has no presence state yet.
fn parse_hint(exten: &str, value: &str) -> Result<Vec<String>, String> {
    if exten.is_empty() || exten.starts_with('_') {
        return Err(format!(
            "hint '{exten}': a hint names one extension, not a pattern"
        ));
    }
    if value.contains(',') {
        return Err(format!(
            "hint '{exten}': presence state providers (after ',') are not supported"
        ));
    }
    let devices: Vec<String> = value.split('&').map(|d| d.trim().to_string()).collect();
    for d in &devices {
        match d.split_once('/') {
            Some((tech, res)) if !tech.is_empty() && !res.is_empty() => {}
            _ => {
                return Err(format!(
                    "hint '{exten}': '{d}' is not a device (Tech/resource, as SIP/alice)"
                ))
            }
        }
    }
    Ok(devices)
}

/// Splits `label: App(data)` / `App(data)` / `App`.
fn parse_step(s: &str) -> Result<(Option<String>, String, String), String> {
    let s = s.trim();
    let (label, rest) = match (s.find(':'), s.find('(')) {
        (Some(c), p) if p.is_none_or(|p| c < p) => {
            let l = s[..c].trim();
            if l.is_empty()
                || !l
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                return Err(format!("bad label '{l}'"));
            }
            (Some(l.to_string()), s[c + 1..].trim())
        }
        _ => (None, s),
    };
    let (app, data) = match rest.find('(') {
        Some(p) => {
            let Some(data) = rest[p + 1..].strip_suffix(')') else {
                return Err(format!("missing ')' in '{rest}'"));
            };
            (rest[..p].trim(), data)
        }
        None => (rest, ""),
    };
    if app.is_empty() || !app.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("bad application name '{app}'"));
    }
    Ok((label, app.to_string(), data.to_string()))
}

impl Dialplan {
    /// Loads a file.
    pub fn load(path: &Path) -> Result<Dialplan, DialplanError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| sirius_conf::ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Dialplan::parse(path, &text)
    }

    /// Parses text (named `path` in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Dialplan, DialplanError> {
        let File(raw) = sirius_conf::parse_toml(path, text)?;
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let invalid = |offset: usize, reason: String| DialplanError::Invalid {
            file: path.display().to_string(),
            line: line_of(text, offset),
            reason,
        };
        let mut dp = Dialplan {
            file,
            ..Dialplan::default()
        };
        for (ctx, keys) in raw {
            if ctx == "globals" {
                for (k, v) in keys {
                    match v {
                        Entry::Text(t) => {
                            dp.globals.insert(k.get_ref().clone(), t);
                        }
                        Entry::List(_) | Entry::Table(_) => {
                            return Err(invalid(
                                k.span().start,
                                format!("global '{}' must be a string", k.get_ref()),
                            ))
                        }
                    }
                }
                continue;
            }
            let mut c = Context {
                name: ctx.clone(),
                ..Context::default()
            };
            for (k, v) in keys {
                if k.get_ref() == "hints" {
                    let Entry::Table(hints) = v else {
                        return Err(invalid(
                            k.span().start,
                            "'hints' must be a table of extension = \"Tech/device[&Tech/device…]\""
                                .into(),
                        ));
                    };
                    for (exten, devices) in hints {
                        let devices = parse_hint(exten.get_ref(), devices.get_ref())
                            .map_err(|e| invalid(exten.span().start, e))?;
                        c.hints.push((
                            exten.get_ref().clone(),
                            devices,
                            line_of(text, exten.span().start),
                        ));
                    }
                    continue;
                }
                let Entry::List(items) = v else {
                    return Err(invalid(
                        k.span().start,
                        format!("extension '{}' must be a list of steps", k.get_ref()),
                    ));
                };
                if k.get_ref() == "include" {
                    for i in items {
                        c.includes
                            .push((i.get_ref().clone(), line_of(text, i.span().start)));
                    }
                    continue;
                }
                let pattern = Pattern::parse(k.get_ref())
                    .map_err(|e| invalid(k.span().start, e.to_string()))?;
                if items.is_empty() {
                    return Err(invalid(
                        k.span().start,
                        format!("extension '{}' has no steps", k.get_ref()),
                    ));
                }
                let mut steps = Vec::new();
                for (n, item) in items.iter().enumerate() {
                    let (label, app, data) =
                        parse_step(item.get_ref()).map_err(|e| invalid(item.span().start, e))?;
                    if let Some(l) = &label {
                        if steps.iter().any(|s: &Step| s.label.as_deref() == Some(l)) {
                            return Err(invalid(
                                item.span().start,
                                format!("label '{l}' used twice in extension '{}'", k.get_ref()),
                            ));
                        }
                    }
                    steps.push(Step {
                        priority: n as u32 + 1,
                        label,
                        app,
                        data,
                        line: line_of(text, item.span().start),
                    });
                }
                if c.extensions
                    .iter()
                    .any(|e: &Extension| e.pattern.as_str() == pattern.as_str())
                {
                    return Err(invalid(
                        k.span().start,
                        format!("extension '{pattern}' defined twice in context '{ctx}'"),
                    ));
                }
                c.extensions.push(Extension { pattern, steps });
            }
            c.extensions
                .sort_by(|a, b| a.pattern.specificity_cmp(&b.pattern));
            dp.contexts.insert(ctx, c);
        }
        for c in dp.contexts.values() {
            for (inc, line) in &c.includes {
                if !dp.contexts.contains_key(inc) {
                    return Err(DialplanError::Invalid {
                        file: path.display().to_string(),
                        line: *line,
                        reason: format!("context '{}' includes unknown context '{inc}'", c.name),
                    });
                }
            }
        }
        dp.check_steps()
            .map_err(|(line, reason)| DialplanError::Invalid {
                file: path.display().to_string(),
                line,
                reason,
            })?;
        Ok(dp)
    }

    /// What would only fail once a call got there, found at load time so
    /// that `dialplan reload` refuses it and names the line: an application
    /// Sirius does not have, a `Goto`/`GotoIf` whose fixed target (no
    /// `${…}` in it) names an unknown context, a priority or label its
    /// extension lacks, or an extension its context lacks when that context
    /// has no `i` to send the call to.
    fn check_steps(&self) -> Result<(), (usize, String)> {
        for c in self.contexts.values() {
            for e in &c.extensions {
                for step in &e.steps {
                    let at = || {
                        format!(
                            "(extension '{}' of context '{}', priority {})",
                            e.pattern, c.name, step.priority
                        )
                    };
                    let app = step.app.to_ascii_lowercase();
                    if !APPLICATIONS.contains(&app.as_str()) {
                        return Err((step.line, format!("no application '{}' {}", step.app, at())));
                    }
                    let targets: Vec<&str> = match app.as_str() {
                        "goto" => vec![step.data.as_str()],
                        "gotoif" => {
                            let rest = step.data.split_once('?').map_or("", |(_, r)| r);
                            let (yes, no) = rest.split_once(':').unwrap_or((rest, ""));
                            vec![yes, no]
                        }
                        _ => Vec::new(),
                    };
                    for t in targets {
                        let t = t.trim();
                        if t.is_empty() || t.contains('$') {
                            continue; // nothing to go to, or known only at run time
                        }
                        if let Err(why) = self.check_goto(c, e, t) {
                            return Err((step.line, format!("{why} {}", at())));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a fixed `Goto` target (`[[context,]exten,]priority|label`)
    /// from extension `from` of context `ctx` exists.
    fn check_goto(&self, ctx: &Context, from: &Extension, target: &str) -> Result<(), String> {
        let parts: Vec<&str> = target.split(',').map(str::trim).collect();
        let (context, exten, prio) = match parts.as_slice() {
            [p] => (ctx.name.as_str(), None, *p),
            [e, p] => (ctx.name.as_str(), Some(*e), *p),
            [c, e, p] => (*c, Some(*e), *p),
            _ => return Err(format!("Goto target '{target}' has too many parts")),
        };
        let ext = match exten {
            // The same extension: the one this step is in.
            None => from,
            Some(x) => match self.find(context, x) {
                Some((_, ext)) => ext,
                None if !self.contexts.contains_key(context) => {
                    return Err(format!("Goto to unknown context '{context}'"));
                }
                // As in Asterisk, the call then goes to the context's
                // invalid-extension handler: a way to reach `i` on purpose.
                None if self.find(context, "i").is_some() => return Ok(()),
                None => {
                    return Err(format!(
                        "Goto to extension '{x}', which context '{context}' does not have"
                    ))
                }
            },
        };
        let found = match prio.parse::<u32>() {
            Ok(n) => ext.steps.iter().any(|s| s.priority == n),
            Err(_) => ext.steps.iter().any(|s| s.label.as_deref() == Some(prio)),
        };
        if found {
            Ok(())
        } else {
            Err(format!(
                "Goto to priority or label '{prio}', which extension '{}' of context '{context}' does not have",
                ext.pattern
            ))
        }
    }

    /// Finds the extension for `exten` in `context`, then in its includes
    /// (depth first, in order, each context visited once), as Asterisk does.
    pub fn find(&self, context: &str, exten: &str) -> Option<(&Context, &Extension)> {
        self.find_in(context, exten, &mut Vec::new())
    }

    /// Looks in `context`, then in what it includes, never twice in one
    /// context (include loops). Allocates nothing unless it follows an
    /// include: it runs several times for each step of every call.
    fn find_in<'a: 's, 's>(
        &'a self,
        context: &'s str,
        exten: &str,
        seen: &mut Vec<&'s str>,
    ) -> Option<(&'a Context, &'a Extension)> {
        let c = self.contexts.get(context)?;
        if let Some(e) = c.extensions.iter().find(|e| e.pattern.matches(exten)) {
            return Some((c, e));
        }
        if c.includes.is_empty() || seen.contains(&context) {
            return None;
        }
        seen.push(context);
        c.includes
            .iter()
            .find_map(|(inc, _)| self.find_in(inc, exten, seen))
    }

    /// `dialplan show [context]` as JSON text: the contexts it lists, each
    /// with its extensions' steps (priority, label, application, data, line
    /// of the file) and includes, and the text's closing counts.
    pub fn show_json(&self, only: Option<&str>) -> Result<String, String> {
        use serde_json::{json, Value};
        if let Some(name) = only {
            if !self.contexts.contains_key(name) {
                return Err(format!("There is no existence of '{name}' context"));
            }
        }
        let (mut exts, mut prios) = (0, 0);
        let contexts: Vec<Value> = self
            .contexts
            .values()
            .filter(|c| only.is_none_or(|n| n == c.name))
            .map(|c| {
                let extensions: Vec<Value> = c
                    .extensions
                    .iter()
                    .map(|e| {
                        exts += 1;
                        prios += e.steps.len();
                        let steps: Vec<Value> = e
                            .steps
                            .iter()
                            .map(|s| {
                                json!({
                                    "priority": s.priority,
                                    "label": s.label,
                                    "application": s.app,
                                    "data": s.data,
                                    "file": self.file,
                                    "line": s.line,
                                })
                            })
                            .collect();
                        json!({ "extension": e.pattern.to_string(), "steps": steps })
                    })
                    .collect();
                let includes: Vec<&str> = c.includes.iter().map(|(i, _)| i.as_str()).collect();
                json!({ "context": c.name, "extensions": extensions, "includes": includes })
            })
            .collect();
        let n = contexts.len();
        Ok(json!({
            "contexts": contexts,
            "extensions": exts,
            "priorities": prios,
            "context_count": n,
        })
        .to_string())
    }

    /// `dialplan show [context]` in Asterisk's layout.
    pub fn show(&self, only: Option<&str>) -> Result<String, String> {
        if let Some(name) = only {
            if !self.contexts.contains_key(name) {
                return Err(format!("There is no existence of '{name}' context"));
            }
        }
        let mut o = String::new();
        let (mut exts, mut prios, mut ctxs) = (0, 0, 0);
        for c in self
            .contexts
            .values()
            .filter(|c| only.is_none_or(|n| n == c.name))
        {
            ctxs += 1;
            o += &format!("[ Context '{}' created by 'pbx_config' ]\n", c.name);
            for e in &c.extensions {
                exts += 1;
                for s in &e.steps {
                    prios += 1;
                    let first = if s.priority == 1 {
                        format!("'{}' =>", e.pattern)
                    } else {
                        s.label
                            .as_ref()
                            .map(|l| format!("[{l}]"))
                            .unwrap_or_default()
                    };
                    let step = format!("{}. {}({})", s.priority, s.app, s.data);
                    o += &format!("  {first:<17} {step:<45} [{}:{}]\n", self.file, s.line);
                }
            }
            for (inc, _) in &c.includes {
                o += &format!(
                    "  {:<17} {:<45} [pbx_config]\n",
                    "Include =>",
                    format!("'{inc}'")
                );
            }
            o += "\n";
        }
        let plural = |n: usize, one: &str, many: &str| {
            if n == 1 {
                format!("{n} {one}")
            } else {
                format!("{n} {many}")
            }
        };
        o += &format!(
            "-= {} ({}) in {}. =-",
            plural(exts, "extension", "extensions"),
            plural(prios, "priority", "priorities"),
            plural(ctxs, "context", "contexts")
        );
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"[globals]
TRUNK = "SIP/trunk"

[internal]
"_6XX" = ["Dial(SIP/${EXTEN},20)", "Hangup()"]

[demo]
include = ["internal"]
"600" = ["Answer()", "Echo()", "Hangup()"]
"700" = [
  "Answer()",
  "again: Wait(1)",
  "Goto(again)",
]
"_X." = ["Congestion()"]
"#;

    fn dp() -> Dialplan {
        Dialplan::parse(Path::new("etc/extensions.toml"), SAMPLE).unwrap()
    }

    #[test]
    fn lookup_follows_specificity_then_includes() {
        let d = dp();
        assert_eq!(d.globals["TRUNK"], "SIP/trunk");
        let (c, e) = d.find("demo", "600").unwrap();
        assert_eq!((c.name.as_str(), e.pattern.as_str()), ("demo", "600"));
        // _X. in demo matches 601 before the include is searched, as in Asterisk.
        assert_eq!(d.find("demo", "601").unwrap().1.pattern.as_str(), "_X.");
        assert_eq!(
            d.find("internal", "601").unwrap().1.pattern.as_str(),
            "_6XX"
        );
        assert!(d.find("demo", "").is_none());
        assert!(d.find("nowhere", "600").is_none());
        let steps = &d.find("demo", "700").unwrap().1.steps;
        assert_eq!(
            steps[1],
            Step {
                priority: 2,
                label: Some("again".into()),
                app: "Wait".into(),
                data: "1".into(),
                line: 12
            }
        );
    }

    #[test]
    fn show_matches_asterisk_layout() {
        let out = dp().show(Some("demo")).unwrap();
        let expected = format!(
            "[ Context 'demo' created by 'pbx_config' ]\n  {:<17} {:<45} [extensions.toml:9]\n  {:<17} {:<45} [extensions.toml:9]\n",
            "'600' =>", "1. Answer()", "", "2. Echo()"
        );
        assert!(out.starts_with(&expected), "{out}");
        assert!(
            out.contains(&format!(
                "  {:<17} {:<45} [extensions.toml:12]\n",
                "[again]", "2. Wait(1)"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "  {:<17} {:<45} [pbx_config]\n",
                "Include =>", "'internal'"
            )),
            "{out}"
        );
        assert!(
            out.ends_with("-= 3 extensions (7 priorities) in 1 context. =-"),
            "{out}"
        );
        assert!(dp()
            .show(None)
            .unwrap()
            .ends_with("-= 4 extensions (9 priorities) in 2 contexts. =-"));
        assert_eq!(
            dp().show(Some("x")).unwrap_err(),
            "There is no existence of 'x' context"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = |t: &str| {
            Dialplan::parse(Path::new("extensions.toml"), t)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("[a]\n\"_1[2\" = [\"NoOp()\"]\n"),
            "extensions.toml:2: unterminated [ in pattern '_1[2'"
        );
        assert_eq!(
            err("[a]\n\"1\" = [\n \"NoOp()\",\n \"Dial(x\"]\n"),
            "extensions.toml:4: missing ')' in 'Dial(x'"
        );
        assert_eq!(
            err("[a]\ninclude = [\"b\"]\n"),
            "extensions.toml:2: context 'a' includes unknown context 'b'"
        );
        assert_eq!(
            err("[a]\n\"1\" = \"NoOp()\"\n"),
            "extensions.toml:2: extension '1' must be a list of steps"
        );
        assert!(err("[a\n").starts_with("extensions.toml:1:"));
    }

    #[test]
    fn hints_map_extensions_to_devices_and_bad_ones_name_their_line() {
        let d = Dialplan::parse(
            Path::new("extensions.toml"),
            "[demo]\n\"6001\" = [\"Dial(SIP/alice,20)\"]\n\n[demo.hints]\n\"6001\" = \"SIP/alice\"\n\"6000\" = \"SIP/alice & SIP/bob\"\n",
        )
        .unwrap();
        let hints = &d.contexts["demo"].hints;
        assert_eq!(
            hints,
            &[
                ("6001".to_string(), vec!["SIP/alice".to_string()], 5),
                (
                    "6000".to_string(),
                    vec!["SIP/alice".to_string(), "SIP/bob".to_string()],
                    6
                )
            ]
        );
        // A hint is not an extension one can call.
        assert!(d.find("demo", "6000").is_none());
        let err = |t: &str| {
            Dialplan::parse(Path::new("extensions.toml"), t)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("[demo.hints]\n\"6001\" = \"alice\"\n"),
            "extensions.toml:2: hint '6001': 'alice' is not a device (Tech/resource, as SIP/alice)"
        );
        assert_eq!(
            err("[demo.hints]\n\"_6XXX\" = \"SIP/alice\"\n"),
            "extensions.toml:2: hint '_6XXX': a hint names one extension, not a pattern"
        );
        assert_eq!(
            err("[demo.hints]\n\"6001\" = \"SIP/alice,CustomPresence:alice\"\n"),
            "extensions.toml:2: hint '6001': presence state providers (after ',') are not supported"
        );
        assert_eq!(
            err("[demo]\nhints = [\"SIP/alice\"]\n"),
            "extensions.toml:2: 'hints' must be a table of extension = \"Tech/device[&Tech/device…]\""
        );
    }

    #[test]
    fn unknown_applications_and_missing_goto_targets_are_refused_at_load() {
        let err = |t: &str| {
            Dialplan::parse(Path::new("extensions.toml"), t)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("[a]\n\"1\" = [\"Answer()\", \"Playbak(hello)\"]\n"),
            "extensions.toml:2: no application 'Playbak' (extension '1' of context 'a', priority 2)"
        );
        assert_eq!(
            err("[a]\n\"1\" = [\n \"NoOp()\",\n \"Goto(nowhere)\"]\n"),
            "extensions.toml:4: Goto to priority or label 'nowhere', which extension '1' of context 'a' does not have (extension '1' of context 'a', priority 2)"
        );
        assert_eq!(
            err("[a]\n\"1\" = [\"Goto(2,1)\"]\n"),
            "extensions.toml:2: Goto to extension '2', which context 'a' does not have (extension '1' of context 'a', priority 1)"
        );
        // With an `i` extension there, that is where such a Goto goes.
        Dialplan::parse(
            Path::new("extensions.toml"),
            "[a]\n\"1\" = [\"Goto(2,1)\"]\n\"i\" = [\"Busy()\"]\n",
        )
        .unwrap();
        assert_eq!(
            err("[a]\n\"1\" = [\"Goto(b,2,1)\"]\n"),
            "extensions.toml:2: Goto to unknown context 'b' (extension '1' of context 'a', priority 1)"
        );
        assert_eq!(
            err("[a]\n\"1\" = [\"GotoIf($[1]?20,5:top)\", \"top: NoOp()\"]\n\"_2X\" = [\"NoOp()\"]\n"),
            "extensions.toml:2: Goto to priority or label '5', which extension '_2X' of context 'a' does not have (extension '1' of context 'a', priority 1)",
            "a condition's own $[...] is not a variable target"
        );
        // What is only known at run time, or exists, passes.
        let ok = "[a]\ninclude = [\"b\"]\n\"1\" = [\"top: NoOp()\", \"Goto(top)\", \"Goto(2)\", \"Goto(${X})\", \"Goto(b,5,again)\", \"GotoIf(${C}?top:)\", \"goto(20,1)\"]\n[b]\n\"_X\" = [\"again: Wait(1)\"]\n\"_2X\" = [\"NoOp()\"]\n";
        Dialplan::parse(Path::new("extensions.toml"), ok).unwrap();
    }
}
