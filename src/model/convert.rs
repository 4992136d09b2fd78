//! Re-encoding weight matrices in another format: `--quantize`/`--dtype`
//! at load (every matrix re-encoded in memory, the file untouched) and
//! `switchyard quantize` (the same matrices written to a GGUF file) share
//! `reencode`, so a file and a load-time conversion hold the same bytes.
//! Vectors stay as they are; they are read as f32 anyway.

use super::error::Result;
use super::tensors::{RawTensor, StoredType, TensorStore, Weight};
use crate::backend::quant::{dequantize_scalar, encode};
use crate::backend::{SharedBytes, WeightFormat};
use std::path::Path;

/// `rows` rows of `cols` values stored in `from`, re-encoded for a
/// request of `to`: the format actually used (K-quants fall back for rows
/// that are not whole super-blocks, `WeightFormat::for_row_width`) and
/// the bytes. None when the rows cannot be re-encoded (a width that is
/// not a whole number of 32-value blocks, or bytes of the wrong size).
/// Rows are spread over the machine's cores; each row is encoded on its
/// own, so the result does not depend on how many there are.
pub fn reencode(
    from: WeightFormat,
    to: WeightFormat,
    rows: usize,
    cols: usize,
    data: &[u8],
) -> Option<(WeightFormat, Vec<u8>)> {
    let to = to.for_row_width(cols);
    let fits = |f: WeightFormat| cols.is_multiple_of(f.block_elems());
    if !fits(from) || !fits(to) || data.len() != rows * from.row_bytes(cols) {
        return None;
    }
    if from == to {
        return Some((to, data.to_vec()));
    }
    let (in_row, out_row) = (from.row_bytes(cols), to.row_bytes(cols));
    let mut out = vec![0u8; rows * out_row];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = rows.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (src, dst) in data
            .chunks(per_thread * in_row)
            .zip(out.chunks_mut(per_thread * out_row))
        {
            s.spawn(move || {
                let mut row = vec![0f32; cols];
                for (r, o) in src.chunks_exact(in_row).zip(dst.chunks_exact_mut(out_row)) {
                    dequantize_scalar(from, r, &mut row);
                    o.copy_from_slice(&encode(to, &row));
                }
            });
        }
    });
    Some((to, out))
}

/// The format a matrix gets when `to` was asked for. Every logit goes
/// through the output projection (or the embedding table standing in for
/// it), so, as llama.cpp's quantizer does, it keeps at least Q6_K unless
/// `pure` asks for one format everywhere.
pub fn format_for(is_output: bool, to: WeightFormat, pure: bool) -> WeightFormat {
    let coarse = matches!(
        to,
        WeightFormat::Q4_0
            | WeightFormat::Q4_1
            | WeightFormat::Q5_0
            | WeightFormat::Q5_1
            | WeightFormat::Q4K
            | WeightFormat::Q5K
    );
    if is_output && coarse && !pure {
        WeightFormat::Q6K
    } else {
        to
    }
}

pub struct Converted<'a> {
    pub inner: &'a dyn TensorStore,
    pub to: WeightFormat,
}

impl TensorStore for Converted<'_> {
    fn origin(&self) -> &Path {
        self.inner.origin()
    }

    fn name(&self, w: Weight) -> String {
        self.inner.name(w)
    }

    fn has(&self, w: Weight) -> Result<bool> {
        self.inner.has(w)
    }

    fn get(&self, w: Weight) -> Result<Option<RawTensor>> {
        let Some(t) = self.inner.get(w)? else {
            return Ok(None);
        };
        let StoredType::Known(from) = t.ty else {
            return Ok(Some(t));
        };
        if t.shape.len() != 2 {
            return Ok(Some(t));
        }
        // Anything that cannot be re-encoded is handed on unchanged, for
        // the shape and size checks to report on the original.
        let is_output = match w {
            Weight::Output => true,
            Weight::Embedding => !self.inner.has(Weight::Output)?,
            _ => false,
        };
        let to = format_for(is_output, self.to, false);
        match reencode(from, to, t.shape[0], t.shape[1], &t.data) {
            Some((format, bytes)) => Ok(Some(RawTensor {
                // The file's copy is no longer read.
                data: {
                    t.data.release_pages();
                    SharedBytes::owned(bytes)
                },
                ty: StoredType::Known(format),
                ..t
            })),
            None => Ok(Some(t)),
        }
    }
}
