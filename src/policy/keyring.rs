//! The live keys in memory, reloaded from the store every few seconds so
//! that a key created or revoked by `switchyard keys` (another process)
//! takes effect without a restart. Readers never lock: the index is
//! swapped whole.

use super::role::Role;
use super::secret::{constant_time_eq, hash, tag};
use super::PolicyError;
use crate::store::{KeyRecord, Store, StoreError, TenantLimits};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;

/// A key as requests see it.
#[derive(Debug)]
pub struct ApiKey {
    pub record: KeyRecord,
    pub role: Role,
}

impl ApiKey {
    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Whether the key may use the model clients call `name`.
    pub fn allows_model(&self, name: &str) -> bool {
        self.record
            .models
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == name))
    }
}

#[derive(Default)]
struct Index {
    by_tag: HashMap<u64, Vec<Arc<ApiKey>>>,
    live: usize,
    tenants: HashMap<String, TenantLimits>,
}

#[derive(Default)]
pub struct Keyring {
    index: ArcSwap<Index>,
}

/// What a presented secret turned out to be.
pub enum Found {
    Live(Arc<ApiKey>),
    Revoked,
    Expired,
    Unknown,
}

impl Keyring {
    pub fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let mut index = Index::default();
        for record in store.keys()? {
            // A role this build does not know grants nothing.
            let Some(role) = Role::parse(&record.role) else {
                continue;
            };
            if record.revoked_at.is_none() {
                index.live += 1;
            }
            let key = Arc::new(ApiKey { role, record });
            index
                .by_tag
                .entry(tag(&key.record.hash))
                .or_default()
                .push(key);
        }
        for t in store.tenant_limits()? {
            index.tenants.insert(t.tenant.clone(), t);
        }
        self.index.store(Arc::new(index));
        Ok(())
    }

    pub fn has_live_keys(&self) -> bool {
        self.index.load().live > 0
    }

    pub fn tenant_limits(&self, tenant: &str) -> Option<TenantLimits> {
        self.index.load().tenants.get(tenant).cloned()
    }

    pub fn find(&self, secret: &str, now_ms: i64) -> Found {
        let h = hash(secret);
        let index = self.index.load();
        let Some(candidates) = index.by_tag.get(&tag(&h)) else {
            return Found::Unknown;
        };
        let Some(key) = candidates
            .iter()
            .find(|k| constant_time_eq(&k.record.hash, &h))
        else {
            return Found::Unknown;
        };
        if key.record.revoked_at.is_some() {
            Found::Revoked
        } else if key.record.expires_at.is_some_and(|e| e <= now_ms) {
            Found::Expired
        } else {
            Found::Live(key.clone())
        }
    }
}

/// The secret of an `Authorization: Bearer …` header.
pub fn bearer(header: &str) -> Result<&str, PolicyError> {
    let (scheme, secret) = header.trim().split_once(' ').ok_or_else(|| {
        PolicyError::Unauthenticated("the Authorization header is not `Bearer <key>`".into())
    })?;
    let secret = secret.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || secret.is_empty() {
        return Err(PolicyError::Unauthenticated(
            "the Authorization header is not `Bearer <key>`".into(),
        ));
    }
    Ok(secret)
}
