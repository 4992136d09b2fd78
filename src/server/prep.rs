//! The threads that prepare requests: parsing generation bodies,
//! rendering chat templates, tokenizing prompts, compiling grammars. Not
//! the async workers: a 2 MB prompt would hold up every task that shares
//! the worker. And below the engine threads' priority (nice 10): while a
//! huge prompt is prepared, the streams already running keep their pace,
//! as the scheduler also puts running sequences before waiting ones. A
//! normal prompt takes well under a millisecond here even at that
//! priority.

use super::error::ApiError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// How much lower than the engine's these threads run (Linux nice).
const NICE: i32 = 10;

pub struct Prep {
    jobs: Mutex<Sender<Job>>,
}

impl Prep {
    /// `threads` threads, each lowered to `NICE` where the system allows.
    pub fn new(threads: usize) -> Result<Self, String> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("prep-{i}"))
                .spawn(move || {
                    lower_priority();
                    work(&rx);
                })
                .map_err(|e| format!("starting the request preparation threads: {e}"))?;
        }
        Ok(Prep {
            jobs: Mutex::new(tx),
        })
    }

    /// Runs `f` on a preparation thread and waits for it without holding
    /// up the async worker.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job)
            .map_err(|_| ApiError::Internal("the request preparation threads stopped".into()))?;
        rx.await
            .map_err(|_| ApiError::Internal("preparing the request failed".into()))
    }
}

/// Runs jobs until the pool is dropped; a job that panics ends only
/// itself (its caller hears that it failed).
fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let rx = jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a request preparation job panicked");
        }
    }
}

/// Lowers the calling thread's scheduling priority (Linux: nice is per
/// thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority on our own
        // thread id only changes that thread's nice value.
        let done = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE)
        };
        if done != 0 {
            tracing::warn!("request preparation threads run at the engine's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn jobs_run_below_the_callers_priority_and_a_panic_fails_only_its_own() {
        let prep = Prep::new(1).unwrap();
        let nice = prep
            .run(|| {
                // SAFETY: reading our own thread's nice value.
                #[cfg(target_os = "linux")]
                unsafe {
                    libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t)
                }
                #[cfg(not(target_os = "linux"))]
                NICE
            })
            .await
            .unwrap();
        assert!(nice >= NICE, "nice {nice}");
        let failed = prep.run(|| -> u32 { panic!("a bad job") }).await;
        assert!(failed.is_err());
        assert_eq!(prep.run(|| 2 + 2).await.unwrap(), 4);
    }
}
