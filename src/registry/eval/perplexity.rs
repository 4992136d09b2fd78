//! The perplexity of a text, computed as llama.cpp's llama-perplexity
//! computes it, so that the two can be compared number for number: the
//! text is tokenized once (with BOS when the tokenizer adds one) and cut
//! into chunks of `ctx` tokens, the last partial chunk dropped; each chunk
//! runs as a fresh sequence with BOS in place of its first token (when the
//! tokenizer adds one), and only its second half is scored, every token
//! there predicted from at least ctx/2 tokens of context.

use crate::engine::{EngineHandle, Event, GenerateRequest, SamplingParams};

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Perplexity {
    pub ppl: f64,
    /// Standard error of `ppl` (the spread of the token losses, through
    /// the exponential), as llama-perplexity reports it.
    pub stderr: f64,
    pub ctx: usize,
    pub chunks: usize,
    pub scored_tokens: usize,
    /// The running estimate after each chunk (`[1]…,[2]…` in
    /// llama-perplexity's output).
    pub running: Vec<f64>,
}

/// The sequences to run: `ctx` tokens each, BOS first when given.
pub fn chunks(tokens: &[u32], ctx: usize, bos: Option<u32>, max: Option<usize>) -> Vec<Vec<u32>> {
    let n = (tokens.len() / ctx.max(1)).min(max.unwrap_or(usize::MAX));
    (0..n)
        .map(|i| {
            let mut chunk = tokens[i * ctx..(i + 1) * ctx].to_vec();
            if let Some(b) = bos {
                chunk[0] = b;
            }
            chunk
        })
        .collect()
}

/// The losses of one chunk's scored tokens, from its prompt logprobs
/// (`logprobs[k - 1]` is the logprob of token k given tokens 0..k).
fn scored_losses(logprobs: &[f32], ctx: usize) -> Vec<f64> {
    let first = ctx / 2;
    (first + 1..ctx)
        .map(|k| -f64::from(logprobs[k - 1]))
        .collect()
}

/// Runs every chunk through `engine` (as wide as its seats allow) and
/// combines the losses.
pub fn perplexity(
    engine: &EngineHandle,
    tokens: &[u32],
    ctx: usize,
    bos: Option<u32>,
    max_chunks: Option<usize>,
) -> Result<Perplexity, String> {
    if ctx < 4 {
        return Err(format!("--ctx {ctx} is too small: at least 4 tokens"));
    }
    let chunks = chunks(tokens, ctx, bos, max_chunks);
    if chunks.is_empty() {
        return Err(format!(
            "the text has {} tokens, fewer than one chunk of {ctx}",
            tokens.len()
        ));
    }
    let width = engine.info().max_num_seqs.max(1);
    let mut losses: Vec<f64> = Vec::new();
    let mut running = Vec::with_capacity(chunks.len());
    for wave in chunks.chunks(width) {
        let mut streams = Vec::with_capacity(wave.len());
        for chunk in wave {
            let request = GenerateRequest {
                prompt: chunk.clone(),
                params: SamplingParams {
                    temperature: 0.0,
                    max_tokens: 1,
                    ignore_eos: true,
                    prompt_logprobs: Some(0),
                    ..SamplingParams::default()
                },
                priority: 0,
            };
            streams.push(engine.submit(request).map_err(|e| e.to_string())?);
        }
        for mut stream in streams {
            let logprobs = loop {
                match stream.blocking_next() {
                    Some(Ok(Event::PromptLogprobs(lp))) => break lp,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err("the engine stopped".into()),
                }
            };
            let values: Vec<f32> = logprobs.iter().map(|t| t.logprob).collect();
            if values.len() + 1 < ctx {
                return Err(format!(
                    "{} prompt logprobs for a chunk of {ctx}",
                    values.len()
                ));
            }
            losses.extend(scored_losses(&values, ctx));
            running.push(mean(&losses).exp());
        }
    }
    let m = mean(&losses);
    let n = losses.len() as f64;
    let variance = losses.iter().map(|l| (l - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let ppl = m.exp();
    Ok(Perplexity {
        ppl,
        stderr: ppl * (variance / n).sqrt(),
        ctx,
        chunks: running.len(),
        scored_tokens: losses.len(),
        running,
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[cfg(test)]
#[path = "perplexity_tests.rs"]
mod tests;
