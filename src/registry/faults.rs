//! Faults a version can be told to show, for testing rollouts: a share of
//! its requests fail with a server error. Only when the server runs with
//! `--allow-fault-injection`.

use super::{Registry, RegistryError, Slot};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[derive(Default)]
pub struct Faults {
    /// Failing requests per million.
    error_ppm: AtomicU32,
    requests: AtomicU64,
}

impl Faults {
    pub fn set_error_ratio(&self, ratio: f64) {
        let ppm = (ratio.clamp(0.0, 1.0) * 1e6).round() as u32;
        self.error_ppm.store(ppm, Ordering::Relaxed);
    }

    pub fn error_ratio(&self) -> f64 {
        f64::from(self.error_ppm.load(Ordering::Relaxed)) / 1e6
    }

    /// Whether this request fails: exactly the set share of requests,
    /// spread evenly over them.
    pub fn fail_next(&self) -> bool {
        let ppm = u64::from(self.error_ppm.load(Ordering::Relaxed));
        if ppm == 0 {
            return false;
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        (n + 1) * ppm / 1_000_000 > n * ppm / 1_000_000
    }
}

impl Registry {
    /// Makes a share of a loaded version's requests fail, for testing
    /// rollouts; only with `--allow-fault-injection`.
    pub fn set_faults(
        &self,
        model: &str,
        version: &str,
        error_ratio: f64,
        actor: &str,
    ) -> Result<serde_json::Value, RegistryError> {
        if !self.allow_faults {
            return Err(RegistryError::Forbidden(
                "fault injection is off; start the server with --allow-fault-injection".into(),
            ));
        }
        if !(0.0..=1.0).contains(&error_ratio) {
            return Err(RegistryError::Invalid(
                "error_ratio must be between 0 and 1".into(),
            ));
        }
        let Some(Slot::Ready(served)) = self.slot(model, version) else {
            return Err(RegistryError::NotFound(format!(
                "`{model}@{version}` is not loaded"
            )));
        };
        served.faults.set_error_ratio(error_ratio);
        let after =
            serde_json::json!({"model": model, "version": version, "error_ratio": error_ratio});
        self.store.audit(&crate::store::NewAudit {
            actor,
            action: "faults",
            model,
            version: Some(version),
            before: serde_json::Value::Null,
            after: after.clone(),
            ok: true,
            detail: String::new(),
        })?;
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_share_failed_is_exact() {
        let f = super::Faults::default();
        assert!(!(0..100).any(|_| f.fail_next()));
        f.set_error_ratio(0.25);
        assert_eq!((0..1000).filter(|_| f.fail_next()).count(), 250);
        f.set_error_ratio(1.0);
        assert!((0..10).all(|_| f.fail_next()));
    }
}
