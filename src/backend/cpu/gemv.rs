//! Matrix × one activation row (decode steps): weights dequantized in
//! registers and used at once, never stored. Each output is fed exactly as
//! the panel kernel of `gemm.rs` feeds it, so decode and prefill agree bit
//! for bit.

// Register tiles read best as index loops.
#[allow(clippy::needless_range_loop)]
#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use super::super::blocks::x86::Block;
    use super::super::reduce::x86::hsum256;
    use std::arch::x86_64::*;

    /// out[j] = x · row j, weights dequantized in registers, four rows at a
    /// time sharing each load of x. Per output: one accumulator fed block
    /// by block in k order, exactly as the panel kernel feeds it.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
    pub unsafe fn fused_avx512<B: Block>(
        x: &[f32],
        q: *const u8,
        s: *const u16,
        first: usize,
        rows: usize,
        out: *mut f32,
    ) {
        let at = |row: usize, b: usize, n_blocks: usize| {
            let g = first + row * n_blocks + b;
            (q.add(g * B::QBYTES), s.add(g * B::SCALES))
        };
        let n_blocks = x.len() / 32;
        let xp = x.as_ptr();
        let mut j = 0;
        while j + 4 <= rows {
            let mut acc = [_mm512_setzero_ps(); 4];
            for b in 0..n_blocks {
                let x0 = _mm512_loadu_ps(xp.add(b * 32));
                let x1 = _mm512_loadu_ps(xp.add(b * 32 + 16));
                for r in 0..4 {
                    let (qq, ss) = at(j + r, b, n_blocks);
                    // The same block eight rows on: the rows two groups ahead
                    // arrive while this one computes (the stream is latency-bound).
                    _mm_prefetch::<_MM_HINT_T0>(qq.add(8 * n_blocks * B::QBYTES) as *const i8);
                    let v = B::load16(qq, ss);
                    acc[r] = _mm512_fmadd_ps(v[0], x0, acc[r]);
                    acc[r] = _mm512_fmadd_ps(v[1], x1, acc[r]);
                }
            }
            for r in 0..4 {
                *out.add(j + r) = _mm512_reduce_add_ps(acc[r]);
            }
            j += 4;
        }
        while j < rows {
            let mut acc = _mm512_setzero_ps();
            for b in 0..n_blocks {
                let (qq, ss) = at(j, b, n_blocks);
                let v = B::load16(qq, ss);
                acc = _mm512_fmadd_ps(v[0], _mm512_loadu_ps(xp.add(b * 32)), acc);
                acc = _mm512_fmadd_ps(v[1], _mm512_loadu_ps(xp.add(b * 32 + 16)), acc);
            }
            *out.add(j) = _mm512_reduce_add_ps(acc);
            j += 1;
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn fused_avx2<B: Block>(
        x: &[f32],
        q: *const u8,
        s: *const u16,
        first: usize,
        rows: usize,
        out: *mut f32,
    ) {
        let at = |row: usize, b: usize, n_blocks: usize| {
            let g = first + row * n_blocks + b;
            (q.add(g * B::QBYTES), s.add(g * B::SCALES))
        };
        let n_blocks = x.len() / 32;
        let xp = x.as_ptr();
        let mut j = 0;
        while j + 2 <= rows {
            let mut acc = [_mm256_setzero_ps(); 2];
            for b in 0..n_blocks {
                let xs = [
                    _mm256_loadu_ps(xp.add(b * 32)),
                    _mm256_loadu_ps(xp.add(b * 32 + 8)),
                    _mm256_loadu_ps(xp.add(b * 32 + 16)),
                    _mm256_loadu_ps(xp.add(b * 32 + 24)),
                ];
                for r in 0..2 {
                    let (qq, ss) = at(j + r, b, n_blocks);
                    _mm_prefetch::<_MM_HINT_T0>(qq.add(4 * n_blocks * B::QBYTES) as *const i8);
                    let v = B::load8(qq, ss);
                    for q in 0..4 {
                        acc[r] = _mm256_fmadd_ps(v[q], xs[q], acc[r]);
                    }
                }
            }
            for r in 0..2 {
                *out.add(j + r) = hsum256(acc[r]);
            }
            j += 2;
        }
        while j < rows {
            let mut acc = _mm256_setzero_ps();
            for b in 0..n_blocks {
                let (qq, ss) = at(j, b, n_blocks);
                let v = B::load8(qq, ss);
                for q in 0..4 {
                    acc = _mm256_fmadd_ps(v[q], _mm256_loadu_ps(xp.add(b * 32 + q * 8)), acc);
                }
            }
            *out.add(j) = hsum256(acc);
            j += 1;
        }
    }
}
