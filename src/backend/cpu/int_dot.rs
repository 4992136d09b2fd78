//! Integer dot products of one weight block with one quantized activation
//! block (`q8_act.rs`), and the weight-side loaders the SIMD tiles of
//! `qgemm.rs` use. Within a block every product is an exact integer, so
//! how the bytes are summed (`vpdpbusd`, or `pmaddubsw` + `pmaddwd`)
//! cannot change a result; only the float steps that scale block sums can,
//! and those are fixed per output by the tile kernels.
//!
//! Operands follow `vpdpbusd`: unsigned bytes times signed bytes, four
//! products per i32 lane. Nibbles are unsigned already; Q4_0's −8 comes
//! back through the activation's per-lane bias.

use crate::backend::quant::WeightFormat;

/// Σ w·x over one block, exactly: `q` the weight block's quants in the
/// layout of `layout.rs`, `x` 32 activation quants.
pub fn block_dot_scalar(format: WeightFormat, q: &[u8], x: &[i8]) -> i32 {
    let x = |j: usize| x[j] as i32;
    match format {
        WeightFormat::Q8_0 => (0..32).map(|j| (q[j] as i8) as i32 * x(j)).sum(),
        WeightFormat::Q4_0 => (0..16)
            .map(|j| ((q[j] & 0x0F) as i32 - 8) * x(j) + ((q[j] >> 4) as i32 - 8) * x(j + 16))
            .sum(),
        WeightFormat::Q4_1 => (0..16)
            .map(|j| (q[j] & 0x0F) as i32 * x(j) + (q[j] >> 4) as i32 * x(j + 16))
            .sum(),
        // Float formats, and those of `unpacked.rs`, have no tile here.
        _ => 0,
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use crate::backend::quant::WeightFormat;
    use std::arch::x86_64::*;

    /// A quantized weight format as the integer tiles see it. `q` points
    /// at a block's quants, `s` at its f16 scales (`layout.rs`). Loaders
    /// return the 32 weights of a block in activation order (value j in
    /// byte j), so one activation load serves every format.
    pub trait IntWeights {
        const FORMAT: WeightFormat;
        const QBYTES: usize;
        const SCALES: usize;
        /// Blocks b and b+1 in 64 bytes; with `two` false, block b and
        /// zeros (an odd last block).
        unsafe fn w512(q: *const u8, two: bool) -> __m512i;
        /// d of blocks b and b+1, each over eight lanes (zeros for b+1
        /// when `two` is false).
        unsafe fn d512(s: *const u16, two: bool) -> __m512;
        unsafe fn w256(q: *const u8) -> __m256i;
        unsafe fn d256(s: *const u16) -> __m256;
        /// d of `m` ≤ 4 blocks, each over four lanes (zeros past m): the
        /// four-block steps of the nibble formats (`q4_groups.rs`).
        unsafe fn d4(s: *const u16, m: usize) -> __m512 {
            let mask = ((1u32 << m) - 1) as u8;
            let d = _mm_cvtph_ps(_mm_maskz_loadu_epi16(mask, s as *const i16));
            let idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
            _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(d))
        }
    }

    /// Four blocks of nibbles (`m` ≤ 4 of them real, zeros past): their
    /// low nibbles (values 0..16 of each block) and high ones (16..32).
    #[inline(always)]
    pub unsafe fn nibbles4(q: *const u8, m: usize) -> (__m512i, __m512i) {
        let mask = if m >= 4 {
            u64::MAX
        } else {
            (1u64 << (16 * m)) - 1
        };
        let v = _mm512_maskz_loadu_epi8(mask, q as *const i8);
        let low = _mm512_set1_epi8(0x0F);
        (
            _mm512_and_si512(v, low),
            _mm512_and_si512(_mm512_srli_epi16(v, 4), low),
        )
    }

    pub struct Q8_0;
    pub struct Q4_0;
    pub struct Q4_1;

    /// The f16 at `s`, widened.
    #[inline(always)]
    unsafe fn f16(s: *const u16) -> f32 {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(*s as i32)))
    }

    /// Lanes 0..8 from element `lo` of `v`, lanes 8..16 from `hi`.
    #[inline(always)]
    unsafe fn spread(v: __m128, lo: i32, hi: i32) -> __m512 {
        let idx = _mm512_setr_epi32(
            lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi,
        );
        _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v))
    }

    /// Unpacked nibbles of two blocks: [lo b, hi b, lo b+1, hi b+1].
    #[inline(always)]
    unsafe fn nibbles512(q: *const u8, two: bool) -> __m512i {
        let idx = _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3);
        let v = if two {
            _mm512_permutexvar_epi64(idx, _mm512_castsi256_si512(_mm256_loadu_si256(q as _)))
        } else {
            let one = _mm512_castsi128_si512(_mm_loadu_si128(q as _));
            _mm512_maskz_permutexvar_epi64(0x0F, idx, one)
        };
        let shifted = _mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
        _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F))
    }

    #[inline(always)]
    unsafe fn nibbles256(q: *const u8) -> __m256i {
        let v = _mm_loadu_si128(q as _);
        let both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
        _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
    }

    /// One f16 scale per block.
    #[inline(always)]
    unsafe fn d512_single(s: *const u16, two: bool) -> __m512 {
        let bits = if two {
            (s as *const i32).read_unaligned()
        } else {
            *s as i32
        };
        spread(_mm_cvtph_ps(_mm_cvtsi32_si128(bits)), 0, 1)
    }

    impl IntWeights for Q8_0 {
        const FORMAT: WeightFormat = WeightFormat::Q8_0;
        const QBYTES: usize = 32;
        const SCALES: usize = 1;
        #[inline(always)]
        unsafe fn w512(q: *const u8, two: bool) -> __m512i {
            if two {
                _mm512_loadu_si512(q as _)
            } else {
                _mm512_zextsi256_si512(_mm256_loadu_si256(q as _))
            }
        }
        #[inline(always)]
        unsafe fn d512(s: *const u16, two: bool) -> __m512 {
            d512_single(s, two)
        }
        #[inline(always)]
        unsafe fn w256(q: *const u8) -> __m256i {
            _mm256_loadu_si256(q as _)
        }
        #[inline(always)]
        unsafe fn d256(s: *const u16) -> __m256 {
            _mm256_set1_ps(f16(s))
        }
    }

    impl IntWeights for Q4_0 {
        const FORMAT: WeightFormat = WeightFormat::Q4_0;
        const QBYTES: usize = 16;
        const SCALES: usize = 1;
        #[inline(always)]
        unsafe fn w512(q: *const u8, two: bool) -> __m512i {
            nibbles512(q, two)
        }
        #[inline(always)]
        unsafe fn d512(s: *const u16, two: bool) -> __m512 {
            d512_single(s, two)
        }
        #[inline(always)]
        unsafe fn w256(q: *const u8) -> __m256i {
            nibbles256(q)
        }
        #[inline(always)]
        unsafe fn d256(s: *const u16) -> __m256 {
            _mm256_set1_ps(f16(s))
        }
    }

    impl IntWeights for Q4_1 {
        const FORMAT: WeightFormat = WeightFormat::Q4_1;
        const QBYTES: usize = 16;
        const SCALES: usize = 2;
        #[inline(always)]
        unsafe fn d4(s: *const u16, m: usize) -> __m512 {
            // [d, m] pairs: the d of each block.
            let mask = ((1u32 << m) - 1) as u8;
            let dm = _mm256_cvtph_ps(_mm_maskz_loadu_epi32(mask, s as *const i32));
            let idx = _mm512_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4, 6, 6, 6, 6);
            _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(dm))
        }
        #[inline(always)]
        unsafe fn w512(q: *const u8, two: bool) -> __m512i {
            nibbles512(q, two)
        }
        #[inline(always)]
        unsafe fn d512(s: *const u16, two: bool) -> __m512 {
            // [d b, m b, d b+1, m b+1]: the d of each block.
            let v = if two {
                _mm_loadl_epi64(s as _)
            } else {
                _mm_cvtsi32_si128((s as *const i32).read_unaligned())
            };
            spread(_mm_cvtph_ps(v), 0, 2)
        }
        #[inline(always)]
        unsafe fn w256(q: *const u8) -> __m256i {
            nibbles256(q)
        }
        #[inline(always)]
        unsafe fn d256(s: *const u16) -> __m256 {
            _mm256_set1_ps(f16(s))
        }
    }

    /// Q4_1 mins m of `n` ≤ 16 blocks from `s` (their [d, m] pairs), zeros
    /// past n.
    #[inline(always)]
    pub unsafe fn mins16(s: *const u16, n: usize) -> __m512 {
        let mask = ((1u32 << n) - 1) as u16;
        let pairs = _mm512_maskz_loadu_epi32(mask, s as *const i32);
        _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(pairs, 16)))
    }

    /// Q4_1 mins of `n` ≤ 8 blocks, zeros past n (AVX2 only).
    #[inline(always)]
    pub unsafe fn mins8(s: *const u16, n: usize) -> __m256 {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lane);
        let pairs = _mm256_maskload_epi32(s as *const i32, mask);
        let m = _mm256_srli_epi32(pairs, 16);
        // Pack each 128-bit half's four u16, then bring the halves together.
        let packed = _mm256_packus_epi32(m, m);
        let joined = _mm256_permute4x64_epi64(packed, 0b00_00_10_00);
        _mm256_cvtph_ps(_mm256_castsi256_si128(joined))
    }

    /// f32 values of `n` ≤ 16 floats at `p`, zeros past n.
    #[inline(always)]
    pub unsafe fn load16_masked(p: *const f32, n: usize) -> __m512 {
        _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p)
    }

    #[inline(always)]
    pub unsafe fn load8_masked(p: *const f32, n: usize) -> __m256 {
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lane))
    }

    /// [a0 + a8.., b0 + b8..]: each input's lanes i + i+8 (i < 8).
    #[inline(always)]
    unsafe fn halves512(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
        )
    }

    /// For the four 8-lane groups of c then d: lanes i + i+4 (i < 4).
    #[inline(always)]
    unsafe fn quarters512(c: __m512, d: __m512) -> __m512 {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(c, d),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(c, d),
        )
    }

    /// Four 16-lane sums, each by the same fixed tree: lane i + lane i+8,
    /// then i + i+4, i + i+2, i + i+1. Summing four at once costs a third
    /// of four separate reductions, and padding with zero vectors leaves
    /// the real sums' trees unchanged.
    #[inline(always)]
    pub unsafe fn reduce4_512(v: [__m512; 4]) -> __m128 {
        let x = quarters512(halves512(v[0], v[1]), halves512(v[2], v[3]));
        let y = _mm512_add_ps(x, _mm512_permute_ps::<0b01_00_11_10>(x));
        let z = _mm512_add_ps(y, _mm512_permute_ps::<0b10_11_00_01>(y));
        let idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, z))
    }

    /// [a lo + a hi, b lo + b hi].
    #[inline(always)]
    unsafe fn halves256(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(
            _mm256_permute2f128_ps::<0x20>(a, b),
            _mm256_permute2f128_ps::<0x31>(a, b),
        )
    }

    /// Four 8-lane sums by the tree i + i+4, i + i+2, i + i+1.
    #[inline(always)]
    pub unsafe fn reduce4_256(v: [__m256; 4]) -> __m128 {
        let (c, d) = (halves256(v[0], v[1]), halves256(v[2], v[3]));
        // Per 128-bit half: [c0 + c2, c1 + c3, d0 + d2, d1 + d3].
        let g = _mm256_add_ps(
            _mm256_shuffle_ps::<0b01_00_01_00>(c, d),
            _mm256_shuffle_ps::<0b11_10_11_10>(c, d),
        );
        let h = _mm256_add_ps(g, _mm256_permute_ps::<0b10_11_00_01>(g));
        // Sums of v0, v2 in lanes 0, 2; of v1, v3 in lanes 4, 6.
        let idx = _mm256_setr_epi32(0, 4, 2, 6, 0, 0, 0, 0);
        _mm256_castps256_ps128(_mm256_permutevar8x32_ps(h, idx))
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn reductions_follow_the_documented_tree() {
        use super::x86::*;
        use std::arch::x86_64::*;
        if !crate::backend::cpu::Isa::Avx512.supported() {
            return;
        }
        // Values whose sum depends on the order of additions.
        let v = crate::backend::testing::uniform(64, 9, 1e6);
        let tree = |x: &[f32]| {
            let mut s = x.to_vec();
            while s.len() > 1 {
                let h = s.len() / 2;
                s = (0..h).map(|i| s[i] + s[i + h]).collect();
            }
            s[0]
        };
        // SAFETY: AVX-512 (and so AVX2) is present, checked above.
        unsafe {
            let l16 = |i: usize| _mm512_loadu_ps(v[i * 16..].as_ptr());
            let mut got = [0f32; 4];
            _mm_storeu_ps(
                got.as_mut_ptr(),
                reduce4_512([l16(0), l16(1), l16(2), l16(3)]),
            );
            for i in 0..4 {
                assert_eq!(got[i].to_bits(), tree(&v[i * 16..(i + 1) * 16]).to_bits());
            }
            let l8 = |i: usize| _mm256_loadu_ps(v[i * 8..].as_ptr());
            _mm_storeu_ps(got.as_mut_ptr(), reduce4_256([l8(0), l8(1), l8(2), l8(3)]));
            for i in 0..4 {
                assert_eq!(got[i].to_bits(), tree(&v[i * 8..(i + 1) * 8]).to_bits());
            }
        }
    }
}
