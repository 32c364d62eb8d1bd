//! Work deferred to the end of a plugin thread's turn.
//!
//! Why: a dialplan waiting in `Dial` is woken when its callee rings and when
//! it answers. Those wakes come from chan_sip's SIP thread (it reports the
//! callee's `180` and `200` as state changes), and handing the plan to a PBX
//! pool worker costs a futex wake and two thread switches each time: at
//! 3,000 calls/s the pool workers were 13 % of the daemon's CPU, most of it
//! waking up to run a few lines of `Dial` (issue #11). The continuation is
//! short and only queues requests to the technology, so the thread that
//! raised the wake can run it itself, but not in the middle of the call that
//! raised it (the plugin is inside its own bookkeeping then, and the plan's
//! requests would come back into it). So the thread marks its turn:
//!
//! ```text
//!   turn_started ──► [deferring] ──wake──► queued here (not on the pool)
//!                         │
//!                    turn_ended ──► runs what was queued (and what that
//!                         │          queues in turn, a bounded number of
//!                         ▼          rounds; the rest goes elsewhere)
//!                    [not deferring] ──wake──► the pool, as before
//! ```
//!
//! A thread that never marks a turn (the test technology, a console thread,
//! a pool worker, a timer) keeps handing work to the pool. Work queued here
//! is never lost: if the turn's thread ends without `turn_ended`, what is
//! left goes elsewhere when its queue is dropped.

use std::cell::RefCell;
use std::sync::Arc;

/// Something that can run on the thread that woke it, or be handed on.
pub trait Deferred: Send + Sync {
    /// Runs it on this thread (at the end of the turn that deferred it).
    fn run_here(self: Arc<Self>);
    /// Hands it to where it would have gone without deferral (the pool).
    fn run_elsewhere(self: Arc<Self>);
}

/// How many rounds `turn_ended` runs: work queued by the work it runs is run
/// too (a plan that wakes another), up to this; the rest is handed on so a
/// turn cannot go on for ever.
const ROUNDS: usize = 8;

/// The deferred work of this thread's turn; `None` outside a turn.
struct Turn(Option<Vec<Arc<dyn Deferred>>>);

impl Drop for Turn {
    fn drop(&mut self) {
        for task in self.0.take().into_iter().flatten() {
            task.run_elsewhere();
        }
    }
}

thread_local! {
    static TURN: RefCell<Turn> = const { RefCell::new(Turn(None)) };
}

/// This thread starts a turn: [`defer`] queues here until [`turn_ended`].
pub fn turn_started() {
    TURN.with(|t| {
        let mut t = t.borrow_mut();
        if t.0.is_none() {
            t.0 = Some(Vec::new());
        }
    });
}

/// Queues `task` for the end of this thread's turn. Gives it back when the
/// thread is not in a turn (the caller sends it elsewhere).
pub fn defer(task: Arc<dyn Deferred>) -> Result<(), Arc<dyn Deferred>> {
    let mut task = Some(task);
    // `try_with`/`try_borrow_mut`: a thread whose locals are being destroyed,
    // or a wake from inside this module, gives the task back.
    let _ = TURN.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut() {
            if let Some(queue) = t.0.as_mut() {
                queue.extend(task.take());
            }
        }
    });
    match task {
        None => Ok(()),
        Some(task) => Err(task),
    }
}

/// Ends this thread's turn: runs what it deferred, then stops deferring.
pub fn turn_ended() {
    for _ in 0..ROUNDS {
        // Taken out, the queue left in place (empty): what the work defers
        // while it runs is queued for the next round.
        let batch = TURN.with(|t| t.borrow_mut().0.as_mut().map(std::mem::take));
        match batch {
            Some(batch) if !batch.is_empty() => {
                for task in batch {
                    task.run_here();
                }
            }
            _ => break,
        }
    }
    let rest = TURN.with(|t| t.borrow_mut().0.take());
    for task in rest.into_iter().flatten() {
        task.run_elsewhere();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Records where it ran; running here may defer `then` (one more task).
    struct Probe {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        then: Mutex<Option<Arc<dyn Deferred>>>,
    }

    impl Deferred for Probe {
        fn run_here(self: Arc<Self>) {
            self.log.lock().push(format!("{} here", self.name));
            if let Some(next) = self.then.lock().take() {
                if let Err(next) = defer(next) {
                    next.run_elsewhere();
                }
            }
        }
        fn run_elsewhere(self: Arc<Self>) {
            self.log.lock().push(format!("{} elsewhere", self.name));
        }
    }

    fn probe(
        name: &'static str,
        log: &Arc<Mutex<Vec<String>>>,
        then: Option<Arc<dyn Deferred>>,
    ) -> Arc<dyn Deferred> {
        Arc::new(Probe {
            name,
            log: log.clone(),
            then: Mutex::new(then),
        })
    }

    #[test]
    fn outside_a_turn_nothing_is_deferred() {
        let log = Arc::default();
        assert!(defer(probe("a", &log, None)).is_err());
        turn_ended(); // no turn: nothing to run
        assert!(log.lock().is_empty());
    }

    #[test]
    fn a_turn_runs_its_work_at_its_end_and_what_that_work_defers() {
        let log = Arc::new(Mutex::new(Vec::new()));
        turn_started();
        let second = probe("b", &log, None);
        assert!(defer(probe("a", &log, Some(second))).is_ok());
        assert!(log.lock().is_empty(), "nothing runs before the turn ends");
        turn_ended();
        assert_eq!(*log.lock(), ["a here", "b here"]);
        // The turn is over: the next wake goes elsewhere.
        assert!(defer(probe("c", &log, None)).is_err());
    }

    #[test]
    fn work_that_keeps_deferring_is_handed_on_after_the_last_round() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut chain: Option<Arc<dyn Deferred>> = None;
        let names = ["9", "8", "7", "6", "5", "4", "3", "2", "1", "0"];
        for name in names {
            chain = Some(probe(name, &log, chain));
        }
        turn_started();
        assert!(defer(chain.unwrap()).is_ok());
        turn_ended();
        let log = log.lock();
        assert_eq!(log.len(), 9, "{log:?}");
        assert!(log[..ROUNDS].iter().all(|l| l.ends_with("here")));
        assert_eq!(log[ROUNDS], "8 elsewhere");
    }

    #[test]
    fn a_thread_that_ends_mid_turn_hands_its_work_on() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        std::thread::spawn(move || {
            turn_started();
            assert!(defer(probe("a", &l, None)).is_ok());
        })
        .join()
        .unwrap();
        assert_eq!(*log.lock(), ["a elsewhere"]);
    }
}
