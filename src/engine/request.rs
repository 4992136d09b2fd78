//! What goes into an engine and what comes out of it.

use super::grammar::Compiled;
pub use super::penalties::Penalties;
use std::sync::Arc;

/// How to pick tokens and when to stop.
#[derive(Clone, Debug)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// 0 means no limit.
    pub top_k: u32,
    pub min_p: f32,
    pub seed: Option<u64>,
    pub max_tokens: usize,
    /// Logit bias and repetition / presence / frequency penalties.
    pub penalties: Penalties,
    /// Strings that end generation; the text returned stops before them.
    pub stop: Vec<String>,
    /// Keep generating through end-of-generation tokens (benchmarks).
    pub ignore_eos: bool,
    /// Report this many alternatives (and the chosen token's logprob) for
    /// each generated token.
    pub logprobs: Option<usize>,
    /// Report logprobs of the prompt tokens too (`echo` with `logprobs`).
    pub prompt_logprobs: Option<usize>,
    /// Only output this grammar matches may be generated; generation
    /// stops as soon as the output is a whole match nothing may extend.
    pub grammar: Option<Arc<Compiled>>,
}

impl SamplingParams {
    /// Whether the next token is always the most likely one (temperature
    /// 0, or top_k 1): the one definition of greedy, which the sampler
    /// and the device's argmax path both follow.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            seed: None,
            max_tokens: 16,
            penalties: Penalties::none(),
            stop: Vec::new(),
            ignore_eos: false,
            logprobs: None,
            prompt_logprobs: None,
            grammar: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct GenerateRequest {
    pub prompt: Vec<u32>,
    pub params: SamplingParams,
    /// Lower runs first (as in vLLM); ties go by arrival.
    pub priority: i32,
}

/// A token's log-probability and the best alternatives at its position.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    pub token: u32,
    pub logprob: f32,
    /// (token, logprob), best first.
    pub top: Vec<(u32, f32)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// max_tokens or the context window.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

#[derive(Clone, Debug)]
pub enum Event {
    /// Logprobs of prompt tokens 1.. (the first has no context), sent once
    /// before any token when `prompt_logprobs` was asked for.
    PromptLogprobs(Vec<TokenLogprob>),
    /// One generated token and the text it completes (possibly empty while
    /// a multi-byte character or a possible stop string is held back).
    Token {
        id: u32,
        text: String,
        logprob: Option<TokenLogprob>,
    },
    Finished {
        reason: FinishReason,
        /// Text held back until the end (a partial stop-string match that
        /// did not complete, an unfinished character).
        text: String,
        usage: Usage,
        /// The stop string that ended generation, if one did.
        matched_stop: Option<String>,
    },
}
