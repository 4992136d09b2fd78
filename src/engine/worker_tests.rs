//! The engine driven step by step on the dummy `tiny` preset: outputs do
//! not depend on batching, caching or preemption, and the allocator stays
//! consistent through random traffic. On the CUDA backend (run by the host
//! emulator) it gives the CPU's tokens, and a device failure fails the
//! step's requests.

use super::*;
use crate::backend::cpu::{ComputePool, CpuBackend};
use crate::backend::WeightFormat;
use crate::engine::handle::Admission;
use crate::engine::rng::Rng;
use crate::engine::{Event, FinishReason, GenerateRequest, SamplingParams};
use crate::model::loaded::{load, ModelSource};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

type Events = UnboundedReceiver<Result<Event, EngineError>>;

fn engine(format: WeightFormat, blocks: usize, config: EngineConfig) -> Engine<CpuBackend> {
    engine_on(
        CpuBackend::new(Arc::new(ComputePool::new(2))),
        format,
        blocks,
        config,
    )
}

fn engine_on<B: Backend>(
    backend: B,
    format: WeightFormat,
    blocks: usize,
    config: EngineConfig,
) -> Engine<B> {
    let loaded = load(&ModelSource::DummyPreset("tiny"), Some(format), &backend).unwrap();
    let block_bytes = loaded
        .model
        .kv_shape(1, config.block_size, config.kv_dtype)
        .block_bytes();
    let budget = KvBudget::new(blocks * block_bytes);
    Engine::new(backend, loaded.model, loaded.tokenizer, &config, &budget).unwrap()
}

fn config(max_num_seqs: usize, max_num_batched_tokens: usize) -> EngineConfig {
    EngineConfig {
        max_num_seqs,
        max_num_batched_tokens,
        ..EngineConfig::default()
    }
}

fn submit<B: Backend>(
    e: &mut Engine<B>,
    prompt: Vec<u32>,
    max_tokens: usize,
    priority: i32,
) -> Events {
    let params = SamplingParams {
        temperature: 0.0,
        max_tokens,
        ignore_eos: true,
        ..SamplingParams::default()
    };
    submit_with(e, prompt, params, priority)
}

fn submit_with<B: Backend>(
    e: &mut Engine<B>,
    prompt: Vec<u32>,
    params: SamplingParams,
    priority: i32,
) -> Events {
    let (tx, rx) = unbounded_channel();
    e.add(Job {
        request: GenerateRequest {
            prompt,
            params,
            priority,
        },
        events: tx,
        _admission: Admission::unmetered(),
    });
    rx
}

/// Steps until nothing is left, checking the allocator after each step.
fn run_to_idle<B: Backend>(e: &mut Engine<B>) {
    let mut steps = 0;
    while !e.is_idle() {
        e.step();
        e.scheduler.check().unwrap();
        steps += 1;
        assert!(steps < 100_000, "the engine makes no progress");
    }
}

/// The tokens a finished request produced.
fn tokens(rx: &mut Events) -> Vec<u32> {
    let mut out = Vec::new();
    while let Ok(event) = rx.try_recv() {
        match event.unwrap() {
            Event::Token { id, .. } => out.push(id),
            Event::Finished { reason, usage, .. } => {
                assert_eq!(reason, FinishReason::Length);
                assert_eq!(usage.completion_tokens, out.len());
                return out;
            }
            Event::PromptLogprobs(_) => {}
        }
    }
    panic!("the request did not finish");
}

fn prompts(n: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = Rng::seeded(seed);
    (0..n)
        .map(|_| {
            let len = 5 + (rng.next_u64() % 50) as usize;
            (0..len).map(|_| (rng.next_u64() % 256) as u32).collect()
        })
        .collect()
}

