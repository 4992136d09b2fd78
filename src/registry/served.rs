//! One loaded version, as requests see it. A request holds its
//! `Arc<ServedModel>` until it finishes: that is what makes a swap safe.

use crate::engine::EngineHandle;
use crate::model::chat_template::ChatTemplate;
use crate::model::generation::GenerationDefaults;
use crate::model::tokenizer::Tokenizer;
use std::sync::Arc;

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
    /// The version: `boot` for a model deployed from command-line flags,
    /// else the registered version's name.
    pub version: String,
    /// How the weights are held, in words (`as stored`, `converted to q8_0`).
    pub weights: String,
    /// Unix seconds the version became ready (`created` in /v1/models).
    pub created: u64,
    /// Injected failures, for testing rollouts.
    pub faults: super::faults::Faults,
    /// Recent outcomes and latencies, for the canary analysis; the engine
    /// feeds it latencies, the server outcomes (`answered`).
    pub window: Arc<super::rollout::VersionWindow>,
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

    /// A generation request this version answered, for the canary
    /// analysis: failed when the server failed it (5xx), not when the
    /// client sent something wrong.
    pub fn answered(&self, status: u16) {
        self.window.outcome(status < 500);
    }
}
