//! Running one choice to the end and gathering what the response needs.

use crate::engine::{
    EngineHandle, Event, FinishReason, GenerateRequest, RequestStream, TokenLogprob, Usage,
};
use crate::server::error::ApiError;

pub struct Finished {
    pub text: String,
    /// Generated tokens with their logprobs (when asked for).
    pub tokens: Vec<(u32, Option<TokenLogprob>)>,
    pub prompt_logprobs: Vec<TokenLogprob>,
    pub finish_reason: FinishReason,
    pub usage: Usage,
}

/// Submits every request at once, so that they run side by side in the
/// engine's batch; their streams come back in order.
pub fn submit_all(
    engine: &EngineHandle,
    requests: impl IntoIterator<Item = GenerateRequest>,
) -> Result<Vec<RequestStream>, ApiError> {
    requests
        .into_iter()
        .map(|r| engine.submit(r).map_err(ApiError::from))
        .collect()
}

pub async fn run_to_end(mut stream: RequestStream) -> Result<Finished, ApiError> {
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
