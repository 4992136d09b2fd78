//! The engine: one per loaded model version. Requests in through an
//! `EngineHandle`, token events out; continuous batching (scheduler,
//! paged KV blocks, prefix cache, preemption), sampling, stop conditions
//! and incremental detokenization live here. Knows nothing of HTTP.

mod config;
mod error;
pub mod grammar;
mod handle;
mod kv;
mod launch;
mod output;
mod penalties;
mod priority;
mod request;
mod rng;
pub mod sampler;
mod scheduler;
mod stats;
mod stop;
mod worker;

pub use config::{parse_memory, physical_memory, EngineConfig, KvBudget, LatencyFeed};
pub use error::EngineError;
pub use handle::{EngineExit, EngineHandle, EngineInfo, RequestStream};
pub use launch::{start, Compute, ModelSpec, Started};
pub use request::{
    Event, FinishReason, GenerateRequest, Penalties, SamplingParams, TokenLogprob, Usage,
};
pub use stats::{EngineSnapshot, EngineStats};
pub use worker::spawn;
