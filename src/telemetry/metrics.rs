//! Every metric switchyard exports: its name, unit and help text live here
//! and nowhere else; dashboards and alert rules use only these names.
//! Values go to the `metrics` facade; the Prometheus recorder installed at
//! start renders them for GET /metrics.

use super::{EngineSnapshot, LatencySink};
use metrics::{describe_counter, describe_gauge, describe_histogram, Counter, Histogram, Unit};
use metrics_exporter_prometheus::Matcher;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

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
pub const ENGINE_BUSY: &str = "switchyard_engine_busy_ratio";
pub const TIME_TO_FIRST_TOKEN: &str = "switchyard_time_to_first_token_seconds";
pub const INTER_TOKEN_LATENCY: &str = "switchyard_inter_token_latency_seconds";
pub const REQUEST_DURATION: &str = "switchyard_request_duration_seconds";
pub const QUEUE_DURATION: &str = "switchyard_queue_duration_seconds";
pub const PROMPT_TOKENS: &str = "switchyard_prompt_tokens";
pub const GENERATION_TOKENS: &str = "switchyard_generation_tokens";
pub const BATCH_SIZE: &str = "switchyard_batch_size";
pub const ENGINE_STEP_DURATION: &str = "switchyard_engine_step_duration_seconds";
// GPU metrics, per device (label `gpu`, the NVML index), from the poller
// in `gpu.rs`.
pub const GPU_UTILIZATION: &str = "switchyard_gpu_utilization_ratio";
pub const GPU_MEMORY_USED: &str = "switchyard_gpu_memory_used_bytes";
pub const GPU_MEMORY_TOTAL: &str = "switchyard_gpu_memory_total_bytes";
pub const GPU_POWER: &str = "switchyard_gpu_power_watts";
pub const GPU_TEMPERATURE: &str = "switchyard_gpu_temperature_celsius";
pub const GPU_SM_CLOCK: &str = "switchyard_gpu_sm_clock_hertz";
pub const ROLLOUT_TRAFFIC_RATIO: &str = "switchyard_rollout_traffic_ratio";
pub const ROLLOUT_STATE: &str = "switchyard_rollout_state";
pub const PROMPT_TOKENS_TOTAL: &str = "switchyard_prompt_tokens_total";
pub const RATE_LIMITED: &str = "switchyard_rate_limited_total";
pub const AUTH_FAILURES: &str = "switchyard_auth_failures_total";
pub const GENERATION_TOKENS_TOTAL: &str = "switchyard_generation_tokens_total";

/// Latency buckets from 0.5 ms to 2 minutes, about three per decade: they
/// resolve a GPU's sub-millisecond token gaps and a loaded CPU's seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 60.0,
    120.0,
];
/// Token counts, powers of two up to 128k.
const TOKEN_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0, 32768.0, 65536.0, 131072.0,
];
/// Sequences per step, powers of two up to 1024.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and describes every
/// metric. Later calls are no-ops.
pub fn install() -> Result<(), String> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in [
        (TIME_TO_FIRST_TOKEN, LATENCY_BUCKETS),
        (INTER_TOKEN_LATENCY, LATENCY_BUCKETS),
        (REQUEST_DURATION, LATENCY_BUCKETS),
        (QUEUE_DURATION, LATENCY_BUCKETS),
        (ENGINE_STEP_DURATION, LATENCY_BUCKETS),
        (PROMPT_TOKENS, TOKEN_BUCKETS),
        (GENERATION_TOKENS, TOKEN_BUCKETS),
        (BATCH_SIZE, BATCH_BUCKETS),
    ] {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.into()), buckets)
            .map_err(|e| format!("metric buckets of {name}: {e}"))?;
    }
    let handle = builder
        .install_recorder()
        .map_err(|e| format!("installing the metrics recorder: {e}"))?;
    let _ = HANDLE.set(handle);
    describe();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => commit())
        .set(1.0);
    for status in AUTH_FAILURE_STATUSES {
        metrics::counter!(AUTH_FAILURES, "status" => status.to_string()).increment(0);
    }
    Ok(())
}

