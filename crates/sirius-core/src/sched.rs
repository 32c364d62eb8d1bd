//! The scheduler context (Asterisk's `ast_sched_context`).
//!
//! [`Scheduler`] is the timer queue without a clock: time is passed in, so the
//! timing contract is tested with simulated time and no sleeps. [`SchedThread`]
//! drives one with the real clock on a dedicated thread, as chan_sip's monitor
//! thread drives its `sched` context.
//!
//! Contract (Asterisk's `ast_sched_add_variable`): a callback returns 0 to stop,
//! or N to run again N ms after the instant it was *due* (not when it actually
//! ran), so a periodic timer does not drift; a due time already in the past is
//! clamped to now, so a stalled scheduler does not replay a burst of runs.
//!
//! ```text
//!   add(ms, cb) ──► [queued] ──due──► [running] ──returns N>0──► [queued at due+N]
//!                      │                  │
//!                   del(id)          returns 0 / del(id) during run
//!                      ▼                  ▼
//!                  [removed]          [removed]
//! ```

use parking_lot::{Condvar, Mutex};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Identifies a scheduled callback for [`Scheduler::del`]. Never reused.
pub type SchedId = u64;

/// A scheduled callback: returns 0 to stop, N to run again in N ms.
pub type SchedFn = Box<dyn FnMut() -> u32 + Send>;

struct Slot {
    generation: u64,
    /// `None` while the callback is running (it is moved out so that it can call
    /// back into the scheduler without holding the lock).
    callback: Option<SchedFn>,
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<(Instant, u64, SchedId)>>,
    slots: HashMap<SchedId, Slot>,
    next_id: SchedId,
    next_generation: u64,
}

impl Queue {
    fn push(&mut self, id: SchedId, due: Instant, callback: Option<SchedFn>) {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.heap.push(Reverse((due, generation, id)));
        self.slots.insert(
            id,
            Slot {
                generation,
                callback,
            },
        );
    }
}

/// A timer queue driven by an external clock.
#[derive(Default)]
pub struct Scheduler {
    queue: Mutex<Queue>,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// Schedules `cb` to run `delay_ms` after `now`.
    pub fn add(&self, now: Instant, delay_ms: u32, cb: SchedFn) -> SchedId {
        let mut q = self.queue.lock();
        q.next_id += 1;
        let id = q.next_id;
        q.push(id, now + Duration::from_millis(delay_ms.into()), Some(cb));
        id
    }

    /// Cancels a callback. Returns false if it is unknown or already finished.
    /// Cancelling a callback while it runs stops it from being re-armed.
    pub fn del(&self, id: SchedId) -> bool {
        self.queue.lock().slots.remove(&id).is_some()
    }

    /// Number of scheduled (or running) callbacks.
    pub fn len(&self) -> usize {
        self.queue.lock().slots.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the earliest callback is due (`ast_sched_wait`), if any.
    pub fn next_due(&self) -> Option<Instant> {
        let mut q = self.queue.lock();
        // Drop stale heap entries (cancelled or re-armed) so the answer is exact.
        while let Some(Reverse((due, generation, id))) = q.heap.peek().copied() {
            match q.slots.get(&id) {
                Some(s) if s.generation == generation && s.callback.is_some() => return Some(due),
                _ => {
                    q.heap.pop();
                }
            }
        }
        None
    }

    /// Time from `now` until the next callback is due; zero if one is overdue.
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.next_due().map(|d| d.saturating_duration_since(now))
    }

    /// Runs every callback due at or before `now` (`ast_sched_runq`); returns how many ran.
    /// Callbacks run without the lock held: they may add and delete timers, themselves included.
    pub fn run_due(&self, now: Instant) -> usize {
        let mut ran = 0;
        // Timers re-armed in this pass are queued after it, so that a timer whose next
        // due time is clamped to `now` runs once per pass rather than forever.
        let mut rearmed = Vec::new();
        loop {
            let (id, due, generation, mut cb) = {
                let mut q = self.queue.lock();
                let Some(Reverse((due, generation, id))) = q.heap.peek().copied() else {
                    break;
                };
                if due > now {
                    break;
                }
                q.heap.pop();
                let Some(slot) = q.slots.get_mut(&id) else {
                    continue;
                };
                if slot.generation != generation {
                    continue;
                }
                let Some(cb) = slot.callback.take() else {
                    continue;
                };
                (id, due, generation, cb)
            };
            let again = cb();
            ran += 1;
            let mut q = self.queue.lock();
            // Deleted during the run, or asked to stop: drop it.
            let still_ours = q.slots.get(&id).is_some_and(|s| s.generation == generation);
            if !still_ours || again == 0 {
                q.slots.remove(&id);
                continue;
            }
            rearmed.push((
                id,
                generation,
                (due + Duration::from_millis(again.into())).max(now),
                cb,
            ));
        }
        if !rearmed.is_empty() {
            let mut q = self.queue.lock();
            for (id, generation, next, cb) in rearmed {
                // Skip timers deleted by a later callback of this same pass.
                if q.slots.get(&id).is_some_and(|s| s.generation == generation) {
                    q.push(id, next, Some(cb));
                }
            }
        }
        ran
    }
}

