//! GPU metrics from NVML, per device, every few seconds. The NVIDIA
//! management library is loaded at run time: without it (no driver, no
//! GPU) the poller logs one line saying why and the GPU metrics stay
//! absent.

use super::metrics::{
    GPU_MEMORY_TOTAL, GPU_MEMORY_USED, GPU_POWER, GPU_SM_CLOCK, GPU_TEMPERATURE, GPU_UTILIZATION,
};
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::{Device, Nvml};
use std::time::Duration;

/// Starts the poller thread; it ends at once when NVML is absent.
pub fn start(interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("gpu-metrics".into())
        .spawn(move || {
            let nvml = match Nvml::init() {
                Ok(nvml) => nvml,
                Err(e) => {
                    tracing::info!(reason = %e, "no GPU metrics: NVML could not be loaded");
                    return;
                }
            };
            let count = nvml.device_count().unwrap_or(0);
            tracing::info!(devices = count, "GPU metrics from NVML");
            loop {
                for index in 0..count {
                    if let Ok(device) = nvml.device_by_index(index) {
                        record(index, &device);
                    }
                }
                std::thread::sleep(interval);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no GPU metrics: the poller thread did not start");
    }
}

/// One reading of one device; a value the device does not report is
/// None rather than faked.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct GpuReading {
    /// Share of the last sample period a kernel ran, 0 to 1.
    pub utilization: Option<f64>,
    pub memory_used: Option<u64>,
    pub memory_total: Option<u64>,
    pub power_watts: Option<f64>,
    pub temperature_celsius: Option<f64>,
    pub sm_clock_hz: Option<f64>,
}

pub fn read(device: &Device) -> GpuReading {
    let memory = device.memory_info().ok();
    GpuReading {
        utilization: device
            .utilization_rates()
            .ok()
            .map(|u| u.gpu as f64 / 100.0),
        memory_used: memory.as_ref().map(|m| m.used),
        memory_total: memory.as_ref().map(|m| m.total),
        power_watts: device.power_usage().ok().map(|mw| mw as f64 / 1000.0),
        temperature_celsius: device
            .temperature(TemperatureSensor::Gpu)
            .ok()
            .map(|c| c as f64),
        sm_clock_hz: device
            .clock_info(Clock::SM)
            .ok()
            .map(|mhz| mhz as f64 * 1e6),
    }
}

fn record(index: u32, device: &Device) {
    let gpu = [("gpu", index.to_string())];
    let r = read(device);
    let set = |name: &'static str, v: Option<f64>| {
        if let Some(v) = v {
            metrics::gauge!(name, &gpu).set(v);
        }
    };
    set(GPU_UTILIZATION, r.utilization);
    set(GPU_MEMORY_USED, r.memory_used.map(|b| b as f64));
    set(GPU_MEMORY_TOTAL, r.memory_total.map(|b| b as f64));
    set(GPU_POWER, r.power_watts);
    set(GPU_TEMPERATURE, r.temperature_celsius);
    set(GPU_SM_CLOCK, r.sm_clock_hz);
}

/// Runs `work` while another thread reads device `index` every
/// `interval`; returns its result and the readings (none without NVML).
pub fn sample_during<T>(
    index: u32,
    interval: Duration,
    work: impl FnOnce() -> T,
) -> (T, Vec<GpuReading>) {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut readings = Vec::new();
            let Ok(nvml) = Nvml::init() else {
                return readings;
            };
            let Ok(device) = nvml.device_by_index(index) else {
                return readings;
            };
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                readings.push(read(&device));
                std::thread::sleep(interval);
            }
            readings
        });
        let out = work();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (out, sampler.join().unwrap_or_default())
    })
}
