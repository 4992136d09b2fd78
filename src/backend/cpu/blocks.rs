//! Block loaders: one 32-value block of a weight format turned into f32
//! vectors in registers (two of 16 lanes, or four of 8). Both the panel
//! dequantizer and the fused decode kernel use them, so both produce the
//! very same values; the arithmetic is the reference's (multiply, then
//! add, no fused rounding).

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    /// The f16 at `p`, converted by the F16C instruction.
    #[inline(always)]
    pub unsafe fn f16_at(p: *const u8) -> f32 {
        let bits = u16::from_le_bytes([*p, *p.add(1)]);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }

    /// A weight format as seen by the SIMD kernels.
    pub trait Block {
        const BYTES: usize;
        /// Values 0..16 and 16..32 of the block at `p`.
        unsafe fn load16(p: *const u8) -> [__m512; 2];
        /// Values in four groups of 8.
        unsafe fn load8(p: *const u8) -> [__m256; 4];
    }

    pub struct Q4_1;
    pub struct Q4_0;
    pub struct Q8_0;
    pub struct F16;
    pub struct Bf16;
    pub struct F32;

    #[inline(always)]
    unsafe fn nibbles(p: *const u8) -> (__m128i, __m128i) {
        let mask = _mm_set1_epi8(0x0F);
        let qs = _mm_loadu_si128(p as *const __m128i);
        (
            _mm_and_si128(qs, mask),
            _mm_and_si128(_mm_srli_epi16(qs, 4), mask),
        )
    }

    #[inline(always)]
    unsafe fn u8x16(v: __m128i) -> __m512 {
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v))
    }

    #[inline(always)]
    unsafe fn u8x8(v: __m128i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
    }

    impl Block for Q4_1 {
        const BYTES: usize = 20;
        #[inline(always)]
        unsafe fn load16(p: *const u8) -> [__m512; 2] {
            let d = _mm512_set1_ps(f16_at(p));
            let m = _mm512_set1_ps(f16_at(p.add(2)));
            let (lo, hi) = nibbles(p.add(4));
            [
                _mm512_add_ps(_mm512_mul_ps(u8x16(lo), d), m),
                _mm512_add_ps(_mm512_mul_ps(u8x16(hi), d), m),
            ]
        }
        #[inline(always)]
        unsafe fn load8(p: *const u8) -> [__m256; 4] {
            let d = _mm256_set1_ps(f16_at(p));
            let m = _mm256_set1_ps(f16_at(p.add(2)));
            let (lo, hi) = nibbles(p.add(4));
            let f = |v| _mm256_add_ps(_mm256_mul_ps(u8x8(v), d), m);
            [
                f(lo),
                f(_mm_srli_si128(lo, 8)),
                f(hi),
                f(_mm_srli_si128(hi, 8)),
            ]
        }
    }

    impl Block for Q4_0 {
        const BYTES: usize = 18;
        #[inline(always)]
        unsafe fn load16(p: *const u8) -> [__m512; 2] {
            let d = _mm512_set1_ps(f16_at(p));
            let eight = _mm512_set1_epi32(8);
            let (lo, hi) = nibbles(p.add(2));
            let f = |v| {
                _mm512_mul_ps(
                    _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(v), eight)),
                    d,
                )
            };
            [f(lo), f(hi)]
        }
        #[inline(always)]
        unsafe fn load8(p: *const u8) -> [__m256; 4] {
            let d = _mm256_set1_ps(f16_at(p));
            let eight = _mm256_set1_epi32(8);
            let (lo, hi) = nibbles(p.add(2));
            let f = |v| {
                _mm256_mul_ps(
                    _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(v), eight)),
                    d,
                )
            };
            [
                f(lo),
                f(_mm_srli_si128(lo, 8)),
                f(hi),
                f(_mm_srli_si128(hi, 8)),
            ]
        }
    }

    impl Block for Q8_0 {
        const BYTES: usize = 34;
        #[inline(always)]
        unsafe fn load16(p: *const u8) -> [__m512; 2] {
            let d = _mm512_set1_ps(f16_at(p));
            let f = |o: usize| {
                let q = _mm_loadu_si128(p.add(o) as *const __m128i);
                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d)
            };
            [f(2), f(18)]
        }
        #[inline(always)]
        unsafe fn load8(p: *const u8) -> [__m256; 4] {
            let d = _mm256_set1_ps(f16_at(p));
            let f = |o: usize| {
                let q = _mm_loadl_epi64(p.add(o) as *const __m128i);
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d)
            };
            [f(2), f(10), f(18), f(26)]
        }
    }

    impl Block for F16 {
        const BYTES: usize = 64;
        #[inline(always)]
        unsafe fn load16(p: *const u8) -> [__m512; 2] {
            let f = |o: usize| _mm512_cvtph_ps(_mm256_loadu_si256(p.add(o) as *const __m256i));
            [f(0), f(32)]
        }
        #[inline(always)]
        unsafe fn load8(p: *const u8) -> [__m256; 4] {
            let f = |o: usize| _mm256_cvtph_ps(_mm_loadu_si128(p.add(o) as *const __m128i));
            [f(0), f(16), f(32), f(48)]
        }
    }

    impl Block for Bf16 {
        const BYTES: usize = 64;
        #[inline(always)]
        unsafe fn load16(p: *const u8) -> [__m512; 2] {
            let f = |o: usize| {
                let h = _mm256_loadu_si256(p.add(o) as *const __m256i);
                _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
            };
            [f(0), f(32)]
        }
        #[inline(always)]
        unsafe fn load8(p: *const u8) -> [__m256; 4] {
            let f = |o: usize| {
                let h = _mm_loadu_si128(p.add(o) as *const __m128i);
                _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
            };
            [f(0), f(16), f(32), f(48)]
        }
    }

    impl Block for F32 {
        const BYTES: usize = 128;
        #[inline(always)]
        unsafe fn load16(p: *const u8) -> [__m512; 2] {
            let p = p as *const f32;
            [_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))]
        }
        #[inline(always)]
        unsafe fn load8(p: *const u8) -> [__m256; 4] {
            let p = p as *const f32;
            [
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            ]
        }
    }

    /// Calls `$body` with `$B` bound to the block type of `$format`.
    macro_rules! with_block {
        ($format:expr, $B:ident => $body:expr) => {{
            use crate::backend::quant::WeightFormat;
            use $crate::backend::cpu::blocks::x86 as blk;
            match $format {
                WeightFormat::Q4_1 => {
                    type $B = blk::Q4_1;
                    $body
                }
                WeightFormat::Q4_0 => {
                    type $B = blk::Q4_0;
                    $body
                }
                WeightFormat::Q8_0 => {
                    type $B = blk::Q8_0;
                    $body
                }
                WeightFormat::F16 => {
                    type $B = blk::F16;
                    $body
                }
                WeightFormat::Bf16 => {
                    type $B = blk::Bf16;
                    $body
                }
                WeightFormat::F32 => {
                    type $B = blk::F32;
                    $body
                }
            }
        }};
    }
    pub(crate) use with_block;
}
