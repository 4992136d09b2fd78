//! The engine's sizing flags, shared by `serve` and `generate`, named as
//! vLLM names them.

use crate::backend::device::{Device, DeviceChoice};
use crate::backend::KvDtype;
use crate::engine::{parse_memory, physical_memory, EngineConfig, KvBudget};
use clap::Args;
use std::sync::Arc;

#[derive(Args, Clone, Debug)]
pub struct EngineArgs {
    /// Sequences that run at once in the batch.
    #[arg(long, default_value_t = EngineConfig::default().max_num_seqs)]
    max_num_seqs: usize,
    /// Tokens computed per step over all sequences; a longer prompt is
    /// read in chunks of this size between decode steps.
    #[arg(long, default_value_t = EngineConfig::default().max_num_batched_tokens)]
    max_num_batched_tokens: usize,
    /// Requests that may wait behind the running ones; past it, requests
    /// are answered 429 with Retry-After.
    #[arg(long, default_value_t = EngineConfig::default().max_waiting)]
    max_queue: usize,
    /// KV cache memory for all loaded models together: a size (4GiB,
    /// 512MB) or a share of physical memory (0.25). `auto`: 4 GiB, at most
    /// a quarter of memory.
    #[arg(long, default_value = "auto")]
    kv_cache_memory: String,
    /// The most of that budget one loaded version takes: a size or a share
    /// of the budget (0.5). `auto`: half, so that a new version loads
    /// beside the one in service during a swap.
    #[arg(long, default_value = "auto")]
    kv_cache_per_version: String,
    /// Element type of cached keys and values: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    kv_cache_dtype: String,
    /// Token positions per KV block.
    #[arg(long, default_value_t = EngineConfig::default().block_size)]
    block_size: usize,
    /// Compute every prompt from scratch instead of reusing the blocks of
    /// earlier requests with the same prefix.
    #[arg(long)]
    no_enable_prefix_caching: bool,
    /// Multiply quantized weights with f32 activations instead of 8-bit
    /// activations and integer dot products (as llama.cpp does): slower,
    /// and within rounding of the exact f32 computation.
    #[arg(long)]
    pub exact_activations: bool,
    /// Where to compute: auto (the first CUDA device when one is usable,
    /// else the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

impl EngineArgs {
    /// Opens `--device`; compiled kernels are cached under
    /// $SWITCHYARD_HOME/cache/ptx.
    pub fn open_device(&self) -> Result<Device, String> {
        let cache = crate::store::artifacts::home().join("cache").join("ptx");
        Device::open(self.device, Some(&cache))
    }

    pub fn config(&self, device: &Device) -> Result<EngineConfig, String> {
        let kv_dtype = KvDtype::from_name(&self.kv_cache_dtype).ok_or_else(|| {
            format!(
                "--kv-cache-dtype {}: expected f32, f16 or bf16",
                self.kv_cache_dtype
            )
        })?;
        let config = EngineConfig {
            max_num_seqs: self.max_num_seqs,
            max_num_batched_tokens: self.max_num_batched_tokens,
            max_waiting: self.max_queue,
            block_size: self.block_size,
            kv_dtype,
            prefix_caching: !self.no_enable_prefix_caching,
            max_kv_bytes: Some(self.per_version_bytes(device)?),
            ..EngineConfig::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// The process-wide KV budget every engine draws from.
    pub fn budget(&self, device: &Device) -> Result<Arc<KvBudget>, String> {
        Ok(KvBudget::new(self.budget_bytes(device)?))
    }

    /// On the CPU, shares are of physical memory and `auto` is 4 GiB at
    /// most a quarter of it; on a GPU, shares are of the device's memory
    /// and `auto` is 40% of what is free before the weights load (vLLM
    /// sizes its cache the same way, after profiling).
    fn budget_bytes(&self, device: &Device) -> Result<usize, String> {
        let (memory, auto) = match device {
            Device::Cpu => {
                let physical = physical_memory();
                (physical, (4usize << 30).min(physical / 4))
            }
            Device::Cuda(dev) => (dev.info.total_memory, dev.info.free_memory / 10 * 4),
        };
        if self.kv_cache_memory == "auto" {
            return Ok(auto);
        }
        parse_memory(&self.kv_cache_memory, memory).map_err(|e| format!("--kv-cache-memory: {e}"))
    }

    fn per_version_bytes(&self, device: &Device) -> Result<usize, String> {
        let budget = self.budget_bytes(device)?;
        if self.kv_cache_per_version == "auto" {
            return Ok(budget / 2);
        }
        let bytes = parse_memory(&self.kv_cache_per_version, budget)
            .map_err(|e| format!("--kv-cache-per-version: {e}"))?;
        Ok(bytes.min(budget))
    }
}
