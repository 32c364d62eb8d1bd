//! # sirius-dialplan
//!
//! Contexts, extensions and priorities from `extensions.toml`
//! ([`dialplan`]), Asterisk's patterns and their try order ([`pattern`]),
//! the engine the core starts calls on ([`engine`]), the applications
//! ([`exec`]), variable substitution ([`vars`]) and `$[...]` expressions ([`expr`]).

pub mod dialplan;
pub mod engine;
pub mod exec;
pub mod expr;
pub mod pattern;
pub mod threads;
pub mod vars;

pub use dialplan::{Dialplan, DialplanError};
pub use engine::DialplanEngine;
