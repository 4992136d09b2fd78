//! Weight storage formats the kernels understand, and their scalar
//! dequantization: the reference every SIMD (and later CUDA) kernel is
//! tested against. Block layouts are ggml's, so GGUF tensors are used as
//! they lie in the file, and files we write are read by llama.cpp.
//!
//! - `blocks32.rs`: the 32-value formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1);
//! - `kquants.rs`: the 256-value super-blocks (Q4_K, Q5_K, Q6_K);
//! - `unpack.rs`: every integer format as small integers, scales and
//!   mins per 32 values, the view the integer kernels compute with.

mod blocks32;
mod kquants;
pub mod unpack;

pub use blocks32::{quantize_q4_0, quantize_q4_1, quantize_q8_0};
use half::{bf16, f16};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    F32,
    F16,
    Bf16,
    /// 32 values: f16 scale, 32 × i8. value = q·d
    Q8_0,
    /// 32 values: f16 scale, 16 bytes of nibbles. value = (q − 8)·d
    Q4_0,
    /// 32 values: f16 scale, f16 min, 16 bytes of nibbles. value = q·d + m
    Q4_1,
    /// 32 values: f16 scale, 32 high bits, 16 bytes of nibbles.
    /// value = (q − 16)·d
    Q5_0,
    /// 32 values: f16 scale, f16 min, 32 high bits, nibbles. value = q·d + m
    Q5_1,
    /// 256 values in 8 groups of 32: f16 d and dmin, 6-bit scale and min
    /// per group, nibbles. value = d·sc·q − dmin·m
    Q4K,
    /// Q4_K with a fifth bit per value.
    Q5K,
    /// 256 values in 16 groups of 16: 6-bit values, an i8 scale per
    /// group, f16 d. value = d·sc·(q − 32)
    Q6K,
}

/// Values per block of the 32-value formats; every format's rows are cut
/// in whole blocks of `block_elems`, a multiple of it.
pub const BLOCK: usize = 32;

/// Values per super-block of the K-quants.
pub const QK_K: usize = 256;

impl WeightFormat {
    /// Values per block.
    pub const fn block_elems(self) -> usize {
        match self {
            WeightFormat::Q4K | WeightFormat::Q5K | WeightFormat::Q6K => QK_K,
            _ => BLOCK,
        }
    }

    /// Bytes of one block (`block_elems` values).
    pub const fn block_bytes(self) -> usize {
        match self {
            WeightFormat::F32 => 128,
            WeightFormat::F16 | WeightFormat::Bf16 => 64,
            WeightFormat::Q8_0 => 34,
            WeightFormat::Q4_0 => 18,
            WeightFormat::Q4_1 => 20,
            WeightFormat::Q5_0 => 22,
            WeightFormat::Q5_1 => 24,
            WeightFormat::Q4K => 144,
            WeightFormat::Q5K => 176,
            WeightFormat::Q6K => 210,
        }
    }

    /// Bytes of a row of `cols` values (a whole number of blocks).
    pub fn row_bytes(self, cols: usize) -> usize {
        cols / self.block_elems() * self.block_bytes()
    }

    /// Whether values are stored as integers with per-block scales.
    pub fn is_quantized(self) -> bool {
        !matches!(
            self,
            WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16
        )
    }

    /// Every format, in the order `name` lists them.
    pub const ALL: [WeightFormat; 11] = [
        WeightFormat::F32,
        WeightFormat::F16,
        WeightFormat::Bf16,
        WeightFormat::Q8_0,
        WeightFormat::Q4_0,
        WeightFormat::Q4_1,
        WeightFormat::Q5_0,
        WeightFormat::Q5_1,
        WeightFormat::Q4K,
        WeightFormat::Q5K,
        WeightFormat::Q6K,
    ];

    /// By its lower-case name (`q4_0`, `bf16`, `q4_k` …).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Q8_0 => "q8_0",
            WeightFormat::Q4_0 => "q4_0",
            WeightFormat::Q4_1 => "q4_1",
            WeightFormat::Q5_0 => "q5_0",
            WeightFormat::Q5_1 => "q5_1",
            WeightFormat::Q4K => "q4_k",
            WeightFormat::Q5K => "q5_k",
            WeightFormat::Q6K => "q6_k",
        }
    }

    /// The format a row of `cols` values is stored in when `self` was
    /// asked for. K-quants need rows of whole 256-value super-blocks; for
    /// other widths (SmolLM2's 576, Qwen2.5-0.5B's 896) llama.cpp's
    /// quantizer falls back to a 32-value format of about the same size,
    /// and so do we: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0.
    pub fn for_row_width(self, cols: usize) -> WeightFormat {
        if cols.is_multiple_of(self.block_elems()) {
            return self;
        }
        match self {
            WeightFormat::Q4K => WeightFormat::Q5_0,
            WeightFormat::Q5K => WeightFormat::Q5_1,
            WeightFormat::Q6K => WeightFormat::Q8_0,
            other => other,
        }
    }
}

#[inline]
pub(crate) fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

/// Dequantizes whole blocks: `out.len()` must be a multiple of the
/// format's block and `bytes` hold exactly those blocks. The arithmetic
/// (in f32, in the same order) is the one ggml's reference and the `gguf`
/// Python package use, so dequantized weights agree bit for bit.
pub fn dequantize_scalar(format: WeightFormat, bytes: &[u8], out: &mut [f32]) {
    let (bb, be) = (format.block_bytes(), format.block_elems());
    for (block, dst) in bytes.chunks_exact(bb).zip(out.chunks_exact_mut(be)) {
        match format {
            WeightFormat::F32 => {
                for (o, c) in dst.iter_mut().zip(block.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            WeightFormat::F16 => {
                for (o, c) in dst.iter_mut().zip(block.chunks_exact(2)) {
                    *o = f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
                }
            }
            WeightFormat::Bf16 => {
                for (o, c) in dst.iter_mut().zip(block.chunks_exact(2)) {
                    *o = bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
                }
            }
            WeightFormat::Q8_0 | WeightFormat::Q4_0 | WeightFormat::Q4_1 => {
                blocks32::dequantize_block(format, block, dst)
            }
            WeightFormat::Q5_0
            | WeightFormat::Q5_1
            | WeightFormat::Q4K
            | WeightFormat::Q5K
            | WeightFormat::Q6K => unpack::dequantize_block(format, block, dst),
        }
    }
}

/// Stores whole blocks of values in `format`, as a file would hold them.
pub fn encode(format: WeightFormat, values: &[f32]) -> Vec<u8> {
    match format {
        WeightFormat::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        WeightFormat::F16 | WeightFormat::Bf16 => encode_half(format, values),
        WeightFormat::Q8_0 => quantize_q8_0(values),
        WeightFormat::Q4_0 => quantize_q4_0(values),
        WeightFormat::Q4_1 => quantize_q4_1(values),
        WeightFormat::Q5_0 => blocks32::quantize_q5(values, false),
        WeightFormat::Q5_1 => blocks32::quantize_q5(values, true),
        WeightFormat::Q4K => kquants::quantize_q4k(values),
        WeightFormat::Q5K => kquants::quantize_q5k(values),
        WeightFormat::Q6K => kquants::quantize_q6k(values),
    }
}

/// Stores values as f16 or bf16 (little-endian), for tests and the quantizer.
pub fn encode_half(format: WeightFormat, values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| match format {
            WeightFormat::Bf16 => bf16::from_f32(v).to_bits().to_le_bytes(),
            _ => f16::from_f32(v).to_bits().to_le_bytes(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
