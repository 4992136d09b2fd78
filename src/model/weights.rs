//! Turning GGUF tensors into backend weights, checking every name, shape
//! and type on the way.

use super::error::{ModelError, Result};
use super::gguf::{GgmlType, GgufFile, TensorInfo};
use crate::backend::{Backend, WeightFormat};

pub(crate) struct TensorSource<'a, B: Backend> {
    pub file: &'a GgufFile,
    pub backend: &'a B,
}

fn format_of(ty: GgmlType) -> Option<WeightFormat> {
    Some(match ty {
        GgmlType::F32 => WeightFormat::F32,
        GgmlType::F16 => WeightFormat::F16,
        GgmlType::Bf16 => WeightFormat::Bf16,
        GgmlType::Q8_0 => WeightFormat::Q8_0,
        GgmlType::Q4_0 => WeightFormat::Q4_0,
        GgmlType::Q4_1 => WeightFormat::Q4_1,
        _ => return None,
    })
}

impl<B: Backend> TensorSource<'_, B> {
    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.file
            .tensor_info(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.file.path().to_path_buf(),
                name: name.to_owned(),
            })
    }

    pub fn has(&self, name: &str) -> bool {
        self.file.tensor_info(name).is_some()
    }

    fn check_shape(&self, info: &TensorInfo, expected: &[u64]) -> Result<()> {
        if info.dims != expected {
            return Err(ModelError::TensorShape {
                path: self.file.path().to_path_buf(),
                name: info.name.clone(),
                found: info.dims.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(())
    }

    fn format(&self, info: &TensorInfo) -> Result<WeightFormat> {
        format_of(info.ty).ok_or_else(|| ModelError::UnsupportedTensorType {
            path: self.file.path().to_path_buf(),
            name: info.name.clone(),
            ty: info.ty.name().to_owned(),
            hint: " (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1)",
        })
    }

    /// A rows × cols matrix (ggml dims [cols, rows]).
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<B::Matrix> {
        let info = self.info(name)?;
        self.check_shape(info, &[cols as u64, rows as u64])?;
        let format = self.format(info)?;
        self.backend
            .matrix(format, rows, cols, self.file.tensor_data(info))
            .map_err(|e| ModelError::Malformed {
                path: self.file.path().to_path_buf(),
                detail: format!("tensor `{name}`: {e}"),
            })
    }

    /// A vector of `len` values, as f32.
    pub fn vector(&self, name: &str, len: usize) -> Result<B::Vector> {
        let info = self.info(name)?;
        self.check_shape(info, &[len as u64])?;
        let format = self.format(info)?;
        let bytes = self.file.tensor_bytes(info);
        let values: Vec<f32> = match format {
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
            _ => {
                return Err(ModelError::UnsupportedTensorType {
                    path: self.file.path().to_path_buf(),
                    name: name.to_owned(),
                    ty: info.ty.name().to_owned(),
                    hint: " for a norm vector (expected F32, F16 or BF16)",
                })
            }
        };
        Ok(self.backend.vector(values))
    }
}
