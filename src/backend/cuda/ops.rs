//! The `Backend` operations on the device: each launches its kernel on
//! the device's stream through `CudaBackend::run`, which keeps the first
//! failure and skips what follows it.

use super::mem::{args, DevBuf};
use super::{
    attention, format_id, matmul, CudaBackend, CudaBuffer, CudaKvCache, CudaMatrix, CudaVector,
    Failure, Meta,
};
use crate::backend::{
    Backend, BackendError, Heads, KvBatch, KvShape, Rope, RopeStyle, SharedBytes, WeightFormat,
};

impl Backend for CudaBackend {
    type Matrix = CudaMatrix;
    type Vector = CudaVector;
    type Buffer = CudaBuffer;
    type KvCache = CudaKvCache;

    fn describe(&self) -> String {
        let i = &self.dev.info;
        format!(
            "cuda:{} ({}, sm_{}{}, {})",
            i.ordinal,
            i.name,
            i.compute_capability.0,
            i.compute_capability.1,
            if self.dev.blas.is_some() {
                "cuBLAS"
            } else {
                "no cuBLAS"
            }
        )
    }

    fn matrix(
        &self,
        format: WeightFormat,
        rows: usize,
        cols: usize,
        bytes: SharedBytes,
    ) -> Result<CudaMatrix, BackendError> {
        if !cols.is_multiple_of(32) || !cols.is_multiple_of(format.block_elems()) {
            return Err(BackendError::Matrix(format!(
                "{rows}×{cols} {}: the CUDA kernels need rows of whole blocks and a multiple of 32",
                format.name()
            )));
        }
        let row_bytes = format.row_bytes(cols);
        if bytes.len() != rows * row_bytes {
            return Err(BackendError::Matrix(format!(
                "{rows}×{cols} {} needs {} bytes, got {}",
                format.name(),
                rows * row_bytes,
                bytes.len()
            )));
        }
        let oom = |e: Failure| BackendError::OutOfMemory {
            what: "a weight matrix",
            detail: format!("{} MiB on the device: {e}", bytes.len() >> 20),
        };
        self.matrix_bytes
            .fetch_add(bytes.len(), std::sync::atomic::Ordering::Relaxed);
        let mem = self.weight_memory(&bytes).map_err(oom)?;
        Ok(CudaMatrix {
            format,
            rows,
            cols,
            row_bytes,
            mem,
        })
    }

    fn vector(&self, values: Vec<f32>) -> CudaVector {
        let mut made = None;
        self.run(|| {
            let mem = DevBuf::alloc(&self.dev.driver, values.len() * 4)?;
            mem.upload(&values)?;
            made = Some(mem);
            Ok(())
        });
        // A failed allocation leaves the backend failed: no kernel reads
        // the null buffer, since later operations are skipped.
        CudaVector {
            mem: made.unwrap_or_else(|| DevBuf::null(&self.dev.driver)),
        }
    }

    fn buffer(&self, rows: usize, cols: usize) -> CudaBuffer {
        let mut made = None;
        self.run(|| {
            made = Some(self.alloc_buffer(rows, cols)?);
            Ok(())
        });
        made.unwrap_or_else(|| CudaBuffer {
            mem: DevBuf::null(&self.dev.driver),
            rows: 0,
            cols,
        })
    }

    fn resize(&self, buf: &mut CudaBuffer, rows: usize) {
        if rows * buf.cols * 4 > buf.mem.bytes() {
            self.run(|| {
                // Grow by half again, so a ramp of batch sizes reallocates
                // a few times, not at every step; the contents are kept.
                let cap = (rows + rows / 2).max(1);
                let bigger = DevBuf::alloc(&self.dev.driver, cap * buf.cols * 4)?;
                let keep = buf.len() * 4;
                if keep > 0 {
                    self.dev.driver.copy(bigger.ptr(), buf.mem.ptr(), keep)?;
                }
                buf.mem = bigger;
                Ok(())
            });
        }
        if rows * buf.cols * 4 <= buf.mem.bytes() {
            buf.rows = rows;
        }
    }

    fn kv_cache(&self, shape: KvShape) -> Result<CudaKvCache, BackendError> {
        self.dev
            .driver
            .bind()
            .map_err(|e| BackendError::OutOfMemory {
                what: "the KV cache",
                detail: format!("{e:?}"),
            })?;
        CudaKvCache::new(&self.dev, shape)
    }

    fn embed(&self, table: &CudaMatrix, ids: &[u32], out: &mut CudaBuffer) {
        self.resize(out, ids.len());
        self.run(|| {
            let mut st = self.state();
            let idp = self.upload(&mut st, Meta::Ids, ids)?;
            let mut a = args![
                format_id(table.format),
                table.mem.ptr(),
                table.row_bytes as u64,
                idp,
                table.cols as i32,
                out.mem.ptr()
            ];
            self.dev
                .launch_rows(&self.dev.kernels.embed, ids.len(), 128, &mut a)?;
            Ok(())
        });
    }

