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

use super::isa::Isa;
use super::pool::ComputePool;
use crate::backend::quant::BLOCK;
use std::cell::RefCell;

thread_local! {
    static ACTS: RefCell<QuantActs> = RefCell::new(QuantActs::default());
}

/// Quantizes `rows` rows of `x` into this thread's buffer (its memory
/// reused from call to call) and runs `f` on them.
pub fn with_quantized<R>(
    pool: &ComputePool,
    isa: Isa,
    x: &[f32],
    rows: usize,
    k: usize,
    with_bias: bool,
    f: impl FnOnce(&QuantActs) -> R,
) -> R {
    ACTS.with(|acts| {
        let mut acts = acts.borrow_mut();
        acts.quantize(pool, isa, x, rows, k, with_bias);
        f(&acts)
    })
}

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
    /// Σq per block.
    pub isum: Vec<i32>,
    /// LANES per block; filled only when asked for (Q4_0 weights).
    pub bias: Vec<i32>,
}

impl QuantActs {
    /// Quantizes `rows` rows of `x` (each `k` long, k a multiple of 32),
    /// reusing this buffer's memory. Large batches are split over the
    /// pool by rows; that changes nothing in the result, each row being
    /// quantized on its own.
    pub fn quantize(
        &mut self,
        pool: &ComputePool,
        isa: Isa,
        x: &[f32],
        rows: usize,
        k: usize,
        with_bias: bool,
    ) {
        let nb = k / BLOCK;
        self.rows = rows;
        self.nb = nb;
        self.qs.resize(rows * k, 0);
        self.d.resize(rows * nb, 0.0);
        self.sum.resize(rows * nb, 0.0);
        self.isum.resize(rows * nb, 0);
        self.bias
            .resize(if with_bias { rows * nb * LANES } else { 0 }, 0);
        let out = Blocks {
            qs: self.qs.as_mut_ptr(),
            d: self.d.as_mut_ptr(),
            sum: self.sum.as_mut_ptr(),
            isum: self.isum.as_mut_ptr(),
            bias: with_bias.then_some(self.bias.as_mut_ptr()),
        };
        // Below this many blocks, waking the pool costs more than the work.
        const PER_TASK: usize = 256;
        let blocks = rows * nb;
        let tasks = if blocks >= 2 * PER_TASK {
            rows.min(blocks / PER_TASK)
        } else {
            1
        };
        let rows_per_task = rows.div_ceil(tasks);
        pool.run(rows.div_ceil(rows_per_task), |t| {
            let r0 = t * rows_per_task;
            let r1 = (r0 + rows_per_task).min(rows);
            // SAFETY: tasks own disjoint rows of buffers sized above; `isa`
            // is a level `Isa::supported` vouched for.
            unsafe { quantize_blocks(isa, &x[r0 * k..r1 * k], r0 * nb, out) };
        });
    }

    /// Row i's quants.
    pub fn row(&self, i: usize) -> &[i8] {
        let k = self.nb * BLOCK;
        &self.qs[i * k..(i + 1) * k]
    }
}

/// Where quantized blocks go, shared by the tasks of one region; each
/// writes its own blocks.
#[derive(Clone, Copy)]
struct Blocks {
    qs: *mut i8,
    d: *mut f32,
    sum: *mut f32,
    isum: *mut i32,
    bias: Option<*mut i32>,
}
// SAFETY: tasks write disjoint blocks, and the region ends before the
// buffers are read or moved.
unsafe impl Send for Blocks {}
unsafe impl Sync for Blocks {}

/// Blocks `first..` of `out` from `x` (whole blocks).
unsafe fn quantize_blocks(isa: Isa, x: &[f32], first: usize, out: Blocks) {
    for (i, src) in x.chunks_exact(BLOCK).enumerate() {
        let g = first + i;
        let dst = std::slice::from_raw_parts_mut(out.qs.add(g * BLOCK), BLOCK);
        #[cfg(target_arch = "x86_64")]
        let (d, isum) = if isa == Isa::Scalar {
            quantize_block(src, dst)
        } else {
            x86::quantize_block(src, dst)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let (d, isum) = {
            let _ = isa;
            quantize_block(src, dst)
        };
        *out.d.add(g) = d;
        *out.sum.add(g) = d * isum as f32;
        *out.isum.add(g) = isum;
        if let Some(bias) = out.bias {
            for l in 0..LANES {
                let s: i32 = dst[4 * l..4 * l + 4].iter().map(|&q| q as i32).sum();
                *bias.add(g * LANES + l) = -8 * s;
            }
        }
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// The scalar `quantize_block` in AVX2: the same max, the same
    /// division and reciprocal, the same products, and `cvtps2dq` rounds
    /// to nearest even as `round_ties_even` does, so the bits agree.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn quantize_block(src: &[f32], dst: &mut [i8]) -> (f32, i32) {
        let p = src.as_ptr();
        let v = [
            _mm256_loadu_ps(p),
            _mm256_loadu_ps(p.add(8)),
            _mm256_loadu_ps(p.add(16)),
            _mm256_loadu_ps(p.add(24)),
        ];
        let sign = _mm256_set1_ps(-0.0);
        let abs = |x| _mm256_andnot_ps(sign, x);
        let m = _mm256_max_ps(
            _mm256_max_ps(abs(v[0]), abs(v[1])),
            _mm256_max_ps(abs(v[2]), abs(v[3])),
        );
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_max_ss(m, _mm_movehdup_ps(m));
        let amax = _mm_cvtss_f32(m);
        let d = amax / 127.0;
        let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
        let q = |x| _mm256_cvtps_epi32(_mm256_mul_ps(x, id));
        // Packing interleaves 128-bit halves; the permute puts the 32
        // bytes back in order.
        let w = _mm256_packs_epi32(q(v[0]), q(v[1]));
        let z = _mm256_packs_epi32(q(v[2]), q(v[3]));
        let b = _mm256_packs_epi16(w, z);
        let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, b);
        // Σq: bytes widened to i16 pairs, then to i32 lanes.
        let pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), b);
        let lanes = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
        let s = _mm_add_epi32(
            _mm256_castsi256_si128(lanes),
            _mm256_extracti128_si256(lanes, 1),
        );
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        (d, _mm_cvtsi128_si32(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_within_half_a_step_and_rows_stand_alone() {
        let pool = ComputePool::new(2);
        let (rows, k) = (40, 576);
        let x = crate::backend::testing::uniform(rows * k, 5, 3.0);
        let mut scalar = QuantActs::default();
        scalar.quantize(&pool, Isa::Scalar, &x, rows, k, true);
        let qa = &scalar;
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
        for isa in Isa::ALL {
            if !isa.supported() {
                continue;
            }
            let mut all = QuantActs::default();
            all.quantize(&pool, isa, &x, rows, k, true);
            assert_eq!(all.qs, scalar.qs, "{isa:?}");
            assert_eq!(all.d, scalar.d, "{isa:?}");
            assert_eq!(all.sum, scalar.sum, "{isa:?}");
            assert_eq!(all.bias, scalar.bias, "{isa:?}");
            // The last row quantized alone: the same bits.
            let mut one = QuantActs::default();
            one.quantize(&pool, isa, &x[(rows - 1) * k..], 1, k, false);
            assert_eq!(one.row(0), all.row(rows - 1));
            assert_eq!(one.d, all.d[(rows - 1) * k / BLOCK..]);
        }
    }
}
