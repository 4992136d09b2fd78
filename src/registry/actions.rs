//! The admin actions on deployments: deploy, promote, rollback, loading a
//! version on demand, and restoring the stored deployments at start (with
//! register.rs, canary.rs, shadow.rs and drain.rs). One runs at a time. A
//! deployment changes in memory first (the routing table swap), then in
//! the store with its audit entry in one transaction: a crash between the
//! two leaves the last change that completed.

use super::names::BOOT_VERSION;
use super::register::artifact_digest;
use super::rollout::RolloutPlan;
use super::warmup;
use super::{LoadSpec, Registry, RegistryError, Route, ServedModel, Slot};
use crate::backend::WeightFormat;
use crate::model::ModelSource;
use crate::store::{now_ms, Deployment, NewAudit, WarmupCheck};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

impl Registry {
    pub(super) fn lock_actions(&self) -> std::sync::MutexGuard<'_, ()> {
        self.actions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs an action; a failure is appended to the audit trail too.
    pub(super) fn audited<T>(
        &self,
        actor: &str,
        action: &str,
        model: &str,
        version: Option<&str>,
        f: impl FnOnce() -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let result = f();
        if let Err(e) = &result {
            let state = self.current(model).ok().flatten().map(|d| json!(d));
            let entry = NewAudit {
                actor,
                action,
                model,
                version,
                before: state.clone().unwrap_or(Value::Null),
                after: state.unwrap_or(Value::Null),
                ok: false,
                detail: e.to_string(),
            };
            if let Err(store_error) = self.store.audit(&entry) {
                tracing::error!(error = %store_error, "could not append to the audit trail");
            }
        }
        result
    }

    /// Makes `version` the stable version of `model`, loading and warming
    /// it up first if it is not in memory.
    pub fn deploy(
        &self,
        model: &str,
        version: &str,
        actor: &str,
    ) -> Result<Deployment, RegistryError> {
        let _one = self.lock_actions();
        self.audited(actor, "deploy", model, Some(version), || {
            self.make_stable(model, version, actor, "deploy", "")
        })
    }

    /// Back to `to`, or else to the stable version before the last change.
    /// With a canary running and no `to`, the canary is taken out instead.
    pub fn rollback(
        &self,
        model: &str,
        to: Option<&str>,
        actor: &str,
    ) -> Result<Deployment, RegistryError> {
        let _one = self.lock_actions();
        self.audited(actor, "rollback", model, to, || {
            let current = self.current(model)?.ok_or_else(|| not_deployed(model))?;
            if to.is_none() && current.canary.is_some() {
                return self.set_canary(model, None, None, actor, "rollback", "");
            }
            let target = match to {
                Some(v) => v.to_owned(),
                None => current.previous.clone().ok_or_else(|| {
                    RegistryError::Conflict(format!(
                        "`{model}` has no previous version to roll back to"
                    ))
                })?,
            };
            self.make_stable(model, &target, actor, "rollback", "")
        })
    }

    /// Makes the canary the stable version.
    pub fn promote(&self, model: &str, actor: &str) -> Result<Deployment, RegistryError> {
        let _one = self.lock_actions();
        self.audited(actor, "promote", model, None, || {
            let current = self.current(model)?.ok_or_else(|| not_deployed(model))?;
            let canary = current.canary.ok_or_else(|| {
                RegistryError::Conflict(format!("`{model}` has no canary to promote"))
            })?;
            self.make_stable(model, &canary, actor, "promote", "")
        })
    }

