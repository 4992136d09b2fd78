//! `switchyard serve`: bind first (so /ready can say "loading"), load the
//! model in the background, serve until Ctrl-C or SIGTERM.

use super::{resolve, CliResult};
use crate::backend::cpu::{pool, ComputePool, CpuBackend};
use crate::engine::{self, GenerateRequest, SamplingParams};
use crate::server::{self, AppState, ServedModel};
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
    /// A GGUF file or a known model name (default: smollm2-135m-instruct,
    /// pulled when missing).
    #[arg(long)]
    model: Option<String>,
    /// The name clients send as `model` (default: the model's file stem, or
    /// the known model's name).
    #[arg(long)]
    served_model_name: Option<String>,
    /// Compute threads (default: physical cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(a: ServeArgs) -> CliResult {
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
    let served_name = a
        .served_model_name
        .clone()
        .or_else(|| {
            a.model
                .clone()
                .filter(|m| !std::path::Path::new(m).exists())
        })
        .unwrap_or_else(|| crate::store::DEFAULT_MODEL.to_owned());
    let state = AppState::new(served_name.clone());
    tracing::info!(%local, "listening; loading the model");

    let loading = {
        let state = state.clone();
        let model_arg = a.model.clone();
        let explicit_name = a.served_model_name.clone();
        let threads = a.threads.unwrap_or_else(pool::physical_cores);
        tokio::task::spawn_blocking(move || {
            load_and_start(&state, model_arg.as_deref(), explicit_name, threads)
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
    let server = server::serve(listener, state.clone(), shutdown);
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

fn load_and_start(
    state: &AppState,
    model_arg: Option<&str>,
    explicit_name: Option<String>,
    threads: usize,
) -> CliResult {
    let path = resolve::model_path(model_arg)?;
    let started = std::time::Instant::now();
    let backend = CpuBackend::new(Arc::new(ComputePool::new(threads)));
    let backend_name = crate::backend::Backend::describe(&backend);
    let loaded = crate::model::loaded::load(&path, &backend).map_err(|e| e.to_string())?;
    let name = explicit_name.unwrap_or_else(|| {
        if model_arg.is_some_and(|m| std::path::Path::new(m).exists()) {
            loaded.name.clone()
        } else {
            state.served_name.clone()
        }
    });
    let handle = engine::spawn(backend, loaded.llama, loaded.tokenizer.clone());
    warm_up(&handle)?;
    tracing::info!(
        model = %name,
        path = %path.display(),
        backend = %backend_name,
        ms = started.elapsed().as_millis() as u64,
        "model ready"
    );
    state.set_model(ServedModel {
        name,
        engine: handle,
        tokenizer: loaded.tokenizer,
        template: loaded.template,
        created: server::openai::now_unix(),
    });
    Ok(())
}

/// One short generation before declaring readiness: it faults the weights
/// in and proves the engine runs.
fn warm_up(handle: &engine::EngineHandle) -> CliResult {
    let mut stream = handle
        .submit(GenerateRequest {
            prompt: vec![0],
            params: SamplingParams {
                temperature: 0.0,
                max_tokens: 2,
                ignore_eos: true,
                ..SamplingParams::default()
            },
        })
        .map_err(|e| format!("warm-up: {e}"))?;
    while let Some(event) = stream.blocking_next() {
        if let crate::engine::Event::Finished { .. } = event.map_err(|e| format!("warm-up: {e}"))? {
            return Ok(());
        }
    }
    Err("warm-up: the engine stopped".into())
}
