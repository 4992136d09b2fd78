//! Creating, rotating, revoking and listing keys, tenant limits and usage
//! reports: shared by `switchyard keys` (on the state database, with or
//! without a server running) and the admin API.

use super::role::Role;
use super::secret;
use super::PolicyError;
use crate::store::dates::{day_of, parse};
use crate::store::{now_ms, KeyRecord, Store, TenantLimits, UsageRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a new key may do, as `keys create` (its flags) and POST
/// /admin/v1/keys (its body) take it.
#[derive(Clone, Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    #[arg(long)]
    pub name: String,
    /// user (the OpenAI API), operator (also the admin API and rollouts)
    /// or admin (also keys).
    #[arg(long)]
    pub role: String,
    #[serde(default)]
    #[arg(long)]
    pub tenant: Option<String>,
    /// Requests per minute (a fixed 60-second window).
    #[serde(default)]
    #[arg(long)]
    pub rpm: Option<u64>,
    /// Tokens per minute: prompt + max_tokens reserved at admission,
    /// settled with what was used.
    #[serde(default)]
    #[arg(long)]
    pub tpm: Option<u64>,
    #[serde(default)]
    #[arg(long)]
    pub max_concurrent: Option<u64>,
    /// The models it may use (names clients send); comma-separated.
    #[serde(default)]
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// The priority of its requests that name none.
    #[serde(default)]
    #[arg(long)]
    pub priority: Option<i32>,
    /// `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default)]
    #[arg(long)]
    pub expires: Option<String>,
}

/// A key just made: the secret, shown this once, and the record.
#[derive(Debug, Serialize)]
pub struct NewKey {
    pub secret: String,
    #[serde(flatten)]
    pub record: KeyRecord,
}

fn check_name(what: &str, s: &str) -> Result<(), PolicyError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(PolicyError::Invalid(format!(
            "{what} `{s}` must be 1 to 64 letters, digits, `-`, `_`, `.` or `@`"
        )))
    }
}

fn positive(what: &str, v: Option<u64>) -> Result<Option<u64>, PolicyError> {
    match v {
        Some(0) => Err(PolicyError::Invalid(format!("{what} must be at least 1"))),
        v => Ok(v),
    }
}

impl KeySpec {
    fn record(
        &self,
        actor: &str,
        replaces: Option<String>,
    ) -> Result<(String, KeyRecord), PolicyError> {
        check_name("the key name", &self.name)?;
        let role = Role::parse(&self.role).ok_or_else(|| {
            PolicyError::Invalid(format!(
                "role `{}` is not user, operator or admin",
                self.role
            ))
        })?;
        if let Some(t) = &self.tenant {
            check_name("the tenant", t)?;
        }
        if let Some(models) = &self.models {
            if models.is_empty() || models.len() > 256 {
                return Err(PolicyError::Invalid(
                    "models must list 1 to 256 names".into(),
                ));
            }
            for m in models {
                check_name("the model", m)?;
            }
        }
        let expires_at = match &self.expires {
            None => None,
            Some(text) => {
                let at = parse(text).ok_or_else(|| {
                    PolicyError::Invalid(format!(
                        "expires `{text}` is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
                    ))
                })?;
                if at <= now_ms() {
                    return Err(PolicyError::Invalid(format!(
                        "expires `{text}` is in the past"
                    )));
                }
                Some(at)
            }
        };
        let (secret, hash) = secret::generate().map_err(PolicyError::Invalid)?;
        let record = KeyRecord {
            id: secret::new_id().map_err(PolicyError::Invalid)?,
            name: self.name.clone(),
            role: role.name().to_owned(),
            tenant: self.tenant.clone(),
            hash,
            rpm: positive("rpm", self.rpm)?,
            tpm: positive("tpm", self.tpm)?,
            max_concurrent: positive("max_concurrent", self.max_concurrent)?,
            models: self.models.clone(),
            priority: self.priority.unwrap_or(0),
            expires_at,
            created_at: now_ms(),
            created_by: actor.to_owned(),
            revoked_at: None,
            replaces,
        };
        Ok((secret, record))
    }

    fn of(r: &KeyRecord) -> KeySpec {
        KeySpec {
            name: r.name.clone(),
            role: r.role.clone(),
            tenant: r.tenant.clone(),
            rpm: r.rpm,
            tpm: r.tpm,
            max_concurrent: r.max_concurrent,
            models: r.models.clone(),
            priority: Some(r.priority),
            expires: None,
        }
    }
}

pub fn create_key(store: &Store, spec: &KeySpec, actor: &str) -> Result<NewKey, PolicyError> {
    let (secret, record) = spec.record(actor, None)?;
    store.insert_key(&record)?;
    Ok(NewKey { secret, record })
}

/// A new secret for the key `id_or_name`, with the same name, role and
/// limits; the old secret stops working at once.
pub fn rotate_key(store: &Store, id_or_name: &str, actor: &str) -> Result<NewKey, PolicyError> {
    let old = store
        .live_key(id_or_name)?
        .ok_or_else(|| PolicyError::NotFound(format!("no live key `{id_or_name}`")))?;
    let (secret, mut record) = KeySpec::of(&old).record(actor, Some(old.id.clone()))?;
    record.expires_at = old.expires_at;
    store.insert_key(&record)?;
    Ok(NewKey { secret, record })
}

pub fn revoke_key(store: &Store, id_or_name: &str, actor: &str) -> Result<KeyRecord, PolicyError> {
    store
        .revoke_key(id_or_name, actor)?
        .ok_or_else(|| PolicyError::NotFound(format!("no live key `{id_or_name}`")))
}

pub fn set_tenant_limits(
    store: &Store,
    limits: &TenantLimits,
    actor: &str,
) -> Result<(), PolicyError> {
    check_name("the tenant", &limits.tenant)?;
    positive("rpm", limits.rpm)?;
    positive("tpm", limits.tpm)?;
    positive("max_concurrent", limits.max_concurrent)?;
    Ok(store.set_tenant_limits(limits, actor)?)
}

/// Usage since `since` (a day; default today): rows per key and day, and
/// totals per tenant and day.
#[derive(Debug, Serialize)]
pub struct UsageReport {
    pub since: String,
    pub keys: Vec<UsageRow>,
    pub tenants: Vec<UsageRow>,
}

pub fn usage_report(store: &Store, since: Option<&str>) -> Result<UsageReport, PolicyError> {
    let since = match since {
        Some(d) => {
            parse(d)
                .filter(|_| d.len() == 10)
                .ok_or_else(|| PolicyError::Invalid(format!("`{d}` is not a day (YYYY-MM-DD)")))?;
            d.to_owned()
        }
        None => day_of(now_ms()),
    };
    let keys = store.usage(Some(&since))?;
    let mut tenants: BTreeMap<(String, String), UsageRow> = BTreeMap::new();
    for k in &keys {
        let t = tenants
            .entry((k.day.clone(), k.tenant.clone()))
            .or_insert_with(|| UsageRow {
                day: k.day.clone(),
                tenant: k.tenant.clone(),
                ..UsageRow::default()
            });
        t.requests += k.requests;
        t.prompt_tokens += k.prompt_tokens;
        t.completion_tokens += k.completion_tokens;
    }
    Ok(UsageReport {
        since,
        keys,
        tenants: tenants.into_values().collect(),
    })
}