#[test]
fn greedy_output_is_the_same_alone_batched_cached_and_recomputed() {
    const NEW: usize = 24;
    for format in [WeightFormat::Q8_0, WeightFormat::Q4_1, WeightFormat::F32] {
        let ps = prompts(16, 3);
        // Alone: one request at a time.
        let mut solo = engine(format, 512, config(16, 256));
        let alone: Vec<Vec<u32>> = ps
            .iter()
            .map(|p| {
                let mut rx = submit(&mut solo, p.clone(), NEW, 0);
                run_to_idle(&mut solo);
                tokens(&mut rx)
            })
            .collect();
        assert!(
            alone.iter().any(|t| t != &alone[0]),
            "{format:?}: outputs vary"
        );

        // After a prefix-cache hit: the same prompt again, its full blocks
        // taken from the cache.
        let longest = (0..ps.len()).max_by_key(|&i| ps[i].len()).unwrap();
        assert!(ps[longest].len() > 16);
        let hits = solo.scheduler.cache_stats().hit_tokens;
        let mut rx = submit(&mut solo, ps[longest].clone(), NEW, 0);
        run_to_idle(&mut solo);
        assert!(
            solo.scheduler.cache_stats().hit_tokens > hits,
            "{format:?}: no hit"
        );
        assert_eq!(
            tokens(&mut rx),
            alone[longest],
            "{format:?}: after a cache hit"
        );

        // Batched with 15 others, in one step from the start.
        let mut batched = engine(format, 512, config(16, 1024));
        let mut rxs: Vec<Events> = ps
            .iter()
            .map(|p| submit(&mut batched, p.clone(), NEW, 0))
            .collect();
        let first = batched.step();
        assert_eq!(first.items.len(), 16, "all prefill in one step");
        run_to_idle(&mut batched);
        for (i, rx) in rxs.iter_mut().enumerate() {
            assert_eq!(tokens(rx), alone[i], "{format:?}: request {i} batched");
        }

        // Short of blocks: sequences are preempted and recomputed. Each
        // needs up to 5 blocks of 16; 22 blocks hold four at a time.
        let mut tight = engine(format, 22, config(16, 256));
        let mut rxs: Vec<Events> = ps
            .iter()
            .map(|p| submit(&mut tight, p.clone(), NEW, 0))
            .collect();
        run_to_idle(&mut tight);
        assert!(
            tight.scheduler.preemptions() > 0,
            "{format:?}: nothing preempted"
        );
        for (i, rx) in rxs.iter_mut().enumerate() {
            assert_eq!(
                tokens(rx),
                alone[i],
                "{format:?}: request {i} after preemption"
            );
        }
        let pool = tight.scheduler.pool();
        assert_eq!(pool.available(), pool.total());
    }
}

#[test]
fn a_thousand_random_requests_with_cancellations_leave_every_block_free() {
    let mut e = engine(WeightFormat::F32, 24, config(8, 64));
    let mut rng = Rng::seeded(11);
    let mut live: Vec<(Events, usize)> = Vec::new();
    let (mut submitted, mut finished, mut cancelled) = (0, 0, 0);
    // Shared stems make prefix-cache hits; lengths up to 120 tokens make
    // preemptions in a 384-token cache.
    let stems = prompts(4, 5);
    while submitted < 1000 || !e.is_idle() {
        if submitted < 1000 {
            for _ in 0..(rng.next_u64() % 3).min(1000 - submitted) {
                let stem = &stems[(rng.next_u64() % 4) as usize];
                let mut prompt = stem[..1 + (rng.next_u64() as usize % stem.len())].to_vec();
                prompt.extend((0..rng.next_u64() % 40).map(|i| i as u32));
                let max_tokens = 1 + (rng.next_u64() % 40) as usize;
                let priority = (rng.next_u64() % 3) as i32;
                live.push((submit(&mut e, prompt, max_tokens, priority), max_tokens));
                submitted += 1;
            }
        }
        if rng.next_u64().is_multiple_of(8) && !live.is_empty() {
            // The client goes away: its receiver is dropped.
            let i = (rng.next_u64() as usize) % live.len();
            live.swap_remove(i);
            cancelled += 1;
        }
        e.step();
        e.scheduler.check().unwrap();
        live.retain_mut(|(rx, max_tokens)| {
            let mut done = false;
            while let Ok(event) = rx.try_recv() {
                if let Event::Finished { usage, .. } = event.unwrap() {
                    assert_eq!(usage.completion_tokens, *max_tokens);
                    done = true;
                }
            }
            if done {
                finished += 1;
            }
            !done
        });
    }
    assert!(live.is_empty());
    assert_eq!(finished + cancelled, 1000);
    let pool = e.scheduler.pool();
    assert_eq!(pool.available(), pool.total(), "blocks leaked");
    assert!(e.scheduler.preemptions() > 0, "the cache was never short");
    assert!(
        e.scheduler.cache_stats().hit_tokens > 0,
        "the prefix cache never hit"
    );
}

