//! A model's hyper-parameters from GGUF metadata (`{arch}.*` keys), as
//! llama.cpp's converter writes them.

use super::GgufFile;
use crate::backend::{Heads, Rope, RopeStyle};
use crate::model::config::{Architecture, ModelConfig, SUPPORTED_ARCHITECTURES};
use crate::model::error::{ModelError, Result};
use crate::model::rope_scaling::RopeScaling;

impl ModelConfig {
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let name = f.get_str("general.architecture")?;
        // Mistral converts to `llama`; the others keep their names.
        let architecture = Architecture::from_name(name)
            .filter(|a| *a != Architecture::Mistral)
            .ok_or_else(|| ModelError::UnsupportedArchitecture {
                path: f.path().to_path_buf(),
                arch: name.to_owned(),
                supported: SUPPORTED_ARCHITECTURES,
            })?;
        let key = |k: &str| format!("{name}.{k}");
        let malformed = |detail: String| ModelError::Malformed {
            path: f.path().to_path_buf(),
            detail,
        };
        let d_model = f.get_u64(&key("embedding_length"))? as usize;
        let n_heads = f.get_u64(&key("attention.head_count"))? as usize;
        let n_kv_heads = f.get_u64_or(&key("attention.head_count_kv"), n_heads as u64)? as usize;
        let head_dim = f.get_u64_or(
            &key("attention.key_length"),
            (d_model / n_heads.max(1)) as u64,
        )? as usize;
        let rope_dims = f.get_u64_or(&key("rope.dimension_count"), head_dim as u64)? as usize;
        let theta = f.get_f64_or(&key("rope.freq_base"), 10000.0)? as f32;
        // llama.cpp permutes Llama's q/k rows so that rotated pairs sit
        // side by side; Qwen files keep the halves layout (NEOX mode).
        let style = match architecture {
            Architecture::Llama | Architecture::Mistral => RopeStyle::Interleaved,
            Architecture::Qwen2 | Architecture::Qwen3 => RopeStyle::Halves,
        };
        let mut rope = Rope::new(style, rope_dims, theta);
        match f.get_str_opt(&key("rope.scaling.type"))? {
            None | Some("none") => {}
            Some("linear") => {
                let factor = f.get_f64_or(&key("rope.scaling.factor"), 1.0)? as f32;
                RopeScaling::Linear { factor }.apply(&mut rope);
            }
            Some(kind) => {
                return Err(malformed(format!(
                    "rope scaling `{kind}` is not supported (supported: linear, and llama3 \
                     through a rope_freqs tensor)"
                )))
            }
        }
        let vocab_size = match f.get(&key("vocab_size")) {
            Some(_) => f.get_u64(&key("vocab_size"))? as usize,
            None => f.get_str_array("tokenizer.ggml.tokens")?.len(),
        };
        let config = ModelConfig {
            architecture,
            n_layers: f.get_u64(&key("block_count"))? as usize,
            d_model,
            ffn_dim: f.get_u64(&key("feed_forward_length"))? as usize,
            heads: Heads {
                n_heads,
                n_kv_heads,
                head_dim,
            },
            vocab_size,
            context_length: f.get_u64_or(&key("context_length"), 2048)? as usize,
            rms_eps: f.get_f64_or(&key("attention.layer_norm_rms_epsilon"), 1e-5)? as f32,
            rope,
            attention_bias: f.tensor_info("blk.0.attn_q.bias").is_some(),
            qk_norm: f.tensor_info("blk.0.attn_q_norm.weight").is_some(),
            tied_embeddings: f.tensor_info("output.weight").is_none(),
        };
        config.validate(f.path())?;
        Ok(config)
    }
}
