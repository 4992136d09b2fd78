//! What an engine reports about itself, updated after every step and read
//! by whoever exports metrics: plain atomics, no lock on the step path.

pub use crate::telemetry::EngineSnapshot;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default, Debug)]
pub struct EngineStats {
    running: AtomicU64,
    waiting: AtomicU64,
    kv_blocks_used: AtomicU64,
    kv_blocks_total: AtomicU64,
    prefix_queried_tokens: AtomicU64,
    prefix_hit_tokens: AtomicU64,
    preemptions: AtomicU64,
    steps: AtomicU64,
    busy_ns: AtomicU64,
    alive_ns: AtomicU64,
}

impl EngineStats {
    pub(super) fn publish(&self, s: &EngineSnapshot) {
        self.running.store(s.running, Relaxed);
        self.waiting.store(s.waiting, Relaxed);
        self.kv_blocks_used.store(s.kv_blocks_used, Relaxed);
        self.kv_blocks_total.store(s.kv_blocks_total, Relaxed);
        self.prefix_queried_tokens
            .store(s.prefix_queried_tokens, Relaxed);
        self.prefix_hit_tokens.store(s.prefix_hit_tokens, Relaxed);
        self.preemptions.store(s.preemptions, Relaxed);
        self.steps.store(s.steps, Relaxed);
        self.busy_ns.store(s.busy_ns, Relaxed);
        self.alive_ns.store(s.alive_ns, Relaxed);
    }

    pub fn snapshot(&self) -> EngineSnapshot {
        EngineSnapshot {
            running: self.running.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            kv_blocks_used: self.kv_blocks_used.load(Relaxed),
            kv_blocks_total: self.kv_blocks_total.load(Relaxed),
            prefix_queried_tokens: self.prefix_queried_tokens.load(Relaxed),
            prefix_hit_tokens: self.prefix_hit_tokens.load(Relaxed),
            preemptions: self.preemptions.load(Relaxed),
            steps: self.steps.load(Relaxed),
            busy_ns: self.busy_ns.load(Relaxed),
            alive_ns: self.alive_ns.load(Relaxed),
        }
    }
}
