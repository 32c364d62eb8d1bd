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

/// Asterisk's `ESS()`: the plural "s" for counts other than one.
pub fn ess(n: impl Into<u64>) -> &'static str {
    if n.into() == 1 {
        ""
    } else {
        "s"
    }
}
