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
mod ops;

pub use attention::CudaKvCache;
pub use compile::nvrtc_version;
pub use device::{device_count, kernel_names, CudaDevice, GpuInfo};
pub use libs::preload as preload_libraries;
pub use matmul::uses_blas;

use crate::backend::WeightFormat;
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
    let missing: Vec<String> = kernel_names()
        .into_iter()
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

/// The number the CUDA program gives a weight format (`FMT_*`, emitted
/// from the descriptor table by `compile.rs`).
pub fn format_id(f: WeightFormat) -> i32 {
    f as i32
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
