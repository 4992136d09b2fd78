//! Forward passes outside the engine, shared by the parity tests.

#![allow(dead_code)]

use switchyard::backend::cpu::CpuBackend;
use switchyard::backend::Backend;
use switchyard::engine::sampler::argmax;
use switchyard::model::Transformer;

/// Logits at every position of `seq`, in one pass.
pub fn score(m: &Transformer<CpuBackend>, b: &CpuBackend, seq: &[u32]) -> Vec<Vec<f32>> {
    let c = &m.config;
    let mut cache = b
        .kv_cache(c.n_layers, c.context_length, c.heads.kv_dim())
        .unwrap();
    let mut s = m.scratch(b);
    let pos: Vec<u32> = (0..seq.len() as u32).collect();
    let rows: Vec<usize> = (0..seq.len()).collect();
    let flat = m.forward(b, &mut s, &mut cache, seq, &pos, &rows);
    flat.chunks_exact(c.vocab_size)
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
    let c = &m.config;
    let mut cache = b
        .kv_cache(c.n_layers, c.context_length, c.heads.kv_dim())
        .unwrap();
    let mut s = m.scratch(b);
    let pos: Vec<u32> = (0..prompt.len() as u32).collect();
    let mut logits = m.forward(b, &mut s, &mut cache, prompt, &pos, &[prompt.len() - 1]);
    let mut out = Vec::new();
    for i in 0..n {
        let t = argmax(&logits);
        let next = m.forward(
            b,
            &mut s,
            &mut cache,
            &[t],
            &[(prompt.len() + i) as u32],
            &[0],
        );
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
