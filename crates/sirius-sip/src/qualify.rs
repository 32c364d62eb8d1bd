//! Qualify: OPTIONS pokes that measure a peer's round trip and reachability
//! (Asterisk's `sip_poke_peer`). Sans-IO: the caller sends the OPTIONS this
//! returns and reports the response or the poke timeout.
//!
//! Any response counts as an answer (a 404 or 401 still proves the peer is
//! there). A poke unanswered within twice `maxms` makes the peer UNREACHABLE;
//! an answer slower than `maxms` makes it LAGGED. Pokes repeat every
//! `freq_ok` while the peer is OK and every `freq_notok` otherwise.

use std::time::{Duration, Instant};

/// A peer's qualify status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    /// No answer yet.
    Unknown,
    /// Answered within maxms.
    Ok(u32),
    /// Answered, slower than maxms.
    Lagged(u32),
    /// No answer.
    Unreachable,
}

impl PeerStatus {
    /// The text `sip show peers` prints.
    pub fn text(self) -> String {
        match self {
            PeerStatus::Unknown => "UNKNOWN".into(),
            PeerStatus::Ok(ms) => format!("OK ({ms} ms)"),
            PeerStatus::Lagged(ms) => format!("LAGGED ({ms} ms)"),
            PeerStatus::Unreachable => "UNREACHABLE".into(),
        }
    }

    /// Whether calls may be placed to the peer.
    pub fn reachable(self) -> bool {
        !matches!(self, PeerStatus::Unreachable)
    }

    /// AMI `PeerStatus` word.
    pub fn event_word(self) -> &'static str {
        match self {
            PeerStatus::Unknown => "Unknown",
            PeerStatus::Ok(_) => "Reachable",
            PeerStatus::Lagged(_) => "Lagged",
            PeerStatus::Unreachable => "Unreachable",
        }
    }
}

/// A status change worth logging and publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    /// Before.
    pub from: PeerStatus,
    /// After.
    pub to: PeerStatus,
}

/// Qualify state of one peer.
#[derive(Debug, Clone)]
pub struct Qualify {
    maxms: u32,
    freq_ok: Duration,
    freq_notok: Duration,
    status: PeerStatus,
    sent_at: Option<Instant>,
    next_poke: Option<Instant>,
}

impl Qualify {
    /// Qualify with `maxms` (Asterisk's default 2000) and the two frequencies (60 s / 10 s).
    pub fn new(maxms: u32, freq_ok: Duration, freq_notok: Duration) -> Qualify {
        Qualify {
            maxms,
            freq_ok,
            freq_notok,
            status: PeerStatus::Unknown,
            sent_at: None,
            next_poke: None,
        }
    }

    /// Current status.
    pub fn status(&self) -> PeerStatus {
        self.status
    }

    /// The configured maxms.
    pub fn maxms(&self) -> u32 {
        self.maxms
    }

    /// Schedules the first poke at `at` (spread start-up pokes over time).
    pub fn schedule(&mut self, at: Instant) {
        self.next_poke = Some(at);
    }

    /// The next instant something happens (poke due, or poke timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.sent_at {
            Some(s) => Some(s + self.no_answer_after()),
            None => self.next_poke,
        }
    }

    fn no_answer_after(&self) -> Duration {
        Duration::from_millis(u64::from(self.maxms) * 2)
    }

    /// Marks a poke as sent now (the caller sends the OPTIONS). Also used by
    /// `sip qualify peer`, which pokes at once.
    pub fn poke_sent(&mut self, now: Instant) {
        self.sent_at = Some(now);
        self.next_poke = None;
    }

    /// Whether a poke is waiting for its answer.
    pub fn in_flight(&self) -> bool {
        self.sent_at.is_some()
    }

    fn set(&mut self, to: PeerStatus) -> Option<StatusChange> {
        let from = self.status;
        self.status = to;
        // A change of kind is reported; a new latency within OK is not.
        (std::mem::discriminant(&from) != std::mem::discriminant(&to))
            .then_some(StatusChange { from, to })
    }

    /// Any response to the poke arrived at `now`.
    pub fn on_response(&mut self, now: Instant) -> Option<StatusChange> {
        let sent = self.sent_at.take()?;
        let ms = u32::try_from(now.duration_since(sent).as_millis())
            .unwrap_or(u32::MAX)
            .max(1);
        let to = if ms <= self.maxms {
            PeerStatus::Ok(ms)
        } else {
            PeerStatus::Lagged(ms)
        };
        self.next_poke = Some(
            now + if matches!(to, PeerStatus::Ok(_)) {
                self.freq_ok
            } else {
                self.freq_notok
            },
        );
        self.set(to)
    }

    /// Runs the timers. Returns `(change, poke_now)`: a status change when a poke
    /// went unanswered, and whether a new poke is due.
    pub fn handle_timeout(&mut self, now: Instant) -> (Option<StatusChange>, bool) {
        if let Some(sent) = self.sent_at {
            if now >= sent + self.no_answer_after() {
                self.sent_at = None;
                self.next_poke = Some(now + self.freq_notok);
                return (self.set(PeerStatus::Unreachable), false);
            }
            return (None, false);
        }
        (None, self.next_poke.is_some_and(|t| t <= now))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // simulated clocks start from one real Instant
mod tests {
    use super::*;

    #[test]
    fn ok_lagged_unreachable_and_frequencies() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut q = Qualify::new(2000, Duration::from_secs(60), Duration::from_secs(10));
        q.schedule(t0);
        assert_eq!(q.handle_timeout(t0), (None, true));
        q.poke_sent(t0);
        let ch = q.on_response(t0 + ms(12)).unwrap();
        assert_eq!((ch.from, ch.to), (PeerStatus::Unknown, PeerStatus::Ok(12)));
        assert_eq!(q.status().text(), "OK (12 ms)");
        assert_eq!(
            q.poll_timeout(),
            Some(t0 + ms(12) + Duration::from_secs(60))
        );
        let t1 = t0 + ms(60_012);
        assert_eq!(q.handle_timeout(t1), (None, true));
        q.poke_sent(t1);
        assert_eq!(
            q.on_response(t1 + ms(15)),
            None,
            "still OK: no change reported"
        );
        let t2 = t1 + ms(15) + Duration::from_secs(60);
        q.poke_sent(t2);
        assert_eq!(
            q.on_response(t2 + ms(2500)).map(|c| c.to),
            Some(PeerStatus::Lagged(2500))
        );
        assert_eq!(q.status().text(), "LAGGED (2500 ms)");
        let t3 = t2 + ms(2500) + Duration::from_secs(10);
        assert_eq!(
            q.poll_timeout(),
            Some(t3),
            "LAGGED pokes at the not-OK frequency"
        );
        q.poke_sent(t3);
        assert_eq!(q.handle_timeout(t3 + ms(3999)), (None, false));
        let (ch, poke) = q.handle_timeout(t3 + ms(4000));
        assert_eq!(
            (ch.map(|c| c.to), poke),
            (Some(PeerStatus::Unreachable), false)
        );
        assert_eq!(q.status().text(), "UNREACHABLE");
        assert!(!q.status().reachable());
        assert_eq!(
            q.poll_timeout(),
            Some(t3 + ms(4000) + Duration::from_secs(10))
        );
        assert_eq!(
            q.on_response(t3 + ms(5000)),
            None,
            "a late answer to a timed-out poke is ignored"
        );
    }
}
