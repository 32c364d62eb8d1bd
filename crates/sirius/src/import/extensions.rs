//! `extensions.conf` → `extensions.toml`: `[globals]`, every context with
//! its `include =>`, `exten =>`/`same =>` lines (priorities `1`, `n`, labels
//! `n(label)`), patterns, and `hint` priorities.
//!
//! A step whose application Sirius lacks becomes `NoOp(…)` naming the
//! original, so every later priority keeps its number and a `Goto` still
//! lands where it did in Asterisk; each one is reported. Dial strings to
//! `PJSIP/` become `SIP/` (Sirius's SIP channel), `Dial`'s options are
//! dropped (Sirius's `Dial` takes targets and a timeout); both reported.

use super::conf::{Conf, Entry, Place};
use super::toml_out::{key, Doc, Value};
use super::Report;
use sirius_dialplan::dialplan::APPLICATIONS;

/// One priority of one extension.
struct Step {
    prio: u32,
    label: Option<String>,
    text: String,
    at: Place,
}

/// One context, as converted.
struct Ctx {
    name: String,
    includes: Vec<(String, Place)>,
    extens: Vec<Exten>,
    hints: Vec<(String, String)>,
}

/// An extension's steps and hint, in the order first seen.
struct Exten {
    name: String,
    steps: Vec<Step>,
    at: Place,
}

/// Converts `extensions.conf`. The result loads in Sirius: what its
/// dialplan reader still refuses (an include of a context the file does not
/// have, a `Goto` to a label that is not there) is taken out, one refusal at
/// a time, and reported with the reader's reason.
pub fn convert(conf: &Conf, report: &mut Report) -> Result<String, String> {
    let mut globals: Vec<(String, String)> = Vec::new();
    let mut contexts = Vec::new();
    for s in &conf.sections {
        match s.name.to_ascii_lowercase().as_str() {
            "general" => general(&s.entries, report),
            "globals" => globals.extend(s.entries.iter().map(|e| (e.key.clone(), e.value.clone()))),
            _ => contexts.push(context(&s.name, &s.entries, report)),
        }
    }
    // Each round takes one thing out; there are at most that many things.
    let rounds = 1 + contexts
        .iter()
        .map(|c| c.includes.len() + c.extens.iter().map(|x| x.steps.len()).sum::<usize>())
        .sum::<usize>();
    for _ in 0..rounds {
        let text = render(&globals, &contexts);
        match sirius_dialplan::dialplan::Dialplan::parse(
            std::path::Path::new("extensions.toml"),
            &text,
        ) {
            Ok(_) => return Ok(text),
            Err(e) => repair(&mut contexts, &e.to_string(), report)?,
        }
    }
    Err("the converted dialplan still does not load".into())
}

fn render(globals: &[(String, String)], contexts: &[Ctx]) -> String {
    let mut doc = Doc::new(
        "The dialplan converted from Asterisk's extensions.conf by `sirius import-asterisk`.",
    );
    if !globals.is_empty() {
        let t = doc.table("globals");
        for (k, v) in globals {
            t.set(k, Value::Str(v.clone()));
        }
    }
    for c in contexts {
        let t = doc.table(&key(&c.name));
        if !c.includes.is_empty() {
            t.set(
                "include",
                Value::List(c.includes.iter().map(|(i, _)| i.clone()).collect()),
            );
        }
        for x in &c.extens {
            let steps: Vec<String> = x
                .steps
                .iter()
                .map(|s| match &s.label {
                    Some(l) => format!("{l}: {}", s.text),
                    None => s.text.clone(),
                })
                .collect();
            t.set(&x.name, Value::List(steps));
        }
        if !c.hints.is_empty() {
            let h = doc.table(&format!("{}.hints", key(&c.name)));
            for (ext, devices) in &c.hints {
                h.set(ext, Value::Str(devices.clone()));
            }
        }
    }
    doc.render()
}

/// Takes out what the dialplan reader refused (its message names it).
fn repair(contexts: &mut [Ctx], error: &str, report: &mut Report) -> Result<(), String> {
    let quoted = |after: &str| -> Option<String> {
        let rest = &error[error.find(after)? + after.len()..];
        Some(rest[..rest.find('\'')?].to_string())
    };
    if let (Some(ctx), Some(inc)) = (quoted("context '"), quoted("includes unknown context '")) {
        let c = contexts.iter_mut().find(|c| c.name == ctx).ok_or(error)?;
        let i = c
            .includes
            .iter()
            .position(|(n, _)| *n == inc)
            .ok_or(error)?;
        let (_, at) = c.includes.remove(i);
        report.note(
            &at,
            format!("include => {inc}: extensions.conf has no such context; left out"),
        );
        return Ok(());
    }
    let (Some(ext), Some(ctx)) = (quoted("(extension '"), quoted("of context '")) else {
        return Err(error.to_string());
    };
    let prio: u32 = error
        .rsplit_once("priority ")
        .and_then(|(_, p)| p.trim_end_matches(')').parse().ok())
        .ok_or(error)?;
    let reason = error.split_once(": ").map_or(error, |(_, r)| r);
    let reason = reason.split(" (extension '").next().unwrap_or(reason);
    let c = contexts.iter_mut().find(|c| c.name == ctx).ok_or(error)?;
    let x = c.extens.iter_mut().find(|x| x.name == ext).ok_or(error)?;
    let step = x.steps.get_mut(prio as usize - 1).ok_or(error)?;
    report.note(
        &step.at,
        format!("[{ctx}] {ext} step {prio}: {reason}; the step is NoOp(…)"),
    );
    step.text = format!("NoOp(Asterisk: {})", balanced(&step.text));
    Ok(())
}

