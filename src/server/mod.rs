//! HTTP: the accept loop, routing, the OpenAI handlers and the error
//! envelope. The only room that knows about HTTP.

mod admin;
mod auth;
mod body;
pub mod error;
pub mod openai;
mod router;
mod sse;
pub mod state;

pub use state::{AppState, ServedModel};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How the server stops on SIGTERM/SIGINT.
#[derive(Clone, Copy, Debug)]
pub struct ShutdownPolicy {
    /// After the signal, /ready answers 503 while the listener stays open
    /// this long, so that load balancers see it and move traffic away.
    pub grace: Duration,
    /// Then requests in flight may finish for this long.
    pub timeout: Duration,
}

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge) on `listener` until
/// `shutdown` resolves; then stops as `policy` says.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
    policy: ShutdownPolicy,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let accept = |accepted: std::io::Result<(tokio::net::TcpStream, SocketAddr)>| {
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let svc = service_fn(move |req| router::route(state.clone(), peer, req));
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => accept(accepted),
            _ = &mut shutdown => break,
        }
    }
    state.begin_shutdown();
    tracing::info!(
        grace_ms = policy.grace.as_millis() as u64,
        "shutting down: /ready now answers 503"
    );
    let grace = tokio::time::sleep(policy.grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            accepted = listener.accept() => accept(accepted),
            _ = &mut grace => break,
        }
    }
    drop(listener);
    tracing::info!("listener closed; waiting for requests in flight");
    if tokio::time::timeout(policy.timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_s = policy.timeout.as_secs(),
            "requests still in flight at the shutdown timeout are cut off"
        );
    }
    Ok(())
}
