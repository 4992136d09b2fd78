//! `--dtype` at load: every weight matrix re-encoded in another format
//! (f16 → bf16, bf16 → q8_0 …) in memory, leaving the file untouched.
//! Vectors stay as they are; they are read as f32 anyway.

use super::error::Result;
use super::tensors::{RawTensor, StoredType, TensorStore, Weight};
use crate::backend::quant::{dequantize_scalar, encode};
use crate::backend::{SharedBytes, WeightFormat};
use std::path::Path;

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
        if t.shape.len() != 2 || from == self.to || !t.shape[1].is_multiple_of(32) {
            return Ok(Some(t));
        }
        let cols = t.shape[1];
        let row_bytes = from.row_bytes(cols);
        if t.data.len() != t.shape[0] * row_bytes {
            // Wrong size: let the shape check report it on the original.
            return Ok(Some(t));
        }
        let mut out = Vec::with_capacity(t.shape[0] * self.to.row_bytes(cols));
        let mut row = vec![0f32; cols];
        for src in t.data.chunks_exact(row_bytes) {
            dequantize_scalar(from, src, &mut row);
            out.extend_from_slice(&encode(self.to, &row));
        }
        Ok(Some(RawTensor {
            ty: StoredType::Known(self.to),
            data: SharedBytes::owned(out),
            ..t
        }))
    }
}
