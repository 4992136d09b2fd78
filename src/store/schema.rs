//! The tables of the state database, their triggers, and the columns
//! added since the first release (added to older files as they open).

use rusqlite::Connection;

/// Creates what is missing and adds the columns an older file lacks.
pub(super) fn create(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch(VERSIONS_AND_DEPLOYMENTS)?;
    c.execute_batch(KEYS_AND_USAGE)?;
    migrate(c)
}

/// Versions, their warm-up checks and evaluations, deployments, and the
/// append-only audit trail.
const VERSIONS_AND_DEPLOYMENTS: &str = "
CREATE TABLE IF NOT EXISTS versions (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    artifact TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    source TEXT NOT NULL,
    quantization TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    notes TEXT NOT NULL,
    warmup TEXT NOT NULL,
    eval_score REAL,
    quantize TEXT,
    eval_set TEXT,
    PRIMARY KEY (model, version)
);
CREATE TRIGGER IF NOT EXISTS versions_are_immutable
    BEFORE UPDATE ON versions
    BEGIN SELECT RAISE(ABORT, 'model versions are immutable'); END;
CREATE TABLE IF NOT EXISTS warmup_checks (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    passed INTEGER NOT NULL,
    detail TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS deployments (
    model TEXT PRIMARY KEY,
    stable TEXT NOT NULL,
    previous TEXT,
    canary TEXT,
    canary_percent REAL NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    rollout TEXT,
    shadow TEXT,
    shadow_percent REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    set_digest TEXT NOT NULL,
    at INTEGER NOT NULL,
    report TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS evaluations_are_append_only
    BEFORE UPDATE ON evaluations
    BEGIN SELECT RAISE(ABORT, 'evaluation results are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_u
    BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_d
    BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
";

/// API keys (their hashes), tenant limits and daily usage.
const KEYS_AND_USAGE: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    tenant TEXT,
    hash BLOB NOT NULL UNIQUE,
    rpm INTEGER,
    tpm INTEGER,
    max_concurrent INTEGER,
    models TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER,
    replaces TEXT
);
CREATE TABLE IF NOT EXISTS tenant_limits (
    tenant TEXT PRIMARY KEY,
    rpm INTEGER,
    tpm INTEGER,
    max_concurrent INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL,
    key_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    requests INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    PRIMARY KEY (day, key_id)
);
";

fn migrate(c: &Connection) -> rusqlite::Result<()> {
    let added = [
        ("deployments", "rollout", "TEXT"),
        ("deployments", "shadow", "TEXT"),
        ("deployments", "shadow_percent", "REAL NOT NULL DEFAULT 0"),
        ("versions", "eval_score", "REAL"),
        ("versions", "quantize", "TEXT"),
        ("versions", "eval_set", "TEXT"),
    ];
    for (table, column, definition) in added {
        let present = c
            .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
            .exists([table, column])?;
        if !present {
            c.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}
