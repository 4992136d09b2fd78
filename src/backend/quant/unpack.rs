//! Every integer format as its kernels see it: blocks cut into groups of
//! 32 values, each group small integers `q` with two scales (one per 16
//! values, equal except in Q6_K) and an additive min:
//!
//!   value[j] = scale[j / 16] · q[j] + min
//!
//! Q5_0 and Q6_K carry their offsets (−16, −32) inside q, which is then
//! signed; the other formats' q are non-negative. With activations
//! quantized per 32 values (x = dx·xq), a group's dot product is
//! dx·(scale₀·Σ₀ q·xq + scale₁·Σ₁ q·xq) + min·dx·Σxq: integer sums scaled
//! in f32, the shape every integer kernel computes.
//!
//! The scales are computed as the `gguf` package computes them (d·sc in
//! f32), so `dequantize_block` agrees with it bit for bit.

pub use super::kquants::scale_min;
use super::{f16_at, WeightFormat, BLOCK};

/// One group of 32 values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Group {
    pub q: [i8; BLOCK],
    /// For values 0..16 and 16..32.
    pub scale: [f32; 2],
    pub min: f32,
}

/// Whether the formats' kernels go through this view (the others have
/// kernels of their own).
pub fn is_unpacked(format: WeightFormat) -> bool {
    matches!(
        format,
        WeightFormat::Q5_0
            | WeightFormat::Q5_1
            | WeightFormat::Q4K
            | WeightFormat::Q5K
            | WeightFormat::Q6K
    )
}

/// Whether q may be negative (the offset lives inside q).
pub fn is_signed(format: WeightFormat) -> bool {
    matches!(format, WeightFormat::Q5_0 | WeightFormat::Q6K)
}

/// Whether groups have a non-zero min.
pub fn has_min(format: WeightFormat) -> bool {
    matches!(
        format,
        WeightFormat::Q5_1 | WeightFormat::Q4K | WeightFormat::Q5K
    )
}

/// The groups of one block (`block_elems / 32` of them) into `out`.
pub fn unpack_block(format: WeightFormat, b: &[u8], out: &mut [Group]) {
    match format {
        WeightFormat::Q5_0 | WeightFormat::Q5_1 => {
            let with_min = format == WeightFormat::Q5_1;
            let d = f16_at(b, 0);
            let (min, at) = if with_min {
                (f16_at(b, 2), 4)
            } else {
                (0.0, 2)
            };
            let high = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            let qs = &b[at + 4..at + 20];
            let offset = if with_min { 0 } else { 16 };
            let g = &mut out[0];
            for j in 0..BLOCK {
                let nibble = (qs[j % 16] >> (4 * (j / 16))) & 0x0F;
                let v = nibble | ((((high >> j) & 1) as u8) << 4);
                g.q[j] = v as i8 - offset;
            }
            g.scale = [d, d];
            g.min = min;
        }
        WeightFormat::Q4K | WeightFormat::Q5K => {
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            let scales = &b[4..16];
            let (qh, qs) = if format == WeightFormat::Q5K {
                (Some(&b[16..48]), &b[48..176])
            } else {
                (None, &b[16..144])
            };
            for (gi, g) in out.iter_mut().enumerate().take(8) {
                let (sc, m) = scale_min(scales, gi);
                let chunk = &qs[32 * (gi / 2)..][..32];
                for l in 0..BLOCK {
                    let mut v = (chunk[l] >> (4 * (gi % 2))) & 0x0F;
                    if let Some(qh) = qh {
                        v |= ((qh[l] >> gi) & 1) << 4;
                    }
                    g.q[l] = v as i8;
                }
                let scale = d * sc as f32;
                g.scale = [scale, scale];
                g.min = -(dmin * m as f32);
            }
        }
        WeightFormat::Q6K => {
            let (ql, qh, sc) = (&b[..128], &b[128..192], &b[192..208]);
            let d = f16_at(b, 208);
            for (gi, g) in out.iter_mut().enumerate().take(8) {
                let (half, part) = (gi / 4, gi % 4);
                let low = &ql[64 * half + 32 * (part % 2)..][..32];
                let high = &qh[32 * half..][..32];
                for l in 0..BLOCK {
                    let nibble = (low[l] >> (4 * (part / 2))) & 0x0F;
                    let top = (high[l] >> (2 * part)) & 0x03;
                    g.q[l] = (nibble | (top << 4)) as i8 - 32;
                }
                g.scale = [
                    d * (sc[2 * gi] as i8) as f32,
                    d * (sc[2 * gi + 1] as i8) as f32,
                ];
                g.min = 0.0;
            }
        }
        other => unreachable!("{other:?} has kernels of its own"),
    }
}

/// Groups per block.
pub fn groups_per_block(format: WeightFormat) -> usize {
    format.block_elems() / BLOCK
}

/// One block's values, as the `gguf` package dequantizes them.
pub(super) fn dequantize_block(format: WeightFormat, block: &[u8], dst: &mut [f32]) {
    let mut groups = [Group::default(); 8];
    let n = groups_per_block(format);
    unpack_block(format, block, &mut groups[..n]);
    let with_min = has_min(format);
    for (g, out) in groups[..n].iter().zip(dst.chunks_exact_mut(BLOCK)) {
        for (j, o) in out.iter_mut().enumerate() {
            let v = g.scale[j / 16] * g.q[j] as f32;
            // No min added where there is none: +0.0 would turn −0.0
            // into +0.0 and break bit equality.
            *o = if with_min { v + g.min } else { v };
        }
    }
}
