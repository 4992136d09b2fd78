//! One model on two backends, token by token: the reference (the CPU)
//! chooses each next token greedily, both backends are fed the same
//! tokens (teacher forcing), and the log-probability each gives the chosen
//! token is compared at every step. The prompt goes in one step, then one
//! token per step, as the engine decodes, so prefill and decode paths are
//! both compared.

use super::error::Result;
use super::transformer::{OneSequence, Transformer};
use crate::backend::{argmax, Backend};

#[derive(Clone, Debug, serde::Serialize)]
pub struct Comparison {
    /// Tokens compared (one per decode step).
    pub steps: usize,
    /// Largest |log p_reference − log p_other| of a chosen token.
    pub max_logprob_diff: f64,
    pub mean_logprob_diff: f64,
    /// Steps where the other backend's own greedy choice is the
    /// reference's.
    pub same_argmax: usize,
}

fn log_softmax_at(logits: &[f32], token: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    logits[token] as f64 - max - sum.ln()
}

/// Runs `prompt` then `steps` greedy tokens through both.
pub fn compare<R: Backend, O: Backend>(
    reference: (&Transformer<R>, &R),
    other: (&Transformer<O>, &O),
    prompt: &[u32],
    steps: usize,
) -> Result<Comparison> {
    let (rm, rb) = reference;
    let (om, ob) = other;
    let capacity = prompt.len() + steps;
    let mut rs = OneSequence::new(rm, rb, capacity)?;
    let mut os = OneSequence::new(om, ob, capacity)?;
    let last = [prompt.len() - 1];
    let mut r_logits = rs.push(rm, rb, prompt, &last);
    let mut o_logits = os.push(om, ob, prompt, &last);
    let (mut max, mut sum, mut same) = (0f64, 0f64, 0);
    for _ in 0..steps {
        let token = argmax(&r_logits) as usize;
        if argmax(&o_logits) as usize == token {
            same += 1;
        }
        let diff = (log_softmax_at(&r_logits, token) - log_softmax_at(&o_logits, token)).abs();
        // NaN from a broken backend must not pass as "no difference".
        let diff = if diff.is_nan() { f64::INFINITY } else { diff };
        max = max.max(diff);
        sum += diff;
        r_logits = rs.push(rm, rb, &[token as u32], &[0]);
        o_logits = os.push(om, ob, &[token as u32], &[0]);
    }
    ob.check()?;
    Ok(Comparison {
        steps,
        max_logprob_diff: max,
        mean_logprob_diff: sum / steps.max(1) as f64,
        same_argmax: same,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cpu::{ComputePool, CpuBackend};
    use crate::backend::cuda::{CudaBackend, CudaDevice};
    use crate::model::loaded::{load, ModelSource};
    use std::path::Path;
    use std::sync::Arc;

    /// The CUDA backend (on the host emulator) decodes the checkpoint
    /// fixtures as the CPU does: Llama (head size 16, bf16 weights) and
    /// Qwen3 (per-head q/k norms).
    #[test]
    fn the_cuda_backend_follows_the_cpu_token_by_token() {
        let cpu = CpuBackend::new(Arc::new(ComputePool::new(2))).with_exact_activations(true);
        let gpu = CudaBackend::new(CudaDevice::emulated().expect("the host emulator builds"));
        for fixture in ["llama-bf16", "qwen3-f32"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/hf")
                .join(fixture);
            let source = ModelSource::HuggingFace(dir);
            let r = load(&source, None, &cpu).unwrap();
            let o = load(&source, None, &gpu).unwrap();
            let prompt = r.tokenizer.encode("The quick brown fox jumps", true, true);
            let c = compare((&r.model, &cpu), (&o.model, &gpu), &prompt, 32).unwrap();
            eprintln!("{fixture}: {c:?}");
            assert_eq!(c.steps, 32);
            assert!(c.max_logprob_diff < 1e-4, "{fixture}: {c:?}");
            assert_eq!(c.same_argmax, 32, "{fixture}: {c:?}");
        }
    }

    #[test]
    fn a_broken_backend_is_not_a_match() {
        let logits = [0.0f32, f32::NAN];
        assert!(log_softmax_at(&logits, 0).is_nan());
    }
}
