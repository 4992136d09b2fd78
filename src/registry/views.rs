//! What the admin API shows: models with their deployment, versions with
//! their state in memory, and the audit trail.

use super::{Registry, RegistryError, Slot};
use crate::store::VersionRecord;
use serde_json::{json, Value};
use std::collections::BTreeSet;

impl Registry {
    /// Every model known to the store or served from the command line.
    pub fn models_view(&self) -> Result<Value, RegistryError> {
        let mut models: BTreeSet<String> = BTreeSet::new();
        models.extend(self.store.versions(None)?.into_iter().map(|v| v.model));
        models.extend(self.store.deployments()?.into_iter().map(|d| d.model));
        models.extend(self.table().routes().map(|r| r.names[0].clone()));
        let data = models
            .iter()
            .map(|m| self.model_view(m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({ "object": "list", "data": data }))
    }

    pub fn model_view(&self, model: &str) -> Result<Value, RegistryError> {
        let versions = self.store.versions(Some(model))?;
        let deployment = self.current(model)?;
        let route = self
            .table()
            .route(model)
            .filter(|r| r.names[0] == model)
            .cloned();
        if versions.is_empty() && deployment.is_none() && route.is_none() {
            return Err(RegistryError::NotFound(format!("no model `{model}`")));
        }
        let loaded: Vec<Value> = self
            .lock_slots()
            .iter()
            .filter(|((m, _), _)| m == model)
            .map(|((_, v), slot)| json!({"version": v, "state": slot.state()}))
            .collect();
        let versions = versions
            .iter()
            .map(|v| self.describe(v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({
            "model": model,
            "names": route.as_ref().map_or_else(|| vec![model.to_owned()], |r| r.names.clone()),
            "deployment": deployment,
            "serving": route.as_ref().map(|r| r.stable.version.clone()),
            "restore_error": self.restore_error(model),
            "versions": versions,
            "loaded": loaded,
        }))
    }

    pub fn version_view(&self, model: &str, version: &str) -> Result<Value, RegistryError> {
        let record = self.store.version(model, version)?.ok_or_else(|| {
            RegistryError::NotFound(format!("`{model}` has no version `{version}`"))
        })?;
        self.describe(&record)
    }

    pub fn audit_view(&self, model: Option<&str>, limit: usize) -> Result<Value, RegistryError> {
        let entries = self.store.audit_trail(model, limit)?;
        Ok(json!({ "object": "list", "data": entries }))
    }

    /// A version's record with what is true of it now.
    fn describe(&self, v: &VersionRecord) -> Result<Value, RegistryError> {
        let state = self
            .slot(&v.model, &v.version)
            .map_or("registered", |s: Slot| s.state());
        let table = self.table();
        let route = table.route(&v.model).filter(|r| r.names[0] == v.model);
        let holds =
            |c: &Option<super::Canary>| c.as_ref().is_some_and(|c| c.version.version == v.version);
        let role = route.and_then(|r| {
            if r.stable.version == v.version {
                Some("stable")
            } else if holds(&r.canary) {
                Some("canary")
            } else if holds(&r.shadow) {
                Some("shadow")
            } else {
                None
            }
        });
        let mut out = json!(v);
        out["state"] = json!(state);
        out["role"] = json!(role);
        out["warmup_check"] = json!(self.store.warmup(&v.model, &v.version)?);
        Ok(out)
    }
}