/// A [`Scheduler`] run by its own thread against the real clock.
pub struct SchedThread {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    sched: Scheduler,
    wake: Mutex<bool>,
    cond: Condvar,
}

impl SchedThread {
    /// Starts the thread, named `name` (visible in `top -H`, `gdb`).
    pub fn start(name: &str) -> std::io::Result<SchedThread> {
        let shared = Arc::new(Shared {
            sched: Scheduler::new(),
            wake: Mutex::new(false),
            cond: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || loop {
                {
                    let mut stop = s.wake.lock();
                    if *stop {
                        return;
                    }
                    match s.sched.wait(Instant::now()) {
                        Some(d) if d.is_zero() => {}
                        Some(d) => {
                            s.cond.wait_for(&mut stop, d);
                        }
                        None => s.cond.wait(&mut stop),
                    }
                    if *stop {
                        return;
                    }
                }
                s.sched.run_due(Instant::now());
            })?;
        Ok(SchedThread {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Schedules `cb` in `delay_ms` from now.
    pub fn add(&self, delay_ms: u32, cb: SchedFn) -> SchedId {
        let id = self.shared.sched.add(Instant::now(), delay_ms, cb);
        // Take the lock so the notification cannot slip between the thread's
        // computing its wait and starting to wait.
        let _g = self.shared.wake.lock();
        self.shared.cond.notify_one();
        id
    }

    /// Cancels a callback.
    pub fn del(&self, id: SchedId) -> bool {
        self.shared.sched.del(id)
    }

    /// Scheduled callbacks.
    pub fn len(&self) -> usize {
        self.shared.sched.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.shared.sched.is_empty()
    }

    /// Stops the thread; pending callbacks are dropped without running.
    pub fn stop(&self) {
        *self.shared.wake.lock() = true;
        self.shared.cond.notify_all();
        if let Some(t) = self.thread.lock().take() {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for SchedThread {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Records the simulated instants at which a callback ran.
    fn recorder(
        t0: Instant,
        log: Arc<Mutex<Vec<u64>>>,
        now: Arc<Mutex<Instant>>,
        ret: impl Fn(usize) -> u32 + Send + 'static,
    ) -> SchedFn {
        Box::new(move || {
            let mut l = log.lock();
            l.push(now.lock().duration_since(t0).as_millis() as u64);
            ret(l.len())
        })
    }

    #[test]
    fn one_shot_runs_once_when_due() {
        let s = Scheduler::new();
        let t0 = Instant::now();
        let n = Arc::new(AtomicU32::new(0));
        let c = n.clone();
        s.add(
            t0,
            100,
            Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
                0
            }),
        );
        assert_eq!(s.wait(t0), Some(ms(100)));
        assert_eq!(s.run_due(t0 + ms(99)), 0);
        assert_eq!(s.run_due(t0 + ms(100)), 1);
        assert_eq!(s.run_due(t0 + ms(10_000)), 0);
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert!(s.is_empty());
        assert_eq!(s.wait(t0), None);
    }

    #[test]
    fn returning_n_rearms_relative_to_due_time_without_drift() {
        let s = Scheduler::new();
        let t0 = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let now = Arc::new(Mutex::new(t0));
        // Runs every 500 ms, stops after the 4th run.
        s.add(
            t0,
            500,
            recorder(
                t0,
                log.clone(),
                now.clone(),
                |n| if n < 4 { 500 } else { 0 },
            ),
        );
        // The driver is late by 30 ms each time: the schedule must not drift.
        for step in [530, 1030, 1530, 2030, 2530] {
            *now.lock() = t0 + ms(step);
            s.run_due(t0 + ms(step));
        }
        assert_eq!(*log.lock(), vec![530, 1030, 1530, 2030]);
        assert!(s.is_empty());
    }

    #[test]
    fn variable_interval_is_taken_from_the_return_value() {
        let s = Scheduler::new();
        let t0 = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let now = Arc::new(Mutex::new(t0));
        // Exponential back-off like a SIP retransmission: 500, 1000, 2000, stop.
        s.add(
            t0,
            500,
            recorder(t0, log.clone(), now.clone(), |n| match n {
                1 => 1000,
                2 => 2000,
                _ => 0,
            }),
        );
        for t in (0..=4000).step_by(10) {
            *now.lock() = t0 + ms(t);
            s.run_due(t0 + ms(t));
        }
        assert_eq!(*log.lock(), vec![500, 1500, 3500]);
    }

    #[test]
    fn a_stalled_driver_does_not_replay_missed_periods() {
        let s = Scheduler::new();
        let t0 = Instant::now();
        let log = Arc::new(Mutex::new(Vec::new()));
        let now = Arc::new(Mutex::new(t0));
        s.add(t0, 100, recorder(t0, log.clone(), now.clone(), |_| 100));
        *now.lock() = t0 + ms(1000);
        assert_eq!(s.run_due(t0 + ms(1000)), 1, "one run, not ten");
        assert_eq!(s.wait(t0 + ms(1000)), Some(ms(0)));
        // Next due is clamped to now (1000), so it runs again at 1000 and then at 1100.
        assert_eq!(s.run_due(t0 + ms(1000)), 1);
        *now.lock() = t0 + ms(1100);
        assert_eq!(s.run_due(t0 + ms(1100)), 1);
        assert_eq!(*log.lock(), vec![1000, 1000, 1100]);
    }

    #[test]
    fn del_cancels_before_and_during_a_run() {
        let s = Arc::new(Scheduler::new());
        let t0 = Instant::now();
        let n = Arc::new(AtomicU32::new(0));
        let c = n.clone();
        let id = s.add(
            t0,
            10,
            Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
                10
            }),
        );
        assert!(s.del(id));
        assert!(!s.del(id), "second delete reports nothing to delete");
        assert_eq!(s.run_due(t0 + ms(100)), 0);
        assert_eq!(n.load(Ordering::SeqCst), 0);

        // A callback that deletes itself while running is not re-armed.
        let id_cell = Arc::new(Mutex::new(0));
        let (s2, cell, c) = (s.clone(), id_cell.clone(), n.clone());
        let id = s.add(
            t0,
            10,
            Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
                assert!(s2.del(*cell.lock()));
                10
            }),
        );
        *id_cell.lock() = id;
        assert_eq!(s.run_due(t0 + ms(10)), 1);
        assert_eq!(s.run_due(t0 + ms(1000)), 0);
        assert_eq!(n.load(Ordering::SeqCst), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn callbacks_may_schedule_more_work_and_order_is_by_due_time() {
        let s = Arc::new(Scheduler::new());
        let t0 = Instant::now();
        let order = Arc::new(Mutex::new(Vec::new()));
        for (delay, tag) in [(30u32, "c"), (10, "a"), (20, "b")] {
            let o = order.clone();
            s.add(
                t0,
                delay,
                Box::new(move || {
                    o.lock().push(tag);
                    0
                }),
            );
        }
        let (s2, o) = (s.clone(), order.clone());
        s.add(
            t0,
            15,
            Box::new(move || {
                let o2 = o.clone();
                // Added from inside a callback, relative to the simulated instant it is given.
                s2.add(
                    t0 + ms(15),
                    10,
                    Box::new(move || {
                        o2.lock().push("nested");
                        0
                    }),
                );
                0
            }),
        );
        assert_eq!(s.run_due(t0 + ms(100)), 5);
        assert_eq!(*order.lock(), vec!["a", "b", "nested", "c"]);
    }

    #[test]
    fn sched_thread_runs_real_timers_and_stops() {
        let t = SchedThread::start("sched-test").expect("thread");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut count = 0;
        t.add(
            1,
            Box::new(move || {
                count += 1;
                tx.send(count).ok();
                if count < 3 {
                    1
                } else {
                    0
                }
            }),
        );
        for expect in 1..=3 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(expect));
        }
        t.stop();
        assert!(t.is_empty());
    }
}
