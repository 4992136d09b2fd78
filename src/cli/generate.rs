//! `switchyard generate --model M PROMPT`: the engine without HTTP,
//! streaming tokens to the terminal as they come.

use super::{resolve::ModelArgs, CliResult};
use crate::backend::cpu::{pool, ComputePool};
use crate::engine::{self, Compute, Event, GenerateRequest, ModelSpec, SamplingParams};
use clap::Args;
use std::io::Write;
use std::sync::Arc;

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long)]
    seed: Option<u64>,
    /// Keep generating through end-of-generation tokens (benchmarks).
    #[arg(long)]
    ignore_eos: bool,
    /// Render PROMPT as one user message through the chat template.
    #[arg(long)]
    chat: bool,
    /// Compute threads (default: physical cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Repeat PROMPT's tokens to exactly this many (prefill benchmarks).
    #[arg(long)]
    prompt_tokens: Option<usize>,
    #[command(flatten)]
    engine: super::engine_args::EngineArgs,
    prompt: String,
}

pub fn run(a: GenerateArgs) -> CliResult {
    let source = a.model.source()?;
    let device = a.engine.open_device()?;
    let config = a.engine.config(&device)?;
    let budget = a.engine.budget(&device)?;
    let threads = a.threads.unwrap_or_else(pool::physical_cores);
    let compute = Compute::new(
        device,
        Arc::new(ComputePool::new(threads)),
        a.engine.exact_activations,
    );
    let model = ModelSpec {
        source: &source,
        dtype: a.model.dtype()?,
        max_model_len: None,
    };
    let started = engine::start(&compute, model, &config, &budget).map_err(|e| e.to_string())?;
    let prompt = if a.chat {
        let template = started
            .template
            .as_ref()
            .ok_or("this model has no chat template")?;
        let msg = serde_json::json!({"role": "user", "content": a.prompt});
        let text = template
            .render(&[msg], true, &Default::default())
            .map_err(|e| e.to_string())?;
        started.tokenizer.encode(&text, false, true)
    } else {
        started.tokenizer.encode(&a.prompt, true, true)
    };
    let prompt = match a.prompt_tokens {
        Some(n) => repeat_to(&prompt, n),
        None => prompt,
    };
    let n_prompt = prompt.len();
    let handle = started.handle;
    let params = SamplingParams {
        temperature: a.temperature,
        top_p: a.top_p,
        seed: a.seed,
        max_tokens: a.max_tokens,
        ignore_eos: a.ignore_eos,
        ..SamplingParams::default()
    };
    let started = std::time::Instant::now();
    let mut first_token = None;
    let mut stream = handle
        .submit(GenerateRequest {
            prompt,
            params,
            priority: 0,
        })
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    while let Some(event) = stream.blocking_next() {
        match event.map_err(|e| e.to_string())? {
            Event::Token { text, .. } => {
                first_token.get_or_insert_with(|| started.elapsed());
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
            }
            Event::Finished {
                text,
                usage,
                reason,
                ..
            } => {
                let _ = writeln!(out, "{text}");
                let total = started.elapsed();
                let ttft = first_token.unwrap_or(total);
                let decode = (total - ttft).as_secs_f64();
                // The first token comes after the whole prompt's forward
                // passes (and one sampling step): the prefill rate.
                eprintln!(
                    "[prefill: {n_prompt} tokens in {:.0} ms, {:.1} tokens/s]",
                    ttft.as_secs_f64() * 1e3,
                    n_prompt as f64 / ttft.as_secs_f64().max(1e-9)
                );
                eprintln!(
                    "[{} prompt tokens, {} generated, finish: {}; first token {:.0} ms, {:.1} tokens/s after it]",
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    reason.as_str(),
                    ttft.as_secs_f64() * 1e3,
                    usage.completion_tokens.saturating_sub(1) as f64 / decode.max(1e-9)
                );
                return Ok(());
            }
            Event::PromptLogprobs(_) => {}
        }
    }
    Err("the engine stopped before finishing".into())
}

/// `tokens` lengthened (or cut) to `n`: the first token (BOS, when the
/// tokenizer adds one) once, the rest repeated.
fn repeat_to(tokens: &[u32], n: usize) -> Vec<u32> {
    let Some((&first, rest)) = tokens.split_first() else {
        return Vec::new();
    };
    let body = if rest.is_empty() { tokens } else { rest };
    std::iter::once(first)
        .chain(body.iter().copied().cycle())
        .take(n)
        .collect()
}
