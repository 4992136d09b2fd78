//! out[T×N] = x[T×K] · Wᵀ for the formats read through `quant::unpack`
//! (Q5_0, Q5_1, Q4_K, Q5_K, Q6_K). Weights stay as the file stores them
//! (the bytes per weight a decode step streams are the file's); each
//! block is unpacked in registers into groups of 32 small integers with
//! their scales, and multiplied with the activations quantized per 32
//! values (`q8_act.rs`) by integer dot products. A weight row is unpacked
//! once, into a buffer that stays in L1, and serves every activation row
//! of the step, four at a time.
//!
//! Batch invariance: each output is two 8-lane accumulators (even and odd
//! groups) fed in k order (each group's integer lanes scaled by scale·dx),
//! plus two scalar sums of the mins' terms likewise, added the same way
//! whatever T is and wherever the row falls in a tile.

use super::disjoint::DisjointOut;
use super::isa::Isa;
use super::matrix::CpuMatrix;
use super::pool::ComputePool;
use super::q8_act::{with_quantized, QuantActs};
use super::qgemm::panel_rows;
use crate::backend::quant::unpack::{groups_per_block, has_min, unpack_block, Group};
use crate::backend::quant::BLOCK;

pub use crate::backend::quant::unpack::is_unpacked as handles;

pub fn matmul(pool: &ComputePool, isa: Isa, x: &[f32], t: usize, w: &CpuMatrix, out: &mut [f32]) {
    let (k, n) = (w.cols, w.rows);
    let out_ptr = DisjointOut::new(out);
    with_quantized(pool, isa, x, t, k, false, |qa| {
        let per_task = panel_rows(n, pool.n_threads());
        pool.run(n.div_ceil(per_task), |p| {
            let r0 = p * per_task;
            let rows = per_task.min(n - r0);
            // SAFETY: this task alone writes columns r0..r0+rows, which
            // exist; `isa` is a level `Isa::supported` vouched for.
            unsafe { panel(isa, w, qa, r0, rows, out_ptr.get(), n) };
        });
    });
}

/// out[i*n + j] for every activation row i and j in r0..r0+rows.
unsafe fn panel(
    isa: Isa,
    w: &CpuMatrix,
    qa: &QuantActs,
    r0: usize,
    rows: usize,
    out: *mut f32,
    n: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::backend::quant::WeightFormat as F;
        let p = x86::Panel {
            w: w.quants.as_ptr(),
            row_blocks: w.cols / w.format.block_elems(),
            qa,
            r0,
            rows,
            out,
            n,
        };
        macro_rules! fmt {
            ($f:ident) => {
                match w.format {
                    F::Q5_0 => return x86::$f::<x86::Q5<false>>(&p),
                    F::Q5_1 => return x86::$f::<x86::Q5<true>>(&p),
                    F::Q4K => return x86::$f::<x86::QnK<false>>(&p),
                    F::Q5K => return x86::$f::<x86::QnK<true>>(&p),
                    F::Q6K => return x86::$f::<x86::Q6K>(&p),
                    _ => {}
                }
            };
        }
        match isa {
            Isa::Avx512Vnni => fmt!(panel_evex),
            Isa::AvxVnni => fmt!(panel_vnni256),
            Isa::Avx512 | Isa::Avx2 => fmt!(panel_avx2),
            Isa::Scalar => {}
        }
    }
    let _ = isa;
    panel_scalar(w, qa, r0, rows, out, n)
}

