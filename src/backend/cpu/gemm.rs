//! out[T×N] = x[T×K] · Wᵀ, W stored N×K in any `WeightFormat`.
//!
//! A task owns a panel of weight rows: it dequantizes them once into f32
//! scratch, then runs a register-tiled kernel over every activation row of
//! the step. Every output element is computed by the same sequence of
//! instructions whatever T is and wherever its row falls in a tile: one
//! 16-lane (or 8-lane) accumulator fed in k order, reduced the same way.
//! That is what makes the kernel batch-invariant: a sequence's logits do
//! not depend on what else shares its step.

use super::dequant::dequantize_rows;
use super::disjoint::DisjointOut;
use super::isa::Isa;
use super::matrix::CpuMatrix;
use super::pool::ComputePool;
use super::reduce::dot_scalar;
use crate::backend::quant::BLOCK;
use std::cell::RefCell;

/// Weight rows per task.
const PANEL: usize = 16;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Up to this many activation rows, weights are dequantized in registers
/// and used at once (decode steps); above it, a dequantized panel is
/// reused across rows (prefill and batched steps).
const FUSED_MAX_ROWS: usize = 1;

pub fn matmul(pool: &ComputePool, isa: Isa, x: &[f32], t: usize, w: &CpuMatrix, out: &mut [f32]) {
    let (k, n) = (w.cols, w.rows);
    assert_eq!(x.len(), t * k, "activation shape");
    assert_eq!(out.len(), t * n, "output shape");
    if super::qgemm::handles(w.format) {
        return super::qgemm::matmul(pool, isa, x, t, w, out);
    }
    if super::unpacked::handles(w.format) {
        return super::unpacked::matmul(pool, isa, x, t, w, out);
    }
    matmul_f32(pool, isa, x, t, w, out)
}

/// The same product with f32 activations whatever the weight format:
/// quantized weights are dequantized (in registers, or per panel) and
/// multiplied in f32.
pub fn matmul_f32(
    pool: &ComputePool,
    isa: Isa,
    x: &[f32],
    t: usize,
    w: &CpuMatrix,
    out: &mut [f32],
) {
    let (k, n) = (w.cols, w.rows);
    assert_eq!(x.len(), t * k, "activation shape");
    assert_eq!(out.len(), t * n, "output shape");
    let isa = isa.float();
    let out_ptr = DisjointOut::new(out);
    let n_panels = n.div_ceil(PANEL);
    #[cfg(target_arch = "x86_64")]
    if t <= FUSED_MAX_ROWS && isa != Isa::Scalar && !super::unpacked::handles(w.format) {
        use super::blocks::x86::with_block;
        let nb = k / BLOCK;
        pool.run(n_panels, |p| {
            let r0 = p * PANEL;
            let rows = PANEL.min(n - r0);
            // Block r0·nb: the first of this panel's rows.
            let (qp, sp) = (w.quants.as_ptr(), w.scales.as_ptr());
            let first = r0 * nb;
            for i in 0..t {
                let xi = &x[i * k..(i + 1) * k];
                // SAFETY: rows r0..r0+rows exist; this task alone writes
                // their columns.
                let dst = unsafe { out_ptr.get().add(i * n + r0) };
                match isa {
                    Isa::Avx512 => with_block!(w.format, B => unsafe { super::gemv::x86::fused_avx512::<B>(xi, qp, sp, first, rows, dst) }),
                    _ => with_block!(w.format, B => unsafe { super::gemv::x86::fused_avx2::<B>(xi, qp, sp, first, rows, dst) }),
                }
            }
        });
        return;
    }
    pool.run(n_panels, |p| {
        let r0 = p * PANEL;
        let rows = PANEL.min(n - r0);
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < rows * k {
                s.resize(rows * k, 0.0);
            }
            let panel = &mut s[..rows * k];
            dequantize_rows(isa, w, r0, rows, panel);
            // SAFETY: this task alone writes columns r0..r0+rows.
            unsafe { panel_kernel(isa, x, t, k, panel, rows, out_ptr.get(), n, r0) };
        });
    });
}

