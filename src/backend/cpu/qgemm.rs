//! out[T×N] = x[T×K] · Wᵀ for quantized W with integer dot products: the
//! activations are quantized once per call (`q8_act.rs`), then each task
//! takes a panel of weight rows and runs a register tile (4 weight rows ×
//! up to 4 activation rows on AVX-512; 2 × 4 on 256-bit) over every
//! activation row, so each weight block loaded serves several rows.
//!
//! Batch invariance: every output element sees the same instructions
//! whatever T is and wherever it falls in a tile. Its block sums are exact
//! integers; they are scaled and accumulated into a vector of its own in
//! block order (two blocks a step on AVX-512, one on 256-bit, the odd last
//! block zero-padded), Q4_1's mins follow in fixed chunks, and the vector
//! is summed by a fixed tree. A tile narrower than 4 rows repeats a row
//! and drops the copy, so edges change nothing either.

use super::disjoint::DisjointOut;
use super::int_dot::block_dot_scalar;
use super::isa::Isa;
use super::layout::block_shape;
use super::matrix::CpuMatrix;
use super::pool::ComputePool;
use super::q4_groups::Groups;
use super::q8_act::{with_quantized, QuantActs};
use crate::backend::quant::{WeightFormat, BLOCK};
use std::cell::RefCell;

/// Weight rows per task: about four tasks per thread, so a slow thread
/// can be made up for, but no fewer than 16 rows (every task costs a trip
/// through the pool's shared counters) and no more than 128 (a panel stays
/// in L2 while the activation tiles stream past it). Whole tiles of 4.
pub(super) fn panel_rows(n: usize, threads: usize) -> usize {
    (n / (threads * 4)).clamp(16, 128).next_multiple_of(4)
}

thread_local! {
    static GROUPS: RefCell<Groups> = RefCell::new(Groups::default());
}

/// Whether `format` takes the integer path.
pub fn handles(format: WeightFormat) -> bool {
    matches!(
        format,
        WeightFormat::Q8_0 | WeightFormat::Q4_0 | WeightFormat::Q4_1
    )
}

pub fn matmul(pool: &ComputePool, isa: Isa, x: &[f32], t: usize, w: &CpuMatrix, out: &mut [f32]) {
    let (k, n) = (w.cols, w.rows);
    let out_ptr = DisjointOut::new(out);
    let with_bias = w.format == WeightFormat::Q4_0;
    with_quantized(pool, isa, x, t, k, with_bias, |qa| {
        let nibbles = matches!(w.format, WeightFormat::Q4_0 | WeightFormat::Q4_1);
        let mut groups = GROUPS.with(|g| std::mem::take(&mut *g.borrow_mut()));
        if isa == Isa::Avx512Vnni && nibbles {
            groups.build(qa);
        }
        let groups_ref = (isa == Isa::Avx512Vnni && nibbles).then_some(&groups);
        let per_task = panel_rows(n, pool.n_threads());
        pool.run(n.div_ceil(per_task), |p| {
            let r0 = p * per_task;
            let rows = per_task.min(n - r0);
            // SAFETY: this task alone writes columns r0..r0+rows, which
            // exist; `isa` is a level `Isa::supported` vouched for.
            unsafe { panel(isa, w, qa, groups_ref, r0, rows, out_ptr.get(), n) };
        });
        GROUPS.with(|g| *g.borrow_mut() = groups);
    });
}

/// out[i*n + r0 + j] for every activation row i and j < rows.
#[allow(clippy::too_many_arguments)]
unsafe fn panel(
    isa: Isa,
    w: &CpuMatrix,
    qa: &QuantActs,
    groups: Option<&Groups>,
    r0: usize,
    rows: usize,
    out: *mut f32,
    n: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use super::int_dot::x86 as k;
        use x86::Panel;
        let p = Panel {
            q: w.quants.as_ptr(),
            s: w.scales.as_ptr(),
            qa,
            groups,
            r0,
            rows,
            out,
            n,
        };
        macro_rules! fmt {
            ($f:ident) => {
                match w.format {
                    WeightFormat::Q8_0 => return x86::$f::<k::Q8_0>(&p),
                    WeightFormat::Q4_0 => return x86::$f::<k::Q4_0>(&p),
                    WeightFormat::Q4_1 => return x86::$f::<k::Q4_1>(&p),
                    _ => {}
                }
            };
        }
        match isa {
            Isa::Avx512Vnni => fmt!(panel_vnni512),
            Isa::AvxVnni => fmt!(panel_vnni256),
            Isa::Avx512 | Isa::Avx2 => fmt!(panel_avx2),
            Isa::Scalar => {}
        }
    }
    let _ = (isa, groups);
    panel_scalar(w, qa, r0, rows, out, n)
}