    fn rms_norm(&self, x: &CudaBuffer, weight: &CudaVector, eps: f32, out: &mut CudaBuffer) {
        self.resize(out, x.rows);
        self.run(|| {
            let mut a = args![
                x.mem.ptr(),
                weight.mem.ptr(),
                eps,
                x.cols as i32,
                out.mem.ptr()
            ];
            self.dev
                .launch_rows(&self.dev.kernels.rms_norm, x.rows, 256, &mut a)?;
            Ok(())
        });
    }

    fn matmul(&self, x: &CudaBuffer, w: &CudaMatrix, out: &mut CudaBuffer) {
        self.resize(out, x.rows);
        self.run(|| {
            let mut st = self.state();
            matmul::matmul(&self.dev, &mut st.matmul, x, w, out)
        });
    }

    fn rope(&self, x: &mut CudaBuffer, positions: &[u32], head_dim: usize, rope: &Rope) {
        self.run(|| {
            let mut st = self.state();
            let pos = self.upload(&mut st, Meta::Positions, positions)?;
            let freq: Vec<u32> = rope.inv_freq.iter().map(|f| f.to_bits()).collect();
            let freq = self.upload(&mut st, Meta::InvFreq, &freq)?;
            let n = x.rows * (x.cols / head_dim) * (rope.dims / 2);
            let mut a = args![
                x.mem.ptr(),
                pos,
                freq,
                x.rows as i32,
                x.cols as i32,
                head_dim as i32,
                rope.dims as i32,
                (rope.style == RopeStyle::Interleaved) as i32
            ];
            self.dev.launch_over(&self.dev.kernels.rope, n, &mut a)?;
            Ok(())
        });
    }

    fn attention(
        &self,
        q: &CudaBuffer,
        k: &CudaBuffer,
        v: &CudaBuffer,
        cache: &mut CudaKvCache,
        layer: usize,
        batch: &KvBatch,
        heads: Heads,
        out: &mut CudaBuffer,
    ) {
        self.resize(out, q.rows);
        self.run(|| {
            let mut st = self.state();
            let step = attention::layout(batch, attention::rows_per_tile(heads));
            let meta = self.upload(&mut st, Meta::Step, &step.data)?;
            attention::run(&self.dev, q, k, v, cache, layer, &step, meta, heads, out)
        });
    }

    fn add_bias(&self, x: &mut CudaBuffer, bias: &CudaVector) {
        self.run(|| {
            let n = x.len();
            let mut a = args![x.mem.ptr(), bias.mem.ptr(), x.cols as i32, n as u64];
            self.dev
                .launch_over(&self.dev.kernels.add_bias, n, &mut a)?;
            Ok(())
        });
    }

    fn head_norm(&self, x: &mut CudaBuffer, weight: &CudaVector, eps: f32) {
        self.run(|| {
            let width = weight.mem.bytes() / 4;
            let slices = x.len() / width;
            let mut a = args![
                x.mem.ptr(),
                weight.mem.ptr(),
                eps,
                width as i32,
                slices as i32
            ];
            let grid = (slices.div_ceil(4) as u32, 1, 1);
            self.dev
                .driver
                .launch(&self.dev.kernels.head_norm, grid, 128, 0, &mut a)?;
            Ok(())
        });
    }

    fn silu_mul(&self, gate: &mut CudaBuffer, up: &CudaBuffer) {
        self.run(|| {
            let n = gate.len();
            let mut a = args![gate.mem.ptr(), up.mem.ptr(), n as u64];
            self.dev
                .launch_over(&self.dev.kernels.silu_mul, n, &mut a)?;
            Ok(())
        });
    }

    fn add(&self, x: &mut CudaBuffer, y: &CudaBuffer) {
        self.run(|| {
            let n = x.len();
            let mut a = args![x.mem.ptr(), y.mem.ptr(), n as u64];
            self.dev.launch_over(&self.dev.kernels.add, n, &mut a)?;
            Ok(())
        });
    }

    fn gather_rows(&self, x: &CudaBuffer, rows: &[usize], out: &mut CudaBuffer) {
        self.resize(out, rows.len());
        self.run(|| {
            let mut st = self.state();
            let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
            let rp = self.upload(&mut st, Meta::Rows, &idx)?;
            let mut a = args![x.mem.ptr(), rp, x.cols as i32, out.mem.ptr()];
            self.dev
                .launch_rows(&self.dev.kernels.gather_rows, rows.len(), 256, &mut a)?;
            Ok(())
        });
    }

    fn read(&self, x: &CudaBuffer) -> Vec<f32> {
        let mut out = vec![0f32; x.len()];
        self.run(|| {
            x.mem.download(&mut out)?;
            Ok(())
        });
        out
    }

    fn argmax_rows(&self, x: &CudaBuffer) -> Option<Vec<u32>> {
        let mut ids = None;
        self.run(|| {
            ids = Some(self.argmax(x)?);
            Ok(())
        });
        self.argmax_rows
            .fetch_add(x.rows, std::sync::atomic::Ordering::Relaxed);
        ids
    }

    fn check(&self) -> Result<(), BackendError> {
        match self.failure() {
            None => Ok(()),
            Some(f) => Err(BackendError::Device(f.0)),
        }
    }
}
