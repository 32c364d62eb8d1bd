//! RFC 4028 session timers: what a request or response asks for, what we
//! grant, and when the next refresh or the expiry falls due. Pure
//! functions over messages and settings; the endpoint arms the deadlines
//! and sends the refreshes (`dialog.rs`).
//!
//! ```text
//!            INVITE/2xx negotiate (interval, refresher)
//!                          │
//!          ┌───────────────┴────────────────┐
//!   we refresh                        they refresh
//!   every interval/2:                 a refresh (re-INVITE/UPDATE) must
//!   UPDATE (re-INVITE if the          arrive before interval − min(32 s,
//!   far end lacks UPDATE) ─┐          interval/3) ─┐
//!       2xx: re-armed ◀────┘              refresh: re-armed ◀─┘
//!       408/481/timeout: BYE              none in time: BYE (expired)
//! ```
//!
//! A `refresher` parameter names a side of the transaction that carries
//! it: `uac` is whoever sent that request. So the same session reads
//! `refresher=uas` in the 200 we send for an INVITE and `refresher=uac` in
//! the UPDATE we send to refresh it: both say "we refresh".

use crate::config::{Refresher, SessionTimers, Timers, MIN_SESSION_INTERVAL};
use sirius_sip::message::{HeaderName, Message};
use std::time::{Duration, Instant};

/// The session timer of one call, once negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionTimer {
    /// The session interval, seconds.
    pub interval: u32,
    /// We send the refreshes; else the far end does and we watch for them.
    pub we_refresh: bool,
    /// The far end supports timers (`Supported: timer`): our requests and
    /// responses then carry `Require: timer`.
    pub peer_supports: bool,
}

impl SessionTimer {
    /// When the next refresh is due (we refresh, at half the interval), or
    /// when the session expires without one (RFC 4028 §10: the interval
    /// less a third of it, at most 32 s), counting from the last refresh.
    pub fn due(&self, from: Instant) -> Instant {
        let i = Duration::from_secs(u64::from(self.interval.max(MIN_SESSION_INTERVAL)));
        if self.we_refresh {
            from + i / 2
        } else {
            from + i - (i / 3).min(Duration::from_secs(32))
        }
    }

    /// The `Session-Expires` value for a message of a transaction in which
    /// we are the UAC (`we_uac`) or the UAS.
    pub fn header(&self, we_uac: bool) -> String {
        let side = if self.we_refresh == we_uac {
            "uac"
        } else {
            "uas"
        };
        format!("{};refresher={side}", self.interval)
    }

    /// The timer headers of a request of ours that refreshes the session
    /// (a refresh, or any re-INVITE: without them a far end running a
    /// timer would switch it off): `Supported`, `Session-Expires` (we are
    /// its UAC), `Min-SE`.
    pub fn stamp_request(&self, m: &mut Message, minse: u32) {
        m.push(HeaderName::Supported, "timer");
        self.stamp(m, true);
        m.push(HeaderName::MinSE, minse.to_string());
    }

    /// Adds `Session-Expires` (and `Require: timer` when the far end
    /// supports it) to a message we send.
    pub fn stamp(&self, m: &mut Message, we_uac: bool) {
        m.push(HeaderName::SessionExpires, self.header(we_uac));
        if self.peer_supports {
            m.push(HeaderName::Require, "timer");
        }
    }
}

/// What a message says about session timers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    /// `Session-Expires` delta-seconds.
    pub interval: Option<u32>,
    /// Its `refresher` parameter: `Some(true)` for uac.
    pub refresher_uac: Option<bool>,
    /// `Min-SE`.
    pub min_se: Option<u32>,
    /// `timer` in `Supported` or `Require`.
    pub supported: bool,
}

/// Reads `Session-Expires`, `Min-SE` and the `timer` option tag (compact
/// `x` is the same header to the parser).
pub(crate) fn asked(m: &Message) -> Asked {
    let se = m.headers.get(&HeaderName::SessionExpires);
    let interval = se.and_then(|v| v.split(';').next()?.trim().parse().ok());
    let refresher_uac = se.and_then(|v| {
        v.split(';').skip(1).find_map(|p| {
            let (k, val) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("refresher")
                .then(|| val.trim().eq_ignore_ascii_case("uac"))
        })
    });
    let min_se = m
        .headers
        .get(&HeaderName::MinSE)
        .and_then(|v| v.split(';').next()?.trim().parse().ok());
    let tag = |name| {
        m.headers
            .values(&name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("timer"))
    };
    Asked {
        interval,
        refresher_uac,
        min_se,
        supported: tag(HeaderName::Supported) || tag(HeaderName::Require),
    }
}

