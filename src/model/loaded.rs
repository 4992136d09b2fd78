//! Everything needed to serve one GGUF file: weights on a backend, its
//! tokenizer and chat template.

use super::chat_template::ChatTemplate;
use super::config::ModelConfig;
use super::error::Result;
use super::gguf::GgufFile;
use super::llama::Llama;
use super::tokenizer::Tokenizer;
use crate::backend::Backend;
use std::path::Path;
use std::sync::Arc;

pub struct LoadedModel<B: Backend> {
    pub llama: Llama<B>,
    pub tokenizer: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    /// A name for the model: the file's stem.
    pub name: String,
}

/// Opens the file and builds just the tokenizer (for `tokenize`).
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    Tokenizer::from_gguf(&GgufFile::open(path)?)
}

pub fn load<B: Backend>(path: &Path, backend: &B) -> Result<LoadedModel<B>> {
    let file = GgufFile::open(path)?;
    let config = ModelConfig::from_gguf(&file)?;
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let template = match file.get_str_opt("tokenizer.chat_template")? {
        Some(src) => {
            let name = |id: Option<u32>| {
                id.map(|i| tokenizer.token_text(i).to_owned())
                    .unwrap_or_default()
            };
            Some(ChatTemplate::new(
                src,
                &name(tokenizer.bos_id()),
                &name(tokenizer.eos_id()),
            )?)
        }
        None => None,
    };
    let llama = Llama::load(&file, config, backend)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    Ok(LoadedModel {
        llama,
        tokenizer: Arc::new(tokenizer),
        template,
        name,
    })
}
