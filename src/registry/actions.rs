//! The admin actions on deployments: deploy, promote, rollback and
//! loading a version on demand (with register.rs, canary.rs, shadow.rs,
//! drain.rs and boot.rs). Each action prepares what is slow without a
//! lock (loading, warming up, the promotion gate), then takes its model's
//! lock to decide and commit: the routing table swap first, then the
//! store with its audit entry in one transaction. A crash between the two
//! leaves the last change that completed.

use super::locks::{self, hold};
use super::names::BOOT_VERSION;
use super::register::artifact_digest;
use super::warmup;
use super::{LoadSpec, Registry, RegistryError, Route, ServedModel, Slot};
use crate::model::{ModelSource, WeightFormat};
use crate::store::{now_ms, Deployment, NewAudit, WarmupCheck};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// A version ready to become stable: in memory, and through the
/// promotion gate when the action has one.
pub(super) struct Prepared {
    served: Arc<ServedModel>,
    /// What the gate found, for the audit entry.
    gate: String,
}

impl Registry {
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
        self.audited(actor, "deploy", model, Some(version), || {
            let prepared = self.prepare_stable(model, version, true)?;
            let lock = self.model_lock(model);
            let _one = hold(&lock);
            self.commit_stable(model, prepared, actor, "deploy", "")
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
        self.audited(actor, "rollback", model, to, || {
            // The target is read twice: once to load it if it is not in
            // memory, then under the lock, where it counts.
            let target = |current: &Deployment| -> Result<Option<String>, RegistryError> {
                if to.is_none() && current.canary.is_some() {
                    return Ok(None);
                }
                match to {
                    Some(v) => Ok(Some(v.to_owned())),
                    None => current.previous.clone().map(Some).ok_or_else(|| {
                        RegistryError::Conflict(format!(
                            "`{model}` has no previous version to roll back to"
                        ))
                    }),
                }
            };
            let current = self.current(model)?.ok_or_else(|| not_deployed(model))?;
            let prepared = match target(&current)? {
                Some(v) => Some(self.prepare_stable(model, &v, false)?),
                None => None,
            };
            let lock = self.model_lock(model);
            let _one = hold(&lock);
            let current = self.current(model)?.ok_or_else(|| not_deployed(model))?;
            match (target(&current)?, prepared) {
                (None, _) => self.set_canary(model, None, None, actor, "rollback", ""),
                (Some(v), Some(p)) if p.served.version == v => {
                    self.commit_stable(model, p, actor, "rollback", "")
                }
                // Another action moved the deployment while the target
                // loaded: roll back to what is the target now, if it is
                // in memory.
                (Some(v), _) => {
                    let served = self.ready(model, &v).ok_or_else(|| changed(model))?;
                    let p = Prepared {
                        served,
                        gate: String::new(),
                    };
                    self.commit_stable(model, p, actor, "rollback", "")
                }
            }
        })
    }

    /// Makes the canary the stable version.
    pub fn promote(&self, model: &str, actor: &str) -> Result<Deployment, RegistryError> {
        self.audited(actor, "promote", model, None, || {
            let canary = self.canary_version(model)?;
            let prepared = self.prepare_stable(model, &canary, true)?;
            let lock = self.model_lock(model);
            let _one = hold(&lock);
            if self.canary_version(model)? != canary {
                return Err(changed(model));
            }
            self.commit_stable(model, prepared, actor, "promote", "")
        })
    }

    fn canary_version(&self, model: &str) -> Result<String, RegistryError> {
        let current = self.current(model)?.ok_or_else(|| not_deployed(model))?;
        current
            .canary
            .ok_or_else(|| RegistryError::Conflict(format!("`{model}` has no canary to promote")))
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
    pub(super) fn route_names(&self, model: &str) -> Vec<String> {
        self.table()
            .route(model)
            .filter(|r| r.names[0] == model)
            .map_or_else(|| vec![model.to_owned()], |r| r.names.clone())
    }

    /// The slow half of making `version` stable, without the model's
    /// lock: loading it, and the promotion gate against the stable
    /// version it would replace (`gated`: never for a rollback, the way
    /// back stays open).
    pub(super) fn prepare_stable(
        &self,
        model: &str,
        version: &str,
        gated: bool,
    ) -> Result<Prepared, RegistryError> {
        let old_stable = self.current(model)?.map(|d| d.stable);
        let was_loaded = self.ready(model, version).is_some();
        let served = self.ensure_loaded(model, version)?;
        if !gated {
            return Ok(Prepared {
                served,
                gate: String::new(),
            });
        }
        match self.gate(model, version, old_stable.as_deref()) {
            Ok(gate) => Ok(Prepared { served, gate }),
            Err(refused) => {
                // Loaded for this action alone: its memory goes back, as
                // after a failed warm-up.
                if !was_loaded {
                    self.drain_if_unrouted(model, version, served);
                }
                Err(refused)
            }
        }
    }

    /// The quick half, under the model's lock: the routing table swap and
    /// the store write. The version must still be the one prepared (an
    /// unload may have started in between).
    pub(super) fn commit_stable(
        &self,
        model: &str,
        prepared: Prepared,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<Deployment, RegistryError> {
        let Prepared { served, gate } = prepared;
        let version = served.version.clone();
        if !self
            .ready(model, &version)
            .is_some_and(|m| Arc::ptr_eq(&m, &served))
        {
            return Err(RegistryError::Conflict(format!(
                "`{model}@{version}` was unloaded while this {action} prepared it; try again"
            )));
        }
        let before = self.current(model)?;
        let detail = [detail, gate.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let old_route = self.table().route(model).cloned();
        // The canary that becomes stable stops being a canary.
        let canary = old_route
            .as_ref()
            .and_then(|r| r.canary.clone())
            .filter(|c| c.version.version != version);
        // A version made stable serves clients: never in the background.
        served.engine.set_background(false);
        let route = Route {
            names: self.route_names(model),
            stable: served,
            canary: canary.clone(),
            shadow: old_route.and_then(|r| r.shadow.clone()),
        };
        self.table.rcu(|t| t.with(route.clone()));
        self.publish_route(model);
        if canary.is_none() {
            self.controllers.stop(model);
        }
        let old_stable = before.as_ref().map(|d| d.stable.clone());
        let previous = match old_stable {
            Some(v) if v != version => Some(v),
            _ => before.as_ref().and_then(|d| d.previous.clone()),
        };
        let after = Deployment {
            model: model.to_owned(),
            stable: version,
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
        self.store.set_deployment(
            &after,
            &NewAudit {
                actor,
                action,
                model,
                version: Some(&after.stable),
                before: before.map_or(Value::Null, |d| json!(d)),
                after: json!(after),
                ok: true,
                detail,
            },
        )?;
        Ok(after)
    }

    /// The version in memory, loading and warming it up when it is not.
    /// Loads of one version take turns: the second caller finds it ready.
    pub(super) fn ensure_loaded(
        &self,
        model: &str,
        version: &str,
    ) -> Result<Arc<ServedModel>, RegistryError> {
        let key = (model.to_owned(), version.to_owned());
        let lock = self.loads.of(&key);
        let _one = locks::hold(&lock);
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
        let dtype = match record.quantize.as_deref() {
            Some(name) => Some(WeightFormat::from_name(name).ok_or_else(|| {
                RegistryError::Invalid(format!("`{name}` is not a weight format this build knows"))
            })?),
            None => None,
        };
        self.lock_slots().insert(key.clone(), Slot::Loading);
        let loaded = self.loader.load(
            LoadSpec {
                source: &ModelSource::from_path(&path),
                dtype,
                names: vec![model.to_owned()],
                version,
                warmup: &prompts,
            },
            self.windows.of(model, version),
        );
        let passed = WarmupCheck {
            passed: loaded.is_ok(),
            detail: match &loaded {
                Err(RegistryError::Warmup(detail)) => detail.clone(),
                _ => String::new(),
            },
            at: now_ms(),
        };
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
                self.store.record_warmup(model, version, &passed)?;
                Ok(served)
            }
            Err(e) => {
                self.lock_slots().remove(&key);
                // Only a failed warm-up is the version's own verdict; a
                // machine without room may load it later.
                if let RegistryError::Warmup(_) = &e {
                    self.store.record_warmup(model, version, &passed)?;
                }
                Err(e)
            }
        }
    }
}

pub(super) fn not_deployed(model: &str) -> RegistryError {
    RegistryError::NotFound(format!("`{model}` is not deployed"))
}

/// Another action changed the deployment while this one prepared.
fn changed(model: &str) -> RegistryError {
    RegistryError::Conflict(format!(
        "the deployment of `{model}` changed while this action prepared; look again and retry"
    ))
}
