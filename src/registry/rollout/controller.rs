//! One thread per running canary: it wakes every analysis window, judges
//! the window, and steps the canary up, promotes it or rolls it back
//! through the registry, which writes the reason to the audit trail.

use super::{judge, RolloutPlan, RolloutState, Scores, Verdict};
use crate::registry::Registry;
use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

/// The running controllers, by model. Dropping a controller's sender
/// stops it at once (its wait ends with a disconnect).
#[derive(Default)]
pub(in crate::registry) struct Controllers {
    running: Mutex<HashMap<String, Sender<()>>>,
}

/// The name the audit trail gives the controller's own actions.
pub const ACTOR: &str = "rollout-controller";

impl Controllers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sender<()>>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts analysing `canary` of `model` from `step` of `plan`,
    /// replacing any controller the model had.
    pub fn start(
        &self,
        registry: Weak<Registry>,
        model: &str,
        canary: &str,
        plan: RolloutPlan,
        step: usize,
    ) {
        let (stop, stopped) = mpsc::channel();
        self.lock().insert(model.to_owned(), stop);
        let (model, canary) = (model.to_owned(), canary.to_owned());
        let name = format!("rollout-{model}");
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let run = Run {
                registry,
                model,
                canary,
                plan,
            };
            run.until_done(step, &stopped);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a rollout controller");
        }
    }

    pub fn stop(&self, model: &str) {
        self.lock().remove(model);
    }
}

struct Run {
    registry: Weak<Registry>,
    model: String,
    canary: String,
    plan: RolloutPlan,
}

impl Run {
    fn until_done(&self, mut step: usize, stopped: &mpsc::Receiver<()>) {
        let a = &self.plan.analysis;
        let span = Duration::from_secs_f64(a.window_s);
        let (mut healthy, mut failures) = (0u32, 0u32);
        self.state(RolloutState::Progressing);
        loop {
            match stopped.recv_timeout(span) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
            let Some(registry) = self.registry.upgrade() else {
                return;
            };
            let Some(stable) = registry.canary_of(&self.model, &self.canary) else {
                return;
            };
            let since = Instant::now() - span;
            let stable_stats = registry.windows.of(&self.model, &stable).stats(since);
            let canary_stats = registry.windows.of(&self.model, &self.canary).stats(since);
            let scores = Scores {
                stable: registry.eval_score(&self.model, &stable),
                canary: registry.eval_score(&self.model, &self.canary),
            };
            let verdict = judge(a, &stable_stats, &canary_stats, scores);
            tracing::info!(
                model = %self.model,
                canary = %self.canary,
                ?verdict,
                ?canary_stats,
                ?stable_stats,
                "canary window"
            );
            let acted = match verdict {
                Verdict::Inconclusive(_) => {
                    self.state(RolloutState::Inconclusive);
                    continue;
                }
                Verdict::Failed(reason) => {
                    failures += 1;
                    if failures < a.failure_limit {
                        continue;
                    }
                    let why = format!(
                        "{failures} failed window(s) of {:.0} s: {reason}",
                        a.window_s
                    );
                    let done = registry.auto_rollback(&self.model, &self.canary, &why);
                    if done.is_ok() {
                        self.state(RolloutState::RolledBack);
                    }
                    return self.log(done);
                }
                Verdict::Healthy => {
                    healthy += 1;
                    self.state(RolloutState::Progressing);
                    if healthy < a.windows_per_step {
                        continue;
                    }
                    healthy = 0;
                    step += 1;
                    let why = format!(
                        "{} healthy window(s) of {:.0} s at {}%",
                        a.windows_per_step,
                        a.window_s,
                        self.plan.steps[step - 1]
                    );
                    match self.plan.steps.get(step) {
                        Some(&percent) => {
                            registry.auto_step(&self.model, &self.canary, percent, step, &why)
                        }
                        None if self.plan.auto_promote => {
                            let done = registry.auto_promote(&self.model, &self.canary, &why);
                            if done.is_ok() {
                                self.state(RolloutState::Promoted);
                            }
                            return self.log(done);
                        }
                        // The last step passed: it stays there until a
                        // person promotes or rolls back.
                        None => {
                            step -= 1;
                            continue;
                        }
                    }
                }
            };
            if let Err(e) = acted {
                return self.log(Err(e));
            }
        }
    }

    fn state(&self, state: RolloutState) {
        crate::telemetry::metrics::rollout_state(
            &self.model,
            &self.canary,
            state.name(),
            RolloutState::ALL.map(RolloutState::name),
        );
    }

    fn log(&self, done: Result<(), crate::registry::RegistryError>) {
        if let Err(e) = done {
            tracing::warn!(model = %self.model, canary = %self.canary, error = %e, "rollout controller stops");
        }
    }
}
