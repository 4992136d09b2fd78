//! POST /v1/completions

use super::collect::{run_to_end, submit_all};
use super::completions_stream::{self, Choice, Options};
use super::logprobs::{CompletionLogprobs, TokenNames};
use super::sampling::{check_logprobs, validate};
use super::types::{CompletionRequest, PromptInput};
use super::{now_unix, request_id, resolve_model, usage_json, warn_unknown, Reply};
use crate::engine::GenerateRequest;
use crate::registry::ServedModel;
use crate::server::auth::admit;
use crate::server::error::ApiError;
use crate::server::state::AppState;
use serde_json::json;
use std::sync::Arc;

/// Prompts in one request: a batch, not a bulk job.
const MAX_PROMPTS: usize = 64;

pub async fn handle(state: &AppState, req: CompletionRequest) -> Result<Reply, ApiError> {
    warn_unknown("/v1/completions", &req.unknown);
    let model = &resolve_model(state, req.model.as_deref(), req.sampling.user.as_deref())?;
    run(model, req).await
}

/// Answers `req` on `model` (a shadow's copy comes here directly).
pub async fn run(model: &Arc<ServedModel>, req: CompletionRequest) -> Result<Reply, ApiError> {
    let tok = &model.tokenizer;
    let batch = match &req.prompt {
        PromptInput::Texts(ts) => ts.len(),
        PromptInput::TokenLists(ls) => ls.len(),
        _ => 1,
    };
    if batch > MAX_PROMPTS {
        return Err(ApiError::bad(
            format!("at most {MAX_PROMPTS} prompts per request, got {batch}"),
            "prompt",
        ));
    }
    let prompts: Vec<Vec<u32>> = match req.prompt {
        PromptInput::Text(t) => vec![tok.encode(&t, true, true)],
        PromptInput::Texts(ts) => ts.iter().map(|t| tok.encode(t, true, true)).collect(),
        PromptInput::Tokens(ids) => vec![ids],
        PromptInput::TokenLists(lists) => lists,
    };
    if prompts.is_empty() {
        return Err(ApiError::bad("prompt must not be empty", "prompt"));
    }
    let echo = req.echo.unwrap_or(false);
    let logprobs = req
        .logprobs
        .map(|k| check_logprobs(k, "logprobs"))
        .transpose()?;
    let v = validate(req.sampling, &model.defaults)?;
    let params_for = |i: usize, prompt: &[u32]| {
        let mut params = v.params_for(i, prompt.len(), model);
        params.logprobs = logprobs;
        params.prompt_logprobs = if echo { logprobs } else { None };
        params
    };
    // Each prompt once, and max_tokens for each of its choices: what
    // usage will count at most.
    let reserve: u64 = prompts
        .iter()
        .map(|p| (p.len() + v.n * params_for(0, p).max_tokens) as u64)
        .sum();
    if v.stream {
        model.engine.check_room()?;
        let choices = prompts
            .iter()
            .enumerate()
            .flat_map(|(p, prompt)| (0..v.n).map(move |i| (p, i, prompt)))
            .map(|(p, i, prompt)| Choice {
                index: p * v.n + i,
                prompt: prompt.clone(),
                params: params_for(i, prompt),
                counts_prompt: i == 0,
            })
            .collect();
        let opts = Options {
            echo,
            logprobs,
            token_ids_as_text: v.token_ids_as_text,
            include_usage: v.include_usage,
            priority: v.priority,
            admission: admit(reserve)?,
        };
        return Ok(Reply::Stream(completions_stream::start(
            model.clone(),
            choices,
            opts,
        )));
    }
    let names = TokenNames {
        tokenizer: tok,
        as_ids: v.token_ids_as_text,
    };

    let mut choices = Vec::new();
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    // Every choice of every prompt is submitted before any is awaited:
    // they share the engine's steps.
    let requests = prompts.iter().flat_map(|prompt| {
        (0..v.n).map(|i| GenerateRequest {
            prompt: prompt.clone(),
            params: params_for(i, prompt),
            priority: v.priority,
        })
    });
    let admission = admit(reserve)?;
    let mut streams = submit_all(&model.engine, requests)?.into_iter();
    if let Some(a) = &admission {
        a.submitted();
    }
    for prompt in &prompts {
        for i in 0..v.n {
            let stream = streams
                .next()
                .ok_or_else(|| ApiError::Internal("a choice was not submitted".into()))?;
            let done = run_to_end(stream).await?;
            if i == 0 {
                prompt_tokens += done.usage.prompt_tokens;
            }
            completion_tokens += done.usage.completion_tokens;
            let mut text = done.text;
            let lp_json = logprobs.map(|_| {
                let mut lp = CompletionLogprobs::default();
                if echo {
                    for (j, &id) in prompt.iter().enumerate() {
                        lp.push(
                            &names,
                            id,
                            j.checked_sub(1).and_then(|k| done.prompt_logprobs.get(k)),
                        );
                    }
                }
                for (id, l) in &done.tokens {
                    lp.push(&names, *id, l.as_ref());
                }
                lp.into_json()
            });
            if echo {
                text = tok.decode(prompt, false) + &text;
            }
            choices.push(json!({
                "index": choices.len(),
                "text": text,
                "logprobs": lp_json,
                "finish_reason": done.finish_reason.as_str(),
            }));
        }
    }
    if let Some(a) = &admission {
        a.record(prompt_tokens as u64, completion_tokens as u64);
        a.finish();
    }
    Ok(Reply::Json(json!({
        "id": request_id("cmpl"),
        "object": "text_completion",
        "created": now_unix(),
        "model": model.name(),
        "system_fingerprint": model.fingerprint,
        "choices": choices,
        "usage": usage_json(prompt_tokens, completion_tokens),
    })))
}
