//! Weight storage formats the kernels understand, and their scalar
//! dequantization: the reference every SIMD (and later CUDA) kernel is
//! tested against. Block layouts are ggml's, so GGUF tensors are used as
//! they lie in the file, and files we write are read by llama.cpp.
//!
//! - `format.rs`: the descriptor table of every format;
//! - `blocks32.rs`: the 32-value formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1);
//! - `kquants.rs`: the 256-value super-blocks (Q4_K, Q5_K, Q6_K);
//! - `unpack.rs`: every integer format as small integers, scales and
//!   mins per 32 values, the view the integer kernels compute with.

mod blocks32;
mod format;
mod kquants;
pub mod unpack;

pub use blocks32::{quantize_q4_0, quantize_q4_1, quantize_q8_0};
pub use format::{Descriptor, WeightFormat, BLOCK, FORMATS, QK_K};
use half::{bf16, f16};

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
