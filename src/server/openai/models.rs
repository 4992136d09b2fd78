//! GET /v1/models

use crate::server::error::ApiError;
use crate::server::state::{AppState, ServedModel};
use serde_json::{json, Value};

fn card(m: &ServedModel, id: &str) -> Value {
    json!({
        "id": id,
        "object": "model",
        "created": m.created,
        "owned_by": "switchyard",
        "max_model_len": m.engine.info().context_length,
    })
}

pub fn list(state: &AppState) -> Value {
    let data: Vec<Value> = state
        .model()
        .map(|m| m.names.iter().map(|n| card(m, n)).collect())
        .unwrap_or_default();
    json!({ "object": "list", "data": data })
}

/// GET /v1/models/{id}
pub fn get(state: &AppState, id: &str) -> Result<Value, ApiError> {
    match state.model() {
        Some(m) if m.answers_to(id) => Ok(card(m, id)),
        _ => Err(ApiError::ModelNotFound(id.to_owned())),
    }
}
