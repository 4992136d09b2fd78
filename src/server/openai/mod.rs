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
pub mod shadow;
pub mod tokenize;
mod tool_output;
mod tools;
pub mod types;

use super::error::ApiError;
use super::state::AppState;
use crate::registry::{RegistryError, ServedModel};
use std::sync::Arc;

/// What a generation handler answers: one JSON document, or a stream of
/// server-sent events.
pub enum Reply {
    Json(serde_json::Value),
    Stream(super::sse::SseBody),
}

/// The version that answers a request for `name` (a missing `model` means
/// the one model served), sticky by `user` (or the `x-switchyard-user`
/// header) while a canary runs.
fn resolve_model(
    state: &AppState,
    name: Option<&str>,
    user: Option<&str>,
) -> Result<Arc<ServedModel>, ApiError> {
    let header = super::router::user_header();
    let user = user.or(header.as_deref());
    let model = state.registry().resolve(name, user).map_err(|e| match e {
        RegistryError::NotFound(_) => ApiError::ModelNotFound(name.unwrap_or("").to_owned()),
        RegistryError::NotReady => ApiError::NotReady,
        other => ApiError::bad(other.to_string(), "model"),
    })?;
    super::auth::check_model(name.into_iter().chain([model.name()]))?;
    super::router::served_by(&model);
    if model.faults.fail_next() {
        return Err(ApiError::InjectedFault(model.version_label()));
    }
    Ok(model)
}

/// What can be checked of a generation request's body without a model:
/// it parses for its endpoint, and its sampling fields (response format
/// and its grammar included) validate. The `request_parser` fuzz target
/// drives it with arbitrary bytes.
pub fn check_body(path: &str, body: &[u8]) -> Result<(), ApiError> {
    let defaults = crate::model::hf::GenerationDefaults::default();
    let sampling = match path {
        "/v1/chat/completions" => super::body::parse_json::<types::ChatRequest>(body)?.sampling,
        "/v1/completions" => super::body::parse_json::<types::CompletionRequest>(body)?.sampling,
        other => return Err(ApiError::NotFound(format!("no route for {other}"))),
    };
    sampling::validate(sampling, &defaults).map(|_| ())
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
