//! `switchyard serve`: bind first (so /ready can say "loading"), load the
//! model in the background, serve until Ctrl-C or SIGTERM.

use super::engine_args::EngineArgs;
use super::{resolve::ModelArgs, CliResult};
use crate::backend::cpu::{pool, ComputePool};
use crate::engine::Compute;
use crate::policy::Policy;
use crate::registry::{BootModel, LoadSettings, Loader, Registry};
use crate::server::{self, AppState};
use crate::store;
use clap::Args;
use std::sync::Arc;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default: exposing the server is a
    /// decision, not an accident.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[command(flatten)]
    model: ModelArgs,
    /// The names clients may send as `model`; the first is the one
    /// responses carry (default: the known model's name, or the file's
    /// stem).
    #[arg(long, num_args = 1..)]
    served_model_name: Vec<String>,
    /// Cap the context window below the model's own.
    #[arg(long)]
    max_model_len: Option<usize>,
    /// max_tokens for requests that name none (default: the rest of the
    /// context window).
    #[arg(long)]
    default_max_tokens: Option<usize>,
    /// Seconds /ready answers 503 before the listener closes, on
    /// SIGTERM or Ctrl-C.
    #[arg(long, default_value_t = 2.0)]
    shutdown_grace: f64,
    /// Seconds requests in flight may take to finish after that.
    #[arg(long, default_value_t = 30.0)]
    shutdown_timeout: f64,
    #[command(flatten)]
    engine: EngineArgs,
    /// A Jinja chat template to use instead of the model's own: a file, or
    /// the template itself.
    #[arg(long)]
    chat_template: Option<String>,
    /// The state database: versions, deployments, audit trail (default:
    /// $SWITCHYARD_HOME/switchyard.db).
    #[arg(long)]
    state_db: Option<std::path::PathBuf>,
    /// Let the admin API make a share of a version's requests fail
    /// (POST /admin/v1/models/M/versions/V/faults), to test rollouts.
    /// Never in production.
    #[arg(long)]
    allow_fault_injection: bool,
    /// Compute threads (default: physical cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Serve without API keys on an address other than loopback. Without
    /// this, such a server refuses to start until a key exists
    /// (`switchyard keys create`).
    #[arg(long)]
    allow_unauthenticated: bool,
    /// Serve HTTPS with this certificate chain (PEM); SIGHUP reloads it
    /// and the key without dropping connections.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Authorities (PEM) whose client certificates are accepted; the admin
    /// API then requires one (mTLS). The OpenAI API does not.
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// Also serve GET /metrics, without a key, on this address (for a
    /// scrape network); the main address keeps it for loopback peers and
    /// operators' keys.
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Write generation request and response bodies (prompts,
    /// completions) to the log. Off by default: they are users' data.
    #[arg(long)]
    log_requests: bool,
    /// Seconds a client may take to send a request's head, and an idle
    /// HTTP/1 connection may stay open (slowloris defence).
    #[arg(long, default_value_t = 30.0)]
    header_timeout: f64,
    /// Seconds a connection (HTTP/1 or HTTP/2) may stay open with no
    /// request in flight.
    #[arg(long, default_value_t = 120.0)]
    idle_timeout: f64,
}

pub fn run(a: ServeArgs) -> CliResult {
    crate::registry::map_large_buffers();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    runtime.block_on(serve(a))
}

