//! Golden prompts: a version answers them before it takes traffic. A
//! prompt may require a substring of its greedy answer; a version that
//! misses one failed its warm-up and cannot be deployed.

use super::RegistryError;
use crate::engine::{EngineHandle, Event, GenerateRequest, SamplingParams};
use crate::model::tokenizer::Tokenizer;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenPrompt {
    /// Sent as a raw completion prompt, greedy, for exactly max_tokens.
    pub prompt: String,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// A substring the answer must contain.
    #[serde(default)]
    pub expect: Option<String>,
    /// The whole answer expected (compared without leading and trailing
    /// whitespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

fn default_max_tokens() -> usize {
    8
}

/// The most tokens one golden prompt may ask for, and the most prompts:
/// a warm-up proves the version works, it is not a benchmark.
const MAX_TOKENS: usize = 2048;
const MAX_PROMPTS: usize = 32;

/// The prompts a version registered without any answers.
pub fn default_prompts() -> Vec<GoldenPrompt> {
    ["Hello", "The capital of France is"]
        .into_iter()
        .map(|p| GoldenPrompt {
            prompt: p.into(),
            max_tokens: 4,
            expect: None,
            answer: None,
        })
        .collect()
}

/// Reads the `warmup` field of a registration; absent means the defaults.
pub fn parse(value: Option<&serde_json::Value>) -> Result<Vec<GoldenPrompt>, RegistryError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(default_prompts());
    };
    let prompts: Vec<GoldenPrompt> = serde_json::from_value(value.clone()).map_err(|e| {
        RegistryError::Invalid(format!(
            "warmup must be a list of {{prompt, max_tokens?, expect?, answer?}}: {e}"
        ))
    })?;
    if prompts.is_empty() {
        return Err(RegistryError::Invalid(
            "warmup needs at least one prompt".into(),
        ));
    }
    validate("warmup", &prompts)?;
    Ok(prompts)
}

/// At most MAX_PROMPTS prompts, each non-empty with a sane max_tokens.
pub fn validate(what: &str, prompts: &[GoldenPrompt]) -> Result<(), RegistryError> {
    if prompts.len() > MAX_PROMPTS {
        return Err(RegistryError::Invalid(format!(
            "{what} takes at most {MAX_PROMPTS} prompts"
        )));
    }
    for p in prompts {
        if p.prompt.is_empty() || !(1..=MAX_TOKENS).contains(&p.max_tokens) {
            return Err(RegistryError::Invalid(format!(
                "a {what} prompt must be non-empty with max_tokens between 1 and {MAX_TOKENS}"
            )));
        }
    }
    Ok(())
}

/// Runs the prompts in batches as wide as the engine's seats (so a small
/// engine with no queue still takes them) and checks each answer.
pub fn run(
    engine: &EngineHandle,
    tokenizer: &Tokenizer,
    prompts: &[GoldenPrompt],
) -> Result<(), String> {
    let answers = answers(engine, tokenizer, prompts)?;
    for (number, (answer, p)) in answers.into_iter().zip(prompts).enumerate() {
        check(number + 1, answer, p)?;
    }
    Ok(())
}

/// Each prompt's greedy answer, in order.
pub fn answers(
    engine: &EngineHandle,
    tokenizer: &Tokenizer,
    prompts: &[GoldenPrompt],
) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(prompts.len());
    let width = engine.info().max_num_seqs.max(1);
    for (batch, chunk) in prompts.chunks(width).enumerate() {
        let mut streams = Vec::with_capacity(chunk.len());
        for (j, p) in chunk.iter().enumerate() {
            let number = batch * width + j + 1;
            let request = GenerateRequest {
                prompt: tokenizer.encode(&p.prompt, true, true),
                // Exactly max_tokens: a warm-up also proves the engine runs
                // a given length, whatever the model's EOS does.
                params: SamplingParams {
                    temperature: 0.0,
                    max_tokens: p.max_tokens,
                    ignore_eos: true,
                    ..SamplingParams::default()
                },
                priority: 0,
            };
            let stream = engine
                .submit(request)
                .map_err(|e| format!("golden prompt {number}: {e}"))?;
            streams.push((number, stream));
        }
        for (number, mut stream) in streams {
            out.push(answer(number, &mut stream)?);
        }
    }
    Ok(out)
}

/// The whole greedy answer of one prompt.
fn answer(number: usize, stream: &mut crate::engine::RequestStream) -> Result<String, String> {
    let mut text = String::new();
    while let Some(event) = stream.blocking_next() {
        match event.map_err(|e| format!("golden prompt {number}: {e}"))? {
            Event::Token { text: t, .. } => text.push_str(&t),
            Event::Finished { text: t, .. } => {
                text.push_str(&t);
                return Ok(text);
            }
            Event::PromptLogprobs(_) => {}
        }
    }
    Err(format!("golden prompt {number}: the engine stopped"))
}

pub fn check(number: usize, answer: String, p: &GoldenPrompt) -> Result<(), String> {
    if let Some(expect) = p.expect.as_ref().filter(|e| !answer.contains(e.as_str())) {
        return Err(format!(
            "golden prompt {number} answered {answer:?}, which does not contain {expect:?}"
        ));
    }
    match &p.answer {
        Some(want) if answer.trim() != want.trim() => Err(format!(
            "golden prompt {number} answered {answer:?}, not {want:?}"
        )),
        _ => Ok(()),
    }
}
