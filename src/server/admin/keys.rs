//! The admin API of keys, tenant limits and usage (role admin; usage may
//! be read by operators): /admin/v1/keys, /admin/v1/tenants/{t},
//! /admin/v1/usage. A change takes effect at once in this process; other
//! replicas on the same database see it at their next reload.

use super::super::body::{json_response, read_json, HttpBody};
use super::super::error::ApiError;
use crate::policy::{self, KeySpec, Policy, PolicyError};
use crate::store::TenantLimits;
use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantBody {
    #[serde(default)]
    rpm: Option<u64>,
    #[serde(default)]
    tpm: Option<u64>,
    #[serde(default)]
    max_concurrent: Option<u64>,
}

/// Answers the request if it is one of these routes.
pub async fn dispatch(
    policy: &Arc<Policy>,
    method: &Method,
    segments: &[&str],
    query: &str,
    body: Incoming,
    who: String,
) -> Option<Result<Response<HttpBody>, ApiError>> {
    let p = policy.clone();
    Some(match (method, segments) {
        (&Method::GET, ["keys"]) => ok(blocking(p, |p| to_value(p.store().keys()?)).await),
        (&Method::POST, ["keys"]) => {
            let spec: KeySpec = match read_json(body).await {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            };
            created(
                blocking(p, move |p| {
                    to_value(policy::create_key(p.store(), &spec, &who)?)
                })
                .await,
            )
        }
        (&Method::POST, ["keys", id, "revoke"]) => {
            let id = id.to_string();
            ok(blocking(p, move |p| {
                to_value(policy::revoke_key(p.store(), &id, &who)?)
            })
            .await)
        }
        (&Method::POST, ["keys", id, "rotate"]) => {
            let id = id.to_string();
            created(
                blocking(p, move |p| {
                    to_value(policy::rotate_key(p.store(), &id, &who)?)
                })
                .await,
            )
        }
        (&Method::PUT, ["tenants", tenant]) => {
            let b: TenantBody = match read_json(body).await {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            let limits = TenantLimits {
                tenant: tenant.to_string(),
                rpm: b.rpm,
                tpm: b.tpm,
                max_concurrent: b.max_concurrent,
            };
            ok(blocking(p, move |p| {
                policy::set_tenant_limits(p.store(), &limits, &who)?;
                to_value(limits)
            })
            .await)
        }
        (&Method::GET, ["usage"]) => {
            let since = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("since="))
                .map(str::to_owned);
            ok(blocking(p, move |p| {
                // What this process counted goes out first, so the report
                // is current.
                p.flush_usage()?;
                to_value(policy::usage_report(p.store(), since.as_deref())?)
            })
            .await)
        }
        (m, ["keys"] | ["keys", _, "revoke" | "rotate"] | ["tenants", _] | ["usage"]) => {
            Err(ApiError::MethodNotAllowed(m.to_string()))
        }
        _ => return None,
    })
}

fn to_value(v: impl serde::Serialize) -> Result<Value, PolicyError> {
    serde_json::to_value(v).map_err(|e| PolicyError::Invalid(e.to_string()))
}

fn ok(v: Result<Value, ApiError>) -> Result<Response<HttpBody>, ApiError> {
    v.map(|v| json_response(StatusCode::OK, &v))
}

fn created(v: Result<Value, ApiError>) -> Result<Response<HttpBody>, ApiError> {
    v.map(|v| json_response(StatusCode::CREATED, &v))
}

/// Runs `f` off the async workers (SQLite), then reloads the keys so that
/// the change holds for the next request.
async fn blocking(
    policy: Arc<Policy>,
    f: impl FnOnce(&Policy) -> Result<Value, PolicyError> + Send + 'static,
) -> Result<Value, ApiError> {
    tokio::task::spawn_blocking(move || {
        let out = f(&policy)?;
        policy.refresh()?;
        Ok::<_, PolicyError>(out)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("a key action failed: {e}")))?
    .map_err(ApiError::from)
}
