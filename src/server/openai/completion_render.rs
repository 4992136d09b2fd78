//! POST /v1/completions, as written: a `text` per choice (the prompt's
//! text first with `echo`), logprobs in the legacy parallel arrays with
//! character offsets; streamed, the echoed prompt first, a chunk per
//! token, then a last chunk with the text held back for a possible stop
//! string and the finish reason.

use super::logprobs::{CompletionLogprobs, TokenNames};
use super::render::{ChoiceStream, Finished, Renderer};
use super::resolve::Choice;
use crate::engine::Event;
use crate::registry::ServedModel;
use serde_json::{json, Value};

pub struct Completion {
    names: TokenNames,
    echo: bool,
    logprobs: Option<usize>,
}

impl Completion {
    pub fn new(
        model: &ServedModel,
        echo: bool,
        logprobs: Option<usize>,
        token_ids_as_text: bool,
    ) -> Self {
        Completion {
            names: TokenNames {
                tokenizer: model.tokenizer.clone(),
                as_ids: token_ids_as_text,
            },
            echo,
            logprobs,
        }
    }

    /// The prompt's text, for `echo`.
    fn echoed(&self, prompt: &[u32]) -> Option<String> {
        self.echo
            .then(|| self.names.tokenizer.decode(prompt, false))
    }
}

/// The logprobs of the prompt's tokens, the first without any (it has no
/// context).
fn push_prompt(
    lp: &mut CompletionLogprobs,
    names: &TokenNames,
    prompt: &[u32],
    logprobs: &[crate::engine::TokenLogprob],
) {
    for (j, &id) in prompt.iter().enumerate() {
        lp.push(names, id, j.checked_sub(1).and_then(|k| logprobs.get(k)));
    }
}

impl Renderer for Completion {
    fn names(&self) -> (&'static str, &'static str, &'static str) {
        ("cmpl", "text_completion", "text_completion")
    }

    fn whole(&self, choice: &Choice, prompt: &[u32], done: Finished) -> Value {
        let logprobs = self.logprobs.map(|_| {
            let mut lp = CompletionLogprobs::default();
            if self.echo {
                push_prompt(&mut lp, &self.names, prompt, &done.prompt_logprobs);
            }
            for (id, l) in &done.tokens {
                lp.push(&self.names, *id, l.as_ref());
            }
            lp.into_json()
        });
        let text = match self.echoed(prompt) {
            Some(echo) => echo + &done.text,
            None => done.text,
        };
        json!({
            "index": choice.index,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": done.finish_reason.as_str(),
        })
    }

    fn stream(&self, choice: &Choice, prompt: &[u32]) -> Box<dyn ChoiceStream> {
        Box::new(CompletionStream {
            index: choice.index,
            names: self.names.clone(),
            logprobs: self.logprobs,
            echo: self.echoed(prompt),
            prompt: prompt.to_vec(),
            offset: 0,
        })
    }
}

struct CompletionStream {
    index: usize,
    names: TokenNames,
    logprobs: Option<usize>,
    /// The prompt's text, when echoed.
    echo: Option<String>,
    prompt: Vec<u32>,
    /// Characters sent so far, for `text_offset`.
    offset: usize,
}

impl CompletionStream {
    fn choice(&self, text: String, logprobs: Option<Value>, finish: Option<&str>) -> Value {
        json!({"index": self.index, "text": text, "logprobs": logprobs, "finish_reason": finish})
    }
}

impl ChoiceStream for CompletionStream {
    /// The echoed prompt goes first; with logprobs it waits for the
    /// prompt's logprobs to go with it.
    fn start(&mut self) -> Vec<Value> {
        match (&self.echo, self.logprobs) {
            (Some(text), None) => vec![self.choice(text.clone(), None, None)],
            _ => Vec::new(),
        }
    }

    fn event(&mut self, event: Event) -> Vec<Value> {
        match event {
            Event::PromptLogprobs(lps) => {
                let Some(text) = self.echo.clone() else {
                    return Vec::new();
                };
                let mut lp = CompletionLogprobs::starting_at(self.offset);
                push_prompt(&mut lp, &self.names, &self.prompt, &lps);
                self.offset = lp.offset();
                vec![self.choice(text, Some(lp.into_json()), None)]
            }
            Event::Token { id, text, logprob } => {
                let lp = self.logprobs.map(|_| {
                    let mut lp = CompletionLogprobs::starting_at(self.offset);
                    lp.push(&self.names, id, logprob.as_ref());
                    self.offset = lp.offset();
                    lp.into_json()
                });
                if text.is_empty() && lp.is_none() {
                    return Vec::new();
                }
                vec![self.choice(text, lp, None)]
            }
            Event::Finished { reason, text, .. } => {
                vec![self.choice(text, None, Some(reason.as_str()))]
            }
        }
    }
}
