//! What a process serves when it starts: the stored deployments, and the
//! model its command line names, as version `boot` (never written to the
//! store as a version). A stored deployment of the same name replaces the
//! command line's model, so what release engineers deployed outlives a
//! restart with the same flags; the command line's model still loads
//! when that deployment names `boot` (a rollback to it) or cannot be
//! restored, so the server comes up ready on what it could load. Every
//! deployment that did not come back says why, in the log and on the
//! admin API.

use super::locks::hold;
use super::names::BOOT_VERSION;
use super::rollout::RolloutPlan;
use super::warmup;
use super::{Canary, LoadSpec, Registry, RegistryError, Route, Slot};
use crate::model::{ModelSource, WeightFormat};
use crate::store::Deployment;
use std::sync::Arc;

/// The model the command line names.
pub struct BootModel {
    pub source: ModelSource,
    pub dtype: Option<WeightFormat>,
    /// The names clients may send; the first is the model's.
    pub names: Vec<String>,
    /// The artifact's digest (`sha256:…`) where known, else `unknown`.
    pub digest: String,
}

/// What came back at start.
#[derive(Debug, Default)]
pub struct StartUp {
    /// `model@version` of each deployment restored.
    pub restored: Vec<String>,
    /// (model, why) of each stored deployment that did not come back.
    pub failed: Vec<(String, String)>,
    /// The command line's model serves (as `boot`).
    pub booted: bool,
}

impl Registry {
    /// Loads what the process starts with. An error means the command
    /// line's own model could not load; a stored deployment that cannot
    /// come back is reported, not fatal.
    pub fn start_up(self: &Arc<Self>, boot: Option<BootModel>) -> Result<StartUp, RegistryError> {
        let deployments = self.store.deployments()?;
        let mut report = StartUp::default();
        let mut boot = boot;
        // Load the command line's model first where nothing stored
        // replaces it, or where the stored deployment names it.
        if let Some(b) = boot.as_ref() {
            let stored = deployments.iter().find(|d| d.model == b.names[0]);
            if stored.is_none_or(names_boot) {
                if let Some(b) = boot.take() {
                    self.install_boot(b)?;
                    report.booted = true;
                }
            }
        }
        for d in &deployments {
            match self.restore(d) {
                Ok(()) => report.restored.push(format!("{}@{}", d.model, d.stable)),
                Err(e) => {
                    tracing::error!(
                        model = %d.model,
                        version = %d.stable,
                        error = %e,
                        "the stored deployment could not be restored"
                    );
                    report.failed.push((d.model.clone(), e.to_string()));
                }
            }
        }
        // A stored deployment of the command line's model that did not
        // come back: the command line's model serves instead.
        if let Some(b) = boot {
            if self.table().route(&b.names[0]).is_none() {
                tracing::warn!(
                    model = %b.names[0],
                    "serving the command line's model as `{BOOT_VERSION}` in place of its stored deployment"
                );
                self.install_boot(b)?;
                report.booted = true;
            }
        }
        self.restore_errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(report.failed.iter().cloned());
        Ok(report)
    }

    /// Why `model`'s stored deployment did not come back at start, if it
    /// did not.
    pub(super) fn restore_error(&self, model: &str) -> Option<String> {
        self.restore_errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(model)
            .cloned()
    }

    /// Loads the command line's model and routes its names to it.
    fn install_boot(&self, b: BootModel) -> Result<(), RegistryError> {
        let model = b.names[0].clone();
        let served = self.loader.load(
            LoadSpec {
                source: &b.source,
                dtype: b.dtype,
                names: b.names,
                version: BOOT_VERSION,
                warmup: &warmup::default_prompts(),
            },
            self.windows.of(&model, BOOT_VERSION),
        )?;
        crate::telemetry::metrics::model_served(&model, BOOT_VERSION, &served.weights, &b.digest);
        let served = Arc::new(served);
        let key = (model.clone(), BOOT_VERSION.to_owned());
        self.lock_slots().insert(key, Slot::Ready(served.clone()));
        let lock = self.model_lock(&model);
        let _one = hold(&lock);
        let route = Route::stable_only(served.names.clone(), served);
        self.table.rcu(|t| t.with(route.clone()));
        self.publish_route(&model);
        Ok(())
    }

    /// Loads a stored deployment's versions and routes to them.
    fn restore(self: &Arc<Self>, d: &Deployment) -> Result<(), RegistryError> {
        let stable = self.ensure_loaded(&d.model, &d.stable)?;
        let canary = match &d.canary {
            Some(c) => Some(self.ensure_loaded(&d.model, c)?),
            None => None,
        };
        let shadow = self.restore_shadow(d);
        let lock = self.model_lock(&d.model);
        let _one = hold(&lock);
        let route = Route {
            names: self.route_names(&d.model),
            stable,
            canary: canary.map(|version| Canary {
                version,
                percent: d.canary_percent,
            }),
            shadow,
        };
        self.table.rcu(|t| t.with(route.clone()));
        self.publish_route(&d.model);
        self.resume_rollout(d);
        Ok(())
    }

    /// Restarts the analysis of a canary that was running at shutdown, at
    /// the step it had reached.
    fn resume_rollout(self: &Arc<Self>, d: &Deployment) {
        let (Some(canary), Some(rollout)) = (&d.canary, &d.rollout) else {
            return;
        };
        let plan = serde_json::from_value::<RolloutPlan>(rollout["plan"].clone());
        let step = rollout["step"].as_u64().unwrap_or(0) as usize;
        match plan {
            Ok(plan) if step < plan.steps.len() => {
                self.controllers
                    .start(Arc::downgrade(self), &d.model, canary, plan, step)
            }
            _ => tracing::warn!(model = %d.model, "a stored rollout plan could not be read"),
        }
    }
}

/// The deployment routes some traffic to the command line's version.
fn names_boot(d: &Deployment) -> bool {
    [Some(&d.stable), d.canary.as_ref(), d.shadow.as_ref()]
        .into_iter()
        .flatten()
        .any(|v| v == BOOT_VERSION)
}
