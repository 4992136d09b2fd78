//! Dequantizing rows of weights into f32 scratch, with the SIMD path the
//! CPU supports. The batched matmul dequantizes a panel of rows once and
//! reuses it for every activation row of the step. Results equal
//! `quant::dequantize_scalar` bit for bit.

use super::isa::Isa;
use crate::backend::quant::{dequantize_scalar, WeightFormat, BLOCK};

/// `out.len()` a multiple of 32; `bytes` exactly its blocks.
pub fn dequantize(isa: Isa, format: WeightFormat, bytes: &[u8], out: &mut [f32]) {
    debug_assert_eq!(out.len() % BLOCK, 0);
    debug_assert_eq!(bytes.len(), out.len() / BLOCK * format.block_bytes());
    #[cfg(target_arch = "x86_64")]
    {
        use super::blocks::x86::with_block;
        let n = out.len() / BLOCK;
        let (src, dst) = (bytes.as_ptr(), out.as_mut_ptr());
        // SAFETY: `isa` is only ever a level `Isa::supported` vouched for,
        // and the lengths were checked above.
        match isa {
            Isa::Avx512 => {
                return with_block!(format, B => unsafe { x86::run512::<B>(src, dst, n) })
            }
            Isa::Avx2 => return with_block!(format, B => unsafe { x86::run256::<B>(src, dst, n) }),
            Isa::Scalar => {}
        }
    }
    let _ = isa;
    dequantize_scalar(format, bytes, out)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::blocks::x86::Block;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    pub unsafe fn run512<B: Block>(src: *const u8, dst: *mut f32, n_blocks: usize) {
        for b in 0..n_blocks {
            let v = B::load16(src.add(b * B::BYTES));
            _mm512_storeu_ps(dst.add(b * 32), v[0]);
            _mm512_storeu_ps(dst.add(b * 32 + 16), v[1]);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn run256<B: Block>(src: *const u8, dst: *mut f32, n_blocks: usize) {
        for b in 0..n_blocks {
            let v = B::load8(src.add(b * B::BYTES));
            for (i, x) in v.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add(b * 32 + i * 8), x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::quant::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32 - 0.5) * 4.0
            })
            .collect()
    }

    #[test]
    fn every_isa_matches_the_scalar_reference_bit_for_bit() {
        let v = values(32 * 9, 7);
        let encoded = [
            (WeightFormat::Q4_1, quantize_q4_1(&v)),
            (WeightFormat::Q4_0, quantize_q4_0(&v)),
            (WeightFormat::Q8_0, quantize_q8_0(&v)),
            (WeightFormat::F16, encode_half(WeightFormat::F16, &v)),
            (WeightFormat::Bf16, encode_half(WeightFormat::Bf16, &v)),
            (
                WeightFormat::F32,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
        ];
        for (format, bytes) in &encoded {
            let mut want = vec![0f32; v.len()];
            dequantize_scalar(*format, bytes, &mut want);
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Scalar] {
                if !isa.supported() {
                    continue;
                }
                let mut got = vec![0f32; v.len()];
                dequantize(isa, *format, bytes, &mut got);
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{format:?} on {isa:?} differs from the scalar reference"
                );
            }
        }
    }

    #[test]
    fn quantizers_stay_within_their_step() {
        let v = values(32 * 4, 3);
        for (format, bytes, tol) in [
            (WeightFormat::Q8_0, quantize_q8_0(&v), 2.0 / 127.0),
            (WeightFormat::Q4_1, quantize_q4_1(&v), 4.0 / 15.0),
            (WeightFormat::Q4_0, quantize_q4_0(&v), 2.0 / 8.0 * 1.01),
        ] {
            let mut back = vec![0f32; v.len()];
            dequantize_scalar(format, &bytes, &mut back);
            let err = v
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err <= tol, "{format:?}: max error {err} > {tol}");
        }
    }
}
