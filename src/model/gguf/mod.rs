//! The GGUF container format: metadata and a directory of tensors over one
//! memory map.

mod config;
mod cursor;
#[cfg(test)]
mod from_hf_test;
mod ggml_type;
mod reader;
mod store;
#[cfg(test)]
mod tests;
mod value;
pub mod writer;

pub use ggml_type::GgmlType;
pub use reader::{GgufFile, TensorInfo};
pub use store::tensor_name;
pub use value::{MetaArray, MetaValue};
