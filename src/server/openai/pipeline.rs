//! What every generation endpoint does with a resolved request: admit it
//! against the caller's key, submit every choice at once (they share the
//! engine's steps), then collect the answers into one document or stream
//! them as server-sent events. The endpoint's renderer (`render.rs`) is
//! the only thing that differs between chat and completions.

use super::render::{self, ChoiceStream, Finished, Renderer};
use super::resolve::Resolved;
use super::{request_id, usage_json, Reply};
use crate::engine::{Event, FinishReason, RequestStream, Usage};
use crate::policy::Admission;
use crate::registry::ServedModel;
use crate::server::auth::admit;
use crate::server::error::ApiError;
use crate::server::sse::{self, SseBody};
use crate::store::now_unix;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::mpsc::Sender;

/// Runs `r` on `model` and answers.
pub async fn run(model: Arc<ServedModel>, r: Resolved) -> Result<Reply, ApiError> {
    let admission = admit(r.reserve)?;
    let streams = r
        .choices
        .iter()
        .map(|c| model.engine.submit(c.request(&r)).map_err(ApiError::from))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(a) = &admission {
        a.submitted();
    }
    let renderer = render::for_request(&model, &r);
    let header = Header::new(&model, renderer.as_ref(), r.stream);
    if r.stream {
        let (tx, body) = SseBody::channel();
        tokio::spawn(stream(r, streams, renderer, header, admission, tx));
        return Ok(Reply::Stream(body));
    }
    collect(r, streams, renderer, header, admission).await
}

async fn run_to_end(mut stream: RequestStream) -> Result<Finished, ApiError> {
    let mut out = Finished {
        text: String::new(),
        tokens: Vec::new(),
        prompt_logprobs: Vec::new(),
        finish_reason: FinishReason::Length,
        usage: Usage::default(),
    };
    while let Some(event) = stream.next().await {
        match event? {
            Event::PromptLogprobs(lp) => out.prompt_logprobs = lp,
            Event::Token { id, text, logprob } => {
                out.text.push_str(&text);
                out.tokens.push((id, logprob));
            }
            Event::Finished {
                reason,
                text,
                usage,
                ..
            } => {
                out.text.push_str(&text);
                out.finish_reason = reason;
                out.usage = usage;
                return Ok(out);
            }
        }
    }
    Err(ApiError::Internal(
        "the engine ended the request without finishing it".into(),
    ))
}

/// Prompt and completion tokens of the whole request: each prompt once.
#[derive(Default)]
struct Tally {
    prompt: usize,
    completion: usize,
}

impl Tally {
    fn add(&mut self, usage: Usage, counts_prompt: bool) -> (u64, u64) {
        let prompt = if counts_prompt {
            usage.prompt_tokens
        } else {
            0
        };
        self.prompt += prompt;
        self.completion += usage.completion_tokens;
        (prompt as u64, usage.completion_tokens as u64)
    }
}

async fn collect(
    r: Resolved,
    streams: Vec<RequestStream>,
    renderer: Box<dyn Renderer>,
    header: Header,
    admission: Option<Admission>,
) -> Result<Reply, ApiError> {
    let mut tally = Tally::default();
    let mut choices = Vec::with_capacity(r.choices.len());
    for (choice, stream) in r.choices.iter().zip(streams) {
        let done = run_to_end(stream).await?;
        tally.add(done.usage, choice.counts_prompt);
        choices.push(renderer.whole(choice, &r.prompts[choice.prompt], done));
    }
    if let Some(a) = &admission {
        a.record(tally.prompt as u64, tally.completion as u64);
        a.finish();
    }
    let mut answer = header.with(Value::Array(choices));
    answer["usage"] = usage_json(tally.prompt, tally.completion);
    Ok(Reply::Json(answer))
}

/// Streams the choices one after another (they compute side by side);
/// each event the renderer makes of the engine's events goes out as a
/// chunk. When the client leaves, the next send fails and the streams
/// still held are dropped, which cancels their requests.
async fn stream(
    r: Resolved,
    streams: Vec<RequestStream>,
    renderer: Box<dyn Renderer>,
    header: Header,
    admission: Option<Admission>,
    tx: Sender<Bytes>,
) {
    let send = |v: Value| {
        let chunk = sse::event(&header.with(json!([v])));
        let tx = &tx;
        async move { tx.send(chunk).await.is_ok() }
    };
    let mut tally = Tally::default();
    for (choice, mut events) in r.choices.iter().zip(streams) {
        let mut out: Box<dyn ChoiceStream> = renderer.stream(choice, &r.prompts[choice.prompt]);
        for v in out.start() {
            if !send(v).await {
                return;
            }
        }
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(sse::event(&ApiError::from(e).envelope())).await;
                    return;
                }
            };
            let finished = match &event {
                Event::Token { .. } => {
                    if let Some(a) = &admission {
                        a.token();
                    }
                    false
                }
                Event::Finished { usage, .. } => {
                    let (prompt, completion) = tally.add(*usage, choice.counts_prompt);
                    if let Some(a) = &admission {
                        a.record(prompt, completion);
                    }
                    true
                }
                Event::PromptLogprobs(_) => false,
            };
            for v in out.event(event) {
                if !send(v).await {
                    return;
                }
            }
            if finished {
                break;
            }
        }
    }
    if let Some(a) = &admission {
        a.finish();
    }
    if r.include_usage {
        let mut last = header.with(json!([]));
        last["usage"] = usage_json(tally.prompt, tally.completion);
        if tx.send(sse::event(&last)).await.is_err() {
            return;
        }
    }
    let _ = tx.send(sse::done()).await;
}

/// The fields every answer (and every chunk of a stream) repeats.
struct Header {
    id: String,
    object: &'static str,
    created: u64,
    model: String,
    fingerprint: String,
}

impl Header {
    fn new(model: &ServedModel, renderer: &dyn Renderer, stream: bool) -> Self {
        let (prefix, whole, chunk) = renderer.names();
        Header {
            id: request_id(prefix),
            object: if stream { chunk } else { whole },
            created: now_unix(),
            model: model.name().to_owned(),
            fingerprint: model.fingerprint.clone(),
        }
    }

    fn with(&self, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        })
    }
}
