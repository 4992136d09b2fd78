//! The in-memory layout of a weight matrix for the CPU kernels. Quantized
//! formats are split at load into their packed quants and their f16
//! scales, so that quants stream contiguously and a block's scales (d and
//! m side by side) load as one word. The bytes per weight stay the file's:
//! a decode step is bound by how many bytes it reads. Float formats stay
//! where they lie in the file.

use crate::backend::bytes::SharedBytes;
use crate::backend::quant::{WeightFormat, BLOCK};

/// Bytes of quants per 32-value block, and f16 scales per block.
pub const fn block_shape(format: WeightFormat) -> (usize, usize) {
    match format {
        WeightFormat::F32 => (128, 0),
        WeightFormat::F16 | WeightFormat::Bf16 => (64, 0),
        WeightFormat::Q8_0 => (32, 1),
        WeightFormat::Q4_0 => (16, 1),
        // d and m side by side: one cache line serves both broadcasts.
        WeightFormat::Q4_1 => (16, 2),
        // Kept whole, as the file stores them (see `split`).
        WeightFormat::Q5_0
        | WeightFormat::Q5_1
        | WeightFormat::Q4K
        | WeightFormat::Q5K
        | WeightFormat::Q6K => (0, 0),
    }
}

/// Splits ggml blocks into (quants, scales).
pub fn split(format: WeightFormat, ggml: SharedBytes) -> (SharedBytes, Vec<u16>) {
    let (qb, ns) = block_shape(format);
    // Float formats, and the formats unpacked in registers
    // (`unpacked.rs`), whose blocks are read whole.
    if ns == 0 {
        return (ggml, Vec::new());
    }
    let bb = format.block_bytes();
    let n_blocks = ggml.len() / bb;
    let mut quants = Vec::with_capacity(n_blocks * qb);
    let mut scales = Vec::with_capacity(n_blocks * ns);
    for block in ggml.chunks_exact(bb) {
        for s in 0..ns {
            scales.push(u16::from_le_bytes([block[2 * s], block[2 * s + 1]]));
        }
        quants.extend_from_slice(&block[2 * ns..]);
    }
    // The file's copy of these bytes is no longer read.
    ggml.release_pages();
    (SharedBytes::owned(quants), scales)
}

/// The portable dequantization of one block in this layout: the same
/// arithmetic as `quant::dequantize_scalar` on the ggml bytes.
pub fn dequant_block(format: WeightFormat, q: &[u8], s: &[u16], out: &mut [f32]) {
    let out = &mut out[..BLOCK];
    let f = |i: usize| half::f16::from_bits(s[i]).to_f32();
    match format {
        WeightFormat::Q4_1 => {
            let (d, m) = (f(0), f(1));
            for j in 0..16 {
                out[j] = (q[j] & 0x0F) as f32 * d + m;
                out[j + 16] = (q[j] >> 4) as f32 * d + m;
            }
        }
        WeightFormat::Q4_0 => {
            let d = f(0);
            for j in 0..16 {
                out[j] = ((q[j] & 0x0F) as i32 - 8) as f32 * d;
                out[j + 16] = ((q[j] >> 4) as i32 - 8) as f32 * d;
            }
        }
        WeightFormat::Q8_0 => {
            for (o, &v) in out.iter_mut().zip(q) {
                *o = (v as i8) as f32 * f(0);
            }
        }
        _ => crate::backend::quant::dequantize_scalar(format, q, out),
    }
}
