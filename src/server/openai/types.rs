//! Request bodies of the OpenAI API, as far as this server reads them.
//! Fields it does not know are ignored, as the OpenAI server does.

use serde::Deserialize;

/// `prompt` of /v1/completions: text, several texts, token ids, or several
/// lists of token ids.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PromptInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StopInput {
    One(String),
    Many(Vec<String>),
}

impl StopInput {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            StopInput::One(s) => vec![s],
            StopInput::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
}

/// Sampling fields shared by both generation endpoints.
#[derive(Debug, Default, Deserialize)]
pub struct SamplingFields {
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<i64>,
    pub min_p: Option<f32>,
    pub n: Option<i64>,
    pub stop: Option<StopInput>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub ignore_eos: Option<bool>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub return_tokens_as_token_ids: Option<bool>,
    pub logit_bias: Option<serde_json::Map<String, serde_json::Value>>,
    pub response_format: Option<serde_json::Value>,
    pub user: Option<String>,
    /// Scheduling priority: lower runs first (vLLM's convention).
    pub priority: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: Option<String>,
    pub prompt: PromptInput,
    pub echo: Option<bool>,
    pub logprobs: Option<i64>,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// Whatever else the body held (logged, then ignored).
    #[serde(flatten)]
    pub unknown: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<serde_json::Value>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<i64>,
    pub add_generation_prompt: Option<bool>,
    pub chat_template_kwargs: Option<serde_json::Map<String, serde_json::Value>>,
    pub tools: Option<Vec<serde_json::Value>>,
    pub tool_choice: Option<serde_json::Value>,
    pub parallel_tool_calls: Option<bool>,
    #[serde(flatten)]
    pub sampling: SamplingFields,
    /// Whatever else the body held (logged, then ignored).
    #[serde(flatten)]
    pub unknown: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_collected_and_known_ones_are_not() {
        let r: CompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "prompt": "p", "temperature": 0.5, "stream_options": {"include_usage": true},
            "frobnicate": 1, "best_of": 2
        }))
        .unwrap();
        assert_eq!(r.sampling.temperature, Some(0.5));
        let mut keys: Vec<&String> = r.unknown.keys().collect();
        keys.sort();
        assert_eq!(keys, ["best_of", "frobnicate"]);
    }
}
