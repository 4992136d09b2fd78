//! Everything needed to serve one model: weights on a backend, its
//! tokenizer, chat template and default sampling, from whichever source
//! holds them (a GGUF file, a Hugging Face directory, or dummy weights).

use super::chat_template::ChatTemplate;
use super::config::ModelConfig;
use super::convert::Converted;
use super::dummy::{self, presets, DummyStore};
use super::error::{ModelError, Result};
use super::generation::GenerationDefaults;
use super::gguf::GgufFile;
use super::hf::{self, safetensors::SafetensorsStore};
use super::tensors::TensorStore;
use super::text_side::TextSide;
use super::tokenizer::Tokenizer;
use super::transformer::Transformer;
use crate::backend::{Backend, WeightFormat};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a model comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    Gguf(PathBuf),
    /// A directory with config.json, safetensors and tokenizer.json.
    HuggingFace(PathBuf),
    /// Random weights of a preset's shape.
    DummyPreset(&'static str),
    /// Random weights of the shape a config.json describes (a file, or a
    /// directory holding one).
    DummyConfig(PathBuf),
}

impl ModelSource {
    /// A file or directory on disk, read as weights.
    pub fn from_path(path: &Path) -> Self {
        if path.is_dir() {
            ModelSource::HuggingFace(path.to_path_buf())
        } else {
            ModelSource::Gguf(path.to_path_buf())
        }
    }

    /// `--load-format dummy --model X`: a preset name, a config.json, or a
    /// directory with one.
    pub fn dummy(spec: &str) -> Result<Self> {
        if let Some(p) = presets::find(spec) {
            return Ok(ModelSource::DummyPreset(p.name));
        }
        let path = PathBuf::from(spec);
        if path.is_file() || hf::is_model_dir(&path) {
            return Ok(ModelSource::DummyConfig(path));
        }
        Err(ModelError::InvalidInput(format!(
            "dummy weights need a preset ({}) or a config.json; `{spec}` is neither",
            presets::names()
        )))
    }

    /// The name a model served from here gets by default.
    pub fn default_name(&self) -> String {
        let stem = |p: &Path| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into())
        };
        match self {
            ModelSource::Gguf(p) => stem(p),
            ModelSource::HuggingFace(p) => p
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into()),
            ModelSource::DummyPreset(name) => format!("dummy-{name}"),
            ModelSource::DummyConfig(p) => {
                let dir = if p.is_dir() {
                    Some(p.as_path())
                } else {
                    p.parent()
                };
                format!("dummy-{}", dir.map(stem).unwrap_or_else(|| "model".into()))
            }
        }
    }
}

pub struct LoadedModel<B: Backend> {
    pub model: Transformer<B>,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    /// Sampling defaults for fields a request leaves out.
    pub defaults: GenerationDefaults,
    /// A name for the model (see [`ModelSource::default_name`]).
    pub name: String,
    /// How the weights are held, in words: "as stored", "converted to
    /// q8_0", "dummy bf16".
    pub weights: String,
}

/// Just the tokenizer (for `tokenize`).
pub fn load_tokenizer(source: &ModelSource) -> Result<Tokenizer> {
    Ok(match source {
        ModelSource::Gguf(p) => Tokenizer::from_gguf(&GgufFile::open(p)?)?,
        ModelSource::HuggingFace(dir) => hf::read_text_side(dir, &hf::read_config(dir)?)?.tokenizer,
        ModelSource::DummyPreset(name) => preset(name)?.0.tokenizer,
        ModelSource::DummyConfig(path) => dummy_config(path)?.0.tokenizer,
    })
}

/// Loads `source`; `dtype` re-encodes every weight matrix (dummy weights
/// are generated in it).
pub fn load<B: Backend>(
    source: &ModelSource,
    dtype: Option<WeightFormat>,
    backend: &B,
) -> Result<LoadedModel<B>> {
    let (text, model, weights) = match source {
        ModelSource::Gguf(path) => {
            let file = GgufFile::open(path)?;
            let text = TextSide::from_gguf(&file)?;
            let (model, weights) = build(&file, ModelConfig::from_gguf(&file)?, dtype, backend)?;
            (text, model, weights)
        }
        ModelSource::HuggingFace(dir) => {
            let config = hf::read_config(dir)?;
            let text = hf::read_text_side(dir, &config)?;
            let store = SafetensorsStore::open(dir)?;
            let (model, weights) = build(&store, config.model, dtype, backend)?;
            (text, model, weights)
        }
        ModelSource::DummyPreset(name) => dummy_model(preset(name)?, source, dtype, backend)?,
        ModelSource::DummyConfig(path) => dummy_model(dummy_config(path)?, source, dtype, backend)?,
    };
    Ok(LoadedModel {
        model,
        tokenizer: Arc::new(text.tokenizer),
        template: text.template,
        defaults: text.defaults,
        name: source.default_name(),
        weights,
    })
}

