//! The perplexity computation against a direct one, on dummy weights.

use super::*;
use crate::backend::cpu::{ComputePool, CpuBackend};
use crate::backend::WeightFormat;
use crate::engine::{self, Compute, EngineConfig, KvBudget, ModelSpec};
use crate::model::loaded::{load, ModelSource};
use crate::model::OneSequence;
use std::sync::Arc;

#[test]
fn chunks_replace_their_first_token_and_drop_the_tail() {
    let tokens: Vec<u32> = (10..31).collect();
    let c = chunks(&tokens, 8, Some(1), None);
    assert_eq!(
        c,
        vec![
            vec![1, 11, 12, 13, 14, 15, 16, 17],
            vec![1, 19, 20, 21, 22, 23, 24, 25]
        ]
    );
    assert_eq!(
        chunks(&tokens, 8, None, Some(1)),
        vec![(10..18).collect::<Vec<u32>>()]
    );
    assert_eq!(
        scored_losses(&[-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0], 8),
        [5.0, 6.0, 7.0]
    );
}

/// The engine's answer against a direct computation: every position's
/// logits of each chunk run alone, log-softmaxed by hand.
#[test]
fn the_engine_agrees_with_a_direct_computation() {
    let backend = CpuBackend::new(Arc::new(ComputePool::new(2)));
    let source = ModelSource::DummyPreset("tiny");
    let reference = load(&source, Some(WeightFormat::F32), &backend).unwrap();
    let tokens: Vec<u32> = (0..100u32).map(|i| (i * 37 + 11) % 250).collect();
    let (ctx, bos) = (32, Some(1));
    let model = ModelSpec {
        source: &source,
        dtype: Some(WeightFormat::F32),
        max_model_len: None,
    };
    let handle = engine::start(
        &Compute::cpu(2, false),
        model,
        &EngineConfig::default(),
        &KvBudget::new(64 << 20),
    )
    .unwrap()
    .handle;
    let got = perplexity(&handle, &tokens, ctx, bos, None).unwrap();

    let m = &reference.model;
    let mut losses = Vec::new();
    for chunk in chunks(&tokens, ctx, bos, None) {
        let mut seq = OneSequence::new(m, &backend, ctx).unwrap();
        let rows: Vec<usize> = (0..ctx).collect();
        let logits = seq.push(m, &backend, &chunk, &rows);
        let vocab = logits.len() / ctx;
        for k in ctx / 2 + 1..ctx {
            let row = &logits[(k - 1) * vocab..k * vocab];
            let max = row.iter().fold(f32::MIN, |a, &b| a.max(b));
            let sum: f64 = row.iter().map(|&x| f64::from(x - max).exp()).sum();
            let logprob = f64::from(row[chunk[k] as usize] - max) - sum.ln();
            losses.push(-logprob);
        }
    }
    let want = (losses.iter().sum::<f64>() / losses.len() as f64).exp();
    assert_eq!(got.chunks, 3);
    assert_eq!(got.scored_tokens, 3 * 15);
    assert!(
        (got.ppl - want).abs() / want < 1e-4,
        "{} vs {want}",
        got.ppl
    );
    assert!(got.stderr > 0.0 && got.running.len() == 3);
}
