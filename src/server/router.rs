//! Method + path to handler.

use super::body::{
    json_response, parse_json, read_body, read_json, sse_response, text_response, HttpBody,
};
use super::error::ApiError;
use super::openai::{self, Reply};
use super::state::AppState;
use crate::registry::ServedModel;
use crate::telemetry::metrics;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

tokio::task_local! {
    /// The version a request resolved to, carried from the handler to the
    /// metrics, the analysis window and the `x-switchyard-model-version`
    /// header, whatever the answer (an error included).
    static SERVED_BY: std::cell::RefCell<Option<Arc<ServedModel>>>;
    /// The `x-switchyard-user` header: whom a canary split sticks to when
    /// the body names no `user`.
    static USER_HEADER: Option<String>;
}

/// Records the version that answers the current request.
pub(super) fn served_by(model: &Arc<ServedModel>) {
    let _ = SERVED_BY.try_with(|s| *s.borrow_mut() = Some(model.clone()));
}

/// The current request's `x-switchyard-user` header.
pub(super) fn user_header() -> Option<String> {
    USER_HEADER.try_with(Clone::clone).ok().flatten()
}

pub async fn route(
    state: Arc<AppState>,
    conn: super::Conn,
    req: Request<Incoming>,
) -> Result<Response<HttpBody>, std::convert::Infallible> {
    let started = std::time::Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let request_id = request_id(&req);
    let user = req
        .headers()
        .get("x-switchyard-user")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(str::to_owned);
    let ((answer, resolved), rate) =
        match super::auth::check(state.policy(), conn.peer, &path, req.headers()) {
            Err(e) => ((Err(e), None), None),
            Ok(auth) => {
                super::auth::scope(
                    auth,
                    USER_HEADER.scope(
                        user,
                        SERVED_BY.scope(std::cell::RefCell::new(None), async {
                            let answer = dispatch(&state, conn, &request_id, req).await;
                            (answer, SERVED_BY.with(|s| s.borrow_mut().take()))
                        }),
                    ),
                )
                .await
            }
        };
    let (mut refusal, mut auth_failure) = (None, false);
    let mut resp = match answer {
        Ok(r) => r,
        Err(e) => {
            refusal = e.rate_limit_labels();
            auth_failure = e.is_auth_failure();
            e.into_response()
        }
    };
    if auth_failure {
        metrics::auth_failed(resp.status().as_u16());
    }
    if let Some(info) = &rate {
        super::auth::rate_headers(&mut resp, info);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    // A request no version answered (a bad body, a health check) is
    // labelled with the model served when there is only one.
    let served = resolved.or_else(|| {
        let table = state.registry().table();
        table.sole().map(|r| r.stable.clone())
    });
    if let Some(m) = served.filter(|_| !path.starts_with(super::admin::PREFIX)) {
        if let Ok(v) = HeaderValue::from_str(&m.version_label()) {
            resp.headers_mut().insert(MODEL_VERSION, v);
        }
        metrics::request_answered(
            m.name(),
            &m.version,
            endpoint(&path),
            resp.status().as_u16(),
        );
        if let Some((scope, limit)) = refusal {
            metrics::rate_limited(m.name(), &m.version, scope, limit);
        }
    }
    // The access log names the request, never its prompt or completion.
    tracing::info!(
        %method,
        path,
        status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        request_id,
        "request"
    );
    Ok(resp)
}

const REQUEST_ID: &str = "x-request-id";
const MODEL_VERSION: &str = "x-switchyard-model-version";

/// The client's `x-request-id` when it is a reasonable token, else a new one.
fn request_id(req: &Request<Incoming>) -> String {
    let given = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()));
    match given {
        Some(v) => v.to_owned(),
        None => {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            format!("req-{:x}-{n:x}", std::process::id())
        }
    }
}

