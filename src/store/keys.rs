//! API keys, tenant limits and daily usage. A key is stored as the SHA-256
//! of its secret, never the secret; revoking sets `revoked_at` and keeps
//! the row, so the audit trail and usage still name it.

use super::dates::now_ms;
use super::db::{NewAudit, Store};
use super::StoreError;
use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

/// A key as stored: everything but the secret.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub role: String,
    pub tenant: Option<String>,
    #[serde(skip)]
    pub hash: [u8; 32],
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u64>,
    /// The models the key may use; None for all.
    pub models: Option<Vec<String>>,
    pub priority: i32,
    /// Unix milliseconds.
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
    /// The key this one rotated.
    pub replaces: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TenantLimits {
    pub tenant: String,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u64>,
}

/// Tokens used by one key on one UTC day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UsageRow {
    pub day: String,
    pub key_id: String,
    pub tenant: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

const KEY_COLUMNS: &str = "id, name, role, tenant, hash, rpm, tpm, max_concurrent, models, \
     priority, expires_at, created_at, created_by, revoked_at, replaces";

/// An optional limit column (stored as a signed integer).
fn count(r: &Row, i: usize) -> rusqlite::Result<Option<u64>> {
    Ok(r.get::<_, Option<i64>>(i)?.map(|v| v.max(0) as u64))
}

fn key_row(r: &Row) -> rusqlite::Result<KeyRecord> {
    let hash: Vec<u8> = r.get(4)?;
    let models: Option<String> = r.get(8)?;
    let count = |i| count(r, i);
    Ok(KeyRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        tenant: r.get(3)?,
        hash: hash.try_into().unwrap_or([0; 32]),
        rpm: count(5)?,
        tpm: count(6)?,
        max_concurrent: count(7)?,
        models: models.and_then(|m| serde_json::from_str(&m).ok()),
        priority: r.get(9)?,
        expires_at: r.get(10)?,
        created_at: r.get(11)?,
        created_by: r.get(12)?,
        revoked_at: r.get(13)?,
        replaces: r.get(14)?,
    })
}

fn audit_key<'a>(action: &'a str, k: &KeyRecord, actor: &'a str, detail: String) -> NewAudit<'a> {
    NewAudit {
        actor,
        action,
        model: "(keys)",
        version: None,
        before: serde_json::Value::Null,
        after: serde_json::json!({"id": k.id, "name": k.name, "role": k.role, "tenant": k.tenant}),
        ok: true,
        detail,
    }
}

