//! Turns an artifact into a [`ServedModel`]: checks that it fits in what
//! the process has left, loads the weights, starts its engine on the
//! shared compute pool and KV budget, and answers the golden prompts.

use super::rollout::VersionWindow;
use super::served::ServedModel;
use super::warmup::{self, GoldenPrompt};
use super::RegistryError;
use crate::engine::{self, Compute, EngineConfig, EngineError, KvBudget, LatencyFeed, ModelSpec};
use crate::model::chat_template::ChatTemplate;
use crate::model::{ModelSource, WeightFormat};
use crate::store::now_unix;
use std::path::Path;
use std::sync::Arc;

/// What every version of this process is loaded with (the serve flags).
#[derive(Clone)]
pub struct LoadSettings {
    pub engine: EngineConfig,
    pub max_model_len: Option<usize>,
    pub default_max_tokens: Option<usize>,
    /// `--chat-template`: a file or the template itself.
    pub chat_template: Option<String>,
}

pub struct Loader {
    settings: LoadSettings,
    /// The device every version computes on, and the CPU's one pool.
    compute: Compute,
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
    pub fn new(settings: LoadSettings, compute: Compute, budget: Arc<KvBudget>) -> Self {
        Loader {
            settings,
            compute,
            budget,
        }
    }

    /// Loads, starts and warms up a version, its latencies fed to
    /// `window`. A version that fails its golden prompts is stopped and
    /// its memory returned.
    pub(super) fn load(
        &self,
        spec: LoadSpec,
        window: Arc<VersionWindow>,
    ) -> Result<ServedModel, RegistryError> {
        self.check_room(spec.source)?;
        let started = std::time::Instant::now();
        let s = &self.settings;
        let mut names = spec.names;
        if names.is_empty() {
            names.push(spec.source.default_name());
        }
        let config = EngineConfig {
            model_name: names[0].clone(),
            version: spec.version.to_owned(),
            latency: LatencyFeed(Some(window.clone())),
            ..s.engine.clone()
        };
        let model = ModelSpec {
            source: spec.source,
            dtype: spec.dtype,
            max_model_len: s.max_model_len,
        };
        let engine::Started {
            handle,
            tokenizer,
            mut template,
            defaults,
            weights,
        } = engine::start(&self.compute, model, &config, &self.budget).map_err(|e| match e {
            EngineError::Load(why) => RegistryError::Artifact(why),
            EngineError::Config(why) => RegistryError::Invalid(why),
            other => RegistryError::NoRoom(other.to_string()),
        })?;
        if let Some(arg) = &s.chat_template {
            template = Some(chat_template(arg, &tokenizer)?);
        }
        warmup::run(&handle, &tokenizer, spec.warmup).map_err(RegistryError::Warmup)?;
        tracing::info!(
            model = %names[0],
            version = spec.version,
            source = ?spec.source,
            weights = %weights,
            backend = %handle.info().backend,
            kv_tokens = handle.info().kv_tokens,
            max_num_seqs = handle.info().max_num_seqs,
            ms = started.elapsed().as_millis() as u64,
            "version ready"
        );
        Ok(ServedModel {
            names,
            fingerprint: self.compute.fingerprint(),
            default_max_tokens: s.default_max_tokens.filter(|&d| d > 0),
            engine: handle,
            tokenizer,
            template,
            defaults,
            version: spec.version.to_owned(),
            weights,
            created: now_unix(),
            faults: Default::default(),
            window,
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
