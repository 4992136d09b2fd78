//! The operations a forward pass needs, behind one trait, and the backends
//! that implement them. The model is written once against [`Backend`];
//! `cpu/` is the reference implementation.

pub mod bytes;
pub mod cpu;
pub mod cuda;
pub mod device;
pub mod kv;
pub mod quant;
pub mod testing;

pub use bytes::SharedBytes;
pub use kv::{KvBatch, KvDtype, KvShape};
pub use quant::WeightFormat;

/// The greedy choice of a row: its highest value, the lowest index on a
/// tie. The reference of every backend's `argmax_rows`.
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// How rotary position embedding pairs dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs (x₀,x₁),(x₂,x₃)… — ggml's "normal" mode, which Llama
    /// GGUF files use (their Q/K rows are permuted at conversion).
    Interleaved,
    /// Halves (xᵢ, xᵢ₊d/2) — GPT-NeoX mode (Qwen2, Hugging Face Llama).
    Halves,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    pub style: RopeStyle,
    /// Dimensions rotated, from the start of each head.
    pub dims: usize,
    /// Inverse frequency of each rotated pair, already scaled.
    pub inv_freq: Vec<f32>,
}

impl Rope {
    /// Plain RoPE with base θ, computed the way the reference
    /// implementation (Hugging Face) does it in f32.
    pub fn new(style: RopeStyle, dims: usize, theta: f32) -> Self {
        let inv_freq = (0..dims / 2)
            .map(|i| 1.0 / theta.powf((2 * i) as f32 / dims as f32))
            .collect();
        Rope {
            style,
            dims,
            inv_freq,
        }
    }
}

/// Attention geometry of one layer.
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
}

impl Heads {
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("weight matrix: {0}")]
    Matrix(String),
    #[error("not enough memory for {what}: {detail}")]
    OutOfMemory { what: &'static str, detail: String },
    #[error("device failure: {0}")]
    Device(String),
}

/// The operations of a decoder-only transformer step over T tokens. Buffers
/// hold f32 activations, one row per token.
pub trait Backend: Send + Sync + 'static {
    type Matrix: Send + Sync;
    type Vector: Send + Sync;
    type Buffer: Send;
    type KvCache: Send;

    fn describe(&self) -> String;

    fn matrix(
        &self,
        format: WeightFormat,
        rows: usize,
        cols: usize,
        bytes: SharedBytes,
    ) -> Result<Self::Matrix, BackendError>;
    fn vector(&self, values: Vec<f32>) -> Self::Vector;
    /// A buffer of `rows` × `cols`; `resize` changes its row count in place.
    fn buffer(&self, rows: usize, cols: usize) -> Self::Buffer;
    fn resize(&self, buf: &mut Self::Buffer, rows: usize);
    /// A pool of KV blocks of the given shape.
    fn kv_cache(&self, shape: KvShape) -> Result<Self::KvCache, BackendError>;

    /// out[i] = table[ids[i]]
    fn embed(&self, table: &Self::Matrix, ids: &[u32], out: &mut Self::Buffer);
    fn rms_norm(&self, x: &Self::Buffer, weight: &Self::Vector, eps: f32, out: &mut Self::Buffer);
    /// out = x · wᵀ
    fn matmul(&self, x: &Self::Buffer, w: &Self::Matrix, out: &mut Self::Buffer);
    /// Rotates the first `rope.dims` of every head of every row.
    fn rope(&self, x: &mut Self::Buffer, positions: &[u32], head_dim: usize, rope: &Rope);
    /// Stores the step's keys and values of `layer` in the slots `batch`
    /// gives each row, then computes causal attention of every row's query
    /// over its own sequence's cached positions up to its own.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        q: &Self::Buffer,
        k: &Self::Buffer,
        v: &Self::Buffer,
        cache: &mut Self::KvCache,
        layer: usize,
        batch: &KvBatch,
        heads: Heads,
        out: &mut Self::Buffer,
    );
    /// x[row] += bias, for every row.
    fn add_bias(&self, x: &mut Self::Buffer, bias: &Self::Vector);
    /// RMS-normalises every `weight.len()`-wide slice of every row (each
    /// head) in place, then scales it by `weight`.
    fn head_norm(&self, x: &mut Self::Buffer, weight: &Self::Vector, eps: f32);
    /// gate = silu(gate) · up
    fn silu_mul(&self, gate: &mut Self::Buffer, up: &Self::Buffer);
    /// x += y
    fn add(&self, x: &mut Self::Buffer, y: &Self::Buffer);
    /// out = the given rows of x
    fn gather_rows(&self, x: &Self::Buffer, rows: &[usize], out: &mut Self::Buffer);
    /// Copies a buffer to host memory, row-major.
    fn read(&self, x: &Self::Buffer) -> Vec<f32>;
    /// Each row's largest element (ties to the lowest index), found where
    /// the buffer lives, so that a greedy step reads back one id per row
    /// instead of a row of logits; None where reading the rows costs no
    /// more (the CPU) or the device failed.
    fn argmax_rows(&self, _x: &Self::Buffer) -> Option<Vec<u32>> {
        None
    }
    /// Whether every operation so far ran: a device backend whose launch
    /// failed says so here (its operations cannot return errors).
    fn check(&self) -> Result<(), BackendError> {
        Ok(())
    }
}
