//! The engine thread: takes one request at a time, prefills its prompt in
//! chunks, then decodes token by token until a stop condition, streaming
//! events as it goes. It never awaits; it notices a dropped stream at the
//! next token and moves on.

use super::error::EngineError;
use super::grammar::{Constraint, TokenTrie};
use super::handle::{EngineHandle, EngineInfo, Job};
use super::request::{Event, FinishReason, GenerateRequest, TokenLogprob, Usage};
use super::sampler::{logprob_of, Sampler};
use super::stop::{StopMatcher, StopOutcome};
use crate::backend::Backend;
use crate::model::tokenizer::{IncrementalDecoder, Tokenizer};
use crate::model::{Scratch, Transformer};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::mpsc::UnboundedSender;

/// Prompt tokens per forward pass during prefill: large enough for the
/// matmuls to reuse each dequantized weight panel, small enough to bound
/// activation memory.
const PREFILL_CHUNK: usize = 256;

struct Engine<B: Backend> {
    backend: B,
    model: Transformer<B>,
    tokenizer: Arc<Tokenizer>,
    scratch: Scratch<B>,
    /// The vocabulary as a trie, built for the first constrained request.
    trie: Option<Arc<TokenTrie>>,
}

/// Starts the engine thread for a loaded model and returns its handle.
pub fn spawn<B: Backend>(
    backend: B,
    model: Transformer<B>,
    tokenizer: Arc<Tokenizer>,
    max_waiting: usize,
) -> EngineHandle {
    let info = EngineInfo {
        context_length: model.config.context_length,
        vocab_size: model.config.vocab_size,
        backend: backend.describe(),
    };
    let (tx, rx) = mpsc::channel::<Job>();
    let alive = Arc::new(AtomicBool::new(true));
    let flag = alive.clone();
    let scratch = model.scratch(&backend);
    let mut engine = Engine {
        backend,
        model,
        tokenizer,
        scratch,
        trie: None,
    };
    let spawned = std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                let events = job.events.clone();
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| engine.run(job)));
                if let Err(panic) = outcome {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into());
                    tracing::error!(error = %msg, "engine step panicked; the request fails, the engine goes on");
                    let _ = events.send(Err(EngineError::Internal(msg)));
                }
            }
            flag.store(false, Ordering::Release);
        });
    if spawned.is_err() {
        alive.store(false, Ordering::Release);
    }
    EngineHandle::new(tx, alive, info, max_waiting)
}

impl<B: Backend> Engine<B> {
    fn run(&mut self, job: Job) {
        let Job {
            request,
            events,
            _admission,
        } = job;
        let started = std::time::Instant::now();
        match self.generate(&request, &events) {
            Ok(usage) => tracing::debug!(
                prompt = usage.prompt_tokens,
                completion = usage.completion_tokens,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "request finished"
            ),
            Err(Cancelled) => tracing::debug!("request cancelled by its client"),
        }
    }

