//! A small HTTP/1.1 client for the admin API of a running server.

use super::CliResult;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

pub struct AdminClient {
    /// host:port
    authority: String,
    /// For an https:// server: the TLS client, trusting
    /// `SWITCHYARD_CA_CERT` and presenting `SWITCHYARD_CLIENT_CERT` /
    /// `SWITCHYARD_CLIENT_KEY` when set (an admin API behind mTLS).
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    actor: String,
    /// `SWITCHYARD_API_KEY`, sent as a bearer token when set.
    api_key: Option<String>,
}

impl AdminClient {
    /// `server` is `http://host:port` or `https://host:port`.
    pub fn new(server: &str) -> Result<Self, String> {
        let expected =
            || format!("--server {server}: expected http://HOST:PORT or https://HOST:PORT");
        let (authority, tls) = match (
            server.strip_prefix("http://"),
            server.strip_prefix("https://"),
        ) {
            (Some(a), _) => (a, None),
            (_, Some(a)) => (a, Some(tls_client()?)),
            _ => return Err(expected()),
        };
        let authority = authority.trim_end_matches('/').to_owned();
        if authority.is_empty() || authority.contains('/') {
            return Err(expected());
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
            tls,
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
        let mut sender = match &self.tls {
            None => handshake(stream).await,
            Some(config) => {
                let host = self
                    .authority
                    .rsplit_once(':')
                    .map_or(&*self.authority, |h| h.0);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| format!("{host}: {e}"))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| unreachable(&e))?;
                handshake(tls).await
            }
        }
        .map_err(|e| unreachable(&e))?;
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

async fn handshake<I>(io: I) -> hyper::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// The TLS client of an https:// server: its authority from
/// `SWITCHYARD_CA_CERT`, a client certificate from `SWITCHYARD_CLIENT_CERT`
/// and `SWITCHYARD_CLIENT_KEY` when both are set.
fn tls_client() -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let ca = var("SWITCHYARD_CA_CERT").ok_or(
        "an https:// server needs SWITCHYARD_CA_CERT: the PEM file of its certificate's authority",
    )?;
    let certs = |path: &str| -> Result<Vec<CertificateDer<'static>>, String> {
        CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{path}: {e}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&ca)? {
        roots.add(c).map_err(|e| format!("{ca}: {e}"))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    let config = match (var("SWITCHYARD_CLIENT_CERT"), var("SWITCHYARD_CLIENT_KEY")) {
        (Some(cert), Some(key)) => {
            let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| format!("{key}: {e}"))?;
            builder
                .with_client_auth_cert(certs(&cert)?, key)
                .map_err(|e| format!("{cert}: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(std::sync::Arc::new(config))
}

/// Prints a value as indented JSON.
pub fn print_json(v: &Value) -> CliResult {
    let text = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}
