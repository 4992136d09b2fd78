//! The accept loop: TCP (and TLS) connections taken up to a cap, served
//! as HTTP/1.1 or HTTP/2 with head, idle and handshake timeouts, and the
//! graceful stop on a signal.

use super::context::Conn;
use super::state::AppState;
use super::tls::Tls;
use super::{idle, router};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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

/// A TLS handshake that takes longer than this is dropped: a peer that
/// opens connections and sends nothing must not hold them.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How connections are taken: TLS or not, and how long a peer may take.
pub struct Listen {
    pub tls: Option<Arc<Tls>>,
    /// A request head (or an idle HTTP/1 connection's next one) must
    /// arrive within this; HTTP/2 peers are pinged this often and dropped
    /// when a ping goes unanswered as long.
    pub header_timeout: Duration,
    /// A connection with no request in flight this long is closed.
    pub idle_timeout: Duration,
}

/// Open connections at most.
const MAX_CONNECTIONS: usize = 8192;

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge, or ALPN under TLS) on
/// `listener` until `shutdown` resolves; then stops as `policy` says.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    listen: Listen,
    shutdown: impl Future<Output = ()>,
    policy: ShutdownPolicy,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Request heads must arrive within the timeout (slowloris), which
    // also closes HTTP/1 connections left idle that long; HTTP/2 peers
    // that stop answering pings are dropped.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(listen.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(listen.header_timeout))
        .keep_alive_timeout(listen.header_timeout)
        .max_concurrent_streams(256);
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let (tls, idle_timeout) = (listen.tls, listen.idle_timeout);
    let accept = |accepted: std::io::Result<(tokio::net::TcpStream, SocketAddr)>| {
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                return;
            }
        };
        // Past the cap a connection is closed at once: file descriptors
        // and memory stay bounded whatever a peer opens.
        let Ok(slot) = open.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = MAX_CONNECTIONS, "connection refused: too many open");
            return;
        };
        let _ = stream.set_nodelay(true);
        let (state, builder, watcher, tls) = (
            state.clone(),
            builder.clone(),
            graceful.watcher(),
            tls.clone(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            let Some(tls) = tls else {
                let conn = Conn {
                    peer,
                    client_cert: false,
                };
                return serve_connection(&builder, watcher, state, conn, idle_timeout, stream)
                    .await;
            };
            let handshake =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await;
            match handshake {
                Ok(Ok(stream)) => {
                    let client_cert = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty());
                    let conn = Conn { peer, client_cert };
                    serve_connection(&builder, watcher, state, conn, idle_timeout, stream).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
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

async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    state: Arc<AppState>,
    conn: Conn,
    idle_timeout: Duration,
    io: I,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = idle::Activity::new();
    let requests = activity.clone();
    let svc = service_fn(move |req| {
        let (state, in_flight) = (state.clone(), requests.begin());
        async move {
            let resp = router::route(state, conn, req).await?;
            Ok::<_, std::convert::Infallible>(idle::track(resp, in_flight))
        }
    });
    let served = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    let served = watcher.watch(served.into_owned());
    tokio::pin!(served);
    // Checked a few times per timeout: closing may come up to a quarter
    // late, never early.
    let mut tick = tokio::time::interval(idle_timeout / 4);
    loop {
        tokio::select! {
            done = &mut served => {
                if let Err(e) = done {
                    tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tick.tick() => {
                if activity.idle_for() >= idle_timeout {
                    tracing::debug!(peer = %conn.peer, "closing an idle connection");
                    return;
                }
            }
        }
    }
}
