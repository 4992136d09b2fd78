//! One CUDA device as the backend holds it: its context, the stream every
//! kernel runs on, the compiled kernels and the cuBLAS handle.

use super::compile::{self, gemv_name, Compiled};
use super::driver::{Driver, Kernel};
use super::{libs, Failure};
use crate::backend::quant::WeightFormat;
use cudarc::cublas::CudaBlas;
use cudarc::driver::sys::{self, CUdevice_attribute, CUfunction_attribute};
use cudarc::driver::{CudaContext, CudaModule, DriverError};
use cudarc::nvrtc::Ptx;
use std::path::Path;
use std::sync::Arc;

/// What the driver says about a device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GpuInfo {
    pub ordinal: usize,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub multiprocessors: i32,
    pub total_memory: usize,
    pub free_memory: usize,
    /// The driver's CUDA version, as (major, minor).
    pub driver_cuda: (i32, i32),
}

/// Why no CUDA device can be used, in words, or how many there are.
pub fn device_count() -> Result<usize, String> {
    // SAFETY: presence is checked before any driver symbol is touched.
    if !unsafe { sys::is_culib_present() } {
        return Err("no CUDA driver library (libcuda.so.1) on this machine".into());
    }
    // NVRTC and cuBLAS are looked for only where a driver is.
    libs::preload();
    match CudaContext::device_count() {
        Ok(0) => Err("the CUDA driver sees no device".into()),
        Ok(n) => Ok(n as usize),
        Err(e) => Err(format!("the CUDA driver did not start: {e:?}")),
    }
}

fn driver_cuda() -> (i32, i32) {
    let mut v = 0;
    // SAFETY: only called once the driver library is known present.
    let _ = unsafe { sys::cuDriverGetVersion(&mut v) };
    (v / 1000, (v % 1000) / 10)
}

macro_rules! kernels {
    ($($name:ident),* $(,)?) => {
        /// Every kernel of `kernels/*.cu`, looked up once.
        pub struct Kernels {
            $(pub $name: Kernel,)*
            /// The GEMV kernel of each weight format, in the formats'
            /// table order (`compile::program` emits one per format).
            pub gemv: Vec<Kernel>,
        }

        /// The names of every kernel (doctor checks that each loads).
        pub fn kernel_names() -> Vec<String> {
            let mut names = vec![$(stringify!($name).to_owned()),*];
            names.extend(WeightFormat::all().map(gemv_name));
            names
        }

        impl Kernels {
            fn load(m: &Arc<CudaModule>) -> Result<Self, String> {
                let get = |name: String| -> Result<Kernel, String> {
                    let f = m
                        .load_function(&name)
                        .map_err(|e| format!("kernel {name}: {e:?}"))?;
                    Ok(Kernel { name, cuda: Some(f) })
                };
                Ok(Kernels {
                    $($name: get(stringify!($name).to_owned())?,)*
                    gemv: WeightFormat::all()
                        .map(|f| get(gemv_name(f)))
                        .collect::<Result<_, _>>()?,
                })
            }

            /// Names only: the emulator finds kernels by name.
            #[cfg(test)]
            fn by_name() -> Self {
                let named = |name: String| Kernel { name, cuda: None };
                Kernels {
                    $($name: named(stringify!($name).to_owned()),)*
                    gemv: WeightFormat::all().map(|f| named(gemv_name(f))).collect(),
                }
            }
        }
    };
}

kernels!(
    embed,
    rms_norm,
    head_norm,
    rope,
    silu_mul,
    add,
    add_bias,
    gather_rows,
    to_half,
    dequant_f16,
    fill_random,
    kv_store,
    attention,
    kv_copy_blocks,
    argmax_rows,
);

pub struct CudaDevice {
    pub driver: Arc<Driver>,
    pub kernels: Kernels,
    /// None where cuBLAS is not installed: batched steps then run the
    /// GEMV kernels eight rows at a time. A handle is not for concurrent
    /// use, and engines of several versions share the device.
    pub blas: Option<std::sync::Mutex<CudaBlas>>,
    pub info: GpuInfo,
    pub compiled: Compiled,
    /// Most dynamic shared memory one block may ask for.
    pub max_shared: usize,
}

// SAFETY: the cuBLAS handle is used only under its mutex, on the device's
// one stream; everything else is thread-safe driver state.
unsafe impl Send for CudaDevice {}
unsafe impl Sync for CudaDevice {}