impl Store {
    /// Adds a key, and revokes the one it `replaces` in the same
    /// transaction (a rotation), with its audit entries.
    pub fn insert_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
        let models = k
            .models
            .as_ref()
            .map(|m| serde_json::to_string(m).unwrap_or_default());
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                &format!(
                    "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULL, ?14)"
                ),
                params![
                    k.id,
                    k.name,
                    k.role,
                    k.tenant,
                    k.hash.as_slice(),
                    k.rpm.map(|v| v as i64),
                    k.tpm.map(|v| v as i64),
                    k.max_concurrent.map(|v| v as i64),
                    models,
                    k.priority,
                    k.expires_at,
                    k.created_at,
                    k.created_by,
                    k.replaces,
                ],
            )?;
            if let Some(old) = &k.replaces {
                tx.execute(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![old, now_ms()],
                )?;
            }
            let (action, detail) = match &k.replaces {
                Some(old) => ("key.rotate", format!("replaces {old}")),
                None => ("key.create", String::new()),
            };
            super::db::append(&tx, &audit_key(action, k, &k.created_by, detail))?;
            tx.commit()
        })
    }

    /// Revokes a key by id or name (a name must be unambiguous); None when
    /// no live key matches.
    pub fn revoke_key(
        &self,
        id_or_name: &str,
        actor: &str,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let Some(k) = self.live_key(id_or_name)? else {
            return Ok(None);
        };
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1",
                params![k.id, now_ms()],
            )?;
            super::db::append(&tx, &audit_key("key.revoke", &k, actor, String::new()))?;
            tx.commit()
        })?;
        Ok(Some(k))
    }

    /// The live (not revoked) key with this id, or with this name.
    pub fn live_key(&self, id_or_name: &str) -> Result<Option<KeyRecord>, StoreError> {
        let found: Vec<KeyRecord> = self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL \
                 AND (id = ?1 OR name = ?1) ORDER BY id = ?1 DESC"
            ))?;
            let rows = st.query_map([id_or_name], key_row)?;
            rows.collect()
        })?;
        Ok(match found.as_slice() {
            [one] => Some(one.clone()),
            [first, ..] if first.id == id_or_name => Some(first.clone()),
            _ => None,
        })
    }

    /// Every key, revoked ones included, oldest first.
    pub fn keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
            ))?;
            let rows = st.query_map([], key_row)?;
            rows.collect()
        })
    }

    pub fn set_tenant_limits(&self, t: &TenantLimits, actor: &str) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO tenant_limits (tenant, rpm, tpm, max_concurrent, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant) DO UPDATE SET rpm = ?2, tpm = ?3, max_concurrent = ?4,
                 updated_at = ?5",
                params![
                    t.tenant,
                    t.rpm.map(|v| v as i64),
                    t.tpm.map(|v| v as i64),
                    t.max_concurrent.map(|v| v as i64),
                    now_ms()
                ],
            )?;
            super::db::append(
                &tx,
                &NewAudit {
                    actor,
                    action: "tenant.limits",
                    model: "(keys)",
                    version: None,
                    before: serde_json::Value::Null,
                    after: serde_json::to_value(t).unwrap_or_default(),
                    ok: true,
                    detail: String::new(),
                },
            )?;
            tx.commit()
        })
    }

    pub fn tenant_limits(&self) -> Result<Vec<TenantLimits>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT tenant, rpm, tpm, max_concurrent FROM tenant_limits ORDER BY tenant",
            )?;
            let rows = st.query_map([], |r| {
                Ok(TenantLimits {
                    tenant: r.get(0)?,
                    rpm: count(r, 1)?,
                    tpm: count(r, 2)?,
                    max_concurrent: count(r, 3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Adds the rows to the day's totals, in one transaction.
    pub fn add_usage(&self, rows: &[UsageRow]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for u in rows {
                tx.execute(
                    "INSERT INTO usage (day, key_id, tenant, requests, prompt_tokens, completion_tokens)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (day, key_id) DO UPDATE SET requests = requests + ?4,
                     prompt_tokens = prompt_tokens + ?5, completion_tokens = completion_tokens + ?6",
                    params![
                        u.day,
                        u.key_id,
                        u.tenant,
                        u.requests as i64,
                        u.prompt_tokens as i64,
                        u.completion_tokens as i64
                    ],
                )?;
            }
            tx.commit()
        })
    }

    /// Usage per key and day, from `since` (a `YYYY-MM-DD` day) on.
    pub fn usage(&self, since: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT day, key_id, tenant, requests, prompt_tokens, completion_tokens FROM usage
                 WHERE day >= ?1 ORDER BY day, tenant, key_id",
            )?;
            let rows = st.query_map([since.unwrap_or("")], |r| {
                Ok(UsageRow {
                    day: r.get(0)?,
                    key_id: r.get(1)?,
                    tenant: r.get(2)?,
                    requests: r.get::<_, i64>(3)? as u64,
                    prompt_tokens: r.get::<_, i64>(4)? as u64,
                    completion_tokens: r.get::<_, i64>(5)? as u64,
                })
            })?;
            rows.collect()
        })
    }

    /// Whether any key is live: with none, the server may serve openly.
    pub fn has_live_keys(&self) -> Result<bool, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1",
                [],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        })
    }
}