    fn generate(
        &mut self,
        req: &GenerateRequest,
        events: &UnboundedSender<Result<Event, EngineError>>,
    ) -> Result<Usage, Cancelled> {
        let p = &req.params;
        let cfg = &self.model.config;
        let mut cache = self
            .backend
            .kv_cache(cfg.n_layers, cfg.context_length, cfg.heads.kv_dim())
            .map_err(|e| {
                let _ = events.send(Err(EngineError::Internal(e.to_string())));
                Cancelled
            })?;
        let prompt = &req.prompt;
        let mut prompt_logprobs = Vec::new();
        let mut last_logits = Vec::new();
        for (c, chunk) in prompt.chunks(PREFILL_CHUNK).enumerate() {
            let start = c * PREFILL_CHUNK;
            let positions: Vec<u32> = (start..start + chunk.len()).map(|p| p as u32).collect();
            let rows: Vec<usize> = if p.prompt_logprobs.is_some() {
                (0..chunk.len()).collect()
            } else if start + chunk.len() == prompt.len() {
                vec![chunk.len() - 1]
            } else {
                Vec::new()
            };
            let logits = self.model.forward(
                &self.backend,
                &mut self.scratch,
                &mut cache,
                chunk,
                &positions,
                &rows,
            );
            if events.is_closed() {
                return Err(Cancelled);
            }
            let vocab = cfg.vocab_size;
            if let Some(top) = p.prompt_logprobs {
                // Row i predicts prompt token start+i+1.
                for (i, row) in logits.chunks_exact(vocab).enumerate() {
                    if let Some(&next) = prompt.get(start + i + 1) {
                        prompt_logprobs.push(logprob_of(row, next, top));
                    }
                }
            }
            if let Some(last) = logits.chunks_exact(vocab).last() {
                last_logits = last.to_vec();
            }
        }
        if p.prompt_logprobs.is_some() {
            send(events, Event::PromptLogprobs(prompt_logprobs))?;
        }

        let mut constraint = p.grammar.clone().map(|g| {
            let tokenizer = self.tokenizer.clone();
            let trie = self
                .trie
                .get_or_insert_with(|| Arc::new(TokenTrie::new(&tokenizer)))
                .clone();
            Constraint::new(g, trie, tokenizer)
        });
        let mut sampler = Sampler::new(p, prompt);
        let tokenizer = self.tokenizer.clone();
        let mut decoder = IncrementalDecoder::new(&tokenizer, true);
        let mut stops = StopMatcher::new(&p.stop);
        let mut pos = prompt.len();
        let mut generated = 0usize;
        let usage = |n| Usage {
            prompt_tokens: prompt.len(),
            completion_tokens: n,
        };
        loop {
            if generated >= p.max_tokens || pos >= cfg.context_length {
                let text = remaining_text(&mut decoder, &mut stops);
                send_finish(events, FinishReason::Length, text, usage(generated), None)?;
                return Ok(usage(generated));
            }
            let allowed = constraint.as_mut().map(|c| c.allowed());
            if allowed.as_ref().is_some_and(|a| a.is_empty()) {
                let msg =
                    "constrained decoding reached a state no token of this vocabulary continues";
                let _ = events.send(Err(EngineError::Internal(msg.into())));
                return Err(Cancelled);
            }
            let id = sampler.sample_within(&last_logits, allowed.as_deref());
            if let Some(c) = constraint.as_mut() {
                c.accept(id);
            }
            let logprob: Option<TokenLogprob> =
                p.logprobs.map(|top| logprob_of(&last_logits, id, top));
            generated += 1;
            // A grammar ends generation at its end-of-generation token,
            // ignore_eos or not: nothing else may follow.
            if (!p.ignore_eos || constraint.is_some()) && self.tokenizer.is_eog(id) {
                let text = remaining_text(&mut decoder, &mut stops);
                send(
                    events,
                    Event::Token {
                        id,
                        text: String::new(),
                        logprob,
                    },
                )?;
                send_finish(events, FinishReason::Stop, text, usage(generated), None)?;
                return Ok(usage(generated));
            }
            let piece = decoder.push(id);
            match stops.push(&piece) {
                StopOutcome::Continue(text) => {
                    send(events, Event::Token { id, text, logprob })?;
                    if constraint.as_ref().is_some_and(|c| c.is_complete()) {
                        let text = remaining_text(&mut decoder, &mut stops);
                        send_finish(events, FinishReason::Stop, text, usage(generated), None)?;
                        return Ok(usage(generated));
                    }
                }
                StopOutcome::Stopped { text, stop } => {
                    send(events, Event::Token { id, text, logprob })?;
                    send_finish(
                        events,
                        FinishReason::Stop,
                        String::new(),
                        usage(generated),
                        Some(stop),
                    )?;
                    return Ok(usage(generated));
                }
            }
            if generated >= p.max_tokens {
                continue;
            }
            let logits = self.model.forward(
                &self.backend,
                &mut self.scratch,
                &mut cache,
                &[id],
                &[pos as u32],
                &[0],
            );
            last_logits = logits;
            pos += 1;
        }
    }
}

/// What is left at the end: the decoder's held-back bytes, still checked
/// against the stop strings, then whatever the matcher held back.
fn remaining_text(decoder: &mut IncrementalDecoder, stops: &mut StopMatcher) -> String {
    match stops.push(&decoder.flush()) {
        StopOutcome::Continue(text) => text + &stops.finish(),
        StopOutcome::Stopped { text, .. } => text,
    }
}

/// The client went away; nothing more to send.
struct Cancelled;

fn send(events: &UnboundedSender<Result<Event, EngineError>>, e: Event) -> Result<(), Cancelled> {
    events.send(Ok(e)).map_err(|_| Cancelled)
}

fn send_finish(
    events: &UnboundedSender<Result<Event, EngineError>>,
    reason: FinishReason,
    text: String,
    usage: Usage,
    matched_stop: Option<String>,
) -> Result<(), Cancelled> {
    send(
        events,
        Event::Finished {
            reason,
            text,
            usage,
            matched_stop,
        },
    )
}
