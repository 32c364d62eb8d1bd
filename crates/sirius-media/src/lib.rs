//! # sirius-media — the run-time pieces the core and its plugins share
//!
//! A channel plugin is a cdylib loaded into the core's process, but it links its
//! own copy of every crate it depends on. If it linked `sirius-core` it would
//! carry a second, unused copy of the whole core (scheduler, registry, loader,
//! logging), rebuild whenever the core changes, and could be tempted to touch
//! core statics that are not the running core's. So what a plugin needs at run
//! time lives here, in a leaf crate that depends only on `sirius-abi` and tokio:
//!
//! * [`io`]: [`io::IoContext`], a named tokio runtime of the plugin's own (a
//!   cdylib's tokio cannot see the host's runtime);
//! * [`burst`]: when a burst of calls has passed (memory given back then);
//! * [`translate`]: which codecs translate, and G.711 µ-law ↔ A-law, used both by
//!   the core's generic bridge and by a plugin relaying media natively.
//!
//! `sirius-core` re-exports both modules (`sirius_core::io`, `sirius_core::translate`).

pub mod burst;
pub mod io;
pub mod translate;
