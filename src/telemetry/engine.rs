//! What an engine tells telemetry, in telemetry's own terms: a snapshot of
//! its state (read at scrape time into gauges), and a sink for latency
//! samples beside the Prometheus histograms (the canary analysis keeps
//! one per version). The engine fills these; telemetry never asks the
//! engine for anything.

use std::time::Duration;

/// One reading of an engine's state and running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineSnapshot {
    pub running: u64,
    pub waiting: u64,
    pub kv_blocks_used: u64,
    pub kv_blocks_total: u64,
    /// Prompt tokens looked up in the prefix cache, and those found.
    pub prefix_queried_tokens: u64,
    pub prefix_hit_tokens: u64,
    pub preemptions: u64,
    pub steps: u64,
    /// Time spent in steps, and since the engine started (nanoseconds).
    pub busy_ns: u64,
    pub alive_ns: u64,
}

impl EngineSnapshot {
    /// The share of KV blocks held by sequences.
    pub fn kv_usage(&self) -> f64 {
        if self.kv_blocks_total == 0 {
            return 0.0;
        }
        self.kv_blocks_used as f64 / self.kv_blocks_total as f64
    }
}

/// Receives an engine's latency samples as they happen (on the engine
/// thread: an implementation must be quick and must not block).
pub trait LatencySink: Send + Sync {
    /// From a request's arrival at the engine to its first token.
    fn first_token(&self, since_arrival: Duration);
    /// Between two successive tokens of one request.
    fn token_gap(&self, gap: Duration);
}
