//! # sirius-dialplan
//!
//! Contexts, extensions and priorities from `extensions.toml`
//! ([`dialplan`]), Asterisk's patterns and their try order ([`pattern`]),
//! and the engine the core starts calls on ([`engine`]).

pub mod dialplan;
pub mod engine;
pub mod exec;
pub mod pattern;

pub use dialplan::{Dialplan, DialplanError};
pub use engine::DialplanEngine;
