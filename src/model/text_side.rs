//! The text side of a model: its tokenizer, chat template and default
//! sampling, whichever file they come from.

use super::chat_template::ChatTemplate;
use super::error::Result;
use super::generation::GenerationDefaults;
use super::gguf::GgufFile;
use super::tokenizer::Tokenizer;

pub struct TextSide {
    pub tokenizer: Tokenizer,
    pub template: Option<ChatTemplate>,
    pub defaults: GenerationDefaults,
}

impl TextSide {
    /// A GGUF file's tokenizer and `tokenizer.chat_template`; GGUF carries
    /// no sampling defaults.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let tokenizer = Tokenizer::from_gguf(file)?;
        let template = match file.get_str_opt("tokenizer.chat_template")? {
            Some(src) => Some(ChatTemplate::for_tokenizer(src, &tokenizer)?),
            None => None,
        };
        Ok(TextSide {
            tokenizer,
            template,
            defaults: GenerationDefaults::default(),
        })
    }
}
