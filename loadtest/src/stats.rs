//! Percentiles and the per-level summary of a run.

use crate::client::{Failure, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Nearest-rank percentile of sorted values (`p` in 0..=100).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Serialize, Debug, Clone)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(|a, b| a.total_cmp(b));
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        Percentiles {
            p50: percentile(&values, 50.0),
            p90: percentile(&values, 90.0),
            p99: percentile(&values, 99.0),
            mean,
        }
    }
}

/// One load level: what went through, how fast, how long it waited.
#[derive(Serialize, Debug, Clone)]
pub struct Level {
    /// Concurrency, or the request rate for Poisson runs.
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub requests_ok: usize,
    pub errors: BTreeMap<String, usize>,
    pub wall_s: f64,
    pub output_tokens: u64,
    pub output_tokens_per_s: f64,
    pub requests_per_s: f64,
    /// Milliseconds.
    pub ttft_ms: Percentiles,
    pub itl_ms: Percentiles,
    pub e2e_ms: Percentiles,
}

impl Level {
    pub fn summarize(
        concurrency: Option<usize>,
        rate: Option<f64>,
        results: &[Result<Outcome, Failure>],
        wall: Duration,
    ) -> Level {
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        let ok: Vec<&Outcome> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let mut errors = BTreeMap::new();
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            *errors.entry(e.to_string()).or_insert(0) += 1;
        }
        let output_tokens: u64 = ok.iter().map(|o| o.output_tokens).sum();
        let wall_s = wall.as_secs_f64();
        Level {
            concurrency,
            rate,
            requests_ok: ok.len(),
            errors,
            wall_s,
            output_tokens,
            output_tokens_per_s: output_tokens as f64 / wall_s.max(1e-9),
            requests_per_s: ok.len() as f64 / wall_s.max(1e-9),
            ttft_ms: Percentiles::of(ok.iter().map(|o| ms(&o.ttft)).collect()),
            itl_ms: Percentiles::of(ok.iter().flat_map(|o| o.gaps.iter().map(ms)).collect()),
            e2e_ms: Percentiles::of(ok.iter().map(|o| ms(&o.e2e)).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn a_level_counts_tokens_errors_and_gaps() {
        let ok = |ttft_ms: u64| {
            Ok(Outcome {
                ttft: Duration::from_millis(ttft_ms),
                gaps: vec![Duration::from_millis(10); 3],
                e2e: Duration::from_millis(ttft_ms + 30),
                output_tokens: 4,
                headers: Duration::from_millis(ttft_ms),
                version: None,
            })
        };
        let results = vec![ok(100), ok(200), Err(Failure::Status(429))];
        let l = Level::summarize(Some(2), None, &results, Duration::from_secs(2));
        assert_eq!(l.requests_ok, 2);
        assert_eq!(l.errors["http_429"], 1);
        assert_eq!(l.output_tokens, 8);
        assert_eq!(l.output_tokens_per_s, 4.0);
        assert_eq!(l.ttft_ms.p50, 100.0);
        assert_eq!(l.itl_ms.p99, 10.0);
    }
}
