//! POST /v1/chat/completions

use super::chat_stream::{self, Options};
use super::collect::{run_to_end, submit_all};
use super::logprobs::TokenNames;
use super::prompt::{self, ChatOptions, ChatPrompt};
use super::sampling::{check_logprobs, validate};
use super::tool_output::{self, Answer, ToolCall};
use super::types::ChatRequest;
use super::{now_unix, request_id, resolve_model, usage_json, warn_unknown, Reply};
use crate::engine::{FinishReason, GenerateRequest};
use crate::registry::ServedModel;
use crate::server::auth::admit;
use crate::server::error::ApiError;
use crate::server::state::AppState;
use serde_json::{json, Value};
use std::sync::Arc;

const MAX_MESSAGES: usize = 4096;
const MAX_TOOLS: usize = 128;

pub async fn handle(state: &AppState, req: ChatRequest) -> Result<Reply, ApiError> {
    warn_unknown("/v1/chat/completions", &req.unknown);
    let model = &resolve_model(state, req.model.as_deref(), req.sampling.user.as_deref())?;
    run(model, req).await
}

/// Answers `req` on `model` (a shadow's copy comes here directly).
pub async fn run(model: &Arc<ServedModel>, req: ChatRequest) -> Result<Reply, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::bad("messages must not be empty", "messages"));
    }
    if req.messages.len() > MAX_MESSAGES || req.tools.as_ref().is_some_and(|t| t.len() > MAX_TOOLS)
    {
        return Err(ApiError::bad(
            format!("at most {MAX_MESSAGES} messages and {MAX_TOOLS} tools per request"),
            if req.messages.len() > MAX_MESSAGES {
                "messages"
            } else {
                "tools"
            },
        ));
    }
    let ChatPrompt { text, tools } = prompt::render(
        model,
        req.messages,
        ChatOptions {
            tools: req.tools.as_deref(),
            tool_choice: req.tool_choice.as_ref(),
            parallel_tool_calls: req.parallel_tool_calls,
            kwargs: req.chat_template_kwargs.unwrap_or_default(),
            add_generation_prompt: req.add_generation_prompt.unwrap_or(true),
        },
    )?;
    let prompt = model.tokenizer.encode(&text, false, true);
    let top = match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (true, k) => Some(check_logprobs(k.unwrap_or(0), "top_logprobs")?),
        (false, Some(_)) => {
            return Err(ApiError::bad(
                "top_logprobs requires logprobs to be true",
                "top_logprobs",
            ))
        }
        (false, None) => None,
    };
    let mut v = validate(req.sampling, &model.defaults)?;
    // A required call outranks response_format: the reply is the call.
    if let Some(g) = tools.as_ref().map(|t| t.grammar()).transpose()?.flatten() {
        v.params.grammar = Some(g);
    }
    let tool_format = tools.as_ref().map(|t| t.format);
    let names = TokenNames {
        tokenizer: &model.tokenizer,
        as_ids: v.token_ids_as_text,
    };
    let params_for = |i: usize| {
        let mut params = v.params_for(i, prompt.len(), model);
        params.logprobs = top;
        params
    };
    let reserve = (prompt.len() + v.n * params_for(0).max_tokens) as u64;
    if v.stream {
        model.engine.check_room()?;
        let opts = Options {
            logprobs: top.is_some(),
            token_ids_as_text: v.token_ids_as_text,
            include_usage: v.include_usage,
            tools: tool_format,
            priority: v.priority,
            admission: admit(reserve)?,
        };
        let params = (0..v.n).map(params_for).collect();
        return Ok(Reply::Stream(chat_stream::start(
            model.clone(),
            prompt,
            params,
            opts,
        )));
    }
    let mut choices = Vec::new();
    let mut completion_tokens = 0;
    let mut prompt_tokens = 0;
    let requests = (0..v.n).map(|i| GenerateRequest {
        prompt: prompt.clone(),
        params: params_for(i),
        priority: v.priority,
    });
    let admission = admit(reserve)?;
    let streams = submit_all(&model.engine, requests)?;
    if let Some(a) = &admission {
        a.submitted();
    }
    for (i, stream) in streams.into_iter().enumerate() {
        let done = run_to_end(stream).await?;
        prompt_tokens = done.usage.prompt_tokens;
        completion_tokens += done.usage.completion_tokens;
        let logprobs = top.map(|_| {
            let content: Vec<Value> = done
                .tokens
                .iter()
                .filter_map(|(_, lp)| lp.as_ref().map(|lp| names.chat_entry(lp)))
                .collect();
            json!({ "content": content })
        });
        let answer = match tool_format {
            Some(f) => tool_output::parse(&done.text, f, &mut || request_id("call")),
            None => Answer {
                content: done.text,
                calls: Vec::new(),
            },
        };
        let finish = finish_reason(done.finish_reason, &answer);
        choices.push(json!({
            "index": i,
            "message": message(answer),
            "logprobs": logprobs,
            "finish_reason": finish,
        }));
    }
    if let Some(a) = &admission {
        a.record(prompt_tokens as u64, completion_tokens as u64);
        a.finish();
    }
    Ok(Reply::Json(json!({
        "id": request_id("chatcmpl"),
        "object": "chat.completion",
        "created": now_unix(),
        "model": model.name(),
        "system_fingerprint": model.fingerprint,
        "choices": choices,
        "usage": usage_json(prompt_tokens, completion_tokens),
    })))
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
pub(super) fn finish_reason(reason: FinishReason, answer: &Answer) -> &'static str {
    if reason == FinishReason::Stop && !answer.calls.is_empty() {
        "tool_calls"
    } else {
        reason.as_str()
    }
}
