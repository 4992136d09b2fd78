//! The 32-value block formats: dequantization of the three the kernels
//! read directly (Q8_0, Q4_0, Q4_1; Q5_0 and Q5_1 go through
//! `unpack.rs`), and ggml's reference quantizers for all five.

use super::{f16_at, WeightFormat, BLOCK};
use half::f16;

pub(super) fn dequantize_block(format: WeightFormat, block: &[u8], dst: &mut [f32]) {
    match format {
        WeightFormat::Q8_0 => {
            let d = f16_at(block, 0);
            for (o, &q) in dst.iter_mut().zip(&block[2..34]) {
                *o = (q as i8) as f32 * d;
            }
        }
        WeightFormat::Q4_0 => {
            let d = f16_at(block, 0);
            for j in 0..16 {
                let q = block[2 + j];
                dst[j] = ((q & 0x0F) as i32 - 8) as f32 * d;
                dst[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
            }
        }
        WeightFormat::Q4_1 => {
            let d = f16_at(block, 0);
            let m = f16_at(block, 2);
            for j in 0..16 {
                let q = block[4 + j];
                dst[j] = (q & 0x0F) as f32 * d + m;
                dst[j + 16] = (q >> 4) as f32 * d + m;
            }
        }
        other => unreachable!("{other:?} is not dequantized here"),
    }
}

fn push_f16(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&f16::from_f32(v).to_bits().to_le_bytes());
}

/// Round-to-nearest Q8_0, as ggml's reference quantizer does.
pub fn quantize_q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / BLOCK * 34);
    for block in values.chunks_exact(BLOCK) {
        let amax = block.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        push_f16(&mut out, d);
        out.extend(block.iter().map(|&v| ((v * id).round() as i8) as u8));
    }
    out
}

/// Q4_1 quantization as ggml's reference (min/max per block).
pub fn quantize_q4_1(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / BLOCK * 20);
    for block in values.chunks_exact(BLOCK) {
        let (min, max) = min_max(block);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        push_f16(&mut out, d);
        push_f16(&mut out, min);
        for j in 0..16 {
            let q0 = (((block[j] - min) * id + 0.5) as u8).min(15);
            let q1 = (((block[j + 16] - min) * id + 0.5) as u8).min(15);
            out.push(q0 | (q1 << 4));
        }
    }
    out
}

/// Q4_0 quantization as ggml's reference (signed max per block).
pub fn quantize_q4_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / BLOCK * 18);
    for block in values.chunks_exact(BLOCK) {
        let d = signed_max(block) / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        push_f16(&mut out, d);
        for j in 0..16 {
            let q0 = ((block[j] * id + 8.5) as u8).min(15);
            let q1 = ((block[j + 16] * id + 8.5) as u8).min(15);
            out.push(q0 | (q1 << 4));
        }
    }
    out
}

/// Q5_0 (`with_min` false: signed max, value (q − 16)·d, as ggml's
/// reference quantizer) or Q5_1 (value q·d + m, its d and m fitted by
/// weighted least squares as the K-quants' are: on real weights the
/// reference min/max fit of Q5_1 loses to Q5_0's symmetric one).
pub(super) fn quantize_q5(values: &[f32], with_min: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / BLOCK * 24);
    let mut q = [0u8; BLOCK];
    for block in values.chunks_exact(BLOCK) {
        if with_min {
            let (scale, offset) = super::kquants::fit_affine(block, 31, true);
            // Quantized against the scale and min as they will be read.
            let d = f16::from_f32(scale).to_f32();
            let min = f16::from_f32(-offset).to_f32();
            for (q, &v) in q.iter_mut().zip(block) {
                *q = if d > 0.0 {
                    ((v - min) / d).round().clamp(0.0, 31.0) as u8
                } else {
                    0
                };
            }
            push_f16(&mut out, d);
            push_f16(&mut out, min);
        } else {
            let d = signed_max(block) / -16.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            for (q, &v) in q.iter_mut().zip(block) {
                *q = ((v * id + 16.5) as u8).min(31);
            }
            push_f16(&mut out, d);
        }
        let high = q
            .iter()
            .enumerate()
            .fold(0u32, |h, (j, &v)| h | (((v >> 4) as u32 & 1) << j));
        out.extend_from_slice(&high.to_le_bytes());
        for j in 0..16 {
            out.push((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
        }
    }
    out
}

fn min_max(block: &[f32]) -> (f32, f32) {
    let min = block.iter().fold(f32::INFINITY, |a, &v| a.min(v));
    let max = block.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    (min, max)
}

/// The value of largest magnitude, with its sign.
fn signed_max(block: &[f32]) -> f32 {
    block
        .iter()
        .fold(0f32, |a, &v| if v.abs() > a.abs() { v } else { a })
}
