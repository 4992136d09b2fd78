//! Reading request bodies within a size and time limit, and parsing them.

use super::error::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;

/// Largest request body accepted: far above any real prompt, far below what
/// could hurt the process.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

pub async fn read_json<T: DeserializeOwned>(body: Incoming) -> Result<T, ApiError> {
    parse_json(&read_body(body).await?)
}

/// A body must arrive within this: a client that trickles one byte at a
/// time does not hold a handler forever.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The whole body, within the size and time limits.
pub async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    let read = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect());
    Ok(read
        .await
        .map_err(|_| ApiError::RequestTimeout(BODY_TIMEOUT.as_secs()))?
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ApiError::PayloadTooLarge(MAX_BODY_BYTES)
            } else {
                ApiError::bad(format!("could not read the request body: {e}"), "body")
            }
        })?
        .to_bytes())
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest {
        message: format!("the request body is not valid JSON for this endpoint: {e}"),
        param: None,
    })
}

/// An empty body means the defaults; anything else must parse.
pub async fn read_json_or_default<T: DeserializeOwned + Default>(
    body: Incoming,
) -> Result<T, ApiError> {
    let bytes = read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(&bytes)
}