/// What we do with a request the far end sent (INVITE, re-INVITE, UPDATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// No timer for this session.
    None,
    /// `422 Session Interval Too Small`, with this `Min-SE`.
    TooSmall(u32),
    /// Run this timer; the response carries it.
    Run(SessionTimer),
}

/// The UAS side of RFC 4028 §9: we may lower the interval asked for (not
/// below either side's Min-SE), refuse one below our Min-SE with 422, keep
/// the refresher asked for, choose it otherwise (only ourselves when the
/// far end does not support timers), and with `originate` grant a timer
/// nobody asked for.
pub(crate) fn grant(t: &Timers, a: &Asked) -> Grant {
    if t.mode == SessionTimers::Refuse {
        return Grant::None;
    }
    let (interval, refresher_uac) = match a.interval {
        // RFC 4028 §9: 422 only for a caller that supports timers; for
        // one that does not, the interval is raised and we refresh.
        Some(se) if se < t.minse && !a.supported => (t.minse, Some(false)),
        Some(se) if se < t.minse => return Grant::TooSmall(t.minse),
        Some(se) => {
            let floor = a.min_se.unwrap_or(MIN_SESSION_INTERVAL).max(t.minse);
            (se.min(t.expires).max(floor).min(se), a.refresher_uac)
        }
        None if t.mode == SessionTimers::Originate => (t.expires, None),
        None => return Grant::None,
    };
    let we_refresh = match refresher_uac {
        Some(uac) => !uac,
        None if a.supported => t.refresher == Refresher::Uas,
        None => true,
    };
    Grant::Run(SessionTimer {
        interval,
        we_refresh,
        peer_supports: a.supported,
    })
}

/// The timer headers our INVITE carries (RFC 4028 §7.1): with `originate`,
/// the interval we want and our Min-SE (`Supported: timer`, with `accept`
/// too, is added with the other option tags by the caller).
pub(crate) fn offer(t: &Timers, m: &mut Message, interval: Option<u32>) {
    // (`Supported: timer` is the caller's to add, with the other tags.)
    match t.mode {
        SessionTimers::Refuse | SessionTimers::Accept => {}
        SessionTimers::Originate => {
            let se = interval.unwrap_or(t.expires);
            m.push(HeaderName::SessionExpires, se.to_string());
            m.push(HeaderName::MinSE, t.minse.min(se).to_string());
        }
    }
}

