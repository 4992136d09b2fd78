//! The one error type of the `model` room: loading files, tokenizing,
//! rendering chat templates. Every variant names what went wrong in words a
//! user can act on; the server maps them to HTTP once.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a GGUF file ({detail})")]
    NotGguf { path: PathBuf, detail: String },
    #[error("{path}: malformed GGUF: {detail}")]
    Malformed { path: PathBuf, detail: String },
    #[error("{path}: GGUF metadata key `{key}` is missing")]
    MissingKey { path: PathBuf, key: String },
    #[error("{path}: GGUF metadata key `{key}` has the wrong type: expected {expected}")]
    WrongKeyType {
        path: PathBuf,
        key: String,
        expected: &'static str,
    },
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        path: PathBuf,
        name: String,
        found: Vec<u64>,
        expected: Vec<u64>,
    },
    #[error("{path}: tensor `{name}` has type {ty}, which is not supported{hint}")]
    UnsupportedTensorType {
        path: PathBuf,
        name: String,
        ty: String,
        hint: &'static str,
    },
    #[error("{path}: architecture `{arch}` is not supported (supported: {supported})")]
    UnsupportedArchitecture {
        path: PathBuf,
        arch: String,
        supported: &'static str,
    },
    #[error("{path}: tokenizer: {detail}")]
    Tokenizer { path: PathBuf, detail: String },
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
