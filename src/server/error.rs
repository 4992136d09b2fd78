//! The one place errors become HTTP: every room's error maps to a status
//! and OpenAI's error envelope here, and nowhere else (`reply.rs` writes
//! the response). A leaf of the server room: it imports no file beside it
//! but the validation errors it maps (`invalid.rs`).

use super::invalid::Invalid;
use crate::engine::EngineError;
use crate::model::ModelError;
use crate::policy::PolicyError;
use crate::registry::RegistryError;
use crate::store::StoreError;
use hyper::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        message: String,
        param: Option<&'static str>,
    },
    /// A generation request's field out of range or malformed.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("The model `{0}` does not exist")]
    ModelNotFound(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {method} is not allowed here; this path takes {allowed}")]
    MethodNotAllowed { method: String, allowed: String },
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    #[error("content type `{0}` is not supported; send application/json")]
    UnsupportedMediaType(String),
    #[error("the model is still loading")]
    NotReady,
    #[error("{0}")]
    Forbidden(String),
    #[error("a fault was injected into {0} (fault injection is on for testing)")]
    InjectedFault(String),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad(message: impl Into<String>, param: &'static str) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            param: Some(param),
        }
    }

    pub fn status_code(&self) -> u16 {
        self.status().as_u16()
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } | ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::ModelNotFound(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::InjectedFault(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Policy(e) => match e {
                PolicyError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                PolicyError::Forbidden(_) => StatusCode::FORBIDDEN,
                PolicyError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
                PolicyError::Invalid(_) => StatusCode::BAD_REQUEST,
                PolicyError::NotFound(_) => StatusCode::NOT_FOUND,
                PolicyError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Registry(e) => match e {
                RegistryError::Invalid(_) => StatusCode::BAD_REQUEST,
                RegistryError::NotFound(_) => StatusCode::NOT_FOUND,
                RegistryError::Conflict(_)
                | RegistryError::Gate(_)
                | RegistryError::NoRoom(_)
                | RegistryError::Store(StoreError::VersionExists(..)) => StatusCode::CONFLICT,
                RegistryError::Artifact(_) | RegistryError::Warmup(_) | RegistryError::Eval(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                RegistryError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
                RegistryError::Forbidden(_) => StatusCode::FORBIDDEN,
                RegistryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Engine(e) => match e {
                EngineError::EmptyPrompt
                | EngineError::TokenOutOfRange { .. }
                | EngineError::BiasOutOfRange { .. }
                | EngineError::ContextOverflow { .. }
                | EngineError::LargerThanCache { .. } => StatusCode::BAD_REQUEST,
                EngineError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
                EngineError::Stopped
                | EngineError::Internal(_)
                | EngineError::Config(_)
                | EngineError::Load(_)
                | EngineError::NoRoom(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Model(e) => match e {
                ModelError::ChatTemplate(_) | ModelError::InvalidInput(_) => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> (&'static str, Option<&'static str>) {
        match self {
            ApiError::ModelNotFound(_) => ("invalid_request_error", Some("model_not_found")),
            ApiError::Engine(EngineError::ContextOverflow { .. })
            | ApiError::Invalid(Invalid::PromptTooLong { .. }) => {
                ("invalid_request_error", Some("context_length_exceeded"))
            }
            ApiError::Engine(EngineError::QueueFull { .. }) => {
                ("rate_limit_error", Some("queue_full"))
            }
            ApiError::Forbidden(_) | ApiError::Policy(PolicyError::Forbidden(_)) => {
                ("permission_error", None)
            }
            ApiError::Policy(PolicyError::Unauthenticated(_)) => {
                ("invalid_request_error", Some("invalid_api_key"))
            }
            ApiError::Policy(PolicyError::RateLimited(_)) => {
                ("rate_limit_error", Some("rate_limit_exceeded"))
            }
            ApiError::Registry(RegistryError::NoRoom(_)) => {
                ("invalid_request_error", Some("insufficient_memory"))
            }
            ApiError::Registry(RegistryError::Warmup(_)) => {
                ("invalid_request_error", Some("warmup_failed"))
            }
            ApiError::Registry(RegistryError::Gate(_)) => {
                ("invalid_request_error", Some("eval_regression"))
            }
            ApiError::Registry(RegistryError::Eval(_)) => {
                ("invalid_request_error", Some("evaluation_failed"))
            }
            ApiError::Registry(RegistryError::Artifact(_)) => {
                ("invalid_request_error", Some("invalid_artifact"))
            }
            e if e.status().is_server_error() => ("server_error", None),
            _ => ("invalid_request_error", None),
        }
    }

    fn param(&self) -> Option<&'static str> {
        match self {
            ApiError::BadRequest { param, .. } => *param,
            ApiError::Invalid(e) => Some(e.param()),
            ApiError::ModelNotFound(_) => Some("model"),
            ApiError::Engine(
                EngineError::ContextOverflow { .. } | EngineError::LargerThanCache { .. },
            ) => Some("max_tokens"),
            ApiError::Engine(EngineError::EmptyPrompt | EngineError::TokenOutOfRange { .. }) => {
                Some("prompt")
            }
            ApiError::Engine(EngineError::BiasOutOfRange { .. }) => Some("logit_bias"),
            ApiError::Model(ModelError::ChatTemplate(_)) => Some("messages"),
            _ => None,
        }
    }

    /// Seconds a client should wait before trying again, for the
    /// `retry-after` header of a 429.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Engine(EngineError::QueueFull { retry_after_s, .. }) => Some(*retry_after_s),
            ApiError::Policy(PolicyError::RateLimited(r)) => {
                Some(r.limited.retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            _ => None,
        }
    }

    /// (scope, limit) of a refusal by a key's or tenant's limit, for
    /// `switchyard_rate_limited_total`.
    pub fn rate_limit_labels(&self) -> Option<(&'static str, &'static str)> {
        match self {
            ApiError::Policy(PolicyError::RateLimited(r)) => {
                Some((r.scope(), r.limited.what.label()))
            }
            _ => None,
        }
    }

    /// A refusal for the caller's credentials (401) or rights (403).
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            ApiError::Policy(PolicyError::Unauthenticated(_) | PolicyError::Forbidden(_))
        )
    }

    /// OpenAI's error object, also sent as an event when a stream fails.
    pub fn envelope(&self) -> serde_json::Value {
        let (ty, code) = self.kind();
        serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": ty,
                "param": self.param(),
                "code": code,
            }
        })
    }
}
