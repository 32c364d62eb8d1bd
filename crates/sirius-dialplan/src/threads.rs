//! PBX threads: each call's dialplan runs on a thread of its own, as in
//! Asterisk, but threads are reused. Starting an OS thread per call costs a
//! `clone(2)` and a fresh stack on the SIP monitor's hot path (it starts the
//! dialplan); a thread that finished a call waits a while for the next one
//! instead, newest first so its stack is still warm.

use parking_lot::Mutex;
use std::sync::mpsc;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// How long a thread without a call waits for one before it exits.
const IDLE_FOR: Duration = Duration::from_secs(10);

struct Idle {
    id: u64,
    jobs: mpsc::Sender<Job>,
}

static IDLE: Mutex<Vec<Idle>> = Mutex::new(Vec::new());
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Runs `job` on an idle PBX thread, or on a new one.
pub fn run(job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let mut job: Job = Box::new(job);
    loop {
        let Some(idle) = IDLE.lock().pop() else { break };
        match idle.jobs.send(job) {
            Ok(()) => return Ok(()),
            // That thread is gone: try the next one.
            Err(mpsc::SendError(j)) => job = j,
        }
    }
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::thread::Builder::new()
        .name("pbx".into())
        .spawn(move || worker(id, job))
        .map(|_| ())
}

fn worker(id: u64, first: Job) {
    let (tx, rx) = mpsc::channel::<Job>();
    let mut job = first;
    loop {
        // A panicking application must not take the pool thread's later
        // calls with it; the panic is already reported by the hook.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        IDLE.lock().push(Idle {
            id,
            jobs: tx.clone(),
        });
        job = match rx.recv_timeout(IDLE_FOR) {
            Ok(j) => j,
            Err(_) => {
                let mut idle = IDLE.lock();
                match idle.iter().position(|i| i.id == id) {
                    // Still listed: nobody can hand us a call any more.
                    Some(pos) => {
                        idle.swap_remove(pos);
                        return;
                    }
                    // Taken just as we timed out: its call is on the way.
                    None => {
                        drop(idle);
                        match rx.recv() {
                            Ok(j) => j,
                            Err(_) => return,
                        }
                    }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn threads_are_reused_for_later_calls() {
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..3 {
            let report = tx.clone();
            super::run(move || report.send(std::thread::current().id()).unwrap()).unwrap();
            // One call at a time: each finds the previous call's thread idle.
            let first = rx.recv().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            let report = tx.clone();
            super::run(move || report.send(std::thread::current().id()).unwrap()).unwrap();
            assert_eq!(rx.recv().unwrap(), first);
        }
    }
}