fn build<B: Backend>(
    store: &dyn TensorStore,
    config: ModelConfig,
    dtype: Option<WeightFormat>,
    backend: &B,
) -> Result<(Transformer<B>, String)> {
    match dtype {
        None => Ok((
            Transformer::load(store, config, backend)?,
            "as stored".into(),
        )),
        Some(to) => {
            let converted = Converted { inner: store, to };
            let model = Transformer::load(&converted, config, backend)?;
            Ok((model, format!("converted to {}", to.name())))
        }
    }
}

/// A preset: its shape, the byte tokenizer, its own weight format.
fn preset(name: &str) -> Result<(TextSide, ModelConfig, WeightFormat)> {
    let preset = presets::find(name)
        .ok_or_else(|| ModelError::InvalidInput(format!("unknown preset `{name}`")))?;
    let config = preset.config();
    let text = dummy::byte_text_side(config.vocab_size)?;
    Ok((text, config, preset.format))
}

/// Random weights of `config`'s shape, in `dtype` or the source's own
/// format.
fn dummy_model<B: Backend>(
    (text, config, own_format): (TextSide, ModelConfig, WeightFormat),
    source: &ModelSource,
    dtype: Option<WeightFormat>,
    backend: &B,
) -> Result<(TextSide, Transformer<B>, String)> {
    let format = dtype.unwrap_or(own_format);
    let store = DummyStore {
        config: config.clone(),
        format,
        origin: PathBuf::from(source.default_name()),
        zero_matrices: false,
    };
    let model = Transformer::load(&store, config, backend)?;
    Ok((text, model, format!("dummy {}", format.name())))
}

/// A config.json (or a directory with one): its shape, the tokenizer.json
/// beside it or else the byte tokenizer, and its `torch_dtype`.
fn dummy_config(path: &Path) -> Result<(TextSide, ModelConfig, WeightFormat)> {
    let (dir, file) = if path.is_dir() {
        (path.to_path_buf(), path.join("config.json"))
    } else {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        (dir, path.to_path_buf())
    };
    let json = std::fs::read_to_string(&file).map_err(|source| ModelError::Io {
        path: file.clone(),
        source,
    })?;
    let config = hf::config::parse(&file, &json)?;
    let format = stored_dtype(&json).unwrap_or(WeightFormat::Bf16);
    let text = if dir.join("tokenizer.json").is_file() {
        hf::read_text_side(&dir, &config)?
    } else {
        dummy::byte_text_side(config.model.vocab_size)?
    };
    Ok((text, config.model, format))
}

/// `torch_dtype` (or transformers 5's `dtype`) of a config.json.
fn stored_dtype(config_json: &str) -> Option<WeightFormat> {
    let v: serde_json::Value = serde_json::from_str(config_json).ok()?;
    let name = v["torch_dtype"].as_str().or_else(|| v["dtype"].as_str())?;
    match name {
        "float32" => Some(WeightFormat::F32),
        "float16" => Some(WeightFormat::F16),
        "bfloat16" => Some(WeightFormat::Bf16),
        _ => None,
    }
}

/// What registering an artifact needs to know, read without loading the
/// weights: it fails as loading would on a truncated or corrupt header,
/// an unsupported architecture, or a broken tokenizer.
pub struct ArtifactFacts {
    /// The encoding of most weight bytes (`q4_1`, `f16`, …).
    pub quantization: String,
    pub architecture: String,
}

pub fn inspect(source: &ModelSource) -> Result<ArtifactFacts> {
    match source {
        ModelSource::Gguf(path) => {
            let file = GgufFile::open(path)?;
            let config = ModelConfig::from_gguf(&file)?;
            TextSide::from_gguf(&file)?;
            let mut bytes_by_type: Vec<(&'static str, u64)> = Vec::new();
            for t in file.tensors().iter().filter(|t| t.dims.len() == 2) {
                let name = t.ty.name();
                match bytes_by_type.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, b)) => *b += t.n_bytes,
                    None => bytes_by_type.push((name, t.n_bytes)),
                }
            }
            let quantization = bytes_by_type
                .iter()
                .max_by_key(|(_, b)| *b)
                .map_or("unknown", |(n, _)| n)
                .to_ascii_lowercase();
            Ok(ArtifactFacts {
                quantization,
                architecture: format!("{:?}", config.architecture).to_ascii_lowercase(),
            })
        }
        ModelSource::HuggingFace(dir) => {
            let config = hf::read_config(dir)?;
            hf::read_text_side(dir, &config)?;
            SafetensorsStore::open(dir)?;
            Ok(ArtifactFacts {
                quantization: "safetensors".into(),
                architecture: format!("{:?}", config.model.architecture).to_ascii_lowercase(),
            })
        }
        ModelSource::DummyPreset(_) | ModelSource::DummyConfig(_) => Err(ModelError::InvalidInput(
            "dummy weights cannot be registered as a version".into(),
        )),
    }
}
