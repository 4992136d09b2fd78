//! The one validation step of a generation request, in the manner of
//! TGI's `validation.rs`: from a parsed body and the version that answers
//! it to requests the engine runs as they are, or one typed error. Here
//! and only here the chat template is rendered, prompts are tokenized,
//! `max_tokens` is settled against the engine's window and the defaults,
//! each prompt is checked against the context window and the KV cache,
//! grammars are compiled, and the key's token reservation is counted. It
//! runs on the preparation threads (`server/prep.rs`): a 2 MB prompt is
//! tokenized there, never on the async workers that stream other
//! requests' tokens.

use super::prompt::{self, ChatOptions, ChatPrompt};
use super::sampling::{check_logprobs, validate, Sampling};
use super::tools::ToolFormat;
use super::types::{ChatRequest, CompletionRequest, PromptInput};
use crate::engine::{GenerateRequest, SamplingParams};
use crate::registry::ServedModel;
use crate::server::error::ApiError;
use crate::server::invalid::Invalid;
use crate::server::prep::Prep;
use std::sync::Arc;

const MAX_MESSAGES: usize = 4096;
const MAX_TOOLS: usize = 128;
/// Prompts in one completions request: a batch, not a bulk job.
const MAX_PROMPTS: usize = 64;

/// A generation request's body, parsed.
pub enum Body {
    Chat(ChatRequest),
    Completion(CompletionRequest),
}

/// A request the engine can run: every choice's prompt and parameters,
/// settled.
pub struct Resolved {
    pub prompts: Vec<Vec<u32>>,
    /// Each prompt's choices, prompt by prompt.
    pub choices: Vec<Choice>,
    pub stream: bool,
    pub include_usage: bool,
    pub priority: i32,
    /// Tokens the caller's key reserves: each prompt once, and max_tokens
    /// for each of its choices (what usage will count at most).
    pub reserve: u64,
    /// How the answer is written.
    pub render: Render,
}

pub struct Choice {
    /// The choice's `index` in the answer.
    pub index: usize,
    /// Which of `Resolved::prompts`.
    pub prompt: usize,
    pub params: SamplingParams,
    /// The first choice of its prompt: its prompt tokens count in usage.
    pub counts_prompt: bool,
}

impl Choice {
    pub fn request(&self, r: &Resolved) -> GenerateRequest {
        GenerateRequest {
            prompt: r.prompts[self.prompt].clone(),
            params: self.params.clone(),
            priority: r.priority,
        }
    }
}

/// What the renderer of each endpoint needs to know of the request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Render {
    Chat {
        logprobs: bool,
        token_ids_as_text: bool,
        /// Tool calls may come, written in this format.
        tools: Option<ToolFormat>,
    },
    Completion {
        echo: bool,
        logprobs: Option<usize>,
        token_ids_as_text: bool,
    },
}

/// Resolves `body` for `model` on the preparation threads.
/// `default_priority` is the caller's key's, read by the caller on its
/// own task.
pub async fn resolve(
    prep: &Prep,
    model: Arc<ServedModel>,
    body: Body,
    default_priority: i64,
) -> Result<Resolved, ApiError> {
    prep.run(move || match body {
        Body::Chat(r) => chat(&model, r, default_priority),
        Body::Completion(r) => completion(&model, r, default_priority),
    })
    .await?
}

fn chat(model: &ServedModel, req: ChatRequest, priority: i64) -> Result<Resolved, ApiError> {
    let top = chat_fields(&req)?;
    // The rendered prompt holds every message's text: too much of it is
    // refused before the template runs.
    fits_window(model, content_bytes(&req.messages), "messages")?;
    let mut sampling = validate(req.sampling, &model.defaults, priority)?;
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
    // A required call outranks response_format: the reply is the call.
    if let Some(g) = tools.as_ref().map(|t| t.grammar()).transpose()?.flatten() {
        sampling.grammar = Some(g);
    }
    let prompt = tokenize(model, &text, false, "messages")?;
    let render = Render::Chat {
        logprobs: top.is_some(),
        token_ids_as_text: sampling.token_ids_as_text,
        tools: tools.map(|t| t.format),
    };
    settle(model, vec![prompt], &sampling, (top, None), render)
}

