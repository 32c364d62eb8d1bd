//! # sirius-dialplan
//!
//! Contexts, extensions and priorities from `extensions.toml`
//! ([`dialplan`]), Asterisk's patterns and their try order ([`pattern`]),
//! the engine the core starts calls on ([`engine`]), the pool of worker
//! threads every call's dialplan runs on as a task ([`pool`]), the
//! applications ([`exec`]), variable substitution ([`vars`]) and `$[...]`
//! expressions ([`expr`]).

mod dial;
pub mod dialplan;
pub mod engine;
pub mod exec;
#[cfg(test)]
mod exec_tests;
pub mod expr;
pub mod pattern;
pub mod pool;
mod transfer;
pub mod vars;

pub use dialplan::{Dialplan, DialplanError};
pub use engine::DialplanEngine;
