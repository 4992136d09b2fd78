//! POST /v1/chat/completions

use super::chat_stream::{self, Options};
use super::collect::run_to_end;
use super::logprobs::TokenNames;
use super::sampling::{check_logprobs, validate};
use super::types::ChatRequest;
use super::{now_unix, request_id, resolve_model, usage_json, warn_unknown, Reply};
use crate::engine::GenerateRequest;
use crate::server::error::ApiError;
use crate::server::state::AppState;
use serde_json::{json, Value};

pub async fn handle(state: &AppState, req: ChatRequest) -> Result<Reply, ApiError> {
    warn_unknown("/v1/chat/completions", &req.unknown);
    let model = resolve_model(state, req.model.as_deref())?;
    let template = model.template.as_ref().ok_or_else(|| {
        ApiError::bad(
            format!(
                "the model `{}` has no chat template; use /v1/completions",
                model.name()
            ),
            "messages",
        )
    })?;
    if req.messages.is_empty() {
        return Err(ApiError::bad("messages must not be empty", "messages"));
    }
    let messages = normalize_messages(req.messages)?;
    let kwargs = req.chat_template_kwargs.unwrap_or_default();
    let text = template.render(
        &messages,
        req.add_generation_prompt.unwrap_or(true),
        &kwargs,
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
    let v = validate(req.sampling, &model.defaults)?;
    let names = TokenNames {
        tokenizer: &model.tokenizer,
        as_ids: v.token_ids_as_text,
    };
    let params_for = |i: usize| {
        let mut params = v.params_for(i, prompt.len(), model);
        params.logprobs = top;
        params
    };
    if v.stream {
        let opts = Options {
            logprobs: top.is_some(),
            token_ids_as_text: v.token_ids_as_text,
            include_usage: v.include_usage,
        };
        let params = (0..v.n).map(params_for).collect();
        model.engine.check_room()?;
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
    for i in 0..v.n {
        let params = params_for(i);
        let done = run_to_end(
            &model.engine,
            GenerateRequest {
                prompt: prompt.clone(),
                params,
            },
        )
        .await?;
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
        choices.push(json!({
            "index": i,
            "message": { "role": "assistant", "content": done.text },
            "logprobs": logprobs,
            "finish_reason": done.finish_reason.as_str(),
        }));
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

/// Checks each message and flattens array-of-parts content into the plain
/// string most templates expect (text parts joined by newlines).
pub(super) fn normalize_messages(messages: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    messages
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            let obj = m.as_object_mut().ok_or_else(|| {
                ApiError::bad(format!("messages[{i}] must be an object"), "messages")
            })?;
            match obj.get("role").and_then(Value::as_str) {
                Some("system" | "user" | "assistant" | "tool" | "developer") => {}
                Some(other) => {
                    return Err(ApiError::bad(
                        format!(
                        "messages[{i}].role `{other}` is not one of system, user, assistant, tool"
                    ),
                        "messages",
                    ))
                }
                None => {
                    return Err(ApiError::bad(
                        format!("messages[{i}] has no role"),
                        "messages",
                    ))
                }
            }
            if let Some(Value::Array(parts)) = obj.get("content") {
                let mut texts = Vec::new();
                for (j, part) in parts.iter().enumerate() {
                    match (
                        part.get("type").and_then(Value::as_str),
                        part.get("text").and_then(Value::as_str),
                    ) {
                        (Some("text"), Some(t)) => texts.push(t.to_owned()),
                        (ty, _) => {
                            return Err(ApiError::bad(
                                format!(
                                "messages[{i}].content[{j}]: only text parts are supported, got {}",
                                ty.unwrap_or("no type")
                            ),
                                "messages",
                            ))
                        }
                    }
                }
                obj.insert("content".into(), Value::String(texts.join("\n")));
            }
            Ok(m)
        })
        .collect()
}
