//! What a GGUF file to be written holds: metadata and tensors, each tensor
//! still in the bytes of its source (a GGUF file's map, a safetensors
//! shard's, or a buffer when the source's layout had to change).

use super::{GgmlType, GgufFile, MetaValue};
use crate::backend::SharedBytes;

pub struct TensorSource {
    pub name: String,
    /// GGUF order: innermost (columns) first.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub data: SharedBytes,
}

impl TensorSource {
    /// A two-dimensional `.weight`: a matrix that quantization re-encodes
    /// (vectors, norms and biases stay as they are).
    pub fn is_matrix(&self) -> bool {
        self.dims.len() == 2 && self.name.ends_with(".weight")
    }
}

pub struct GgufContents {
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<TensorSource>,
}

impl GgufContents {
    pub fn of_file(file: &GgufFile) -> Self {
        GgufContents {
            metadata: file
                .metadata()
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect(),
            tensors: file
                .tensors()
                .iter()
                .map(|info| TensorSource {
                    name: info.name.clone(),
                    dims: info.dims.clone(),
                    ty: info.ty,
                    data: file.tensor_data(info),
                })
                .collect(),
        }
    }
}