async fn serve(a: ServeArgs) -> CliResult {
    let addr = format!("{}:{}", a.host, a.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    crate::telemetry::metrics::install()?;
    crate::telemetry::gpu::start(std::time::Duration::from_secs(5));
    let db_path = a
        .state_db
        .clone()
        .unwrap_or_else(|| store::home().join("switchyard.db"));
    let db = Arc::new(store::Store::open(&db_path).map_err(|e| e.to_string())?);
    let policy = Arc::new(
        Policy::new(
            db.clone(),
            local.ip().is_loopback() || a.allow_unauthenticated,
        )
        .map_err(|e| e.to_string())?,
    );
    if !local.ip().is_loopback() && !a.allow_unauthenticated && !policy.has_live_keys() {
        return Err(format!(
            "refusing to serve {local} without API keys: create one with `switchyard keys create \
             --name NAME --role admin` (state database {}), or pass --allow-unauthenticated",
            db_path.display()
        ));
    }
    tokio::spawn(policy_upkeep(policy.clone()));
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => {
            let tls = Arc::new(server::Tls::new(server::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: a.tls_client_ca.clone(),
            })?);
            reload_on_sighup(tls.clone())?;
            Some(tls)
        }
        _ => None,
    };
    // One compute pool and one KV budget for every engine this process
    // will run.
    let pool = Arc::new(ComputePool::new(
        a.threads.unwrap_or_else(pool::physical_cores),
    ));
    let device = a.engine.open_device()?;
    let settings = LoadSettings {
        engine: a.engine.config(&device)?,
        max_model_len: a.max_model_len,
        default_max_tokens: a.default_max_tokens,
        chat_template: a.chat_template.clone(),
    };
    let budget = a.engine.budget(&device)?;
    let compute = Compute::new(device, pool, a.engine.exact_activations);
    let loader = Loader::new(settings, compute, budget);
    let registry = Arc::new(Registry::new(db, loader, a.allow_fault_injection));
    let state = AppState::new(
        registry.clone(),
        policy.clone(),
        tls.as_ref().is_some_and(|t| t.verifies_clients()),
    )?;
    state.set_log_requests(a.log_requests);
    if let Some(addr) = &a.metrics_addr {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on --metrics-addr {addr}: {e}"))?;
        tracing::info!(addr = %metrics.local_addr().map_err(|e| e.to_string())?, "serving /metrics");
        tokio::spawn(server::serve_metrics(metrics, state.clone()));
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%local, scheme, state = %db_path.display(), "listening; loading the models");

    let loading = {
        let state = state.clone();
        let model_args = a.model.clone();
        let names = a.served_model_name.clone();
        tokio::task::spawn_blocking(move || {
            let started = boot_model(&model_args, names)
                .and_then(|b| registry.start_up(Some(b)).map_err(|e| e.to_string()));
            state.started();
            let started = started?;
            if !started.restored.is_empty() {
                tracing::info!(restored = ?started.restored, "stored deployments restored");
            }
            Ok(())
        })
    };
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    };
    let seconds = |s: f64| std::time::Duration::from_secs_f64(s.max(0.0));
    let shutdown_policy = server::ShutdownPolicy {
        grace: seconds(a.shutdown_grace),
        timeout: seconds(a.shutdown_timeout),
    };
    let listen = server::Listen {
        tls,
        header_timeout: seconds(a.header_timeout).max(std::time::Duration::from_millis(100)),
        idle_timeout: seconds(a.idle_timeout).max(std::time::Duration::from_millis(100)),
    };
    let server = server::serve(listener, state.clone(), listen, shutdown, shutdown_policy);
    let served = serve_until_done(loading, server).await;
    // Usage counted since the last flush outlives the process.
    let flushed = tokio::task::spawn_blocking(move || policy.flush_usage()).await;
    if let Ok(Err(e)) = flushed {
        tracing::warn!(error = %e, "usage of the last seconds could not be written");
    }
    served
}

/// SIGHUP: the certificate and key are read again; a file that does not
/// load leaves the old pair in service.
fn reload_on_sighup(tls: Arc<server::Tls>) -> CliResult {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("SIGHUP: {e}"))?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: the TLS certificate did not load; the old one stays")
                    }
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = tls;
    Ok(())
}

/// Keys and tenant limits re-read every 2 s, so that `switchyard keys`
/// changes hold within seconds; usage written every 6 s.
async fn policy_upkeep(policy: Arc<Policy>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 0u64.. {
        tick.tick().await;
        let p = policy.clone();
        let done = tokio::task::spawn_blocking(move || {
            p.refresh()?;
            if n % 3 == 2 {
                p.flush_usage()?;
            }
            Ok::<_, crate::policy::PolicyError>(())
        })
        .await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "reloading keys or writing usage failed; retrying");
        }
    }
}

async fn serve_until_done(
    loading: tokio::task::JoinHandle<CliResult>,
    server: impl std::future::Future<Output = std::io::Result<()>>,
) -> CliResult {
    tokio::pin!(server);
    tokio::select! {
        loaded = loading => {
            match loaded {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(format!("loading the model failed: {e}")),
            }
            server.await.map_err(|e| e.to_string())
        }
        served = &mut server => served.map_err(|e| e.to_string()),
    }
}

/// The model the flags name, served as version `boot` unless a stored
/// deployment of its name comes back (`Registry::start_up`).
fn boot_model(model_args: &ModelArgs, mut names: Vec<String>) -> Result<BootModel, String> {
    let source = model_args.source()?;
    if names.is_empty() {
        names.push(
            model_args
                .names_a_known_model()
                .unwrap_or_else(|| source.default_name()),
        );
    }
    Ok(BootModel {
        digest: known_digest(model_args, &source),
        dtype: model_args.dtype()?,
        source,
        names,
    })
}

/// The artifact's SHA-256 where the store knows it (a catalog model, by
/// name or by its path in the store), else `unknown`: hashing any file at
/// every start would cost seconds per gigabyte.
fn known_digest(model_args: &ModelArgs, source: &crate::model::ModelSource) -> String {
    use crate::store;
    let by_name = model_args
        .names_a_known_model()
        .and_then(|name| store::lookup(&name).ok());
    let by_path = match source {
        crate::model::ModelSource::Gguf(path) => store::CATALOG
            .iter()
            .find(|m| store::artifact_path(m) == *path),
        _ => None,
    };
    by_name
        .or(by_path)
        .map_or_else(|| "unknown".into(), |m| format!("sha256:{}", m.sha256))
}
