//! Dequantizing rows of a weight matrix into f32 scratch, with the SIMD
//! path the CPU supports. The batched matmul dequantizes a panel of rows
//! once and reuses it for every activation row of the step. Results equal
//! `quant::dequantize_scalar` on the file's bytes, bit for bit.

use super::isa::Isa;
use super::layout::{block_shape, dequant_block};
use super::matrix::CpuMatrix;
use crate::backend::quant::BLOCK;

/// Rows `first..first + n` of `m` into `out` (n × cols).
pub fn dequantize_rows(isa: Isa, m: &CpuMatrix, first: usize, n: usize, out: &mut [f32]) {
    let nb = m.cols / BLOCK;
    let blocks = first * nb..(first + n) * nb;
    assert_eq!(out.len(), n * m.cols, "scratch shape");
    assert!(first + n <= m.rows, "rows out of range");
    if crate::backend::quant::unpack::is_unpacked(m.format) {
        // Blocks as the file stores them (`layout.rs`): the scalar
        // reference, row by row (embedding lookups, exact activations).
        let rb = m.format.row_bytes(m.cols);
        let bytes = &m.quants[first * rb..(first + n) * rb];
        return crate::backend::quant::dequantize_scalar(m.format, bytes, out);
    }
    #[cfg(target_arch = "x86_64")]
    {
        use super::blocks::x86::with_block;
        let (q, s, dst) = (m.quants.as_ptr(), m.scales.as_ptr(), out.as_mut_ptr());
        // SAFETY: `isa` is only ever a level `Isa::supported` vouched for;
        // the block range lies inside the matrix (asserted above).
        match isa.float() {
            Isa::Avx512 => {
                return with_block!(m.format, B => unsafe { x86::run512::<B>(q, s, blocks.start, blocks.len(), dst) })
            }
            Isa::Avx2 => {
                return with_block!(m.format, B => unsafe { x86::run256::<B>(q, s, blocks.start, blocks.len(), dst) })
            }
            _ => {}
        }
    }
    let _ = isa;
    let (qb, ns) = block_shape(m.format);
    for (i, g) in blocks.enumerate() {
        let scales = m.scales.get(g * ns..(g + 1) * ns).unwrap_or(&[]);
        dequant_block(
            m.format,
            &m.quants[g * qb..(g + 1) * qb],
            scales,
            &mut out[i * BLOCK..],
        );
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::blocks::x86::Block;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    pub unsafe fn run512<B: Block>(
        q: *const u8,
        s: *const u16,
        first: usize,
        n: usize,
        dst: *mut f32,
    ) {
        for i in 0..n {
            let g = first + i;
            let v = B::load16(q.add(g * B::QBYTES), s.add(g * B::SCALES));
            _mm512_storeu_ps(dst.add(i * 32), v[0]);
            _mm512_storeu_ps(dst.add(i * 32 + 16), v[1]);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn run256<B: Block>(
        q: *const u8,
        s: *const u16,
        first: usize,
        n: usize,
        dst: *mut f32,
    ) {
        for i in 0..n {
            let g = first + i;
            let v = B::load8(q.add(g * B::QBYTES), s.add(g * B::SCALES));
            for (k, x) in v.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add(i * 32 + k * 8), x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::bytes::SharedBytes;
    use crate::backend::quant::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::backend::testing::uniform(n, seed, 4.0)
    }

    #[test]
    fn every_isa_matches_the_scalar_reference_bit_for_bit() {
        let (rows, cols) = (3, 96);
        let v = values(rows * cols, 7);
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
        for (format, bytes) in encoded {
            let mut want = vec![0f32; v.len()];
            dequantize_scalar(format, &bytes, &mut want);
            let m = CpuMatrix::new(format, rows, cols, SharedBytes::owned(bytes)).unwrap();
            for isa in [Isa::Avx512, Isa::Avx2, Isa::Scalar] {
                if !isa.supported() {
                    continue;
                }
                // All rows at once, and the last row alone.
                let mut got = vec![0f32; v.len()];
                dequantize_rows(isa, &m, 0, rows, &mut got);
                let same = got
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{format:?} on {isa:?} differs from the scalar reference"
                );
                let mut last = vec![0f32; cols];
                dequantize_rows(isa, &m, rows - 1, 1, &mut last);
                assert_eq!(
                    last,
                    want[(rows - 1) * cols..],
                    "{format:?} on {isa:?}: single row"
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
