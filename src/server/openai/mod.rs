//! The OpenAI-compatible endpoints.

pub mod chat;
mod chat_stream;
mod chunks;
mod collect;
pub mod completions;
mod completions_stream;
mod logprobs;
pub mod models;
mod prompt;
mod response_format;
mod sampling;
pub mod tokenize;
mod tool_output;
mod tools;
pub mod types;

use super::error::ApiError;
use super::state::{AppState, ServedModel};
use std::sync::Arc;

/// What a generation handler answers: one JSON document, or a stream of
/// server-sent events.
pub enum Reply {
    Json(serde_json::Value),
    Stream(super::sse::SseBody),
}

/// The served model a request names; a missing `model` field means the one
/// model served.
fn resolve_model<'a>(
    state: &'a AppState,
    name: Option<&str>,
) -> Result<&'a Arc<ServedModel>, ApiError> {
    let model = state.model().ok_or(ApiError::NotReady)?;
    match name {
        Some(n) if !model.answers_to(n) => Err(ApiError::ModelNotFound(n.to_owned())),
        _ => Ok(model),
    }
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn request_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:x}{n:06x}", now_unix())
}

fn usage_json(prompt_tokens: usize, completion_tokens: usize) -> serde_json::Value {
    serde_json::json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// Fields a request carried that no handler reads: ignored, as the OpenAI
/// server ignores them, but logged so that a typo does not go unnoticed.
fn warn_unknown(endpoint: &str, unknown: &serde_json::Map<String, serde_json::Value>) {
    if !unknown.is_empty() {
        let fields: Vec<&str> = unknown.keys().map(String::as_str).collect();
        tracing::warn!(endpoint, ?fields, "ignoring unknown request fields");
    }
}
