//! How an endpoint writes its answer: the one difference between chat and
//! completions. A renderer makes a choice's object from a finished choice
//! (`whole`), or the choice objects of its chunks from the engine's events
//! as they come (`stream`); the pipeline does the rest.

use super::resolve::{Choice, Render, Resolved};
use super::{chat_render, completion_render};
use crate::engine::{Event, FinishReason, TokenLogprob, Usage};
use crate::registry::ServedModel;
use serde_json::Value;

/// A choice run to its end: what the whole answer shows of it.
pub struct Finished {
    pub text: String,
    /// Generated tokens with their logprobs (when asked for).
    pub tokens: Vec<(u32, Option<TokenLogprob>)>,
    pub prompt_logprobs: Vec<TokenLogprob>,
    pub finish_reason: FinishReason,
    pub usage: Usage,
}

pub trait Renderer: Send + Sync {
    /// The id prefix, the answer's `object`, a chunk's `object`.
    fn names(&self) -> (&'static str, &'static str, &'static str);

    /// One finished choice of `prompt`, as the whole answer shows it.
    fn whole(&self, choice: &Choice, prompt: &[u32], done: Finished) -> Value;

    /// The renderer of one choice's chunks.
    fn stream(&self, choice: &Choice, prompt: &[u32]) -> Box<dyn ChoiceStream>;
}

/// One choice of a stream: each call gives the choice objects to send,
/// in order (often one, sometimes none).
pub trait ChoiceStream: Send {
    /// Before the first event.
    fn start(&mut self) -> Vec<Value>;
    /// For one event of the engine; `Finished` is the last.
    fn event(&mut self, event: Event) -> Vec<Value>;
}

pub fn for_request(model: &ServedModel, r: &Resolved) -> Box<dyn Renderer> {
    match r.render {
        Render::Chat {
            logprobs,
            token_ids_as_text,
            tools,
        } => Box::new(chat_render::Chat::new(
            model,
            logprobs,
            token_ids_as_text,
            tools,
        )),
        Render::Completion {
            echo,
            logprobs,
            token_ids_as_text,
        } => Box::new(completion_render::Completion::new(
            model,
            echo,
            logprobs,
            token_ids_as_text,
        )),
    }
}
