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

/// One reading of one device; a value the device does not report is left
/// out rather than faked.
fn record(index: u32, device: &Device) {
    let gpu = [("gpu", index.to_string())];
    if let Ok(u) = device.utilization_rates() {
        metrics::gauge!(GPU_UTILIZATION, &gpu).set(u.gpu as f64 / 100.0);
    }
    if let Ok(m) = device.memory_info() {
        metrics::gauge!(GPU_MEMORY_USED, &gpu).set(m.used as f64);
        metrics::gauge!(GPU_MEMORY_TOTAL, &gpu).set(m.total as f64);
    }
    if let Ok(mw) = device.power_usage() {
        metrics::gauge!(GPU_POWER, &gpu).set(mw as f64 / 1000.0);
    }
    if let Ok(c) = device.temperature(TemperatureSensor::Gpu) {
        metrics::gauge!(GPU_TEMPERATURE, &gpu).set(c as f64);
    }
    if let Ok(mhz) = device.clock_info(Clock::SM) {
        metrics::gauge!(GPU_SM_CLOCK, &gpu).set(mhz as f64 * 1e6);
    }
}