fn completion(
    model: &ServedModel,
    req: CompletionRequest,
    priority: i64,
) -> Result<Resolved, ApiError> {
    let (echo, logprobs) = completion_fields(&req)?;
    let sampling = validate(req.sampling, &model.defaults, priority)?;
    let prompts: Vec<Vec<u32>> = match req.prompt {
        PromptInput::Text(t) => vec![tokenize(model, &t, true, "prompt")?],
        PromptInput::Texts(ts) => ts
            .iter()
            .map(|t| tokenize(model, t, true, "prompt"))
            .collect::<Result<_, _>>()?,
        PromptInput::Tokens(ids) => vec![ids],
        PromptInput::TokenLists(lists) => lists,
    };
    if prompts.is_empty() {
        return Err(Invalid::Empty { param: "prompt" }.into());
    }
    let render = Render::Completion {
        echo,
        logprobs,
        token_ids_as_text: sampling.token_ids_as_text,
    };
    let prompt_logprobs = if echo { logprobs } else { None };
    settle(
        model,
        prompts,
        &sampling,
        (logprobs, prompt_logprobs),
        render,
    )
}

/// The chat fields checked before the prompt is rendered: messages and
/// tools within bounds, logprobs asked for consistently. The number of
/// alternatives per token, when logprobs are asked for.
fn chat_fields(req: &ChatRequest) -> Result<Option<usize>, Invalid> {
    let many = |param, max, got| Invalid::TooMany {
        param,
        what: param,
        max,
        got,
    };
    if req.messages.is_empty() {
        return Err(Invalid::Empty { param: "messages" });
    }
    if req.messages.len() > MAX_MESSAGES {
        return Err(many("messages", MAX_MESSAGES, req.messages.len()));
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| t.len() > MAX_TOOLS) {
        return Err(many("tools", MAX_TOOLS, tools.len()));
    }
    match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (true, k) => Ok(Some(check_logprobs(k.unwrap_or(0), "top_logprobs")?)),
        (false, Some(_)) => Err(Invalid::malformed(
            "top_logprobs",
            "top_logprobs requires logprobs to be true",
        )),
        (false, None) => Ok(None),
    }
}

/// The completions fields checked before prompts are tokenized: the
/// batch within bounds, and (echo, alternatives per token).
fn completion_fields(req: &CompletionRequest) -> Result<(bool, Option<usize>), Invalid> {
    let batch = match &req.prompt {
        PromptInput::Texts(ts) => ts.len(),
        PromptInput::TokenLists(ls) => ls.len(),
        _ => 1,
    };
    if batch > MAX_PROMPTS {
        return Err(Invalid::TooMany {
            param: "prompt",
            what: "prompts",
            max: MAX_PROMPTS,
            got: batch,
        });
    }
    let logprobs = req
        .logprobs
        .map(|k| check_logprobs(k, "logprobs"))
        .transpose()?;
    Ok((req.echo.unwrap_or(false), logprobs))
}

/// Tokenizes a prompt's text, refusing first, without tokenizing, a text
/// too long for the window whatever its tokens.
fn tokenize(
    model: &ServedModel,
    text: &str,
    add_special: bool,
    param: &'static str,
) -> Result<Vec<u32>, Invalid> {
    fits_window(model, text.len(), param)?;
    Ok(model.tokenizer.encode(text, add_special, true))
}

/// Refuses `bytes` of prompt text that must make more tokens than the
/// window holds.
fn fits_window(model: &ServedModel, bytes: usize, param: &'static str) -> Result<(), Invalid> {
    let window = model.engine.info().window();
    let at_least = model.tokenizer.min_tokens(bytes);
    if at_least > window {
        return Err(Invalid::PromptTooLong {
            param,
            bytes,
            at_least,
            context: window,
        });
    }
    Ok(())
}

/// The bytes of text the messages carry (string content and text parts).
fn content_bytes(messages: &[serde_json::Value]) -> usize {
    use serde_json::Value;
    let text = |v: &Value| v.as_str().map_or(0, str::len);
    messages
        .iter()
        .map(|m| match m.get("content") {
            Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text")).map(text).sum(),
            Some(content) => text(content),
            None => 0,
        })
        .sum()
}

