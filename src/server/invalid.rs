//! Every way an OpenAI request's fields can be refused before the engine
//! sees them, as one type: the field (`param`) and what is wrong with it.
//! `error.rs` maps it to a 400 in OpenAI's envelope.

/// A refused field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Invalid {
    /// A number outside its range.
    #[error("{param} must be {range}, got {got}")]
    OutOfRange {
        param: &'static str,
        /// In words: `between 0 and 2`, `in (0, 1]`.
        range: &'static str,
        got: String,
    },
    /// More of something than one request may carry.
    #[error("at most {max} {what} per request, got {got}")]
    TooMany {
        param: &'static str,
        what: &'static str,
        max: usize,
        got: usize,
    },
    #[error("{param} must not be empty")]
    Empty { param: &'static str },
    /// A prompt so long it cannot fit the context window, known from its
    /// length before it is tokenized.
    #[error("the prompt is {bytes} bytes, at least {at_least} tokens, more than this model's maximum context length of {context} tokens")]
    PromptTooLong {
        param: &'static str,
        bytes: usize,
        at_least: usize,
        context: usize,
    },
    /// A value of the wrong shape, or one that contradicts another.
    #[error("{message}")]
    Malformed {
        param: &'static str,
        message: String,
    },
}

impl Invalid {
    pub fn malformed(param: &'static str, message: impl Into<String>) -> Self {
        Invalid::Malformed {
            param,
            message: message.into(),
        }
    }

    pub fn out_of_range(param: &'static str, range: &'static str, got: impl ToString) -> Self {
        Invalid::OutOfRange {
            param,
            range,
            got: got.to_string(),
        }
    }

    /// The request field at fault.
    pub fn param(&self) -> &'static str {
        match self {
            Invalid::OutOfRange { param, .. }
            | Invalid::TooMany { param, .. }
            | Invalid::Empty { param }
            | Invalid::PromptTooLong { param, .. }
            | Invalid::Malformed { param, .. } => param,
        }
    }
}
