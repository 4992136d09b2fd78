//! POST /v1/chat/completions with `"stream": true`: a first chunk with the
//! assistant role, one `chat.completion.chunk` per token with its content
//! delta (and logprobs entry), a last chunk with the finish reason,
//! optionally a usage chunk, then `[DONE]`.

use super::chat::finish_reason;
use super::chunks::{report, submit, ChunkHeader};
use super::logprobs::TokenNames;
use super::request_id;
use super::tool_output::{Answer, Splitter};
use super::tools::ToolFormat;
use crate::engine::{Event, GenerateRequest, SamplingParams};
use crate::policy::Admission;
use crate::server::error::ApiError;
use crate::server::sse::{self, SseBody};
use crate::server::state::ServedModel;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc::Sender;

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

pub struct Options {
    pub logprobs: bool,
    pub token_ids_as_text: bool,
    pub include_usage: bool,
    /// Tool calls may come, written in this format.
    pub tools: Option<ToolFormat>,
    pub priority: i32,
    /// The request's hold on its key's limits, settled as it ends.
    pub admission: Option<Admission>,
}

/// One choice per entry of `params`, all on the same prompt.
pub fn start(
    model: Arc<ServedModel>,
    prompt: Vec<u32>,
    params: Vec<SamplingParams>,
    opts: Options,
) -> SseBody {
    let (tx, body) = SseBody::channel();
    tokio::spawn(run(model, prompt, params, opts, tx));
    body
}

async fn run(
    model: Arc<ServedModel>,
    prompt: Vec<u32>,
    params: Vec<SamplingParams>,
    opts: Options,
    tx: Sender<bytes::Bytes>,
) {
    let header = ChunkHeader::new(&model, request_id("chatcmpl"), "chat.completion.chunk");
    let names = TokenNames {
        tokenizer: &model.tokenizer,
        as_ids: opts.token_ids_as_text,
    };
    let chunk = |index: usize, delta: Value, logprobs: Option<Value>, finish: Option<&str>| {
        header.chunk(
            json!({"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}),
        )
    };
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    for (index, p) in params.into_iter().enumerate() {
        let request = GenerateRequest {
            prompt: prompt.clone(),
            params: p,
            priority: opts.priority,
        };
        let Some(mut stream) = submit(&model, request, &tx).await else {
            return;
        };
        if let Some(a) = &opts.admission {
            a.submitted();
        }
        let first = chunk(
            index,
            json!({"role": "assistant", "content": ""}),
            None,
            None,
        );
        if tx.send(sse::event(&first)).await.is_err() {
            return;
        }
        let mut splitter = opts.tools.map(Splitter::new);
        while let Some(event) = stream.next().await {
            let msg = match event {
                Err(e) => return report(&tx, ApiError::from(e)).await,
                Ok(Event::PromptLogprobs(_)) => continue,
                Ok(Event::Token { text, logprob, .. }) => {
                    if let Some(a) = &opts.admission {
                        a.token();
                    }
                    let text = match splitter.as_mut() {
                        Some(s) => s.push(&text),
                        None => text,
                    };
                    let lp = logprob
                        .filter(|_| opts.logprobs)
                        .map(|lp| json!({"content": [names.chat_entry(&lp)]}));
                    if text.is_empty() && lp.is_none() {
                        continue;
                    }
                    chunk(index, json!({"content": text}), lp, None)
                }
                Ok(Event::Finished {
                    reason,
                    text,
                    usage,
                    ..
                }) => {
                    if let Some(a) = &opts.admission {
                        // The prompt is shared: counted with the first choice.
                        let prompt = if index == 0 { usage.prompt_tokens } else { 0 };
                        a.record(prompt as u64, usage.completion_tokens as u64);
                    }
                    prompt_tokens = usage.prompt_tokens;
                    completion_tokens += usage.completion_tokens;
                    let answer = match splitter.take() {
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
                    for delta in final_deltas(answer) {
                        if tx
                            .send(sse::event(&chunk(index, delta, None, None)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    let last = chunk(index, json!({}), None, Some(finish));
                    if tx.send(sse::event(&last)).await.is_err() {
                        return;
                    }
                    break;
                }
            };
            if tx.send(sse::event(&msg)).await.is_err() {
                return;
            }
        }
    }
    if let Some(a) = &opts.admission {
        a.finish();
    }
    let usage = opts
        .include_usage
        .then_some((prompt_tokens, completion_tokens));
    header.finish(&tx, usage).await;
}
