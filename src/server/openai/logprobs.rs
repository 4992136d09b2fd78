//! Rendering token logprobs in the two shapes OpenAI uses: the legacy
//! completions object (parallel arrays) and chat's list of entries.

use crate::engine::TokenLogprob;
use crate::model::tokenizer::Tokenizer;
use serde_json::{json, Map, Value};
use std::sync::Arc;

#[derive(Clone)]
pub struct TokenNames {
    pub tokenizer: Arc<Tokenizer>,
    /// vLLM's `return_tokens_as_token_ids`: `token_id:N` instead of text.
    pub as_ids: bool,
}

impl TokenNames {
    pub fn name(&self, id: u32) -> String {
        if self.as_ids {
            format!("token_id:{id}")
        } else {
            String::from_utf8_lossy(self.tokenizer.token_bytes(id)).into_owned()
        }
    }

    fn bytes(&self, id: u32) -> Vec<u8> {
        self.tokenizer.token_bytes(id).to_vec()
    }

    /// One chat `logprobs.content` entry.
    pub fn chat_entry(&self, lp: &TokenLogprob) -> Value {
        let top: Vec<Value> = lp
            .top
            .iter()
            .map(|&(id, l)| json!({"token": self.name(id), "logprob": l, "bytes": self.bytes(id)}))
            .collect();
        json!({
            "token": self.name(lp.token),
            "logprob": lp.logprob,
            "bytes": self.bytes(lp.token),
            "top_logprobs": top,
        })
    }
}

/// The completions `logprobs` object, built token by token.
#[derive(Default)]
pub struct CompletionLogprobs {
    tokens: Vec<Value>,
    token_logprobs: Vec<Value>,
    top_logprobs: Vec<Value>,
    text_offset: Vec<usize>,
    /// Characters of text so far, for `text_offset`.
    offset: usize,
}

impl CompletionLogprobs {
    /// For a streamed chunk: offsets continue from the text already sent.
    pub fn starting_at(offset: usize) -> Self {
        CompletionLogprobs {
            offset,
            ..Default::default()
        }
    }

    /// Characters of text covered so far.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// `lp` is None for the first prompt token, which has no context.
    pub fn push(&mut self, names: &TokenNames, id: u32, lp: Option<&TokenLogprob>) {
        let name = names.name(id);
        self.text_offset.push(self.offset);
        self.offset += String::from_utf8_lossy(names.tokenizer.token_bytes(id))
            .chars()
            .count();
        self.tokens.push(Value::String(name));
        match lp {
            Some(lp) => {
                self.token_logprobs.push(json!(lp.logprob));
                let mut top = Map::new();
                for &(alt, l) in &lp.top {
                    top.entry(names.name(alt)).or_insert(json!(l));
                }
                self.top_logprobs.push(Value::Object(top));
            }
            None => {
                self.token_logprobs.push(Value::Null);
                self.top_logprobs.push(Value::Null);
            }
        }
    }

    pub fn into_json(self) -> Value {
        json!({
            "tokens": self.tokens,
            "token_logprobs": self.token_logprobs,
            "top_logprobs": self.top_logprobs,
            "text_offset": self.text_offset,
        })
    }
}
