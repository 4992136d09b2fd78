//! Dummy weights, as vLLM's `--load-format dummy`: a model of a known
//! shape (a preset, or any supported config.json) with deterministic
//! random weights and no weight files, for tests, load tests and
//! benchmarks. Its tokenizer is the directory's `tokenizer.json` when the
//! config has one beside it, else a byte tokenizer of the model's
//! vocabulary.

pub mod presets;
mod store;

pub use store::DummyStore;

use super::chat_template::ChatTemplate;
use super::error::Result;
use super::text_side::TextSide;
use super::tokenizer::Tokenizer;

/// ChatML written as plain text, which the byte tokenizer spells out.
const BYTE_CHAT_TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n\
{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}\
{{ p['text'] }}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// The byte tokenizer and its chat template.
pub fn byte_text_side(vocab_size: usize) -> Result<TextSide> {
    let tokenizer = Tokenizer::bytes(vocab_size);
    let template = ChatTemplate::for_tokenizer(BYTE_CHAT_TEMPLATE, &tokenizer)?;
    Ok(TextSide {
        tokenizer,
        template: Some(template),
        defaults: Default::default(),
    })
}

#[cfg(test)]
mod tests;
