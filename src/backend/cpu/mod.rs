//! The CPU backend: runtime-dispatched SIMD kernels on the shared compute
//! pool. The reference every other backend is compared with.

mod affinity;
mod attention;
mod blocks;
mod dequant;
mod disjoint;
mod gemm;
mod gemv;
mod int_dot;
pub mod isa;
mod layout;
mod matrix;
mod ops;
pub mod pool;
mod q4_groups;
mod q8_act;
mod qgemm;
mod reduce;
mod unpacked;

pub use attention::CpuKvCache;
pub use isa::Isa;
pub use matrix::CpuMatrix;
pub use pool::ComputePool;

use crate::backend::{
    Backend, BackendError, Heads, KvBatch, KvShape, Rope, SharedBytes, WeightFormat,
};
use std::sync::Arc;

pub struct CpuBackend {
    pool: Arc<ComputePool>,
    isa: Isa,
    /// Quantized weights meet f32 activations (dequantized in registers)
    /// instead of 8-bit activations and integer dot products: slower, and
    /// within rounding of the exact f32 computation.
    exact_activations: bool,
}

/// Row-major f32 activations.
pub struct CpuBuffer {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl CpuBuffer {
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn as_slice(&self) -> &[f32] {
        &self.data[..self.rows * self.cols]
    }
    fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data[..self.rows * self.cols]
    }
}

impl CpuBackend {
    pub fn new(pool: Arc<ComputePool>) -> Self {
        CpuBackend {
            pool,
            isa: isa::isa(),
            exact_activations: false,
        }
    }

    /// Runs quantized matmuls on f32 activations (see the field).
    pub fn with_exact_activations(mut self, exact: bool) -> Self {
        self.exact_activations = exact;
        self
    }

    /// A backend on a given instruction set, for comparing paths; None if
    /// this CPU cannot run it.
    pub fn with_isa(pool: Arc<ComputePool>, isa: Isa) -> Option<Self> {
        isa.supported().then_some(CpuBackend {
            pool,
            isa,
            exact_activations: false,
        })
    }

    pub fn pool(&self) -> &Arc<ComputePool> {
        &self.pool
    }

    /// A buffer holding `values`, `cols` to a row (checks and tools).
    pub fn buffer_of(&self, values: Vec<f32>, cols: usize) -> CpuBuffer {
        CpuBuffer {
            rows: values.len() / cols,
            data: values,
            cols,
        }
    }
}

impl Backend for CpuBackend {
    type Matrix = CpuMatrix;
    type Vector = Vec<f32>;
    type Buffer = CpuBuffer;
    type KvCache = CpuKvCache;

    fn describe(&self) -> String {
        format!(
            "cpu ({}, {} threads)",
            self.isa.name(),
            self.pool.n_threads()
        )
    }

    fn matrix(
        &self,
        format: WeightFormat,
        rows: usize,
        cols: usize,
        bytes: SharedBytes,
    ) -> Result<CpuMatrix, BackendError> {
        CpuMatrix::new(format, rows, cols, bytes).map_err(BackendError::Matrix)
    }

    fn vector(&self, values: Vec<f32>) -> Vec<f32> {
        values
    }

    fn buffer(&self, rows: usize, cols: usize) -> CpuBuffer {
        CpuBuffer {
            data: vec![0.0; rows * cols],
            rows,
            cols,
        }
    }

    fn resize(&self, buf: &mut CpuBuffer, rows: usize) {
        if buf.data.len() < rows * buf.cols {
            buf.data.resize(rows * buf.cols, 0.0);
        }
        buf.rows = rows;
    }

    fn kv_cache(&self, shape: KvShape) -> Result<CpuKvCache, BackendError> {
        CpuKvCache::new(shape)
    }

    fn embed(&self, table: &CpuMatrix, ids: &[u32], out: &mut CpuBuffer) {
        self.resize(out, ids.len());
        let cols = out.cols;
        for (row, &id) in out.as_mut_slice().chunks_exact_mut(cols).zip(ids) {
            dequant::dequantize_rows(self.isa, table, id as usize, 1, row);
        }
    }

    fn rms_norm(&self, x: &CpuBuffer, weight: &Vec<f32>, eps: f32, out: &mut CpuBuffer) {
        self.resize(out, x.rows);
        ops::rms_norm(x.as_slice(), weight, eps, out.as_mut_slice());
    }

    fn matmul(&self, x: &CpuBuffer, w: &CpuMatrix, out: &mut CpuBuffer) {
        self.resize(out, x.rows);
        let run = if self.exact_activations {
            gemm::matmul_f32
        } else {
            gemm::matmul
        };
        run(
            &self.pool,
            self.isa,
            x.as_slice(),
            x.rows,
            w,
            out.as_mut_slice(),
        );
    }

    fn rope(&self, x: &mut CpuBuffer, positions: &[u32], head_dim: usize, rope: &Rope) {
        let cols = x.cols;
        ops::rope(x.as_mut_slice(), cols, positions, head_dim, rope);
    }

    fn attention(
        &self,
        q: &CpuBuffer,
        k: &CpuBuffer,
        v: &CpuBuffer,
        cache: &mut CpuKvCache,
        layer: usize,
        batch: &KvBatch,
        heads: Heads,
        out: &mut CpuBuffer,
    ) {
        self.resize(out, q.rows);
        attention::attention(
            &self.pool,
            self.isa,
            q.as_slice(),
            k.as_slice(),
            v.as_slice(),
            cache,
            layer,
            batch,
            heads,
            out.as_mut_slice(),
        );
    }

    fn add_bias(&self, x: &mut CpuBuffer, bias: &Vec<f32>) {
        ops::add_bias(x.as_mut_slice(), bias);
    }

    fn head_norm(&self, x: &mut CpuBuffer, weight: &Vec<f32>, eps: f32) {
        ops::rms_norm_in_place(x.as_mut_slice(), weight, eps);
    }

    fn silu_mul(&self, gate: &mut CpuBuffer, up: &CpuBuffer) {
        ops::silu_mul(gate.as_mut_slice(), up.as_slice());
    }

    fn add(&self, x: &mut CpuBuffer, y: &CpuBuffer) {
        ops::add(x.as_mut_slice(), y.as_slice());
    }

    fn gather_rows(&self, x: &CpuBuffer, rows: &[usize], out: &mut CpuBuffer) {
        self.resize(out, rows.len());
        let c = x.cols;
        for (i, &r) in rows.iter().enumerate() {
            out.data[i * c..(i + 1) * c].copy_from_slice(&x.data[r * c..(r + 1) * c]);
        }
    }

    fn read(&self, x: &CpuBuffer) -> Vec<f32> {
        x.as_slice().to_vec()
    }
}
