//! The admin API of keys, tenant limits and usage (role admin; usage may
//! be read by operators): /admin/v1/keys, /admin/v1/tenants/{t},
//! /admin/v1/usage. A change takes effect at once in this process; other
//! replicas on the same database see it at their next reload.

use crate::policy::{self, KeySpec, Policy, PolicyError};
use crate::server::body::read_json;
use crate::server::error::ApiError;
use crate::server::reply::{json_response, HttpBody};
use crate::server::routes::{Endpoint, Params};
use crate::store::TenantLimits;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
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

/// The handler of each key, tenant and usage endpoint.
pub async fn handle(
    endpoint: Endpoint,
    policy: &Arc<Policy>,
    params: &Params,
    query: &str,
    body: Incoming,
    who: String,
) -> Result<Response<HttpBody>, ApiError> {
    let p = policy.clone();
    match endpoint {
        Endpoint::KeysList => ok(blocking(p, |p| to_value(p.store().keys()?)).await),
        Endpoint::KeysCreate => {
            let spec: KeySpec = read_json(body).await?;
            created(
                blocking(p, move |p| {
                    to_value(policy::create_key(p.store(), &spec, &who)?)
                })
                .await,
            )
        }
        Endpoint::KeyRevoke => {
            let id = params.get("key").to_owned();
            ok(blocking(p, move |p| {
                to_value(policy::revoke_key(p.store(), &id, &who)?)
            })
            .await)
        }
        Endpoint::KeyRotate => {
            let id = params.get("key").to_owned();
            created(
                blocking(p, move |p| {
                    to_value(policy::rotate_key(p.store(), &id, &who)?)
                })
                .await,
            )
        }
        Endpoint::Tenant => {
            let b: TenantBody = read_json(body).await?;
            let limits = TenantLimits {
                tenant: params.get("tenant").to_owned(),
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
        Endpoint::Usage => {
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
        other => Err(ApiError::Internal(format!(
            "{other:?} is not an endpoint of keys, tenants or usage"
        ))),
    }
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
