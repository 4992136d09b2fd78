//! Tokens used per key and UTC day, counted in memory as requests end and
//! written to the store in batches (every few seconds and at shutdown):
//! one transaction per batch rather than a synchronous write per request.

use crate::store::dates::day_of;
use crate::store::{now_ms, Store, StoreError, UsageRow};
use dashmap::DashMap;

#[derive(Default)]
pub struct UsageBook {
    /// (day, key id) → (tenant, requests, prompt tokens, completion tokens).
    pending: DashMap<(String, String), (String, u64, u64, u64)>,
}

impl UsageBook {
    pub fn record(&self, key_id: &str, tenant: &str, prompt: u64, completion: u64) {
        let day = day_of(now_ms());
        let mut e = self
            .pending
            .entry((day, key_id.to_owned()))
            .or_insert_with(|| (tenant.to_owned(), 0, 0, 0));
        e.1 += 1;
        e.2 += prompt;
        e.3 += completion;
    }

    /// Writes what was counted since the last flush. On a store error the
    /// counts are put back, to go out with the next flush.
    pub fn flush(&self, store: &Store) -> Result<(), StoreError> {
        let keys: Vec<(String, String)> = self.pending.iter().map(|e| e.key().clone()).collect();
        let rows: Vec<UsageRow> = keys
            .into_iter()
            .filter_map(|k| self.pending.remove(&k))
            .map(
                |((day, key_id), (tenant, requests, prompt, completion))| UsageRow {
                    day,
                    key_id,
                    tenant,
                    requests,
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                },
            )
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        store.add_usage(&rows).inspect_err(|_| {
            for r in &rows {
                let mut e = self
                    .pending
                    .entry((r.day.clone(), r.key_id.clone()))
                    .or_insert_with(|| (r.tenant.clone(), 0, 0, 0));
                e.1 += r.requests;
                e.2 += r.prompt_tokens;
                e.3 += r.completion_tokens;
            }
        })
    }
}
