//! A model's hyper-parameters from a Hugging Face `config.json`. Both the
//! classic keys (`rope_theta`, `rope_scaling`) and transformers 5's
//! `rope_parameters` are read.

use crate::backend::{Heads, Rope, RopeStyle};
use crate::model::config::{Architecture, ModelConfig, SUPPORTED_ARCHITECTURES};
use crate::model::error::{ModelError, Result};
use crate::model::rope_scaling::RopeScaling;
use serde_json::Value;
use std::path::Path;

/// What `config.json` says beyond the forward pass.
pub struct HfConfig {
    pub model: ModelConfig,
    /// `bos_token_id` / `eos_token_id` (a number or a list).
    pub bos_id: Option<u32>,
    pub eos_ids: Vec<u32>,
    /// The RoPE base and scaling as the config gives them (already applied
    /// to `model.rope`); a GGUF file records them separately.
    pub rope_theta: f32,
    pub rope_scaling: Option<RopeScaling>,
}

pub fn parse(path: &Path, text: &str) -> Result<HfConfig> {
    let bad = |detail: String| ModelError::Malformed {
        path: path.to_path_buf(),
        detail,
    };
    let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let model_type = v["model_type"].as_str().unwrap_or_default();
    let Some(architecture) = Architecture::from_name(model_type) else {
        let named = v["architectures"]
            .get(0)
            .and_then(Value::as_str)
            .unwrap_or(model_type);
        return Err(ModelError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            arch: if named.is_empty() {
                "(no model_type)".into()
            } else {
                named.to_owned()
            },
            supported: SUPPORTED_ARCHITECTURES,
        });
    };
    if let Some(q) = v.get("quantization_config").filter(|q| !q.is_null()) {
        let method = q["quant_method"].as_str().unwrap_or("unknown");
        return Err(bad(format!(
            "pre-quantized checkpoints (quant_method `{method}`) are not supported; \
             load the f32/f16/bf16 checkpoint, or a GGUF file"
        )));
    }
    if let Some(act) = v["hidden_act"].as_str().filter(|a| *a != "silu") {
        return Err(bad(format!(
            "hidden_act `{act}` is not supported (only silu)"
        )));
    }
    if v["mlp_bias"] == true {
        return Err(bad(
            "mlp_bias is not supported (feed-forward layers without biases only)".into(),
        ));
    }
    let int = |k: &str| -> Result<usize> {
        v[k].as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| bad(format!("`{k}` is missing or not a whole number")))
    };
    let int_or = |k: &str, d: usize| v[k].as_u64().map_or(d, |n| n as usize);
    let d_model = int("hidden_size")?;
    let n_heads = int("num_attention_heads")?;
    let n_kv_heads = int_or("num_key_value_heads", n_heads);
    let head_dim = int_or("head_dim", d_model / n_heads.max(1));
    let partial = v["partial_rotary_factor"].as_f64().unwrap_or(1.0);
    let rope_dims = (head_dim as f64 * partial) as usize;

    // transformers 5 groups theta and scaling under `rope_parameters`.
    let params = v.get("rope_parameters").filter(|p| p.is_object());
    let theta = params
        .and_then(|p| p["rope_theta"].as_f64())
        .or_else(|| v["rope_theta"].as_f64())
        .unwrap_or(10000.0) as f32;
    let mut rope = Rope::new(RopeStyle::Halves, rope_dims, theta);
    let scaling = params
        .or_else(|| v.get("rope_scaling").filter(|s| s.is_object()))
        .map(|s| rope_scaling(s, int_or("max_position_embeddings", 0)))
        .transpose()
        .map_err(bad)?
        .flatten();
    if let Some(s) = &scaling {
        s.apply(&mut rope);
    }

    let mut context_length = int_or("max_position_embeddings", 4096);
    let window_on = match architecture {
        Architecture::Qwen2 | Architecture::Qwen3 => v["use_sliding_window"] == true,
        _ => true,
    };
    if let Some(window) = v["sliding_window"].as_u64().map(|w| w as usize) {
        if window_on && window < context_length {
            tracing::warn!(
                window,
                context_length,
                "sliding-window attention is not implemented: the context is capped at the window, \
                 where full attention is exact"
            );
            context_length = window;
        }
    }
    let model = ModelConfig {
        architecture,
        n_layers: int("num_hidden_layers")?,
        d_model,
        ffn_dim: int("intermediate_size")?,
        heads: Heads {
            n_heads,
            n_kv_heads,
            head_dim,
        },
        vocab_size: int("vocab_size")?,
        context_length,
        rms_eps: v["rms_norm_eps"].as_f64().unwrap_or(1e-6) as f32,
        rope,
        // Qwen2 always has q/k/v biases; the others say so in the config.
        attention_bias: architecture == Architecture::Qwen2 || v["attention_bias"] == true,
        qk_norm: architecture == Architecture::Qwen3,
        tied_embeddings: v["tie_word_embeddings"] == true,
    };
    model.validate(path)?;
    Ok(HfConfig {
        model,
        bos_id: v["bos_token_id"].as_u64().map(|n| n as u32),
        eos_ids: token_ids(&v["eos_token_id"]),
        rope_theta: theta,
        rope_scaling: scaling,
    })
}

/// A token id or a list of them.
pub fn token_ids(v: &Value) -> Vec<u32> {
    match v {
        Value::Number(n) => n.as_u64().map(|n| n as u32).into_iter().collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|n| n as u32)
            .collect(),
        _ => Vec::new(),
    }
}

fn rope_scaling(s: &Value, max_positions: usize) -> Result<Option<RopeScaling>, String> {
    let kind = s["rope_type"]
        .as_str()
        .or_else(|| s["type"].as_str())
        .unwrap_or("default");
    let num = |k: &str| {
        s[k].as_f64()
            .map(|x| x as f32)
            .ok_or_else(|| format!("rope scaling `{kind}` needs `{k}`"))
    };
    Ok(match kind {
        "default" => None,
        "linear" => Some(RopeScaling::Linear {
            factor: num("factor")?,
        }),
        "llama3" => Some(RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_context: s["original_max_position_embeddings"]
                .as_f64()
                .map_or(max_positions as f32, |x| x as f32),
        }),
        other => {
            return Err(format!(
                "rope scaling `{other}` is not supported (supported: default, linear, llama3)"
            ))
        }
    })
}
