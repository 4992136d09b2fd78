//! out = x · wᵀ on the device. Few rows (a decode step) run the GEMV
//! kernels, which read each weight once for up to eight rows and form a
//! row's sums in the same order whatever the batch. Many rows go through
//! cuBLAS with f32 accumulation: half-precision weights as they are,
//! quantized ones dequantized to f16 first.

use super::device::CudaDevice;
use super::driver::Kernel;
use super::mem::{args, DevBuf};
use super::{CudaBuffer, CudaMatrix, Failure};
use crate::backend::WeightFormat;
use cudarc::cublas::result::gemm_ex;
use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType};

type Result<T = ()> = std::result::Result<T, Failure>;

/// Rows one GEMV launch takes (MAX_T in gemv.cu).
pub const GEMV_ROWS: usize = 8;
/// Output rows per GEMV block (GEMV_WARPS in gemv.cu).
const GEMV_WARPS: usize = 4;
/// Above this many rows a quantized matmul goes through cuBLAS; below,
/// re-reading the weights once per eight rows costs less than
/// dequantizing them.
pub const QUANT_GEMM_ROWS: usize = 32;

/// Scratch a matmul may need: activations in half precision and a
/// dequantized weight matrix.
#[derive(Default)]
pub struct MatmulScratch {
    half_x: Option<DevBuf>,
    half_w: Option<DevBuf>,
}

fn ensure(slot: &mut Option<DevBuf>, dev: &CudaDevice, bytes: usize) -> Result<u64> {
    if slot.as_ref().is_none_or(|b| b.bytes() < bytes) {
        *slot = None;
        *slot = Some(DevBuf::alloc(&dev.driver, bytes)?);
    }
    Ok(slot.as_ref().map_or(0, |b| b.ptr()))
}

pub fn gemv_kernel(dev: &CudaDevice, format: WeightFormat) -> &Kernel {
    &dev.kernels.gemv[format as usize]
}

/// Whether `rows` activation rows go through cuBLAS for this format.
pub fn uses_blas(dev: &CudaDevice, format: WeightFormat, rows: usize) -> bool {
    let threshold = match format {
        WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16 => GEMV_ROWS,
        _ => QUANT_GEMM_ROWS,
    };
    dev.blas.is_some() && rows > threshold
}

pub fn matmul(
    dev: &CudaDevice,
    scratch: &mut MatmulScratch,
    x: &CudaBuffer,
    w: &CudaMatrix,
    out: &CudaBuffer,
) -> Result {
    let t = x.rows;
    if t == 0 {
        return Ok(());
    }
    if uses_blas(dev, w.format, t) {
        blas(dev, scratch, x, w, out)
    } else {
        gemv(dev, x, w, out)
    }
}

/// The GEMV kernels, eight activation rows per launch.
pub fn gemv(dev: &CudaDevice, x: &CudaBuffer, w: &CudaMatrix, out: &CudaBuffer) -> Result {
    let f = gemv_kernel(dev, w.format);
    let grid = (w.rows.div_ceil(GEMV_WARPS) as u32, 1, 1);
    for start in (0..x.rows).step_by(GEMV_ROWS) {
        let n = (x.rows - start).min(GEMV_ROWS);
        let xp = x.mem.ptr() + (start * w.cols * 4) as u64;
        let op = out.mem.ptr() + (start * w.rows * 4) as u64;
        let mut a = args![
            w.mem.ptr(),
            w.row_bytes as u64,
            w.rows as i32,
            w.cols as i32,
            xp,
            n as i32,
            op
        ];
        dev.driver
            .launch(f, grid, (GEMV_WARPS * 32) as u32, 0, &mut a)?;
    }
    Ok(())
}

fn blas(
    dev: &CudaDevice,
    scratch: &mut MatmulScratch,
    x: &CudaBuffer,
    w: &CudaMatrix,
    out: &CudaBuffer,
) -> Result {
    let Some(blas) = dev.blas.as_ref() else {
        return gemv(dev, x, w, out);
    };
    let handle = blas.lock().unwrap_or_else(|p| p.into_inner());
    let (t, rows, cols) = (x.rows, w.rows, w.cols);
    let k = &dev.kernels;
    let (a_ptr, ab_type, b_ptr) = match w.format {
        WeightFormat::F32 => (w.mem.ptr(), cudaDataType::CUDA_R_32F, x.mem.ptr()),
        WeightFormat::F16 | WeightFormat::Bf16 => {
            let bf16 = (w.format == WeightFormat::Bf16) as i32;
            let hx = ensure(&mut scratch.half_x, dev, t * cols * 2)?;
            let n = t * cols;
            let mut a = args![x.mem.ptr(), n as u64, bf16, hx];
            dev.launch_over(&k.to_half, n, &mut a)?;
            let ty = if bf16 == 1 {
                cudaDataType::CUDA_R_16BF
            } else {
                cudaDataType::CUDA_R_16F
            };
            (w.mem.ptr(), ty, hx)
        }
        quantized => {
            let hw = ensure(&mut scratch.half_w, dev, rows * cols * 2)?;
            let mut a = args![
                super::format_id(quantized),
                w.mem.ptr(),
                w.row_bytes as u64,
                rows as i32,
                cols as i32,
                hw
            ];
            dev.launch_over(&k.dequant_f16, rows * cols / 32, &mut a)?;
            let hx = ensure(&mut scratch.half_x, dev, t * cols * 2)?;
            let n = t * cols;
            let mut a = args![x.mem.ptr(), n as u64, 0i32, hx];
            dev.launch_over(&k.to_half, n, &mut a)?;
            (hw, cudaDataType::CUDA_R_16F, hx)
        }
    };
    let (alpha, beta) = (1.0f32, 0.0f32);
    // Column-major view: C (rows × t) = Wᵀ-as-stored (rows × cols) ·
    // X-as-stored (cols × t); C's columns are out's rows.
    // SAFETY: the pointers are live device buffers of the sizes the
    // dimensions name; the handle's stream is the device's stream.
    let done = unsafe {
        gemm_ex(
            *handle.handle(),
            cublasOperation_t::CUBLAS_OP_T,
            cublasOperation_t::CUBLAS_OP_N,
            rows as i32,
            t as i32,
            cols as i32,
            &alpha as *const f32 as *const _,
            a_ptr as *const _,
            ab_type,
            cols as i32,
            b_ptr as *const _,
            ab_type,
            cols as i32,
            &beta as *const f32 as *const _,
            out.mem.ptr() as *mut _,
            cudaDataType::CUDA_R_32F,
            rows as i32,
            cublasComputeType_t::CUBLAS_COMPUTE_32F,
            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    };
    done.map_err(|e| Failure(format!("cuBLAS GEMM {rows}×{cols} over {t} rows: {e:?}")))
}
