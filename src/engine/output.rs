//! One request's side of generation: turns each step's logits into its
//! next token (sampling, grammar, logprobs) and its events (text pieces
//! held back at stop strings and split characters, the finish). Lives as
//! long as the request, across preemptions: a recomputed sequence carries
//! on with the same sampler, decoder and grammar state.

use super::error::EngineError;
use super::grammar::{Constraint, TokenTrie};
use super::handle::{Admission, Job};
use super::request::{Event, FinishReason, SamplingParams, TokenLogprob, Usage};
use super::sampler::{logprob_of, Sampler};
use super::stop::{StopMatcher, StopOutcome};
use crate::model::tokenizer::{IncrementalDecoder, Tokenizer};
use crate::telemetry::metrics::EngineMetrics;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

type Events = UnboundedSender<Result<Event, EngineError>>;

/// What the request does after a token.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Feed this token and go on.
    Continue(u32),
    /// Finished, failed, or its client left: free its blocks.
    Done,
}

pub(super) struct Output {
    events: Events,
    /// Holds the request's place in the queue until it is taken: just
    /// before the last event goes out, so that a client that submits its
    /// next request on reading it finds the place free.
    admission: Cell<Option<Admission>>,
    params: SamplingParams,
    prompt: Vec<u32>,
    sampler: Sampler,
    decoder: IncrementalDecoder<Arc<Tokenizer>>,
    stops: StopMatcher,
    constraint: Option<Constraint>,
    tokenizer: Arc<Tokenizer>,
    context_length: usize,
    generated: usize,
    /// Logprobs of prompt tokens 1.., while they are collected.
    prompt_logprobs: Vec<TokenLogprob>,
    prompt_logprobs_sent: bool,
    pub submitted: Instant,
    first_scheduled: Option<Instant>,
    last_token: Option<Instant>,
}

impl Output {
    pub fn new(
        job: Job,
        tokenizer: Arc<Tokenizer>,
        trie: impl FnOnce() -> Arc<TokenTrie>,
        context_length: usize,
    ) -> Self {
        let Job {
            request,
            events,
            _admission,
        } = job;
        let params = request.params;
        let constraint = params
            .grammar
            .clone()
            .map(|g| Constraint::new(g, trie(), tokenizer.clone()));
        Output {
            sampler: Sampler::new(&params, &request.prompt),
            decoder: IncrementalDecoder::new(tokenizer.clone(), true),
            stops: StopMatcher::new(&params.stop),
            constraint,
            tokenizer,
            context_length,
            events,
            admission: Cell::new(Some(_admission)),
            params,
            prompt: request.prompt,
            generated: 0,
            prompt_logprobs: Vec::new(),
            prompt_logprobs_sent: false,
            submitted: Instant::now(),
            first_scheduled: None,
            last_token: None,
        }
    }

    pub fn prompt(&self) -> &[u32] {
        &self.prompt
    }

    /// The client is gone: nothing it would read is worth computing.
    pub fn is_cancelled(&self) -> bool {
        self.events.is_closed()
    }

    /// Whether the logits of every prompt position are still wanted.
    pub fn wants_prompt_logits(&self) -> bool {
        self.params.prompt_logprobs.is_some() && !self.prompt_logprobs_sent
    }

    /// The logits at prompt position `pos`, which predict token `pos + 1`.
    /// Positions come in order; a recomputed one is skipped.
    pub fn prompt_row(&mut self, pos: usize, logits: &[f32]) {
        let Some(top) = self.params.prompt_logprobs else {
            return;
        };
        if pos == self.prompt_logprobs.len() {
            if let Some(&next) = self.prompt.get(pos + 1) {
                self.prompt_logprobs.push(logprob_of(logits, next, top));
            }
        }
    }

    /// The request's tokens are in a step for the first time: its wait in
    /// the queue is over (a preempted request's second wait is not counted).
    pub fn scheduled(&mut self, metrics: &EngineMetrics) {
        if self.first_scheduled.is_none() {
            let now = Instant::now();
            self.first_scheduled = Some(now);
            metrics.scheduled(now - self.submitted);
        }
    }

    pub fn fail(&self, error: EngineError) {
        drop(self.admission.take());
        let _ = self.events.send(Err(error));
    }

    /// The logits after the sequence's last token: picks the next token and
    /// streams what it completes.
    pub fn next_token(&mut self, choice: Choice, metrics: &EngineMetrics) -> Next {
        match self.advance(choice, metrics) {
            Ok(next) => next,
            Err(Gone) => Next::Done,
        }
    }