/// The portable kernel: each weight row unpacked once, then one output at
/// a time in its own fixed order.
unsafe fn panel_scalar(
    w: &CpuMatrix,
    qa: &QuantActs,
    r0: usize,
    rows: usize,
    out: *mut f32,
    n: usize,
) {
    let f = w.format;
    let (bb, gpb) = (f.block_bytes(), groups_per_block(f));
    let row_bytes = f.row_bytes(w.cols);
    let mut groups = vec![Group::default(); qa.nb];
    for j in r0..r0 + rows {
        let row = &w.quants[j * row_bytes..(j + 1) * row_bytes];
        for (block, dst) in row.chunks_exact(bb).zip(groups.chunks_exact_mut(gpb)) {
            unpack_block(f, block, dst);
        }
        for i in 0..qa.rows {
            let x = qa.row(i);
            let mut acc = 0f32;
            for (b, g) in groups.iter().enumerate() {
                let xb = &x[b * BLOCK..(b + 1) * BLOCK];
                let half = |h: usize| -> i32 {
                    (16 * h..16 * h + 16)
                        .map(|j| g.q[j] as i32 * xb[j] as i32)
                        .sum()
                };
                let dx = qa.d[i * qa.nb + b];
                acc += half(0) as f32 * (g.scale[0] * dx) + half(1) as f32 * (g.scale[1] * dx);
                if has_min(f) {
                    acc += g.min * qa.sum[i * qa.nb + b];
                }
            }
            *out.add(i * n + j) = acc;
        }
    }
}

