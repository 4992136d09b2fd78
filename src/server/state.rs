//! What the handlers share: the served model once it is loaded, and the
//! server's own lifecycle flags.

use crate::engine::EngineHandle;
use crate::model::chat_template::ChatTemplate;
use crate::model::tokenizer::Tokenizer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub struct ServedModel {
    /// The name clients send as `model`.
    pub name: String,
    pub engine: EngineHandle,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    /// Unix seconds the model became ready (`created` in /v1/models).
    pub created: u64,
}

pub struct AppState {
    /// The name the model will be served as, known before it loads.
    pub served_name: String,
    model: OnceLock<Arc<ServedModel>>,
    shutting_down: AtomicBool,
}

impl AppState {
    pub fn new(served_name: String) -> Arc<Self> {
        Arc::new(AppState {
            served_name,
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
