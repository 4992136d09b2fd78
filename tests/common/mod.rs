//! Forward passes outside the engine, shared by the parity tests.

#![allow(dead_code)]

use switchyard::backend::cpu::CpuBackend;
use switchyard::engine::sampler::argmax;
use switchyard::model::{OneSequence, Transformer};

/// The default model: $SWITCHYARD_TEST_MODEL, else pulled into the store.
pub fn default_model_path() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("SWITCHYARD_TEST_MODEL") {
        if std::path::Path::new(&p).exists() {
            return p.into();
        }
    }
    let outcome = switchyard::store::pull(switchyard::store::DEFAULT_MODEL, &mut std::io::stderr())
        .expect("the default model must be available (scripts/test.sh pulls it)");
    outcome.path().to_path_buf()
}

/// Logits at every position of `seq`, in one pass.
pub fn score(m: &Transformer<CpuBackend>, b: &CpuBackend, seq: &[u32]) -> Vec<Vec<f32>> {
    let mut one = OneSequence::new(m, b, seq.len()).unwrap();
    let rows: Vec<usize> = (0..seq.len()).collect();
    let flat = one.push(m, b, seq, &rows);
    flat.chunks_exact(m.config.vocab_size)
        .map(<[f32]>::to_vec)
        .collect()
}

/// Greedy decoding of `n` tokens after `prompt`, one token per step as the
/// engine decodes; returns each step's logits and the token chosen.
pub fn greedy(
    m: &Transformer<CpuBackend>,
    b: &CpuBackend,
    prompt: &[u32],
    n: usize,
) -> Vec<(Vec<f32>, u32)> {
    let mut one = OneSequence::new(m, b, prompt.len() + n).unwrap();
    let mut logits = one.push(m, b, prompt, &[prompt.len() - 1]);
    let mut out = Vec::new();
    for _ in 0..n {
        let t = argmax(&logits);
        let next = one.push(m, b, &[t], &[0]);
        out.push((std::mem::replace(&mut logits, next), t));
    }
    out
}

/// log_softmax in f64.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let lse = max + sum.ln();
    logits.iter().map(|&l| l as f64 - lse).collect()
}
