//! Architectures, weight loading, tokenizer, chat template, quantization
//! formats. Knows nothing of requests or HTTP.

pub mod chat_template;
pub mod config;
pub mod error;
pub mod gguf;
pub mod llama;
pub mod loaded;
#[cfg(test)]
mod tests;
pub mod tokenizer;
mod weights;

pub use config::ModelConfig;
pub use error::ModelError;
pub use llama::{Llama, Scratch};
