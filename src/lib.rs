//! switchyard: an OpenAI-compatible LLM inference gateway with its own
//! continuous-batching engine. The rooms below follow `DESIGN.md`: arrows
//! point down (server ▶ registry ▶ engine ▶ model ▶ backend); `telemetry`
//! and `store` are leaves.

pub mod model;
