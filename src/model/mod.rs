//! Architectures, weight loading, tokenizer, chat template, quantization
//! formats. Knows nothing of requests or HTTP.

pub mod error;
pub mod gguf;
pub mod tokenizer;

pub use error::ModelError;
