//! Canaries: a share of a model's requests, sticky per user, answered by
//! another version; with a rollout plan, the controller's verdicts (step
//! up, promote, roll back) come back here.

use super::actions::not_deployed;
use super::locks::hold;
use super::rollout::{controller_actor as ACTOR, RolloutPlan};
use super::{Registry, RegistryError, Route, ServedModel};
use crate::store::{now_ms, Deployment, NewAudit};
use serde_json::{json, Value};
use std::sync::Arc;

impl Registry {
    /// Sends a share of `model`'s requests to `version`, sticky per user:
    /// `percent`, or the first of the plan's steps, whose analysis then
    /// runs until the canary is promoted or rolled back.
    pub fn canary(
        self: &Arc<Self>,
        model: &str,
        version: &str,
        percent: Option<f64>,
        plan: Option<RolloutPlan>,
        actor: &str,
    ) -> Result<Deployment, RegistryError> {
        self.audited(actor, "canary", model, Some(version), || {
            if let Some(p) = &plan {
                p.validate()?;
            }
            let percent = match (&plan, percent) {
                (Some(p), None) => p.steps[0],
                (None, Some(p)) => p,
                _ => {
                    return Err(RegistryError::Invalid(
                        "give either percent or a rollout plan's steps".into(),
                    ))
                }
            };
            if !(percent > 0.0 && percent <= 100.0) {
                return Err(RegistryError::Invalid(format!(
                    "percent must be in (0, 100], not {percent}"
                )));
            }
            let is_stable = || -> Result<(), RegistryError> {
                let current = self.current(model)?.ok_or_else(|| not_deployed(model))?;
                if current.stable == version {
                    return Err(RegistryError::Conflict(format!(
                        "`{version}` is already the stable version of `{model}`"
                    )));
                }
                Ok(())
            };
            is_stable()?;
            let served = self.ensure_loaded(model, version)?;
            let lock = self.model_lock(model);
            let _one = hold(&lock);
            is_stable()?;
            let rollout = plan.as_ref().map(|p| json!({"plan": p, "step": 0}));
            let d =
                self.set_canary(model, Some((served, percent)), rollout, actor, "canary", "")?;
            match plan {
                Some(p) => self
                    .controllers
                    .start(Arc::downgrade(self), model, version, p, 0),
                None => self.controllers.stop(model),
            }
            Ok(d)
        })
    }

    /// Carries out a rollout controller's verdict on `canary` under the
    /// model's lock, unless a person changed the canary in the meantime.
    fn verdict(
        &self,
        model: &str,
        canary: &str,
        action: &str,
        act: impl FnOnce() -> Result<Deployment, RegistryError>,
    ) -> Result<(), RegistryError> {
        let lock = self.model_lock(model);
        let _one = hold(&lock);
        if self.canary_of(model, canary).is_none() {
            return Ok(());
        }
        self.audited(ACTOR, action, model, Some(canary), act)
            .map(drop)
    }

    /// The controller's verdict: the canary goes back to 0 %.
    pub(super) fn auto_rollback(
        &self,
        model: &str,
        canary: &str,
        why: &str,
    ) -> Result<(), RegistryError> {
        self.verdict(model, canary, "auto-rollback", || {
            self.set_canary(model, None, None, ACTOR, "auto-rollback", why)
        })
    }

    /// The controller's verdict: the canary moves to the next step.
    pub(super) fn auto_step(
        &self,
        model: &str,
        canary: &str,
        percent: f64,
        step: usize,
        why: &str,
    ) -> Result<(), RegistryError> {
        let Some(served) = self.ready(model, canary) else {
            return Ok(());
        };
        self.verdict(model, canary, "auto-step", || {
            let mut rollout = self.current(model)?.and_then(|d| d.rollout);
            if let Some(r) = rollout.as_mut() {
                r["step"] = json!(step);
            }
            let share = Some((served, percent));
            self.set_canary(model, share, rollout, ACTOR, "auto-step", why)
        })
    }

    /// The controller's verdict: the canary passed its last step.
    pub(super) fn auto_promote(
        &self,
        model: &str,
        canary: &str,
        why: &str,
    ) -> Result<(), RegistryError> {
        // The gate runs before the lock: it evaluates, which takes time.
        let prepared = match self.prepare_stable(model, canary, true) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .audited(ACTOR, "auto-promote", model, Some(canary), || {
                        Err::<(), _>(e)
                    })
                    .map(drop)
            }
        };
        self.verdict(model, canary, "auto-promote", || {
            self.commit_stable(model, prepared, ACTOR, "auto-promote", why)
        })
    }

    pub(super) fn set_canary(
        &self,
        model: &str,
        canary: Option<(Arc<ServedModel>, f64)>,
        rollout: Option<Value>,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<Deployment, RegistryError> {
        let (before, route) = self.deployed(model)?;
        if let Some((version, _)) = &canary {
            version.engine.set_background(false);
        }
        let next = Route {
            names: route.names.clone(),
            stable: route.stable.clone(),
            canary: canary.as_ref().map(|(version, percent)| super::Canary {
                version: version.clone(),
                percent: *percent,
            }),
            shadow: route.shadow.clone(),
        };
        self.table.rcu(|t| t.with(next.clone()));
        self.publish_route(model);
        if canary.is_none() {
            self.controllers.stop(model);
        }
        let after = Deployment {
            canary: canary.as_ref().map(|(v, _)| v.version.clone()),
            canary_percent: canary.as_ref().map_or(0.0, |(_, p)| *p),
            updated_at: now_ms(),
            updated_by: actor.to_owned(),
            rollout: canary.as_ref().and(rollout),
            ..before.clone()
        };
        let version = after.canary.clone().or(before.canary.clone());
        self.store.set_deployment(
            &after,
            &NewAudit {
                actor,
                action,
                model,
                version: version.as_deref(),
                before: json!(before),
                after: json!(after),
                ok: true,
                detail: detail.to_owned(),
            },
        )?;
        Ok(after)
    }
}
