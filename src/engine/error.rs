//! The one error type of the `engine` room.

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("token id {id} is outside the vocabulary (size {vocab})")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("logit_bias names token id {id}, outside the vocabulary (size {vocab})")]
    BiasOutOfRange { id: u32, vocab: usize },
    #[error("this model's maximum context length is {context} tokens; the request asks for {prompt} prompt tokens and {max_tokens} more")]
    ContextOverflow {
        context: usize,
        prompt: usize,
        max_tokens: usize,
    },
    #[error("the server is at capacity: {running} request(s) running and {waiting} waiting, the most its queue holds; retry after {retry_after_s} s")]
    QueueFull {
        running: usize,
        waiting: usize,
        retry_after_s: u64,
    },
    #[error("the request needs {needed} tokens of KV cache (prompt plus max_tokens), more than the whole cache holds ({capacity}); lower max_tokens or shorten the prompt")]
    LargerThanCache { needed: usize, capacity: usize },
    #[error("engine configuration: {0}")]
    Config(String),
    /// The model's weights could not be loaded.
    #[error("{0}")]
    Load(String),
    /// The KV budget (or the device) has no room for this engine's cache.
    #[error("{0}")]
    NoRoom(String),
    #[error("the engine has stopped")]
    Stopped,
    #[error("the engine failed while running this request: {0}")]
    Internal(String),
}

impl From<crate::model::ModelError> for EngineError {
    fn from(e: crate::model::ModelError) -> Self {
        EngineError::Load(e.to_string())
    }
}
