//! Architectures, weight loading, tokenizer, chat template, quantization
//! formats. Knows nothing of requests or HTTP.

pub mod error;
pub mod gguf;

pub use error::ModelError;
