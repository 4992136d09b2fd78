//! The promotion gate. Before a version becomes stable by deploy,
//! promote or the rollout controller's promotion (never by rollback: the
//! way back stays open), its evaluation set runs on it and, for the
//! perplexity, on the stable version it replaces. Failed golden prompts,
//! or a perplexity above stable's by more than the set's
//! `max_perplexity_increase`, refuse the action; the reason, with the
//! figures, is the error and so the audit entry. Results are stored per
//! version and set, and reused: versions are immutable.

use super::run::{evaluate, EvalReport};
use super::set::{self, EvalSet};
use crate::registry::{Registry, RegistryError};
use crate::store::NewAudit;
use serde_json::{json, Value};

impl Registry {
    /// `models eval`: runs the version's evaluation set now (loading the
    /// version when it is not in memory) and stores the result.
    pub fn evaluate(
        &self,
        model: &str,
        version: &str,
        actor: &str,
    ) -> Result<EvalReport, RegistryError> {
        let report = self.audited(actor, "eval", model, Some(version), || {
            let (set, digest) = self.eval_set_of(model, version)?.ok_or_else(|| {
                RegistryError::Conflict(format!(
                    "`{model}@{version}` has no evaluation set: register a version with eval_set"
                ))
            })?;
            self.run_set(model, version, &set, &digest, true)
        })?;
        let perplexity = report
            .perplexity
            .map_or(String::new(), |p| format!(", perplexity {p:.4}"));
        self.store.audit(&NewAudit {
            actor,
            action: "eval",
            model,
            version: Some(version),
            before: Value::Null,
            after: json!(report),
            ok: true,
            detail: format!(
                "{}/{} golden prompts{perplexity}",
                report.prompts_passed, report.prompts_total
            ),
        })?;
        Ok(report)
    }

    fn eval_set_of(
        &self,
        model: &str,
        version: &str,
    ) -> Result<Option<(EvalSet, String)>, RegistryError> {
        let record = self.store.version(model, version)?.ok_or_else(|| {
            RegistryError::NotFound(format!("`{model}` has no version `{version}`"))
        })?;
        match &record.eval_set {
            Some(value) => {
                let set = set::parse(value)?;
                let digest = set::digest(&set)?;
                Ok(Some((set, digest)))
            }
            None => Ok(None),
        }
    }

    /// The report of `set` on `version`: a stored one unless `fresh`.
    fn run_set(
        &self,
        model: &str,
        version: &str,
        set: &EvalSet,
        digest: &str,
        fresh: bool,
    ) -> Result<EvalReport, RegistryError> {
        if !fresh {
            let stored = self.store.evaluation(model, version, digest)?;
            if let Some(report) = stored.and_then(|v| serde_json::from_value(v).ok()) {
                return Ok(report);
            }
        }
        let served = self.ensure_loaded(model, version)?;
        let report = evaluate(&served, set, digest).map_err(RegistryError::Eval)?;
        self.store
            .record_evaluation(model, version, digest, &json!(report))?;
        Ok(report)
    }

    /// Passes (with a line for the audit entry) or refuses `candidate`
    /// replacing `stable`. A version without an evaluation set passes.
    pub(crate) fn gate(
        &self,
        model: &str,
        candidate: &str,
        stable: Option<&str>,
    ) -> Result<String, RegistryError> {
        if candidate == crate::registry::names::BOOT_VERSION {
            return Ok(String::new());
        }
        let Some((set, digest)) = self.eval_set_of(model, candidate)? else {
            return Ok(String::new());
        };
        let ours = self.run_set(model, candidate, &set, &digest, false)?;
        if !ours.passed_prompts() {
            return Err(RegistryError::Gate(format!(
                "`{model}@{candidate}` failed {} of {} golden prompts: {}",
                ours.prompts_total - ours.prompts_passed,
                ours.prompts_total,
                ours.failures.join("; ")
            )));
        }
        let mut detail = format!(
            "evaluation gate passed: {}/{} golden prompts",
            ours.prompts_passed, ours.prompts_total
        );
        let stable = stable.filter(|s| *s != candidate);
        if let (Some(ppl), Some(stable)) = (ours.perplexity, stable) {
            let theirs = self.run_set(model, stable, &set, &digest, false)?;
            if let Some(base) = theirs.perplexity {
                let increase = ppl / base - 1.0;
                let allowed = set.max_perplexity_increase;
                if increase > allowed {
                    return Err(RegistryError::Gate(format!(
                        "perplexity of `{model}@{candidate}` is {ppl:.4} against {base:.4} for \
                         stable `{stable}`: {:+.2} %, more than the {:.2} % allowed",
                        increase * 100.0,
                        allowed * 100.0
                    )));
                }
                detail.push_str(&format!(
                    ", perplexity {ppl:.4} against {base:.4} for `{stable}` ({:+.2} %, at most {:.2} %)",
                    increase * 100.0,
                    allowed * 100.0
                ));
            }
        } else if let Some(ppl) = ours.perplexity {
            detail.push_str(&format!(", perplexity {ppl:.4} (no stable to compare)"));
        }
        Ok(detail)
    }
}
