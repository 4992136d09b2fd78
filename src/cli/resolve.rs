//! `--model`, `--load-format` and `--dtype`, shared by the subcommands that
//! load a model. `--model` takes a GGUF file, a Hugging Face directory, or
//! the name of a known model (pulled first when missing); with
//! `--load-format dummy`, a preset name or a config.json.

use crate::backend::WeightFormat;
use crate::model::ModelSource;
use crate::store;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoadFormat {
    /// Read the weights --model names.
    Auto,
    /// Deterministic random weights of --model's shape, no weight files
    /// (as vLLM's `--load-format dummy`).
    Dummy,
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A GGUF file, a Hugging Face model directory, or a known model name
    /// (default: smollm2-135m-instruct, pulled when missing). With
    /// --load-format dummy: a preset (tiny, smollm2-135m, qwen2.5-0.5b,
    /// qwen3-0.6b, llama-3.2-1b, llama-3.1-8b, mistral-7b) or a config.json.
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, value_enum, default_value = "auto")]
    pub load_format: LoadFormat,
    /// Weight format in memory: auto (as stored; a dummy preset's own), or
    /// f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k to
    /// re-encode every weight matrix at load, as `switchyard quantize`
    /// would write it (--quantize is the same flag).
    #[arg(long, visible_alias = "quantize", default_value = "auto")]
    pub dtype: String,
}

impl ModelArgs {
    pub fn source(&self) -> Result<ModelSource, String> {
        match self.load_format {
            LoadFormat::Dummy => {
                let spec = self
                    .model
                    .as_deref()
                    .ok_or("--load-format dummy needs --model PRESET or --model CONFIG.json")?;
                ModelSource::dummy(spec).map_err(|e| e.to_string())
            }
            LoadFormat::Auto => {
                model_path(self.model.as_deref()).map(|p| ModelSource::from_path(&p))
            }
        }
    }

    pub fn dtype(&self) -> Result<Option<WeightFormat>, String> {
        if self.dtype == "auto" {
            return Ok(None);
        }
        WeightFormat::parse(&self.dtype)
            .map(Some)
            .map_err(|e| format!("--dtype {e} (or auto)"))
    }

    /// Whether the name clients send defaults to the catalog name.
    pub fn names_a_known_model(&self) -> Option<String> {
        match (self.load_format, self.model.as_deref()) {
            (LoadFormat::Auto, None) => Some(store::DEFAULT_MODEL.to_owned()),
            (LoadFormat::Auto, Some(m)) if !std::path::Path::new(m).exists() => Some(m.to_owned()),
            _ => None,
        }
    }
}

pub(super) fn model_path(arg: Option<&str>) -> Result<PathBuf, String> {
    let arg = arg.unwrap_or(store::DEFAULT_MODEL);
    let path = PathBuf::from(arg);
    if path.exists() {
        return Ok(path);
    }
    if store::CATALOG.iter().any(|m| m.name == arg) {
        let outcome = store::pull(arg, &mut std::io::stderr()).map_err(|e| e.to_string())?;
        return Ok(outcome.path().to_path_buf());
    }
    Err(format!(
        "`{arg}` is neither a file, a directory nor a known model (known: {}; \
         for random weights of a preset, add --load-format dummy)",
        store::CATALOG
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
