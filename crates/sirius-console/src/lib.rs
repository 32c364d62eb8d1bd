//! # sirius-console
//!
//! What an administrator types at: the command table ([`table`]), the built-in
//! command groups ([`commands`]), the remote-console protocol over a Unix
//! socket ([`remote`]) and the interactive line editor ([`editor`]); `show`
//! commands build their rows and fields with [`view`] for text and JSON.

pub mod commands;
pub mod editor;
pub mod remote;
pub mod table;

pub use sirius_abi::view;

pub use table::{CommandTable, Outcome};
