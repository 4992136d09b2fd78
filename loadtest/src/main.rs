//! switchyard-loadtest: drives any OpenAI-compatible server with streaming
//! completions at fixed concurrency levels or a Poisson request rate, and
//! reports TTFT, inter-token latency, end-to-end latency, throughput and
//! errors per level, as a table and as JSON. Bounded by request count and
//! duration; meant for 127.0.0.1.

mod chart;
mod client;
mod prompts;
mod stats;

use clap::Parser;
use client::{Client, Failure, Outcome};
use prompts::Prompts;
use serde_json::json;
use stats::Level;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

#[derive(Parser, Clone)]
#[command(version, about)]
struct Args {
    /// The server, e.g. http://127.0.0.1:8080
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The `model` field sent.
    #[arg(long, default_value = "default")]
    model: String,
    /// Concurrency levels, run one after another.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    concurrency: Vec<usize>,
    /// Instead of fixed concurrency: Poisson arrivals at these rates
    /// (requests per second).
    #[arg(long, value_delimiter = ',')]
    rate: Vec<f64>,
    /// Requests per level.
    #[arg(long, default_value_t = 32)]
    requests: u64,
    /// Most seconds per level; requests not started by then are not sent.
    #[arg(long, default_value_t = 120.0)]
    duration: f64,
    /// Requests per level sent first and not counted (warm-up).
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Synthetic prompt length in tokens.
    #[arg(long, default_value_t = 64)]
    prompt_tokens: usize,
    /// Leading tokens every synthetic prompt shares.
    #[arg(long, default_value_t = 0)]
    shared_prefix_tokens: usize,
    /// A JSONL file of {"prompt": ...} lines instead of synthetic prompts.
    #[arg(long)]
    prompts: Option<String>,
    /// Tokens generated per request (with ignore_eos).
    #[arg(long, default_value_t = 64)]
    max_tokens: u64,
    /// A name for this server in the report.
    #[arg(long, default_value = "server")]
    label: String,
    /// Write the JSON report here.
    #[arg(long)]
    out: Option<String>,
    /// Draw an SVG chart of this run (and of the `--compare` reports)
    /// against concurrency.
    #[arg(long)]
    chart: Option<String>,
    /// Reports of earlier runs (e.g. another server) to draw beside this one.
    #[arg(long)]
    compare: Vec<String>,
    /// Send nothing: only draw `--chart` from the `--compare` reports.
    #[arg(long)]
    no_run: bool,
    /// Write one JSON line per measured request here: when it started and
    /// got its headers (Unix ms), its outcome and the version that answered.
    #[arg(long)]
    records: Option<String>,
}

/// Set by Ctrl-C or SIGTERM: no new request starts; those in flight finish
/// and are reported.
static STOP: AtomicBool = AtomicBool::new(false);

fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// The per-request lines of `--records`.
type Records = Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// One request, timed, with its line for `--records`.
async fn measured(
    client: &mut Client,
    body: &serde_json::Value,
    left: Duration,
    records: &Records,
) -> Result<Outcome, Failure> {
    let started = SystemTime::now();
    let r = tokio::time::timeout(left, client.stream("/v1/completions", body))
        .await
        .unwrap_or(Err(Failure::Timeout));
    let line = match &r {
        Ok(o) => json!({
            "start_ms": unix_ms(started),
            "headers_ms": unix_ms(started + o.headers),
            "end_ms": unix_ms(started + o.e2e),
            "ok": true,
            "version": o.version,
            "output_tokens": o.output_tokens,
        }),
        Err(f) => json!({
            "start_ms": unix_ms(started),
            "end_ms": unix_ms(SystemTime::now()),
            "ok": false,
            "failure": f.to_string(),
        }),
    };
    if let Ok(mut lines) = records.lock() {
        lines.push(line);
    }
    r
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    tokio::spawn(async {
        let interrupt = tokio::signal::ctrl_c();
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
        eprintln!("switchyard-loadtest: stopping; waiting for the requests in flight");
        STOP.store(true, Ordering::Relaxed);
    });
    if let Err(e) = run(args).await {
        eprintln!("switchyard-loadtest: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut series = Vec::new();
    if !args.no_run {
        let report = load(&args).await?;
        series.push(chart::Series::from_report(&report));
    }
    for path in &args.compare {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let report = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        series.push(chart::Series::from_report(&report));
    }
    if let Some(path) = &args.chart {
        std::fs::write(path, chart::svg(&series)).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// Runs every level and returns the report.
async fn load(args: &Args) -> Result<serde_json::Value, String> {
    let addr = args
        .url
        .strip_prefix("http://")
        .ok_or("--url must start with http://")?
        .trim_end_matches('/')
        .to_owned();
    let prompts = Arc::new(match &args.prompts {
        Some(path) => Prompts::read(path)?,
        None => Prompts::Synthetic {
            len: args.prompt_tokens,
            shared: args.shared_prefix_tokens.min(args.prompt_tokens),
        },
    });
    // The body of request `i` of run `run`.
    let bodies = |run: u64, offset: u64| -> MakeBody {
        let (prompts, model, max_tokens) = (prompts.clone(), args.model.clone(), args.max_tokens);
        Arc::new(move |i| {
            json!({
                "model": model,
                "prompt": prompts.get(run, offset.wrapping_add(i)),
                "max_tokens": max_tokens,
                "temperature": 0,
                "ignore_eos": true,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        })
    };
    let mut levels = Vec::new();
    let records = Records::default();
    println!(
        "{:<12} {:>5} {:>7} {:>6} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9}",
        args.label,
        "level",
        "ok",
        "errors",
        "tok/s",
        "ttft p50",
        "ttft p99",
        "itl p50",
        "itl p99",
        "e2e p50"
    );
    let runs: Vec<(Option<usize>, Option<f64>)> = if args.rate.is_empty() {
        args.concurrency.iter().map(|&c| (Some(c), None)).collect()
    } else {
        args.rate.iter().map(|&r| (None, Some(r))).collect()
    };
    for (run_no, (concurrency, rate)) in runs.into_iter().enumerate() {
        let run_seed = run_no as u64 + 1;
        let make = bodies(run_seed, 0);
        if args.warmup > 0 {
            // Prompts of their own, so that they leave nothing cached for
            // the measured requests.
            let c = concurrency.unwrap_or(1).max(1);
            let unrecorded = Records::default();
            let warm = bodies(run_seed, 1 << 40);
            let _ = fixed(&addr, c, args.warmup, f64::MAX, warm, &unrecorded).await;
        }
        let started = Instant::now();
        let results = match (concurrency, rate) {
            (Some(c), _) => {
                fixed(
                    &addr,
                    c.max(1),
                    args.requests,
                    args.duration,
                    make,
                    &records,
                )
                .await
            }
            (_, Some(r)) => poisson(&addr, r, args.requests, args.duration, make, &records).await,
            _ => Vec::new(),
        };
        let level = Level::summarize(concurrency, rate, &results, started.elapsed());
        let name = match (concurrency, rate) {
            (Some(c), _) => format!("c={c}"),
            (_, Some(r)) => format!("r={r}"),
            _ => String::new(),
        };
        println!(
            "{:<12} {:>5} {:>7} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>8.1} {:>8.1} {:>9.1}",
            args.label,
            name,
            level.requests_ok,
            level.errors.values().sum::<usize>(),
            level.output_tokens_per_s,
            level.ttft_ms.p50,
            level.ttft_ms.p99,
            level.itl_ms.p50,
            level.itl_ms.p99,
            level.e2e_ms.p50
        );
        levels.push(level);
    }
    let report = json!({
            "label": args.label,
            "url": args.url,
            "model": args.model,
            "prompt_tokens": args.prompt_tokens,
            "shared_prefix_tokens": args.shared_prefix_tokens,
            "max_tokens": args.max_tokens,
            "levels": levels,
    });
    if let Some(path) = &args.out {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some(path) = &args.records {
        let lines = records.lock().map(|l| l.clone()).unwrap_or_default();
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(report)
}

type Results = Vec<Result<Outcome, Failure>>;
type MakeBody = Arc<dyn Fn(u64) -> serde_json::Value + Send + Sync>;

/// `concurrency` workers, each with its own connection, take requests
/// until `count` are sent or `duration` seconds have passed.
async fn fixed(
    addr: &str,
    concurrency: usize,
    count: u64,
    duration: f64,
    make: MakeBody,
    records: &Records,
) -> Results {
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs_f64(duration.min(1e6));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, results, make) = (next.clone(), results.clone(), make.clone());
            let records = records.clone();
            let mut client = Client::new(addr);
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || Instant::now() >= deadline || stopping() {
                        return;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    let r = measured(&mut client, &make(i), left, &records).await;
                    results.lock().await.push(r);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let mut r = results.lock().await;
    std::mem::take(&mut *r)
}

/// Requests arriving as a Poisson process of `rate` per second, each on
/// its own connection, whatever the server's pace.
async fn poisson(
    addr: &str,
    rate: f64,
    count: u64,
    duration: f64,
    make: MakeBody,
    records: &Records,
) -> Results {
    let results = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(duration.min(1e6));
    let mut at = 0f64;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut tasks = Vec::new();
    for i in 0..count {
        // Exponential gaps from a xorshift uniform.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let u = ((rng >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        at += -u.ln() / rate.max(1e-9);
        let when = start + Duration::from_secs_f64(at);
        if when >= deadline || stopping() {
            break;
        }
        tokio::time::sleep_until(when.into()).await;
        let (results, make, addr) = (results.clone(), make.clone(), addr.to_owned());
        let records = records.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::new(&addr);
            let left = deadline.saturating_duration_since(Instant::now());
            let r = measured(&mut client, &make(i), left, &records).await;
            results.lock().await.push(r);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut r = results.lock().await;
    std::mem::take(&mut *r)
}
