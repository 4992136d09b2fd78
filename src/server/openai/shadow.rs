//! Shadow traffic: a copy of a share of a model's generation requests goes
//! to its shadow version. The copy runs in its own task, never streamed,
//! its answer discarded and its outcome counted in the shadow's metrics;
//! the client's request neither waits for it nor sees it.

use super::{answer, parse, Kind};
use crate::server::state::AppState;
use crate::telemetry::metrics;
use serde_json::Value;
use std::sync::Arc;

pub fn mirror(state: &Arc<AppState>, kind: Kind, body: &[u8]) {
    let registry = state.registry();
    if !registry.table().routes().any(|r| r.shadow.is_some()) {
        return;
    }
    let Ok(Value::Object(mut copy)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let name = copy.get("model").and_then(Value::as_str);
    let Some(shadow) = registry.shadow_pick(name) else {
        return;
    };
    copy.insert("stream".into(), Value::Bool(false));
    copy.remove("stream_options");
    let Ok(copy) = serde_json::to_vec(&copy) else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        let Ok(Ok(body)) = state.prep().run(move || parse(kind, &copy)).await else {
            return;
        };
        let answered = answer(state.prep(), shadow.clone(), body).await;
        let status = answered.map_or_else(|e| e.status_code(), |_| 200);
        metrics::request_answered(shadow.name(), &shadow.version, kind.path(), status);
        shadow.answered(status);
    });
}
