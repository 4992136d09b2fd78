//! Turns an artifact into a [`ServedModel`]: checks that it fits in what
//! the process has left, loads the weights, starts its engine on the
//! shared compute pool and KV budget, and answers the golden prompts.

use super::served::ServedModel;
use super::warmup::{self, GoldenPrompt};
use super::RegistryError;
use crate::backend::cpu::{ComputePool, CpuBackend};
use crate::backend::cuda::CudaBackend;
use crate::backend::device::Device;
use crate::backend::{Backend, WeightFormat};
use crate::engine::{self, EngineConfig, KvBudget};
use crate::model::chat_template::ChatTemplate;
use crate::model::ModelSource;
use std::path::Path;
use std::sync::Arc;

/// What every version of this process is loaded with (the serve flags).
#[derive(Clone)]
pub struct LoadSettings {
    pub engine: EngineConfig,
    pub max_model_len: Option<usize>,
    pub default_max_tokens: Option<usize>,
    pub exact_activations: bool,
    /// `--chat-template`: a file or the template itself.
    pub chat_template: Option<String>,
    /// The device every version computes on.
    pub device: Device,
}

pub struct Loader {
    settings: LoadSettings,
    pool: Arc<ComputePool>,
    budget: Arc<KvBudget>,
}

/// One version to load.
pub struct LoadSpec<'a> {
    pub source: &'a ModelSource,
    pub dtype: Option<WeightFormat>,
    /// The names it answers to; empty: the source's own name.
    pub names: Vec<String>,
    pub version: &'a str,
    pub warmup: &'a [GoldenPrompt],
}

impl Loader {
    pub fn new(settings: LoadSettings, pool: Arc<ComputePool>, budget: Arc<KvBudget>) -> Self {
        Loader {
            settings,
            pool,
            budget,
        }
    }

    /// Loads, starts and warms up a version. A version that fails its
    /// golden prompts is stopped and its memory returned.
    pub fn load(&self, spec: LoadSpec) -> Result<ServedModel, RegistryError> {
        self.check_room(spec.source)?;
        let s = &self.settings;
        match &s.device {
            Device::Cpu => self.start(
                CpuBackend::new(self.pool.clone()).with_exact_activations(s.exact_activations),
                spec,
            ),
            Device::Cuda(dev) => self.start(CudaBackend::new(dev.clone()), spec),
        }
    }

    fn start<B: Backend>(&self, backend: B, spec: LoadSpec) -> Result<ServedModel, RegistryError> {
        let started = std::time::Instant::now();
        let s = &self.settings;
        let backend_name = backend.describe();
        let mut loaded = crate::model::loaded::load(spec.source, spec.dtype, &backend)
            .map_err(|e| RegistryError::Artifact(e.to_string()))?;
        if let Some(cap) = s.max_model_len {
            let own = loaded.model.config.context_length;
            if cap == 0 || cap > own {
                return Err(RegistryError::Invalid(format!(
                    "--max-model-len {cap} must be between 1 and the model's context length {own}"
                )));
            }
            loaded.model.config.context_length = cap;
        }
        if let Some(arg) = &s.chat_template {
            loaded.template = Some(chat_template(arg, &loaded.tokenizer)?);
        }
        let mut names = spec.names;
        if names.is_empty() {
            names.push(loaded.name.clone());
        }
        let config = EngineConfig {
            model_name: names[0].clone(),
            version: spec.version.to_owned(),
            ..s.engine.clone()
        };
        let handle = engine::spawn(
            backend,
            loaded.model,
            loaded.tokenizer.clone(),
            &config,
            &self.budget,
        )
        .map_err(|e| RegistryError::NoRoom(e.to_string()))?;
        warmup::run(&handle, &loaded.tokenizer, spec.warmup).map_err(RegistryError::Warmup)?;
        tracing::info!(
            model = %names[0],
            version = spec.version,
            source = ?spec.source,
            weights = %loaded.weights,
            backend = %backend_name,
            kv_tokens = handle.info().kv_tokens,
            max_num_seqs = handle.info().max_num_seqs,
            ms = started.elapsed().as_millis() as u64,
            "version ready"
        );
        Ok(ServedModel {
            names,
            fingerprint: format!(
                "fp_switchyard-{}-{}",
                env!("CARGO_PKG_VERSION"),
                match &s.device {
                    Device::Cpu => crate::backend::cpu::isa::isa().name().to_owned(),
                    Device::Cuda(dev) => format!(
                        "sm_{}{}",
                        dev.info.compute_capability.0, dev.info.compute_capability.1
                    ),
                }
            ),
            default_max_tokens: s.default_max_tokens.filter(|&d| d > 0),
            engine: handle,
            tokenizer: loaded.tokenizer,
            template: loaded.template,
            defaults: loaded.defaults,
            version: spec.version.to_owned(),
            weights: loaded.weights,
            created: crate::server::openai::now_unix(),
            faults: Default::default(),
        })
    }

    /// Refuses before loading anything when the weights would not fit in
    /// the memory the machine has available, or the KV budget is spent.
    fn check_room(&self, source: &ModelSource) -> Result<(), RegistryError> {
        let weights = match source {
            ModelSource::Gguf(p) | ModelSource::HuggingFace(p) => artifact_bytes(p),
            // Dummy weights are generated: their size is the preset's.
            ModelSource::DummyPreset(_) | ModelSource::DummyConfig(_) => 0,
        };
        if let Some(available) = available_memory() {
            if weights > available {
                return Err(RegistryError::NoRoom(format!(
                    "the weights need {} MiB and the machine has {} MiB available",
                    weights >> 20,
                    available >> 20
                )));
            }
        }
        if self.budget.left() == 0 {
            return Err(RegistryError::NoRoom(format!(
                "the KV cache budget ({} MiB) is held by the versions already loaded; unload one first",
                self.budget.total() >> 20
            )));
        }
        Ok(())
    }
}

fn chat_template(
    arg: &str,
    tokenizer: &crate::model::tokenizer::Tokenizer,
) -> Result<ChatTemplate, RegistryError> {
    let source = match std::fs::read_to_string(arg) {
        Ok(text) => text,
        Err(_) if arg.contains("{{") || arg.contains("{%") => arg.to_owned(),
        Err(e) => {
            return Err(RegistryError::Invalid(format!(
                "--chat-template {arg}: {e}"
            )))
        }
    };
    ChatTemplate::for_tokenizer(&source, tokenizer)
        .map_err(|e| RegistryError::Invalid(format!("--chat-template: {e}")))
}

/// Bytes of a file, or of every file in a directory.
pub fn artifact_bytes(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }
}

/// MemAvailable from /proc/meminfo (Linux); None where unknown.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
