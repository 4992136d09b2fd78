//! Judging one window: the canary against absolute thresholds and against
//! stable over the same window.

use super::AnalysisConfig;
use super::WindowStats;

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Healthy,
    /// Too little traffic to say; never counts toward promotion.
    Inconclusive(String),
    Failed(String),
}

/// The evaluation scores the versions carry (higher is better), if any.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Scores {
    pub stable: Option<f64>,
    pub canary: Option<f64>,
}

pub fn judge(
    c: &AnalysisConfig,
    stable: &WindowStats,
    canary: &WindowStats,
    scores: Scores,
) -> Verdict {
    // A worse evaluation needs no traffic to show.
    if let (Some(theirs), Some(mine)) = (scores.stable, scores.canary) {
        if mine < theirs - c.max_eval_score_drop {
            return Verdict::Failed(format!(
                "evaluation score {mine} below stable's {theirs} by more than {}",
                c.max_eval_score_drop
            ));
        }
    }
    if canary.requests < c.min_requests {
        return Verdict::Inconclusive(format!(
            "{} canary requests in the window, fewer than the {} needed",
            canary.requests, c.min_requests
        ));
    }
    let mut breaches = Vec::new();
    let errors = canary.error_ratio();
    if errors > c.max_error_ratio {
        breaches.push(format!(
            "error ratio {errors:.3} above the limit {}",
            c.max_error_ratio
        ));
    }
    // Relative checks need enough stable traffic to compare with.
    let comparable = stable.requests >= c.min_requests;
    if comparable && errors > stable.error_ratio() + c.max_error_ratio_increase {
        breaches.push(format!(
            "error ratio {errors:.3} against stable's {:.3}",
            stable.error_ratio()
        ));
    }
    let latencies = [
        (
            "TTFT p95",
            canary.ttft_p95_ms,
            stable.ttft_p95_ms,
            c.max_ttft_p95_ratio,
            c.max_ttft_p95_ms,
        ),
        (
            "inter-token p95",
            canary.itl_p95_ms,
            stable.itl_p95_ms,
            c.max_itl_p95_ratio,
            c.max_itl_p95_ms,
        ),
    ];
    for (name, mine, theirs, ratio, limit) in latencies {
        let Some(mine) = mine else { continue };
        if let Some(limit) = limit.filter(|l| mine > *l) {
            breaches.push(format!("{name} {mine:.1} ms above the limit {limit} ms"));
        }
        if let Some(theirs) = theirs.filter(|_| comparable) {
            if mine > theirs * ratio {
                breaches.push(format!(
                    "{name} {mine:.1} ms, more than {ratio}× stable's {theirs:.1} ms"
                ));
            }
        }
    }
    if breaches.is_empty() {
        Verdict::Healthy
    } else {
        Verdict::Failed(breaches.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(requests: usize, errors: usize, ttft: f64) -> WindowStats {
        WindowStats {
            requests,
            errors,
            ttft_p95_ms: Some(ttft),
            itl_p95_ms: Some(10.0),
        }
    }

    fn judge_(c: &AnalysisConfig, stable: &WindowStats, canary: &WindowStats) -> Verdict {
        judge(c, stable, canary, Scores::default())
    }

    #[test]
    fn a_lower_evaluation_score_fails_without_traffic() {
        let c = AnalysisConfig {
            max_eval_score_drop: 0.05,
            ..AnalysisConfig::default()
        };
        let idle = WindowStats::default();
        let scores = |stable, canary| Scores {
            stable: Some(stable),
            canary: Some(canary),
        };
        match judge(&c, &idle, &idle, scores(0.80, 0.70)) {
            Verdict::Failed(why) => assert!(why.contains("evaluation score 0.7"), "{why}"),
            v => panic!("{v:?}"),
        }
        // Within the allowed drop, or without a score on either side, the
        // window is judged on traffic (none here: inconclusive).
        assert!(matches!(
            judge(&c, &idle, &idle, scores(0.80, 0.76)),
            Verdict::Inconclusive(_)
        ));
        let one_sided = Scores {
            stable: None,
            canary: Some(0.1),
        };
        assert!(matches!(
            judge(&c, &idle, &idle, one_sided),
            Verdict::Inconclusive(_)
        ));
    }

    #[test]
    fn windows_are_judged_on_every_threshold() {
        let c = AnalysisConfig {
            min_requests: 10,
            ..AnalysisConfig::default()
        };
        let stable = stats(100, 0, 100.0);
        assert_eq!(judge_(&c, &stable, &stats(50, 0, 120.0)), Verdict::Healthy);
        assert!(matches!(
            judge_(&c, &stable, &stats(5, 5, 100.0)),
            Verdict::Inconclusive(_)
        ));
        match judge_(&c, &stable, &stats(50, 10, 100.0)) {
            Verdict::Failed(why) => assert!(why.contains("error ratio 0.200"), "{why}"),
            v => panic!("{v:?}"),
        }
        match judge_(&c, &stable, &stats(50, 0, 250.0)) {
            Verdict::Failed(why) => assert!(why.contains("TTFT p95 250.0"), "{why}"),
            v => panic!("{v:?}"),
        }
        // Relative to stable: 4 % errors pass the 5 % limit but not stable's
        // 0 % plus 2 %.
        assert!(matches!(
            judge_(&c, &stable, &stats(50, 2, 100.0)),
            Verdict::Failed(_)
        ));
        // Without enough stable traffic only the absolute limits apply.
        assert_eq!(
            judge_(&c, &stats(3, 0, 10.0), &stats(50, 2, 100.0)),
            Verdict::Healthy
        );
        let capped = AnalysisConfig {
            max_ttft_p95_ms: Some(50.0),
            ..c
        };
        assert!(matches!(
            judge_(&capped, &stable, &stats(50, 0, 60.0)),
            Verdict::Failed(_)
        ));
    }
}
