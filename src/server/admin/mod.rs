//! The admin API under /admin/v1: model versions, deployments, the audit
//! trail, and keys (`keys`), described by /admin/v1/openapi.json. Without
//! API keys it answers only to loopback peers; with them, to operators
//! (keys: admins) from anywhere.

mod keys;

use super::body::{json_response, read_json, text_response, HttpBody};
use super::error::ApiError;
use super::state::AppState;
use crate::registry::{AnalysisConfig, Registration, Registry, RegistryError, RolloutPlan};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;

pub const PREFIX: &str = "/admin/v1";

const OPENAPI: &str = include_str!("openapi.json");

/// Who an action is recorded as without a key: the `x-switchyard-actor`
/// header the CLI sends (the user's login), and the peer it came from.
/// With a key, the key's name.
fn actor(req: &Request<Incoming>, peer: SocketAddr) -> String {
    let named = req
        .headers()
        .get("x-switchyard-actor")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("anonymous");
    format!("{named}@{}", peer.ip())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionBody {
    version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryBody {
    version: String,
    #[serde(default)]
    percent: Option<f64>,
    /// With steps (or analysis), the canary is analysed and moved on by
    /// itself.
    #[serde(default)]
    steps: Option<Vec<f64>>,
    #[serde(default)]
    analysis: Option<AnalysisConfig>,
    #[serde(default)]
    auto_promote: Option<bool>,
}

impl CanaryBody {
    fn plan(&self) -> Option<RolloutPlan> {
        if self.steps.is_none() && self.analysis.is_none() {
            return None;
        }
        Some(RolloutPlan {
            steps: self
                .steps
                .clone()
                .unwrap_or_else(|| self.percent.into_iter().collect()),
            analysis: self.analysis.clone().unwrap_or_default(),
            auto_promote: self.auto_promote.unwrap_or(true),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowBody {
    #[serde(default)]
    version: Option<String>,
    percent: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    error_ratio: f64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Empty {}

pub async fn dispatch(
    state: &AppState,
    conn: super::Conn,
    req: Request<Incoming>,
) -> Result<Response<HttpBody>, ApiError> {
    let peer = conn.peer;
    if state.admin_needs_client_cert() && !conn.client_cert {
        return Err(ApiError::Forbidden(
            "the admin API needs a client certificate signed by the configured authority".into(),
        ));
    }
    let caller = super::auth::caller();
    if caller.is_none() && !peer.ip().is_loopback() {
        return Err(ApiError::Forbidden(
            "without API keys the admin API answers only on loopback".into(),
        ));
    }
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let rest = path.strip_prefix(PREFIX).unwrap_or("");
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let query = req.uri().query().unwrap_or("").to_owned();
    let who = match &caller {
        Some(key) => format!("{}@{}", key.name(), peer.ip()),
        None => actor(&req, peer),
    };
    if segments
        .first()
        .is_some_and(|s| matches!(*s, "keys" | "tenants" | "usage"))
    {
        let found = keys::dispatch(
            state.policy(),
            &method,
            &segments,
            &query,
            req.into_body(),
            who,
        )
        .await;
        return found
            .unwrap_or_else(|| Err(ApiError::NotFound(format!("no admin route for {path}"))));
    }
    let registry = state.registry().clone();
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
    match (method, segments.as_slice()) {
        (Method::GET, ["openapi.json"]) => {
            Ok(text_response(StatusCode::OK, "application/json", OPENAPI))
        }
        (Method::GET, ["models"]) => ok(blocking(registry, |r| r.models_view()).await?),
        (Method::GET, ["models", model]) => {
            let model = model.to_string();
            ok(blocking(registry, move |r| r.model_view(&model)).await?)
        }
        (Method::GET, ["models", model, "versions", version]) => {
            let (model, version) = (model.to_string(), version.to_string());
            ok(blocking(registry, move |r| r.version_view(&model, &version)).await?)
        }
        (Method::POST, ["models", model, "versions"]) => {
            let body: Registration = read_json(req.into_body()).await?;
            let model = model.to_string();
            let record = blocking(registry, move |r| r.register(&model, body, &who)).await?;
            Ok(json_response(StatusCode::CREATED, &record))
        }
        (Method::POST, ["models", model, action]) => {
            let model = model.to_string();
            let body = req.into_body();
            let done = match *action {
                "deploy" => {
                    let b: VersionBody = read_json(body).await?;
                    blocking(registry, move |r| r.deploy(&model, &b.version, &who)).await?
                }
                "rollback" => {
                    let b: RollbackBody = read_json_or_default(body).await?;
                    blocking(registry, move |r| {
                        r.rollback(&model, b.version.as_deref(), &who)
                    })
                    .await?
                }
                "canary" => {
                    let b: CanaryBody = read_json(body).await?;
                    let plan = b.plan();
                    let percent = if plan.is_some() { None } else { b.percent };
                    blocking(registry, move |r| {
                        r.canary(&model, &b.version, percent, plan, &who)
                    })
                    .await?
                }
                "shadow" => {
                    let b: ShadowBody = read_json(body).await?;
                    blocking(registry, move |r| {
                        r.shadow(&model, b.version.as_deref(), b.percent, &who)
                    })
                    .await?
                }
                "promote" => {
                    let _: Empty = read_json_or_default(body).await?;
                    blocking(registry, move |r| r.promote(&model, &who)).await?
                }
                "unload" => {
                    let b: VersionBody = read_json(body).await?;
                    let out =
                        blocking(registry, move |r| r.unload(&model, &b.version, &who)).await?;
                    return ok(out);
                }
                other => return Err(ApiError::NotFound(format!("no admin action `{other}`"))),
            };
            ok(serde_json::to_value(done).map_err(|e| ApiError::Internal(e.to_string()))?)
        }
        (Method::POST, ["models", model, "versions", version, "faults"]) => {
            let b: FaultsBody = read_json(req.into_body()).await?;
            let (model, version) = (model.to_string(), version.to_string());
            ok(blocking(registry, move |r| {
                r.set_faults(&model, &version, b.error_ratio, &who)
            })
            .await?)
        }
        (Method::POST, ["models", model, "versions", version, "eval"]) => {
            let _: Empty = read_json_or_default(req.into_body()).await?;
            let (model, version) = (model.to_string(), version.to_string());
            let report = blocking(registry, move |r| r.evaluate(&model, &version, &who)).await?;
            ok(serde_json::to_value(report).map_err(|e| ApiError::Internal(e.to_string()))?)
        }
        (Method::GET, ["audit"]) => {
            let (model, limit) = audit_query(&query)?;
            ok(blocking(registry, move |r| r.audit_view(model.as_deref(), limit)).await?)
        }
        (
            m,
            ["openapi.json"]
            | ["models"]
            | ["models", _]
            | ["models", _, "versions", ..]
            | ["audit"],
        )
        | (m, ["models", _, "deploy" | "rollback" | "canary" | "shadow" | "promote" | "unload"]) => {
            Err(ApiError::MethodNotAllowed(m.to_string()))
        }
        _ => Err(ApiError::NotFound(format!("no admin route for {path}"))),
    }
}

/// Admin actions read files, hash artifacts, load weights and write
/// SQLite: never on the async workers.
async fn blocking<T: Send + 'static>(
    registry: Arc<Registry>,
    f: impl FnOnce(&Arc<Registry>) -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || f(&registry))
        .await
        .map_err(|e| ApiError::Internal(format!("an admin action failed: {e}")))?
        .map_err(ApiError::from)
}

/// An empty body means the defaults; anything else must parse.
async fn read_json_or_default<T: serde::de::DeserializeOwned + Default>(
    body: Incoming,
) -> Result<T, ApiError> {
    let bytes = super::body::read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    super::body::parse_json(&bytes)
}

/// `?model=NAME&limit=N` (limit 1–10000, default 100).
fn audit_query(query: &str) -> Result<(Option<String>, usize), ApiError> {
    let (mut model, mut limit) = (None, 100usize);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "model" => model = Some(value.to_owned()),
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad("limit must be an integer from 1 to 10000", "limit")
                    })?;
            }
            _ => {}
        }
    }
    Ok((model, limit))
}
