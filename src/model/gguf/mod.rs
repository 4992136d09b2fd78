//! The GGUF container format: metadata and a directory of tensors over one
//! memory map.

mod config;
mod contents;
mod cursor;
mod ggml_type;
mod reader;
mod store;
#[cfg(test)]
mod tests;
mod value;
pub mod writer;

pub use contents::{GgufContents, TensorSource};
pub use ggml_type::GgmlType;
pub use reader::{GgufFile, TensorInfo};
pub use store::tensor_name;
pub use value::{MetaArray, MetaValue};
