//! Writing responses: JSON documents, plain text, event streams, and
//! errors in OpenAI's envelope with the headers their status calls for.

use super::error::ApiError;
use super::sse::SseBody;
use crate::policy::{PolicyError, RateInfo};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use std::convert::Infallible;

/// Every response body: a whole JSON document or an event stream.
pub type HttpBody = BoxBody<Bytes, Infallible>;

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
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn sse_response(body: SseBody) -> Response<HttpBody> {
    let mut resp = Response::new(body.boxed());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The error as a response: its status, OpenAI's envelope, and the
/// headers that go with it (`retry-after` and the rate-limit standing on
/// a 429, `www-authenticate` on a 401).
pub fn error_response(e: &ApiError) -> Response<HttpBody> {
    let status = e.status();
    if status.is_server_error() {
        tracing::error!(error = %e, "request failed");
    }
    let mut resp = json_response(status, &e.envelope());
    match e {
        ApiError::MethodNotAllowed { allowed, .. } => {
            if let Ok(v) = HeaderValue::from_str(allowed) {
                resp.headers_mut().insert(header::ALLOW, v);
            }
        }
        ApiError::Policy(PolicyError::RateLimited(r)) => rate_headers(&mut resp, &r.info),
        ApiError::Policy(PolicyError::Unauthenticated(_)) => {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    if let Some(s) = e.retry_after() {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

/// OpenAI's `x-ratelimit-*` headers.
pub fn rate_headers<B>(resp: &mut Response<B>, info: &RateInfo) {
    let h = resp.headers_mut();
    let reset = format!("{:.3}s", info.reset.as_secs_f64());
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    if let Some((limit, remaining)) = info.requests {
        put("x-ratelimit-limit-requests", limit.to_string());
        put("x-ratelimit-remaining-requests", remaining.to_string());
        put("x-ratelimit-reset-requests", reset.clone());
    }
    if let Some((limit, remaining)) = info.tokens {
        put("x-ratelimit-limit-tokens", limit.to_string());
        put("x-ratelimit-remaining-tokens", remaining.to_string());
        put("x-ratelimit-reset-tokens", reset);
    }
}
