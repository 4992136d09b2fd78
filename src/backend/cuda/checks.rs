//! Every kernel against its CPU twin on random inputs: the same inputs go
//! through `CudaBackend` and `CpuBackend` (f32 activations, the exact
//! reference), and the largest difference, relative to the reference's
//! largest magnitude, is reported against a tolerance. `switchyard doctor`
//! runs these on a real device; the unit tests run them on the host
//! emulator.

use super::{CudaBackend, Failure};
use crate::backend::cpu::{ComputePool, CpuBackend};
use crate::backend::testing::uniform;
use crate::backend::{
    argmax, quant::encode, Backend, Heads, KvBatch, KvDtype, KvShape, Rope, RopeStyle, SharedBytes,
    WeightFormat,
};
use std::sync::Arc;

/// One check's outcome.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    pub name: String,
    /// Largest |device − CPU| over the largest |CPU| (0 for exact checks
    /// that agree).
    pub error: f64,
    pub tolerance: f64,
    pub passed: bool,
}

impl Check {
    fn new(name: impl Into<String>, error: f64, tolerance: f64) -> Check {
        Check {
            name: name.into(),
            error,
            tolerance,
            passed: error <= tolerance,
        }
    }
}

/// Largest difference over the largest reference magnitude; NaN anywhere
/// is an infinite error.
pub fn relative_error(got: &[f32], want: &[f32]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let scale = want
        .iter()
        .fold(0f64, |m, &v| m.max(v.abs() as f64))
        .max(1e-30);
    let mut worst = 0f64;
    for (&g, &w) in got.iter().zip(want) {
        if g.is_nan() != w.is_nan() {
            return f64::INFINITY;
        }
        worst = worst.max((g as f64 - w as f64).abs());
    }
    worst / scale
}

pub struct Twins<'a> {
    pub gpu: &'a CudaBackend,
    pub cpu: CpuBackend,
}

/// f32 rounding of sums in another order, and an FMA here or there.
const ELEMENTWISE: f64 = 1e-5;
/// GEMV sums of up to a few thousand products in another order.
const GEMV: f64 = 2e-5;
/// cuBLAS from half-precision copies of activations (and of quantized
/// weights): one f16 rounding of each input.
const BLAS: f64 = 4e-3;
const ATTENTION: f64 = 2e-5;