/// POST bodies are JSON: a body declared as something else is refused
/// (an absent content type is accepted, as clients often omit it).
fn require_json(req: &Request<Incoming>) -> Result<(), ApiError> {
    match req.headers().get(hyper::header::CONTENT_TYPE) {
        None => Ok(()),
        Some(v) => {
            let mime = v
                .to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim();
            if mime.eq_ignore_ascii_case("application/json") {
                Ok(())
            } else {
                Err(ApiError::UnsupportedMediaType(mime.to_owned()))
            }
        }
    }
}

async fn dispatch(
    state: &AppState,
    conn: super::Conn,
    request_id: &str,
    req: Request<Incoming>,
) -> Result<Response<HttpBody>, ApiError> {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let ok = |v: serde_json::Value| Ok(json_response(StatusCode::OK, &v));
    if method == Method::POST {
        require_json(&req)?;
    }
    if path == super::admin::PREFIX || path.starts_with(&format!("{}/", super::admin::PREFIX)) {
        return super::admin::dispatch(state, conn, req).await;
    }
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
            let bytes = read_body(req.into_body()).await?;
            log_request(state, request_id, &bytes);
            openai::shadow::mirror(state, "/v1/completions", &bytes);
            reply(
                state,
                request_id,
                openai::completions::handle(state, parse_json(&bytes)?).await?,
            )
        }
        (Method::POST, "/v1/chat/completions") => {
            let bytes = read_body(req.into_body()).await?;
            log_request(state, request_id, &bytes);
            openai::shadow::mirror(state, "/v1/chat/completions", &bytes);
            reply(
                state,
                request_id,
                openai::chat::handle(state, parse_json(&bytes)?).await?,
            )
        }
        (Method::GET, "/metrics") => Ok(metrics_response(state)),
        (Method::GET, "" | "/") => ok(json!({
            "name": "switchyard",
            "version": env!("CARGO_PKG_VERSION"),
            "models": state
                .registry()
                .table()
                .routes()
                .flat_map(|r| r.names.clone())
                .collect::<Vec<_>>(),
        })),
        (
            m,
            "/health"
            | "/ready"
            | "/metrics"
            | "/v1/models"
            | "/v1/completions"
            | "/v1/chat/completions"
            | "/tokenize"
            | "/detokenize",
        ) => Err(ApiError::MethodNotAllowed(m.to_string())),
        (_, p) => Err(ApiError::NotFound(format!("no route for {p}"))),
    }
}

/// The Prometheus exposition, engine gauges sampled now.
pub(super) fn metrics_response(state: &AppState) -> Response<HttpBody> {
    for m in state.registry().loaded() {
        metrics::engine_state(m.name(), &m.version, &m.engine.stats());
    }
    text_response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        metrics::render(),
    )
}

/// The route a path belongs to, for metric labels.
fn endpoint(path: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/models",
        "/tokenize",
        "/detokenize",
        "/health",
        "/ready",
        "/metrics",
        "/",
    ];
    let path = path.trim_end_matches('/');
    if path.starts_with("/v1/models/") {
        return "/v1/models/{id}";
    }
    KNOWN
        .into_iter()
        .find(|k| *k == path || (path.is_empty() && *k == "/"))
        .unwrap_or("other")
}

/// `--log-requests`: the body of a generation request. Off by default:
/// prompts are the users' data.
fn log_request(state: &AppState, request_id: &str, body: &[u8]) {
    if state.log_requests() {
        tracing::info!(target: "switchyard::requests", request_id, body = %String::from_utf8_lossy(body), "request body");
    }
}

fn reply(state: &AppState, request_id: &str, r: Reply) -> Result<Response<HttpBody>, ApiError> {
    Ok(match r {
        Reply::Json(v) => {
            if state.log_requests() {
                tracing::info!(target: "switchyard::requests", request_id, body = %v, "response body");
            }
            json_response(StatusCode::OK, &v)
        }
        Reply::Stream(body) => sse_response(body),
    })
}
