//! Each request's caller and what it may reach. The policy room decides
//! who a key is and what its limits are; this file knows which routes
//! need which role, and carries the caller to the handlers (a task-local,
//! like the served version) and the rate-limit standing back to the
//! response headers.

use super::error::ApiError;
use crate::policy::{Admission, Caller, Policy, PolicyError, RateInfo, Role};
use hyper::header::HeaderValue;
use hyper::{HeaderMap, Response};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a route asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Health checks: load balancers carry no keys.
    Nothing,
    /// /metrics: open to loopback peers (a local Prometheus), else an
    /// operator's key.
    Metrics,
    Role(Role),
}

pub fn need(path: &str) -> Need {
    let path = path.trim_end_matches('/');
    let admin = super::admin::PREFIX;
    match path {
        "/health" | "/ready" => Need::Nothing,
        "/metrics" => Need::Metrics,
        p if p == admin || p.starts_with(&format!("{admin}/")) => {
            let rest = &p[admin.len()..];
            if rest.starts_with("/keys") || rest.starts_with("/tenants") {
                Need::Role(Role::Admin)
            } else {
                Need::Role(Role::Operator)
            }
        }
        _ => Need::Role(Role::User),
    }
}

/// The policy and the caller of the request being handled.
#[derive(Clone)]
pub struct Auth {
    pub policy: Arc<Policy>,
    pub caller: Caller,
}

tokio::task_local! {
    static AUTH: Auth;
    static RATE: RefCell<Option<RateInfo>>;
}

/// Authenticates the request and checks its role against the route.
pub fn check(
    policy: &Arc<Policy>,
    peer: SocketAddr,
    path: &str,
    headers: &HeaderMap,
) -> Result<Auth, ApiError> {
    let open = Auth {
        policy: policy.clone(),
        caller: None,
    };
    let required = match need(path) {
        Need::Nothing => return Ok(open),
        Need::Metrics if peer.ip().is_loopback() => return Ok(open),
        Need::Metrics => Role::Operator,
        Need::Role(r) => r,
    };
    let header = headers
        .get(hyper::header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| unauthenticated("the Authorization header is not text"))
        })
        .transpose()?;
    let caller = policy.authenticate(header)?;
    if let Some(key) = &caller {
        if key.role < required {
            return Err(PolicyError::Forbidden(format!(
                "key `{}` has role {}; this needs {}",
                key.name(),
                key.role.name(),
                required.name()
            ))
            .into());
        }
    }
    Ok(Auth {
        policy: policy.clone(),
        caller,
    })
}

fn unauthenticated(why: &str) -> ApiError {
    PolicyError::Unauthenticated(why.into()).into()
}

/// Runs `f` as the request of `auth`; returns its answer and the
/// rate-limit standing an admission recorded.
pub async fn scope<F: std::future::Future>(auth: Auth, f: F) -> (F::Output, Option<RateInfo>) {
    AUTH.scope(
        auth,
        RATE.scope(RefCell::new(None), async {
            let out = f.await;
            (out, RATE.with(|r| r.borrow_mut().take()))
        }),
    )
    .await
}

/// The caller of the current request (None: open mode, or not a request,
/// such as a shadow copy).
pub fn caller() -> Caller {
    AUTH.try_with(|a| a.caller.clone()).ok().flatten()
}

/// Admits the current request, which reserves `tokens`; None when no key
/// limits it.
pub fn admit(tokens: u64) -> Result<Option<Admission>, ApiError> {
    let Ok(Auth { policy, caller }) = AUTH.try_with(Clone::clone) else {
        return Ok(None);
    };
    let admission = policy.admit(&caller, tokens)?;
    if let Some(info) = admission.as_ref().and_then(|a| a.info()) {
        let _ = RATE.try_with(|r| *r.borrow_mut() = Some(info.clone()));
    }
    Ok(admission)
}

/// Checks that the caller may use the model clients call `names` (any).
pub fn check_model<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), ApiError> {
    let Some(key) = caller() else { return Ok(()) };
    let names: Vec<&str> = names.into_iter().collect();
    if names.iter().any(|n| key.allows_model(n)) {
        return Ok(());
    }
    Err(PolicyError::Forbidden(format!(
        "key `{}` may not use the model `{}`",
        key.name(),
        names.first().copied().unwrap_or("")
    ))
    .into())
}

/// The priority of a request that names none: its key's default.
pub fn default_priority() -> i64 {
    caller().map_or(0, |k| k.record.priority as i64)
}

/// OpenAI's `x-ratelimit-*` headers.
pub fn rate_headers<B>(resp: &mut Response<B>, info: &RateInfo) {
    let h = resp.headers_mut();
    let reset = format!("{:.3}s", info.reset.as_secs_f64());
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    if let Some((limit, remaining)) = info.requests {
        put("x-ratelimit-limit-requests", limit.to_string());
        put("x-ratelimit-remaining-requests", remaining.to_string());
        put("x-ratelimit-reset-requests", reset.clone());
    }
    if let Some((limit, remaining)) = info.tokens {
        put("x-ratelimit-limit-tokens", limit.to_string());
        put("x-ratelimit-remaining-tokens", remaining.to_string());
        put("x-ratelimit-reset-tokens", reset);
    }
}
