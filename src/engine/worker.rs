//! The engine thread: a loop of steps. Each step takes in new requests,
//! drops the cancelled ones, asks the scheduler which tokens to compute,
//! runs them as ONE forward pass over every sequence in the step (decode
//! tokens and prefill chunks together), then lets each sequence that
//! caught up pick its next token. It never awaits; it sleeps only when it
//! has nothing to run.

use super::config::{EngineConfig, KvBudget, KvReservation};
use super::error::EngineError;
use super::grammar::TokenTrie;
use super::handle::{EngineHandle, EngineInfo, Job};
use super::kv::BlockPool;
use super::output::{Choice, Next, Output};
use super::scheduler::{Plan, Scheduler, SchedulerConfig, SeqId};
use super::stats::{EngineSnapshot, EngineStats};
use crate::backend::{Backend, KvBatch};
use crate::model::tokenizer::Tokenizer;
use crate::model::StepOutput;
use crate::model::{Scratch, Transformer};
use crate::telemetry::metrics::EngineMetrics;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

pub(super) struct Engine<B: Backend> {
    backend: B,
    model: Transformer<B>,
    tokenizer: Arc<Tokenizer>,
    scratch: Scratch<B>,
    cache: B::KvCache,
    /// The pool's bytes, held against the process budget.
    _reservation: KvReservation,
    pub(super) scheduler: Scheduler,
    outputs: HashMap<SeqId, Output>,
    next_id: SeqId,
    /// The vocabulary as a trie, built for the first constrained request.
    trie: Option<Arc<TokenTrie>>,
    batch: KvBatch,
    ids: Vec<u32>,
    logit_rows: Vec<usize>,
    pub(super) stats: Arc<EngineStats>,
    steps: u64,
    metrics: EngineMetrics,
    born: std::time::Instant,
    busy: std::time::Duration,
}

impl<B: Backend> Engine<B> {
    /// Sizes the block pool from what the budget has left: enough for
    /// every seat at full context if that much is left, else what is.
    pub(super) fn new(
        backend: B,
        model: Transformer<B>,
        tokenizer: Arc<Tokenizer>,
        config: &EngineConfig,
        budget: &Arc<KvBudget>,
    ) -> Result<Self, EngineError> {
        config.validate().map_err(EngineError::Config)?;
        let bs = config.block_size;
        let block_bytes = model.kv_shape(1, bs, config.kv_dtype).block_bytes();
        let context_blocks = model.config.context_length.div_ceil(bs);
        // At least one block per seat and a few more: below that nothing
        // useful runs.
        let at_least = (config.max_num_seqs + 4) * block_bytes;
        let wanted = (config.max_num_seqs * context_blocks * block_bytes)
            .min(config.max_kv_bytes.unwrap_or(usize::MAX))
            .max(at_least);
        let reservation = budget.reserve(wanted, at_least).ok_or_else(|| {
            EngineError::NoRoom(format!(
                "the KV cache budget has {} MiB left; this model needs at least {} MiB for {} sequences",
                budget.left() >> 20,
                at_least.div_ceil(1 << 20),
                config.max_num_seqs
            ))
        })?;
        let blocks = reservation.bytes() / block_bytes;
        let cache = backend
            .kv_cache(model.kv_shape(blocks, bs, config.kv_dtype))
            .map_err(|e| EngineError::NoRoom(e.to_string()))?;
        let scheduler = Scheduler::new(
            SchedulerConfig {
                max_num_seqs: config.max_num_seqs,
                max_num_batched_tokens: config.max_num_batched_tokens,
                prefix_caching: config.prefix_caching,
            },
            BlockPool::new(blocks, bs),
        );
        Ok(Engine {
            scratch: model.scratch(&backend),
            backend,
            model,
            tokenizer,
            cache,
            _reservation: reservation,
            scheduler,
            outputs: HashMap::new(),
            next_id: 0,
            trie: None,
            batch: KvBatch::new(bs),
            ids: Vec::new(),
            logit_rows: Vec::new(),
            stats: Arc::new(EngineStats::default()),
            steps: 0,
            metrics: EngineMetrics::new(
                &config.model_name,
                &config.version,
                config.latency.0.clone(),
            ),
            born: std::time::Instant::now(),
            busy: std::time::Duration::ZERO,
        })
    }

    pub(super) fn info(&self, config: &EngineConfig) -> EngineInfo {
        let pool = self.scheduler.pool();
        EngineInfo {
            context_length: self.model.config.context_length,
            vocab_size: self.model.config.vocab_size,
            backend: self.backend.describe(),
            max_num_seqs: config.max_num_seqs,
            kv_tokens: pool.total() * pool.block_size(),
        }
    }

