//! switchyard: an OpenAI-compatible LLM inference gateway with its own
//! continuous-batching engine. The rooms below follow `DESIGN.md`: arrows
//! point down (server ▶ engine ▶ model ▶ backend); `telemetry` and `store`
//! are leaves.

pub mod backend;
pub mod cli;
pub mod engine;
pub mod model;
pub mod policy;
pub mod registry;
pub mod server;
pub mod store;
pub mod telemetry;