fn describe() {
    describe_counter!(
        REQUESTS_TOTAL,
        "HTTP requests answered, by model, version, endpoint and status code"
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests refused (429) by an API key's or its tenant's limit, by model, version, scope (key or tenant) and limit (requests, tokens or concurrent); counted in switchyard_requests_total too"
    );
    describe_counter!(
        AUTH_FAILURES,
        "Requests refused for their credentials, by status: 401 (no key, or an unknown, revoked or expired one) or 403 (a role or model the key lacks)"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the labels name the build");
    describe_gauge!(
        ROLLOUT_TRAFFIC_RATIO,
        "Share of the model's requests routed to this version (0 to 1)"
    );
    describe_gauge!(
        ROLLOUT_STATE,
        "1 for the version's rollout state (stable, progressing, inconclusive, promoted, rolled_back), 0 for the others"
    );
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
    describe_gauge!(
        ENGINE_BUSY,
        Unit::Percent,
        "Share of wall time the engine spent running steps since the previous scrape, 0 to 1"
    );
    describe_histogram!(
        TIME_TO_FIRST_TOKEN,
        Unit::Seconds,
        "From a request's arrival at the engine to its first generated token"
    );
    describe_histogram!(
        INTER_TOKEN_LATENCY,
        Unit::Seconds,
        "Between successive generated tokens of one request"
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "From a request's arrival at the engine to its last token, for requests that finished"
    );
    describe_histogram!(
        QUEUE_DURATION,
        Unit::Seconds,
        "From a request's arrival at the engine to its first step in the batch"
    );
    describe_histogram!(
        PROMPT_TOKENS,
        Unit::Count,
        "Prompt tokens of each finished request"
    );
    describe_histogram!(
        GENERATION_TOKENS,
        Unit::Count,
        "Generated tokens of each finished request"
    );
    describe_histogram!(BATCH_SIZE, Unit::Count, "Sequences in each engine step");
    describe_gauge!(
        GPU_UTILIZATION,
        Unit::Percent,
        "Share of the last sample period a kernel ran on the GPU, 0 to 1 (NVML)"
    );
    describe_gauge!(GPU_MEMORY_USED, Unit::Bytes, "GPU memory in use (NVML)");
    describe_gauge!(GPU_MEMORY_TOTAL, Unit::Bytes, "GPU memory installed (NVML)");
    describe_gauge!(GPU_POWER, "GPU power draw in watts (NVML)");
    describe_gauge!(
        GPU_TEMPERATURE,
        "GPU core temperature in degrees Celsius (NVML)"
    );
    describe_gauge!(
        GPU_SM_CLOCK,
        "GPU streaming-multiprocessor clock in hertz (NVML)"
    );
    describe_histogram!(
        ENGINE_STEP_DURATION,
        Unit::Seconds,
        "Wall time of each engine step: scheduling, the forward pass and sampling"
    );
    describe_counter!(
        PROMPT_TOKENS_TOTAL,
        Unit::Count,
        "Prompt tokens of finished requests"
    );
    describe_counter!(
        GENERATION_TOKENS_TOTAL,
        Unit::Count,
        "Tokens generated by finished requests"
    );
}

/// The latency and token metrics of one engine (one model version), with
/// their labels bound once: recording is a few atomic operations.
#[derive(Clone)]
pub struct EngineMetrics {
    ttft: Histogram,
    itl: Histogram,
    duration: Histogram,
    queue: Histogram,
    prompt: Histogram,
    generation: Histogram,
    batch: Histogram,
    step: Histogram,
    prompt_total: Counter,
    generation_total: Counter,
    /// Where the same latencies go besides (the canary analysis window).
    sink: Option<std::sync::Arc<dyn LatencySink>>,
}

impl EngineMetrics {
    pub fn new(model: &str, version: &str, sink: Option<std::sync::Arc<dyn LatencySink>>) -> Self {
        let labels = [("model", model.to_owned()), ("version", version.to_owned())];
        EngineMetrics {
            ttft: metrics::histogram!(TIME_TO_FIRST_TOKEN, &labels),
            itl: metrics::histogram!(INTER_TOKEN_LATENCY, &labels),
            duration: metrics::histogram!(REQUEST_DURATION, &labels),
            queue: metrics::histogram!(QUEUE_DURATION, &labels),
            prompt: metrics::histogram!(PROMPT_TOKENS, &labels),
            generation: metrics::histogram!(GENERATION_TOKENS, &labels),
            batch: metrics::histogram!(BATCH_SIZE, &labels),
            step: metrics::histogram!(ENGINE_STEP_DURATION, &labels),
            prompt_total: metrics::counter!(PROMPT_TOKENS_TOTAL, &labels),
            generation_total: metrics::counter!(GENERATION_TOKENS_TOTAL, &labels),
            sink,
        }
    }

    pub fn first_token(&self, since_arrival: Duration) {
        self.ttft.record(since_arrival);
        if let Some(s) = &self.sink {
            s.first_token(since_arrival);
        }
    }

    pub fn token_gap(&self, gap: Duration) {
        self.itl.record(gap);
        if let Some(s) = &self.sink {
            s.token_gap(gap);
        }
    }

    pub fn scheduled(&self, waited: Duration) {
        self.queue.record(waited);
    }

    pub fn finished(&self, duration: Duration, prompt_tokens: usize, generated: usize) {
        self.duration.record(duration);
        self.prompt.record(prompt_tokens as f64);
        self.generation.record(generated as f64);
        self.prompt_total.increment(prompt_tokens as u64);
        self.generation_total.increment(generated as u64);
    }

    pub fn step(&self, sequences: usize, took: Duration) {
        self.batch.record(sequences as f64);
        self.step.record(took);
    }
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
    metrics::gauge!(ENGINE_BUSY, &labels).set(busy_ratio(model, version, s));
}

/// Busy time over wall time since this engine's previous scrape (since
/// its start on the first).
fn busy_ratio(model: &str, version: &str, s: &EngineSnapshot) -> f64 {
    use std::collections::HashMap;
    use std::sync::Mutex;
    /// (busy, alive) nanoseconds at the previous scrape, per engine.
    type Readings = HashMap<(String, String), (u64, u64)>;
    static LAST: Mutex<Option<Readings>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    let key = (model.to_owned(), version.to_owned());
    let (busy0, alive0) = last
        .get_or_insert_with(HashMap::new)
        .insert(key, (s.busy_ns, s.alive_ns))
        .filter(|&(_, alive0)| alive0 <= s.alive_ns)
        .unwrap_or((0, 0));
    let wall = s.alive_ns.saturating_sub(alive0);
    if wall == 0 {
        return 0.0;
    }
    (s.busy_ns.saturating_sub(busy0) as f64 / wall as f64).clamp(0.0, 1.0)
}

/// The git commit the binary was built from, when the build knew it.
fn commit() -> &'static str {
    option_env!("SWITCHYARD_COMMIT").unwrap_or("unknown")
}

