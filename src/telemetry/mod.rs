//! Logging, every metric name with its help text (`metrics.rs`), what an
//! engine reports (`engine.rs`), and the GPU poller (`gpu.rs`). A leaf:
//! it imports no other room.

mod engine;
pub mod gpu;
pub mod metrics;

pub use engine::{EngineSnapshot, LatencySink};

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
