//! `--metrics-addr`: Prometheus scrapes on an address of their own.

use super::error::ApiError;
use super::reply::error_response;
use super::router;
use super::state::AppState;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use tokio::net::TcpListener;

/// `--metrics-addr`: a listener of its own that answers `GET /metrics`
/// to anyone who reaches it (a scrape network) and nothing else.
pub async fn serve_metrics(listener: TcpListener, state: Arc<AppState>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (state, builder) = (state.clone(), builder.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move {
                    let found =
                        req.method() == hyper::Method::GET && req.uri().path() == "/metrics";
                    Ok::<_, std::convert::Infallible>(if found {
                        router::metrics_response(&state)
                    } else {
                        let only = "this address serves only GET /metrics";
                        error_response(&ApiError::NotFound(only.into()))
                    })
                }
            });
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(%peer, error = %e, "metrics connection ended with an error");
            }
        });
    }
}
