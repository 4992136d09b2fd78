//! Recent samples of each model version, kept in process for the canary
//! analysis: request outcomes, times to first token and gaps between
//! tokens, each with its time, for a bounded span and count. The registry
//! owns one window per version (`Windows`); the version's engine feeds
//! latencies through [`LatencySink`], the server its request outcomes.

use crate::telemetry::LatencySink;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Samples older than this are dropped: longer than any analysis window.
const KEEP: Duration = Duration::from_secs(30 * 60);
/// At most this many samples of each kind per version.
const MAX_SAMPLES: usize = 100_000;

#[derive(Default)]
struct Samples {
    outcomes: VecDeque<(Instant, bool)>,
    ttft_ms: VecDeque<(Instant, f64)>,
    itl_ms: VecDeque<(Instant, f64)>,
}

#[derive(Default)]
pub struct VersionWindow {
    samples: Mutex<Samples>,
}

/// One version over one window.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct WindowStats {
    pub requests: usize,
    pub errors: usize,
    pub ttft_p95_ms: Option<f64>,
    pub itl_p95_ms: Option<f64>,
}

impl WindowStats {
    pub fn error_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

fn push<T>(q: &mut VecDeque<(Instant, T)>, now: Instant, v: T) {
    while q.len() >= MAX_SAMPLES || q.front().is_some_and(|(t, _)| now - *t > KEEP) {
        q.pop_front();
    }
    q.push_back((now, v));
}

fn p95(q: &VecDeque<(Instant, f64)>, since: Instant) -> Option<f64> {
    let mut v: Vec<f64> = q
        .iter()
        .filter(|(t, _)| *t >= since)
        .map(|(_, x)| *x)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((v.len() as f64) * 0.95).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

impl VersionWindow {
    fn lock(&self) -> std::sync::MutexGuard<'_, Samples> {
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A generation request answered: `ok` unless the server failed it.
    pub fn outcome(&self, ok: bool) {
        push(&mut self.lock().outcomes, Instant::now(), ok);
    }

    pub fn first_token(&self, ttft: Duration) {
        push(
            &mut self.lock().ttft_ms,
            Instant::now(),
            ttft.as_secs_f64() * 1e3,
        );
    }

    pub fn token_gap(&self, gap: Duration) {
        push(
            &mut self.lock().itl_ms,
            Instant::now(),
            gap.as_secs_f64() * 1e3,
        );
    }

    /// What happened since `since`.
    pub fn stats(&self, since: Instant) -> WindowStats {
        let s = self.lock();
        let recent = s.outcomes.iter().filter(|(t, _)| *t >= since);
        let (requests, errors) =
            recent.fold((0, 0), |(n, e), (_, ok)| (n + 1, e + usize::from(!ok)));
        WindowStats {
            requests,
            errors,
            ttft_p95_ms: p95(&s.ttft_ms, since),
            itl_p95_ms: p95(&s.itl_ms, since),
        }
    }
}

impl LatencySink for VersionWindow {
    fn first_token(&self, since_arrival: Duration) {
        VersionWindow::first_token(self, since_arrival);
    }

    fn token_gap(&self, gap: Duration) {
        VersionWindow::token_gap(self, gap);
    }
}

/// The window of every version, by (model, version). A version reloaded
/// after an unload keeps its window: the analysis spans the reload.
#[derive(Default)]
pub struct Windows {
    all: Mutex<HashMap<(String, String), Arc<VersionWindow>>>,
}

impl Windows {
    /// The window of `model@version`, made on first use.
    pub fn of(&self, model: &str, version: &str) -> Arc<VersionWindow> {
        self.all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((model.to_owned(), version.to_owned()))
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_only_the_window() {
        let w = VersionWindow::default();
        for i in 0..20 {
            w.outcome(i % 4 != 0);
            w.first_token(Duration::from_millis(10 * (i + 1)));
        }
        let s = w.stats(Instant::now() - Duration::from_secs(60));
        assert_eq!((s.requests, s.errors), (20, 5));
        assert_eq!(s.error_ratio(), 0.25);
        assert_eq!(s.ttft_p95_ms, Some(190.0));
        assert_eq!(s.itl_p95_ms, None);
        let later = w.stats(Instant::now() + Duration::from_millis(1));
        assert_eq!(later, WindowStats::default());
    }
}