/// out[i*n + r0 + j] = x[i] · panel[j] for all i < t, j < rows.
#[allow(clippy::too_many_arguments)]
unsafe fn panel_kernel(
    isa: Isa,
    x: &[f32],
    t: usize,
    k: usize,
    panel: &[f32],
    rows: usize,
    out: *mut f32,
    n: usize,
    r0: usize,
) {
    #[cfg(target_arch = "x86_64")]
    match isa.float() {
        Isa::Avx512 => return x86::panel_avx512(x, t, k, panel, rows, out, n, r0),
        Isa::Avx2 => return x86::panel_avx2(x, t, k, panel, rows, out, n, r0),
        _ => {}
    }
    let _ = isa;
    for i in 0..t {
        let xi = &x[i * k..(i + 1) * k];
        for j in 0..rows {
            *out.add(i * n + r0 + j) = dot_scalar(xi, &panel[j * k..(j + 1) * k]);
        }
    }
}

// Register tiles read best as index loops.
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use super::super::reduce::x86::hsum256;
    use std::arch::x86_64::*;

    /// Tiles of 4 activation rows × 4 weight rows (16 accumulators), then
    /// the leftovers one pair at a time with the identical per-pair sequence.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    pub unsafe fn panel_avx512(
        x: &[f32],
        t: usize,
        k: usize,
        panel: &[f32],
        rows: usize,
        out: *mut f32,
        n: usize,
        r0: usize,
    ) {
        let xp = x.as_ptr();
        let wp = panel.as_ptr();
        let rows4 = rows / 4 * 4;
        let t4 = t / 4 * 4;
        let mut i = 0;
        while i < t4 {
            let mut j = 0;
            while j < rows4 {
                let mut acc = [[_mm512_setzero_ps(); 4]; 4];
                let mut kk = 0;
                while kk < k {
                    let w = [
                        _mm512_loadu_ps(wp.add(j * k + kk)),
                        _mm512_loadu_ps(wp.add((j + 1) * k + kk)),
                        _mm512_loadu_ps(wp.add((j + 2) * k + kk)),
                        _mm512_loadu_ps(wp.add((j + 3) * k + kk)),
                    ];
                    for a in 0..4 {
                        let xv = _mm512_loadu_ps(xp.add((i + a) * k + kk));
                        for b in 0..4 {
                            acc[a][b] = _mm512_fmadd_ps(w[b], xv, acc[a][b]);
                        }
                    }
                    kk += 16;
                }
                for a in 0..4 {
                    for b in 0..4 {
                        *out.add((i + a) * n + r0 + j + b) = _mm512_reduce_add_ps(acc[a][b]);
                    }
                }
                j += 4;
            }
            for a in 0..4 {
                for jj in rows4..rows {
                    *out.add((i + a) * n + r0 + jj) = dot16(xp.add((i + a) * k), wp.add(jj * k), k);
                }
            }
            i += 4;
        }
        for ii in t4..t {
            let mut j = 0;
            while j < rows4 {
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut kk = 0;
                while kk < k {
                    let xv = _mm512_loadu_ps(xp.add(ii * k + kk));
                    for b in 0..4 {
                        acc[b] =
                            _mm512_fmadd_ps(_mm512_loadu_ps(wp.add((j + b) * k + kk)), xv, acc[b]);
                    }
                    kk += 16;
                }
                for b in 0..4 {
                    *out.add(ii * n + r0 + j + b) = _mm512_reduce_add_ps(acc[b]);
                }
                j += 4;
            }
            for jj in rows4..rows {
                *out.add(ii * n + r0 + jj) = dot16(xp.add(ii * k), wp.add(jj * k), k);
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma")]
    unsafe fn dot16(x: *const f32, w: *const f32, k: usize) -> f32 {
        let mut acc = _mm512_setzero_ps();
        let mut kk = 0;
        while kk < k {
            acc = _mm512_fmadd_ps(_mm512_loadu_ps(w.add(kk)), _mm512_loadu_ps(x.add(kk)), acc);
            kk += 16;
        }
        _mm512_reduce_add_ps(acc)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot8(x: *const f32, w: *const f32, k: usize) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut kk = 0;
        while kk < k {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(w.add(kk)), _mm256_loadu_ps(x.add(kk)), acc);
            kk += 8;
        }
        hsum256(acc)
    }

    /// Tiles of 2 activation rows × 4 weight rows (8 of 16 registers).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn panel_avx2(
        x: &[f32],
        t: usize,
        k: usize,
        panel: &[f32],
        rows: usize,
        out: *mut f32,
        n: usize,
        r0: usize,
    ) {
        let xp = x.as_ptr();
        let wp = panel.as_ptr();
        let rows4 = rows / 4 * 4;
        let t2 = t / 2 * 2;
        let mut i = 0;
        while i < t2 {
            let mut j = 0;
            while j < rows4 {
                let mut acc = [[_mm256_setzero_ps(); 4]; 2];
                let mut kk = 0;
                while kk < k {
                    let x0 = _mm256_loadu_ps(xp.add(i * k + kk));
                    let x1 = _mm256_loadu_ps(xp.add((i + 1) * k + kk));
                    for b in 0..4 {
                        let w = _mm256_loadu_ps(wp.add((j + b) * k + kk));
                        acc[0][b] = _mm256_fmadd_ps(w, x0, acc[0][b]);
                        acc[1][b] = _mm256_fmadd_ps(w, x1, acc[1][b]);
                    }
                    kk += 8;
                }
                for a in 0..2 {
                    for b in 0..4 {
                        *out.add((i + a) * n + r0 + j + b) = hsum256(acc[a][b]);
                    }
                }
                j += 4;
            }
            for a in 0..2 {
                for jj in rows4..rows {
                    *out.add((i + a) * n + r0 + jj) = dot8(xp.add((i + a) * k), wp.add(jj * k), k);
                }
            }
            i += 2;
        }
        for ii in t2..t {
            for jj in 0..rows {
                *out.add(ii * n + r0 + jj) = dot8(xp.add(ii * k), wp.add(jj * k), k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::bytes::SharedBytes;
    use crate::backend::cpu::q8_act::QuantActs;
    use crate::backend::quant::{dequantize_scalar, encode, WeightFormat};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::backend::testing::uniform(n, seed, 1.0)
    }

    /// Σ x·w in f64, and Σ |x·w| (the scale rounding errors grow with).
    fn reference(x: &[f32], t: usize, w: &[f32], n: usize, k: usize) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(t * n);
        for i in 0..t {
            for j in 0..n {
                let terms = (0..k).map(|kk| x[i * k + kk] as f64 * w[j * k + kk] as f64);
                out.push(terms.fold((0.0, 0.0), |(s, a), v| (s + v, a + v.abs())));
            }
        }
        out
    }

    /// The activations as the integer kernels see them, dequantized.
    fn quantized(x: &[f32], t: usize, k: usize) -> Vec<f32> {
        let mut qa = QuantActs::default();
        qa.quantize(&ComputePool::new(1), Isa::Scalar, x, t, k, false);
        (0..t * k)
            .map(|e| qa.qs[e] as f32 * qa.d[e / BLOCK])
            .collect()
    }

    /// Rigorous bound of |x·w − x̂·w| for quantized x̂: each value moves by
    /// at most half its block's step, amax/254.
    fn activation_error(x: &[f32], t: usize, w: &[f32], n: usize, k: usize) -> Vec<f64> {
        let half_step: Vec<f64> = x
            .chunks_exact(BLOCK)
            .map(|b| b.iter().fold(0f32, |a, v| a.max(v.abs())) as f64 / 254.0)
            .collect();
        let mut out = Vec::with_capacity(t * n);
        for i in 0..t {
            for j in 0..n {
                out.push(
                    (0..k)
                        .map(|kk| w[j * k + kk].abs() as f64 * half_step[(i * k + kk) / BLOCK])
                        .sum(),
                );
            }
        }
        out
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    /// Every format on every ISA path: close to the f64 reference (of the
    /// quantized activations, for quantized weights: tight; of the f32
    /// ones: within the quantization's own bound), and every row the same
    /// bits alone, in the full batch, and in sub-batches that put it at
    /// other tile positions.
    #[test]
    fn matches_f64_reference_and_is_batch_invariant_on_every_isa() {
        let pool = ComputePool::new(2);
        let t = 64;
        for (n, k) in [(37, 96), (45, 576), (21, 1536)] {
            let wv = values(n * k, 1);
            let x = values(t * k, 2);
            let xq = quantized(&x, t, k);
            for format in WeightFormat::all() {
                if !k.is_multiple_of(format.block_elems()) {
                    continue;
                }
                let bytes = encode(format, &wv);
                let mut deq = vec![0f32; n * k];
                dequantize_scalar(format, &bytes, &mut deq);
                let m = CpuMatrix::new(format, n, k, SharedBytes::owned(bytes)).unwrap();
                let integer = format.is_quantized();
                let exact = reference(if integer { &xq } else { &x }, t, &deq, n, k);
                let loose = reference(&x, t, &deq, n, k);
                let bound = activation_error(&x, t, &deq, n, k);
                for isa in Isa::ALL {
                    if !isa.supported() {
                        continue;
                    }
                    let what = format!("{format:?}/{isa:?} {n}×{k}");
                    let mut out = vec![0f32; t * n];
                    matmul(&pool, isa, &x, t, &m, &mut out);
                    for (e, g) in out.iter().enumerate() {
                        let (want, mag) = exact[e];
                        let g = *g as f64;
                        assert!(
                            (g - want).abs() <= 1e-5 * mag + 1e-6,
                            "{what}: {g} vs {want} at {e}"
                        );
                        let slack = if integer { bound[e] } else { 0.0 };
                        let (want, mag) = loose[e];
                        assert!(
                            (g - want).abs() <= slack + 1e-5 * mag + 1e-6,
                            "{what}: {g} vs f32 {want} at {e}"
                        );
                    }
                    // Each row alone, then sub-batches of odd sizes at odd
                    // offsets: the very same bits as inside the full batch.
                    for i in 0..t {
                        let mut one = vec![0f32; n];
                        matmul(&pool, isa, &x[i * k..(i + 1) * k], 1, &m, &mut one);
                        assert!(
                            same_bits(&one, &out[i * n..(i + 1) * n]),
                            "{what}: row {i} differs alone vs batched"
                        );
                    }
                    let mut at = 0;
                    for size in [3, 1, 6, 2, 13, 5, 34] {
                        let mut part = vec![0f32; size * n];
                        matmul(&pool, isa, &x[at * k..(at + size) * k], size, &m, &mut part);
                        assert!(
                            same_bits(&part, &out[at * n..(at + size) * n]),
                            "{what}: rows {at}..{} differ in a batch of {size}",
                            at + size
                        );
                        at += size;
                    }
                }
            }
        }
    }

    /// The LM head's shape: 49152 rows, so many tasks and a large matrix.
    #[test]
    fn vocabulary_sized_matrices_match_the_scalar_path() {
        let pool = ComputePool::new(2);
        let (n, k, t) = (49152, 576, 3);
        let wv = values(n * k, 3);
        let x = values(t * k, 4);
        for format in [WeightFormat::Q8_0, WeightFormat::Q4_1] {
            let m = CpuMatrix::new(format, n, k, SharedBytes::owned(encode(format, &wv))).unwrap();
            let mut want = vec![0f32; t * n];
            matmul(&pool, Isa::Scalar, &x, t, &m, &mut want);
            for isa in Isa::ALL {
                if !isa.supported() || isa == Isa::Scalar {
                    continue;
                }
                let mut got = vec![0f32; t * n];
                matmul(&pool, isa, &x, t, &m, &mut got);
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{format:?}/{isa:?}: {g} vs {w}"
                    );
                }
                let mut last = vec![0f32; n];
                matmul(&pool, isa, &x[(t - 1) * k..], 1, &m, &mut last);
                assert!(
                    same_bits(&last, &got[(t - 1) * n..]),
                    "{format:?}/{isa:?}: last row"
                );
            }
        }
    }
}
