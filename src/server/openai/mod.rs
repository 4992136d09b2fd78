//! The OpenAI-compatible endpoints. A generation request goes one way
//! whatever its endpoint: parsed (`types.rs`), resolved to what the
//! engine runs (`resolve.rs`, on the preparation threads), run and answered
//! (`pipeline.rs`); chat and completions differ only in their renderer
//! (`chat_render.rs`, `completion_render.rs`).

mod chat_render;
mod completion_render;
mod logprobs;
pub mod models;
mod pipeline;
mod prompt;
mod render;
mod resolve;
mod response_format;
mod sampling;
pub mod shadow;
pub mod tokenize;
mod tool_output;
mod tools;
pub mod types;

use super::auth;
use super::context;
use super::error::ApiError;
use super::prep::Prep;
use super::sse::SseBody;
use super::state::AppState;
use crate::registry::{RegistryError, ServedModel};
use crate::store::now_unix;
use bytes::Bytes;
use resolve::Body;
use std::sync::Arc;

/// What a generation handler answers: one JSON document, or a stream of
/// server-sent events.
pub enum Reply {
    Json(serde_json::Value),
    Stream(SseBody),
}

/// The two generation endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Completion,
}

impl Kind {
    pub fn path(self) -> &'static str {
        match self {
            Kind::Chat => "/v1/chat/completions",
            Kind::Completion => "/v1/completions",
        }
    }
}

/// Whether a route path is a generation endpoint's (its requests count in
/// the canary analysis).
pub fn is_generation(path: &str) -> bool {
    [Kind::Chat, Kind::Completion]
        .iter()
        .any(|k| k.path() == path)
}

/// POST /v1/chat/completions and /v1/completions. The body is parsed on
/// the preparation threads: a 2 MB body is work too.
pub async fn generate(state: &AppState, kind: Kind, bytes: Bytes) -> Result<Reply, ApiError> {
    let body = state.prep().run(move || parse(kind, &bytes)).await??;
    let (name, user) = match &body {
        Body::Chat(r) => (r.model.as_deref(), r.sampling.user.as_deref()),
        Body::Completion(r) => (r.model.as_deref(), r.sampling.user.as_deref()),
    };
    let model = resolve_model(state, name, user)?;
    answer(state.prep(), model, body).await
}

/// Answers `body` on `model` (a shadow's copy comes here directly).
async fn answer(prep: &Prep, model: Arc<ServedModel>, body: Body) -> Result<Reply, ApiError> {
    let priority = auth::default_priority();
    let resolved = resolve::resolve(prep, model.clone(), body, priority).await?;
    pipeline::run(model, resolved).await
}

/// The body of `kind`, parsed; fields no handler reads are logged.
fn parse(kind: Kind, bytes: &[u8]) -> Result<Body, ApiError> {
    let body = match kind {
        Kind::Chat => Body::Chat(super::body::parse_json(bytes)?),
        Kind::Completion => Body::Completion(super::body::parse_json(bytes)?),
    };
    let unknown = match &body {
        Body::Chat(r) => &r.unknown,
        Body::Completion(r) => &r.unknown,
    };
    // Ignored, as the OpenAI server ignores them, but logged so that a
    // typo does not go unnoticed.
    if !unknown.is_empty() {
        let fields: Vec<&str> = unknown.keys().map(String::as_str).collect();
        tracing::warn!(
            endpoint = kind.path(),
            ?fields,
            "ignoring unknown request fields"
        );
    }
    Ok(body)
}

/// The version that answers a request for `name` (a missing `model` means
/// the one model served), sticky by `user` (or the `x-switchyard-user`
/// header) while a canary runs.
fn resolve_model(
    state: &AppState,
    name: Option<&str>,
    user: Option<&str>,
) -> Result<Arc<ServedModel>, ApiError> {
    let header = context::user_header();
    let user = user.or(header.as_deref());
    let model = state.registry().resolve(name, user).map_err(|e| match e {
        RegistryError::NotFound(_) => ApiError::ModelNotFound(name.unwrap_or("").to_owned()),
        RegistryError::NotReady => ApiError::NotReady,
        other => ApiError::bad(other.to_string(), "model"),
    })?;
    auth::check_model(name.into_iter().chain([model.name()]))?;
    context::served_by(&model);
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
    let defaults = crate::model::generation::GenerationDefaults::default();
    let kind = match path {
        "/v1/chat/completions" => Kind::Chat,
        "/v1/completions" => Kind::Completion,
        other => return Err(ApiError::NotFound(format!("no route for {other}"))),
    };
    let sampling = match parse(kind, body)? {
        Body::Chat(r) => r.sampling,
        Body::Completion(r) => r.sampling,
    };
    sampling::validate(sampling, &defaults, 0)?;
    Ok(())
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
