//! The CUDA backend: the same `Backend` operations as the CPU's, as
//! kernels of `kernels/*.cu` compiled by NVRTC and launched through
//! cudarc on one stream per device, with cuBLAS for batched GEMMs.
//! Everything CUDA is loaded at run time: without a driver this module
//! reports why, and `--device auto` stays on the CPU.
//!
//! The `Backend` operations cannot fail by signature; a failed launch is
//! kept as the backend's error, later operations are skipped, and
//! `check()` (which the engine calls after every step) reports it.

mod attention;
pub mod checks;
mod compile;
mod device;
mod driver;
#[cfg(test)]
mod emulator;
mod libs;
mod matmul;
mod mem;

pub use attention::CudaKvCache;
pub use compile::nvrtc_version;
pub use device::{device_count, CudaDevice, GpuInfo, KERNEL_NAMES};
pub use libs::preload as preload_libraries;
pub use matmul::uses_blas;

use crate::backend::{
    Backend, BackendError, Heads, KvBatch, KvShape, Rope, RopeStyle, SharedBytes, WeightFormat,
};
use cudarc::driver::DriverError;
use mem::{args, DevBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Threads of a sampling block: at most SAMPLE_THREADS of sampling.cu,
/// and few enough that any register budget fits.
const SAMPLE_THREADS: u32 = 512;

/// A failure of the device, in words.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

impl From<DriverError> for Failure {
    fn from(e: DriverError) -> Self {
        let name = e.error_name().map(|n| n.to_string_lossy().into_owned());
        Failure(format!(
            "CUDA: {}",
            name.unwrap_or_else(|_| format!("{e:?}"))
        ))
    }
}

/// Compiles the kernels for an architecture without a device: the check
/// CI runs for every architecture we ship PTX for. Every kernel the
/// backend launches must be an entry of the PTX.
pub fn compile_for(arch: &str) -> Result<String, String> {
    let ptx = compile::compile(&compile::arch_name(arch)?)?;
    let missing: Vec<&str> = KERNEL_NAMES
        .iter()
        .copied()
        .filter(|name| !ptx.contains(&format!(".entry {name}(")))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "kernels missing from the PTX: {}",
            missing.join(", ")
        ));
    }
    Ok(ptx)
}

/// The number `kernels/prelude.cu` gives each weight format.
pub fn format_id(f: WeightFormat) -> i32 {
    match f {
        WeightFormat::F32 => 0,
        WeightFormat::F16 => 1,
        WeightFormat::Bf16 => 2,
        WeightFormat::Q8_0 => 3,
        WeightFormat::Q4_0 => 4,
        WeightFormat::Q4_1 => 5,
        WeightFormat::Q5_0 => 6,
        WeightFormat::Q5_1 => 7,
        WeightFormat::Q4K => 8,
        WeightFormat::Q5K => 9,
        WeightFormat::Q6K => 10,
    }
}

/// A weight matrix as stored (quantized blocks stay quantized).
pub struct CudaMatrix {
    pub format: WeightFormat,
    pub rows: usize,
    pub cols: usize,
    pub row_bytes: usize,
    mem: DevBuf,
}

pub struct CudaVector {
    mem: DevBuf,
}

/// Row-major f32 activations on the device.
pub struct CudaBuffer {
    mem: DevBuf,
    rows: usize,
    cols: usize,
}

impl CudaBuffer {
    fn len(&self) -> usize {
        self.rows * self.cols
    }
}

/// Small host arrays a step uploads, kept with their device copies so
/// that the 2 × layers calls of a step that pass the same positions or
/// tables upload them once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Meta {
    Ids,
    Positions,
    InvFreq,
    Step,
    Rows,
    Blocks,
}

#[derive(Default)]
struct State {
    meta: std::collections::HashMap<Meta, (Vec<u32>, DevBuf)>,
    matmul: matmul::MatmulScratch,
}

pub struct CudaBackend {
    dev: Arc<CudaDevice>,
    state: Mutex<State>,
    error: Mutex<Option<Failure>>,
    /// Fill weight matrices with random blocks on the device instead of
    /// uploading their bytes (benchmarks of dummy models).
    random_weights: bool,
    /// Bytes of every weight matrix made so far.
    matrix_bytes: std::sync::atomic::AtomicUsize,
    /// Rows whose argmax the device found (greedy steps).
    argmax_rows: std::sync::atomic::AtomicUsize,
}

impl CudaBackend {
    pub fn new(dev: Arc<CudaDevice>) -> Self {
        CudaBackend {
            dev,
            state: Mutex::default(),
            error: Mutex::default(),
            random_weights: false,
            matrix_bytes: Default::default(),
            argmax_rows: Default::default(),
        }
    }

    /// Weight matrices made on the device from a seed, their bytes
    /// ignored: a benchmark model of 8B parameters loads in a second.
    pub fn with_random_weights(mut self) -> Self {
        self.random_weights = true;
        self
    }

