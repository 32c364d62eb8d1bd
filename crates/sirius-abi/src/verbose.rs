//! Asterisk's two kinds of informational line: a NOTICE (`log::info!`) is
//! something an admin should see in the record whatever the console shows
//! (a peer's status, a call refused by a limit); a VERBOSE line is one call's
//! progress ("-- Executing …", "-- Called …", "-- … answered …"), shown by
//! `core set verbose N` at level N or more and otherwise not produced at
//! all. At thousands of calls per second the per-call lines were most of
//! the log traffic, written even at `verbose = 0`; as verbose lines they
//! cost one comparison when nobody asked for them.
//!
//! A verbose line travels as an `info` record whose target is
//! `verbose:<level>` ([`verbose_level`] reads it), so it needs nothing new
//! in the plugin interface: the host's logger filters and labels it.

/// Logs one call-progress line at verbose level `$level` (1–4, Asterisk's
/// `ast_verb`): `verbose!(3, "    -- Called {dest}")`.
#[macro_export]
macro_rules! verbose {
    ($level:literal, $($arg:tt)+) => {
        ::log::info!(target: concat!("verbose:", stringify!($level)), $($arg)+)
    };
}

/// The verbose level of a log record's target, if it is a verbose line.
pub fn verbose_level(target: &str) -> Option<u32> {
    target.strip_prefix("verbose:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn targets_carry_the_level() {
        assert_eq!(super::verbose_level("verbose:3"), Some(3));
        assert_eq!(super::verbose_level("chan_sip::driver"), None);
        assert_eq!(super::verbose_level("verbose:x"), None);
    }
}
