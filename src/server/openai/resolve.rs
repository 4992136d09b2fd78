//! The one validation step of a generation request, in the manner of
//! TGI's `validation.rs`: from a parsed body and the version that answers
//! it to requests the engine runs as they are, or one typed error. Here
//! and only here the chat template is rendered, prompts are tokenized,
//! `max_tokens` is settled against the engine's window and the defaults,
//! each prompt is checked against the context window and the KV cache,
//! grammars are compiled, and the key's token reservation is counted. It
//! runs on the blocking pool: a 2 MB prompt is tokenized there, never on
//! the async workers that stream other requests' tokens.

use super::prompt::{self, ChatOptions, ChatPrompt};
use super::sampling::{check_logprobs, validate, Sampling};
use super::tools::ToolFormat;
use super::types::{ChatRequest, CompletionRequest, PromptInput};
use crate::engine::{GenerateRequest, SamplingParams};
use crate::registry::ServedModel;
use crate::server::error::ApiError;
use crate::server::invalid::Invalid;
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

/// Resolves `body` for `model` on the blocking pool. `default_priority`
/// is the caller's key's, read by the caller on its own task.
pub async fn resolve(
    model: Arc<ServedModel>,
    body: Body,
    default_priority: i64,
) -> Result<Resolved, ApiError> {
    tokio::task::spawn_blocking(move || match body {
        Body::Chat(r) => chat(&model, r, default_priority),
        Body::Completion(r) => completion(&model, r, default_priority),
    })
    .await
    .map_err(|e| ApiError::Internal(format!("validating the request failed: {e}")))?
}

fn chat(model: &ServedModel, req: ChatRequest, priority: i64) -> Result<Resolved, ApiError> {
    if req.messages.is_empty() {
        return Err(Invalid::Empty { param: "messages" }.into());
    }
    let many = |param, what, max, got| Invalid::TooMany {
        param,
        what,
        max,
        got,
    };
    if req.messages.len() > MAX_MESSAGES {
        return Err(many("messages", "messages", MAX_MESSAGES, req.messages.len()).into());
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| t.len() > MAX_TOOLS) {
        return Err(many("tools", "tools", MAX_TOOLS, tools.len()).into());
    }
    let top = match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (true, k) => Some(check_logprobs(k.unwrap_or(0), "top_logprobs")?),
        (false, Some(_)) => {
            let e = "top_logprobs requires logprobs to be true";
            return Err(Invalid::malformed("top_logprobs", e).into());
        }
        (false, None) => None,
    };
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
    let batch = match &req.prompt {
        PromptInput::Texts(ts) => ts.len(),
        PromptInput::TokenLists(ls) => ls.len(),
        _ => 1,
    };
    if batch > MAX_PROMPTS {
        let too_many = Invalid::TooMany {
            param: "prompt",
            what: "prompts",
            max: MAX_PROMPTS,
            got: batch,
        };
        return Err(too_many.into());
    }
    let echo = req.echo.unwrap_or(false);
    let logprobs = req
        .logprobs
        .map(|k| check_logprobs(k, "logprobs"))
        .transpose()?;
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

/// Tokenizes a prompt's text, refusing first, without tokenizing, a text
/// too long for the window whatever its tokens.
fn tokenize(
    model: &ServedModel,
    text: &str,
    add_special: bool,
    param: &'static str,
) -> Result<Vec<u32>, Invalid> {
    let window = model.engine.info().window();
    let at_least = model.tokenizer.min_tokens(text);
    if at_least > window {
        return Err(Invalid::PromptTooLong {
            param,
            bytes: text.len(),
            at_least,
            context: window,
        });
    }
    Ok(model.tokenizer.encode(text, add_special, true))
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
