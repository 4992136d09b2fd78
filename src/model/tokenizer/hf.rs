//! A tokenizer from Hugging Face's `tokenizer.json`: the `tokenizers` crate
//! encodes, exactly as transformers does; the vocabulary is read into the
//! same tables the GGUF tokenizer uses, so decoding, streaming and
//! logprob bytes work the same way for both.

use super::fxhash::FxMap;
use super::{attr, decode, Token, Tokenizer, TokenizerKind};
use crate::model::error::{ModelError, Result};
use serde_json::Value;
use std::path::Path;

/// What the files around `tokenizer.json` say about special tokens.
#[derive(Default)]
pub struct HfSpecials {
    /// `tokenizer_config.json`, if present.
    pub tokenizer_config: Option<Value>,
    /// `bos_token_id` of config.json.
    pub bos_id: Option<u32>,
    /// End-of-sequence ids from config.json and generation_config.json.
    pub eos_ids: Vec<u32>,
}

/// The text of a special token in tokenizer_config.json: a string or an
/// object with `content`.
pub fn special_text(v: &Value) -> Option<&str> {
    v.as_str().or_else(|| v["content"].as_str())
}

impl Tokenizer {
    pub fn from_hf(path: &Path, specials: &HfSpecials) -> Result<Tokenizer> {
        let err = |detail: String| ModelError::Tokenizer {
            path: path.to_path_buf(),
            detail,
        };
        let json = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let hf: tokenizers::Tokenizer = json
            .parse()
            .map_err(|e| err(format!("not a tokenizer.json this build reads: {e}")))?;
        let raw: Value = serde_json::from_str(&json).map_err(|e| err(e.to_string()))?;
        // How a token's vocabulary string maps to bytes follows the decoder.
        let decoder = raw["decoder"].to_string();
        let piece_kind = if decoder.contains("\"ByteLevel\"") {
            TokenizerKind::Bpe
        } else {
            TokenizerKind::Spm
        };
        let byte_fallback = raw["model"]["byte_fallback"] == true;
        let strips_leading_space = decoder.contains("\"Strip\"");

        let vocab = hf.get_vocab(true);
        let n = vocab.values().map(|&i| i as usize + 1).max().unwrap_or(0);
        if n == 0 || n > i32::MAX as usize {
            return Err(err(format!("the vocabulary has {n} tokens")));
        }
        let mut tokens: Vec<Token> = (0..n)
            .map(|i| Token {
                text: format!("[EMPTY_{i}]").into(),
                score: 0.0,
                attr: attr::UNUSED,
            })
            .collect();
        let mut token_to_id: FxMap<Box<str>, u32> = FxMap::default();
        token_to_id.reserve(n);
        for (text, &id) in &vocab {
            let is_byte = byte_fallback && is_byte_token(text);
            tokens[id as usize] = Token {
                text: text.as_str().into(),
                score: 0.0,
                attr: if is_byte { attr::BYTE } else { attr::NORMAL },
            };
            token_to_id.insert(text.as_str().into(), id);
        }
        for (id, added) in hf.get_added_tokens_decoder() {
            let t = &mut tokens[id as usize];
            t.attr = if added.special {
                attr::CONTROL
            } else {
                attr::USER_DEFINED
            };
            if added.lstrip {
                t.attr |= attr::LSTRIP;
            }
            if added.rstrip {
                t.attr |= attr::RSTRIP;
            }
        }

        let config = specials.tokenizer_config.as_ref();
        let by_key = |key: &str| {
            config
                .and_then(|c| special_text(&c[key]))
                .and_then(|t| token_to_id.get(t).copied())
        };
        let bos = by_key("bos_token").or(specials.bos_id);
        let eos = by_key("eos_token").or(specials.eos_ids.first().copied());
        let unk = by_key("unk_token");
        let pad = by_key("pad_token");
        if let Some(u) = unk {
            tokens[u as usize].attr = attr::UNKNOWN;
        }
        let mut eog: Vec<u32> = specials.eos_ids.iter().copied().chain(eos).collect();
        eog.retain(|&id| (id as usize) < n);
        eog.sort_unstable();
        eog.dedup();

        // Whether the post-processor adds BOS / EOS: ask it.
        let probe = hf
            .encode("a", true)
            .map_err(|e| err(format!("cannot encode with it: {e}")))?;
        let ids = probe.get_ids();
        let add_bos = bos.is_some() && ids.first() == bos.as_ref() && ids.len() > 1;
        let add_eos = eos.is_some() && ids.last() == eos.as_ref() && ids.len() > 1;

        let pieces: Vec<Box<[u8]>> = tokens
            .iter()
            .map(|t| decode::piece(piece_kind, &t.text, t.attr).into_boxed_slice())
            .collect();
        let mut special_tokens: Vec<u32> = (0..n as u32)
            .filter(|&i| tokens[i as usize].attr & (attr::CONTROL | attr::USER_DEFINED) != 0)
            .collect();
        special_tokens.sort_by_key(|&i| std::cmp::Reverse(tokens[i as usize].text.len()));
        let byte_tokens = Box::new(std::array::from_fn(|b| {
            token_to_id.get(format!("<0x{b:02X}>").as_str()).copied()
        }));
        Ok(Tokenizer {
            kind: TokenizerKind::HuggingFace,
            pre_name: None,
            rules: &[],
            longest_piece: super::longest_piece(&pieces),
            tokens,
            pieces,
            token_to_id,
            merges: None,
            byte_tokens,
            special_tokens,
            eog,
            bos,
            eos,
            eot: None,
            eom: None,
            unk,
            pad,
            add_bos,
            add_eos,
            add_space_prefix: piece_kind == TokenizerKind::Spm && strips_leading_space,
            ignore_merges: false,
            clean_spaces: false,
            hf: Some(Box::new(hf)),
        })
    }
}

/// `<0xNN>`: a byte-fallback token.
fn is_byte_token(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 6
        && text.starts_with("<0x")
        && text.ends_with('>')
        && b[3..5].iter().all(u8::is_ascii_hexdigit)
}

/// Encodes with the `tokenizers` crate. Special tokens written in the
/// text always become those tokens there, as in transformers.
pub(super) fn encode(hf: &tokenizers::Tokenizer, text: &str, add_special: bool) -> Vec<u32> {
    match hf.encode(text, add_special) {
        Ok(e) => e.get_ids().to_vec(),
        Err(e) => {
            tracing::warn!(error = %e, "tokenizer.json could not encode a text");
            Vec::new()
        }
    }
}
