//! Progressive delivery of a canary: steps of traffic share, and an
//! analysis of each window that compares canary with stable and rolls the
//! canary back, steps it up, or promotes it by itself.

mod analysis;
mod controller;
mod window;

pub use analysis::{judge, Scores, Verdict};
pub(super) use controller::Controllers;
pub(super) use controller::ACTOR as controller_actor;
pub use window::{VersionWindow, WindowStats, Windows};

use super::RegistryError;
use serde::{Deserialize, Serialize};

/// Thresholds of the analysis; each window is judged on them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Seconds per window.
    pub window_s: f64,
    /// Fewer canary requests than this in a window: inconclusive (neither
    /// healthy nor failed). Stable needs as many for the relative checks.
    pub min_requests: usize,
    /// The canary's error ratio may not exceed this…
    pub max_error_ratio: f64,
    /// …nor stable's by more than this.
    pub max_error_ratio_increase: f64,
    /// The canary's TTFT p95 may not exceed stable's times this…
    pub max_ttft_p95_ratio: f64,
    /// …nor this many milliseconds, when set.
    pub max_ttft_p95_ms: Option<f64>,
    /// The same for inter-token latency p95.
    pub max_itl_p95_ratio: f64,
    pub max_itl_p95_ms: Option<f64>,
    /// When both versions carry an evaluation score, the canary's may be
    /// at most this much below stable's (higher scores are better).
    pub max_eval_score_drop: f64,
    /// Failed windows that roll the canary back.
    pub failure_limit: u32,
    /// Healthy windows at a step before the next one (the pause).
    pub windows_per_step: u32,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            window_s: 60.0,
            min_requests: 20,
            max_error_ratio: 0.05,
            max_error_ratio_increase: 0.02,
            max_ttft_p95_ratio: 2.0,
            max_ttft_p95_ms: None,
            max_itl_p95_ratio: 2.0,
            max_itl_p95_ms: None,
            max_eval_score_drop: 0.0,
            failure_limit: 1,
            windows_per_step: 1,
        }
    }
}

/// A canary's rollout: the traffic shares it steps through, the analysis,
/// and whether passing the last step promotes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutPlan {
    /// Percentages, rising, e.g. [5, 25, 50, 100].
    pub steps: Vec<f64>,
    #[serde(default)]
    pub analysis: AnalysisConfig,
    #[serde(default = "yes")]
    pub auto_promote: bool,
}

fn yes() -> bool {
    true
}

impl RolloutPlan {
    pub fn validate(&self) -> Result<(), RegistryError> {
        let bad = |m: &str| Err(RegistryError::Invalid(m.to_owned()));
        if self.steps.is_empty() || self.steps.len() > 20 {
            return bad("steps needs 1 to 20 percentages");
        }
        if self.steps.iter().any(|p| !(*p > 0.0 && *p <= 100.0)) {
            return bad("every step must be a percentage in (0, 100]");
        }
        if self.steps.windows(2).any(|w| w[1] <= w[0]) {
            return bad("steps must rise");
        }
        let a = &self.analysis;
        if !(a.window_s >= 0.1 && a.window_s <= 86_400.0) {
            return bad("window_s must be between 0.1 and 86400");
        }
        let ratios = [a.max_error_ratio, a.max_error_ratio_increase];
        if ratios.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return bad("error ratio thresholds must be between 0 and 1");
        }
        if [a.max_ttft_p95_ratio, a.max_itl_p95_ratio]
            .iter()
            .any(|r| !(*r >= 1.0 && r.is_finite()))
        {
            return bad("latency ratios must be at least 1");
        }
        if !(a.max_eval_score_drop >= 0.0 && a.max_eval_score_drop.is_finite()) {
            return bad("max_eval_score_drop must be a finite number, at least 0");
        }
        if a.failure_limit == 0 || a.windows_per_step == 0 || a.min_requests == 0 {
            return bad("failure_limit, windows_per_step and min_requests must be at least 1");
        }
        Ok(())
    }
}

/// Where a rollout stands, as the `switchyard_rollout_state` metric and
/// the admin API say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutState {
    Stable,
    Progressing,
    Inconclusive,
    Promoted,
    RolledBack,
}

impl RolloutState {
    pub const ALL: [RolloutState; 5] = [
        RolloutState::Stable,
        RolloutState::Progressing,
        RolloutState::Inconclusive,
        RolloutState::Promoted,
        RolloutState::RolledBack,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RolloutState::Stable => "stable",
            RolloutState::Progressing => "progressing",
            RolloutState::Inconclusive => "inconclusive",
            RolloutState::Promoted => "promoted",
            RolloutState::RolledBack => "rolled_back",
        }
    }
}