impl CudaDevice {
    /// Opens device `ordinal`, compiles (or loads cached) kernels for its
    /// compute capability, and creates its stream and cuBLAS handle.
    pub fn open(ordinal: usize, ptx_cache: Option<&Path>) -> Result<Arc<Self>, String> {
        let count = device_count()?;
        if ordinal >= count {
            return Err(format!("no CUDA device {ordinal}: the driver sees {count}"));
        }
        fn e(what: &'static str) -> impl Fn(DriverError) -> String {
            move |err| format!("{what}: {err:?}")
        }
        let ctx = CudaContext::new(ordinal).map_err(e("creating the context"))?;
        let cc = ctx.compute_capability().map_err(e("compute capability"))?;
        let (free_memory, total_memory) = ctx.mem_get_info().map_err(e("memory"))?;
        let info = GpuInfo {
            ordinal,
            name: ctx.name().map_err(e("name"))?,
            compute_capability: cc,
            multiprocessors: ctx
                .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
                .map_err(e("multiprocessors"))?,
            total_memory,
            free_memory,
            driver_cuda: driver_cuda(),
        };
        let max_shared = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
            .map_err(e("shared memory"))? as usize;
        let arch = format!("compute_{}{}", cc.0, cc.1);
        let mut compiled = compile::ptx(&arch, ptx_cache)?;
        // The text is not needed once loaded (the cache file keeps it).
        let module = ctx
            .load_module(Ptx::from_src(std::mem::take(&mut compiled.ptx)))
            .map_err(e("loading the kernels' PTX"))?;
        let kernels = Kernels::load(&module)?;
        kernels
            .attention
            .cuda
            .as_ref()
            .ok_or("the attention kernel did not load")?
            .set_attribute(
                CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                max_shared as i32,
            )
            .map_err(e("attention's shared memory"))?;
        let stream = ctx.new_stream().map_err(e("creating a stream"))?;
        // SAFETY: presence is checked before any cuBLAS symbol is touched.
        let blas = if unsafe { cudarc::cublas::sys::is_culib_present() } {
            match CudaBlas::new(stream.clone()) {
                Ok(b) => Some(std::sync::Mutex::new(b)),
                Err(err) => {
                    tracing::warn!(error = ?err, "cuBLAS did not start; batched steps use the GEMV kernels");
                    None
                }
            }
        } else {
            tracing::warn!(
                "cuBLAS (libcublas.so.13) not found; batched steps use the GEMV kernels"
            );
            None
        };
        Ok(Arc::new(CudaDevice {
            driver: Arc::new(Driver::Cuda { ctx, stream }),
            kernels,
            blas,
            info,
            compiled,
            max_shared,
        }))
    }

    /// A device that runs the kernels on the CPU, for tests; built once
    /// per process.
    #[cfg(test)]
    pub fn emulated() -> Result<Arc<Self>, String> {
        static DEVICE: std::sync::OnceLock<Result<Arc<CudaDevice>, String>> =
            std::sync::OnceLock::new();
        DEVICE
            .get_or_init(|| {
                let dir = std::env::temp_dir().join("switchyard-emulator");
                let emulator = super::emulator::Emulator::build(&dir)?;
                Ok(Arc::new(CudaDevice {
                    driver: Arc::new(Driver::Emulated(emulator)),
                    kernels: Kernels::by_name(),
                    blas: None,
                    info: GpuInfo {
                        ordinal: 0,
                        name: "host emulator".into(),
                        compute_capability: (0, 0),
                        multiprocessors: 1,
                        total_memory: 1 << 30,
                        free_memory: 1 << 30,
                        driver_cuda: (0, 0),
                    },
                    compiled: Compiled {
                        ptx: String::new(),
                        arch: "host".into(),
                        origin: "emulated".into(),
                    },
                    max_shared: 227 * 1024,
                }))
            })
            .clone()
    }

    /// Launches a grid-stride kernel over `n` items on the device's
    /// stream.
    pub fn launch_over(&self, k: &Kernel, n: usize, args: &mut [u64]) -> Result<(), Failure> {
        self.driver.launch(k, self.grid_for(n, 256), 256, 0, args)
    }

    /// Launches a kernel of one block of `threads` per row.
    pub fn launch_rows(
        &self,
        k: &Kernel,
        rows: usize,
        threads: u32,
        args: &mut [u64],
    ) -> Result<(), Failure> {
        self.driver.launch(k, (rows as u32, 1, 1), threads, 0, args)
    }

    /// Waits for everything queued on the stream.
    pub fn synchronize(&self) -> Result<(), Failure> {
        self.driver.synchronize()
    }

    /// A grid of enough blocks for `n` items of grid-stride loops.
    pub fn grid_for(&self, n: usize, block: u32) -> (u32, u32, u32) {
        let cap = self.info.multiprocessors.max(1) as usize * 16;
        (n.div_ceil(block as usize).clamp(1, cap) as u32, 1, 1)
    }
}
