//! `switchyard quantize` and `switchyard inspect`: writing a model in
//! another format, and looking inside a GGUF file.

use super::resolve::model_path;
use super::CliResult;
use crate::backend::quant::dequantize_scalar;
use crate::backend::WeightFormat;
use crate::model::gguf::{GgufFile, TensorInfo};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args)]
pub struct QuantizeArgs {
    /// A GGUF file, a Hugging Face checkpoint directory (safetensors in
    /// f32, f16 or bf16, with its tokenizer.json), or a model of the
    /// catalog by name.
    #[arg(long)]
    model: String,
    /// q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, or f16, bf16, f32.
    /// K-quants fall back to Q5_0 (q4_k), Q5_1 (q5_k) or Q8_0 (q6_k) for
    /// rows that are not a multiple of 256 wide, as llama.cpp does.
    #[arg(long)]
    to: String,
    /// The GGUF file to write.
    #[arg(long)]
    out: PathBuf,
    /// One format for every matrix: the output projection (or the tied
    /// embedding) too, which otherwise keeps at least Q6_K.
    #[arg(long)]
    pure: bool,
    /// Print what each tensor became, as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run_quantize(a: QuantizeArgs) -> CliResult {
    let to = WeightFormat::parse(&a.to).map_err(|e| format!("--to {e}"))?;
    let input = model_path(Some(&a.model))?;
    let started = std::time::Instant::now();
    let outcome = crate::model::quantize::quantize(&input, to, a.pure, &a.out)?;
    if a.json {
        let text = serde_json::to_string_pretty(&outcome).map_err(|e| e.to_string())?;
        println!("{text}");
        return Ok(());
    }
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for t in &outcome.tensors {
        *counts.entry(t.to.as_str()).or_default() += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "{} -> {}: {} tensors ({}), {:.1} MiB -> {:.1} MiB in {:.1} s",
        input.display(),
        a.out.display(),
        outcome.tensors.len(),
        summary.join(", "),
        outcome.bytes_in as f64 / (1 << 20) as f64,
        outcome.bytes_out as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Args)]
pub struct InspectArgs {
    /// A GGUF file.
    file: PathBuf,
    /// One tensor, by its name in the file.
    #[arg(long)]
    tensor: Option<String>,
    /// Write the values of --tensor, or of every tensor one after the
    /// other in the file's order, dequantized, to this file as
    /// little-endian f32.
    #[arg(long)]
    dequantize_to: Option<PathBuf>,
}

pub fn run_inspect(a: InspectArgs) -> CliResult {
    let file = GgufFile::open(&a.file).map_err(|e| e.to_string())?;
    let chosen: Vec<&TensorInfo> = match &a.tensor {
        Some(name) => vec![file
            .tensor_info(name)
            .ok_or_else(|| format!("{} has no tensor `{name}`", a.file.display()))?],
        None => {
            if a.dequantize_to.is_none() {
                for (k, v) in file.metadata() {
                    println!("{k} = {}", v.summary());
                }
            }
            file.tensors().iter().collect()
        }
    };
    for t in &chosen {
        println!("{}\t{}\t{:?}\t{} bytes", t.name, t.ty, t.dims, t.n_bytes);
    }
    let Some(out) = a.dequantize_to else {
        return Ok(());
    };
    let mut sink = std::fs::File::create(&out)
        .map(std::io::BufWriter::new)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    for info in chosen {
        let format = info.ty.weight_format().ok_or_else(|| {
            format!(
                "`{}` is {}, which this build cannot read",
                info.name, info.ty
            )
        })?;
        let mut values = vec![0f32; info.n_elements() as usize];
        dequantize_scalar(format, file.tensor_bytes(info), &mut values);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        sink.write_all(&bytes)
            .map_err(|e| format!("{}: {e}", out.display()))?;
    }
    sink.flush().map_err(|e| format!("{}: {e}", out.display()))
}