impl<'a> Twins<'a> {
    pub fn new(gpu: &'a CudaBackend) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Twins {
            gpu,
            cpu: CpuBackend::new(Arc::new(ComputePool::new(threads))).with_exact_activations(true),
        }
    }

    fn fail(&self) -> Result<(), Failure> {
        self.gpu.failure().map_or(Ok(()), Err)
    }

    /// The same values in a buffer of each backend.
    fn both_buffers(
        &self,
        values: &[f32],
        cols: usize,
    ) -> Result<(super::CudaBuffer, crate::backend::cpu::CpuBuffer), Failure> {
        Ok((
            self.gpu.upload_buffer(values, cols)?,
            self.cpu.buffer_of(values.to_vec(), cols),
        ))
    }

    /// Every check, in order.
    pub fn all(&self) -> Result<Vec<Check>, Failure> {
        let mut out = Vec::new();
        out.extend(self.embed()?);
        out.extend(self.rowwise()?);
        out.extend(self.matmul(&[1, 3, 8, 40])?);
        out.extend(self.attention()?);
        out.push(self.copy_blocks()?);
        out.push(self.argmax()?);
        Ok(out)
    }

    /// Random rows × cols weights in `format`, on both sides.
    fn matrices(
        &self,
        format: WeightFormat,
        rows: usize,
        cols: usize,
        seed: u64,
    ) -> Result<(super::CudaMatrix, crate::backend::cpu::CpuMatrix), Failure> {
        let values = uniform(rows * cols, seed, 2.0);
        let bytes = SharedBytes::owned(encode(format, &values));
        let err = |e: crate::backend::BackendError| Failure(e.to_string());
        Ok((
            self.gpu
                .matrix(format, rows, cols, bytes.clone())
                .map_err(err)?,
            self.cpu.matrix(format, rows, cols, bytes).map_err(err)?,
        ))
    }

    pub fn embed(&self) -> Result<Vec<Check>, Failure> {
        let mut out = Vec::new();
        for (i, format) in WeightFormat::all().enumerate() {
            let (gm, cm) = self.matrices(format, 12, 256, 10 + i as u64)?;
            let ids = [3u32, 0, 11, 3, 7];
            let mut g = self.gpu.buffer(0, 256);
            let mut c = self.cpu.buffer(0, 256);
            self.gpu.embed(&gm, &ids, &mut g);
            self.cpu.embed(&cm, &ids, &mut c);
            self.fail()?;
            let e = relative_error(&self.gpu.read(&g), &self.cpu.read(&c));
            out.push(Check::new(
                format!("embed {}", format.name()),
                e,
                ELEMENTWISE,
            ));
        }
        Ok(out)
    }

    pub fn rowwise(&self) -> Result<Vec<Check>, Failure> {
        let (rows, cols, hd) = (5, 320, 64);
        let x = uniform(rows * cols, 1, 4.0);
        let y = uniform(rows * cols, 2, 4.0);
        let w = uniform(cols, 3, 1.0);
        let mut out = Vec::new();
        let gv = self.gpu.vector(w.clone());
        let check = |name: &str, g: &super::CudaBuffer, c: &crate::backend::cpu::CpuBuffer, tol| {
            self.fail()?;
            Ok::<_, Failure>(Check::new(
                name,
                relative_error(&self.gpu.read(g), &self.cpu.read(c)),
                tol,
            ))
        };

        let (gx, cx) = self.both_buffers(&x, cols)?;
        let (mut go, mut co) = (self.gpu.buffer(0, cols), self.cpu.buffer(0, cols));
        self.gpu.rms_norm(&gx, &gv, 1e-5, &mut go);
        self.cpu.rms_norm(&cx, &w, 1e-5, &mut co);
        out.push(check("rms_norm", &go, &co, ELEMENTWISE)?);

        let hw = uniform(hd, 4, 1.0);
        let (mut gh, mut ch) = self.both_buffers(&x, cols)?;
        self.gpu
            .head_norm(&mut gh, &self.gpu.vector(hw.clone()), 1e-6);
        self.cpu.head_norm(&mut ch, &hw, 1e-6);
        out.push(check("head_norm", &gh, &ch, ELEMENTWISE)?);

        for style in [RopeStyle::Interleaved, RopeStyle::Halves] {
            let rope = Rope::new(style, 48, 500000.0);
            let positions = [0u32, 1, 17, 4095, 70000];
            let (mut gr, mut cr) = self.both_buffers(&x, cols)?;
            self.gpu.rope(&mut gr, &positions, hd, &rope);
            self.cpu.rope(&mut cr, &positions, hd, &rope);
            out.push(check(
                &format!("rope {style:?}").to_lowercase(),
                &gr,
                &cr,
                ELEMENTWISE,
            )?);
        }

        let (mut gs, mut cs) = self.both_buffers(&x, cols)?;
        let (gy, cy) = self.both_buffers(&y, cols)?;
        self.gpu.silu_mul(&mut gs, &gy);
        self.cpu.silu_mul(&mut cs, &cy);
        out.push(check("silu_mul", &gs, &cs, ELEMENTWISE)?);

        let (mut ga, mut ca) = self.both_buffers(&x, cols)?;
        self.gpu.add(&mut ga, &gy);
        self.cpu.add(&mut ca, &cy);
        out.push(check("add", &ga, &ca, ELEMENTWISE)?);

        let (mut gb, mut cb) = self.both_buffers(&x, cols)?;
        self.gpu.add_bias(&mut gb, &gv);
        self.cpu.add_bias(&mut cb, &w);
        out.push(check("add_bias", &gb, &cb, ELEMENTWISE)?);

        let rows_picked = [4usize, 0, 2];
        self.gpu.gather_rows(&gx, &rows_picked, &mut go);
        self.cpu.gather_rows(&cx, &rows_picked, &mut co);
        out.push(check("gather_rows", &go, &co, 0.0)?);
        Ok(out)
    }

    /// Every format at each activation row count in `counts`.
    pub fn matmul(&self, counts: &[usize]) -> Result<Vec<Check>, Failure> {
        let (rows, cols) = (72, 512);
        let mut out = Vec::new();
        for (i, format) in WeightFormat::all().enumerate() {
            let (gm, cm) = self.matrices(format, rows, cols, 100 + i as u64)?;
            for &t in counts {
                let x = uniform(t * cols, 200 + t as u64, 2.0);
                let (gx, cx) = self.both_buffers(&x, cols)?;
                let (mut g, mut c) = (self.gpu.buffer(0, rows), self.cpu.buffer(0, rows));
                self.gpu.matmul(&gx, &gm, &mut g);
                self.cpu.matmul(&cx, &cm, &mut c);
                self.fail()?;
                let blas = super::uses_blas(self.gpu.device(), format, t);
                let e = relative_error(&self.gpu.read(&g), &self.cpu.read(&c));
                let path = if blas { "cuBLAS" } else { "gemv" };
                out.push(Check::new(
                    format!("matmul {} ×{t} ({path})", format.name()),
                    e,
                    if blas { BLAS } else { GEMV },
                ));
            }
        }
        Ok(out)
    }

    /// Two steps over a paged cache: one sequence's 70-token prefill, then
    /// a 40-token prefill of another beside one decode row of the first;
    /// for each KV element type.
    pub fn attention(&self) -> Result<Vec<Check>, Failure> {
        let heads = Heads {
            n_heads: 8,
            n_kv_heads: 2,
            head_dim: 80,
        };
        let (qd, kvd) = (heads.q_dim(), heads.kv_dim());
        let block = 16;
        let mut out = Vec::new();
        for dtype in [KvDtype::F32, KvDtype::F16, KvDtype::Bf16] {
            let shape = KvShape {
                layers: 2,
                blocks: 16,
                block_size: block,
                kv_dim: kvd,
                dtype,
            };
            let err = |e: crate::backend::BackendError| Failure(e.to_string());
            let mut gc = self.gpu.kv_cache(shape).map_err(err)?;
            let mut cc = self.cpu.kv_cache(shape).map_err(err)?;
            // Sequence A's blocks are scattered, B's in reverse order.
            let table_a = [9u32, 2, 14, 5, 0];
            let table_b = [11u32, 7, 3];
            let mut step1 = KvBatch::new(block);
            step1.push_sequence(&table_a, 0..70);
            let mut step2 = KvBatch::new(block);
            step2.push_sequence(&table_b, 0..40);
            step2.push_sequence(&table_a, 70..71);
            let mut worst = 0f64;
            for (s, batch) in [step1, step2].iter().enumerate() {
                let t = batch.rows();
                let seed = 300 + 10 * s as u64;
                let (gq, cq) = self.both_buffers(&uniform(t * qd, seed, 2.0), qd)?;
                let (gk, ck) = self.both_buffers(&uniform(t * kvd, seed + 1, 2.0), kvd)?;
                let (gv, cv) = self.both_buffers(&uniform(t * kvd, seed + 2, 2.0), kvd)?;
                let (mut go, mut co) = (self.gpu.buffer(0, qd), self.cpu.buffer(0, qd));
                self.gpu
                    .attention(&gq, &gk, &gv, &mut gc, 1, batch, heads, &mut go);
                self.cpu
                    .attention(&cq, &ck, &cv, &mut cc, 1, batch, heads, &mut co);
                self.fail()?;
                worst = worst.max(relative_error(&self.gpu.read(&go), &self.cpu.read(&co)));
            }
            out.push(Check::new(
                format!("attention kv {}", dtype.name()),
                worst,
                ATTENTION,
            ));
        }
        Ok(out)
    }

    /// Block copies leave each destination equal to its source, in every
    /// layer, keys and values.
    pub fn copy_blocks(&self) -> Result<Check, Failure> {
        let heads = Heads {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 32,
        };
        let shape = KvShape {
            layers: 3,
            blocks: 8,
            block_size: 4,
            kv_dim: heads.kv_dim(),
            dtype: KvDtype::F16,
        };
        let mut cache = self
            .gpu
            .kv_cache(shape)
            .map_err(|e| Failure(e.to_string()))?;
        let t = 12;
        let (q, k, v) = (
            self.gpu
                .upload_buffer(&uniform(t * heads.q_dim(), 1, 1.0), heads.q_dim())?,
            self.gpu
                .upload_buffer(&uniform(t * shape.kv_dim, 2, 1.0), shape.kv_dim)?,
            self.gpu
                .upload_buffer(&uniform(t * shape.kv_dim, 3, 1.0), shape.kv_dim)?,
        );
        let mut o = self.gpu.buffer(0, heads.q_dim());
        for layer in 0..shape.layers {
            let batch = KvBatch::contiguous(shape.block_size, 0, t);
            self.gpu
                .attention(&q, &k, &v, &mut cache, layer, &batch, heads, &mut o);
        }
        let pairs = [(0u32, 5u32), (2, 7)];
        self.gpu.copy_blocks(&cache, &pairs)?;
        let bytes = self.gpu.read_cache(&cache)?;
        let (block_bytes, plane) = (cache.block_bytes(), cache.plane_bytes());
        let mut wrong = 0usize;
        for p in 0..2 * shape.layers {
            for &(src, dst) in &pairs {
                let at = |b: u32| p * plane + b as usize * block_bytes;
                let (s, d) = (at(src), at(dst));
                if bytes[s..s + block_bytes] != bytes[d..d + block_bytes]
                    || bytes[s..s + block_bytes].iter().all(|&b| b == 0)
                {
                    wrong += 1;
                }
            }
        }
        Ok(Check::new("kv_copy_blocks", wrong as f64, 0.0))
    }

    /// The device's greedy choice (a step with every sequence greedy
    /// reads back one id per row) is the CPU's, ties included.
    pub fn argmax(&self) -> Result<Check, Failure> {
        let (rows, vocab) = (64, 3000);
        let mut logits = uniform(rows * vocab, 77, 12.0);
        // A tie: the lowest index must win.
        logits[5] = 50.0;
        logits[17] = 50.0;
        let g = self.gpu.upload_buffer(&logits, vocab)?;
        let greedy = self.gpu.argmax(&g)?;
        let wrong = greedy
            .iter()
            .enumerate()
            .filter(|&(r, &id)| id != argmax(&logits[r * vocab..(r + 1) * vocab]))
            .count();
        Ok(Check::new("argmax", wrong as f64, 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emulated() -> CudaBackend {
        let dev = super::super::CudaDevice::emulated().expect("the host emulator builds");
        CudaBackend::new(dev)
    }

    fn assert_all_pass(checks: Vec<Check>) {
        for c in &checks {
            eprintln!("{:<40} {:.3e} (≤ {:.0e})", c.name, c.error, c.tolerance);
        }
        let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
        assert!(failed.is_empty(), "{failed:#?}");
        assert!(!checks.is_empty());
    }

    #[test]
    fn every_embedding_format_matches_the_cpu() {
        let g = emulated();
        assert_all_pass(Twins::new(&g).embed().unwrap());
    }

    #[test]
    fn row_and_element_kernels_match_the_cpu() {
        let g = emulated();
        assert_all_pass(Twins::new(&g).rowwise().unwrap());
    }

    #[test]
    fn gemv_of_every_format_matches_the_cpu() {
        let g = emulated();
        assert_all_pass(Twins::new(&g).matmul(&[1, 11]).unwrap());
    }

    #[test]
    fn paged_attention_matches_the_cpu_for_every_kv_type() {
        let g = emulated();
        assert_all_pass(Twins::new(&g).attention().unwrap());
    }

    #[test]
    fn block_copies_and_argmax_match_their_references() {
        let g = emulated();
        let t = Twins::new(&g);
        assert_all_pass(vec![t.copy_blocks().unwrap(), t.argmax().unwrap()]);
    }

    #[test]
    fn a_check_fails_on_a_real_difference() {
        assert!(relative_error(&[1.0, 2.0], &[1.0, 2.0]) == 0.0);
        assert!(relative_error(&[1.0, 2.1], &[1.0, 2.0]) > 0.04);
        assert!(relative_error(&[f32::NAN], &[1.0]).is_infinite());
        assert!(!Check::new("x", 0.2, 0.1).passed);
    }
}
