//! GET /v1/models: every name a routed model answers to.

use crate::registry::{Route, ServedModel};
use crate::server::error::ApiError;
use crate::server::state::AppState;
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

/// The route's names the caller's key may use.
fn cards(route: &Route) -> impl Iterator<Item = Value> + '_ {
    let caller = crate::server::context::caller();
    route
        .names
        .iter()
        .filter(move |n| caller.as_ref().is_none_or(|k| k.allows_model(n)))
        .map(|n| card(&route.stable, n))
}

pub fn list(state: &AppState) -> Value {
    let table = state.registry().table();
    let data: Vec<Value> = table.routes().flat_map(|r| cards(r)).collect();
    json!({ "object": "list", "data": data })
}

/// GET /v1/models/{id}
pub fn get(state: &AppState, id: &str) -> Result<Value, ApiError> {
    let table = state.registry().table();
    match table.route(id) {
        Some(r) => {
            crate::server::auth::check_model([id])?;
            Ok(card(&r.stable, id))
        }
        None => Err(ApiError::ModelNotFound(id.to_owned())),
    }
}
