//! Method + path to handler.

use super::body::{json_response, read_json, sse_response, HttpBody};
use super::error::ApiError;
use super::openai::{self, Reply};
use super::state::AppState;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

pub async fn route(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<HttpBody>, std::convert::Infallible> {
    let started = std::time::Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let resp = match dispatch(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::info!(
        %method,
        path,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    Ok(resp)
}

async fn dispatch(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<Response<HttpBody>, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let ok = |v: serde_json::Value| Ok(json_response(StatusCode::OK, &v));
    match (method, path.as_str()) {
        (Method::GET, "/health") => {
            if state.is_healthy() {
                ok(json!({"status": "ok"}))
            } else {
                Ok(json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "error", "reason": "an engine thread has stopped"}),
                ))
            }
        }
        (Method::GET, "/ready") => {
            if state.is_ready() {
                ok(json!({"status": "ready"}))
            } else {
                Ok(json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "loading"}),
                ))
            }
        }
        (Method::GET, "/v1/models") => ok(openai::models::list(state)),
        (Method::GET, p) if p.starts_with("/v1/models/") => {
            ok(openai::models::get(state, &p["/v1/models/".len()..])?)
        }
        (Method::POST, "/tokenize") => {
            let body = read_json(req.into_body()).await?;
            ok(openai::tokenize::tokenize(state, body)?)
        }
        (Method::POST, "/detokenize") => {
            let body = read_json(req.into_body()).await?;
            ok(openai::tokenize::detokenize(state, body)?)
        }
        (Method::POST, "/v1/completions") => {
            let body = read_json(req.into_body()).await?;
            reply(openai::completions::handle(state, body).await?)
        }
        (Method::POST, "/v1/chat/completions") => {
            let body = read_json(req.into_body()).await?;
            reply(openai::chat::handle(state, body).await?)
        }
        (Method::GET, "" | "/") => ok(json!({
            "name": "switchyard",
            "version": env!("CARGO_PKG_VERSION"),
            "models": state.model().map(|m| m.name.clone()).into_iter().collect::<Vec<_>>(),
        })),
        (
            m,
            "/health"
            | "/ready"
            | "/v1/models"
            | "/v1/completions"
            | "/v1/chat/completions"
            | "/tokenize"
            | "/detokenize",
        ) => Err(ApiError::MethodNotAllowed(m.to_string())),
        (_, p) => Err(ApiError::NotFound(format!("no route for {p}"))),
    }
}

fn reply(r: Reply) -> Result<Response<HttpBody>, ApiError> {
    Ok(match r {
        Reply::Json(v) => json_response(StatusCode::OK, &v),
        Reply::Stream(body) => sse_response(body),
    })
}