/// The timer a 2xx to our INVITE sets up (RFC 4028 §7.2): the interval and
/// refresher it names; without `Session-Expires`, none — unless we
/// `originate`, and then we refresh at the interval we asked for.
pub(crate) fn accepted(
    t: &Timers,
    ok: &Message,
    asked_interval: Option<u32>,
) -> Option<SessionTimer> {
    if t.mode == SessionTimers::Refuse {
        return None;
    }
    let a = asked(ok);
    match a.interval {
        Some(interval) => Some(SessionTimer {
            // Never below RFC 4028's minimum (a Session-Expires of 0 would
            // have us refresh in a tight loop).
            interval: interval.max(t.minse).max(MIN_SESSION_INTERVAL),
            // RFC 4028 §9: the UAS always names the refresher; if it does
            // not, the refreshes are ours.
            we_refresh: a.refresher_uac.unwrap_or(true),
            // A proxy may have put Session-Expires in for a UAS without
            // timers: only `Require: timer` in the 2xx says the UAS has them.
            peer_supports: a.supported,
        }),
        None if t.mode == SessionTimers::Originate => Some(SessionTimer {
            interval: asked_interval.unwrap_or(t.expires),
            we_refresh: true,
            peer_supports: false,
        }),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sirius_sip::message::{parse_datagram, Limits};

    fn timers(mode: SessionTimers) -> Timers {
        Timers {
            mode,
            expires: 1800,
            minse: 90,
            refresher: Refresher::Uas,
            rtptimeout: 0,
            rtpholdtimeout: 0,
        }
    }

    fn msg(extra: &str) -> Message {
        let t = format!(
            "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        parse_datagram(t.as_bytes(), &Limits::default()).unwrap()
    }

    #[test]
    fn reads_what_a_request_asks_for_in_long_and_compact_form() {
        let a = asked(&msg(
            "Session-Expires: 600;refresher=uac\r\nMin-SE: 120\r\nSupported: 100rel, timer\r\n",
        ));
        assert_eq!(
            a,
            Asked {
                interval: Some(600),
                refresher_uac: Some(true),
                min_se: Some(120),
                supported: true
            }
        );
        let a = asked(&msg("x: 300\r\nk: timer\r\n"));
        assert_eq!(
            (a.interval, a.refresher_uac, a.supported),
            (Some(300), None, true)
        );
    }

    #[test]
    fn the_uas_grants_lowers_refuses_or_stays_out() {
        let accept = timers(SessionTimers::Accept);
        // Below our Min-SE: 422 naming it, to a caller that supports
        // timers; raised, with us refreshing, for one that does not.
        assert_eq!(
            grant(
                &accept,
                &asked(&msg("Session-Expires: 60\r\nSupported: timer\r\n"))
            ),
            Grant::TooSmall(90)
        );
        assert_eq!(
            grant(&accept, &asked(&msg("Session-Expires: 60\r\n"))),
            Grant::Run(SessionTimer {
                interval: 90,
                we_refresh: true,
                peer_supports: false
            })
        );
        // Above our maximum: lowered; the refresher asked for is kept.
        assert_eq!(
            grant(
                &accept,
                &asked(&msg(
                    "Session-Expires: 3600;refresher=uac\r\nSupported: timer\r\n"
                ))
            ),
            Grant::Run(SessionTimer {
                interval: 1800,
                we_refresh: false,
                peer_supports: true
            })
        );
        // No refresher named, timers supported: ours to choose (uas: us).
        assert_eq!(
            grant(
                &accept,
                &asked(&msg("Session-Expires: 600\r\nSupported: timer\r\n"))
            ),
            Grant::Run(SessionTimer {
                interval: 600,
                we_refresh: true,
                peer_supports: true
            })
        );
        // Not asked: accept stays out, originate grants one and refreshes
        // itself for a caller without timer support.
        assert_eq!(grant(&accept, &asked(&msg(""))), Grant::None);
        assert_eq!(
            grant(&timers(SessionTimers::Originate), &asked(&msg(""))),
            Grant::Run(SessionTimer {
                interval: 1800,
                we_refresh: true,
                peer_supports: false
            })
        );
        assert_eq!(
            grant(
                &timers(SessionTimers::Refuse),
                &asked(&msg("Session-Expires: 600\r\n"))
            ),
            Grant::None
        );
    }

    #[test]
    fn the_refresher_is_named_from_each_transactions_point_of_view() {
        let t = SessionTimer {
            interval: 600,
            we_refresh: true,
            peer_supports: true,
        };
        assert_eq!(
            t.header(false),
            "600;refresher=uas",
            "our 200 to their INVITE"
        );
        assert_eq!(t.header(true), "600;refresher=uac", "our own UPDATE");
        let theirs = SessionTimer {
            we_refresh: false,
            ..t
        };
        assert_eq!(theirs.header(false), "600;refresher=uac");
    }

    #[test]
    fn refreshes_fall_at_half_the_interval_and_expiry_a_third_early_at_most_32_s() {
        let t0 = Instant::now();
        let ours = SessionTimer {
            interval: 90,
            we_refresh: true,
            peer_supports: true,
        };
        assert_eq!(ours.due(t0) - t0, Duration::from_secs(45));
        let theirs = SessionTimer {
            we_refresh: false,
            ..ours
        };
        assert_eq!(theirs.due(t0) - t0, Duration::from_secs(60));
        let long = SessionTimer {
            interval: 1800,
            ..theirs
        };
        assert_eq!(long.due(t0) - t0, Duration::from_secs(1768));
    }

    #[test]
    fn a_2xx_sets_up_the_uacs_timer() {
        let accept = timers(SessionTimers::Accept);
        let ok = |extra: &str| {
            let t = format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n");
            parse_datagram(t.as_bytes(), &Limits::default()).unwrap()
        };
        assert_eq!(
            accepted(
                &accept,
                &ok("Session-Expires: 900;refresher=uas\r\nRequire: timer\r\n"),
                None
            ),
            Some(SessionTimer {
                interval: 900,
                we_refresh: false,
                peer_supports: true
            })
        );
        assert_eq!(accepted(&accept, &ok(""), None), None);
        assert_eq!(
            accepted(&timers(SessionTimers::Originate), &ok(""), Some(600)),
            Some(SessionTimer {
                interval: 600,
                we_refresh: true,
                peer_supports: false
            })
        );
    }
}
