//! The hyper-parameters of a decoder-only transformer, read from GGUF
//! metadata (`{arch}.*` keys).

use super::error::{ModelError, Result};
use super::gguf::GgufFile;
use crate::backend::{Heads, Rope, RopeStyle};

/// Architectures this build runs from GGUF files.
pub const SUPPORTED_ARCHITECTURES: &str = "llama";

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub architecture: String,
    pub n_layers: usize,
    pub d_model: usize,
    pub ffn_dim: usize,
    pub heads: Heads,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rms_eps: f32,
    pub rope: Rope,
}

impl ModelConfig {
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let arch = f.get_str("general.architecture")?.to_owned();
        if arch != "llama" {
            return Err(ModelError::UnsupportedArchitecture {
                path: f.path().to_path_buf(),
                arch,
                supported: SUPPORTED_ARCHITECTURES,
            });
        }
        let key = |k: &str| format!("{arch}.{k}");
        let d_model = f.get_u64(&key("embedding_length"))? as usize;
        let n_heads = f.get_u64(&key("attention.head_count"))? as usize;
        let n_kv_heads = f.get_u64_or(&key("attention.head_count_kv"), n_heads as u64)? as usize;
        let malformed = |detail: String| ModelError::Malformed {
            path: f.path().to_path_buf(),
            detail,
        };
        if n_heads == 0 || n_kv_heads == 0 || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(malformed(format!(
                "{n_heads} attention heads cannot share {n_kv_heads} key/value heads"
            )));
        }
        let head_dim =
            f.get_u64_or(&key("attention.key_length"), (d_model / n_heads) as u64)? as usize;
        let rope_dims = f.get_u64_or(&key("rope.dimension_count"), head_dim as u64)? as usize;
        if rope_dims > head_dim || !rope_dims.is_multiple_of(2) {
            return Err(malformed(format!(
                "rope dimension {rope_dims} does not fit head size {head_dim}"
            )));
        }
        let theta = f.get_f64_or(&key("rope.freq_base"), 10000.0)? as f32;
        if let Some(kind) = f.get_str_opt(&key("rope.scaling.type"))? {
            if kind != "none" {
                return Err(malformed(format!(
                    "rope scaling `{kind}` is not supported yet"
                )));
            }
        }
        let vocab_size = match f.get(&key("vocab_size")) {
            Some(_) => f.get_u64(&key("vocab_size"))? as usize,
            None => f.get_str_array("tokenizer.ggml.tokens")?.len(),
        };
        Ok(ModelConfig {
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
            rope: Rope::new(RopeStyle::Interleaved, rope_dims, theta),
            architecture: arch,
        })
    }
}
