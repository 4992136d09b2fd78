//! How an engine is sized: its seats, its step, its queue and its share of
//! the process-wide KV memory budget.

use crate::backend::KvDtype;
use crate::telemetry::LatencySink;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Sequences running at once.
    pub max_num_seqs: usize,
    /// Tokens computed per step over all sequences; also the prefill chunk.
    pub max_num_batched_tokens: usize,
    /// Requests that may wait behind the running ones; more get a 429.
    pub max_waiting: usize,
    /// Token positions per KV block.
    pub block_size: usize,
    pub kv_dtype: KvDtype,
    pub prefix_caching: bool,
    /// The most KV memory this engine takes from the process budget, so
    /// that the versions loaded beside it (a canary, the one a rollback
    /// goes to) find room; None: as much as it can use.
    pub max_kv_bytes: Option<usize>,
    /// Metric labels: the model's served name and its version.
    pub model_name: String,
    pub version: String,
    /// Where latency samples go besides the histograms.
    pub latency: LatencyFeed,
}

/// A sink for the engine's latency samples (the canary analysis window
/// of its version), or none.
#[derive(Clone, Default)]
pub struct LatencyFeed(pub Option<Arc<dyn LatencySink>>);

impl std::fmt::Debug for LatencyFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "LatencyFeed(on)"
        } else {
            "LatencyFeed(off)"
        })
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_num_seqs: 64,
            // A chunk small enough that a long prompt delays the running
            // decodes by a fraction of a second on a few cores.
            max_num_batched_tokens: 256,
            max_waiting: 256,
            block_size: 16,
            kv_dtype: KvDtype::F32,
            prefix_caching: true,
            max_kv_bytes: None,
            model_name: "default".into(),
            version: "boot".into(),
            latency: LatencyFeed::default(),
        }
    }
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_num_seqs == 0 {
            return Err("--max-num-seqs must be at least 1".into());
        }
        if self.max_num_batched_tokens < self.max_num_seqs {
            return Err(format!(
                "--max-num-batched-tokens ({}) must be at least --max-num-seqs ({}): every running sequence decodes a token per step",
                self.max_num_batched_tokens, self.max_num_seqs
            ));
        }
        if self.block_size == 0 || self.block_size > 1024 {
            return Err("the KV block size must be between 1 and 1024".into());
        }
        Ok(())
    }
}

/// KV memory shared by every engine of the process: each takes its pool
/// from here when it starts and gives it back when it stops, so a second
/// version loaded beside the first cannot overcommit the machine.
pub struct KvBudget {
    total: usize,
    used: Mutex<usize>,
}

impl KvBudget {
    pub fn new(total_bytes: usize) -> Arc<Self> {
        Arc::new(KvBudget {
            total: total_bytes,
            used: Mutex::new(0),
        })
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn left(&self) -> usize {
        self.total - *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes up to `wanted` bytes, at least `at_least`; None if not even
    /// that much is left.
    pub fn reserve(self: &Arc<Self>, wanted: usize, at_least: usize) -> Option<KvReservation> {
        let mut used = self.lock();
        let left = self.total - *used;
        if left < at_least {
            return None;
        }
        let bytes = wanted.min(left);
        *used += bytes;
        Some(KvReservation {
            budget: self.clone(),
            bytes,
        })
    }
}

/// Bytes taken from a `KvBudget`, returned when dropped.
pub struct KvReservation {
    budget: Arc<KvBudget>,
    bytes: usize,
}

impl KvReservation {
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for KvReservation {
    fn drop(&mut self) {
        let mut used = self.budget.lock();
        *used = used.saturating_sub(self.bytes);
    }
}

/// Parses `--kv-cache-memory`: bytes with an optional unit (`4GiB`,
/// `512MB`, `1073741824`) or a share of physical memory (`0.25`).
pub fn parse_memory(text: &str, physical: usize) -> Result<usize, String> {
    let t = text.trim();
    let bad = || {
        format!("`{text}` is neither a size (e.g. 4GiB, 512MB) nor a share of memory (e.g. 0.25)")
    };
    if let Ok(share) = t.parse::<f64>() {
        if t.contains('.') || share < 1.0 {
            if !(share > 0.0 && share <= 1.0) {
                return Err(format!("a share of memory must be in (0, 1], not {t}"));
            }
            return Ok((physical as f64 * share) as usize);
        }
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().map_err(|_| bad())?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Physical memory of this machine, from /proc/meminfo (Linux); a
/// conservative 4 GiB elsewhere.
pub fn physical_memory() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(4 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_shares_parse() {
        assert_eq!(parse_memory("4GiB", 0), Ok(4 << 30));
        assert_eq!(parse_memory("512MB", 0), Ok(512_000_000));
        assert_eq!(parse_memory("1024", 0), Ok(1024));
        assert_eq!(parse_memory("0.25", 1000), Ok(250));
        assert_eq!(parse_memory("1.0", 1000), Ok(1000));
        assert!(parse_memory("1.5", 1000).is_err());
        assert!(parse_memory("lots", 1000).is_err());
        assert!(parse_memory("4 parsecs", 1000).is_err());
    }

    #[test]
    fn engines_share_one_budget_and_return_it() {
        let budget = KvBudget::new(100);
        let a = budget.reserve(70, 10).unwrap();
        assert_eq!(a.bytes(), 70);
        let b = budget.reserve(70, 10).unwrap();
        assert_eq!(b.bytes(), 30, "the second gets what is left");
        assert!(budget.reserve(70, 10).is_none());
        drop(a);
        assert_eq!(budget.left(), 70);
        drop(b);
        assert_eq!(budget.left(), 100);
    }
}
