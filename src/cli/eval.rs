//! `switchyard eval …`: measuring a model without serving it.

use super::engine_args::EngineArgs;
use super::{resolve::ModelArgs, CliResult};
use crate::backend::cpu::pool;
use crate::backend::device::{Device, DeviceChoice};
use crate::engine::{self, Compute, ModelSpec};
use crate::registry::eval::perplexity;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum EvalCommand {
    /// The perplexity of a text, computed as llama.cpp's llama-perplexity
    /// computes it: chunks of --ctx tokens, the second half of each scored.
    Perplexity(PerplexityArgs),
}

#[derive(Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A UTF-8 text file.
    #[arg(long)]
    text: std::path::PathBuf,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    ctx: usize,
    /// At most this many chunks (default: all the text holds).
    #[arg(long)]
    chunks: Option<usize>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(cmd: EvalCommand) -> CliResult {
    match cmd {
        EvalCommand::Perplexity(a) => run_perplexity(a),
    }
}

fn run_perplexity(a: PerplexityArgs) -> CliResult {
    let text = std::fs::read_to_string(&a.text)
        .map_err(|e| format!("--text {}: {e}", a.text.display()))?;
    let source = a.model.source()?;
    if let DeviceChoice::Cuda(_) = a.engine.device {
        return Err(
            "eval perplexity runs on the CPU (the reference backend); use --device cpu".into(),
        );
    }
    let threads = a.threads.unwrap_or_else(pool::physical_cores);
    let compute = Compute::cpu(threads, a.engine.exact_activations);
    let model = ModelSpec {
        source: &source,
        dtype: a.model.dtype()?,
        max_model_len: None,
    };
    let config = a.engine.config(&Device::Cpu)?;
    let budget = a.engine.budget(&Device::Cpu)?;
    let started = engine::start(&compute, model, &config, &budget).map_err(|e| e.to_string())?;
    let (handle, tokenizer) = (started.handle, started.tokenizer);
    let context = handle.info().context_length;
    if a.ctx > context {
        return Err(format!(
            "--ctx {} is longer than the model's context ({context})",
            a.ctx
        ));
    }
    let tokens = tokenizer.encode(&text, true, true);
    let bos = tokenizer.adds_bos().then(|| tokenizer.bos_id()).flatten();
    let started = std::time::Instant::now();
    let p = perplexity::perplexity(&handle, &tokens, a.ctx, bos, a.chunks)?;
    if a.json {
        let v = serde_json::to_string_pretty(&p).map_err(|e| e.to_string())?;
        println!("{v}");
        return Ok(());
    }
    let running: Vec<String> = p
        .running
        .iter()
        .enumerate()
        .map(|(i, r)| format!("[{}]{r:.4}", i + 1))
        .collect();
    println!("{}", running.join(","));
    println!("Final estimate: PPL = {:.4} +/- {:.5}", p.ppl, p.stderr);
    eprintln!(
        "[{} tokens, {} chunks of {}, {} scored, {:.1} s]",
        tokens.len(),
        p.chunks,
        p.ctx,
        p.scored_tokens,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
