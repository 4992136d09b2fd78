//! Every metric switchyard exports: its name, unit and help text live here
//! and nowhere else; dashboards and alert rules use only these names.
//! Values go to the `metrics` facade; the Prometheus recorder installed at
//! start renders them for GET /metrics.

use crate::engine::EngineSnapshot;
use metrics::{describe_counter, describe_gauge, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const REQUESTS_TOTAL: &str = "switchyard_requests_total";
pub const BUILD_INFO: &str = "switchyard_build_info";
pub const MODEL_INFO: &str = "switchyard_model_info";
pub const REQUESTS_RUNNING: &str = "switchyard_requests_running";
pub const REQUESTS_WAITING: &str = "switchyard_requests_waiting";
pub const KV_CACHE_USAGE: &str = "switchyard_kv_cache_usage_ratio";
pub const PREFIX_CACHE_QUERIES: &str = "switchyard_prefix_cache_queries_total";
pub const PREFIX_CACHE_HITS: &str = "switchyard_prefix_cache_hits_total";
pub const PREEMPTIONS: &str = "switchyard_preemptions_total";
pub const ENGINE_STEPS: &str = "switchyard_engine_steps_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and describes every
/// metric. Later calls are no-ops.
pub fn install() -> Result<(), String> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("installing the metrics recorder: {e}"))?;
    let _ = HANDLE.set(handle);
    describe();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => commit())
        .set(1.0);
    Ok(())
}

fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        "HTTP requests answered, by model, version, endpoint and status code"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the labels name the build");
    describe_gauge!(
        MODEL_INFO,
        "Always 1 per served model version; the labels describe it"
    );
    describe_gauge!(REQUESTS_RUNNING, "Sequences in the engine's running batch");
    describe_gauge!(
        REQUESTS_WAITING,
        "Requests queued for a seat in the running batch (preempted ones included)"
    );
    describe_gauge!(
        KV_CACHE_USAGE,
        Unit::Percent,
        "Share of the KV cache blocks held by sequences, 0 to 1"
    );
    describe_counter!(
        PREFIX_CACHE_QUERIES,
        "Prompt tokens looked up in the prefix cache"
    );
    describe_counter!(
        PREFIX_CACHE_HITS,
        "Prompt tokens whose keys and values came from the prefix cache"
    );
    describe_counter!(
        PREEMPTIONS,
        "Sequences that gave back their KV blocks to be recomputed later"
    );
    describe_counter!(ENGINE_STEPS, "Forward passes the engine has run");
}

/// Copies an engine's latest state into its gauges and counters (read at
/// scrape time: the engine thread never touches the recorder).
pub fn engine_state(model: &str, version: &str, s: &EngineSnapshot) {
    let labels = [("model", model.to_owned()), ("version", version.to_owned())];
    metrics::gauge!(REQUESTS_RUNNING, &labels).set(s.running as f64);
    metrics::gauge!(REQUESTS_WAITING, &labels).set(s.waiting as f64);
    metrics::gauge!(KV_CACHE_USAGE, &labels).set(s.kv_usage());
    metrics::counter!(PREFIX_CACHE_QUERIES, &labels).absolute(s.prefix_queried_tokens);
    metrics::counter!(PREFIX_CACHE_HITS, &labels).absolute(s.prefix_hit_tokens);
    metrics::counter!(PREEMPTIONS, &labels).absolute(s.preemptions);
    metrics::counter!(ENGINE_STEPS, &labels).absolute(s.steps);
}

/// The git commit the binary was built from, when the build knew it.
fn commit() -> &'static str {
    option_env!("SWITCHYARD_COMMIT").unwrap_or("unknown")
}

/// Marks a model version as served.
pub fn model_served(model: &str, version: &str, quantization: &str) {
    metrics::gauge!(
        MODEL_INFO,
        "model" => model.to_owned(),
        "version" => version.to_owned(),
        "quantization" => quantization.to_owned(),
        "role" => "stable"
    )
    .set(1.0);
}

/// One answered request. `endpoint` is a known route or `other`, so the
/// label stays bounded whatever paths clients send.
pub fn request_answered(model: &str, version: &str, endpoint: &'static str, status: u16) {
    metrics::counter!(
        REQUESTS_TOTAL,
        "model" => model.to_owned(),
        "version" => version.to_owned(),
        "endpoint" => endpoint,
        "status" => status.to_string()
    )
    .increment(1);
}

/// The Prometheus text exposition of every metric; empty before `install`.
pub fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}
