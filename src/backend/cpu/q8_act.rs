//! Activations quantized for the integer kernels: each row cut into
//! 32-value blocks, each block stored as an f32 scale d and 32 × i8 (the
//! Q8_0 shape ggml uses for the right-hand side of its dot products).
//! Done once per matmul call, row by row: a row's quants depend on that
//! row alone, so a sequence's activations are the same whatever else
//! shares its step (batch invariance starts here).
//!
//! Beside the quants each block keeps what the weight formats need to fold
//! their offsets into one multiply: `sum` = d·Σq for Q4_1's min term, and
//! `bias` = −8 × (Σq over each group of 4 bytes) for Q4_0, whose nibbles
//! stand for q − 8: the integer dot of a lane can start from it, so the
//! offset costs nothing in the inner loop.

use crate::backend::quant::BLOCK;

/// i32 lanes of one block's integer dot (4 bytes each).
pub const LANES: usize = BLOCK / 4;

#[derive(Default)]
pub struct QuantActs {
    pub rows: usize,
    /// Blocks per row.
    pub nb: usize,
    pub qs: Vec<i8>,
    pub d: Vec<f32>,
    pub sum: Vec<f32>,
    /// LANES per block; filled only when asked for (Q4_0 weights).
    pub bias: Vec<i32>,
}

impl QuantActs {
    /// Quantizes `rows` rows of `x` (each `k` long, k a multiple of 32),
    /// reusing this buffer's memory.
    pub fn quantize(&mut self, x: &[f32], rows: usize, k: usize, with_bias: bool) {
        let nb = k / BLOCK;
        self.rows = rows;
        self.nb = nb;
        self.qs.resize(rows * k, 0);
        self.d.resize(rows * nb, 0.0);
        self.sum.resize(rows * nb, 0.0);
        self.bias
            .resize(if with_bias { rows * nb * LANES } else { 0 }, 0);
        for g in 0..rows * nb {
            let src = &x[g * BLOCK..(g + 1) * BLOCK];
            let dst = &mut self.qs[g * BLOCK..(g + 1) * BLOCK];
            let (d, isum) = quantize_block(src, dst);
            self.d[g] = d;
            self.sum[g] = d * isum as f32;
            if with_bias {
                for (l, b) in self.bias[g * LANES..(g + 1) * LANES].iter_mut().enumerate() {
                    let s: i32 = dst[4 * l..4 * l + 4].iter().map(|&q| q as i32).sum();
                    *b = -8 * s;
                }
            }
        }
    }

    /// Row i's quants.
    pub fn row(&self, i: usize) -> &[i8] {
        let k = self.nb * BLOCK;
        &self.qs[i * k..(i + 1) * k]
    }
}

/// Round to nearest, ties to even: what the SIMD conversion does under the
/// default rounding mode, so a vector quantizer could give the same bits.
/// Returns d and Σq.
fn quantize_block(src: &[f32], dst: &mut [i8]) -> (f32, i32) {
    let amax = src.iter().fold(0f32, |a, &v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut isum = 0i32;
    for (q, &v) in dst.iter_mut().zip(src) {
        // `as` saturates (and maps NaN to 0), so no value leaves ±127 + 1.
        *q = (v * id).round_ties_even().clamp(-127.0, 127.0) as i8;
        isum += *q as i32;
    }
    (d, isum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_within_half_a_step_and_rows_stand_alone() {
        let (rows, k) = (3, 96);
        let x = crate::backend::testing::uniform(rows * k, 5, 3.0);
        let mut qa = QuantActs::default();
        qa.quantize(&x, rows, k, true);
        for g in 0..rows * k / BLOCK {
            let d = qa.d[g];
            let mut isum = 0;
            for j in 0..BLOCK {
                let q = qa.qs[g * BLOCK + j];
                isum += q as i32;
                assert!((q as f32 * d - x[g * BLOCK + j]).abs() <= d * 0.5 + 1e-6);
            }
            assert_eq!(qa.sum[g], d * isum as f32);
            let lanes: i32 = qa.bias[g * LANES..(g + 1) * LANES].iter().sum();
            assert_eq!(lanes, -8 * isum);
        }
        // The last row quantized alone: the same bits.
        let mut one = QuantActs::default();
        one.quantize(&x[2 * k..], 1, k, false);
        assert_eq!(one.row(0), qa.row(2));
        assert_eq!(one.d, qa.d[2 * k / BLOCK..]);
    }
}