/// The portable kernel, one output at a time, its own fixed order: per
/// block, the integer sum scaled by d_w then d_x (then Q4_1's m·s), added
/// in block order.
unsafe fn panel_scalar(
    w: &CpuMatrix,
    qa: &QuantActs,
    r0: usize,
    rows: usize,
    out: *mut f32,
    n: usize,
) {
    let nb = qa.nb;
    let (qb, ns) = block_shape(w.format);
    let f16 = |i: usize| half::f16::from_bits(w.scales[i]).to_f32();
    for i in 0..qa.rows {
        let x = qa.row(i);
        for j in r0..r0 + rows {
            let mut acc = 0f32;
            for b in 0..nb {
                let g = j * nb + b;
                let xg = i * nb + b;
                let dot = block_dot_scalar(
                    w.format,
                    &w.quants[g * qb..(g + 1) * qb],
                    &x[b * BLOCK..(b + 1) * BLOCK],
                );
                acc += dot as f32 * f16(g * ns) * qa.d[xg];
                if w.format == WeightFormat::Q4_1 {
                    acc += f16(g * ns + 1) * qa.sum[xg];
                }
            }
            *out.add(i * n + j) = acc;
        }
    }
}

// Register tiles read best as index loops.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use super::super::int_dot::x86::*;
    use super::super::q4_groups::{Groups, GROUP};
    use super::super::q8_act::{QuantActs, LANES};
    use crate::backend::quant::{WeightFormat, BLOCK};
    use std::arch::x86_64::*;

    /// How many rows ahead a tile prefetches the block it loads: a decode
    /// step streams its weights once, and waits on memory unless several
    /// rows are in flight.
    const AHEAD_ROWS: usize = 8;

    /// One task's share: weight rows r0..r0+rows of the matrix whose
    /// quants and scales start at q and s.
    pub struct Panel<'a> {
        pub q: *const u8,
        pub s: *const u16,
        pub qa: &'a QuantActs,
        /// The activations regrouped for four-block nibble steps, when the
        /// AVX-512 kernel of a nibble format runs.
        pub groups: Option<&'a Groups>,
        pub r0: usize,
        pub rows: usize,
        pub out: *mut f32,
        pub n: usize,
    }

    /// Where tile rows start: R weight rows from j (the last real row
    /// repeated past the panel), A activation rows from i.
    struct Rows<const R: usize, const A: usize> {
        wq: [*const u8; R],
        ws: [*const u16; R],
        xq: [*const i8; A],
        xd: [*const f32; A],
        xs: [*const f32; A],
        xb: [*const i32; A],
    }

    impl<const R: usize, const A: usize> Rows<R, A> {
        #[inline(always)]
        unsafe fn new<W: IntWeights>(p: &Panel, j: usize, i: usize) -> Self {
            let nb = p.qa.nb;
            let last = p.r0 + p.rows - 1;
            let row = |r: usize| (j + r).min(last) * nb;
            let qa = p.qa;
            Rows {
                wq: std::array::from_fn(|r| p.q.add(row(r) * W::QBYTES)),
                ws: std::array::from_fn(|r| p.s.add(row(r) * W::SCALES)),
                xq: std::array::from_fn(|a| qa.qs.as_ptr().add((i + a) * nb * BLOCK)),
                xd: std::array::from_fn(|a| qa.d.as_ptr().add((i + a) * nb)),
                xs: std::array::from_fn(|a| qa.sum.as_ptr().add((i + a) * nb)),
                xb: std::array::from_fn(|a| {
                    if qa.bias.is_empty() {
                        std::ptr::null()
                    } else {
                        qa.bias.as_ptr().add((i + a) * nb * LANES)
                    }
                }),
            }
        }
    }

    /// Runs `tile(rows, i, j)` over the panel: activation tiles of up to
    /// 4 rows outside, weight tiles of R rows inside (the panel's blocks
    /// stay in L1 across activation tiles). Stores only real outputs.
    #[inline(always)]
    unsafe fn drive<const R: usize>(
        p: &Panel,
        mut tile: impl FnMut(usize, usize, usize) -> [[f32; R]; 4],
    ) {
        let t = p.qa.rows;
        let mut i = 0;
        while i < t {
            let a_n = (t - i).min(4);
            let mut j = p.r0;
            while j < p.r0 + p.rows {
                let res = tile(a_n, i, j);
                let r_n = (p.r0 + p.rows - j).min(R);
                for a in 0..a_n {
                    for r in 0..r_n {
                        *p.out.add((i + a) * p.n + j + r) = res[a][r];
                    }
                }
                j += R;
            }
            i += 4;
        }
    }

    /// Q4_1's Σ m·s, in chunks of 16 blocks, into each accumulator.
    #[inline(always)]
    unsafe fn mins512<W: IntWeights, const A: usize>(
        rw: &Rows<4, A>,
        nb: usize,
        acc: &mut [[__m512; 4]; A],
    ) {
        if W::FORMAT == WeightFormat::Q4_1 {
            let mut c = 0;
            while c < nb {
                let m_n = (nb - c).min(16);
                let mut m = [_mm512_setzero_ps(); 4];
                for r in 0..4 {
                    m[r] = mins16(rw.ws[r].add(c * 2), m_n);
                }
                for a in 0..A {
                    let s = load16_masked(rw.xs[a].add(c), m_n);
                    for r in 0..4 {
                        acc[a][r] = _mm512_fmadd_ps(m[r], s, acc[a][r]);
                    }
                }
                c += 16;
            }
        }
    }

    /// 4 weight rows × A activation rows, two blocks per 512-bit step.
    #[inline(always)]
    unsafe fn tile512<W: IntWeights, const A: usize>(rw: &Rows<4, A>, nb: usize) -> [[f32; 4]; 4] {
        let zero = _mm512_setzero_si512();
        let mut acc = [[_mm512_setzero_ps(); 4]; A];
        let mut b = 0;
        while b < nb {
            let two = b + 1 < nb;
            let mut w = [zero; 4];
            let mut dw = [_mm512_setzero_ps(); 4];
            let mut wbias = [zero; 4];
            for r in 0..4 {
                let q = rw.wq[r].add(b * W::QBYTES);
                // The next tile's rows: a decode step streams weights
                // once and waits on memory otherwise.
                _mm_prefetch::<_MM_HINT_T0>(
                    q.wrapping_add(AHEAD_ROWS * nb * W::QBYTES) as *const i8
                );
                w[r] = W::w512(q, two);
                dw[r] = W::d512(rw.ws[r].add(b * W::SCALES), two);
                if W::FORMAT == WeightFormat::Q8_0 {
                    // x is fed as x + 128 (unsigned); start from −128·Σw.
                    let s = _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(-128), w[r]);
                    wbias[r] = _mm512_sub_epi32(zero, s);
                }
            }
            for a in 0..A {
                let xp = rw.xq[a].add(b * BLOCK);
                let mut x = if two {
                    _mm512_loadu_si512(xp as _)
                } else {
                    _mm512_zextsi256_si512(_mm256_loadu_si256(xp as _))
                };
                let d0 = *rw.xd[a].add(b);
                let dx = if two {
                    // insertf64x4 (AVX-512F) moves the same 256 bits as
                    // insertf32x8, which would need AVX-512DQ.
                    let hi = _mm256_castps_pd(_mm256_set1_ps(*rw.xd[a].add(b + 1)));
                    let lo = _mm512_castps_pd(_mm512_set1_ps(d0));
                    _mm512_castpd_ps(_mm512_insertf64x4::<1>(lo, hi))
                } else {
                    _mm512_set1_ps(d0)
                };
                let mut xbias = zero;
                if W::FORMAT == WeightFormat::Q8_0 {
                    x = _mm512_xor_si512(x, _mm512_set1_epi8(-128));
                }
                if W::FORMAT == WeightFormat::Q4_0 {
                    let bp = rw.xb[a].add(b * LANES);
                    xbias = if two {
                        _mm512_loadu_si512(bp as _)
                    } else {
                        _mm512_zextsi256_si512(_mm256_loadu_si256(bp as _))
                    };
                }
                for r in 0..4 {
                    let isum = match W::FORMAT {
                        WeightFormat::Q8_0 => _mm512_dpbusd_epi32(wbias[r], x, w[r]),
                        _ => _mm512_dpbusd_epi32(xbias, w[r], x),
                    };
                    let scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), dw[r]);
                    acc[a][r] = _mm512_fmadd_ps(scaled, dx, acc[a][r]);
                }
            }
            b += 2;
        }
        mins512::<W, A>(rw, nb, &mut acc);
        let mut res = [[0f32; 4]; 4];
        for a in 0..A {
            _mm_storeu_ps(res[a].as_mut_ptr(), reduce4_512(acc[a]));
        }
        res
    }

    /// 4 weight rows × A activation rows of a nibble format, four blocks
    /// per step (`q4_groups.rs`); Q4_1's mins as in `tile512`.
    #[inline(always)]
    unsafe fn tile512_groups<W: IntWeights, const A: usize>(
        rw: &Rows<4, A>,
        g: &Groups,
        i: usize,
        nb: usize,
    ) -> [[f32; 4]; 4] {
        let zero = _mm512_setzero_si512();
        let spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        let mut acc = [[_mm512_setzero_ps(); 4]; A];
        let ng = g.ng;
        for s in 0..ng {
            let b = s * GROUP;
            let m = (nb - b).min(GROUP);
            let mut lo = [zero; 4];
            let mut hi = [zero; 4];
            let mut dw = [_mm512_setzero_ps(); 4];
            for r in 0..4 {
                let q = rw.wq[r].add(b * W::QBYTES);
                _mm_prefetch::<_MM_HINT_T0>(
                    q.wrapping_add(AHEAD_ROWS * nb * W::QBYTES) as *const i8
                );
                (lo[r], hi[r]) = nibbles4(q, m);
                dw[r] = W::d4(rw.ws[r].add(b * W::SCALES), m);
            }
            for a in 0..A {
                let at = ((i + a) * ng + s) * GROUP;
                let xp = g.qs.as_ptr().add(at * BLOCK);
                let x_lo = _mm512_loadu_si512(xp as _);
                let x_hi = _mm512_loadu_si512(xp.add(64) as _);
                let dx = _mm512_permutexvar_ps(
                    spread,
                    _mm512_castps128_ps512(_mm_loadu_ps(g.d.as_ptr().add(at))),
                );
                // Q4_0's −8·Σq in the first lane of each block.
                let init = if W::FORMAT == WeightFormat::Q4_0 {
                    _mm512_loadu_si512(g.bias.as_ptr().add(at * 4) as _)
                } else {
                    zero
                };
                for r in 0..4 {
                    let isum = _mm512_dpbusd_epi32(init, lo[r], x_lo);
                    let isum = _mm512_dpbusd_epi32(isum, hi[r], x_hi);
                    let scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(isum), dw[r]);
                    acc[a][r] = _mm512_fmadd_ps(scaled, dx, acc[a][r]);
                }
            }
        }
        mins512::<W, A>(rw, nb, &mut acc);
        let mut res = [[0f32; 4]; 4];
        for a in 0..A {
            _mm_storeu_ps(res[a].as_mut_ptr(), reduce4_512(acc[a]));
        }
        res
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
    pub unsafe fn panel_vnni512<W: IntWeights>(p: &Panel) {
        let nb = p.qa.nb;
        if let Some(g) = p.groups {
            drive::<4>(p, |a_n, i, j| match a_n {
                1 => tile512_groups::<W, 1>(&Rows::new::<W>(p, j, i), g, i, nb),
                2 => tile512_groups::<W, 2>(&Rows::new::<W>(p, j, i), g, i, nb),
                3 => tile512_groups::<W, 3>(&Rows::new::<W>(p, j, i), g, i, nb),
                _ => tile512_groups::<W, 4>(&Rows::new::<W>(p, j, i), g, i, nb),
            });
            return;
        }
        drive::<4>(p, |a_n, i, j| match a_n {
            1 => tile512::<W, 1>(&Rows::new::<W>(p, j, i), nb),
            2 => tile512::<W, 2>(&Rows::new::<W>(p, j, i), nb),
            3 => tile512::<W, 3>(&Rows::new::<W>(p, j, i), nb),
            _ => tile512::<W, 4>(&Rows::new::<W>(p, j, i), nb),
        });
    }

    /// How a 256-bit level sums bytes: `vpdpbusd`, or `pmaddubsw` then
    /// `pmaddwd` (whose i16 pairs cannot saturate here: one side is a
    /// nibble, or both are within ±127 thanks to the sign trick).
    pub(in crate::backend::cpu) trait Dot256 {
        const VNNI: bool;
        unsafe fn dot(init: __m256i, u: __m256i, s: __m256i) -> __m256i;
    }
    pub(in crate::backend::cpu) struct Vnni;
    pub(in crate::backend::cpu) struct Madd;
    impl Dot256 for Vnni {
        const VNNI: bool = true;
        #[inline(always)]
        unsafe fn dot(init: __m256i, u: __m256i, s: __m256i) -> __m256i {
            _mm256_dpbusd_avx_epi32(init, u, s)
        }
    }
    impl Dot256 for Madd {
        const VNNI: bool = false;
        #[inline(always)]
        unsafe fn dot(init: __m256i, u: __m256i, s: __m256i) -> __m256i {
            let pairs = _mm256_maddubs_epi16(u, s);
            _mm256_add_epi32(init, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
        }
    }

    /// 2 weight rows × A activation rows, one block per step (16 ymm
    /// registers: 8 accumulators and the operands).
    #[inline(always)]
    unsafe fn tile256<W: IntWeights, D: Dot256, const A: usize>(
        rw: &Rows<2, A>,
        nb: usize,
    ) -> [[f32; 2]; 4] {
        let zero = _mm256_setzero_si256();
        let mut acc = [[_mm256_setzero_ps(); 2]; A];
        for b in 0..nb {
            let mut w = [zero; 2];
            let mut u = [zero; 2];
            let mut dw = [_mm256_setzero_ps(); 2];
            let mut wbias = [zero; 2];
            for r in 0..2 {
                let q = rw.wq[r].add(b * W::QBYTES);
                _mm_prefetch::<_MM_HINT_T0>(
                    q.wrapping_add(AHEAD_ROWS * nb * W::QBYTES) as *const i8
                );
                w[r] = W::w256(q);
                dw[r] = W::d256(rw.ws[r].add(b * W::SCALES));
                if W::FORMAT == WeightFormat::Q8_0 {
                    if D::VNNI {
                        let s = D::dot(zero, _mm256_set1_epi8(-128), w[r]);
                        wbias[r] = _mm256_sub_epi32(zero, s);
                    } else {
                        u[r] = _mm256_abs_epi8(w[r]);
                    }
                }
            }
            for a in 0..A {
                let x = _mm256_loadu_si256(rw.xq[a].add(b * BLOCK) as _);
                let dx = _mm256_set1_ps(*rw.xd[a].add(b));
                let xbias = if W::FORMAT == WeightFormat::Q4_0 {
                    _mm256_loadu_si256(rw.xb[a].add(b * LANES) as _)
                } else {
                    zero
                };
                let xu = _mm256_xor_si256(x, _mm256_set1_epi8(-128));
                for r in 0..2 {
                    let isum = match W::FORMAT {
                        WeightFormat::Q8_0 if D::VNNI => D::dot(wbias[r], xu, w[r]),
                        WeightFormat::Q8_0 => D::dot(zero, u[r], _mm256_sign_epi8(x, w[r])),
                        _ => D::dot(xbias, w[r], x),
                    };
                    let scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(isum), dw[r]);
                    acc[a][r] = _mm256_fmadd_ps(scaled, dx, acc[a][r]);
                }
            }
        }
        if W::FORMAT == WeightFormat::Q4_1 {
            let mut c = 0;
            while c < nb {
                let m_n = (nb - c).min(8);
                let mut m = [_mm256_setzero_ps(); 2];
                for r in 0..2 {
                    m[r] = mins8(rw.ws[r].add(c * 2), m_n);
                }
                for a in 0..A {
                    let s = load8_masked(rw.xs[a].add(c), m_n);
                    for r in 0..2 {
                        acc[a][r] = _mm256_fmadd_ps(m[r], s, acc[a][r]);
                    }
                }
                c += 8;
            }
        }
        // Four sums per reduction: two activation rows at a time.
        let mut res = [[0f32; 2]; 4];
        let z = _mm256_setzero_ps();
        let mut a = 0;
        while a < A {
            let next = if a + 1 < A { acc[a + 1] } else { [z, z] };
            let mut four = [0f32; 4];
            _mm_storeu_ps(
                four.as_mut_ptr(),
                reduce4_256([acc[a][0], acc[a][1], next[0], next[1]]),
            );
            res[a] = [four[0], four[1]];
            if a + 1 < A {
                res[a + 1] = [four[2], four[3]];
            }
            a += 2;
        }
        res
    }

    /// The panel loop over 256-bit tiles. A macro, not a function: the
    /// closure must be written inside the `target_feature` function, or it
    /// would not inherit its features and every intrinsic in the tile
    /// would become a call.
    macro_rules! panel256 {
        ($W:ty, $D:ty, $p:expr) => {{
            let p = $p;
            let nb = p.qa.nb;
            drive::<2>(p, |a_n, i, j| match a_n {
                1 => tile256::<$W, $D, 1>(&Rows::new::<$W>(p, j, i), nb),
                2 => tile256::<$W, $D, 2>(&Rows::new::<$W>(p, j, i), nb),
                3 => tile256::<$W, $D, 3>(&Rows::new::<$W>(p, j, i), nb),
                _ => tile256::<$W, $D, 4>(&Rows::new::<$W>(p, j, i), nb),
            })
        }};
    }

    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    pub unsafe fn panel_vnni256<W: IntWeights>(p: &Panel) {
        panel256!(W, Vnni, p)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn panel_avx2<W: IntWeights>(p: &Panel) {
        panel256!(W, Madd, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::bytes::SharedBytes;
    use crate::backend::quant::encode;
    use std::time::Instant;

    /// Not a test: one batch of 16 rows against 16 single-row calls, and
    /// a prefill-sized batch. `cargo test --release --lib qgemm -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_batch_vs_single_rows() {
        let pool = ComputePool::new(2);
        let isa = crate::backend::cpu::isa::isa();
        for (n, k) in [(1536, 576), (576, 1536)] {
            for format in [
                WeightFormat::Q4_1,
                WeightFormat::Q4_0,
                WeightFormat::Q8_0,
                WeightFormat::F16,
            ] {
                let w = crate::backend::testing::uniform(n * k, 1, 1.0);
                let m =
                    CpuMatrix::new(format, n, k, SharedBytes::owned(encode(format, &w))).unwrap();
                let x = crate::backend::testing::uniform(256 * k, 2, 1.0);
                let mut out = vec![0f32; 256 * n];
                let time = |f: &mut dyn FnMut()| {
                    f();
                    let reps = 50;
                    let s = Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    s.elapsed().as_secs_f64() / reps as f64
                };
                let single = time(&mut || {
                    for i in 0..16 {
                        super::super::gemm::matmul(
                            &pool,
                            isa,
                            &x[i * k..(i + 1) * k],
                            1,
                            &m,
                            &mut out[i * n..(i + 1) * n],
                        );
                    }
                });
                let batch = time(&mut || {
                    super::super::gemm::matmul(&pool, isa, &x[..16 * k], 16, &m, &mut out[..16 * n])
                });
                let big =
                    time(&mut || super::super::gemm::matmul(&pool, isa, &x, 256, &m, &mut out));
                let gops = |t: f64, rows: usize| 2.0 * (rows * n * k) as f64 / t / 1e9;
                println!(
                    "{:?} {n}×{k} on {}: 16 × T=1 {:.1} µs ({:.0} GOP/s), T=16 {:.1} µs ({:.0} GOP/s, {:.2}x), T=256 {:.0} µs ({:.0} GOP/s)",
                    format,
                    isa.name(),
                    single * 1e6,
                    gops(single, 16),
                    batch * 1e6,
                    gops(batch, 16),
                    single / batch,
                    big * 1e6,
                    gops(big, 256)
                );
            }
        }
    }
}
