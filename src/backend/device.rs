//! Which device a process computes on: `--device auto|cpu|cuda[:N]`.
//! `auto` takes the first CUDA device when one is usable and the CPU
//! otherwise, saying why in the log; `cuda` insists, and fails with the
//! reason.

use super::cuda::CudaDevice;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("`{s}` is not a device (auto, cpu, cuda or cuda:N)")),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The device chosen.
#[derive(Clone)]
pub enum Device {
    Cpu,
    Cuda(Arc<CudaDevice>),
}

impl Device {
    /// Opens the chosen device; `ptx_cache` is where compiled kernels are
    /// kept between runs.
    pub fn open(choice: DeviceChoice, ptx_cache: Option<&Path>) -> Result<Device, String> {
        match choice {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(n) => CudaDevice::open(n, ptx_cache)
                .map(Device::Cuda)
                .map_err(|why| format!("--device cuda:{n}: {why}")),
            DeviceChoice::Auto => match CudaDevice::open(0, ptx_cache) {
                Ok(dev) => {
                    tracing::info!(device = %dev.info.name, "computing on CUDA device 0");
                    Ok(Device::Cuda(dev))
                }
                Err(why) => {
                    tracing::info!(reason = %why, "computing on the CPU: no usable CUDA device");
                    Ok(Device::Cpu)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print_back() {
        for (text, choice) in [
            ("auto", DeviceChoice::Auto),
            ("cpu", DeviceChoice::Cpu),
            ("cuda:1", DeviceChoice::Cuda(1)),
        ] {
            assert_eq!(text.parse::<DeviceChoice>().unwrap(), choice);
            assert_eq!(choice.to_string(), text);
        }
        assert_eq!(
            "cuda".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert!("gpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn auto_falls_back_to_the_cpu_without_a_driver() {
        // This test runs where CI runs: no GPU. With one, `auto` would
        // rightly pick it, so the assertion holds only without a driver.
        if crate::backend::cuda::device_count().is_err() {
            assert!(matches!(
                Device::open(DeviceChoice::Auto, None),
                Ok(Device::Cpu)
            ));
            let err = Device::open(DeviceChoice::Cuda(0), None)
                .err()
                .unwrap_or_default();
            assert!(err.starts_with("--device cuda:0: "), "{err}");
        }
    }
}
