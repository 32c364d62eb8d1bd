//! # sirius-console
//!
//! What an administrator types at: the command table ([`table`]), the built-in
//! command groups ([`commands`]), the remote-console protocol over a Unix
//! socket ([`remote`]) and the interactive line editor ([`editor`]).

pub mod commands;
pub mod editor;
pub mod remote;
pub mod table;

pub use table::{CommandTable, Outcome};