fn general(entries: &[Entry], report: &mut Report) {
    for e in entries {
        let key = e.key.to_ascii_lowercase();
        let same = match key.as_str() {
            // Sirius's behaviour already: say nothing.
            "autofallthrough" => e.value.eq_ignore_ascii_case("yes"),
            "static" | "writeprotect" => true,
            "clearglobalvars" => e.value.eq_ignore_ascii_case("no"),
            _ => false,
        };
        if !same {
            report.note(
                &e.at,
                format!(
                    "[general] {} = {}: not converted (Sirius has no such option)",
                    e.key, e.value
                ),
            );
        }
    }
}

fn context(name: &str, entries: &[Entry], report: &mut Report) -> Ctx {
    let mut includes = Vec::new();
    let mut extens: Vec<Exten> = Vec::new();
    let mut hints: Vec<(String, String)> = Vec::new();
    // The extension and priority `same =>` and `n` continue from.
    let mut last: Option<(usize, u32)> = None;
    for e in entries {
        match e.key.to_ascii_lowercase().as_str() {
            "include" => {
                let (ctx, rest) = e.value.split_once(',').unwrap_or((&e.value, ""));
                if !rest.is_empty() {
                    report.note(
                        &e.at,
                        format!(
                            "include => {}: the time condition is dropped (Sirius includes always)",
                            e.value
                        ),
                    );
                }
                includes.push((ctx.trim().to_string(), e.at.clone()));
            }
            "exten" => {
                let mut parts = e.value.splitn(3, ',');
                let ext = parts.next().unwrap_or("").trim();
                let prio = parts.next().unwrap_or("").trim();
                let app = parts.next().unwrap_or("").trim();
                if ext.contains('/') {
                    report.note(
                        &e.at,
                        format!(
                            "exten => {ext}: caller-ID matching is not in Sirius; line left out"
                        ),
                    );
                    continue;
                }
                if prio.eq_ignore_ascii_case("hint") {
                    if let Some(h) = hint(ext, app, &e.at, report) {
                        hints.push((ext.to_string(), h));
                    }
                    continue;
                }
                let i = match extens.iter().position(|x| x.name == ext) {
                    Some(i) => i,
                    None => {
                        extens.push(Exten {
                            name: ext.to_string(),
                            steps: Vec::new(),
                            at: e.at.clone(),
                        });
                        extens.len() - 1
                    }
                };
                let prev = last.filter(|(j, _)| *j == i).map(|(_, p)| p);
                if let Some(p) = step(&mut extens[i], prio, prev, app, &e.at, report) {
                    last = Some((i, p));
                }
            }
            "same" => {
                let Some((i, p)) = last else {
                    report.note(&e.at, "same => before any exten =>; left out".into());
                    continue;
                };
                let (prio, app) = e.value.split_once(',').unwrap_or((&e.value, ""));
                if let Some(p) = step(
                    &mut extens[i],
                    prio.trim(),
                    Some(p),
                    app.trim(),
                    &e.at,
                    report,
                ) {
                    last = Some((i, p));
                }
            }
            other => report.note(
                &e.at,
                format!(
                    "{other} => {}: not converted (Sirius has no {other})",
                    e.value
                ),
            ),
        }
    }
    for x in &mut extens {
        x.steps.sort_by_key(|s| s.prio);
        let numbers: Vec<u32> = x.steps.iter().map(|s| s.prio).collect();
        let contiguous = numbers.iter().enumerate().all(|(i, p)| *p == i as u32 + 1);
        if !contiguous {
            report.note(
                &x.at,
                format!(
                    "[{name}] {}: priorities {numbers:?} become 1 to {} (Sirius numbers steps in order); a Goto to a number must be checked",
                    x.name,
                    numbers.len()
                ),
            );
        }
    }
    Ctx {
        name: name.to_string(),
        includes,
        extens,
        hints,
    }
}