    /// Whether the next token is simply the argmax of the logits (greedy,
    /// no penalties, bias, grammar or logprobs): a device may choose it
    /// without sending the row back.
    pub fn takes_argmax(&self) -> bool {
        let p = &self.params;
        p.is_greedy()
            && p.penalties.is_none()
            && p.logprobs.is_none()
            && p.prompt_logprobs.is_none()
            && self.constraint.is_none()
    }

    fn advance(&mut self, choice: Choice, metrics: &EngineMetrics) -> Result<Next, Gone> {
        if self.params.prompt_logprobs.is_some() && !self.prompt_logprobs_sent {
            self.prompt_logprobs_sent = true;
            let all = std::mem::take(&mut self.prompt_logprobs);
            self.send(Event::PromptLogprobs(all))?;
        }
        let (id, logprob) = match choice {
            Choice::Argmax(id) => {
                self.sampler.record(id);
                (id, None)
            }
            Choice::Row(logits) => {
                let allowed = self.constraint.as_mut().map(|c| c.allowed());
                if allowed.as_ref().is_some_and(|a| a.is_empty()) {
                    let msg = "constrained decoding reached a state no token of this vocabulary continues";
                    self.fail(EngineError::Internal(msg.into()));
                    return Ok(Next::Done);
                }
                let id = self.sampler.sample_within(logits, allowed.as_deref());
                if let Some(c) = self.constraint.as_mut() {
                    c.accept(id);
                }
                (
                    id,
                    self.params.logprobs.map(|top| logprob_of(logits, id, top)),
                )
            }
        };
        self.generated += 1;
        let now = Instant::now();
        match self.last_token.replace(now) {
            None => metrics.first_token(now - self.submitted),
            Some(before) => metrics.token_gap(now - before),
        }
        // A grammar ends generation at its end-of-generation token,
        // ignore_eos or not: nothing else may follow.
        if (!self.params.ignore_eos || self.constraint.is_some()) && self.tokenizer.is_eog(id) {
            let text = self.remaining_text();
            let token = Event::Token {
                id,
                text: String::new(),
                logprob,
            };
            self.send(token)?;
            self.finish(FinishReason::Stop, text, None, metrics)?;
            return Ok(Next::Done);
        }
        let piece = self.decoder.push(id);
        match self.stops.push(&piece) {
            StopOutcome::Continue(text) => {
                self.send(Event::Token { id, text, logprob })?;
                if self.constraint.as_ref().is_some_and(|c| c.is_complete()) {
                    let text = self.remaining_text();
                    self.finish(FinishReason::Stop, text, None, metrics)?;
                    return Ok(Next::Done);
                }
            }
            StopOutcome::Stopped { text, stop } => {
                self.send(Event::Token { id, text, logprob })?;
                self.finish(FinishReason::Stop, String::new(), Some(stop), metrics)?;
                return Ok(Next::Done);
            }
        }
        let length = self.prompt.len() + self.generated;
        if self.generated >= self.params.max_tokens || length >= self.context_length {
            let text = self.remaining_text();
            self.finish(FinishReason::Length, text, None, metrics)?;
            return Ok(Next::Done);
        }
        Ok(Next::Continue(id))
    }

    pub fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt.len(),
            completion_tokens: self.generated,
        }
    }

    /// What is left at the end: the decoder's held-back bytes, still
    /// checked against the stop strings, then whatever the matcher held.
    fn remaining_text(&mut self) -> String {
        match self.stops.push(&self.decoder.flush()) {
            StopOutcome::Continue(text) => text + &self.stops.finish(),
            StopOutcome::Stopped { text, .. } => text,
        }
    }

    fn finish(
        &self,
        reason: FinishReason,
        text: String,
        matched_stop: Option<String>,
        metrics: &EngineMetrics,
    ) -> Result<(), Gone> {
        let usage = self.usage();
        metrics.finished(
            self.submitted.elapsed(),
            usage.prompt_tokens,
            usage.completion_tokens,
        );
        drop(self.admission.take());
        self.send(Event::Finished {
            reason,
            text,
            usage,
            matched_stop,
        })
    }

    fn send(&self, e: Event) -> Result<(), Gone> {
        self.events.send(Ok(e)).map_err(|_| Gone)
    }
}

/// The client went away; nothing more to send.
struct Gone;

/// How a step gives a request its next token.
pub enum Choice<'a> {
    /// The row of logits, to sample from.
    Row(&'a [f32]),
    /// The argmax, found on the device (see `takes_argmax`).
    Argmax(u32),
}
