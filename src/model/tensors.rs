//! Weights by role, whatever the file calls them. A `TensorStore` (GGUF,
//! safetensors, generated dummy weights) hands out raw tensors; `Weights`
//! checks each one's shape and type and turns it into backend storage.

use super::error::{ModelError, Result};
use crate::backend::{Backend, SharedBytes, WeightFormat};
use std::path::Path;

/// A weight of the transformer, independent of naming conventions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    Embedding,
    /// The output projection (absent when tied to the embedding).
    Output,
    OutputNorm,
    /// Per-pair RoPE frequency divisors (GGUF files of Llama 3.1).
    RopeFreqs,
    Layer(usize, LayerWeight),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerWeight {
    AttnNorm,
    Q,
    K,
    V,
    O,
    QBias,
    /// Output-projection bias (Llama configs with `attention_bias`).
    OBias,
    KBias,
    VBias,
    QNorm,
    KNorm,
    FfnNorm,
    Gate,
    Up,
    Down,
}

impl LayerWeight {
    /// Every per-layer weight an architecture here may have.
    pub const ALL: [LayerWeight; 15] = {
        use LayerWeight::*;
        [
            AttnNorm, Q, K, V, O, QBias, KBias, VBias, OBias, QNorm, KNorm, FfnNorm, Gate, Up, Down,
        ]
    };
}

/// The element type of a stored tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredType {
    Known(WeightFormat),
    /// A type this build cannot compute with, by its name in the file.
    Unsupported(String),
}

/// A tensor as a file holds it.
pub struct RawTensor {
    /// Its name in the file, for errors.
    pub name: String,
    pub ty: StoredType,
    /// Row-major: outermost dimension first (rows, then columns).
    pub shape: Vec<usize>,
    pub data: SharedBytes,
}

/// Where weights come from.
pub trait TensorStore {
    /// The file or directory, named in errors.
    fn origin(&self) -> &Path;
    /// What the store calls `w` (named when it is missing).
    fn name(&self, w: Weight) -> String;
    /// The tensor for `w`, or None when the store has none.
    fn get(&self, w: Weight) -> Result<Option<RawTensor>>;
    /// Whether the store has `w`; stores that make tensors on request
    /// (conversion, dummy weights) answer without making one.
    fn has(&self, w: Weight) -> Result<bool> {
        Ok(self.get(w)?.is_some())
    }
}

/// Checked conversion of raw tensors into backend weights.
pub struct Weights<'a, B: Backend> {
    pub store: &'a dyn TensorStore,
    pub backend: &'a B,
}

impl<B: Backend> Weights<'_, B> {
    fn malformed(&self, detail: String) -> ModelError {
        ModelError::Malformed {
            path: self.store.origin().to_path_buf(),
            detail,
        }
    }

    fn required(&self, w: Weight) -> Result<RawTensor> {
        self.store.get(w)?.ok_or_else(|| ModelError::MissingTensor {
            path: self.store.origin().to_path_buf(),
            name: self.store.name(w),
        })
    }

    fn check_shape(&self, t: &RawTensor, expected: &[usize]) -> Result<()> {
        if t.shape != expected {
            return Err(ModelError::TensorShape {
                path: self.store.origin().to_path_buf(),
                name: t.name.clone(),
                found: t.shape.iter().map(|&d| d as u64).collect(),
                expected: expected.iter().map(|&d| d as u64).collect(),
            });
        }
        Ok(())
    }

    fn format(&self, t: &RawTensor, hint: &'static str) -> Result<WeightFormat> {
        match &t.ty {
            StoredType::Known(f) => Ok(*f),
            StoredType::Unsupported(ty) => Err(ModelError::UnsupportedTensorType {
                path: self.store.origin().to_path_buf(),
                name: t.name.clone(),
                ty: ty.clone(),
                hint,
            }),
        }
    }

    pub fn has(&self, w: Weight) -> Result<bool> {
        self.store.has(w)
    }

    /// A rows × cols matrix.
    pub fn matrix(&self, w: Weight, rows: usize, cols: usize) -> Result<B::Matrix> {
        let t = self.required(w)?;
        self.check_shape(&t, &[rows, cols])?;
        let format = self.format(
            &t,
            " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)",
        )?;
        self.backend
            .matrix(format, rows, cols, t.data)
            .map_err(|e| self.malformed(format!("tensor `{}`: {e}", t.name)))
    }

    /// A vector of `len` values, as f32.
    pub fn vector(&self, w: Weight, len: usize) -> Result<B::Vector> {
        let t = self.required(w)?;
        self.check_shape(&t, &[len])?;
        let format = self.format(&t, " for a vector (expected F32, F16 or BF16)")?;
        let values = floats(format, &t.data).ok_or_else(|| ModelError::UnsupportedTensorType {
            path: self.store.origin().to_path_buf(),
            name: t.name.clone(),
            ty: format.name().to_owned(),
            hint: " for a vector (expected F32, F16 or BF16)",
        })?;
        Ok(self.backend.vector(values))
    }

    /// An optional vector: None when the store lacks it.
    pub fn vector_opt(&self, w: Weight, len: usize) -> Result<Option<B::Vector>> {
        if self.has(w)? {
            self.vector(w, len).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The values of a small float tensor of any shape with `len` values.
    pub fn floats(&self, w: Weight, len: usize) -> Result<Option<Vec<f32>>> {
        let Some(t) = self.store.get(w)? else {
            return Ok(None);
        };
        let format = self.format(&t, " (expected F32, F16 or BF16)")?;
        match floats(format, &t.data) {
            Some(v) if v.len() == len => Ok(Some(v)),
            _ => Err(self.malformed(format!(
                "tensor `{}` should hold {len} float values",
                t.name
            ))),
        }
    }
}

/// Float values of a plain float tensor; None for quantized formats.
pub fn floats(format: WeightFormat, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match format {
        WeightFormat::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        WeightFormat::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        WeightFormat::Bf16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}
