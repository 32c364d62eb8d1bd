//! The open-files limit (Asterisk's `maxfiles` in asterisk.conf).
//!
//! Every call leg holds an RTP and an RTCP socket, so a PBX with 10,000
//! calls up needs 40,000 descriptors for media alone, far past the usual
//! soft limit of 1,024. Sirius raises its soft limit to the hard limit at
//! start (any process may), or to `maxfiles` when set (raising the hard
//! limit too, which needs root or CAP_SYS_RESOURCE).

/// The soft and hard limits on open files (`rlim_t` is `u64` on the 64-bit
/// Linux targets Sirius builds for).
pub fn open_files() -> std::io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `r`, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

fn set_open_files(soft: u64, hard: u64) -> std::io::Result<()> {
    let r = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one rlimit from `r`, which outlives the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the open-files limit: to `maxfiles` (soft and hard) when it is
/// set, else the soft limit to the hard one. Returns the soft limit in
/// force afterwards; a refused raise is an error and leaves the limits alone.
pub fn raise_open_files(maxfiles: u64) -> std::io::Result<u64> {
    let (soft, hard) = open_files()?;
    let (want_soft, want_hard) = if maxfiles > 0 {
        (maxfiles, hard.max(maxfiles))
    } else {
        (hard, hard)
    };
    if want_soft > soft || want_hard > hard {
        set_open_files(want_soft, want_hard)?;
    }
    Ok(open_files()?.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let (_, hard) = super::open_files().unwrap();
        assert_eq!(super::raise_open_files(0).unwrap(), hard);
        assert_eq!(super::open_files().unwrap(), (hard, hard));
    }
}
