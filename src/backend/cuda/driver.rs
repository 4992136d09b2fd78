//! What the backend asks of a device: memory, copies and kernel launches,
//! in stream order. A real device goes through the CUDA driver API; in
//! tests, the host emulator (`emulator/`) runs the same kernels on the
//! CPU, so the backend's own logic and the kernels are checked on
//! machines with no GPU.

#[cfg(test)]
use super::emulator::Emulator;
use super::Failure;
use cudarc::driver::{result, CudaContext, CudaFunction, CudaStream};
use std::sync::Arc;

pub enum Driver {
    Cuda {
        ctx: Arc<CudaContext>,
        stream: Arc<CudaStream>,
    },
    #[cfg(test)]
    Emulated(Emulator),
}

/// A kernel: its name, and its function on a real device.
pub struct Kernel {
    pub name: String,
    pub cuda: Option<CudaFunction>,
}

type Result<T = ()> = std::result::Result<T, Failure>;

/// Host memory standing in for device memory (the emulator's).
#[cfg(test)]
fn host_copy(dst: u64, src: u64, bytes: usize) {
    // SAFETY: both ranges lie inside live allocations (callers' duty).
    unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) };
}

impl Driver {
    /// Makes the device's context current on this thread.
    pub fn bind(&self) -> Result {
        match self {
            Driver::Cuda { ctx, .. } => Ok(ctx.bind_to_thread()?),
            #[cfg(test)]
            Driver::Emulated(_) => Ok(()),
        }
    }

    pub fn alloc(&self, bytes: usize) -> Result<u64> {
        match self {
            Driver::Cuda { ctx, .. } => {
                ctx.bind_to_thread()?;
                // SAFETY: the context is current; the caller frees the
                // pointer once.
                Ok(unsafe { result::malloc_sync(bytes.max(1)) }?)
            }
            #[cfg(test)]
            Driver::Emulated(e) => Ok(e.alloc(bytes)),
        }
    }

    /// Returns memory from `alloc`.
    pub fn free(&self, ptr: u64, bytes: usize) {
        match self {
            Driver::Cuda { ctx, .. } => {
                let _ = bytes;
                if ctx.bind_to_thread().is_ok() {
                    // SAFETY: allocated by `alloc`, freed once.
                    let _ = unsafe { result::free_sync(ptr) };
                }
            }
            #[cfg(test)]
            Driver::Emulated(e) => e.free(ptr, bytes),
        }
    }

    /// Zeroes `bytes` at `ptr`, which lie inside an allocation.
    pub fn zero(&self, ptr: u64, bytes: usize) -> Result {
        match self {
            // SAFETY: the range lies inside an allocation.
            Driver::Cuda { stream, .. } => {
                Ok(unsafe { result::memset_d8_async(ptr, 0, bytes, stream.cu_stream()) }?)
            }
            #[cfg(test)]
            Driver::Emulated(_) => {
                // SAFETY: as above; emulated device memory is host memory.
                unsafe { std::ptr::write_bytes(ptr as *mut u8, 0, bytes) };
                Ok(())
            }
        }
    }

    /// Host to device, in stream order. Pageable memory is staged by the
    /// driver before this returns, so `data` may be dropped at once.
    pub fn upload(&self, ptr: u64, data: &[u8]) -> Result {
        match self {
            // SAFETY: the destination range lies inside an allocation.
            Driver::Cuda { stream, .. } => {
                Ok(unsafe { result::memcpy_htod_async(ptr, data, stream.cu_stream()) }?)
            }
            #[cfg(test)]
            Driver::Emulated(_) => {
                host_copy(ptr, data.as_ptr() as u64, data.len());
                Ok(())
            }
        }
    }

    /// Device to host, once the stream is done.
    pub fn download(&self, ptr: u64, out: &mut [u8]) -> Result {
        match self {
            // SAFETY: the source range lies inside an allocation; the
            // stream is synchronised before `out` is read.
            Driver::Cuda { stream, .. } => unsafe {
                result::memcpy_dtoh_async(out, ptr, stream.cu_stream())?;
                Ok(result::stream::synchronize(stream.cu_stream())?)
            },
            #[cfg(test)]
            Driver::Emulated(_) => {
                host_copy(out.as_mut_ptr() as u64, ptr, out.len());
                Ok(())
            }
        }
    }

    /// Device to device, in stream order.
    pub fn copy(&self, dst: u64, src: u64, bytes: usize) -> Result {
        match self {
            // SAFETY: both ranges lie inside allocations.
            Driver::Cuda { stream, .. } => {
                Ok(unsafe { result::memcpy_dtod_async(dst, src, bytes, stream.cu_stream()) }?)
            }
            #[cfg(test)]
            Driver::Emulated(_) => {
                host_copy(dst, src, bytes);
                Ok(())
            }
        }
    }

    pub fn launch(
        &self,
        k: &Kernel,
        grid: (u32, u32, u32),
        block: u32,
        shared: u32,
        args: &mut [u64],
    ) -> Result {
        if grid.0 == 0 || grid.1 == 0 || grid.2 == 0 {
            return Ok(());
        }
        match self {
            Driver::Cuda { stream, .. } => {
                let f = k
                    .cuda
                    .as_ref()
                    .ok_or_else(|| Failure(format!("kernel {} is not loaded", k.name)))?;
                let mut params: Vec<*mut std::ffi::c_void> =
                    args.iter_mut().map(|a| a as *mut u64 as *mut _).collect();
                // SAFETY: every kernel's parameters are 4- or 8-byte
                // scalars or device pointers, in the order its
                // `extern "C"` signature gives them; each slot outlives
                // the call, which copies them.
                unsafe {
                    result::launch_kernel(
                        f.cu_function(),
                        grid,
                        (block, 1, 1),
                        shared,
                        stream.cu_stream(),
                        &mut params,
                    )
                }?;
                Ok(())
            }
            #[cfg(test)]
            Driver::Emulated(e) => e.launch(&k.name, grid, block, shared, args),
        }
    }

    pub fn synchronize(&self) -> Result {
        match self {
            Driver::Cuda { stream, .. } => Ok(stream.synchronize()?),
            #[cfg(test)]
            Driver::Emulated(_) => Ok(()),
        }
    }
}