/// Each prompt's choices with `max_tokens` settled (what the request
/// asked for; else the server's default, never past the window; else the
/// rest of the window), each checked against the engine once.
fn settle(
    model: &ServedModel,
    prompts: Vec<Vec<u32>>,
    sampling: &Sampling,
    (logprobs, prompt_logprobs): (Option<usize>, Option<usize>),
    render: Render,
) -> Result<Resolved, ApiError> {
    let info = model.engine.info();
    let mut resolved = Resolved {
        prompts: Vec::new(),
        choices: Vec::new(),
        stream: sampling.stream,
        include_usage: sampling.include_usage,
        priority: sampling.priority,
        reserve: 0,
        render,
    };
    for (p, prompt) in prompts.into_iter().enumerate() {
        let rest = info.window().saturating_sub(prompt.len()).max(1);
        let max_tokens = match (sampling.max_tokens, model.default_max_tokens) {
            (Some(m), _) => m,
            (None, Some(d)) => d.min(rest),
            (None, None) => rest,
        };
        for i in 0..sampling.n {
            let choice = Choice {
                index: p * sampling.n + i,
                prompt: p,
                params: sampling.params(i, max_tokens, logprobs, prompt_logprobs),
                counts_prompt: i == 0,
            };
            // Choices of one prompt differ only in their seed.
            if i == 0 {
                info.check(&prompt, &choice.params)?;
            }
            resolved.choices.push(choice);
        }
        let prompt_len = prompt.len() as u64;
        resolved.prompts.push(prompt);
        let generated = (sampling.n as u64).saturating_mul(max_tokens as u64);
        resolved.reserve = resolved
            .reserve
            .saturating_add(prompt_len.saturating_add(generated));
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn chat(v: Value) -> Result<Option<usize>, Invalid> {
        chat_fields(&serde_json::from_value(v).unwrap())
    }

    fn completion(v: Value) -> Result<(bool, Option<usize>), Invalid> {
        completion_fields(&serde_json::from_value(v).unwrap())
    }

    /// Every request-level field out of range, refused by name.
    #[test]
    fn out_of_range_request_fields_are_refused_by_name() {
        let message = json!({"role": "user", "content": "hi"});
        let tool = json!({"type": "function", "function": {"name": "f"}});
        let chat_cases = [
            ("messages", json!({"messages": []})),
            (
                "messages",
                json!({"messages": vec![message.clone(); MAX_MESSAGES + 1]}),
            ),
            (
                "tools",
                json!({"messages": [message], "tools": vec![tool; MAX_TOOLS + 1]}),
            ),
            (
                "top_logprobs",
                json!({"messages": [message], "logprobs": true, "top_logprobs": 21}),
            ),
            (
                "top_logprobs",
                json!({"messages": [message], "logprobs": true, "top_logprobs": -1}),
            ),
            (
                "top_logprobs",
                json!({"messages": [message], "top_logprobs": 2}),
            ),
        ];
        for (param, body) in chat_cases {
            let e = chat(body).err();
            assert_eq!(e.as_ref().map(Invalid::param), Some(param), "{e:?}");
        }
        let completion_cases = [
            ("prompt", json!({"prompt": vec!["x"; MAX_PROMPTS + 1]})),
            ("prompt", json!({"prompt": vec![vec![1]; MAX_PROMPTS + 1]})),
            ("logprobs", json!({"prompt": "x", "logprobs": 21})),
            ("logprobs", json!({"prompt": "x", "logprobs": -1})),
        ];
        for (param, body) in completion_cases {
            let e = completion(body).err();
            assert_eq!(e.as_ref().map(Invalid::param), Some(param), "{e:?}");
        }
    }

    #[test]
    fn fields_at_their_bounds_pass() {
        let message = json!({"role": "user", "content": "hi"});
        let most = json!({"messages": vec![message.clone(); MAX_MESSAGES], "logprobs": true, "top_logprobs": 20});
        assert_eq!(chat(most), Ok(Some(20)));
        assert_eq!(chat(json!({"messages": [message]})), Ok(None));
        let batch = json!({"prompt": vec!["x"; MAX_PROMPTS], "echo": true, "logprobs": 0});
        assert_eq!(completion(batch), Ok((true, Some(0))));
    }
}
