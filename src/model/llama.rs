//! The Llama decoder, written once against `Backend`: pre-norm attention
//! with rotary positions and grouped-query heads, SwiGLU feed-forward, tied
//! or untied output projection.

use super::config::ModelConfig;
use super::error::Result;
use super::gguf::GgufFile;
use super::weights::TensorSource;
use crate::backend::Backend;

struct Layer<B: Backend> {
    attn_norm: B::Vector,
    wq: B::Matrix,
    wk: B::Matrix,
    wv: B::Matrix,
    wo: B::Matrix,
    ffn_norm: B::Vector,
    w_gate: B::Matrix,
    w_up: B::Matrix,
    w_down: B::Matrix,
}

pub struct Llama<B: Backend> {
    pub config: ModelConfig,
    embedding: B::Matrix,
    layers: Vec<Layer<B>>,
    final_norm: B::Vector,
    /// None when the output projection is tied to the embedding.
    output: Option<B::Matrix>,
}

/// Activation buffers reused from step to step.
pub struct Scratch<B: Backend> {
    x: B::Buffer,
    normed: B::Buffer,
    q: B::Buffer,
    k: B::Buffer,
    v: B::Buffer,
    attn: B::Buffer,
    proj: B::Buffer,
    gate: B::Buffer,
    up: B::Buffer,
    picked: B::Buffer,
    logits: B::Buffer,
}

impl<B: Backend> Llama<B> {
    pub fn load(file: &GgufFile, config: ModelConfig, backend: &B) -> Result<Self> {
        let src = TensorSource { file, backend };
        let c = &config;
        let (d, kv, ffn) = (c.d_model, c.heads.kv_dim(), c.ffn_dim);
        let qd = c.heads.q_dim();
        let layers = (0..c.n_layers)
            .map(|i| {
                let n = |s: &str| format!("blk.{i}.{s}.weight");
                Ok(Layer {
                    attn_norm: src.vector(&n("attn_norm"), d)?,
                    wq: src.matrix(&n("attn_q"), qd, d)?,
                    wk: src.matrix(&n("attn_k"), kv, d)?,
                    wv: src.matrix(&n("attn_v"), kv, d)?,
                    wo: src.matrix(&n("attn_output"), d, qd)?,
                    ffn_norm: src.vector(&n("ffn_norm"), d)?,
                    w_gate: src.matrix(&n("ffn_gate"), ffn, d)?,
                    w_up: src.matrix(&n("ffn_up"), ffn, d)?,
                    w_down: src.matrix(&n("ffn_down"), d, ffn)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = if src.has("output.weight") {
            Some(src.matrix("output.weight", c.vocab_size, d)?)
        } else {
            None
        };
        Ok(Llama {
            embedding: src.matrix("token_embd.weight", c.vocab_size, d)?,
            final_norm: src.vector("output_norm.weight", d)?,
            layers,
            output,
            config,
        })
    }

    pub fn scratch(&self, backend: &B) -> Scratch<B> {
        let c = &self.config;
        let buf = |cols| backend.buffer(0, cols);
        Scratch {
            x: buf(c.d_model),
            normed: buf(c.d_model),
            q: buf(c.heads.q_dim()),
            k: buf(c.heads.kv_dim()),
            v: buf(c.heads.kv_dim()),
            attn: buf(c.heads.q_dim()),
            proj: buf(c.d_model),
            gate: buf(c.ffn_dim),
            up: buf(c.ffn_dim),
            picked: buf(c.d_model),
            logits: buf(c.vocab_size),
        }
    }

    /// Runs `ids` (at `positions`) through the model, appending their keys
    /// and values to `cache`, and returns the logits of the rows listed in
    /// `logit_rows`, row-major (`logit_rows.len()` × vocabulary).
    pub fn forward(
        &self,
        b: &B,
        s: &mut Scratch<B>,
        cache: &mut B::KvCache,
        ids: &[u32],
        positions: &[u32],
        logit_rows: &[usize],
    ) -> Vec<f32> {
        let c = &self.config;
        b.embed(&self.embedding, ids, &mut s.x);
        for (l, layer) in self.layers.iter().enumerate() {
            b.rms_norm(&s.x, &layer.attn_norm, c.rms_eps, &mut s.normed);
            b.matmul(&s.normed, &layer.wq, &mut s.q);
            b.matmul(&s.normed, &layer.wk, &mut s.k);
            b.matmul(&s.normed, &layer.wv, &mut s.v);
            b.rope(&mut s.q, positions, c.heads.head_dim, &c.rope);
            b.rope(&mut s.k, positions, c.heads.head_dim, &c.rope);
            b.attention(&s.q, &s.k, &s.v, cache, l, positions, c.heads, &mut s.attn);
            b.matmul(&s.attn, &layer.wo, &mut s.proj);
            b.add(&mut s.x, &s.proj);

            b.rms_norm(&s.x, &layer.ffn_norm, c.rms_eps, &mut s.normed);
            b.matmul(&s.normed, &layer.w_gate, &mut s.gate);
            b.matmul(&s.normed, &layer.w_up, &mut s.up);
            b.silu_mul(&mut s.gate, &s.up);
            b.matmul(&s.gate, &layer.w_down, &mut s.proj);
            b.add(&mut s.x, &s.proj);
        }
        if logit_rows.is_empty() {
            return Vec::new();
        }
        b.gather_rows(&s.x, logit_rows, &mut s.picked);
        b.rms_norm(&s.picked, &self.final_norm, c.rms_eps, &mut s.normed);
        let head = self.output.as_ref().unwrap_or(&self.embedding);
        b.matmul(&s.normed, head, &mut s.logits);
        b.read(&s.logits)
    }
}
