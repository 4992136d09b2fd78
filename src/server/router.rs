//! From a request to its handler. The route table (`routes.rs`) says
//! which endpoint answers and what the caller needs; the caller is
//! checked; the endpoint's handler answers in the request's context; the
//! answer is counted, labelled with the version that gave it, and logged.

use super::auth;
use super::body::{read_body, read_json};
use super::context::{self, Conn, Outcome, RequestContext};
use super::error::ApiError;
use super::openai::{self, Reply};
use super::reply::{
    error_response, json_response, rate_headers, sse_response, text_response, HttpBody,
};
use super::routes::{self, Call, Endpoint, Matched};
use super::state::AppState;
use crate::telemetry::metrics;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

pub async fn route(
    state: Arc<AppState>,
    conn: Conn,
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
    let matched = routes::find(&method, &path);
    let need = match &matched {
        Matched::Found(r, _) => r.need,
        Matched::WrongMethod(_, need) | Matched::NotFound(need) => *need,
    };
    let (answer, outcome) = match auth::check(state.policy(), conn.peer, need, req.headers()) {
        Err(e) => (Err(e), Outcome::default()),
        Ok(caller) => {
            let ctx = RequestContext::new(state.policy().clone(), caller, user);
            let call = dispatch(&state, conn, &request_id, matched, need.is_admin(), req);
            context::scope(ctx, call).await
        }
    };
    let (mut resp, refusal) = match answer {
        Ok(r) => (r, None),
        Err(e) => {
            let resp = error_response(&e);
            if e.is_auth_failure() {
                metrics::auth_failed(resp.status().as_u16());
            }
            (resp, e.rate_limit_labels())
        }
    };
    if let Some(info) = &outcome.rate {
        rate_headers(&mut resp, info);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    // A request no version answered (a bad body, a health check) is
    // labelled with the model served when there is only one.
    let served = outcome.served_by.or_else(|| {
        let table = state.registry().table();
        table.sole().map(|r| r.stable.clone())
    });
    if let Some(m) = served.filter(|_| !need.is_admin()) {
        if let Ok(v) = HeaderValue::from_str(&m.version_label()) {
            resp.headers_mut().insert(MODEL_VERSION, v);
        }
        let endpoint = routes::label(&path);
        let status = resp.status().as_u16();
        metrics::request_answered(m.name(), &m.version, endpoint, status);
        if openai::is_generation(endpoint) {
            m.answered(status);
        }
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
    let Some(v) = req.headers().get(hyper::header::CONTENT_TYPE) else {
        return Ok(());
    };
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

async fn dispatch(
    state: &Arc<AppState>,
    conn: Conn,
    request_id: &str,
    matched: Matched,
    admin: bool,
    req: Request<Incoming>,
) -> Result<Response<HttpBody>, ApiError> {
    if req.method() == Method::POST {
        require_json(&req)?;
    }
    if admin {
        super::admin::check_peer(state, conn)?;
    }
    let path = req.uri().path().to_owned();
    match matched {
        Matched::Found(route, params) => {
            let call = Call {
                state,
                conn,
                params,
                request_id,
                req,
            };
            handle(route.endpoint, call).await
        }
        Matched::WrongMethod(allowed, _) => Err(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allowed: allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        }),
        Matched::NotFound(_) if admin => {
            Err(ApiError::NotFound(format!("no admin route for {path}")))
        }
        Matched::NotFound(_) => Err(ApiError::NotFound(format!("no route for {path}"))),
    }
}

/// The handler of each endpoint.
async fn handle(endpoint: Endpoint, c: Call<'_>) -> Result<Response<HttpBody>, ApiError> {
    let state = c.state;
    let ok = |v: serde_json::Value| Ok(json_response(StatusCode::OK, &v));
    match endpoint {
        Endpoint::Root => ok(json!({
            "name": "switchyard",
            "version": env!("CARGO_PKG_VERSION"),
            "models": state
                .registry()
                .table()
                .routes()
                .flat_map(|r| r.names.clone())
                .collect::<Vec<_>>(),
        })),
        Endpoint::Health if state.is_healthy() => ok(json!({"status": "ok"})),
        Endpoint::Health => Ok(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "error", "reason": "an engine thread has stopped"}),
        )),
        Endpoint::Ready if state.is_ready() => ok(json!({"status": "ready"})),
        Endpoint::Ready => Ok(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "loading"}),
        )),
        Endpoint::Metrics => Ok(metrics_response(state)),
        Endpoint::Models => ok(openai::models::list(state)),
        Endpoint::Model => ok(openai::models::get(state, c.params.get("id"))?),
        Endpoint::Tokenize => {
            let body = read_json(c.req.into_body()).await?;
            ok(openai::tokenize::tokenize(state, body).await?)
        }
        Endpoint::Detokenize => {
            let body = read_json(c.req.into_body()).await?;
            ok(openai::tokenize::detokenize(state, body)?)
        }
        Endpoint::Completions | Endpoint::ChatCompletions => {
            let kind = if endpoint == Endpoint::Completions {
                openai::Kind::Completion
            } else {
                openai::Kind::Chat
            };
            let bytes = read_body(c.req.into_body()).await?;
            log_request(state, c.request_id, &bytes);
            openai::shadow::mirror(state, kind, &bytes);
            reply(
                state,
                c.request_id,
                openai::generate(state, kind, bytes).await?,
            )
        }
        _ => super::admin::handle(endpoint, c).await,
    }
}

/// The Prometheus exposition, engine gauges sampled now. Series whose
/// labels are known in advance (each version's refusals by scope and
/// limit) exist from the first scrape, at 0.
pub(super) fn metrics_response(state: &AppState) -> Response<HttpBody> {
    let scopes = crate::policy::RateLimited::SCOPES;
    let limits = crate::policy::What::ALL.map(crate::policy::What::label);
    for m in state.registry().loaded() {
        metrics::engine_state(m.name(), &m.version, &m.engine.stats());
        metrics::rate_limited_series(m.name(), &m.version, &scopes, &limits);
    }
    text_response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        metrics::render(),
    )
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
