//! POST /tokenize and /detokenize, in vLLM's shapes (llama.cpp's
//! `content` / `add_special` names are accepted too). Rendering and
//! tokenizing run on the preparation threads, as for generation requests.

use super::prompt::{self, ChatOptions};
use super::resolve_model;
use crate::registry::ServedModel;
use crate::server::error::ApiError;
use crate::server::invalid::Invalid;
use crate::server::state::AppState;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
pub struct TokenizeRequest {
    pub model: Option<String>,
    #[serde(alias = "content")]
    pub prompt: Option<String>,
    pub messages: Option<Vec<Value>>,
    #[serde(alias = "add_special")]
    pub add_special_tokens: Option<bool>,
    pub add_generation_prompt: Option<bool>,
    pub tools: Option<Vec<Value>>,
    pub tool_choice: Option<Value>,
    pub chat_template_kwargs: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
pub struct DetokenizeRequest {
    pub model: Option<String>,
    pub tokens: Vec<u32>,
}

pub async fn tokenize(state: &AppState, req: TokenizeRequest) -> Result<Value, ApiError> {
    let model = resolve_model(state, req.model.as_deref(), None)?;
    state.prep().run(move || tokenize_now(&model, req)).await?
}

fn tokenize_now(model: &ServedModel, req: TokenizeRequest) -> Result<Value, ApiError> {
    let tokens = match (req.prompt, req.messages) {
        (Some(text), None) => {
            model
                .tokenizer
                .encode(&text, req.add_special_tokens.unwrap_or(true), true)
        }
        (None, Some(messages)) => {
            let opts = ChatOptions {
                tools: req.tools.as_deref(),
                tool_choice: req.tool_choice.as_ref(),
                parallel_tool_calls: None,
                kwargs: req.chat_template_kwargs.unwrap_or_default(),
                add_generation_prompt: req.add_generation_prompt.unwrap_or(true),
            };
            let text = prompt::render(model, messages, opts)?.text;
            model
                .tokenizer
                .encode(&text, req.add_special_tokens.unwrap_or(false), true)
        }
        _ => {
            let e = "send exactly one of prompt and messages";
            return Err(Invalid::malformed("prompt", e).into());
        }
    };
    Ok(json!({
        "count": tokens.len(),
        "max_model_len": model.engine.info().context_length,
        "tokens": tokens,
    }))
}

pub fn detokenize(state: &AppState, req: DetokenizeRequest) -> Result<Value, ApiError> {
    let model = &resolve_model(state, req.model.as_deref(), None)?;
    let vocab = model.tokenizer.vocab_size();
    if let Some(&bad) = req.tokens.iter().find(|&&t| t as usize >= vocab) {
        let e = format!("token id {bad} is outside the vocabulary (size {vocab})");
        return Err(Invalid::malformed("tokens", e).into());
    }
    Ok(json!({ "prompt": model.tokenizer.decode(&req.tokens, false) }))
}