/// Adds one priority; returns its number.
fn step(
    x: &mut Exten,
    prio: &str,
    prev: Option<u32>,
    app: &str,
    at: &Place,
    report: &mut Report,
) -> Option<u32> {
    let (num, label) = match prio.split_once('(') {
        Some((n, l)) => (n.trim(), Some(l.trim_end_matches(')').trim().to_string())),
        None => (prio, None),
    };
    let number = match num {
        "n" => prev.map_or(1, |p| p + 1),
        "s" => prev.unwrap_or(1),
        n => match n.parse::<u32>() {
            Ok(v) if v > 0 => v,
            _ => {
                report.note(
                    at,
                    format!(
                        "exten => {},{prio}: priority '{num}' not understood; line left out",
                        x.name
                    ),
                );
                return None;
            }
        },
    };
    if x.steps.iter().any(|s| s.prio == number) {
        report.note(at, format!("exten => {},{number}: that priority is already defined; this line is left out (as Asterisk refuses it)", x.name));
        return prev;
    }
    x.steps.push(Step {
        prio: number,
        label,
        text: application(app, at, report),
        at: at.clone(),
    });
    Some(number)
}

/// `App(args)` (or `App`, `App,args`) as Sirius can run it.
fn application(app: &str, at: &Place, report: &mut Report) -> String {
    let (name, args) = match app.find('(') {
        Some(i) => (
            app[..i].trim(),
            app[i + 1..].strip_suffix(')').unwrap_or(&app[i + 1..]),
        ),
        None => match app.split_once(',') {
            Some((n, a)) => (n.trim(), a),
            None => (app.trim(), ""),
        },
    };
    let lower = name.to_ascii_lowercase();
    if !APPLICATIONS.contains(&lower.as_str()) {
        report.note(at, format!("application {name}: Sirius does not have it; the step is NoOp(…) so later priorities keep their numbers"));
        return format!("NoOp(Asterisk: {name}({}))", balanced(args));
    }
    if lower == "dial" {
        return dial(name, args, at, report);
    }
    format!("{name}({args})")
}

/// `Dial(targets[,timeout[,options[,url]]])` → `Dial(targets[,timeout])`.
fn dial(name: &str, args: &str, at: &Place, report: &mut Report) -> String {
    let mut parts = args.splitn(3, ',');
    let targets = parts.next().unwrap_or("");
    let timeout = parts.next().unwrap_or("").trim();
    if let Some(opts) = parts.next().filter(|o| !o.trim().is_empty()) {
        report.note(
            at,
            format!("Dial options '{opts}': dropped (Sirius's Dial takes targets and a timeout)"),
        );
    }
    let mut out = Vec::new();
    for t in targets.split('&') {
        let t = t.trim();
        let (tech, rest) = t.split_once('/').unwrap_or(("", t));
        match tech.to_ascii_uppercase().as_str() {
            "SIP" => out.push(t.to_string()),
            "PJSIP" => {
                report.note(
                    at,
                    format!("Dial {t}: PJSIP/ becomes SIP/ (Sirius's SIP channel)"),
                );
                out.push(format!("SIP/{rest}"));
            }
            // A variable may hold a whole dial string: kept as written.
            _ if t.starts_with("${") => out.push(t.to_string()),
            _ => report.note(
                at,
                format!("Dial {t}: Sirius has no {tech} channels; target dropped"),
            ),
        }
    }
    if out.is_empty() {
        return format!("NoOp(Asterisk: {name}({}))", balanced(args));
    }
    let targets = out.join("&");
    if timeout.is_empty() {
        format!("{name}({targets})")
    } else {
        format!("{name}({targets},{timeout})")
    }
}

/// The text with its parentheses kept when they pair up (a `${CALLERID(num)}`),
/// else without them: inside `NoOp(…)` an unpaired one would end the step early.
fn balanced(text: &str) -> String {
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    if depth == 0 {
        text.to_string()
    } else {
        text.replace(['(', ')'], "")
    }
}

/// `exten => 6001,hint,SIP/alice&PJSIP/bob` → the devices Sirius watches.
fn hint(ext: &str, devices: &str, at: &Place, report: &mut Report) -> Option<String> {
    let (devices, presence) = devices.split_once(',').unwrap_or((devices, ""));
    if !presence.is_empty() {
        report.note(
            at,
            format!("hint {ext}: presence '{presence}' dropped (Sirius has device state only)"),
        );
    }
    let mut out = Vec::new();
    for d in devices.split('&').map(str::trim) {
        match d.split_once('/') {
            Some((tech, rest)) if tech.eq_ignore_ascii_case("SIP") => {
                out.push(format!("SIP/{rest}"))
            }
            Some((tech, rest)) if tech.eq_ignore_ascii_case("PJSIP") => {
                report.note(at, format!("hint {ext}: {d} becomes SIP/{rest}"));
                out.push(format!("SIP/{rest}"));
            }
            _ => report.note(
                at,
                format!("hint {ext}: device {d}: Sirius has no such device; dropped"),
            ),
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out.join("&"))
}
