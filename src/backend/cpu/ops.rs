//! Element-wise and row-wise operations of a transformer step. They are a
//! small share of the time next to the matmuls, so they favour exactness:
//! sums of squares in f64, sin/cos of rotary angles in f64.

use crate::backend::{Rope, RopeStyle};

/// out = x / rms(x) · weight, per row of `cols`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let cols = weight.len();
    for (xr, or) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let scale = inverse_rms(xr, eps);
        for ((o, &v), &w) in or.iter_mut().zip(xr).zip(weight) {
            *o = w * (v * scale);
        }
    }
}

/// `rms_norm` in place, per slice of `weight.len()` (per head).
pub fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    for xr in x.chunks_exact_mut(weight.len()) {
        let scale = inverse_rms(xr, eps);
        for (v, &w) in xr.iter_mut().zip(weight) {
            *v = w * (*v * scale);
        }
    }
}

fn inverse_rms(x: &[f32], eps: f32) -> f32 {
    let ss: f64 = x.iter().map(|&v| v as f64 * v as f64).sum();
    let mean = (ss / x.len() as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

/// x[row] += bias for every row of `bias.len()`.
pub fn add_bias(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        add(row, bias);
    }
}

/// Rotates every head of every row in place.
pub fn rope(x: &mut [f32], cols: usize, positions: &[u32], head_dim: usize, rope: &Rope) {
    let half = rope.dims / 2;
    let mut cos = vec![0f32; half];
    let mut sin = vec![0f32; half];
    for (row, &pos) in x.chunks_exact_mut(cols).zip(positions) {
        for i in 0..half {
            // The angle is formed in f32 as the reference does; its sine and
            // cosine are taken exactly.
            let angle = (pos as f32 * rope.inv_freq[i]) as f64;
            cos[i] = angle.cos() as f32;
            sin[i] = angle.sin() as f32;
        }
        for head in row.chunks_exact_mut(head_dim) {
            for i in 0..half {
                let (a, b) = match rope.style {
                    RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                    RopeStyle::Halves => (i, i + half),
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * cos[i] - x1 * sin[i];
                head[b] = x1 * cos[i] + x0 * sin[i];
            }
        }
    }
}

pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let s = *g / (1.0 + (-*g).exp());
        *g = s * u;
    }
}

pub fn add(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_gives_unit_rms() {
        let x = [3.0f32, -4.0, 0.0, 5.0];
        let mut out = [0f32; 4];
        rms_norm(&x, &[1.0; 4], 0.0, &mut out);
        let rms = (out.iter().map(|v| v * v).sum::<f32>() / 4.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-6);
    }

    #[test]
    fn rope_styles_rotate_the_right_pairs_and_keep_norms() {
        let r = Rope::new(RopeStyle::Interleaved, 4, 10000.0);
        let mut x = vec![1.0f32, 0.0, 1.0, 0.0];
        rope(&mut x, 4, &[1], 4, &r);
        // First pair rotated by 1 radian, second by 1/100.
        assert!((x[0] - 1f32.cos()).abs() < 1e-6 && (x[1] - 1f32.sin()).abs() < 1e-6);
        assert!((x[2] - 0.01f32.cos()).abs() < 1e-6 && (x[3] - 0.01f32.sin()).abs() < 1e-6);

        let r = Rope::new(RopeStyle::Halves, 4, 10000.0);
        let mut x = vec![1.0f32, 1.0, 0.0, 0.0];
        rope(&mut x, 4, &[2], 4, &r);
        assert!((x[0] - 2f32.cos()).abs() < 1e-6 && (x[2] - 2f32.sin()).abs() < 1e-6);
        assert!((x[1] - 0.02f32.cos()).abs() < 1e-6 && (x[3] - 0.02f32.sin()).abs() < 1e-6);
        // Position zero is the identity.
        let mut y = vec![0.3f32, -0.7, 0.2, 0.9];
        let before = y.clone();
        rope(&mut y, 4, &[0], 4, &r);
        assert_eq!(y, before);
    }
}
