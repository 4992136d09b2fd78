//! What the handlers share: the served model once it is loaded, and the
//! server's own lifecycle flags.

use crate::engine::EngineHandle;
use crate::model::chat_template::ChatTemplate;
use crate::model::hf::GenerationDefaults;
use crate::model::tokenizer::Tokenizer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub struct ServedModel {
    /// The names clients may send as `model`; responses carry the first.
    pub names: Vec<String>,
    /// `system_fingerprint`: the build and the kernels that answered.
    pub fingerprint: String,
    pub engine: EngineHandle,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    /// Sampling defaults from the model's generation_config.json.
    pub defaults: GenerationDefaults,
    /// max_tokens for requests that name none (None: the rest of the
    /// context window).
    pub default_max_tokens: Option<usize>,
    /// The version serving under `names[0]`: `boot` for a model deployed
    /// from command-line flags (registered versions come with the
    /// registry).
    pub version: String,
    /// Unix seconds the model became ready (`created` in /v1/models).
    pub created: u64,
}

impl ServedModel {
    pub fn name(&self) -> &str {
        &self.names[0]
    }

    /// `model@version`, as the `x-switchyard-model-version` header says.
    pub fn version_label(&self) -> String {
        format!("{}@{}", self.name(), self.version)
    }

    pub fn answers_to(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

pub struct AppState {
    model: OnceLock<Arc<ServedModel>>,
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new() -> Arc<Self> {
        Arc::new(AppState {
            model: OnceLock::new(),
            shutting_down: AtomicBool::new(false),
        })
    }

    pub fn set_model(&self, model: ServedModel) {
        let _ = self.model.set(Arc::new(model));
    }

    pub fn model(&self) -> Option<&Arc<ServedModel>> {
        self.model.get()
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Ready to take traffic: loaded, and not shutting down.
    pub fn is_ready(&self) -> bool {
        self.model.get().is_some() && !self.shutting_down.load(Ordering::Acquire)
    }

    /// Alive: no engine thread has died.
    pub fn is_healthy(&self) -> bool {
        self.model.get().is_none_or(|m| m.engine.is_alive())
    }
}
