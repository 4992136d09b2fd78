//! Shadow traffic: a share of a model's requests is copied to another
//! version, whose answers are discarded and whose metrics are recorded.
//! Its engine runs in the background, only while the engines that answer
//! clients are idle.

use super::locks::hold;
use super::{Canary, Registry, RegistryError, Route, ServedModel};
use crate::store::{now_ms, Deployment, NewAudit};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Registry {
    /// Copies `percent` of `model`'s requests to `version`; 0 (or no
    /// version) stops the copying.
    pub fn shadow(
        &self,
        model: &str,
        version: Option<&str>,
        percent: f64,
        actor: &str,
    ) -> Result<Deployment, RegistryError> {
        self.audited(actor, "shadow", model, version, || {
            if !(0.0..=100.0).contains(&percent) {
                return Err(RegistryError::Invalid(format!(
                    "percent must be between 0 and 100, not {percent}"
                )));
            }
            let version = version.filter(|_| percent > 0.0);
            let not_stable = |stable: &str| match version {
                Some(v) if v == stable => Err(RegistryError::Conflict(format!(
                    "`{v}` is the stable version of `{model}`; a shadow must be another"
                ))),
                _ => Ok(()),
            };
            not_stable(&self.deployed(model)?.0.stable)?;
            let served = version.map(|v| self.ensure_loaded(model, v)).transpose()?;
            let lock = self.model_lock(model);
            let _one = hold(&lock);
            let (before, route) = self.deployed(model)?;
            not_stable(&before.stable)?;
            let shadow = served.map(|served| {
                served.engine.set_background(true);
                Canary {
                    version: served,
                    percent,
                }
            });
            if let Some(old) = &route.shadow {
                let kept = shadow
                    .as_ref()
                    .is_some_and(|s| Arc::ptr_eq(&s.version, &old.version));
                if !kept {
                    old.version.engine.set_background(false);
                }
            }
            let next = Route {
                shadow: shadow.clone(),
                ..(*route).clone()
            };
            self.table.rcu(|t| t.with(next.clone()));
            let after = Deployment {
                shadow: shadow.as_ref().map(|s| s.version.version.clone()),
                shadow_percent: shadow.as_ref().map_or(0.0, |s| s.percent),
                updated_at: now_ms(),
                updated_by: actor.to_owned(),
                ..before.clone()
            };
            self.store.set_deployment(
                &after,
                &NewAudit {
                    actor,
                    action: "shadow",
                    model,
                    version: after.shadow.as_deref().or(before.shadow.as_deref()),
                    before: json!(before),
                    after: json!(after),
                    ok: true,
                    detail: String::new(),
                },
            )?;
            Ok(after)
        })
    }

    /// The shadow a request for `name` is copied to, for the set share of
    /// requests (exactly, spread evenly); None for the others.
    pub fn shadow_pick(&self, name: Option<&str>) -> Option<Arc<ServedModel>> {
        let table = self.table();
        let route = match name {
            Some(n) => table.route(n),
            None => table.sole(),
        }?;
        let shadow = route.shadow.as_ref()?;
        let n = self.mirrored.fetch_add(1, Ordering::Relaxed);
        let share = (shadow.percent * 100.0).round() as u64; // per 10,000
        ((n + 1) * share / 10_000 > n * share / 10_000).then(|| shadow.version.clone())
    }

    /// The stored shadow of a deployment, loaded again at start.
    pub(super) fn restore_shadow(&self, d: &Deployment) -> Option<Canary> {
        let version = d.shadow.as_deref()?;
        match self.ensure_loaded(&d.model, version) {
            Ok(served) => {
                served.engine.set_background(true);
                Some(Canary {
                    version: served,
                    percent: d.shadow_percent,
                })
            }
            Err(e) => {
                tracing::error!(model = %d.model, version, error = %e, "the stored shadow could not be restored");
                None
            }
        }
    }
}
