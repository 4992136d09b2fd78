//! A version's evaluation set: golden prompts with required substrings
//! or whole expected answers, and a text whose perplexity is measured.
//! Registered with the version (`eval_set`), run by `models eval`, and
//! compared with stable's results by deploy and promote (`gate.rs`).

use super::super::warmup::{validate, GoldenPrompt};
use super::super::RegistryError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSet {
    #[serde(default)]
    pub prompts: Vec<GoldenPrompt>,
    #[serde(default)]
    pub perplexity: Option<PerplexityText>,
    /// The largest perplexity increase over stable's, relative (0.02 is
    /// 2 %), that deploy and promote accept.
    #[serde(default = "default_max_increase")]
    pub max_perplexity_increase: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerplexityText {
    /// An absolute path on the server to a UTF-8 text.
    pub text: String,
    #[serde(default = "default_ctx")]
    pub ctx: usize,
    #[serde(default = "default_chunks")]
    pub chunks: usize,
}

fn default_max_increase() -> f64 {
    0.02
}

fn default_ctx() -> usize {
    256
}

fn default_chunks() -> usize {
    8
}

/// Texts beyond this are refused: a gate must run in seconds.
const MAX_TEXT_BYTES: u64 = 16 << 20;

/// Reads and checks the `eval_set` field of a registration.
pub fn parse(value: &serde_json::Value) -> Result<EvalSet, RegistryError> {
    let set: EvalSet = serde_json::from_value(value.clone()).map_err(|e| {
        RegistryError::Invalid(format!(
            "eval_set must be {{prompts?, perplexity?: {{text, ctx?, chunks?}}, \
             max_perplexity_increase?}}: {e}"
        ))
    })?;
    if set.prompts.is_empty() && set.perplexity.is_none() {
        return Err(RegistryError::Invalid(
            "eval_set needs prompts, a perplexity text, or both".into(),
        ));
    }
    validate("eval_set", &set.prompts)?;
    if !(set.max_perplexity_increase.is_finite() && set.max_perplexity_increase >= 0.0) {
        return Err(RegistryError::Invalid(
            "max_perplexity_increase must be a non-negative number".into(),
        ));
    }
    if let Some(p) = &set.perplexity {
        let path = Path::new(&p.text);
        if !path.is_absolute() {
            return Err(RegistryError::Invalid(
                "the perplexity text must be an absolute path on the server".into(),
            ));
        }
        let size = std::fs::metadata(path)
            .map_err(|e| RegistryError::Invalid(format!("perplexity text {}: {e}", p.text)))?
            .len();
        if size > MAX_TEXT_BYTES {
            return Err(RegistryError::Invalid(format!(
                "the perplexity text is {size} bytes; at most {MAX_TEXT_BYTES}"
            )));
        }
        if !(16..=8192).contains(&p.ctx) || !(1..=256).contains(&p.chunks) {
            return Err(RegistryError::Invalid(
                "perplexity ctx must be within 16..=8192 and chunks within 1..=256".into(),
            ));
        }
    }
    Ok(set)
}

/// Names the set and the text's content: a stored result is reused only
/// for the same prompts, settings and text.
pub fn digest(set: &EvalSet) -> Result<String, RegistryError> {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(set).map_err(|e| RegistryError::Invalid(e.to_string()))?);
    if let Some(p) = &set.perplexity {
        let text = crate::store::sha256_file(Path::new(&p.text), |_, _| {})
            .map_err(|e| RegistryError::Invalid(format!("perplexity text: {e}")))?;
        h.update(text.as_bytes());
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
