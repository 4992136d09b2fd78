//! `switchyard doctor`: what this machine offers and whether switchyard
//! computes correctly on it. Without a GPU it reports the CPU, why CUDA is
//! not usable, and (with `--arch`) compiles the kernels for the named
//! architectures, which is CI's check. With a GPU it also measures the
//! copy bandwidth, runs every kernel against its CPU twin, compares a
//! model's log-probabilities token by token with the CPU backend, and
//! benchmarks decoding on dummy weights while sampling NVML. It exits
//! non-zero when a check fails.

use super::CliResult;
use crate::backend::cpu::{isa, pool, ComputePool, CpuBackend};
use crate::backend::cuda::checks::{Check, Twins};
use crate::backend::cuda::{self, CudaBackend, CudaDevice, GpuInfo};
use crate::backend::device::{Device, DeviceChoice};
use crate::backend::{Backend, KvBatch, KvDtype, WeightFormat};
use crate::model::dummy::{presets, DummyStore};
use crate::model::loaded::{load, ModelSource};
use crate::model::{twins, Transformer};
use crate::telemetry::gpu::{sample_during, GpuReading};
use clap::Args;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct DoctorArgs {
    /// The device to check: auto (a CUDA device when one is usable), cpu,
    /// cuda or cuda:N (fails without one).
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Compile the kernels for these architectures (sm_80,sm_90) with
    /// NVRTC; needs no device.
    #[arg(long, value_delimiter = ',')]
    arch: Vec<String>,
    /// One JSON document on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// The model whose log-probabilities are compared with the CPU's.
    #[arg(long, default_value = "llama-3.2-1b")]
    twin_model: String,
    /// Tokens compared, one decode step each.
    #[arg(long, default_value_t = 32)]
    twin_steps: usize,
    /// The preset the decode benchmark runs (dummy weights made on the
    /// device).
    #[arg(long, default_value = "llama-3.1-8b")]
    bench_model: String,
    /// Weight formats benchmarked.
    #[arg(long, value_delimiter = ',', default_value = "bf16,q8_0,q4_0,q4_k")]
    bench_formats: Vec<String>,
    /// Sequences decoding at once.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    batch: Vec<usize>,
    /// Decode steps timed at each batch size.
    #[arg(long, default_value_t = 64)]
    steps: usize,
    /// Skip the decode benchmark.
    #[arg(long)]
    no_bench: bool,
}

#[derive(Serialize, Default)]
struct Report {
    version: &'static str,
    cpu: CpuReport,
    cuda: CudaReport,
    compile: Vec<Compile>,
    device: Option<GpuInfo>,
    kernels: Option<String>,
    /// Device-to-device copy, bytes read plus written per second.
    copy_bandwidth: Option<f64>,
    checks: Vec<Check>,
    logprobs: Option<twins::Comparison>,
    logprob_tolerance: f64,
    bench: Vec<Bench>,
    /// Batch-1 weight-read bandwidth over copy bandwidth, per format,
    /// against the targets (bf16 ≥ 0.70, 4-bit ≥ 0.50).
    targets: Vec<Target>,
    failures: Vec<String>,
}

#[derive(Serialize, Default)]
struct CpuReport {
    isa: String,
    threads: usize,
}

#[derive(Serialize, Default)]
struct CudaReport {
    /// Devices the driver sees, or why none is usable.
    driver: String,
    nvrtc: String,
    libraries_opened: Vec<String>,
}

#[derive(Serialize)]
struct Compile {
    arch: String,
    ok: bool,
    ptx_bytes: usize,
    seconds: f64,
    error: Option<String>,
}

#[derive(Serialize)]
struct Bench {
    model: String,
    format: String,
    batch: usize,
    tokens_per_second: f64,
    step_ms: f64,
    /// Weight bytes one decode step reads (every matrix but the
    /// embedding table, which is gathered).
    weight_bytes: usize,
    /// weight_bytes × steps per second.
    weight_bandwidth: f64,
    share_of_copy_bandwidth: Option<f64>,
    gpu_utilization_mean: Option<f64>,
    gpu_utilization_max: Option<f64>,
    power_watts_mean: Option<f64>,
    memory_used_max: Option<u64>,
}

