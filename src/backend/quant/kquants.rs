//! The K-quant super-blocks: their packed 6-bit scales, and quantizers
//! that write llama.cpp's layouts.
//!
//! The quantizers fit each group by weighted least squares over a few
//! candidate step sizes (weights |x| + rms, so large values, which matter
//! most to a matmul, are fitted best), then quantize the group scales
//! against the super-block's, then requantize every value with the
//! scales as they will be read back. Their output is any valid encoding;
//! quality is measured by perplexity (`switchyard eval perplexity`).

use super::QK_K;
use half::f16;

/// Group `j`'s 6-bit scale and min from Q4_K/Q5_K's 12 packed bytes:
/// bytes 0..4 hold scales 0..4 and the top bits of scales 4..8, bytes
/// 4..8 the same for mins, bytes 8..12 the low nibbles of scales and mins
/// 4..8.
pub fn scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

#[cfg(test)]
pub(super) fn pack_scales_mins_for_test(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    pack_scales_mins(sc, m)
}

fn pack_scales_mins(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..4 {
        s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
        s[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
        s[j + 8] = (sc[j + 4] & 0x0F) | ((m[j + 4] & 0x0F) << 4);
    }
    s
}

fn f16_round(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// Importance weights of a group's values.
fn weights(x: &[f32]) -> Vec<f32> {
    let rms = (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    x.iter().map(|v| v.abs() + rms).collect()
}

/// Fits x ≈ scale·q − offset with q in 0..=nmax. The K-quants store only
/// non-negative mins, so offset ≥ 0 unless `free_offset` (Q5_1, whose
/// min is any f16). Returns (scale, offset).
pub(super) fn fit_affine(x: &[f32], nmax: u8, free_offset: bool) -> (f32, f32) {
    let w = weights(x);
    let start = if free_offset { f32::INFINITY } else { 0.0 };
    let lo = x.iter().fold(start, |a, &v| a.min(v));
    let hi = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    if hi <= lo {
        return (0.0, -lo);
    }
    let nmax_f = nmax as f32;
    let error = |scale: f32, offset: f32| -> f32 {
        if scale == 0.0 {
            return f32::INFINITY;
        }
        x.iter()
            .zip(&w)
            .map(|(&v, &wi)| {
                let q = ((v + offset) / scale).round().clamp(0.0, nmax_f);
                let e = scale * q - offset - v;
                wi * e * e
            })
            .sum()
    };
    let mut best = ((hi - lo) / nmax_f, -lo);
    let mut best_err = error(best.0, best.1);
    for step in -10..=10 {
        let iscale = (nmax_f + 0.1 * step as f32) / (hi - lo);
        let q: Vec<f32> = x
            .iter()
            .map(|&v| (iscale * (v - lo)).round().clamp(0.0, nmax_f))
            .collect();
        // Weighted least squares of x on (q, 1).
        let (mut sw, mut sq, mut sx, mut sqq, mut sqx) = (0f32, 0f32, 0f32, 0f32, 0f32);
        for ((&v, &qi), &wi) in x.iter().zip(&q).zip(&w) {
            sw += wi;
            sq += wi * qi;
            sx += wi * v;
            sqq += wi * qi * qi;
            sqx += wi * qi * v;
        }
        let det = sw * sqq - sq * sq;
        if det <= 0.0 {
            continue;
        }
        let mut scale = (sw * sqx - sq * sx) / det;
        let mut base = (sqq * sx - sq * sqx) / det;
        if base > 0.0 && !free_offset {
            // A positive min cannot be stored: refit the scale alone.
            base = 0.0;
            scale = if sqq > 0.0 { sqx / sqq } else { 0.0 };
        }
        let err = error(scale, -base);
        if scale > 0.0 && err < best_err {
            best = (scale, -base);
            best_err = err;
        }
    }
    best
}

/// Q4_K (nmax 15) or Q5_K (nmax 31).
fn quantize_qnk(values: &[f32], nmax: u8) -> Vec<u8> {
    let five = nmax == 31;
    let bytes = if five { 176 } else { 144 };
    let mut out = Vec::with_capacity(values.len() / QK_K * bytes);
    for x in values.chunks_exact(QK_K) {
        let fits: Vec<(f32, f32)> = x
            .chunks_exact(32)
            .map(|g| fit_affine(g, nmax, false))
            .collect();
        let max_scale = fits.iter().fold(0f32, |a, f| a.max(f.0));
        let max_offset = fits.iter().fold(0f32, |a, f| a.max(f.1));
        let d = f16_round(max_scale / 63.0);
        let dmin = f16_round(max_offset / 63.0);
        let (mut sc, mut m) = ([0u8; 8], [0u8; 8]);
        for (j, &(scale, offset)) in fits.iter().enumerate() {
            sc[j] = if d > 0.0 {
                (scale / d).round().clamp(0.0, 63.0) as u8
            } else {
                0
            };
            m[j] = if dmin > 0.0 {
                (offset / dmin).round().clamp(0.0, 63.0) as u8
            } else {
                0
            };
        }
        let mut q = [0u8; QK_K];
        for (j, g) in x.chunks_exact(32).enumerate() {
            let scale = d * sc[j] as f32;
            let offset = dmin * m[j] as f32;
            for (l, &v) in g.iter().enumerate() {
                q[32 * j + l] = if scale > 0.0 {
                    ((v + offset) / scale).round().clamp(0.0, nmax as f32) as u8
                } else {
                    0
                };
            }
        }
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
        out.extend_from_slice(&f16::from_f32(dmin).to_bits().to_le_bytes());
        out.extend_from_slice(&pack_scales_mins(&sc, &m));
        if five {
            let mut qh = [0u8; 32];
            for (j, group) in q.chunks_exact(32).enumerate() {
                for (l, &v) in group.iter().enumerate() {
                    qh[l] |= ((v >> 4) & 1) << j;
                }
            }
            out.extend_from_slice(&qh);
        }
        for c in 0..4 {
            for l in 0..32 {
                let (lo, hi) = (q[64 * c + l], q[64 * c + 32 + l]);
                out.push((lo & 0x0F) | ((hi & 0x0F) << 4));
            }
        }
    }
    out
}

pub(super) fn quantize_q4k(values: &[f32]) -> Vec<u8> {
    quantize_qnk(values, 15)
}

pub(super) fn quantize_q5k(values: &[f32]) -> Vec<u8> {
    quantize_qnk(values, 31)
}

/// Fits x ≈ scale·q with q in −32..=31; returns the scale (signed: the
/// value of largest magnitude maps to −32, as ggml's symmetric formats do).
fn fit_symmetric(x: &[f32]) -> f32 {
    let w = weights(x);
    let max = x
        .iter()
        .fold(0f32, |a, &v| if v.abs() > a.abs() { v } else { a });
    if max == 0.0 {
        return 0.0;
    }
    let error = |scale: f32| -> f32 {
        x.iter()
            .zip(&w)
            .map(|(&v, &wi)| {
                let q = (v / scale).round().clamp(-32.0, 31.0);
                let e = scale * q - v;
                wi * e * e
            })
            .sum()
    };
    let mut best = max / -32.0;
    let mut best_err = error(best);
    for step in -9..=9 {
        let iscale = -(32.0 + 0.1 * step as f32) / max;
        let (mut sqx, mut sqq) = (0f32, 0f32);
        for (&v, &wi) in x.iter().zip(&w) {
            let q = (iscale * v).round().clamp(-32.0, 31.0);
            sqx += wi * q * v;
            sqq += wi * q * q;
        }
        if sqq > 0.0 {
            let scale = sqx / sqq;
            let err = error(scale);
            if err < best_err {
                best = scale;
                best_err = err;
            }
        }
    }
    best
}

pub(super) fn quantize_q6k(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / QK_K * 210);
    for x in values.chunks_exact(QK_K) {
        let scales: Vec<f32> = x.chunks_exact(16).map(fit_symmetric).collect();
        let max = scales
            .iter()
            .fold(0f32, |a, &v| if v.abs() > a.abs() { v } else { a });
        let d = f16_round(max / -128.0);
        let sc: Vec<i8> = scales
            .iter()
            .map(|&s| {
                if d != 0.0 {
                    (s / d).round().clamp(-128.0, 127.0) as i8
                } else {
                    0
                }
            })
            .collect();
        let mut q = [0u8; QK_K];
        for (i, &v) in x.iter().enumerate() {
            let scale = d * sc[i / 16] as f32;
            let qi = if scale != 0.0 {
                (v / scale).round().clamp(-32.0, 31.0)
            } else {
                0.0
            };
            q[i] = (qi as i32 + 32) as u8;
        }
        let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
        for half in 0..2 {
            let n = 128 * half;
            for l in 0..32 {
                let [a, b, c, e] = [q[n + l], q[n + l + 32], q[n + l + 64], q[n + l + 96]];
                ql[64 * half + l] = (a & 0x0F) | ((c & 0x0F) << 4);
                ql[64 * half + l + 32] = (b & 0x0F) | ((e & 0x0F) << 4);
                qh[32 * half + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
            }
        }
        out.extend_from_slice(&ql);
        out.extend_from_slice(&qh);
        out.extend(sc.iter().map(|&s| s as u8));
        out.extend_from_slice(&f16::from_f32(d).to_bits().to_le_bytes());
    }
    out
}
