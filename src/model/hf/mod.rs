//! Hugging Face model directories: `config.json`, safetensors weights
//! (sharded or not), `tokenizer.json`, `tokenizer_config.json` (chat
//! template, special tokens) and `generation_config.json` (default
//! sampling, end-of-sequence ids).

pub mod config;
pub mod export;
#[cfg(test)]
mod export_test;
pub mod safetensors;

use super::chat_template::ChatTemplate;
use super::error::{ModelError, Result};
use super::generation::GenerationDefaults;
use super::text_side::TextSide;
use super::tokenizer::{special_text, HfSpecials, Tokenizer};
use serde_json::Value;
use std::path::Path;

/// Whether `dir` looks like a Hugging Face model directory.
pub fn is_model_dir(dir: &Path) -> bool {
    dir.is_dir() && dir.join("config.json").is_file()
}

pub(crate) fn read_json(path: &Path) -> Result<Option<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ModelError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ModelError::Malformed {
            path: path.to_path_buf(),
            detail: format!("not JSON: {e}"),
        })
}

pub fn read_config(dir: &Path) -> Result<config::HfConfig> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    config::parse(&path, &text)
}

/// The tokenizer, chat template and generation defaults of a directory.
pub fn read_text_side(dir: &Path, config: &config::HfConfig) -> Result<TextSide> {
    let generation = read_json(&dir.join("generation_config.json"))?;
    let tokenizer_config = read_json(&dir.join("tokenizer_config.json"))?;
    let mut eos_ids = config.eos_ids.clone();
    if let Some(g) = &generation {
        eos_ids.extend(config::token_ids(&g["eos_token_id"]));
    }
    let specials = HfSpecials {
        tokenizer_config,
        bos_id: config.bos_id,
        eos_ids,
    };
    let tokenizer = Tokenizer::from_hf(&dir.join("tokenizer.json"), &specials)?;
    let template = match template_source(dir, specials.tokenizer_config.as_ref())? {
        Some(src) => {
            let text = |key: &str| {
                specials
                    .tokenizer_config
                    .as_ref()
                    .and_then(|c| special_text(&c[key]))
                    .unwrap_or_default()
                    .to_owned()
            };
            Some(ChatTemplate::new(
                &src,
                &text("bos_token"),
                &text("eos_token"),
            )?)
        }
        None => None,
    };
    Ok(TextSide {
        tokenizer,
        template,
        defaults: generation
            .as_ref()
            .map(GenerationDefaults::from_json)
            .unwrap_or_default(),
    })
}

/// The chat template: `chat_template.jinja` (transformers ≥ 4.43 may write
/// it there), else `tokenizer_config.json`'s `chat_template` (a string, or
/// a list of named templates of which `default` is taken).
fn template_source(dir: &Path, tokenizer_config: Option<&Value>) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja)
            .map(Some)
            .map_err(|source| ModelError::Io {
                path: jinja,
                source,
            });
    }
    let Some(t) = tokenizer_config.map(|c| &c["chat_template"]) else {
        return Ok(None);
    };
    Ok(match t {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|e| e["name"] == "default")
            .or_else(|| list.first())
            .and_then(|e| e["template"].as_str())
            .map(str::to_owned),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