#[derive(Serialize)]
struct Target {
    format: String,
    share: f64,
    target: f64,
    met: bool,
}

/// The largest logprob difference accepted between the backends: both
/// compute in f32 on the same weights, so only summation order differs.
const LOGPROB_TOLERANCE: f64 = 1e-2;

pub fn run(a: DoctorArgs) -> CliResult {
    let mut r = Report {
        version: env!("CARGO_PKG_VERSION"),
        logprob_tolerance: LOGPROB_TOLERANCE,
        ..Report::default()
    };
    r.cpu = CpuReport {
        isa: isa::isa().name().to_owned(),
        threads: pool::physical_cores(),
    };
    r.cuda.libraries_opened = cuda::preload_libraries()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    r.cuda.driver = match cuda::device_count() {
        Ok(n) => format!("{n} device(s)"),
        Err(why) => why,
    };
    r.cuda.nvrtc = match cuda::nvrtc_version() {
        Ok((major, minor)) => format!("NVRTC {major}.{minor}"),
        Err(why) => why,
    };
    for arch in &a.arch {
        let started = Instant::now();
        let result = cuda::compile_for(arch);
        let c = Compile {
            arch: arch.clone(),
            ok: result.is_ok(),
            ptx_bytes: result.as_ref().map_or(0, |p| p.len()),
            seconds: started.elapsed().as_secs_f64(),
            error: result.err(),
        };
        if let Some(e) = &c.error {
            r.failures.push(format!("compile {arch}: {e}"));
        }
        r.compile.push(c);
    }
    let cache = crate::store::artifacts::home().join("cache").join("ptx");
    match Device::open(a.device, Some(&cache)) {
        Ok(Device::Cuda(dev)) => gpu_checks(&a, &dev, &mut r),
        Ok(Device::Cpu) => {}
        Err(why) => r.failures.push(why),
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
        );
    } else {
        print_text(&r);
    }
    if r.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} check(s) failed", r.failures.len()))
    }
}

fn gpu_checks(a: &DoctorArgs, dev: &Arc<CudaDevice>, r: &mut Report) {
    r.device = Some(dev.info.clone());
    r.kernels = Some(format!("{} ({})", dev.compiled.arch, dev.compiled.origin));
    match copy_bandwidth(dev) {
        Ok(bw) => r.copy_bandwidth = Some(bw),
        Err(e) => r.failures.push(format!("copy bandwidth: {e}")),
    }
    let gpu = CudaBackend::new(dev.clone());
    match Twins::new(&gpu).all() {
        Ok(checks) => {
            for c in checks.iter().filter(|c| !c.passed) {
                r.failures.push(format!(
                    "{}: error {:.2e} over {:.0e}",
                    c.name, c.error, c.tolerance
                ));
            }
            r.checks = checks;
        }
        Err(e) => r.failures.push(format!("kernel checks: {e}")),
    }
    match compare_logprobs(a, dev) {
        Ok(c) => {
            if c.max_logprob_diff > LOGPROB_TOLERANCE {
                r.failures.push(format!(
                    "logprobs of {}: {:.2e} apart, over {LOGPROB_TOLERANCE:.0e}",
                    a.twin_model, c.max_logprob_diff
                ));
            }
            r.logprobs = Some(c);
        }
        Err(e) => r
            .failures
            .push(format!("logprobs of {}: {e}", a.twin_model)),
    }
    if !a.no_bench {
        for format in &a.bench_formats {
            match bench(a, dev, format, r.copy_bandwidth) {
                Ok(rows) => r.bench.extend(rows),
                Err(e) => r.failures.push(format!("benchmark {format}: {e}")),
            }
        }
        for b in r.bench.iter().filter(|b| b.batch == 1) {
            let target = match b.format.as_str() {
                "bf16" | "f16" => 0.70,
                f if f.starts_with("q4") => 0.50,
                _ => continue,
            };
            if let Some(share) = b.share_of_copy_bandwidth {
                r.targets.push(Target {
                    format: b.format.clone(),
                    share,
                    target,
                    met: share >= target,
                });
            }
        }
    }
}