    /// Rows whose argmax the device found instead of sending them back.
    pub fn rows_argmaxed(&self) -> usize {
        self.argmax_rows.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes of every weight matrix this backend holds.
    pub fn matrix_bytes(&self) -> usize {
        self.matrix_bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn device(&self) -> &Arc<CudaDevice> {
        &self.dev
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` unless an earlier operation failed; keeps its failure.
    fn run(&self, op: impl FnOnce() -> Result<(), Failure>) {
        let mut err = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if err.is_some() {
            return;
        }
        if self.dev.driver.bind().is_err() {
            *err = Some(Failure("the CUDA context could not be made current".into()));
            return;
        }
        if let Err(e) = op() {
            tracing::error!(error = %e, "CUDA operation failed");
            *err = Some(e);
        }
    }

    /// The device copy of `data` in `slot`, uploaded only if it changed.
    fn upload(&self, st: &mut State, slot: Meta, data: &[u32]) -> Result<u64, Failure> {
        if let Some((host, buf)) = st.meta.get(&slot) {
            if host.as_slice() == data {
                return Ok(buf.ptr());
            }
        }
        let bytes = data.len() * 4;
        let fits = st.meta.get(&slot).is_some_and(|(_, b)| b.bytes() >= bytes);
        if !fits {
            let buf = DevBuf::alloc(&self.dev.driver, bytes.next_power_of_two().max(256))?;
            st.meta.insert(slot, (Vec::new(), buf));
        }
        let Some((host, buf)) = st.meta.get_mut(&slot) else {
            return Err(Failure("metadata buffer vanished".into()));
        };
        buf.upload(data)?;
        host.clear();
        host.extend_from_slice(data);
        Ok(buf.ptr())
    }

    fn alloc_buffer(&self, rows: usize, cols: usize) -> Result<CudaBuffer, Failure> {
        Ok(CudaBuffer {
            mem: DevBuf::alloc(&self.dev.driver, rows.max(1) * cols * 4)?,
            rows,
            cols,
        })
    }

    /// A buffer holding `values` (rows × cols), for checks and tools.
    pub fn upload_buffer(&self, values: &[f32], cols: usize) -> Result<CudaBuffer, Failure> {
        self.dev.driver.bind()?;
        let b = self.alloc_buffer(values.len() / cols, cols)?;
        b.mem.upload(values)?;
        Ok(b)
    }

    /// dst = src, on the device (buffers of equal size).
    pub fn copy_buffer(&self, src: &CudaBuffer, dst: &CudaBuffer) -> Result<(), Failure> {
        let bytes = src.mem.bytes().min(dst.mem.bytes());
        self.dev.driver.copy(dst.mem.ptr(), src.mem.ptr(), bytes)
    }

    /// Makes the backend fail from now on, as a failed launch would.
    #[cfg(test)]
    pub fn inject_failure(&self, why: &str) {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(Failure(why.into()));
    }

    /// The first error a device operation hit, if any.
    pub fn failure(&self) -> Option<Failure> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Greedy choice per row (ties to the lowest id).
    pub fn argmax(&self, logits: &CudaBuffer) -> Result<Vec<u32>, Failure> {
        self.dev.driver.bind()?;
        let out = DevBuf::alloc(&self.dev.driver, logits.rows * 4)?;
        let mut a = args![logits.mem.ptr(), logits.cols as i32, out.ptr()];
        self.dev.launch_rows(
            &self.dev.kernels.argmax_rows,
            logits.rows,
            SAMPLE_THREADS,
            &mut a,
        )?;
        let mut ids = vec![0u32; logits.rows];
        out.download(&mut ids)?;
        Ok(ids)
    }

    /// Temperature, top-k (0: off) and top-p sampling per row, from the
    /// uniform draws `u` in [0, 1).
    pub fn sample(
        &self,
        logits: &CudaBuffer,
        temperature: &[f32],
        top_k: &[u32],
        top_p: &[f32],
        u: &[f32],
    ) -> Result<Vec<u32>, Failure> {
        self.dev.driver.bind()?;
        let rows = logits.rows;
        let params = DevBuf::alloc(&self.dev.driver, 4 * rows * 5)?;
        params.upload_at(0, temperature)?;
        params.upload_at(4 * rows, top_k)?;
        params.upload_at(8 * rows, top_p)?;
        params.upload_at(12 * rows, u)?;
        let p = |i: usize| params.ptr() + (4 * rows * i) as u64;
        let mut a = args![
            logits.mem.ptr(),
            logits.cols as i32,
            p(0),
            p(1),
            p(2),
            p(3),
            p(4)
        ];
        self.dev
            .launch_rows(&self.dev.kernels.sample_rows, rows, SAMPLE_THREADS, &mut a)?;
        let mut ids = vec![0u32; 5 * rows];
        params.download(&mut ids)?;
        Ok(ids[4 * rows..].to_vec())
    }

    /// Copies whole blocks (all layers, keys and values): `pairs` of
    /// (source, destination).
    pub fn copy_blocks(&self, cache: &CudaKvCache, pairs: &[(u32, u32)]) -> Result<(), Failure> {
        self.dev.driver.bind()?;
        let mut flat: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        flat.extend(pairs.iter().map(|p| p.1));
        let mut st = self.state();
        self.upload(&mut st, Meta::Blocks, &flat)?;
        let buf = &st.meta[&Meta::Blocks].1;
        attention::copy_blocks(&self.dev, cache, buf, pairs.len())
    }

    /// The whole cache, for comparing with the CPU's.
    pub fn read_cache(&self, cache: &CudaKvCache) -> Result<Vec<u8>, Failure> {
        self.dev.driver.bind()?;
        let mut bytes = vec![0u8; cache.mem.bytes()];
        cache.mem.download(&mut bytes)?;
        Ok(bytes)
    }

    /// Weight bytes: `bytes` uploaded, or (benchmarks) random valid
    /// blocks made on the device from a seed, with no host generation or
    /// upload.
    fn weight_memory(&self, bytes: &[u8]) -> Result<DevBuf, Failure> {
        self.dev.driver.bind()?;
        let mem = DevBuf::alloc(&self.dev.driver, bytes.len())?;
        if self.random_weights {
            let seed = self.matrix_bytes() as u64;
            let mut a = args![mem.ptr(), mem.bytes() as u64, seed];
            self.dev
                .launch_over(&self.dev.kernels.fill_random, mem.bytes() / 2, &mut a)?;
        } else {
            mem.upload(bytes)?;
            self.dev.synchronize()?;
        }
        Ok(mem)
    }
}

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
