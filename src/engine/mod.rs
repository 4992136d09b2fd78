//! The engine: one per loaded model version. Requests in through an
//! `EngineHandle`, token events out; scheduling, sampling, stop conditions
//! and incremental detokenization live here. Knows nothing of HTTP.

mod error;
pub mod grammar;
mod handle;
mod penalties;
mod request;
mod rng;
pub mod sampler;
mod stop;
mod worker;

pub use error::EngineError;
pub use handle::{EngineHandle, EngineInfo, RequestStream};
pub use request::{
    Event, FinishReason, GenerateRequest, Penalties, SamplingParams, TokenLogprob, Usage,
};
pub use worker::spawn;