    pub(super) fn add(&mut self, job: Job) {
        let id = self.next_id;
        self.next_id += 1;
        let priority = job.request.priority;
        let tokenizer = self.tokenizer.clone();
        let trie = &mut self.trie;
        let output = Output::new(
            job,
            tokenizer.clone(),
            || {
                trie.get_or_insert_with(|| Arc::new(TokenTrie::new(&tokenizer)))
                    .clone()
            },
            self.model.config.context_length,
        );
        let reuses_cache = !output.wants_prompt_logits();
        self.scheduler
            .add(id, output.prompt().to_vec(), priority, reuses_cache);
        self.outputs.insert(id, output);
    }

    pub(super) fn is_idle(&self) -> bool {
        self.scheduler.is_idle()
    }

    /// Frees the sequences whose clients left.
    fn drop_cancelled(&mut self) {
        let gone: Vec<SeqId> = self
            .outputs
            .iter()
            .filter(|(_, o)| o.is_cancelled())
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.end(id);
        }
    }

    fn end(&mut self, id: SeqId) {
        self.scheduler.finish(id);
        if let Some(out) = self.outputs.remove(&id) {
            let usage = out.usage();
            tracing::debug!(
                prompt = usage.prompt_tokens,
                completion = usage.completion_tokens,
                elapsed_ms = out.submitted.elapsed().as_millis() as u64,
                "request done"
            );
        }
    }

    /// One step: schedule, run the forward pass, hand out the logits.
    /// Returns the plan it ran (empty when there was nothing to do).
    pub(super) fn step(&mut self) -> Plan {
        let started = std::time::Instant::now();
        self.drop_cancelled();
        let plan = self.scheduler.schedule();
        if plan.items.is_empty() {
            self.publish_stats();
            return plan;
        }
        self.batch.clear();
        self.ids.clear();
        self.logit_rows.clear();
        for it in &plan.items {
            let (Some(seq), Some(out)) =
                (self.scheduler.get(it.seq), self.outputs.get_mut(&it.seq))
            else {
                continue;
            };
            out.scheduled(&self.metrics);
            let first_row = self.ids.len();
            self.batch
                .push_sequence(&seq.blocks, it.start..it.start + it.len);
            self.ids
                .extend_from_slice(&seq.tokens[it.start..it.start + it.len]);
            if out.wants_prompt_logits() {
                self.logit_rows.extend(first_row..first_row + it.len);
            } else if it.start + it.len == seq.tokens.len() {
                self.logit_rows.push(first_row + it.len - 1);
            }
        }
        // When every request of the step takes the plain argmax, a device
        // backend finds it and sends back ids, not rows of logits.
        let greedy = plan
            .items
            .iter()
            .all(|it| self.outputs.get(&it.seq).is_none_or(|o| o.takes_argmax()));
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.model.step(
                &self.backend,
                &mut self.scratch,
                &mut self.cache,
                &self.ids,
                &self.batch,
                &self.logit_rows,
                greedy,
            )
        }));
        // A device backend reports a failed launch here, after the step.
        let ran = ran.map_err(panic_message).and_then(|logits| {
            self.backend
                .check()
                .map(|_| logits)
                .map_err(|e| e.to_string())
        });
        let logits = match ran {
            Ok(l) => l,
            Err(msg) => {
                tracing::error!(error = %msg, "a forward pass failed; its requests fail, the engine goes on");
                for it in &plan.items {
                    if let Some(out) = self.outputs.get(&it.seq) {
                        out.fail(EngineError::Internal(msg.clone()));
                    }
                    self.end(it.seq);
                }
                self.publish_stats();
                return plan;
            }
        };
        self.hand_out(&plan, &logits);
        self.steps += 1;
        let took = started.elapsed();
        self.busy += took;
        self.metrics.step(plan.items.len(), took);
        self.publish_stats();
        plan
    }

    pub(super) fn publish_stats(&self) {
        let s = &self.scheduler;
        let cache = s.cache_stats();
        self.stats.publish(&EngineSnapshot {
            running: s.running() as u64,
            waiting: s.waiting() as u64,
            kv_blocks_used: s.pool().in_use() as u64,
            kv_blocks_total: s.pool().total() as u64,
            prefix_queried_tokens: cache.queried_tokens,
            prefix_hit_tokens: cache.hit_tokens,
            preemptions: s.preemptions(),
            steps: self.steps,
            busy_ns: self.busy.as_nanos() as u64,
            alive_ns: self.born.elapsed().as_nanos() as u64,
        });
    }

    /// Gives each sequence of the step its rows of logits, in the order
    /// the rows were laid out.
    fn hand_out(&mut self, plan: &Plan, output: &StepOutput) {
        let vocab = self.model.config.vocab_size;
        let (logits, argmaxes): (&[f32], &[u32]) = match output {
            StepOutput::Logits(l) => (l, &[]),
            StepOutput::Greedy(ids) => (&[], ids),
        };
        let mut rows = logits.chunks_exact(vocab);
        let mut argmaxes = argmaxes.iter();
        for it in &plan.items {
            self.scheduler.advance(it.seq, it.len);
            let (Some(seq), Some(out)) =
                (self.scheduler.get(it.seq), self.outputs.get_mut(&it.seq))
            else {
                continue;
            };
            let caught_up = seq.pending() == 0;
            let mut last = None;
            if out.wants_prompt_logits() {
                for pos in it.start..it.start + it.len {
                    let row = rows.next().unwrap_or(&[]);
                    out.prompt_row(pos, row);
                    last = Some(row);
                }
            } else if caught_up {
                last = rows.next();
            }
            if !caught_up {
                continue;
            }
            let choice = match (last.filter(|r| r.len() == vocab), argmaxes.next()) {
                (Some(row), _) => Choice::Row(row),
                (None, Some(&id)) => Choice::Argmax(id),
                (None, None) => continue,
            };
            let metrics = &self.metrics;
            let next =
                std::panic::catch_unwind(AssertUnwindSafe(|| out.next_token(choice, metrics)))
                    .unwrap_or_else(|panic| {
                        let msg = panic_message(panic);
                        tracing::error!(error = %msg, "sampling panicked; the request fails");
                        out.fail(EngineError::Internal(msg));
                        Next::Done
                    });
            match next {
                Next::Continue(token) => self.scheduler.append(it.seq, token),
                Next::Done => self.end(it.seq),
            }
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Starts the engine thread for a loaded model and returns its handle.
pub fn spawn<B: Backend>(
    backend: B,
    model: Transformer<B>,
    tokenizer: Arc<Tokenizer>,
    config: &EngineConfig,
    budget: &Arc<KvBudget>,
) -> Result<EngineHandle, EngineError> {
    let mut engine = Engine::new(backend, model, tokenizer, config, budget)?;
    engine.publish_stats();
    let info = engine.info(config);
    let stats = engine.stats.clone();
    let (tx, rx) = mpsc::channel::<Job>();
    let alive = Arc::new(AtomicBool::new(true));
    let flag = alive.clone();
    let background = Arc::new(AtomicBool::new(false));
    let standing = super::priority::Standing::new(background.clone());
    std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            run(&mut engine, &rx, standing);
            // Free the weights and the KV cache before saying so: an
            // unload waits on this flag to know the memory is back.
            drop(engine);
            flag.store(false, Ordering::Release);
        })
        .map_err(|e| EngineError::Config(format!("starting the engine thread: {e}")))?;
    Ok(EngineHandle::new(
        tx,
        alive,
        background,
        info,
        config.max_waiting,
        stats,
    ))
}

/// Steps while there is work; sleeps on the queue when there is none.
/// Ends when every handle is gone and nothing is left to run.
fn run<B: Backend>(
    engine: &mut Engine<B>,
    jobs: &mpsc::Receiver<Job>,
    mut standing: super::priority::Standing,
) {
    loop {
        if engine.is_idle() {
            standing.idle();
            match jobs.recv() {
                Ok(job) => engine.add(job),
                Err(_) => return,
            }
        }
        while let Ok(job) = jobs.try_recv() {
            engine.add(job);
        }

        standing.before_step();
        let plan = engine.step();
        if plan.items.is_empty() && !engine.is_idle() {
            // Nothing could be scheduled although requests wait: only
            // possible if a request can never fit, which submit refuses.
            // Fail the stuck ones rather than spin.
            engine.fail_unschedulable();
        }
    }
}

impl<B: Backend> Engine<B> {
    fn fail_unschedulable(&mut self) {
        let stuck: Vec<SeqId> = self.outputs.keys().copied().collect();
        for id in stuck {
            if let Some(out) = self.outputs.get(&id) {
                out.fail(EngineError::Internal(
                    "the request does not fit in the KV cache".into(),
                ));
            }
            self.end(id);
        }
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
