//! The PBX pool: every call's dialplan is a task on a fixed set of worker
//! threads, one per core (a tokio multi-thread runtime the dialplan engine
//! owns), instead of an OS thread per call.
//!
//! Why: a thread per call means a thread per *waiting* call. Under load up
//! to 1,830 dialplan threads slept in Dial waiting for an answer, and 45 %
//! of their time went to futexes and context switches (issue #11). A task
//! that waits is a few hundred bytes in a waker list
//! ([`sirius_core::channels::Signal::raised`]) and a timer entry; the
//! workers only run plans that have something to do.
//!
//! Why tokio and not a hand-made executor: the workspace already has it,
//! its timer wheel gives each waiting application its timeout without a
//! thread, and a runtime built with `worker_threads(n)` starts exactly `n`
//! threads for the plans. A technology method a plan calls must answer at
//! once (chan_sip queues `call` and `native_bridge` to its driver): a
//! method that waited for its driver would hold one of a few workers. (The
//! bridge once went through tokio's `block_in_place` for that; under load
//! each bridge then handed the worker's queue to another thread, and the
//! profile at 4,000 calls/s was a third task switching.)
//!
//! No hop for simple plans: [`PoolHandle::start`] first runs the plan on
//! the thread that starts it (chan_sip's driver, in `pbx_start`) until the
//! plan reaches an application that waits or asks its technology for a
//! reply ([`to_pool`]); only then does it move to the pool. `Answer`,
//! `Hangup`, `Busy`, `Set`, `Goto`… never leave the starting thread, so
//! such a call costs no wake-up of another thread at all. `Dial` requests
//! and calls its callees there too (chan_sip queues both) and moves to the
//! pool when it first waits for them; `Echo` never leaves. A technology
//! method that waited for its own driver could not be called there: the
//! driver would be waiting for itself.
//!
//! No hop when a plugin thread wakes a plan: a Dial woken by its callee's
//! ringing or answer (chan_sip's SIP thread reporting them) runs on that
//! thread at the end of its turn ([`sirius_core::deferred`]), not on a
//! worker woken for a few lines of `Dial`: at 3,000 calls/s those two wakes
//! a call were most of the workers' 13 % of the daemon's CPU.
//!
//! Panics: each poll of a plan (the inline one included) runs under
//! `catch_unwind`; a panicking application ends its own call's task and
//! nothing else (the panic hook has already reported it), as the old
//! per-call threads did.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// The name of the pool's worker threads (`top -H`, `/proc/<pid>/task/*/comm`).
pub const THREAD_NAME: &str = "pbx";

/// Why the pool could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The runtime's worker threads could not be created.
    #[error("cannot start the PBX pool of {threads} threads: {source}")]
    Start {
        /// How many workers were asked for.
        threads: usize,
        /// What the OS said.
        source: std::io::Error,
    },
}

