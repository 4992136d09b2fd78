//! The admin actions: register, deploy, canary, promote, rollback, unload,
//! and restoring the stored deployments at start. One runs at a time. A
//! deployment changes in memory first (the routing table swap), then in
//! the store with its audit entry in one transaction: a crash between the
//! two leaves the last change that completed.

use super::names::{self, BOOT_VERSION};
use super::rollout::{controller_actor as ACTOR, RolloutPlan};
use super::warmup;
use super::{drain, LoadSpec, Registry, RegistryError, Route, ServedModel, Slot};
use crate::model::ModelSource;
use crate::store::{self, now_ms, Deployment, NewAudit, VersionRecord, WarmupCheck};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// The body of a registration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub version: String,
    /// An absolute path on the server: a GGUF file or a Hugging Face
    /// directory.
    pub artifact: String,
    /// The digest the artifact must have (hex, optionally `sha256:`).
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub warmup: Option<Value>,
    /// An evaluation score, higher is better, compared by canary analysis.
    #[serde(default)]
    pub eval_score: Option<f64>,
}

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

    /// Adds an immutable version after checking its artifact: it must
    /// parse as a model and match the digest given.
    pub fn register(
        &self,
        model: &str,
        r: Registration,
        actor: &str,
    ) -> Result<VersionRecord, RegistryError> {
        names::check_model(model)?;
        names::check_version(&r.version)?;
        let _one = self.lock_actions();
        let version = r.version.clone();
        self.audited(actor, "register", model, Some(&version), || {
            if self.store.version(model, &r.version)?.is_some() {
                return Err(RegistryError::Conflict(format!(
                    "version `{}` of `{model}` already exists; versions are immutable, register a new one",
                    r.version
                )));
            }
            let warmup = warmup::parse(r.warmup.as_ref())?;
            if r.eval_score.is_some_and(|s| !s.is_finite()) {
                return Err(RegistryError::Invalid("eval_score must be a finite number".into()));
            }
            let path = PathBuf::from(&r.artifact);
            if !path.is_absolute() {
                return Err(RegistryError::Invalid(
                    "artifact must be an absolute path on the server".into(),
                ));
            }
            if !path.exists() {
                return Err(RegistryError::Artifact(format!("{} does not exist", r.artifact)));
            }
            if !(path.is_file() || path.is_dir()) {
                return Err(RegistryError::Artifact(format!(
                    "{} is neither a regular file nor a directory",
                    r.artifact
                )));
            }
            let facts = crate::model::loaded::inspect(&ModelSource::from_path(&path))
                .map_err(|e| RegistryError::Artifact(e.to_string()))?;
            let sha256 = artifact_digest(&path)?;
            if let Some(expected) = &r.sha256 {
                let expected = expected.trim_start_matches("sha256:").to_ascii_lowercase();
                if expected != sha256 {
                    return Err(RegistryError::Artifact(format!(
                        "{} has sha256 {sha256}, not the {expected} given",
                        r.artifact
                    )));
                }
            }
            let record = VersionRecord {
                model: model.to_owned(),
                version: r.version.clone(),
                artifact: r.artifact.clone(),
                sha256,
                size_bytes: super::loader::artifact_bytes(&path),
                source: r.source.clone().unwrap_or_else(|| r.artifact.clone()),
                quantization: facts.quantization,
                created_at: now_ms(),
                created_by: actor.to_owned(),
                notes: r.notes.clone().unwrap_or_default(),
                warmup: json!(warmup),
                eval_score: r.eval_score,
            };
            self.store.insert_version(
                &record,
                &NewAudit {
                    actor,
                    action: "register",
                    model,
                    version: Some(&record.version),
                    before: Value::Null,
                    after: json!(record),
                    ok: true,
                    detail: format!("{} architecture", facts.architecture),
                },
            )?;
            Ok(record)
        })
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
        let _one = self.lock_actions();
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
            let current = self.current(model)?.ok_or_else(|| not_deployed(model))?;
            if current.stable == version {
                return Err(RegistryError::Conflict(format!(
                    "`{version}` is already the stable version of `{model}`"
                )));
            }
            let served = self.ensure_loaded(model, version)?;
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

    /// The controller's verdict: the canary goes back to 0 %.
    pub(super) fn auto_rollback(
        &self,
        model: &str,
        canary: &str,
        why: &str,
    ) -> Result<(), RegistryError> {
        let _one = self.lock_actions();
        if self.canary_of(model, canary).is_none() {
            return Ok(());
        }
        self.audited(ACTOR, "auto-rollback", model, Some(canary), || {
            self.set_canary(model, None, None, ACTOR, "auto-rollback", why)
                .map(|_| ())
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
        let _one = self.lock_actions();
        if self.canary_of(model, canary).is_none() {
            return Ok(());
        }
        self.audited(ACTOR, "auto-step", model, Some(canary), || {
            let served = self.ensure_loaded(model, canary)?;
            let mut rollout = self.current(model)?.and_then(|d| d.rollout);
            if let Some(r) = rollout.as_mut() {
                r["step"] = json!(step);
            }
            self.set_canary(
                model,
                Some((served, percent)),
                rollout,
                ACTOR,
                "auto-step",
                why,
            )
            .map(|_| ())
        })
    }

    /// The controller's verdict: the canary passed its last step.
    pub(super) fn auto_promote(
        &self,
        model: &str,
        canary: &str,
        why: &str,
    ) -> Result<(), RegistryError> {
        let _one = self.lock_actions();
        if self.canary_of(model, canary).is_none() {
            return Ok(());
        }
        self.audited(ACTOR, "auto-promote", model, Some(canary), || {
            self.make_stable(model, canary, ACTOR, "auto-promote", why)
                .map(|_| ())
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

    /// Takes a version no route uses out of memory: waits for its requests
    /// in flight, stops its engine, returns its memory.
    pub fn unload(&self, model: &str, version: &str, actor: &str) -> Result<Value, RegistryError> {
        let _one = self.lock_actions();
        self.audited(actor, "unload", model, Some(version), || {
            let served = match self.slot(model, version) {
                Some(Slot::Ready(m)) => m,
                Some(Slot::Draining) => {
                    return Err(RegistryError::Conflict(format!(
                        "`{model}@{version}` is already draining"
                    )))
                }
                _ => {
                    return Err(RegistryError::NotFound(format!(
                        "`{model}@{version}` is not loaded"
                    )))
                }
            };
            if self.table().routes_to(model, version) {
                return Err(RegistryError::Conflict(format!(
                    "`{model}@{version}` still takes traffic; deploy, promote or roll back to another version first"
                )));
            }
            let key = (model.to_owned(), version.to_owned());
            self.lock_slots().insert(key.clone(), Slot::Draining);
            let (done, drained) = std::sync::mpsc::channel();
            let slots = self.slots.clone();
            std::thread::Builder::new()
                .name("drain".into())
                .spawn(move || {
                    let took = drain::drain(served);
                    slots
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&key);
                    let _ = done.send(took);
                })
                .map_err(|e| RegistryError::Conflict(format!("cannot start a drain: {e}")))?;
            let outcome = match drained.recv_timeout(self.drain_timeout) {
                Ok(took) => json!({"state": "unloaded", "drain_ms": took.as_millis() as u64}),
                Err(_) => json!({"state": "draining", "drain_ms": null}),
            };
            let after = json!({"model": model, "version": version, "outcome": outcome});
            self.store.audit(&NewAudit {
                actor,
                action: "unload",
                model,
                version: Some(version),
                before: json!({"model": model, "version": version, "state": "ready"}),
                after: after.clone(),
                ok: true,
                detail: String::new(),
            })?;
            Ok(after)
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

    fn make_stable(
        &self,
        model: &str,
        version: &str,
        actor: &str,
        action: &str,
        detail: &str,
    ) -> Result<Deployment, RegistryError> {
        let before = self.current(model)?;
        let served = self.ensure_loaded(model, version)?;
        let old_stable = before.as_ref().map(|d| d.stable.clone());
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
        self.persist(&after, before, actor, action, detail)?;
        Ok(after)
    }

    fn set_canary(
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
        let loaded = self.loader.load(LoadSpec {
            source: &ModelSource::from_path(&path),
            dtype: None,
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

/// SHA-256 of a file; of a directory, the SHA-256 of its files' names and
/// digests in name order.
fn artifact_digest(path: &std::path::Path) -> Result<String, RegistryError> {
    let io = |e: std::io::Error| RegistryError::Artifact(format!("{}: {e}", path.display()));
    if !path.is_dir() {
        return store::sha256_file(path, |_, _| {})
            .map_err(|e| RegistryError::Artifact(e.to_string()));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut listing = String::new();
    for f in &files {
        let digest =
            store::sha256_file(f, |_, _| {}).map_err(|e| RegistryError::Artifact(e.to_string()))?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        listing.push_str(&format!("{digest}  {name}\n"));
    }
    use sha2::{Digest, Sha256};
    Ok(Sha256::digest(listing.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