    /// Loads what the store says is deployed, at start. A model whose
    /// version cannot load stays out of the table, with an error logged.
    pub fn restore(self: &Arc<Self>) -> Result<Vec<String>, RegistryError> {
        let _one = self.lock_actions();
        let mut restored = Vec::new();
        for d in self.store.deployments()? {
            let loaded = self.ensure_loaded(&d.model, &d.stable).and_then(|stable| {
                let canary = match &d.canary {
                    Some(c) => Some(self.ensure_loaded(&d.model, c)?),
                    None => None,
                };
                Ok((stable, canary))
            });
            match loaded {
                Ok((stable, canary)) => {
                    let route = Route {
                        names: self.route_names(&d.model),
                        stable,
                        canary: canary.map(|version| super::Canary {
                            version,
                            percent: d.canary_percent,
                        }),
                        shadow: self.restore_shadow(&d),
                    };
                    self.table.rcu(|t| t.with(route.clone()));
                    self.publish_route(&d.model);
                    self.resume_rollout(&d);
                    restored.push(format!("{}@{}", d.model, d.stable));
                }
                Err(e) => tracing::error!(
                    model = %d.model,
                    version = %d.stable,
                    error = %e,
                    "the stored deployment could not be restored"
                ),
            }
        }
        Ok(restored)
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

    /// The deployment of `model` and its route, or an error saying it has
    /// none.
    pub(super) fn deployed(&self, model: &str) -> Result<(Deployment, Arc<Route>), RegistryError> {
        let deployment = self.current(model)?.ok_or_else(|| not_deployed(model))?;
        let route = self
            .table()
            .route(model)
            .cloned()
            .ok_or_else(|| not_deployed(model))?;
        Ok((deployment, route))
    }

    /// The deployment of `model`: the store's, or the command line's.
    pub(super) fn current(&self, model: &str) -> Result<Option<Deployment>, RegistryError> {
        if let Some(d) = self.store.deployment(model)? {
            return Ok(Some(d));
        }
        Ok(self.table().route(model).map(|r| Deployment {
            model: model.to_owned(),
            stable: r.stable.version.clone(),
            updated_by: "command line".into(),
            ..Deployment::default()
        }))
    }

    /// The names a model's route answers to: those it has (aliases of a
    /// command-line model), else the model's own.
    fn route_names(&self, model: &str) -> Vec<String> {
        self.table()
            .route(model)
            .filter(|r| r.names[0] == model)
            .map_or_else(|| vec![model.to_owned()], |r| r.names.clone())
    }

    pub(super) fn make_stable(
        &self,
        model: &str,
        version: &str,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<Deployment, RegistryError> {
        let before = self.current(model)?;
        let was_loaded = matches!(self.slot(model, version), Some(Slot::Ready(_)));
        let served = self.ensure_loaded(model, version)?;
        let old_stable = before.as_ref().map(|d| d.stable.clone());
        // Rolling back is never gated: the way back stays open.
        let gate = if action == "rollback" {
            String::new()
        } else {
            match self.gate(model, version, old_stable.as_deref()) {
                Ok(detail) => detail,
                Err(refused) => {
                    // Loaded for this action alone: its memory goes back,
                    // as after a failed warm-up.
                    if !was_loaded && !self.table().routes_to(model, version) {
                        let _ = self.start_drain(model, version, served);
                    }
                    return Err(refused);
                }
            }
        };
        let detail = [detail, gate.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let old_canary = self.table().route(model).and_then(|r| r.canary.clone());
        // The canary that becomes stable stops being a canary.
        let canary = old_canary.filter(|c| c.version.version != version);
        // A version made stable serves clients: never in the background.
        served.engine.set_background(false);
        let shadow = self.table().route(model).and_then(|r| r.shadow.clone());
        let route = Route {
            names: self.route_names(model),
            stable: served,
            canary: canary.clone(),
            shadow,
        };
        self.table.rcu(|t| t.with(route.clone()));
        self.publish_route(model);
        if canary.is_none() {
            self.controllers.stop(model);
        }
        let previous = match old_stable {
            Some(v) if v != version => Some(v),
            _ => before.as_ref().and_then(|d| d.previous.clone()),
        };
        let after = Deployment {
            model: model.to_owned(),
            stable: version.to_owned(),
            previous,
            canary: canary.as_ref().map(|c| c.version.version.clone()),
            canary_percent: canary.as_ref().map_or(0.0, |c| c.percent),
            updated_at: now_ms(),
            updated_by: actor.to_owned(),
            rollout: canary
                .as_ref()
                .and_then(|_| before.as_ref().and_then(|d| d.rollout.clone())),
            shadow: before.as_ref().and_then(|d| d.shadow.clone()),
            shadow_percent: before.as_ref().map_or(0.0, |d| d.shadow_percent),
        };
        self.persist(&after, before, actor, action, &detail)?;
        Ok(after)
    }

    fn persist(
        &self,
        after: &Deployment,
        before: Option<Deployment>,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), RegistryError> {
        self.store.set_deployment(
            after,
            &NewAudit {
                actor,
                action,
                model: &after.model,
                version: Some(&after.stable),
                before: before.map_or(Value::Null, |d| json!(d)),
                after: json!(after),
                ok: true,
                detail: detail.to_owned(),
            },
        )?;
        Ok(())
    }

    /// The version in memory, loading and warming it up when it is not.
    pub(super) fn ensure_loaded(
        &self,
        model: &str,
        version: &str,
    ) -> Result<Arc<ServedModel>, RegistryError> {
        match self.slot(model, version) {
            Some(Slot::Ready(m)) => return Ok(m),
            Some(Slot::Draining) => {
                return Err(RegistryError::Conflict(format!(
                "`{model}@{version}` is draining after an unload; deploy it again once it is out"
            )))
            }
            Some(Slot::Loading) | None => {}
        }
        if version == BOOT_VERSION {
            return Err(RegistryError::NotFound(format!(
                "`{model}@{BOOT_VERSION}` came from the command line and is no longer loaded"
            )));
        }
        let record = self.store.version(model, version)?.ok_or_else(|| {
            RegistryError::NotFound(format!("`{model}` has no version `{version}`"))
        })?;
        if let Some(check) = self.store.warmup(model, version)?.filter(|c| !c.passed) {
            return Err(RegistryError::Conflict(format!(
                "`{model}@{version}` failed its warm-up and cannot be deployed: {}",
                check.detail
            )));
        }
        let path = PathBuf::from(&record.artifact);
        let digest = artifact_digest(&path)?;
        if digest != record.sha256 {
            return Err(RegistryError::Artifact(format!(
                "{} changed since it was registered: sha256 {digest}, registered {}",
                record.artifact, record.sha256
            )));
        }
        let prompts = warmup::parse(Some(&record.warmup))?;
        let key = (model.to_owned(), version.to_owned());
        self.lock_slots().insert(key.clone(), Slot::Loading);
        let dtype = match record.quantize.as_deref() {
            Some(name) => Some(WeightFormat::from_name(name).ok_or_else(|| {
                RegistryError::Invalid(format!("`{name}` is not a weight format this build knows"))
            })?),
            None => None,
        };
        let loaded = self.loader.load(LoadSpec {
            source: &ModelSource::from_path(&path),
            dtype,
            names: vec![model.to_owned()],
            version,
            warmup: &prompts,
        });
        match loaded {
            Ok(served) => {
                crate::telemetry::metrics::model_served(
                    model,
                    version,
                    &served.weights,
                    &format!("sha256:{}", record.sha256),
                );
                let served = Arc::new(served);
                self.lock_slots().insert(key, Slot::Ready(served.clone()));
                self.store.record_warmup(
                    model,
                    version,
                    &WarmupCheck {
                        passed: true,
                        detail: String::new(),
                        at: now_ms(),
                    },
                )?;
                Ok(served)
            }
            Err(e) => {
                self.lock_slots().remove(&key);
                if let RegistryError::Warmup(detail) = &e {
                    self.store.record_warmup(
                        model,
                        version,
                        &WarmupCheck {
                            passed: false,
                            detail: detail.clone(),
                            at: now_ms(),
                        },
                    )?;
                }
                Err(e)
            }
        }
    }
}

pub(super) fn not_deployed(model: &str) -> RegistryError {
    RegistryError::NotFound(format!("`{model}` is not deployed"))
}
