//! `module show|load|unload|reload`.

use super::ess;
use crate::table::{Args, Command, CommandError, CommandResult, JsonHandler};
use crate::view::Table;
use sirius_core::loader::{module_name, LoadOutcome};
use sirius_core::Core;
use std::sync::Arc;

/// The `module` group.
pub fn commands() -> Vec<Command> {
    vec![
        Command {
            words: "module show",
            summary: "List modules and info",
            usage: "Usage: module show [like keyword]\n       Shows Sirius modules currently in use, and usage statistics.",
            handler: show,
            complete: Some(|_, _, pos| if pos == 2 { vec!["like".into()] } else { Vec::new() }),
        },
        Command {
            words: "module load",
            summary: "Load a module by name",
            usage: "Usage: module load <module name>\n       Loads the specified module into Sirius.",
            handler: load,
            complete: Some(complete_available),
        },
        Command {
            words: "module unload",
            summary: "Unload a module by name",
            usage: "Usage: module unload [-f|-h] <module name>\n       Unloads the specified module from Sirius. The -f\n       option causes the module to be unloaded even if it is\n       in use (calls are hung up); -h is a synonym.",
            handler: unload,
            complete: Some(complete_loaded),
        },
        Command {
            words: "module reload",
            summary: "Reload configuration for a module",
            usage: "Usage: module reload [module ...]\n       Reloads configuration files for all listed modules which support\n       reloading, or for all supported modules if none are listed.",
            handler: reload,
            complete: Some(complete_loaded),
        },
    ]
}

/// The JSON form of `module show`.
pub fn json() -> Vec<(&'static str, JsonHandler)> {
    vec![("module show", |core, args| {
        Ok(modules(core, args)?.to_json())
    })]
}

const HEADERS: [&str; 5] = [
    "Module",
    "Description",
    "Use Count",
    "Status",
    "Support Level",
];

fn modules(core: &Core, args: &Args<'_>) -> Result<Table, CommandError> {
    let like = match args.rest {
        [] => None,
        [l, word] if l.eq_ignore_ascii_case("like") => Some(word.to_ascii_lowercase()),
        _ => return Err(CommandError::Usage),
    };
    let mut t = Table::new(&HEADERS);
    for m in core.module_list() {
        if like
            .as_ref()
            .is_some_and(|w| !m.name.to_ascii_lowercase().contains(w))
        {
            continue;
        }
        t.row(vec![
            m.name,
            m.description,
            m.use_count.to_string(),
            m.status.to_string(),
            m.support.to_string(),
        ]);
    }
    let n = t.rows.len();
    t.totals.push(("modules loaded", n.into()));
    Ok(t)
}

fn show(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let t = modules(core, args)?;
    let row = |r: &[&str]| {
        format!(
            "{:<30} {:<40.40} {:<10} {:<11} {:>13}\n",
            r[0], r[1], r[2], r[3], r[4]
        )
    };
    let mut out = row(&HEADERS);
    for r in &t.rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        out.push_str(&row(&r));
    }
    out.push_str(&format!(
        "{} module{} loaded",
        t.rows.len(),
        ess(t.rows.len() as u64)
    ));
    Ok(out)
}

fn load(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let [name] = args.rest else {
        return Err(CommandError::Usage);
    };
    let shown = format!("{}.so", module_name(name));
    match core.load_module(name) {
        Ok(LoadOutcome::Loaded) => Ok(format!("Loaded {shown}")),
        Ok(LoadOutcome::Declined(why)) => Err(CommandError::Failed(format!(
            "Unable to load module {shown}: declined: {why}"
        ))),
        Err(e) => Err(CommandError::Failed(format!(
            "Unable to load module {shown}: {e}"
        ))),
    }
}

fn unload(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let (force, names) = match args.rest {
        [flag, rest @ ..] if flag == "-f" || flag == "-h" => (true, rest),
        rest => (false, rest),
    };
    if names.is_empty() {
        return Err(CommandError::Usage);
    }
    let mut out = Vec::new();
    for n in names {
        let shown = format!("{}.so", module_name(n));
        match core.unload_module(n, force) {
            Ok(()) => out.push(format!("Unloaded {shown}")),
            Err(e) => {
                return Err(CommandError::Failed(format!(
                    "Unable to unload resource {shown}: {e}"
                )))
            }
        }
    }
    Ok(out.join("\n"))
}

fn reload(core: &Arc<Core>, args: &Args<'_>) -> CommandResult {
    let names: Vec<String> = if args.rest.is_empty() {
        core.module_names()
    } else {
        args.rest.to_vec()
    };
    let mut out = Vec::new();
    // Without a name, everything that reloads, the dialplan first, as
    // Asterisk's `module reload` reloads pbx_config with the rest. A
    // dialplan that fails stays as it was; the modules reload all the same.
    let mut failed = false;
    if args.rest.is_empty() {
        if let Some(engine) = core.pbx_engine() {
            match engine.reload() {
                Ok(r) => {
                    *core.last_reload.lock() = std::time::Instant::now();
                    out.push(r);
                }
                Err(e) => {
                    failed = true;
                    out.push(format!("The dialplan could not be reloaded: {e}"));
                }
            }
        }
    }
    for n in &names {
        let shown = format!("{}.so", module_name(n));
        match core.reload_module(n) {
            Ok(detail) => {
                out.push(format!("Module '{shown}' reloaded successfully."));
                if !detail.is_empty() {
                    out.push(detail);
                }
            }
            Err(e) => {
                out.push(format!("The module '{shown}' could not be reloaded: {e}"));
                return Err(CommandError::Failed(out.join("\n")));
            }
        }
    }
    if failed {
        return Err(CommandError::Failed(out.join("\n")));
    }
    Ok(out.join("\n"))
}

fn complete_loaded(core: &Arc<Core>, _: &[String], _: usize) -> Vec<String> {
    core.module_names()
        .into_iter()
        .map(|n| format!("{n}.so"))
        .collect()
}

fn complete_available(core: &Arc<Core>, _: &[String], _: usize) -> Vec<String> {
    let loaded = core.module_names();
    std::fs::read_dir(&core.paths.modules_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|f| f.starts_with("lib") && f.ends_with(".so"))
                .map(|f| module_name(&f))
                .filter(|n| !loaded.contains(n))
                .map(|n| format!("{n}.so"))
                .collect()
        })
        .unwrap_or_default()
}
