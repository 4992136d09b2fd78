//! Architectures, weight loading, tokenizer, chat template, quantization
//! formats. Knows nothing of requests or HTTP.

pub mod chat_template;
pub mod config;
pub mod convert;
pub mod dummy;
pub mod error;
pub mod generation;
pub mod gguf;
pub mod hf;
pub mod loaded;
mod py_json;
pub mod quantize;
mod rope_scaling;
pub mod tensors;
#[cfg(test)]
mod tests;
pub mod text_side;
pub mod tokenizer;
pub mod transformer;
pub mod twins;

/// The formats a model's weights are stored and computed in, as the
/// rooms above name them (`--dtype`, a version's `quantize`).
pub use crate::backend::WeightFormat;
pub use config::{Architecture, ModelConfig};
pub use error::ModelError;
pub use loaded::{LoadedModel, ModelSource};
pub use transformer::{OneSequence, Scratch, StepOutput, Transformer};
