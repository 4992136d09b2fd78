//! An engine for a model on a device: the engine room builds the backend
//! a [`Device`] computes with (the CPU kernels on the process's one
//! compute pool, or CUDA), loads the weights onto it and starts the
//! engine thread. Rooms above name a device and a model source; none of
//! them touches a backend.

use super::config::{EngineConfig, KvBudget};
use super::error::EngineError;
use super::handle::EngineHandle;
use crate::backend::cpu::{isa, ComputePool, CpuBackend};
use crate::backend::cuda::CudaBackend;
use crate::backend::device::Device;
use crate::backend::{Backend, WeightFormat};
use crate::model::chat_template::ChatTemplate;
use crate::model::generation::GenerationDefaults;
use crate::model::loaded::{load, LoadedModel, ModelSource};
use crate::model::tokenizer::Tokenizer;
use std::sync::Arc;

/// Where engines compute: a device and, for the CPU, the one compute pool
/// every engine of the process shares.
#[derive(Clone)]
pub struct Compute {
    device: Device,
    pool: Arc<ComputePool>,
    /// Quantized weights meet f32 activations on the CPU
    /// (`--exact-activations`).
    exact_activations: bool,
}

impl Compute {
    pub fn new(device: Device, pool: Arc<ComputePool>, exact_activations: bool) -> Self {
        Compute {
            device,
            pool,
            exact_activations,
        }
    }

    /// The CPU with a pool of its own, `threads` wide.
    pub fn cpu(threads: usize, exact_activations: bool) -> Self {
        Compute::new(
            Device::Cpu,
            Arc::new(ComputePool::new(threads)),
            exact_activations,
        )
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `system_fingerprint`: the build and the kernels that answer.
    pub fn fingerprint(&self) -> String {
        let kernels = match &self.device {
            Device::Cpu => isa::isa().name().to_owned(),
            Device::Cuda(dev) => format!(
                "sm_{}{}",
                dev.info.compute_capability.0, dev.info.compute_capability.1
            ),
        };
        format!("fp_switchyard-{}-{kernels}", env!("CARGO_PKG_VERSION"))
    }
}

/// The model an engine is started for.
pub struct ModelSpec<'a> {
    pub source: &'a ModelSource,
    /// Re-encode every weight matrix in this format.
    pub dtype: Option<WeightFormat>,
    /// Cap the context window below the model's own.
    pub max_model_len: Option<usize>,
}

/// A running engine and the text side of its model.
pub struct Started {
    pub handle: EngineHandle,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    pub defaults: GenerationDefaults,
    /// How the weights are held, in words (`as stored`, `converted to q8_0`).
    pub weights: String,
}

/// Loads `model` onto a backend for `compute` and starts its engine.
pub fn start(
    compute: &Compute,
    model: ModelSpec,
    config: &EngineConfig,
    budget: &Arc<KvBudget>,
) -> Result<Started, EngineError> {
    match &compute.device {
        Device::Cpu => {
            let backend = CpuBackend::new(compute.pool.clone())
                .with_exact_activations(compute.exact_activations);
            start_on(backend, model, config, budget)
        }
        Device::Cuda(dev) => start_on(CudaBackend::new(dev.clone()), model, config, budget),
    }
}

fn start_on<B: Backend>(
    backend: B,
    spec: ModelSpec,
    config: &EngineConfig,
    budget: &Arc<KvBudget>,
) -> Result<Started, EngineError> {
    let LoadedModel {
        mut model,
        tokenizer,
        template,
        defaults,
        weights,
        ..
    } = load(spec.source, spec.dtype, &backend)?;
    if let Some(cap) = spec.max_model_len {
        let own = model.config.context_length;
        if cap == 0 || cap > own {
            return Err(EngineError::Config(format!(
                "--max-model-len {cap} must be between 1 and the model's context length {own}"
            )));
        }
        model.config.context_length = cap;
    }
    let handle = super::worker::spawn(backend, model, tokenizer.clone(), config, budget)?;
    Ok(Started {
        handle,
        tokenizer,
        template,
        defaults,
        weights,
    })
}
