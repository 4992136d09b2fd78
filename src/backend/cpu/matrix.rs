//! A weight matrix as the CPU kernels hold it.

use super::layout;
use crate::backend::bytes::SharedBytes;
use crate::backend::quant::{WeightFormat, BLOCK};

/// A weight matrix as the CPU kernels hold it: rows × cols, row-major, its
/// blocks split into quants and f16 scales (`layout.rs`).
#[derive(Clone, Debug)]
pub struct CpuMatrix {
    pub format: WeightFormat,
    pub rows: usize,
    pub cols: usize,
    pub(super) quants: SharedBytes,
    pub(super) scales: Vec<u16>,
}

impl CpuMatrix {
    /// `cols` must be a multiple of 32 and `bytes` hold exactly rows × cols.
    pub fn new(
        format: WeightFormat,
        rows: usize,
        cols: usize,
        bytes: SharedBytes,
    ) -> Result<Self, String> {
        let block = format.block_elems().max(BLOCK);
        if !cols.is_multiple_of(block) {
            return Err(format!(
                "row length {cols} is not a multiple of {block}, the block of {}",
                format.name()
            ));
        }
        let want = rows * format.row_bytes(cols);
        if bytes.len() != want {
            return Err(format!(
                "{} bytes for a {rows}×{cols} {} matrix, expected {want}",
                bytes.len(),
                format.name()
            ));
        }
        let (quants, scales) = layout::split(format, bytes);
        Ok(CpuMatrix {
            format,
            rows,
            cols,
            quants,
            scales,
        })
    }

    /// Bytes the matrix takes in memory.
    pub fn memory_bytes(&self) -> usize {
        self.quants.len() + self.scales.len() * 2
    }
}
