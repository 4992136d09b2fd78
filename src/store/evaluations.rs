//! Evaluation results, append-only: each run of a version's evaluation
//! set, keyed by the set's digest so that a result is reused only for the
//! same prompts and text.

use super::dates::now_ms;
use super::db::Store;
use super::StoreError;
use rusqlite::{params, OptionalExtension};

impl Store {
    pub fn record_evaluation(
        &self,
        model: &str,
        version: &str,
        set_digest: &str,
        report: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO evaluations (model, version, set_digest, at, report)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![model, version, set_digest, now_ms(), report.to_string()],
            )
            .map(|_| ())
        })
    }

    /// The latest result of `version` on the set with `set_digest`.
    pub fn evaluation(
        &self,
        model: &str,
        version: &str,
        set_digest: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT report FROM evaluations WHERE model = ?1 AND version = ?2
                 AND set_digest = ?3 ORDER BY id DESC LIMIT 1",
                params![model, version, set_digest],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}