// Register tiles read best as index loops.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::q8_act::QuantActs;
    use super::super::qgemm::x86::{Dot256, Madd, Vnni};
    use super::super::reduce::x86::hsum256;
    use crate::backend::quant::BLOCK;
    use std::arch::x86_64::*;

    /// One task's share: weight rows r0..r0+rows, each `row_blocks`
    /// blocks of the format at `w`.
    pub struct Panel<'a> {
        pub w: *const u8,
        pub row_blocks: usize,
        pub qa: &'a QuantActs,
        pub r0: usize,
        pub rows: usize,
        pub out: *mut f32,
        pub n: usize,
    }

    /// A weight row unpacked: per group of 32 values, its integers, its
    /// two scales and its min (`quant::unpack`). Filled once per row and
    /// read by every activation tile, from L1.
    pub struct Unpacked<'a> {
        pub q: &'a mut [__m256i],
        pub scale: &'a mut [[f32; 2]],
        pub min: &'a mut [f32],
    }

    /// A format's block, unpacked in registers.
    pub trait Unpack {
        const GROUPS: usize;
        const BYTES: usize;
        /// q may be negative: products use the sign trick.
        const SIGNED: bool;
        /// The two halves of a group have scales of their own (Q6_K).
        const TWO_SCALES: bool;
        const MIN: bool;
        /// Block `b` into groups `at..at + GROUPS` of `u`.
        unsafe fn unpack(b: *const u8, u: &mut Unpacked, at: usize);
    }

    #[inline(always)]
    unsafe fn f16(p: *const u8) -> f32 {
        let bits = (p as *const u16).read_unaligned();
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }

    /// The 32 bits at `p` as 32 bytes: byte j is `set` where bit j is.
    #[inline(always)]
    unsafe fn bits_to_bytes(p: *const u8, set: i8) -> __m256i {
        let word = _mm256_set1_epi32((p as *const i32).read_unaligned());
        let spread = _mm256_shuffle_epi8(
            word,
            _mm256_setr_epi64x(
                0,
                0x0101_0101_0101_0101,
                0x0202_0202_0202_0202,
                0x0303_0303_0303_0303,
            ),
        );
        let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
        let hit = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
        _mm256_and_si256(hit, _mm256_set1_epi8(set))
    }

    /// Q5_0 (`M` false) and Q5_1. Q5_0's −16 is not kept in q (which
    /// would need the sign trick in every product) but folded into the
    /// min term as −16·d: Σ d·(q − 16)·x = d·Σ q·x − 16·d·Σ x.
    pub struct Q5<const M: bool>;
    impl<const M: bool> Unpack for Q5<M> {
        const GROUPS: usize = 1;
        const BYTES: usize = if M { 24 } else { 22 };
        const SIGNED: bool = false;
        const TWO_SCALES: bool = false;
        const MIN: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked, at: usize) {
            let d = f16(b);
            // The 32 high bits follow d (and Q5_1's m); the nibbles them.
            let high = if M { 4 } else { 2 };
            let v = _mm_loadu_si128(b.add(high + 4) as _);
            let nibbles = _mm256_and_si256(
                _mm256_set_m128i(_mm_srli_epi16(v, 4), v),
                _mm256_set1_epi8(0x0F),
            );
            let q = _mm256_or_si256(nibbles, bits_to_bytes(b.add(high), 0x10));
            *u.q.get_unchecked_mut(at) = q;
            *u.scale.get_unchecked_mut(at) = [d, d];
            *u.min.get_unchecked_mut(at) = if M { f16(b.add(2)) } else { -16.0 * d };
        }
    }

    /// Q4_K, or Q5_K (`FIVE`).
    pub struct QnK<const FIVE: bool>;
    impl<const FIVE: bool> Unpack for QnK<FIVE> {
        const GROUPS: usize = 8;
        const BYTES: usize = if FIVE { 176 } else { 144 };
        const SIGNED: bool = false;
        const TWO_SCALES: bool = false;
        const MIN: bool = true;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked, at: usize) {
            let (d, dmin) = (f16(b), f16(b.add(2)));
            let s = std::slice::from_raw_parts(b.add(4), 12);
            let q = &mut u.q[at..at + 8];
            for g in 0..8 {
                let (sc, m) = crate::backend::quant::unpack::scale_min(s, g);
                let scale = d * sc as f32;
                u.scale[at + g] = [scale, scale];
                u.min[at + g] = -(dmin * m as f32);
            }
            let low = _mm256_set1_epi8(0x0F);
            let qs = b.add(if FIVE { 48 } else { 16 });
            for c in 0..4 {
                let v = _mm256_loadu_si256(qs.add(32 * c) as _);
                q[2 * c] = _mm256_and_si256(v, low);
                q[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            }
            if FIVE {
                let qh = _mm256_loadu_si256(b.add(16) as _);
                let one = _mm256_set1_epi8(1);
                for g in 0..8 {
                    let bit =
                        _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(g as i32)), one);
                    q[g] = _mm256_or_si256(q[g], _mm256_slli_epi16(bit, 4));
                }
            }
        }
    }

    pub struct Q6K;
    impl Unpack for Q6K {
        const GROUPS: usize = 8;
        const BYTES: usize = 210;
        const SIGNED: bool = true;
        const TWO_SCALES: bool = true;
        const MIN: bool = false;
        #[inline(always)]
        unsafe fn unpack(b: *const u8, u: &mut Unpacked, at: usize) {
            let d = f16(b.add(208));
            let sc = b.add(192) as *const i8;
            for g in 0..8 {
                u.scale[at + g] = [d * *sc.add(2 * g) as f32, d * *sc.add(2 * g + 1) as f32];
                u.min[at + g] = 0.0;
            }
            let (low, top, off) = (
                _mm256_set1_epi8(0x0F),
                _mm256_set1_epi8(0x30),
                _mm256_set1_epi8(32),
            );
            for half in 0..2 {
                let l0 = _mm256_loadu_si256(b.add(64 * half) as _);
                let l1 = _mm256_loadu_si256(b.add(64 * half + 32) as _);
                let h = _mm256_loadu_si256(b.add(128 + 32 * half) as _);
                let parts = [
                    (_mm256_and_si256(l0, low), _mm256_slli_epi16(h, 4)),
                    (_mm256_and_si256(l1, low), _mm256_slli_epi16(h, 2)),
                    (_mm256_and_si256(_mm256_srli_epi16(l0, 4), low), h),
                    (
                        _mm256_and_si256(_mm256_srli_epi16(l1, 4), low),
                        _mm256_srli_epi16(h, 2),
                    ),
                ];
                for (p, (nib, hi)) in parts.into_iter().enumerate() {
                    let q = _mm256_or_si256(nib, _mm256_and_si256(hi, top));
                    u.q[at + 4 * half + p] = _mm256_sub_epi8(q, off);
                }
            }
        }
    }

    /// Weight row `j`, unpacked in `u`, × activation rows i..i+A.
    #[inline(always)]
    unsafe fn dots<U: Unpack, D: Dot256, const A: usize>(
        p: &Panel,
        u: &Unpacked,
        j: usize,
        i: usize,
    ) {
        let qa = p.qa;
        let nb = qa.nb;
        let zero = _mm256_setzero_si256();
        // Two accumulators per output, even and odd groups: one chain of
        // dependent FMAs per row would leave a decode step (one activation
        // row) waiting on their latency.
        let mut acc = [[_mm256_setzero_ps(); 2]; A];
        let mut mins = [[0f32; 2]; A];
        // Group g into accumulator L (a constant, so the accumulators
        // stay in registers).
        macro_rules! group {
            ($g:expr, $L:literal) => {{
                let g = $g;
                let w = *u.q.get_unchecked(g);
                let scale = *u.scale.get_unchecked(g);
                let wu = if U::SIGNED { _mm256_sign_epi8(w, w) } else { w };
                for a in 0..A {
                    let at = (i + a) * nb + g;
                    let x = _mm256_loadu_si256(qa.qs.as_ptr().add(at * BLOCK) as _);
                    let xs = if U::SIGNED { _mm256_sign_epi8(x, w) } else { x };
                    let dot = D::dot(zero, wu, xs);
                    let dx = *qa.d.get_unchecked(at);
                    let s = if U::TWO_SCALES {
                        _mm256_set_m128(_mm_set1_ps(scale[1] * dx), _mm_set1_ps(scale[0] * dx))
                    } else {
                        _mm256_set1_ps(scale[0] * dx)
                    };
                    acc[a][$L] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), s, acc[a][$L]);
                    if U::MIN {
                        mins[a][$L] += *u.min.get_unchecked(g) * *qa.sum.get_unchecked(at);
                    }
                }
            }};
        }
        let mut g = 0;
        while g + 1 < nb {
            group!(g, 0);
            group!(g + 1, 1);
            g += 2;
        }
        if g < nb {
            group!(g, 0);
        }
        for a in 0..A {
            let total = _mm256_add_ps(acc[a][0], acc[a][1]);
            *p.out.add((i + a) * p.n + j) = hsum256(total) + (mins[a][0] + mins[a][1]);
        }
    }

    /// The panel in activation tiles of up to four rows. A macro, so the
    /// loop is written inside each `target_feature` function.
    macro_rules! panel_body {
        ($U:ty, $D:ty, $p:expr) => {{
            let p = $p;
            let groups = p.qa.nb;
            let mut q = vec![_mm256_setzero_si256(); groups];
            let mut scale = vec![[0f32; 2]; groups];
            let mut min = vec![0f32; groups];
            let mut u = Unpacked {
                q: &mut q,
                scale: &mut scale,
                min: &mut min,
            };
            let t = p.qa.rows;
            for j in p.r0..p.r0 + p.rows {
                let row = p.w.add(j * p.row_blocks * <$U>::BYTES);
                for blk in 0..p.row_blocks {
                    <$U>::unpack(row.add(blk * <$U>::BYTES), &mut u, blk * <$U>::GROUPS);
                }
                let mut i = 0;
                while i < t {
                    match (t - i).min(4) {
                        1 => dots::<$U, $D, 1>(p, &u, j, i),
                        2 => dots::<$U, $D, 2>(p, &u, j, i),
                        3 => dots::<$U, $D, 3>(p, &u, j, i),
                        _ => dots::<$U, $D, 4>(p, &u, j, i),
                    }
                    i += 4;
                }
            }
        }};
    }

    /// `vpdpbusd` in its AVX-512 (EVEX) encoding on 256-bit registers:
    /// CPUs with AVX-512 VNNI need not have AVX-VNNI.
    pub struct Evex;
    impl Dot256 for Evex {
        const VNNI: bool = true;
        #[inline(always)]
        unsafe fn dot(init: __m256i, u: __m256i, s: __m256i) -> __m256i {
            _mm256_dpbusd_epi32(init, u, s)
        }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
    pub unsafe fn panel_evex<U: Unpack>(p: &Panel) {
        panel_body!(U, Evex, p)
    }

    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    pub unsafe fn panel_vnni256<U: Unpack>(p: &Panel) {
        panel_body!(U, Vnni, p)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn panel_avx2<U: Unpack>(p: &Panel) {
        panel_body!(U, Madd, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::bytes::SharedBytes;
    use crate::backend::quant::{dequantize_scalar, encode, WeightFormat};

    const FORMATS: [WeightFormat; 5] = [
        WeightFormat::Q5_0,
        WeightFormat::Q5_1,
        WeightFormat::Q4K,
        WeightFormat::Q5K,
        WeightFormat::Q6K,
    ];

    #[test]
    fn products_match_the_dequantized_weights_and_do_not_depend_on_the_batch() {
        let pool = ComputePool::new(2);
        let (n, k, t) = (37, 512, 7);
        let x = crate::backend::testing::uniform(t * k, 21, 2.0);
        for format in FORMATS {
            let values = crate::backend::testing::uniform(n * k, 17, 1.0);
            let bytes = encode(format, &values);
            let mut dq = vec![0f32; n * k];
            dequantize_scalar(format, &bytes, &mut dq);
            let m = CpuMatrix::new(format, n, k, SharedBytes::owned(bytes)).unwrap();
            let mut simd_reference: Option<Vec<f32>> = None;
            for isa in Isa::ALL {
                if !isa.supported() {
                    continue;
                }
                let mut out = vec![0f32; t * n];
                matmul(&pool, isa, &x, t, &m, &mut out);
                for i in 0..t {
                    for j in 0..n {
                        let (xi, wj) = (&x[i * k..(i + 1) * k], &dq[j * k..(j + 1) * k]);
                        let exact: f64 =
                            xi.iter().zip(wj).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let scale: f64 = xi
                            .iter()
                            .zip(wj)
                            .map(|(a, b)| (*a as f64 * *b as f64).abs())
                            .sum();
                        let err = (out[i * n + j] as f64 - exact).abs();
                        // The activations' 8-bit rounding: well under 1%
                        // of the sum of magnitudes.
                        assert!(
                            err <= 0.01 * scale,
                            "{format:?} {isa:?} ({i},{j}): {err} vs {scale}"
                        );
                    }
                }
                // The last row alone gives the same bits.
                let mut one = vec![0f32; n];
                matmul(&pool, isa, &x[(t - 1) * k..], 1, &m, &mut one);
                assert_eq!(one, out[(t - 1) * n..], "{format:?} {isa:?}: batch of one");
                // Every SIMD level sums exact integers and scales them in
                // the same order: the same bits.
                if isa != Isa::Scalar {
                    match &simd_reference {
                        Some(r) => assert_eq!(r, &out, "{format:?} {isa:?} vs another SIMD level"),
                        None => simd_reference = Some(out),
                    }
                }
            }
        }
    }

    #[test]
    fn embedding_rows_dequantize_as_the_reference() {
        let (n, k) = (3, 256);
        let values = crate::backend::testing::uniform(n * k, 4, 1.0);
        for format in FORMATS {
            let bytes = encode(format, &values);
            let mut want = vec![0f32; n * k];
            dequantize_scalar(format, &bytes, &mut want);
            let m = CpuMatrix::new(format, n, k, SharedBytes::owned(bytes)).unwrap();
            let mut row = vec![0f32; k];
            super::super::dequant::dequantize_rows(Isa::Scalar, &m, 2, 1, &mut row);
            assert_eq!(row, want[2 * k..], "{format:?}");
        }
    }
}
