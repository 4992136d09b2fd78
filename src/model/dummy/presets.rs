//! Known model shapes for dummy weights: a tiny one for tests, and the
//! geometry of popular checkpoints for load tests and benchmarks.

use crate::backend::{Heads, Rope, RopeStyle, WeightFormat};
use crate::model::config::{Architecture, ModelConfig};
use crate::model::rope_scaling::RopeScaling;

pub struct Preset {
    pub name: &'static str,
    pub architecture: Architecture,
    pub n_layers: usize,
    pub d_model: usize,
    pub ffn_dim: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub vocab_size: usize,
    pub context_length: usize,
    pub rope_theta: f32,
    pub rms_eps: f32,
    pub tied_embeddings: bool,
    /// Llama 3.1 rope scaling (factor, original context).
    pub llama3_scaling: Option<(f32, f32)>,
    /// The weight format when none is asked for.
    pub format: WeightFormat,
}

const LLAMA3_VOCAB: usize = 128256;
const QWEN_VOCAB: usize = 151936;

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "tiny",
        architecture: Architecture::Llama,
        n_layers: 2,
        d_model: 64,
        ffn_dim: 128,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 16,
        vocab_size: 256,
        context_length: 4096,
        rope_theta: 10000.0,
        rms_eps: 1e-5,
        tied_embeddings: false,
        llama3_scaling: None,
        format: WeightFormat::F32,
    },
    Preset {
        name: "smollm2-135m",
        architecture: Architecture::Llama,
        n_layers: 30,
        d_model: 576,
        ffn_dim: 1536,
        n_heads: 9,
        n_kv_heads: 3,
        head_dim: 64,
        vocab_size: 49152,
        context_length: 8192,
        rope_theta: 100000.0,
        rms_eps: 1e-5,
        tied_embeddings: true,
        llama3_scaling: None,
        format: WeightFormat::Bf16,
    },
    Preset {
        name: "qwen2.5-0.5b",
        architecture: Architecture::Qwen2,
        n_layers: 24,
        d_model: 896,
        ffn_dim: 4864,
        n_heads: 14,
        n_kv_heads: 2,
        head_dim: 64,
        vocab_size: QWEN_VOCAB,
        context_length: 32768,
        rope_theta: 1000000.0,
        rms_eps: 1e-6,
        tied_embeddings: true,
        llama3_scaling: None,
        format: WeightFormat::Bf16,
    },
    Preset {
        name: "qwen3-0.6b",
        architecture: Architecture::Qwen3,
        n_layers: 28,
        d_model: 1024,
        ffn_dim: 3072,
        n_heads: 16,
        n_kv_heads: 8,
        head_dim: 128,
        vocab_size: QWEN_VOCAB,
        context_length: 40960,
        rope_theta: 1000000.0,
        rms_eps: 1e-6,
        tied_embeddings: true,
        llama3_scaling: None,
        format: WeightFormat::Bf16,
    },
    Preset {
        name: "llama-3.2-1b",
        architecture: Architecture::Llama,
        n_layers: 16,
        d_model: 2048,
        ffn_dim: 8192,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 64,
        vocab_size: LLAMA3_VOCAB,
        context_length: 131072,
        rope_theta: 500000.0,
        rms_eps: 1e-5,
        tied_embeddings: true,
        llama3_scaling: Some((32.0, 8192.0)),
        format: WeightFormat::Bf16,
    },
    Preset {
        name: "llama-3.1-8b",
        architecture: Architecture::Llama,
        n_layers: 32,
        d_model: 4096,
        ffn_dim: 14336,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 128,
        vocab_size: LLAMA3_VOCAB,
        context_length: 131072,
        rope_theta: 500000.0,
        rms_eps: 1e-5,
        tied_embeddings: false,
        llama3_scaling: Some((8.0, 8192.0)),
        format: WeightFormat::Bf16,
    },
    Preset {
        name: "mistral-7b",
        architecture: Architecture::Mistral,
        n_layers: 32,
        d_model: 4096,
        ffn_dim: 14336,
        n_heads: 32,
        n_kv_heads: 8,
        head_dim: 128,
        vocab_size: 32768,
        context_length: 32768,
        rope_theta: 1000000.0,
        rms_eps: 1e-5,
        tied_embeddings: false,
        llama3_scaling: None,
        format: WeightFormat::Bf16,
    },
];

pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Preset {
    pub fn config(&self) -> ModelConfig {
        let mut rope = Rope::new(RopeStyle::Halves, self.head_dim, self.rope_theta);
        if let Some((factor, original_context)) = self.llama3_scaling {
            RopeScaling::Llama3 {
                factor,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_context,
            }
            .apply(&mut rope);
        }
        ModelConfig {
            architecture: self.architecture,
            n_layers: self.n_layers,
            d_model: self.d_model,
            ffn_dim: self.ffn_dim,
            heads: Heads {
                n_heads: self.n_heads,
                n_kv_heads: self.n_kv_heads,
                head_dim: self.head_dim,
            },
            vocab_size: self.vocab_size,
            context_length: self.context_length,
            rms_eps: self.rms_eps,
            rope,
            attention_bias: self.architecture == Architecture::Qwen2,
            qk_norm: self.architecture == Architecture::Qwen3,
            tied_embeddings: self.tied_embeddings,
        }
    }
}