thread_local! {
    /// Whether this thread is one of a pool's workers: [`to_pool`] is then
    /// already where it needs to be.
    static ON_POOL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A boxed plan: what the pool runs.
type Plan = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The worker threads and their runtime. Dropping it stops the workers
/// without waiting; that is allowed even from inside a task, where the
/// last reference to the core, and so to the engine, may go. A plan that
/// waits is kept by the wakers it left (a channel's watch list, a timer),
/// not by the pool: it is dropped, its watches undone by their guards, when
/// those go (its channels end) or when a wake finds the pool gone.
pub struct Pool {
    runtime: Option<tokio::runtime::Runtime>,
    handle: PoolHandle,
    size: usize,
    started: Arc<AtomicUsize>,
}

impl Pool {
    /// One worker per core (`std::thread::available_parallelism`).
    pub fn per_core() -> Result<Pool, PoolError> {
        Pool::with_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// A pool of exactly `threads` workers (at least one).
    pub fn with_threads(threads: usize) -> Result<Pool, PoolError> {
        let threads = threads.max(1);
        let started = Arc::new(AtomicUsize::new(0));
        let count = started.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(THREAD_NAME)
            .enable_time()
            .on_thread_start(move || {
                count.fetch_add(1, Ordering::Relaxed);
                ON_POOL.with(|p| p.set(true));
            })
            .build()
            .map_err(|source| PoolError::Start { threads, source })?;
        Ok(Pool {
            handle: PoolHandle(runtime.handle().clone()),
            runtime: Some(runtime),
            size: threads,
            started,
        })
    }

    /// What starts plans on this pool.
    pub fn handle(&self) -> &PoolHandle {
        &self.handle
    }

    /// How many workers the pool has.
    pub fn size(&self) -> usize {
        self.size
    }

    /// How many threads the pool has started so far: [`Pool::size`]
    /// workers, however many calls wait or bridge.
    pub fn threads_started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Starts plans on a [`Pool`]; cheap to clone (a call's task keeps one to
/// start its `h` extension later).
#[derive(Clone)]
pub struct PoolHandle(tokio::runtime::Handle);

impl PoolHandle {
    /// Runs `plan` on the calling thread until it first has to wait (or
    /// awaits [`to_pool`]), then on the pool. A plan that never waits runs
    /// entirely here: no other thread is woken for it.
    pub fn start(&self, plan: impl Future<Output = ()> + Send + 'static) {
        let task = PlanTask::new(self, Box::pin(plan));
        task.state.store(RUNNING, Ordering::Release);
        // Inside the runtime's context, so a timer made by the first steps
        // registers with the pool's clock.
        let _context = self.0.enter();
        task.poll_here();
    }

    /// Runs `plan` on the pool from its start (work handed on from a
    /// thread that must not run it, like a channel registry hook).
    pub fn spawn(&self, plan: impl Future<Output = ()> + Send + 'static) {
        std::task::Wake::wake(PlanTask::new(self, Box::pin(plan)));
    }
}

/// A plan and what runs it: polled on the thread that started it, then on
/// a pool worker each time it is woken.
///
/// Why not a tokio task from the first wait on: a plan that had to wait
/// (Dial ringing its callees) was spawned at once, and a worker woke only
/// to poll it, find nothing had happened yet and register its waker: a
/// thread switch per call for nothing. Here the starting thread's poll
/// already registers the plan's own waker, and a worker first runs it when
/// there is something to do (the callee rings or answers, a timer expires).
///
/// ```text
///             start (polled on the starting thread)
///                 |
///   IDLE --wake--> QUEUED --a worker polls--> RUNNING --Pending--> IDLE
///                     (or the plugin thread that woke it, at its turn's end)
///    ^                ^                        |   |
///    |                +--Pending, woken meanwhile   +--wake--> NOTIFIED (no second poller)
///    |                   (NOTIFIED)                         |
///    +------------------------------------------------------+ Ready / panic: DONE
/// ```
struct PlanTask {
    /// `None` once the plan has finished (or panicked). Only one thread
    /// polls at a time (`state`), so the lock is never waited on.
    plan: parking_lot::Mutex<Option<Plan>>,
    /// [`IDLE`], [`QUEUED`], [`RUNNING`], [`NOTIFIED`] or [`DONE`].
    state: AtomicU8,
    pool: tokio::runtime::Handle,
}

/// Waiting for a wake.
const IDLE: u8 = 0;
/// A poll is queued on the pool: more wakes add nothing.
const QUEUED: u8 = 1;
/// Being polled.
const RUNNING: u8 = 2;
/// Woken while being polled: the poller queues one more poll when it ends
/// (a worker sent to poll at once would only wait for the running poll).
const NOTIFIED: u8 = 3;
/// Finished: wakes are ignored.
const DONE: u8 = 4;

impl PlanTask {
    fn new(pool: &PoolHandle, plan: Plan) -> Arc<PlanTask> {
        Arc::new(PlanTask {
            plan: parking_lot::Mutex::new(Some(plan)),
            state: AtomicU8::new(IDLE),
            pool: pool.0.clone(),
        })
    }

    /// Polls the plan once with its own waker, on this thread (the state
    /// already `RUNNING`). A panic ends this plan (the panic hook has
    /// already reported it), not the thread's other work.
    fn poll_here(self: &Arc<Self>) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let done = {
            let mut slot = self.plan.lock();
            match slot.as_mut() {
                None => true,
                Some(plan) => {
                    match catch_unwind(AssertUnwindSafe(|| plan.as_mut().poll(&mut cx))) {
                        Ok(Poll::Pending) => false,
                        Ok(Poll::Ready(())) | Err(_) => {
                            *slot = None;
                            true
                        }
                    }
                }
            }
        };
        if done {
            self.state.store(DONE, Ordering::Release);
            return;
        }
        // Pending: back to idle, unless a wake came meanwhile.
        if self
            .state
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            self.state.store(QUEUED, Ordering::Release);
            self.queue();
        }
    }

    /// One poll of this plan on the pool.
    fn queue(self: &Arc<Self>) {
        let task = self.clone();
        drop(self.pool.spawn(async move {
            task.state.store(RUNNING, Ordering::Release);
            task.poll_here();
        }));
    }
}

impl PlanTask {
    /// A woken plan's next poll: at the end of this thread's turn when it is
    /// a plugin thread in one (chan_sip reporting a callee's ringing or
    /// answer: see [`sirius_core::deferred`]), else on the pool.
    fn schedule(self: &Arc<Self>) {
        if let Err(task) = sirius_core::deferred::defer(self.clone()) {
            task.run_elsewhere();
        }
    }
}

impl sirius_core::deferred::Deferred for PlanTask {
    fn run_here(self: Arc<Self>) {
        self.state.store(RUNNING, Ordering::Release);
        // As in `PoolHandle::start`: timers the plan makes register with the
        // pool's clock.
        let _context = self.pool.enter();
        self.poll_here();
    }

    fn run_elsewhere(self: Arc<Self>) {
        self.queue();
    }
}

impl std::task::Wake for PlanTask {
    fn wake(self: Arc<Self>) {
        std::task::Wake::wake_by_ref(&self);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => QUEUED,
                RUNNING => NOTIFIED,
                _ => return, // queued, notified or done: nothing to add
            };
            match self
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == QUEUED => return self.schedule(),
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }
}

/// Resolves at once on a pool worker; elsewhere (the thread that started
/// the plan) it is pending once, which moves the plan to the pool (see
/// [`PoolHandle::start`]).
pub fn to_pool() -> impl Future<Output = ()> {
    std::future::poll_fn(|cx| {
        if ON_POOL.with(|p| p.get()) {
            Poll::Ready(())
        } else {
            // Woken at once, as `yield_now`: whoever polls it goes on.
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

/// Whether the calling thread is a pool worker.
pub fn on_pool() -> bool {
    ON_POOL.with(|p| p.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_plan_that_never_waits_runs_on_the_starting_thread() {
        let pool = Pool::with_threads(2).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.handle().start(async move {
            tx.send(std::thread::current().id()).unwrap();
        });
        assert_eq!(rx.try_recv().unwrap(), std::thread::current().id());
    }

    #[test]
    fn a_plan_moves_to_the_pool_when_it_asks_and_a_panic_spares_the_workers() {
        let pool = Pool::with_threads(1).unwrap();
        let (tx, rx) = mpsc::channel();
        let report = tx.clone();
        pool.handle().start(async move {
            report.send(("before", on_pool())).unwrap();
            to_pool().await;
            report.send(("after", on_pool())).unwrap();
            panic!("an application's bug");
        });
        assert_eq!(rx.recv().unwrap(), ("before", false));
        assert_eq!(rx.recv().unwrap(), ("after", true));
        // The worker survived its task's panic and runs the next plan.
        pool.handle()
            .spawn(async move { tx.send(("next", on_pool())).unwrap() });
        assert_eq!(rx.recv().unwrap(), ("next", true));
        assert_eq!(pool.threads_started(), 1);
        // A panic on the starting thread is caught there too.
        pool.handle().start(async { panic!("inline") });
    }
    #[test]
    fn a_waiting_plan_is_run_on_the_pool_only_once_woken() {
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        // A future pending until `gate` is opened, counting its polls and
        // keeping the last waker it was given.
        struct Gate {
            open: Arc<AtomicBool>,
            polls: Arc<AtomicUsize>,
            waker: Arc<parking_lot::Mutex<Option<Waker>>>,
        }
        impl Future for Gate {
            type Output = ();
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                self.polls.fetch_add(1, Ordering::SeqCst);
                if self.open.load(Ordering::SeqCst) {
                    return Poll::Ready(());
                }
                *self.waker.lock() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
        let pool = Pool::with_threads(1).unwrap();
        let (open, polls) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let waker = Arc::new(parking_lot::Mutex::new(None::<Waker>));
        let gate = Gate {
            open: open.clone(),
            polls: polls.clone(),
            waker: waker.clone(),
        };
        let (tx, rx) = mpsc::channel();
        pool.handle().start(async move {
            gate.await;
            tx.send(on_pool()).unwrap();
        });
        // Polled once, here; nothing queued on the pool: a worker that ran
        // it now would poll it a second time for nothing.
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        let check = pool.handle().clone();
        let (seen_tx, seen_rx) = mpsc::channel();
        check.spawn(async move { seen_tx.send(()).unwrap() });
        seen_rx.recv().unwrap(); // the worker has run what was queued
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // Woken twice: the plan runs to its end once.
        open.store(true, Ordering::SeqCst);
        let w = waker.lock().take().expect("the plan left its waker");
        w.wake_by_ref();
        w.wake();
        assert!(rx.recv().unwrap(), "the woken plan runs on the pool");
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }
}
