//! The admin API under /admin/v1: model versions, deployments, the audit
//! trail, and keys (`keys.rs`), described by /admin/v1/openapi.json (which
//! a test holds equal to the route table). Without API keys it answers
//! only to loopback peers; with them, to operators (keys: admins) from
//! anywhere.

mod keys;

use super::body::{read_json, read_json_or_default};
use super::context::{self, Conn};
use super::error::ApiError;
use super::reply::{json_response, text_response, HttpBody};
use super::routes::{Call, Endpoint};
use super::state::AppState;
use crate::registry::{AnalysisConfig, Registration, Registry, RegistryError, RolloutPlan};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

const OPENAPI: &str = include_str!("openapi.json");

/// What every admin route asks of the connection beyond the caller's
/// role: a client certificate where the server verifies them, and a
/// loopback peer where no keys are in use.
pub fn check_peer(state: &AppState, conn: Conn) -> Result<(), ApiError> {
    if state.admin_needs_client_cert() && !conn.client_cert {
        return Err(ApiError::Forbidden(
            "the admin API needs a client certificate signed by the configured authority".into(),
        ));
    }
    if context::caller().is_none() && !conn.peer.ip().is_loopback() {
        return Err(ApiError::Forbidden(
            "without API keys the admin API answers only on loopback".into(),
        ));
    }
    Ok(())
}

/// Who an action is recorded as: with a key, the key's name; without,
/// the `x-switchyard-actor` header the CLI sends (the user's login).
/// Either way, the peer it came from.
fn actor(req: &Request<Incoming>, conn: Conn) -> String {
    let named = match context::caller() {
        Some(key) => key.name().to_owned(),
        None => req
            .headers()
            .get("x-switchyard-actor")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("anonymous")
            .to_owned(),
    };
    format!("{named}@{}", conn.peer.ip())
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

/// The handler of each admin endpoint.
pub async fn handle(endpoint: Endpoint, c: Call<'_>) -> Result<Response<HttpBody>, ApiError> {
    let who = actor(&c.req, c.conn);
    let registry = c.state.registry().clone();
    let model = c.params.get("model").to_owned();
    let version = c.params.get("version").to_owned();
    let query = c.req.uri().query().unwrap_or("").to_owned();
    let body = c.req.into_body();
    match endpoint {
        Endpoint::AdminOpenapi => Ok(text_response(StatusCode::OK, "application/json", OPENAPI)),
        Endpoint::AdminModels => ok(blocking(registry, |r| r.models_view()).await?),
        Endpoint::AdminModel => ok(blocking(registry, move |r| r.model_view(&model)).await?),
        Endpoint::AdminVersion => {
            ok(blocking(registry, move |r| r.version_view(&model, &version)).await?)
        }
        Endpoint::AdminRegister => {
            let b: Registration = read_json(body).await?;
            let record = blocking(registry, move |r| r.register(&model, b, &who)).await?;
            Ok(json_response(StatusCode::CREATED, &record))
        }
        Endpoint::AdminDeploy => {
            let b: VersionBody = read_json(body).await?;
            done(blocking(registry, move |r| r.deploy(&model, &b.version, &who)).await?)
        }
        Endpoint::AdminRollback => {
            let b: RollbackBody = read_json_or_default(body).await?;
            let to = b.version;
            done(blocking(registry, move |r| r.rollback(&model, to.as_deref(), &who)).await?)
        }
        Endpoint::AdminCanary => {
            let b: CanaryBody = read_json(body).await?;
            let plan = b.plan();
            let percent = if plan.is_some() { None } else { b.percent };
            done(
                blocking(registry, move |r| {
                    r.canary(&model, &b.version, percent, plan, &who)
                })
                .await?,
            )
        }
        Endpoint::AdminShadow => {
            let b: ShadowBody = read_json(body).await?;
            let v = b.version;
            done(
                blocking(registry, move |r| {
                    r.shadow(&model, v.as_deref(), b.percent, &who)
                })
                .await?,
            )
        }
        Endpoint::AdminPromote => {
            let _: Empty = read_json_or_default(body).await?;
            done(blocking(registry, move |r| r.promote(&model, &who)).await?)
        }
        Endpoint::AdminUnload => {
            let b: VersionBody = read_json(body).await?;
            ok(blocking(registry, move |r| r.unload(&model, &b.version, &who)).await?)
        }
        Endpoint::AdminFaults => {
            let b: FaultsBody = read_json(body).await?;
            ok(blocking(registry, move |r| {
                r.set_faults(&model, &version, b.error_ratio, &who)
            })
            .await?)
        }
        Endpoint::AdminEval => {
            let _: Empty = read_json_or_default(body).await?;
            done(blocking(registry, move |r| r.evaluate(&model, &version, &who)).await?)
        }
        Endpoint::AdminAudit => {
            let (model, limit) = audit_query(&query)?;
            ok(blocking(registry, move |r| r.audit_view(model.as_deref(), limit)).await?)
        }
        _ => keys::handle(endpoint, c.state.policy(), &c.params, &query, body, who).await,
    }
}

fn ok(v: Value) -> Result<Response<HttpBody>, ApiError> {
    Ok(json_response(StatusCode::OK, &v))
}

/// What an action did, as JSON.
fn done(v: impl serde::Serialize) -> Result<Response<HttpBody>, ApiError> {
    ok(serde_json::to_value(v).map_err(|e| ApiError::Internal(e.to_string()))?)
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