/// Greedy requests for `ps`, and with `with_logprobs` one more asking for
/// logprobs.
fn submit_set<B: Backend>(e: &mut Engine<B>, ps: &[Vec<u32>], with_logprobs: bool) -> Vec<Events> {
    let mut rxs: Vec<Events> = ps.iter().map(|p| submit(e, p.clone(), 16, 0)).collect();
    if with_logprobs {
        let params = SamplingParams {
            temperature: 0.0,
            max_tokens: 16,
            ignore_eos: true,
            logprobs: Some(2),
            ..SamplingParams::default()
        };
        rxs.push(submit_with(e, ps[0].clone(), params, 0));
    }
    rxs
}

#[test]
fn the_cuda_backend_gives_the_cpus_greedy_tokens_batched() {
    use crate::backend::cuda::{CudaBackend, CudaDevice};
    let dev = CudaDevice::emulated().expect("the host emulator builds");
    let ps = prompts(6, 11);
    // f32 weights: the CPU engine's activations are 8-bit only for
    // quantized matrices, so both compute in f32.
    let mut cpu = engine(WeightFormat::F32, 256, config(8, 256));
    let mut gpu = engine_on(
        CudaBackend::new(dev),
        WeightFormat::F32,
        256,
        config(8, 256),
    );
    // Every request greedy: the device finds each argmax. Then the same
    // prompts beside one that asks for logprobs: those steps read their
    // rows back and sample on the host.
    for with_logprobs in [false, true] {
        let mut want = submit_set(&mut cpu, &ps, with_logprobs);
        run_to_idle(&mut cpu);
        let argmaxed = gpu.backend.rows_argmaxed();
        let mut got = submit_set(&mut gpu, &ps, with_logprobs);
        run_to_idle(&mut gpu);
        let tokens_of = |rxs: &mut Vec<Events>| rxs.iter_mut().map(tokens).collect::<Vec<_>>();
        assert_eq!(
            tokens_of(&mut got),
            tokens_of(&mut want),
            "logprobs: {with_logprobs}"
        );
        let device_rows = gpu.backend.rows_argmaxed() - argmaxed;
        if with_logprobs {
            assert_eq!(
                device_rows, 0,
                "a step with a logprobs request reads its rows"
            );
        } else {
            assert_eq!(
                device_rows,
                6 * 16,
                "every greedy token found on the device"
            );
        }
    }
}

#[test]
fn a_device_failure_fails_the_steps_requests() {
    use crate::backend::cuda::{CudaBackend, CudaDevice};
    let dev = CudaDevice::emulated().expect("the host emulator builds");
    let mut e = engine_on(CudaBackend::new(dev), WeightFormat::F32, 64, config(4, 64));
    // Break the device after loading: the next launch is refused.
    e.backend.inject_failure("injected for a test");
    let mut rx = submit(&mut e, vec![1, 2, 3], 4, 0);
    run_to_idle(&mut e);
    let mut failed = false;
    while let Ok(event) = rx.try_recv() {
        if let Err(err) = event {
            assert!(err.to_string().contains("injected for a test"), "{err}");
            failed = true;
        }
    }
    assert!(failed, "the request neither failed nor finished");
}
