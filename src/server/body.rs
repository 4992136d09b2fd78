//! Reading request bodies within a size limit and writing JSON responses.

use super::error::ApiError;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use serde::de::DeserializeOwned;
use std::convert::Infallible;

/// Every response body: a whole JSON document or an event stream.
pub type HttpBody = BoxBody<Bytes, Infallible>;

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

pub fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<HttpBody> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    text_response(status, "application/json", body)
}

pub fn text_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<HttpBody> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

pub fn sse_response(body: super::sse::SseBody) -> Response<HttpBody> {
    let mut resp = Response::new(body.boxed());
    let h = resp.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    resp
}
