//! Built-in console commands, one file per group (mini-redis's layout).

pub mod bridge;
pub mod cdr;
pub mod channel;
pub mod core;
pub mod dialplan;
pub mod help;
pub mod logger;
pub mod manager;
pub mod module;
pub mod mwi;

/// Every built-in `show` command's JSON form, by its words.
pub fn json_handlers() -> Vec<(&'static str, crate::table::JsonHandler)> {
    let mut all = Vec::new();
    all.extend(core::json());
    all.extend(bridge::json());
    all.extend(module::json());
    all.extend(dialplan::json());
    all.extend(mwi::json());
    all.extend(cdr::json());
    all.extend(logger::json());
    all.extend(manager::json());
    all.extend(help::json());
    all
}

/// Asterisk's `ESS()`: the plural "s" for counts other than one.
pub fn ess(n: impl Into<u64>) -> &'static str {
    if n.into() == 1 {
        ""
    } else {
        "s"
    }
}
