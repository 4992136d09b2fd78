//! POST /v1/chat/completions, as written: an assistant `message` per
//! choice (content, and tool calls read out of the reply), logprobs as
//! chat's list of entries; streamed, a first chunk with the assistant
//! role, a content delta per token (held back while a tool call may be
//! starting), then what was held back, each call as a name delta and an
//! arguments delta, and a last chunk with the finish reason.

use super::logprobs::TokenNames;
use super::render::{ChoiceStream, Finished, Renderer};
use super::request_id;
use super::resolve::Choice;
use super::tool_output::{self, Answer, Splitter, ToolCall};
use super::tools::ToolFormat;
use crate::engine::{Event, FinishReason};
use crate::registry::ServedModel;
use serde_json::{json, Value};

pub struct Chat {
    names: TokenNames,
    logprobs: bool,
    tools: Option<ToolFormat>,
}

impl Chat {
    pub fn new(
        model: &ServedModel,
        logprobs: bool,
        token_ids_as_text: bool,
        tools: Option<ToolFormat>,
    ) -> Self {
        Chat {
            names: TokenNames {
                tokenizer: model.tokenizer.clone(),
                as_ids: token_ids_as_text,
            },
            logprobs,
            tools,
        }
    }
}

impl Renderer for Chat {
    fn names(&self) -> (&'static str, &'static str, &'static str) {
        ("chatcmpl", "chat.completion", "chat.completion.chunk")
    }

    fn whole(&self, choice: &Choice, _prompt: &[u32], done: Finished) -> Value {
        let logprobs = self.logprobs.then(|| {
            let content: Vec<Value> = done
                .tokens
                .iter()
                .filter_map(|(_, lp)| lp.as_ref().map(|lp| self.names.chat_entry(lp)))
                .collect();
            json!({ "content": content })
        });
        let answer = match self.tools {
            Some(f) => tool_output::parse(&done.text, f, &mut || request_id("call")),
            None => Answer {
                content: done.text,
                calls: Vec::new(),
            },
        };
        let finish = finish_reason(done.finish_reason, &answer);
        json!({
            "index": choice.index,
            "message": message(answer),
            "logprobs": logprobs,
            "finish_reason": finish,
        })
    }

    fn stream(&self, choice: &Choice, _prompt: &[u32]) -> Box<dyn ChoiceStream> {
        Box::new(ChatStream {
            index: choice.index,
            names: self.names.clone(),
            logprobs: self.logprobs,
            splitter: self.tools.map(Splitter::new),
        })
    }
}

struct ChatStream {
    index: usize,
    names: TokenNames,
    logprobs: bool,
    splitter: Option<Splitter>,
}

impl ChatStream {
    fn choice(&self, delta: Value, logprobs: Option<Value>, finish: Option<&str>) -> Value {
        json!({"index": self.index, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
    }
}

impl ChoiceStream for ChatStream {
    fn start(&mut self) -> Vec<Value> {
        vec![self.choice(json!({"role": "assistant", "content": ""}), None, None)]
    }

    fn event(&mut self, event: Event) -> Vec<Value> {
        match event {
            Event::PromptLogprobs(_) => Vec::new(),
            Event::Token { text, logprob, .. } => {
                let text = match self.splitter.as_mut() {
                    Some(s) => s.push(&text),
                    None => text,
                };
                let lp = logprob
                    .filter(|_| self.logprobs)
                    .map(|lp| json!({"content": [self.names.chat_entry(&lp)]}));
                if text.is_empty() && lp.is_none() {
                    return Vec::new();
                }
                vec![self.choice(json!({"content": text}), lp, None)]
            }
            Event::Finished { reason, text, .. } => {
                let answer = match self.splitter.take() {
                    Some(mut s) => {
                        let held = s.push(&text);
                        let mut a = s.finish(&mut || request_id("call"));
                        a.content.insert_str(0, &held);
                        a
                    }
                    None => Answer {
                        content: text,
                        calls: Vec::new(),
                    },
                };
                let finish = finish_reason(reason, &answer);
                let mut out: Vec<Value> = final_deltas(answer)
                    .into_iter()
                    .map(|delta| self.choice(delta, None, None))
                    .collect();
                out.push(self.choice(json!({}), None, Some(finish)));
                out
            }
        }
    }
}

/// What is left to send at the end: held-back content, then each call as
/// two deltas, its name and then its arguments, as OpenAI streams them.
fn final_deltas(answer: Answer) -> Vec<Value> {
    let mut out = Vec::new();
    if !answer.content.is_empty() {
        out.push(json!({"content": answer.content}));
    }
    for (i, c) in answer.calls.iter().enumerate() {
        out.push(json!({"tool_calls": [{
            "index": i, "id": c.id, "type": "function",
            "function": {"name": c.name, "arguments": ""},
        }]}));
        out.push(json!({"tool_calls": [{"index": i, "function": {"arguments": c.arguments}}]}));
    }
    out
}

/// The assistant message: content (null when the reply is only calls),
/// and tool calls when there are any.
fn message(answer: Answer) -> Value {
    let mut m = json!({"role": "assistant", "content": answer.content});
    if !answer.calls.is_empty() {
        if answer.content.is_empty() {
            m["content"] = Value::Null;
        }
        m["tool_calls"] = answer.calls.iter().map(call_json).collect();
    }
    m
}

fn call_json(c: &ToolCall) -> Value {
    json!({
        "id": c.id,
        "type": "function",
        "function": {"name": c.name, "arguments": c.arguments},
    })
}

/// `tool_calls` when the reply ended by itself with calls in it.
fn finish_reason(reason: FinishReason, answer: &Answer) -> &'static str {
    if reason == FinishReason::Stop && !answer.calls.is_empty() {
        "tool_calls"
    } else {
        reason.as_str()
    }
}