/// Bytes read plus written per second by device-to-device copies of
/// 1 GiB, the median of ten.
fn copy_bandwidth(dev: &Arc<CudaDevice>) -> Result<f64, String> {
    let bytes = 1usize << 30;
    let gpu = CudaBackend::new(dev.clone());
    let src = gpu
        .upload_buffer(&vec![1.0f32; bytes / 4], 1024)
        .map_err(|e| e.0)?;
    let dst = gpu
        .upload_buffer(&vec![0.0f32; bytes / 4], 1024)
        .map_err(|e| e.0)?;
    let mut times = Vec::new();
    for i in 0..12 {
        let started = Instant::now();
        gpu.copy_buffer(&src, &dst).map_err(|e| e.0)?;
        dev.synchronize().map_err(|e| e.0)?;
        if i >= 2 {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(2.0 * bytes as f64 / times[times.len() / 2])
}

fn compare_logprobs(a: &DoctorArgs, dev: &Arc<CudaDevice>) -> Result<twins::Comparison, String> {
    let source = ModelSource::dummy(&a.twin_model).map_err(|e| e.to_string())?;
    let threads = pool::physical_cores();
    let cpu = CpuBackend::new(Arc::new(ComputePool::new(threads))).with_exact_activations(true);
    let gpu = CudaBackend::new(dev.clone());
    let reference = load(&source, None, &cpu).map_err(|e| e.to_string())?;
    let other = load(&source, None, &gpu).map_err(|e| e.to_string())?;
    let prompt =
        reference
            .tokenizer
            .encode("The quick brown fox jumps over the lazy dog.", true, true);
    twins::compare(
        (&reference.model, &cpu),
        (&other.model, &gpu),
        &prompt,
        a.twin_steps,
    )
    .map_err(|e| e.to_string())
}

/// Decode steps of `a.bench_model` in `format` at each batch size.
fn bench(
    a: &DoctorArgs,
    dev: &Arc<CudaDevice>,
    format: &str,
    copy_bw: Option<f64>,
) -> Result<Vec<Bench>, String> {
    let format =
        WeightFormat::from_name(format).ok_or_else(|| format!("unknown format {format}"))?;
    let preset = presets::find(&a.bench_model)
        .ok_or_else(|| format!("unknown preset {} ({})", a.bench_model, presets::names()))?;
    let config = preset.config();
    let store = DummyStore {
        config: config.clone(),
        format,
        origin: a.bench_model.clone().into(),
        zero_matrices: true,
    };
    let gpu = CudaBackend::new(dev.clone()).with_random_weights();
    let model = Transformer::load(&store, config.clone(), &gpu).map_err(|e| e.to_string())?;
    // The embedding table is gathered, not read whole, unless it is also
    // the output projection.
    let embedding = if config.tied_embeddings {
        0
    } else {
        let f =
            crate::model::convert::format_for(false, format, false).for_row_width(config.d_model);
        config.vocab_size * f.row_bytes(config.d_model)
    };
    let weight_bytes = gpu.matrix_bytes() - embedding;
    let block = 16;
    let max_batch = a.batch.iter().copied().max().unwrap_or(1);
    let warmup = 4;
    let per_seq = (warmup + a.steps).div_ceil(block);
    let mut cache = gpu
        .kv_cache(model.kv_shape(max_batch * per_seq, block, KvDtype::F16))
        .map_err(|e| e.to_string())?;
    let mut scratch = model.scratch(&gpu);
    let mut out = Vec::new();
    for &batch in &a.batch {
        let run = |scratch: &mut _, cache: &mut _, step: usize| {
            let mut kv = KvBatch::new(block);
            for s in 0..batch {
                let table: Vec<u32> = (0..per_seq).map(|i| (s * per_seq + i) as u32).collect();
                kv.push_sequence(&table, step..step + 1);
            }
            let ids: Vec<u32> = (0..batch).map(|s| (s * 7 + step) as u32 % 1000).collect();
            let rows: Vec<usize> = (0..batch).collect();
            model.forward(&gpu, scratch, cache, &ids, &kv, &rows)
        };
        for step in 0..warmup {
            run(&mut scratch, &mut cache, step);
        }
        let (elapsed, readings) =
            sample_during(dev.info.ordinal as u32, Duration::from_millis(20), || {
                let started = Instant::now();
                for step in warmup..warmup + a.steps {
                    run(&mut scratch, &mut cache, step);
                }
                started.elapsed().as_secs_f64()
            });
        gpu.check().map_err(|e| e.to_string())?;
        let steps_per_s = a.steps as f64 / elapsed;
        let weight_bandwidth = weight_bytes as f64 * steps_per_s;
        out.push(Bench {
            model: a.bench_model.clone(),
            format: format.name().to_owned(),
            batch,
            tokens_per_second: steps_per_s * batch as f64,
            step_ms: 1e3 / steps_per_s,
            weight_bytes,
            weight_bandwidth,
            share_of_copy_bandwidth: copy_bw.map(|c| weight_bandwidth / c),
            gpu_utilization_mean: mean(&readings, |g| g.utilization),
            gpu_utilization_max: readings
                .iter()
                .filter_map(|g| g.utilization)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v)))),
            power_watts_mean: mean(&readings, |g| g.power_watts),
            memory_used_max: readings.iter().filter_map(|g| g.memory_used).max(),
        });
    }
    Ok(out)
}

