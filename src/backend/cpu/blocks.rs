//! Block loaders: one 32-value block of a weight format turned into f32
//! vectors in registers (two of 16 lanes, or four of 8). Both the panel
//! dequantizer and the fused decode kernel use them, so both produce the
//! very same values; the arithmetic is the reference's (multiply, then
//! add, no fused rounding), whatever the instructions.

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    /// A weight format as the SIMD kernels see it, in the layout of
    /// `layout.rs`: `q` points at a block's quants, `s` at its f16 scales.
    pub trait Block {
        /// Bytes of quants per block.
        const QBYTES: usize;
        /// f16 scales per block.
        const SCALES: usize;
        /// Values 0..16 and 16..32 of the block.
        unsafe fn load16(q: *const u8, s: *const u16) -> [__m512; 2];
        /// Values in four groups of 8.
        unsafe fn load8(q: *const u8, s: *const u16) -> [__m256; 4];
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
    unsafe fn u8x8(v: __m128i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
    }

    /// The 16 values a nibble can stand for, looked up by `vpermps`, which
    /// reads only the low four bits of each index: the zero-extended byte
    /// indexes its low nibble, the byte shifted right by four its high one.
    #[inline(always)]
    unsafe fn lookup16(q: *const u8, table: __m512) -> [__m512; 2] {
        let idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(q as *const __m128i));
        [
            _mm512_permutexvar_ps(idx, table),
            _mm512_permutexvar_ps(_mm512_srli_epi32(idx, 4), table),
        ]
    }

    /// The f16 at `s`, widened by the F16C instruction.
    #[inline(always)]
    unsafe fn scale(s: *const u16) -> f32 {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(*s as i32)))
    }

    /// The two f16 at `s` (d then m), widened by one F16C instruction.
    #[inline(always)]
    unsafe fn scale_pair(s: *const u16) -> __m128 {
        _mm_cvtph_ps(_mm_cvtsi32_si128((s as *const i32).read_unaligned()))
    }

    #[inline(always)]
    unsafe fn iota16() -> __m512 {
        _mm512_setr_ps(
            0., 1., 2., 3., 4., 5., 6., 7., 8., 9., 10., 11., 12., 13., 14., 15.,
        )
    }

    impl Block for Q4_1 {
        const QBYTES: usize = 16;
        const SCALES: usize = 2;
        #[inline(always)]
        unsafe fn load16(q: *const u8, s: *const u16) -> [__m512; 2] {
            // q·d + m, rounded after the multiply and after the add, as
            // the reference dequantizes.
            let dm = scale_pair(s);
            let d = _mm512_broadcastss_ps(dm);
            let m = _mm512_broadcastss_ps(_mm_movehdup_ps(dm));
            let table = _mm512_add_ps(_mm512_mul_ps(iota16(), d), m);
            lookup16(q, table)
        }
        #[inline(always)]
        unsafe fn load8(q: *const u8, s: *const u16) -> [__m256; 4] {
            let dm = scale_pair(s);
            let d = _mm256_broadcastss_ps(dm);
            let m = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
            let (lo, hi) = nibbles(q);
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
        const QBYTES: usize = 16;
        const SCALES: usize = 1;
        #[inline(always)]
        unsafe fn load16(q: *const u8, s: *const u16) -> [__m512; 2] {
            let centred = _mm512_sub_ps(iota16(), _mm512_set1_ps(8.0));
            lookup16(q, _mm512_mul_ps(centred, _mm512_set1_ps(scale(s))))
        }
        #[inline(always)]
        unsafe fn load8(q: *const u8, s: *const u16) -> [__m256; 4] {
            let d = _mm256_set1_ps(scale(s));
            let eight = _mm256_set1_epi32(8);
            let (lo, hi) = nibbles(q);
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
        const QBYTES: usize = 32;
        const SCALES: usize = 1;
        #[inline(always)]
        unsafe fn load16(q: *const u8, s: *const u16) -> [__m512; 2] {
            let d = _mm512_set1_ps(scale(s));
            let f = |o: usize| {
                let v = _mm_loadu_si128(q.add(o) as *const __m128i);
                _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)), d)
            };
            [f(0), f(16)]
        }
        #[inline(always)]
        unsafe fn load8(q: *const u8, s: *const u16) -> [__m256; 4] {
            let d = _mm256_set1_ps(scale(s));
            let f = |o: usize| {
                let v = _mm_loadl_epi64(q.add(o) as *const __m128i);
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), d)
            };
            [f(0), f(8), f(16), f(24)]
        }
    }

    impl Block for F16 {
        const QBYTES: usize = 64;
        const SCALES: usize = 0;
        #[inline(always)]
        unsafe fn load16(p: *const u8, _: *const u16) -> [__m512; 2] {
            let f = |o: usize| _mm512_cvtph_ps(_mm256_loadu_si256(p.add(o) as *const __m256i));
            [f(0), f(32)]
        }
        #[inline(always)]
        unsafe fn load8(p: *const u8, _: *const u16) -> [__m256; 4] {
            let f = |o: usize| _mm256_cvtph_ps(_mm_loadu_si128(p.add(o) as *const __m128i));
            [f(0), f(16), f(32), f(48)]
        }
    }

    impl Block for Bf16 {
        const QBYTES: usize = 64;
        const SCALES: usize = 0;
        #[inline(always)]
        unsafe fn load16(p: *const u8, _: *const u16) -> [__m512; 2] {
            let f = |o: usize| {
                let h = _mm256_loadu_si256(p.add(o) as *const __m256i);
                _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
            };
            [f(0), f(32)]
        }
        #[inline(always)]
        unsafe fn load8(p: *const u8, _: *const u16) -> [__m256; 4] {
            let f = |o: usize| {
                let h = _mm_loadu_si128(p.add(o) as *const __m128i);
                _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
            };
            [f(0), f(16), f(32), f(48)]
        }
    }

    impl Block for F32 {
        const QBYTES: usize = 128;
        const SCALES: usize = 0;
        #[inline(always)]
        unsafe fn load16(p: *const u8, _: *const u16) -> [__m512; 2] {
            let p = p as *const f32;
            [_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16))]
        }
        #[inline(always)]
        unsafe fn load8(p: *const u8, _: *const u16) -> [__m256; 4] {
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
                // Read through `unpacked.rs`; callers branch before.
                _ => debug_assert!(false, "no register block for {:?}", $format),
            }
        }};
    }
    pub(crate) use with_block;
}
