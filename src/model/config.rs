//! The hyper-parameters of a decoder-only transformer, whatever file they
//! come from (GGUF metadata in `gguf/config.rs`, Hugging Face config.json in
//! `hf/config.rs`, a preset in `dummy/`).

use super::error::{ModelError, Result};
use crate::backend::{Heads, Rope};
use std::path::Path;

/// The transformer families this build runs. They share one forward pass
/// (`transformer.rs`); what differs is a handful of switches below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
}

/// Named in "not supported" errors.
pub const SUPPORTED_ARCHITECTURES: &str = "llama, mistral, qwen2, qwen3 \
     (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)";

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
        }
    }

    /// From a GGUF `general.architecture` or an HF `model_type`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "llama" => Architecture::Llama,
            "mistral" => Architecture::Mistral,
            "qwen2" => Architecture::Qwen2,
            "qwen3" => Architecture::Qwen3,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub n_layers: usize,
    pub d_model: usize,
    pub ffn_dim: usize,
    pub heads: Heads,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rms_eps: f32,
    pub rope: Rope,
    /// The q, k and v projections add a bias (Qwen2).
    pub attention_bias: bool,
    /// Queries and keys are RMS-normalised per head before RoPE (Qwen3).
    pub qk_norm: bool,
    /// The output projection is the embedding table.
    pub tied_embeddings: bool,
}

impl ModelConfig {
    /// The checks every source shares; `origin` names the file in errors.
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let bad = |detail: String| {
            Err(ModelError::Malformed {
                path: origin.to_path_buf(),
                detail,
            })
        };
        let h = &self.heads;
        if h.n_heads == 0 || h.n_kv_heads == 0 || !h.n_heads.is_multiple_of(h.n_kv_heads) {
            return bad(format!(
                "{} attention heads cannot share {} key/value heads",
                h.n_heads, h.n_kv_heads
            ));
        }
        if h.head_dim == 0 || self.rope.dims > h.head_dim || !self.rope.dims.is_multiple_of(2) {
            return bad(format!(
                "rope dimension {} does not fit head size {}",
                self.rope.dims, h.head_dim
            ));
        }
        for (what, n) in [
            ("layers", self.n_layers),
            ("hidden size", self.d_model),
            ("feed-forward size", self.ffn_dim),
            ("vocabulary", self.vocab_size),
            ("context length", self.context_length),
        ] {
            if n == 0 {
                return bad(format!("{what} is zero"));
            }
        }
        // The CPU kernels work in blocks of 32 along every matrix row.
        for (what, n) in [
            ("hidden size", self.d_model),
            ("feed-forward size", self.ffn_dim),
            ("attention width (heads × head size)", h.q_dim()),
        ] {
            if !n.is_multiple_of(32) {
                return bad(format!("{what} {n} is not a multiple of 32"));
            }
        }
        Ok(())
    }
}
