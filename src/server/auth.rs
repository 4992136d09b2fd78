//! Each request's caller and what it may reach. The policy room decides
//! who a key is and what its limits are; the route table (`routes.rs`)
//! says what each route needs; this file checks the one against the
//! other, and admits a request against its key's limits.

use super::context;
use super::error::ApiError;
use crate::policy::{Admission, Caller, Policy, PolicyError, Role};
use hyper::HeaderMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a route asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Health checks: load balancers carry no keys.
    Nothing,
    /// /metrics: open to loopback peers (a local Prometheus), else an
    /// operator's key.
    Metrics,
    /// The OpenAI API: any key.
    User,
    /// The admin API: an operator's key (with keys), a loopback peer
    /// (without), and a client certificate where the server asks for one.
    Operator,
    /// The admin API of keys and tenants: an admin's key.
    Admin,
}

impl Need {
    /// Whether the route belongs to the admin API.
    pub fn is_admin(self) -> bool {
        matches!(self, Need::Operator | Need::Admin)
    }
}

/// Authenticates the request and checks its role against what the route
/// needs; the caller is None for routes that need no key and in open
/// mode.
pub fn check(
    policy: &Arc<Policy>,
    peer: SocketAddr,
    need: Need,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let required = match need {
        Need::Nothing => return Ok(None),
        Need::Metrics if peer.ip().is_loopback() => return Ok(None),
        Need::Metrics | Need::Operator => Role::Operator,
        Need::User => Role::User,
        Need::Admin => Role::Admin,
    };
    let header = headers
        .get(hyper::header::AUTHORIZATION)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::from(PolicyError::Unauthenticated(
                    "the Authorization header is not text".into(),
                ))
            })
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
    Ok(caller)
}

/// Admits the current request, which reserves `tokens`; None when no key
/// limits it.
pub fn admit(tokens: u64) -> Result<Option<Admission>, ApiError> {
    let Some((policy, caller)) = context::policy_and_caller() else {
        return Ok(None);
    };
    let admission = policy.admit(&caller, tokens)?;
    if let Some(info) = admission.as_ref().and_then(|a| a.info()) {
        context::rate(info);
    }
    Ok(admission)
}

/// Checks that the caller may use the model clients call `names` (any).
pub fn check_model<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), ApiError> {
    let Some(key) = context::caller() else {
        return Ok(());
    };
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
    context::caller().map_or(0, |k| k.record.priority as i64)
}
