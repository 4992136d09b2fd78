//! Running an evaluation set on a version in memory.

use super::perplexity::perplexity;
use super::set::EvalSet;
use crate::registry::served::ServedModel;
use crate::registry::warmup::{answers, check};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub model: String,
    pub version: String,
    pub set_digest: String,
    pub prompts_passed: usize,
    pub prompts_total: usize,
    /// Why each failed prompt failed.
    pub failures: Vec<String>,
    pub perplexity: Option<f64>,
    pub seconds: f64,
}

impl EvalReport {
    pub fn passed_prompts(&self) -> bool {
        self.prompts_passed == self.prompts_total
    }
}

pub fn evaluate(
    served: &ServedModel,
    set: &EvalSet,
    set_digest: &str,
) -> Result<EvalReport, String> {
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    if !set.prompts.is_empty() {
        let got = answers(&served.engine, &served.tokenizer, &set.prompts)?;
        for (i, (answer, p)) in got.into_iter().zip(&set.prompts).enumerate() {
            if let Err(why) = check(i + 1, answer, p) {
                failures.push(why);
            }
        }
    }
    let ppl = match &set.perplexity {
        Some(p) => {
            let text = std::fs::read_to_string(&p.text)
                .map_err(|e| format!("perplexity text {}: {e}", p.text))?;
            let tokenizer = &served.tokenizer;
            let tokens = tokenizer.encode(&text, true, true);
            let bos = tokenizer.adds_bos().then(|| tokenizer.bos_id()).flatten();
            Some(perplexity(&served.engine, &tokens, p.ctx, bos, Some(p.chunks))?.ppl)
        }
        None => None,
    };
    Ok(EvalReport {
        model: served.name().to_owned(),
        version: served.version.clone(),
        set_digest: set_digest.to_owned(),
        prompts_passed: set.prompts.len() - failures.len(),
        prompts_total: set.prompts.len(),
        failures,
        perplexity: ppl,
        seconds: started.elapsed().as_secs_f64(),
    })
}