fn mean(readings: &[GpuReading], f: impl Fn(&GpuReading) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = readings.iter().filter_map(f).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn print_text(r: &Report) {
    println!("switchyard {}", r.version);
    println!("cpu: {} ({} cores)", r.cpu.isa, r.cpu.threads);
    println!("cuda driver: {}", r.cuda.driver);
    println!("nvrtc: {}", r.cuda.nvrtc);
    for c in &r.compile {
        match &c.error {
            None => println!(
                "compile {}: ok, {} bytes of PTX in {:.1} s",
                c.arch, c.ptx_bytes, c.seconds
            ),
            Some(e) => println!("compile {}: FAILED\n{e}", c.arch),
        }
    }
    if let Some(d) = &r.device {
        println!(
            "device {}: {}, sm_{}{}, {} SMs, {:.1} GiB ({:.1} free), driver CUDA {}.{}",
            d.ordinal,
            d.name,
            d.compute_capability.0,
            d.compute_capability.1,
            d.multiprocessors,
            d.total_memory as f64 / (1u64 << 30) as f64,
            d.free_memory as f64 / (1u64 << 30) as f64,
            d.driver_cuda.0,
            d.driver_cuda.1
        );
    }
    if let Some(k) = &r.kernels {
        println!("kernels: {k}");
    }
    if let Some(bw) = r.copy_bandwidth {
        println!("copy bandwidth: {:.0} GB/s (read + write)", bw / 1e9);
    }
    for c in &r.checks {
        println!(
            "  {:<44} {:>10.2e}  (≤ {:.0e})  {}",
            c.name,
            c.error,
            c.tolerance,
            if c.passed { "ok" } else { "FAILED" }
        );
    }
    if let Some(l) = &r.logprobs {
        println!(
            "logprobs vs CPU over {} steps: max {:.2e}, mean {:.2e}, same greedy token {}/{} (≤ {:.0e})",
            l.steps, l.max_logprob_diff, l.mean_logprob_diff, l.same_argmax, l.steps, r.logprob_tolerance
        );
    }
    for b in &r.bench {
        println!(
            "bench {} {} batch {:>3}: {:>9.1} tokens/s, {:>7.2} ms/step, weights {:.0} GB/s{}, GPU util {}, power {}",
            b.model,
            b.format,
            b.batch,
            b.tokens_per_second,
            b.step_ms,
            b.weight_bandwidth / 1e9,
            b.share_of_copy_bandwidth
                .map_or(String::new(), |s| format!(" ({:.0}% of copy)", 100.0 * s)),
            b.gpu_utilization_mean
                .map_or("n/a".into(), |u| format!("{:.0}% mean", 100.0 * u)),
            b.power_watts_mean.map_or("n/a".into(), |p| format!("{p:.0} W")),
        );
    }
    for t in &r.targets {
        println!(
            "target {}: {:.0}% of copy bandwidth at batch 1 (target {:.0}%): {}",
            t.format,
            100.0 * t.share,
            100.0 * t.target,
            if t.met { "met" } else { "NOT met" }
        );
    }
    for f in &r.failures {
        println!("FAILED: {f}");
    }
}
