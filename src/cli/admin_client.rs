//! A small HTTP/1.1 client for the admin API of a running server.

use super::CliResult;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

pub struct AdminClient {
    /// host:port
    authority: String,
    actor: String,
    /// `SWITCHYARD_API_KEY`, sent as a bearer token when set.
    api_key: Option<String>,
}

impl AdminClient {
    /// `server` is `http://host:port` (https arrives with TLS).
    pub fn new(server: &str) -> Result<Self, String> {
        let authority = server
            .strip_prefix("http://")
            .ok_or_else(|| format!("--server {server}: expected http://HOST:PORT"))?
            .trim_end_matches('/')
            .to_owned();
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("--server {server}: expected http://HOST:PORT"));
        }
        // The audit trail names who acted: the login of the user running
        // the command.
        let actor = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "cli".into());
        let api_key = std::env::var("SWITCHYARD_API_KEY")
            .ok()
            .filter(|k| !k.is_empty());
        Ok(AdminClient {
            authority,
            actor,
            api_key,
        })
    }

    pub fn get(&self, path: &str) -> Result<Value, String> {
        self.call(hyper::Method::GET, path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.call(hyper::Method::POST, path, Some(body))
    }

    /// One request; a non-2xx answer becomes its error message.
    fn call(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let uri = format!("/admin/v1{path}");
        let (status, bytes) = runtime.block_on(self.send(method, &uri, body))?;
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if status.is_success() {
            return Ok(value);
        }
        let message = value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map_or_else(|| value.to_string(), str::to_owned);
        Err(format!(
            "{} {}: {message}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ))
    }

    async fn send(
        &self,
        method: hyper::Method,
        uri: &str,
        body: Option<&Value>,
    ) -> Result<(hyper::StatusCode, Bytes), String> {
        let unreachable =
            |e: &dyn std::fmt::Display| format!("cannot reach {}: {e}", self.authority);
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        let payload = body.map(Value::to_string).unwrap_or_default();
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", &self.authority)
            .header("content-type", "application/json")
            .header("x-switchyard-actor", &self.actor);
        if let Some(key) = &self.api_key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let req = req
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        Ok((status, bytes))
    }
}

/// Prints a value as indented JSON.
pub fn print_json(v: &Value) -> CliResult {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}
