//! The batching engine on the default model, through its public handle:
//! a request's greedy output is the same alone, in a batch of sixteen,
//! after a prefix-cache hit, and when a small cache forces preemptions.

mod common;

use std::sync::Arc;
use switchyard::backend::cpu::{pool, ComputePool, CpuBackend};
use switchyard::engine::{
    self, EngineConfig, EngineHandle, Event, GenerateRequest, KvBudget, SamplingParams,
};
use switchyard::model::loaded::{load, ModelSource};

const NEW_TOKENS: usize = 24;

fn start(
    config: EngineConfig,
    kv_bytes: usize,
) -> (EngineHandle, Arc<switchyard::model::tokenizer::Tokenizer>) {
    let backend = CpuBackend::new(Arc::new(ComputePool::new(pool::physical_cores())));
    let m = load(
        &ModelSource::Gguf(common::default_model_path()),
        None,
        &backend,
    )
    .unwrap();
    let tok = m.tokenizer.clone();
    let handle = engine::spawn(
        backend,
        m.model,
        m.tokenizer,
        &config,
        &KvBudget::new(kv_bytes),
    )
    .unwrap();
    (handle, tok)
}

fn request(prompt: Vec<u32>) -> GenerateRequest {
    GenerateRequest {
        prompt,
        params: SamplingParams {
            temperature: 0.0,
            max_tokens: NEW_TOKENS,
            ignore_eos: true,
            ..SamplingParams::default()
        },
        priority: 0,
    }
}

/// Submits every prompt at once and returns each one's tokens.
fn generate_all(h: &EngineHandle, prompts: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let streams: Vec<_> = prompts
        .iter()
        .map(|p| h.submit(request(p.clone())).unwrap())
        .collect();
    streams
        .into_iter()
        .map(|mut s| {
            let mut out = Vec::new();
            while let Some(e) = s.blocking_next() {
                match e.unwrap() {
                    Event::Token { id, .. } => out.push(id),
                    Event::Finished { .. } => return out,
                    Event::PromptLogprobs(_) => {}
                }
            }
            panic!("the engine stopped");
        })
        .collect()
}

#[test]
fn greedy_output_does_not_depend_on_batching_caching_or_preemption() {
    let config = EngineConfig {
        max_num_seqs: 16,
        ..EngineConfig::default()
    };
    let (h, tok) = start(config.clone(), 1 << 30);
    // Sixteen prompts; a common preamble longer than two blocks.
    let preamble = "You are a careful assistant. Answer briefly and precisely, and say so when \
        you do not know. Prefer plain words to jargon, give numbers with their units, and keep \
        every answer to one sentence unless the question asks for more. ";
    let prompts: Vec<Vec<u32>> = (0..16)
        .map(|i| {
            tok.encode(
                &format!(
                    "{preamble}Question {i}: name a number larger than {}.",
                    i * 7
                ),
                true,
                true,
            )
        })
        .collect();
    assert!(prompts[0].len() > 32);
    let alone: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| generate_all(&h, std::slice::from_ref(p)).remove(0))
        .collect();
    assert!(alone.iter().all(|t| t.len() == NEW_TOKENS));
    // Later prompts found the preamble's blocks cached.
    let stats = h.stats();
    assert!(stats.prefix_hit_tokens >= 15 * 32, "{stats:?}");

    let batched = generate_all(&h, &prompts);
    for i in 0..16 {
        assert_eq!(batched[i], alone[i], "request {i} in a batch of 16");
    }

    // A cache of 24 blocks of 16 positions holds a few of these sequences
    // at once: the others wait, or are preempted and recomputed.
    let block_bytes = 2 * 30 * 16 * 192 * 4;
    let (tight, _) = start(config, 24 * block_bytes);
    let squeezed = generate_all(&tight, &prompts);
    assert!(tight.stats().preemptions > 0, "{:?}", tight.stats());
    for i in 0..16 {
        assert_eq!(squeezed[i], alone[i], "request {i} under preemption");
    }
}
