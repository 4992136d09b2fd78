//! `switchyard serve`: bind first (so /ready can say "loading"), load the
//! model in the background, serve until Ctrl-C or SIGTERM.

use super::engine_args::EngineArgs;
use super::{resolve::ModelArgs, CliResult};
use crate::backend::cpu::{pool, ComputePool, CpuBackend};
use crate::engine::{self, GenerateRequest, SamplingParams};
use crate::model::chat_template::ChatTemplate;
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
    crate::telemetry::metrics::install()?;
    crate::telemetry::gpu::start(std::time::Duration::from_secs(5));
    let state = AppState::new();
    tracing::info!(%local, "listening; loading the model");

    let loading = {
        let state = state.clone();
        let model_args = a.model.clone();
        let names = a.served_model_name.clone();
        // One compute pool and one KV budget for every engine this process
        // will run.
        let pool = Arc::new(ComputePool::new(
            a.threads.unwrap_or_else(pool::physical_cores),
        ));
        let limits = Limits {
            max_model_len: a.max_model_len,
            default_max_tokens: a.default_max_tokens,
            engine: a.engine.config()?,
            exact_activations: a.engine.exact_activations,
            chat_template: a.chat_template.clone(),
        };
        let budget = a.engine.budget()?;
        tokio::task::spawn_blocking(move || {
            load_and_start(&state, &model_args, names, limits, &budget, pool)
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
    let policy = server::ShutdownPolicy {
        grace: seconds(a.shutdown_grace),
        timeout: seconds(a.shutdown_timeout),
    };
    let server = server::serve(listener, state.clone(), shutdown, policy);
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

struct Limits {
    max_model_len: Option<usize>,
    default_max_tokens: Option<usize>,
    engine: engine::EngineConfig,
    exact_activations: bool,
    chat_template: Option<String>,
}

fn load_and_start(
    state: &AppState,
    model_args: &ModelArgs,
    mut names: Vec<String>,
    limits: Limits,
    budget: &Arc<engine::KvBudget>,
    pool: Arc<ComputePool>,
) -> CliResult {
    let source = model_args.source()?;
    let dtype = model_args.dtype()?;
    let started = std::time::Instant::now();
    let backend = CpuBackend::new(pool).with_exact_activations(limits.exact_activations);
    let backend_name = crate::backend::Backend::describe(&backend);
    let mut loaded =
        crate::model::loaded::load(&source, dtype, &backend).map_err(|e| e.to_string())?;
    if let Some(cap) = limits.max_model_len {
        let own = loaded.model.config.context_length;
        if cap == 0 || cap > own {
            return Err(format!(
                "--max-model-len {cap} must be between 1 and the model's context length {own}"
            ));
        }
        loaded.model.config.context_length = cap;
    }
    if let Some(arg) = &limits.chat_template {
        let source = match std::fs::read_to_string(arg) {
            Ok(text) => text,
            Err(_) if arg.contains("{{") || arg.contains("{%") => arg.clone(),
            Err(e) => return Err(format!("--chat-template {arg}: {e}")),
        };
        let template = ChatTemplate::for_tokenizer(&source, &loaded.tokenizer)
            .map_err(|e| format!("--chat-template: {e}"))?;
        loaded.template = Some(template);
    }
    if names.is_empty() {
        names.push(
            model_args
                .names_a_known_model()
                .unwrap_or_else(|| loaded.name.clone()),
        );
    }
    let fingerprint = format!(
        "fp_switchyard-{}-{}",
        env!("CARGO_PKG_VERSION"),
        crate::backend::cpu::isa::isa().name()
    );
    let config = engine::EngineConfig {
        model_name: names[0].clone(),
        version: "boot".into(),
        ..limits.engine.clone()
    };
    let handle = engine::spawn(
        backend,
        loaded.model,
        loaded.tokenizer.clone(),
        &config,
        budget,
    )
    .map_err(|e| e.to_string())?;
    warm_up(&handle)?;
    tracing::info!(
        model = %names[0],
        source = ?source,
        weights = %loaded.weights,
        backend = %backend_name,
        kv_tokens = handle.info().kv_tokens,
        max_num_seqs = handle.info().max_num_seqs,
        ms = started.elapsed().as_millis() as u64,
        "model ready"
    );
    crate::telemetry::metrics::model_served(
        &names[0],
        "boot",
        &loaded.weights.to_string(),
        &known_digest(model_args, &source),
    );
    state.set_model(ServedModel {
        names,
        fingerprint,
        default_max_tokens: limits.default_max_tokens.filter(|&d| d > 0),
        engine: handle,
        tokenizer: loaded.tokenizer,
        template: loaded.template,
        defaults: loaded.defaults,
        version: "boot".into(),
        created: server::openai::now_unix(),
    });
    Ok(())
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
            priority: 0,
        })
        .map_err(|e| format!("warm-up: {e}"))?;
    while let Some(event) = stream.blocking_next() {
        if let crate::engine::Event::Finished { .. } = event.map_err(|e| format!("warm-up: {e}"))? {
            return Ok(());
        }
    }
    Err("warm-up: the engine stopped".into())
}
