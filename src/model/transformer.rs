//! The decoder of every supported family, written once against `Backend`:
//! pre-norm attention with rotary positions and grouped-query heads,
//! SwiGLU feed-forward, tied or untied output projection. Qwen2 adds
//! biases to q/k/v; Qwen3 normalises queries and keys per head.

use super::config::ModelConfig;
use super::error::Result;
use super::rope_scaling;
use super::tensors::{LayerWeight as L, TensorStore, Weight, Weights};
use crate::backend::{Backend, KvBatch, KvDtype, KvShape};

struct Layer<B: Backend> {
    attn_norm: B::Vector,
    wq: B::Matrix,
    wk: B::Matrix,
    wv: B::Matrix,
    wo: B::Matrix,
    /// q, k, v biases (Qwen2).
    bias: Option<[B::Vector; 3]>,
    /// Output-projection bias, where the checkpoint has one.
    o_bias: Option<B::Vector>,
    /// Per-head q and k norms (Qwen3).
    qk_norm: Option<[B::Vector; 2]>,
    ffn_norm: B::Vector,
    w_gate: B::Matrix,
    w_up: B::Matrix,
    w_down: B::Matrix,
}

pub struct Transformer<B: Backend> {
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

impl<B: Backend> Transformer<B> {
    pub fn load(store: &dyn TensorStore, mut config: ModelConfig, backend: &B) -> Result<Self> {
        let w = Weights { store, backend };
        let c = &config;
        let (d, kv, ffn, hd) = (c.d_model, c.heads.kv_dim(), c.ffn_dim, c.heads.head_dim);
        let qd = c.heads.q_dim();
        let layers = (0..c.n_layers)
            .map(|i| {
                let at = |l| Weight::Layer(i, l);
                Ok(Layer {
                    attn_norm: w.vector(at(L::AttnNorm), d)?,
                    wq: w.matrix(at(L::Q), qd, d)?,
                    wk: w.matrix(at(L::K), kv, d)?,
                    wv: w.matrix(at(L::V), kv, d)?,
                    wo: w.matrix(at(L::O), d, qd)?,
                    bias: if c.attention_bias {
                        Some([
                            w.vector(at(L::QBias), qd)?,
                            w.vector(at(L::KBias), kv)?,
                            w.vector(at(L::VBias), kv)?,
                        ])
                    } else {
                        None
                    },
                    o_bias: w.vector_opt(at(L::OBias), d)?,
                    qk_norm: if c.qk_norm {
                        Some([w.vector(at(L::QNorm), hd)?, w.vector(at(L::KNorm), hd)?])
                    } else {
                        None
                    },
                    ffn_norm: w.vector(at(L::FfnNorm), d)?,
                    w_gate: w.matrix(at(L::Gate), ffn, d)?,
                    w_up: w.matrix(at(L::Up), ffn, d)?,
                    w_down: w.matrix(at(L::Down), d, ffn)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // A file may carry an output projection even when the config ties
        // it; the file wins, as in llama.cpp.
        let output = if !c.tied_embeddings || w.has(Weight::Output)? {
            Some(w.matrix(Weight::Output, c.vocab_size, d)?)
        } else {
            None
        };
        let embedding = w.matrix(Weight::Embedding, c.vocab_size, d)?;
        let final_norm = w.vector(Weight::OutputNorm, d)?;
        if let Some(factors) = w.floats(Weight::RopeFreqs, config.rope.dims / 2)? {
            rope_scaling::apply_factors(&mut config.rope, &factors);
        }
        Ok(Transformer {
            embedding,
            final_norm,
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

    /// The shape of a KV block pool for this model.
    pub fn kv_shape(&self, blocks: usize, block_size: usize, dtype: KvDtype) -> KvShape {
        KvShape {
            layers: self.config.n_layers,
            blocks,
            block_size,
            kv_dim: self.config.heads.kv_dim(),
            dtype,
        }
    }

    /// Runs one step: `ids`, one per row of `batch` (rows of any number
    /// of sequences, at their positions), through the model. Their keys
    /// and values go to the slots `batch` names in `cache`; returns the
    /// logits of the rows listed in `logit_rows`, row-major
    /// (`logit_rows.len()` × vocabulary).
    pub fn forward(
        &self,
        b: &B,
        s: &mut Scratch<B>,
        cache: &mut B::KvCache,
        ids: &[u32],
        batch: &KvBatch,
        logit_rows: &[usize],
    ) -> Vec<f32> {
        match self.step(b, s, cache, ids, batch, logit_rows, false) {
            StepOutput::Logits(l) => l,
            StepOutput::Greedy(_) => Vec::new(),
        }
    }

    /// `forward`, but when `greedy` and the backend can, each logit row's
    /// argmax comes back instead of the row.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        b: &B,
        s: &mut Scratch<B>,
        cache: &mut B::KvCache,
        ids: &[u32],
        batch: &KvBatch,
        logit_rows: &[usize],
        greedy: bool,
    ) -> StepOutput {
        let c = &self.config;
        assert_eq!(ids.len(), batch.rows(), "one token per row");
        let positions = &batch.positions;
        b.embed(&self.embedding, ids, &mut s.x);
        for (l, layer) in self.layers.iter().enumerate() {
            b.rms_norm(&s.x, &layer.attn_norm, c.rms_eps, &mut s.normed);
            b.matmul(&s.normed, &layer.wq, &mut s.q);
            b.matmul(&s.normed, &layer.wk, &mut s.k);
            b.matmul(&s.normed, &layer.wv, &mut s.v);
            if let Some([bq, bk, bv]) = &layer.bias {
                b.add_bias(&mut s.q, bq);
                b.add_bias(&mut s.k, bk);
                b.add_bias(&mut s.v, bv);
            }
            if let Some([nq, nk]) = &layer.qk_norm {
                b.head_norm(&mut s.q, nq, c.rms_eps);
                b.head_norm(&mut s.k, nk, c.rms_eps);
            }
            b.rope(&mut s.q, positions, c.heads.head_dim, &c.rope);
            b.rope(&mut s.k, positions, c.heads.head_dim, &c.rope);
            b.attention(&s.q, &s.k, &s.v, cache, l, batch, c.heads, &mut s.attn);
            b.matmul(&s.attn, &layer.wo, &mut s.proj);
            if let Some(bo) = &layer.o_bias {
                b.add_bias(&mut s.proj, bo);
            }
            b.add(&mut s.x, &s.proj);

            b.rms_norm(&s.x, &layer.ffn_norm, c.rms_eps, &mut s.normed);
            b.matmul(&s.normed, &layer.w_gate, &mut s.gate);
            b.matmul(&s.normed, &layer.w_up, &mut s.up);
            b.silu_mul(&mut s.gate, &s.up);
            b.matmul(&s.gate, &layer.w_down, &mut s.proj);
            b.add(&mut s.x, &s.proj);
        }
        if logit_rows.is_empty() {
            return StepOutput::Logits(Vec::new());
        }
        b.gather_rows(&s.x, logit_rows, &mut s.picked);
        b.rms_norm(&s.picked, &self.final_norm, c.rms_eps, &mut s.normed);
        let head = self.output.as_ref().unwrap_or(&self.embedding);
        b.matmul(&s.normed, head, &mut s.logits);
        if greedy {
            if let Some(ids) = b.argmax_rows(&s.logits) {
                return StepOutput::Greedy(ids);
            }
        }
        StepOutput::Logits(b.read(&s.logits))
    }
}

/// What a step hands back for its logit rows.
pub enum StepOutput {
    /// Row-major logits, one row per logit row.
    Logits(Vec<f32>),
    /// Each logit row's argmax (ties to the lowest id).
    Greedy(Vec<u32>),
}

/// One sequence run outside the engine, its blocks in order: tools and
/// tests that score or decode a single sequence.
pub struct OneSequence<B: Backend> {
    cache: B::KvCache,
    scratch: Scratch<B>,
    len: usize,
}

/// Block size of a lone sequence: any works, one block per 16 positions
/// as the engine's default.
const LONE_BLOCK: usize = 16;

impl<B: Backend> OneSequence<B> {
    /// Room for `capacity` positions.
    pub fn new(m: &Transformer<B>, b: &B, capacity: usize) -> Result<Self> {
        let shape = m.kv_shape(capacity.div_ceil(LONE_BLOCK), LONE_BLOCK, KvDtype::F32);
        Ok(OneSequence {
            cache: b.kv_cache(shape)?,
            scratch: m.scratch(b),
            len: 0,
        })
    }

    /// Appends `ids` and returns the logits of `logit_rows` (indices into
    /// `ids`), as `Transformer::forward` does.
    pub fn push(
        &mut self,
        m: &Transformer<B>,
        b: &B,
        ids: &[u32],
        logit_rows: &[usize],
    ) -> Vec<f32> {
        let batch = KvBatch::contiguous(LONE_BLOCK, self.len, ids.len());
        self.len += ids.len();
        m.forward(
            b,
            &mut self.scratch,
            &mut self.cache,
            ids,
            &batch,
            logit_rows,
        )
    }
}

#[cfg(test)]
impl<B: Backend> Transformer<B> {
    /// The logits after `ids`, run as one fresh sequence (for tests).
    pub fn last_logits(&self, b: &B, ids: &[u32]) -> Vec<f32> {
        let mut seq = OneSequence::new(self, b, ids.len()).expect("a small test cache");
        seq.push(self, b, ids, &[ids.len() - 1])
    }
}
