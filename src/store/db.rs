//! The one SQLite database: model versions, deployments and the audit
//! trail. WAL journal, so readers never wait for the writer; every change
//! of a deployment is written in the same transaction as its audit entry,
//! so a crash leaves either both or neither.

use super::dates::now_ms;
use super::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An immutable record of one version of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub model: String,
    pub version: String,
    /// The weights: a GGUF file or a Hugging Face directory.
    pub artifact: String,
    pub sha256: String,
    pub size_bytes: u64,
    /// Where the artifact came from, in the registrant's words.
    pub source: String,
    /// How the weights are encoded (`q4_1`, `bf16`, …).
    pub quantization: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub created_by: String,
    pub notes: String,
    /// Golden prompts that must answer before the version takes traffic
    /// (a JSON array, see `registry::warmup`).
    pub warmup: serde_json::Value,
    /// The version's evaluation score, higher is better, when it has one;
    /// the canary analysis compares it with stable's.
    #[serde(default)]
    pub eval_score: Option<f64>,
    /// The format the weights are re-encoded in at load (`q4_k` …), when
    /// not served as the artifact stores them.
    #[serde(default)]
    pub quantize: Option<String>,
    /// The version's evaluation set (`registry::eval::set`), when it has
    /// one: deploy and promote compare it with stable's results.
    #[serde(default)]
    pub eval_set: Option<serde_json::Value>,
}

/// What a model's traffic goes to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub model: String,
    pub stable: String,
    /// The stable version before the last change: where rollback goes.
    pub previous: Option<String>,
    pub canary: Option<String>,
    /// Share of requests (0–100) the canary answers.
    pub canary_percent: f64,
    pub updated_at: i64,
    pub updated_by: String,
    /// A version that gets a copy of a share of the requests, its answers
    /// discarded.
    #[serde(default)]
    pub shadow: Option<String>,
    #[serde(default)]
    pub shadow_percent: f64,
    /// The canary's rollout plan and the step it is at, when one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<serde_json::Value>,
}

/// One admin action, as the audit trail keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub model: String,
    pub version: Option<String>,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    /// `ok` or `error`.
    pub result: String,
    pub detail: String,
}

/// An audit entry before the database numbers it.
#[derive(Clone, Debug)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub model: &'a str,
    pub version: Option<&'a str>,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub ok: bool,
    pub detail: String,
}

/// The outcome of a version's warm-up, kept so that a failed version
/// cannot be deployed later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WarmupCheck {
    pub passed: bool,
    pub detail: String,
    pub at: i64,
}

pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = |e: rusqlite::Error| StoreError::Database {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
        let conn = Connection::open(path).map_err(db)?;
        // WAL: readers never block on the writer. synchronous=FULL: a
        // committed deployment survives power loss, not only kill -9.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        super::schema::create(&conn).map_err(db)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn).map_err(|e| StoreError::Database {
            path: self.path.clone(),
            detail: e.to_string(),
        })
    }

    /// Adds a version and its audit entry; a version that already exists
    /// is refused (versions are immutable).
    pub fn insert_version(&self, v: &VersionRecord, audit: &NewAudit) -> Result<(), StoreError> {
        if self.version(&v.model, &v.version)?.is_some() {
            return Err(StoreError::VersionExists(
                v.model.clone(),
                v.version.clone(),
            ));
        }
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO versions (model, version, artifact, sha256, size_bytes, source,
                     quantization, created_at, created_by, notes, warmup, eval_score,
                     quantize, eval_set)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    v.model,
                    v.version,
                    v.artifact,
                    v.sha256,
                    v.size_bytes as i64,
                    v.source,
                    v.quantization,
                    v.created_at,
                    v.created_by,
                    v.notes,
                    v.warmup.to_string(),
                    v.eval_score,
                    v.quantize,
                    v.eval_set.as_ref().map(|s| s.to_string())
                ],
            )?;
            append(&tx, audit)?;
            tx.commit()
        })
    }

    pub fn version(&self, model: &str, version: &str) -> Result<Option<VersionRecord>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("{VERSION_COLUMNS} WHERE model = ?1 AND version = ?2"),
                params![model, version],
                version_row,
            )
            .optional()
        })
    }

    /// Every version of `model` (of every model when None), oldest first.
    pub fn versions(&self, model: Option<&str>) -> Result<Vec<VersionRecord>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "{VERSION_COLUMNS} WHERE ?1 IS NULL OR model = ?1 ORDER BY created_at, rowid"
            ))?;
            let rows = stmt.query_map(params![model], version_row)?;
            rows.collect()
        })
    }

    pub fn record_warmup(
        &self,
        model: &str,
        version: &str,
        check: &WarmupCheck,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO warmup_checks (model, version, passed, detail, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![model, version, check.passed, check.detail, check.at],
            )
            .map(|_| ())
        })
    }

    pub fn warmup(&self, model: &str, version: &str) -> Result<Option<WarmupCheck>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT passed, detail, at FROM warmup_checks WHERE model = ?1 AND version = ?2",
                params![model, version],
                |r| {
                    Ok(WarmupCheck {
                        passed: r.get(0)?,
                        detail: r.get(1)?,
                        at: r.get(2)?,
                    })
                },
            )
            .optional()
        })
    }

    pub fn deployment(&self, model: &str) -> Result<Option<Deployment>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!("{DEPLOYMENT_COLUMNS} WHERE model = ?1"),
                params![model],
                deployment_row,
            )
            .optional()
        })
    }

    pub fn deployments(&self) -> Result<Vec<Deployment>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!("{DEPLOYMENT_COLUMNS} ORDER BY model"))?;
            let rows = stmt.query_map([], deployment_row)?;
            rows.collect()
        })
    }

    /// Writes a model's new deployment and its audit entry at once.
    pub fn set_deployment(&self, d: &Deployment, audit: &NewAudit) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO deployments
                     (model, stable, previous, canary, canary_percent, updated_at, updated_by,
                      rollout, shadow, shadow_percent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    d.model,
                    d.stable,
                    d.previous,
                    d.canary,
                    d.canary_percent,
                    d.updated_at,
                    d.updated_by,
                    d.rollout.as_ref().map(|r| r.to_string()),
                    d.shadow,
                    d.shadow_percent
                ],
            )?;
            append(&tx, audit)?;
            tx.commit()
        })
    }

    /// Appends an audit entry on its own (an action that changed no
    /// deployment, or failed).
    pub fn audit(&self, entry: &NewAudit) -> Result<(), StoreError> {
        self.with(|c| append(c, entry))
    }

    /// The newest `limit` entries (of `model` when given), oldest first.
    pub fn audit_trail(
        &self,
        model: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, at, actor, action, model, version, before, after, result, detail
                 FROM audit WHERE ?1 IS NULL OR model = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![model, limit as i64], |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    model: r.get(4)?,
                    version: r.get(5)?,
                    before: json_column(r.get::<_, String>(6)?),
                    after: json_column(r.get::<_, String>(7)?),
                    result: r.get(8)?,
                    detail: r.get(9)?,
                })
            })?;
            let mut entries = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            entries.reverse();
            Ok(entries)
        })
    }
}

const VERSION_COLUMNS: &str = "SELECT model, version, artifact, sha256, size_bytes, source,
    quantization, created_at, created_by, notes, warmup, eval_score, quantize, eval_set
    FROM versions";

fn version_row(r: &rusqlite::Row) -> rusqlite::Result<VersionRecord> {
    Ok(VersionRecord {
        model: r.get(0)?,
        version: r.get(1)?,
        artifact: r.get(2)?,
        sha256: r.get(3)?,
        size_bytes: r.get::<_, i64>(4)?.max(0) as u64,
        source: r.get(5)?,
        quantization: r.get(6)?,
        created_at: r.get(7)?,
        created_by: r.get(8)?,
        notes: r.get(9)?,
        warmup: json_column(r.get::<_, String>(10)?),
        eval_score: r.get(11)?,
        quantize: r.get(12)?,
        eval_set: r.get::<_, Option<String>>(13)?.map(json_column),
    })
}

const DEPLOYMENT_COLUMNS: &str = "SELECT model, stable, previous, canary, canary_percent,
    updated_at, updated_by, rollout, shadow, shadow_percent FROM deployments";

fn deployment_row(r: &rusqlite::Row) -> rusqlite::Result<Deployment> {
    Ok(Deployment {
        model: r.get(0)?,
        stable: r.get(1)?,
        previous: r.get(2)?,
        canary: r.get(3)?,
        canary_percent: r.get(4)?,
        updated_at: r.get(5)?,
        updated_by: r.get(6)?,
        rollout: r.get::<_, Option<String>>(7)?.map(json_column),
        shadow: r.get(8)?,
        shadow_percent: r.get(9)?,
    })
}

/// Brings a database written by an older build up to this schema: the
/// columns added since, each with its table and definition.
fn json_column(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

pub(super) fn append(c: &Connection, e: &NewAudit) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit (at, actor, action, model, version, before, after, result, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            now_ms(),
            e.actor,
            e.action,
            e.model,
            e.version,
            e.before.to_string(),
            e.after.to_string(),
            if e.ok { "ok" } else { "error" },
            e.detail
        ],
    )
    .map(|_| ())
}

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
