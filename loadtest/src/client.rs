//! One streaming completion over a kept-alive HTTP/1.1 connection, timed
//! chunk by chunk as the server's bytes arrive.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// What one request measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Time to the first streamed token.
    pub ttft: Duration,
    /// Gaps between successive streamed tokens.
    pub gaps: Vec<Duration>,
    pub e2e: Duration,
    pub output_tokens: u64,
    /// Time to the response headers.
    pub headers: Duration,
    /// The `x-switchyard-model-version` header (`model@version`).
    pub version: Option<String>,
}

/// Why a request failed, by kind (the report counts each).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    Connect,
    Status(u16),
    Stream,
    /// The stream ended without its `[DONE]`.
    Truncated,
    Timeout,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect => write!(f, "connect"),
            Failure::Status(s) => write!(f, "http_{s}"),
            Failure::Stream => write!(f, "stream"),
            Failure::Truncated => write!(f, "truncated"),
            Failure::Timeout => write!(f, "timeout"),
        }
    }
}

/// A connection to the server, reopened when it breaks.
pub struct Client {
    addr: String,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    pub fn new(addr: &str) -> Self {
        Client {
            addr: addr.to_owned(),
            host: addr.to_owned(),
            sender: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Failure> {
        let usable = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        if !usable {
            let stream = TcpStream::connect(&self.addr)
                .await
                .map_err(|_| Failure::Connect)?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| Failure::Connect)?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or(Failure::Connect)
    }

    /// POSTs `body` to `path` and reads its server-sent events to the end.
    pub async fn stream(
        &mut self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Outcome, Failure> {
        let body = Bytes::from(body.to_string());
        let start = Instant::now();
        // A kept-alive connection the server has closed in the meantime
        // fails before the request goes out: retry once on a fresh one.
        let resp = match self.send(path, body.clone()).await {
            Ok(r) => r,
            Err(_) => {
                self.sender = None;
                let retried = self.send(path, body).await;
                if retried.is_err() {
                    self.sender = None;
                }
                retried?
            }
        };
        let status = resp.status().as_u16();
        let headers = start.elapsed();
        let version = resp
            .headers()
            .get("x-switchyard-model-version")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = resp.into_body();
        if status != 200 {
            // Read the error body so the connection can be reused.
            while let Some(Ok(_)) = body.frame().await {}
            return Err(Failure::Status(status));
        }
        let mut events = SseEvents::default();
        let mut arrivals: Vec<Instant> = Vec::new();
        let mut usage_tokens = None;
        let mut done = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Failure::Stream)?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            let now = Instant::now();
            for event in events.push(data) {
                if event == "[DONE]" {
                    done = true;
                    continue;
                }
                let v: serde_json::Value =
                    serde_json::from_str(&event).map_err(|_| Failure::Stream)?;
                if v.get("error").is_some() {
                    return Err(Failure::Stream);
                }
                if let Some(n) = v
                    .pointer("/usage/completion_tokens")
                    .and_then(|n| n.as_u64())
                {
                    usage_tokens = Some(n);
                }
                if carries_token(&v) {
                    arrivals.push(now);
                }
            }
        }
        let e2e = start.elapsed();
        if !done {
            return Err(Failure::Truncated);
        }
        let first = *arrivals.first().ok_or(Failure::Stream)?;
        Ok(Outcome {
            ttft: first - start,
            gaps: arrivals.windows(2).map(|w| w[1] - w[0]).collect(),
            e2e,
            output_tokens: usage_tokens.unwrap_or(arrivals.len() as u64),
            headers,
            version,
        })
    }
}

impl Client {
    async fn send(
        &mut self,
        path: &str,
        body: Bytes,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Failure> {
        let host = self.host.clone();
        let sender = self.connection().await?;
        sender.ready().await.map_err(|_| Failure::Connect)?;
        let req = hyper::Request::post(path)
            .header("host", host)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|_| Failure::Connect)?;
        sender.send_request(req).await.map_err(|_| Failure::Connect)
    }
}

/// A chunk that streams generated output: a choice with text (or a
/// content delta), not the usage-only chunk at the end.
fn carries_token(v: &serde_json::Value) -> bool {
    let Some(choice) = v.pointer("/choices/0") else {
        return false;
    };
    choice.get("text").is_some_and(|t| t.is_string())
        || choice
            .pointer("/delta/content")
            .is_some_and(|t| t.is_string())
}

/// Splits a byte stream into the data of server-sent events.
#[derive(Default)]
struct SseEvents {
    buf: Vec<u8>,
}

impl SseEvents {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = find(&self.buf, b"\n\n") {
            let event: Vec<u8> = self.buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_come_out_whole() {
        let mut s = SseEvents::default();
        assert!(s.push(b"data: {\"a\"").is_empty());
        assert_eq!(s.push(b":1}\n\ndata: [DONE]\n\n"), ["{\"a\":1}", "[DONE]"]);
    }

    #[test]
    fn only_chunks_with_output_count_as_tokens() {
        let text = serde_json::json!({"choices": [{"text": "hi"}]});
        let delta = serde_json::json!({"choices": [{"delta": {"content": ""}}]});
        let role = serde_json::json!({"choices": [{"delta": {"role": "assistant"}}]});
        let usage = serde_json::json!({"choices": [], "usage": {"completion_tokens": 3}});
        assert!(carries_token(&text) && carries_token(&delta));
        assert!(!carries_token(&role) && !carries_token(&usage));
    }
}
