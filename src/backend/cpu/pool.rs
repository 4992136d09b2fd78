//! The one compute pool every engine shares. A decode step of a small model
//! runs a few hundred parallel regions, each a few microseconds long, so
//! waking workers through the OS on every region would cost more than the
//! work: workers spin briefly on a generation counter, then park. The
//! calling thread takes tasks too, so a pool of N threads has N-1 workers.
//!
//! Only one parallel region runs at a time (the `run` lock): engines take
//! turns, which is what keeps several loaded versions from oversubscribing
//! the cores.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks. Long enough to bridge the
/// gap between two regions of one forward pass, short enough not to burn a
/// core while the server is idle.
const SPIN: Duration = Duration::from_micros(200);

type Job = dyn Fn(usize) + Sync;

/// The region on offer: its generation and job. Workers join a region
/// under this lock, so once the caller withdraws the offer no worker can
/// start on a job whose closure is about to go out of scope.
struct Offer {
    generation: usize,
    job: Option<JobPtr>,
    /// Workers that joined the current region and have not left it.
    active: usize,
}

struct Shared {
    /// Bumped once per region; idle workers spin on it, then park.
    generation: AtomicUsize,
    offer: Mutex<Offer>,
    left: Condvar,
    n_tasks: AtomicUsize,
    next_task: AtomicUsize,
    finished_tasks: AtomicUsize,
    shutdown: AtomicBool,
    park_lock: Mutex<()>,
    wake: Condvar,
}

#[derive(Clone, Copy)]
struct JobPtr(*const Job);
// SAFETY: the pointee is `Sync`, and `run` keeps it alive for as long as any
// worker can reach it.
unsafe impl Send for JobPtr {}

pub struct ComputePool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    run_lock: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ComputePool {
    /// `n_threads` counts the caller: 1 means no worker threads.
    pub fn new(n_threads: usize) -> Self {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            offer: Mutex::new(Offer {
                generation: 0,
                job: None,
                active: 0,
            }),
            left: Condvar::new(),
            n_tasks: AtomicUsize::new(0),
            next_task: AtomicUsize::new(0),
            finished_tasks: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            park_lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        // Worker i takes the i-th CPU of the order, one per core first;
        // the calling thread stays unpinned (it belongs to an engine) and
        // the scheduler leaves it the CPU no worker holds.
        let cpus = super::affinity::cpu_order();
        let workers = (1..n_threads)
            .map(|i| {
                let shared = shared.clone();
                let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
                std::thread::Builder::new()
                    .name(format!("compute-{i}"))
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            super::affinity::pin_current_thread(cpu);
                        }
                        worker_loop(&shared)
                    })
                    .expect("spawning a compute thread")
            })
            .collect();
        ComputePool {
            shared,
            workers,
            run_lock: Mutex::new(()),
        }
    }

    /// Threads that take part in a region, the caller included.
    pub fn n_threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(i)` for every `i` in `0..n_tasks`, spread over the pool;
    /// returns when all have run. Workers that are slow to wake (another
    /// process has their core) are not waited for: the caller takes every
    /// task nobody has claimed.
    pub fn run<F: Fn(usize) + Sync>(&self, n_tasks: usize, f: F) {
        if n_tasks == 0 {
            return;
        }
        if self.workers.is_empty() || n_tasks == 1 {
            (0..n_tasks).for_each(f);
            return;
        }
        let _turn = lock(&self.run_lock);
        let s = &*self.shared;
        let job: &(dyn Fn(usize) + Sync + '_) = &f;
        // SAFETY: erase the lifetime; the offer is withdrawn and every
        // worker has left before this function returns.
        let job: &'static Job =
            unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync + '_), &'static Job>(job) };
        s.n_tasks.store(n_tasks, Ordering::Relaxed);
        s.next_task.store(0, Ordering::Relaxed);
        s.finished_tasks.store(0, Ordering::Relaxed);
        let generation = {
            let mut offer = lock(&s.offer);
            offer.generation += 1;
            offer.job = Some(JobPtr(job as *const Job));
            offer.generation
        };
        s.generation.store(generation, Ordering::Release);
        {
            let _g = lock(&s.park_lock);
            s.wake.notify_all();
        }
        take_tasks(s, job);
        let mut spins = 0u32;
        while s.finished_tasks.load(Ordering::Acquire) < n_tasks {
            backoff(&mut spins);
        }
        let mut offer = lock(&s.offer);
        offer.job = None;
        while offer.active > 0 {
            offer = s.left.wait(offer).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Spin a little, then give the core away: on a machine shared with other
/// work, a waiting thread must not hold the core the awaited one needs.
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 2000 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

fn take_tasks(s: &Shared, job: &Job) {
    let n = s.n_tasks.load(Ordering::Relaxed);
    loop {
        let i = s.next_task.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        job(i);
        s.finished_tasks.fetch_add(1, Ordering::Release);
    }
}

fn worker_loop(s: &Shared) {
    let mut seen = 0usize;
    loop {
        // Wait for a new region: spin first, then park.
        let start = Instant::now();
        loop {
            if s.shutdown.load(Ordering::Relaxed) {
                return;
            }
            if s.generation.load(Ordering::Acquire) != seen {
                break;
            }
            if start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let g = lock(&s.park_lock);
            if s.generation.load(Ordering::Acquire) == seen && !s.shutdown.load(Ordering::Relaxed) {
                let _g = s
                    .wake
                    .wait_timeout(g, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
        let job = {
            let mut offer = lock(&s.offer);
            seen = offer.generation;
            let job = offer.job;
            if job.is_some() {
                offer.active += 1;
            }
            job
        };
        if let Some(JobPtr(ptr)) = job {
            // SAFETY: `run` keeps the job alive until `active` drops to 0.
            take_tasks(s, unsafe { &*ptr });
            let mut offer = lock(&s.offer);
            offer.active -= 1;
            if offer.active == 0 {
                s.left.notify_all();
            }
        }
    }
}

impl Drop for ComputePool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        {
            let _g = self
                .shared
                .park_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Physical cores, falling back to logical ones: SMT siblings share the
/// FMA units the kernels saturate.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    physical_cores_linux().unwrap_or(logical).clamp(1, logical)
}

fn physical_cores_linux() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mut pairs = std::collections::HashSet::new();
    let (mut phys, mut core) = (None, None);
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim() {
                "physical id" => phys = v.trim().parse::<u32>().ok(),
                "core id" => core = v.trim().parse::<u32>().ok(),
                _ => {}
            }
        } else if let (Some(p), Some(c)) = (phys.take(), core.take()) {
            pairs.insert((p, c));
        }
    }
    if let (Some(p), Some(c)) = (phys, core) {
        pairs.insert((p, c));
    }
    (!pairs.is_empty()).then_some(pairs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_task_exactly_once() {
        let pool = ComputePool::new(3);
        for n in [1usize, 2, 7, 100] {
            let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
            pool.run(n, |i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn shared_by_threads_without_losing_tasks() {
        let pool = Arc::new(ComputePool::new(2));
        let total = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (pool, total) = (pool.clone(), total.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        pool.run(5, |_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(total.load(Ordering::Relaxed), 4 * 200 * 5);
    }
}
