//! GET /v1/models

use crate::server::state::AppState;
use serde_json::{json, Value};

pub fn list(state: &AppState) -> Value {
    let data: Vec<Value> = state
        .model()
        .map(|m| {
            json!({
                "id": m.name,
                "object": "model",
                "created": m.created,
                "owned_by": "switchyard",
                "max_model_len": m.engine.info().context_length,
            })
        })
        .into_iter()
        .collect();
    json!({ "object": "list", "data": data })
}
