//! POST /v1/completions with `"stream": true`: one `text_completion` chunk
//! per token (text held back by the engine for a possible stop string
//! comes later), a last chunk with the finish reason, optionally a usage
//! chunk, then `[DONE]`. Choices run one after another.

use super::chunks::{report, submit, ChunkHeader};
use super::logprobs::{CompletionLogprobs, TokenNames};
use super::request_id;
use crate::engine::{Event, GenerateRequest, SamplingParams};
use crate::policy::Admission;
use crate::server::error::ApiError;
use crate::server::sse::{self, SseBody};
use crate::server::state::ServedModel;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc::Sender;

pub struct Choice {
    pub index: usize,
    pub prompt: Vec<u32>,
    pub params: SamplingParams,
    /// The first choice of its prompt: its prompt tokens count in usage.
    pub counts_prompt: bool,
}

pub struct Options {
    pub echo: bool,
    pub logprobs: Option<usize>,
    pub token_ids_as_text: bool,
    pub include_usage: bool,
    pub priority: i32,
    /// The request's hold on its key's limits, settled as it ends.
    pub admission: Option<Admission>,
}

pub fn start(model: Arc<ServedModel>, choices: Vec<Choice>, opts: Options) -> SseBody {
    let (tx, body) = SseBody::channel();
    tokio::spawn(run(model, choices, opts, tx));
    body
}

async fn run(
    model: Arc<ServedModel>,
    choices: Vec<Choice>,
    opts: Options,
    tx: Sender<bytes::Bytes>,
) {
    let header = ChunkHeader::new(&model, request_id("cmpl"), "text_completion");
    let names = TokenNames {
        tokenizer: &model.tokenizer,
        as_ids: opts.token_ids_as_text,
    };
    let chunk = |index: usize, text: String, logprobs: Option<Value>, finish: Option<&str>| {
        header.chunk(
            json!({"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}),
        )
    };
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    for c in choices {
        let echo_text = opts.echo.then(|| model.tokenizer.decode(&c.prompt, false));
        let request = GenerateRequest {
            prompt: c.prompt.clone(),
            params: c.params,
            priority: opts.priority,
        };
        let Some(mut stream) = submit(&model, request, &tx).await else {
            return;
        };
        if let Some(a) = &opts.admission {
            a.submitted();
        }
        // Characters sent so far for this choice, for `text_offset`.
        let mut offset = 0;
        if let (Some(text), None) = (&echo_text, opts.logprobs) {
            if tx
                .send(sse::event(&chunk(c.index, text.clone(), None, None)))
                .await
                .is_err()
            {
                return;
            }
        }
        while let Some(event) = stream.next().await {
            let msg = match event {
                Err(e) => return report(&tx, ApiError::from(e)).await,
                Ok(Event::PromptLogprobs(lps)) => {
                    let Some(text) = &echo_text else { continue };
                    let mut lp = CompletionLogprobs::starting_at(offset);
                    for (j, &tok) in c.prompt.iter().enumerate() {
                        lp.push(&names, tok, j.checked_sub(1).and_then(|k| lps.get(k)));
                    }
                    offset = lp.offset();
                    chunk(c.index, text.clone(), Some(lp.into_json()), None)
                }
                Ok(Event::Token {
                    id: tok,
                    text,
                    logprob,
                }) => {
                    if let Some(a) = &opts.admission {
                        a.token();
                    }
                    let lp = opts.logprobs.map(|_| {
                        let mut lp = CompletionLogprobs::starting_at(offset);
                        lp.push(&names, tok, logprob.as_ref());
                        offset = lp.offset();
                        lp.into_json()
                    });
                    if text.is_empty() && lp.is_none() {
                        continue;
                    }
                    chunk(c.index, text, lp, None)
                }
                Ok(Event::Finished {
                    reason,
                    text,
                    usage,
                    ..
                }) => {
                    if c.counts_prompt {
                        prompt_tokens += usage.prompt_tokens;
                    }
                    completion_tokens += usage.completion_tokens;
                    if let Some(a) = &opts.admission {
                        let prompt = if c.counts_prompt {
                            usage.prompt_tokens
                        } else {
                            0
                        };
                        a.record(prompt as u64, usage.completion_tokens as u64);
                    }
                    let last = chunk(c.index, text, None, Some(reason.as_str()));
                    if tx.send(sse::event(&last)).await.is_err() {
                        return;
                    }
                    break;
                }
            };
            if tx.send(sse::event(&msg)).await.is_err() {
                // The client left; dropping `stream` cancels the request.
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
