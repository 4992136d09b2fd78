//! Who may call what, and how much: API keys (stored hashed), roles,
//! tenants, rate limits on requests and tokens, and usage accounting.
//! Knows nothing of HTTP: the server asks it questions and maps its
//! answers (`PolicyError`) to status codes.

mod admission;
mod keyring;
mod limits;
mod manage;
mod role;
mod secret;
mod usage;

pub use admission::Admission;
pub use keyring::ApiKey;
pub use limits::{Caps, RateInfo, What, WINDOW};
pub use manage::{
    create_key, revoke_key, rotate_key, set_tenant_limits, usage_report, KeySpec, NewKey,
    UsageReport,
};
pub use role::Role;

use crate::store::{now_ms, Store, StoreError};
use keyring::{Found, Keyring};
use limits::{Limited, Limits};
use std::sync::Arc;
use usage::UsageBook;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// No key, an unknown key, or one revoked or expired: 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid key whose role or model list does not allow this: 403.
    #[error("{0}")]
    Forbidden(String),
    #[error("{}", .0.message)]
    RateLimited(Box<RateLimited>),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request refused by a limit.
#[derive(Debug)]
pub struct RateLimited {
    pub message: String,
    pub limited: Limited,
    /// The tenant's limit refused it, not the key's.
    pub tenant: bool,
    /// The key's standing, for the `x-ratelimit-*` headers.
    pub info: RateInfo,
}

impl RateLimited {
    /// Whose limit refused it, as the metrics label it: every scope.
    pub const SCOPES: [&'static str; 2] = ["key", "tenant"];

    /// `key` or `tenant`.
    pub fn scope(&self) -> &'static str {
        Self::SCOPES[usize::from(self.tenant)]
    }
}

/// The policy of one server process.
pub struct Policy {
    store: Arc<Store>,
    keyring: Keyring,
    limits: Limits,
    usage: UsageBook,
    /// With no live key, serve without one (bound to loopback, or
    /// `--allow-unauthenticated`); otherwise refuse everything.
    open_without_keys: bool,
}

/// Who is calling: a key, or nobody in open mode.
pub type Caller = Option<Arc<ApiKey>>;

impl Policy {
    pub fn new(store: Arc<Store>, open_without_keys: bool) -> Result<Self, PolicyError> {
        let p = Policy {
            store,
            keyring: Keyring::default(),
            limits: Limits::default(),
            usage: UsageBook::default(),
            open_without_keys,
        };
        p.refresh()?;
        Ok(p)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Re-reads keys and tenant limits (blocking: the store is SQLite).
    pub fn refresh(&self) -> Result<(), PolicyError> {
        Ok(self.keyring.reload(&self.store)?)
    }

    /// Writes counted usage to the store (blocking).
    pub fn flush_usage(&self) -> Result<(), PolicyError> {
        Ok(self.usage.flush(&self.store)?)
    }

    pub fn has_live_keys(&self) -> bool {
        self.keyring.has_live_keys()
    }

    /// Whether requests need a key at all.
    pub fn keys_required(&self) -> bool {
        self.keyring.has_live_keys() || !self.open_without_keys
    }

    /// The caller of a request with this `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, PolicyError> {
        let Some(header) = authorization else {
            if !self.keys_required() {
                return Ok(None);
            }
            return Err(PolicyError::Unauthenticated(
                "this server needs an API key: send `Authorization: Bearer sy-…`".into(),
            ));
        };
        let secret = keyring::bearer(header)?;
        if !self.keys_required() {
            // Open mode: a key is neither needed nor checked.
            return Ok(None);
        }
        match self.keyring.find(secret, now_ms()) {
            Found::Live(k) => Ok(Some(k)),
            Found::Revoked => Err(PolicyError::Unauthenticated(
                "this API key was revoked".into(),
            )),
            Found::Expired => Err(PolicyError::Unauthenticated(
                "this API key has expired".into(),
            )),
            Found::Unknown => Err(PolicyError::Unauthenticated("invalid API key".into())),
        }
    }

    /// Admits a request of `caller` that reserves `tokens` (prompt +
    /// max_tokens for each choice), or refuses it with the limit it hit.
    pub fn admit(
        self: &Arc<Self>,
        caller: &Caller,
        tokens: u64,
    ) -> Result<Option<Admission>, PolicyError> {
        let Some(key) = caller else {
            return Ok(None);
        };
        let r = &key.record;
        let caps = Caps {
            rpm: r.rpm,
            tpm: r.tpm,
            concurrent: r.max_concurrent,
        };
        let tenant_caps = r.tenant.as_deref().map(|t| {
            let l = self.keyring.tenant_limits(t).unwrap_or_default();
            (
                t,
                Caps {
                    rpm: l.rpm,
                    tpm: l.tpm,
                    concurrent: l.max_concurrent,
                },
            )
        });
        let ticket = self
            .limits
            .admit((r.id.as_str(), caps), tenant_caps, tokens)
            .map_err(|refusal| {
                let l = &refusal.limited;
                let whose = if refusal.tenant {
                    format!("tenant `{}`", r.tenant.as_deref().unwrap_or(""))
                } else {
                    format!("key `{}`", r.name)
                };
                let message = if l.never {
                    format!(
                        "this request reserves {tokens} tokens (prompt + max_tokens), more than the \
                         {} {} of {whose}; lower max_tokens",
                        l.limit,
                        l.what.name()
                    )
                } else {
                    format!(
                        "rate limit reached for {whose}: {} {}; retry in {} s",
                        l.limit,
                        l.what.name(),
                        l.retry_after.as_secs_f64().ceil()
                    )
                };
                PolicyError::RateLimited(Box::new(RateLimited {
                    message,
                    limited: refusal.limited,
                    tenant: refusal.tenant,
                    info: refusal.info,
                }))
            })?;
        Ok(Some(Admission::new(self.clone(), key.clone(), ticket)))
    }
}
