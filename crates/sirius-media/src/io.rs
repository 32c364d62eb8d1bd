//! The IO context (Asterisk's `io_context`): a small tokio runtime of its own.
//!
//! The core runs one for the console socket; each plugin creates its own in
//! `load()` for its sockets and timers, because a cdylib's copy of tokio cannot
//! see the host's runtime (see DESIGN.md). Dropping a runtime from inside an
//! async context panics, so [`IoContext::shutdown`] always tears it down from a
//! plain thread, whichever thread calls it.

use std::future::Future;
use std::time::Duration;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::JoinHandle;

/// Scheduler ticks between two looks at timers and sockets (see `new`).
const EVENT_INTERVAL: u32 = 1;

/// A named tokio runtime with an orderly shutdown.
pub struct IoContext {
    name: String,
    runtime: Option<Runtime>,
}

impl IoContext {
    /// Starts a runtime with `threads` worker threads named `<name>-io`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<IoContext> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(format!("{name}-io"))
            // Timers and socket readiness every scheduler tick, not every
            // 61st (tokio's default): a loop that always has a datagram to
            // read yields only when its cooperative budget runs out, every
            // 50 or so messages, so at 61 ticks a due timer waited for
            // about 3,000 messages: 50–150 ms of "lag" at 3,000 calls/s on
            // one SIP thread that was never stalled (issue #11). The price
            // is one epoll_wait(0) per tick.
            .event_interval(EVENT_INTERVAL)
            .enable_all()
            .build()?;
        Ok(IoContext {
            name: name.to_string(),
            runtime: Some(runtime),
        })
    }

    /// The context's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A handle for spawning from other threads.
    pub fn handle(&self) -> Handle {
        match &self.runtime {
            Some(rt) => rt.handle().clone(),
            None => unreachable!("runtime is only taken by shutdown(self)"),
        }
    }

    /// Spawns a task on this context.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle().spawn(fut)
    }

    /// Runs a future to completion from a thread outside the runtime.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        match &self.runtime {
            Some(rt) => rt.block_on(fut),
            None => unreachable!("runtime is only taken by shutdown(self)"),
        }
    }

    /// Stops every task, waiting at most `timeout` for blocking work to finish.
    pub fn shutdown(mut self, timeout: Duration) {
        if let Some(rt) = self.runtime.take() {
            let name = self.name.clone();
            let t = std::thread::Builder::new()
                .name(format!("{name}-stop"))
                .spawn(move || rt.shutdown_timeout(timeout));
            if let Ok(t) = t {
                let _ = t.join();
            }
        }
    }
}

impl Drop for IoContext {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Same reasoning as shutdown(): never drop a runtime on an async thread.
            let _ = std::thread::spawn(move || rt.shutdown_timeout(Duration::from_secs(1))).join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_tasks_and_shuts_down_from_inside_an_async_context() {
        let io = IoContext::new("test", 1).expect("runtime");
        assert_eq!(io.block_on(async { 40 + 2 }), 42);
        let outer = IoContext::new("outer", 1).expect("runtime");
        // Shutting a runtime down from within another runtime's task must not panic.
        outer.block_on(async move { io.shutdown(Duration::from_millis(100)) });
    }
}
