//! Registering a version: its artifact is checked (it must parse as a
//! model and match the digest given) and hashed, and an immutable record
//! is stored with its audit entry. Nothing is loaded.

use super::names;
use super::warmup;
use super::{Registry, RegistryError};
use crate::model::{ModelSource, WeightFormat};
use crate::store::{self, now_ms, NewAudit, VersionRecord};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;

/// The body of a registration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub version: String,
    /// An absolute path on the server: a GGUF file or a Hugging Face
    /// directory.
    pub artifact: String,
    /// The digest the artifact must have (hex, optionally `sha256:`).
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub warmup: Option<Value>,
    /// An evaluation score, higher is better, compared by canary analysis.
    #[serde(default)]
    pub eval_score: Option<f64>,
    /// Re-encode the weights in this format at load (`q4_k`, `q8_0` …),
    /// as `switchyard quantize` would write them.
    #[serde(default)]
    pub quantize: Option<String>,
    /// Golden prompts and a perplexity text (`eval::set`) that deploy and
    /// promote compare with stable's results.
    #[serde(default)]
    pub eval_set: Option<Value>,
}

impl Registry {
    /// Adds an immutable version after checking its artifact: it must
    /// parse as a model and match the digest given.
    pub fn register(
        &self,
        model: &str,
        r: Registration,
        actor: &str,
    ) -> Result<VersionRecord, RegistryError> {
        names::check_model(model)?;
        names::check_version(&r.version)?;
        // No lock: the store refuses a second version of the same name.
        let version = r.version.clone();
        self.audited(actor, "register", model, Some(&version), || {
            if self.store.version(model, &r.version)?.is_some() {
                return Err(RegistryError::Conflict(format!(
                    "version `{}` of `{model}` already exists; versions are immutable, register a new one",
                    r.version
                )));
            }
            let warmup = warmup::parse(r.warmup.as_ref())?;
            if let Some(q) = r.quantize.as_deref() {
                WeightFormat::parse(q)
                    .map_err(|e| RegistryError::Invalid(format!("quantize {e}")))?;
            }
            let eval_set = match r.eval_set.as_ref().filter(|v| !v.is_null()) {
                Some(v) => Some(json!(super::eval::set::parse(v)?)),
                None => None,
            };
            if r.eval_score.is_some_and(|s| !s.is_finite()) {
                return Err(RegistryError::Invalid("eval_score must be a finite number".into()));
            }
            let path = PathBuf::from(&r.artifact);
            if !path.is_absolute() {
                return Err(RegistryError::Invalid(
                    "artifact must be an absolute path on the server".into(),
                ));
            }
            if !path.exists() {
                return Err(RegistryError::Artifact(format!("{} does not exist", r.artifact)));
            }
            if !(path.is_file() || path.is_dir()) {
                return Err(RegistryError::Artifact(format!(
                    "{} is neither a regular file nor a directory",
                    r.artifact
                )));
            }
            let facts = crate::model::loaded::inspect(&ModelSource::from_path(&path))
                .map_err(|e| RegistryError::Artifact(e.to_string()))?;
            let sha256 = artifact_digest(&path)?;
            if let Some(expected) = &r.sha256 {
                let expected = expected.trim_start_matches("sha256:").to_ascii_lowercase();
                if expected != sha256 {
                    return Err(RegistryError::Artifact(format!(
                        "{} has sha256 {sha256}, not the {expected} given",
                        r.artifact
                    )));
                }
            }
            let record = VersionRecord {
                model: model.to_owned(),
                version: r.version.clone(),
                artifact: r.artifact.clone(),
                sha256,
                size_bytes: super::loader::artifact_bytes(&path),
                source: r.source.clone().unwrap_or_else(|| r.artifact.clone()),
                quantization: facts.quantization,
                created_at: now_ms(),
                created_by: actor.to_owned(),
                notes: r.notes.clone().unwrap_or_default(),
                warmup: json!(warmup),
                eval_score: r.eval_score,
                quantize: r.quantize.clone(),
                eval_set,
            };
            self.store.insert_version(
                &record,
                &NewAudit {
                    actor,
                    action: "register",
                    model,
                    version: Some(&record.version),
                    before: Value::Null,
                    after: json!(record),
                    ok: true,
                    detail: format!("{} architecture", facts.architecture),
                },
            )?;
            Ok(record)
        })
    }
}

/// SHA-256 of a file; of a directory, the SHA-256 of its files' names and
/// digests in name order.
pub(super) fn artifact_digest(path: &std::path::Path) -> Result<String, RegistryError> {
    let io = |e: std::io::Error| RegistryError::Artifact(format!("{}: {e}", path.display()));
    if !path.is_dir() {
        return store::sha256_file(path, |_, _| {})
            .map_err(|e| RegistryError::Artifact(e.to_string()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut listing = String::new();
    for f in &files {
        let digest =
            store::sha256_file(f, |_, _| {}).map_err(|e| RegistryError::Artifact(e.to_string()))?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        listing.push_str(&format!("{digest}  {name}\n"));
    }
    use sha2::{Digest, Sha256};
    Ok(Sha256::digest(listing.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