/// A version's share of its model's requests (0 to 1).
pub fn rollout_traffic(model: &str, version: &str, ratio: f64) {
    metrics::gauge!(
        ROLLOUT_TRAFFIC_RATIO,
        "model" => model.to_owned(),
        "version" => version.to_owned()
    )
    .set(ratio);
}

/// Sets a version's rollout state: 1 for `state`, 0 for the others of
/// `all`, so that a dashboard shows exactly one.
pub fn rollout_state<const N: usize>(
    model: &str,
    version: &str,
    state: &str,
    all: [&'static str; N],
) {
    for s in all {
        metrics::gauge!(
            ROLLOUT_STATE,
            "model" => model.to_owned(),
            "version" => version.to_owned(),
            "state" => s
        )
        .set(if s == state { 1.0 } else { 0.0 });
    }
}

/// Marks a model version as served.
pub fn model_served(model: &str, version: &str, quantization: &str, digest: &str) {
    metrics::gauge!(
        MODEL_INFO,
        "model" => model.to_owned(),
        "version" => version.to_owned(),
        "quantization" => quantization.to_owned(),
        "digest" => digest.to_owned(),
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

/// Refusals by a key's or tenant's limit: every (scope, limit) series of
/// a version exists from its first scrape, at 0, so that dashboards and
/// alerts see a healthy server's zeros rather than no data.
pub fn rate_limited_series(
    model: &str,
    version: &str,
    scopes: &[&'static str],
    limits: &[&'static str],
) {
    for &scope in scopes {
        for &limit in limits {
            rate_limited_counter(model, version, scope, limit).increment(0);
        }
    }
}

pub fn rate_limited(model: &str, version: &str, scope: &'static str, limit: &'static str) {
    rate_limited_counter(model, version, scope, limit).increment(1);
}

fn rate_limited_counter(
    model: &str,
    version: &str,
    scope: &'static str,
    limit: &'static str,
) -> Counter {
    metrics::counter!(
        RATE_LIMITED,
        "model" => model.to_owned(),
        "version" => version.to_owned(),
        "scope" => scope,
        "limit" => limit
    )
}

/// The statuses `switchyard_auth_failures_total` counts; each series
/// exists from the start, at 0.
pub const AUTH_FAILURE_STATUSES: [u16; 2] = [401, 403];

pub fn auth_failed(status: u16) {
    metrics::counter!(AUTH_FAILURES, "status" => status.to_string()).increment(1);
}

/// The Prometheus text exposition of every metric; empty before `install`.
pub fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}
