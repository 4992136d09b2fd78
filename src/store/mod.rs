//! State that must outlive the process: the model artifact cache (pull,
//! digest, verify) and the SQLite database of versions, deployments and
//! the audit trail.

pub mod artifacts;
mod catalog;
pub mod dates;
pub mod db;
mod digest;
mod evaluations;
mod keys;
mod schema;

pub use artifacts::{artifact_path, home, lookup, models_dir, pull, PullOutcome};
pub use catalog::{KnownModel, CATALOG, DEFAULT_MODEL};
pub use dates::{now_ms, now_unix};
pub use db::{AuditEntry, Deployment, NewAudit, Store, VersionRecord, WarmupCheck};
pub use digest::sha256_file;
pub use keys::{KeyRecord, TenantLimits, UsageRow};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown model `{0}`; known models: {1}")]
    UnknownModel(String, String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not run `{command}`: {detail}")]
    Command { command: String, detail: String },
    #[error("{path}: {detail}")]
    Database { path: PathBuf, detail: String },
    #[error("version `{1}` of `{0}` already exists; versions are immutable, register a new one")]
    VersionExists(String, String),
    #[error("{path}: sha256 is {found}, expected {expected}; the file was removed")]
    DigestMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
}
