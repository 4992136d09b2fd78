//! A Hugging Face tokenizer written as GGUF metadata (`tokenizer.ggml.*`),
//! for `switchyard quantize` on a checkpoint directory.
//!
//! Two kinds of `tokenizer.json` have a GGUF form: byte-level BPE (GGUF
//! model `gpt2`, with merges and a named pre-tokenizer) and BPE with byte
//! fallback over `▁`-spaced text (GGUF model `llama`, with scores).
//!
//! GGUF names the pre-tokenizer (`tokenizer.ggml.pre`) instead of storing
//! its regular expressions, and llama.cpp's converter recognises a
//! tokenizer by hashing its output on a fixed text, so it knows only the
//! models it lists. Here the name is chosen by behaviour: the vocabulary is
//! loaded once per candidate name, and the candidate that tokenizes a set
//! of probe texts exactly as the `tokenizers` crate does wins. A tokenizer
//! that no candidate reproduces is refused rather than written wrong.

use super::pre::PreTokenizer;
use super::{attr, Tokenizer, TokenizerKind};
use crate::model::gguf::writer::GgufWriter;
use crate::model::gguf::{GgufFile, MetaArray, MetaValue};
use serde_json::Value;

/// `tokenizer.ggml.pre` names with distinct behaviour, most common first:
/// the first that reproduces the probes is written.
const CANDIDATES: &[&str] = &[
    "llama-bpe",
    "qwen2",
    "smollm",
    "gpt-2",
    "qwen35",
    "dbrx",
    "stablelm2",
    "starcoder",
    "trillion",
    "falcon",
    "default",
];

/// Texts on which pre-tokenizers differ: contractions, digit runs,
/// punctuation runs, white space, letters with and without case, marks,
/// CJK, emoji, code. All NFC, as normalizing tokenizers leave them.
const PROBES: &[&str] = &[
    "Hello world! It's a test, isn't it? They'll say we'd've DONE it.",
    "1 12 123 1234 12345 123456789 3.14159 -42 1,000,000 2024-06-01",
    "   leading spaces and    inner   runs\n\n\ttabs\r\nwindows  \n  ",
    "... !!! ??? --- *** ::: ;;; \"quoted\" (parens) [brackets] {braces}",
    "def f(x):\n    return x**2 + 1  # comment\n\nprint(f(3))",
    "if (a && b || !c) { x += 1; } else { y -= 2; } // `code`",
    "naïve café résumé Ångström Straße ÉCOLE ОДИН два Ελληνικά",
    "नमस्ते दुनिया, ภาษาไทย, العربية",
    "你好，世界！日本語のテキスト。한국어 텍스트 123",
    "emoji 🎉🚀 and symbols © ® ™ € £ ¥ → ← ∑ ∞",
    "<html><body class=\"x\">A&amp;B</body></html>",
    "snake_case camelCase PascalCase SCREAMING_CASE kebab-case",
    "'s 't 're 've 'm 'll 'd 'S 'T 'RE",
    "a\n\n\nb \n c\t\t d  \u{a0} e",
];

/// What `tokenizer_config.json` says that the vocabulary does not.
pub struct ExportHints {
    /// Rows of the embedding: the vocabulary is padded to this many
    /// tokens, as llama.cpp requires one token per row.
    pub n_vocab: usize,
    /// `clean_up_tokenization_spaces`, when the config gives it.
    pub clean_spaces: Option<bool>,
}

impl Tokenizer {
    /// The `tokenizer.ggml.*` metadata of a tokenizer read by `from_hf`
    /// from `tokenizer_json` (the file's parsed text).
    pub fn gguf_metadata(
        &self,
        tokenizer_json: &Value,
        hints: &ExportHints,
    ) -> Result<Vec<(String, MetaValue)>, String> {
        if self.hf.is_none() {
            return Err("only a tokenizer.json is written as GGUF metadata here".into());
        }
        let model = &tokenizer_json["model"];
        if model["type"] != "BPE" {
            return Err(format!(
                "tokenizer.json model `{}` has no GGUF form here (BPE only)",
                model["type"].as_str().unwrap_or("?")
            ));
        }
        let byte_level = tokenizer_json["decoder"]
            .to_string()
            .contains("\"ByteLevel\"");
        let byte_fallback = model["byte_fallback"] == true;
        let n = hints.n_vocab.max(self.tokens.len());
        let mut common = vec![];
        let (texts, types) = self.padded_vocab(n);
        common.push(meta_strs("tokenizer.ggml.tokens", texts));
        common.push((
            "tokenizer.ggml.token_type".into(),
            MetaValue::Array(MetaArray::I32(types)),
        ));
        let ids = [
            ("bos_token_id", self.bos),
            ("eos_token_id", self.eos),
            ("unknown_token_id", self.unk),
            ("padding_token_id", self.pad),
        ];
        for (key, id) in ids {
            if let Some(id) = id {
                common.push((format!("tokenizer.ggml.{key}"), MetaValue::U32(id)));
            }
        }
        common.push((
            "tokenizer.ggml.add_bos_token".into(),
            MetaValue::Bool(self.add_bos()),
        ));
        common.push((
            "tokenizer.ggml.add_eos_token".into(),
            MetaValue::Bool(self.add_eos()),
        ));
        if byte_level {
            let merges = merges(model)?;
            let with = |name: &str| {
                let mut m = common.clone();
                m.push(("tokenizer.ggml.model".into(), MetaValue::Str("gpt2".into())));
                m.push(("tokenizer.ggml.pre".into(), MetaValue::Str(name.into())));
                m.push(meta_strs("tokenizer.ggml.merges", merges.clone()));
                m
            };
            let mut matching = Vec::new();
            let hint = likely_name(tokenizer_json);
            let order = hint
                .into_iter()
                .chain(CANDIDATES.iter().copied().filter(|&c| Some(c) != hint));
            for name in order {
                let meta = with(name);
                if self.reproduced_by(&meta)? {
                    matching.push((name, meta));
                }
            }
            if matching.is_empty() {
                return Err(format!(
                    "no pre-tokenizer that GGUF names ({}) tokenizes like this tokenizer.json",
                    CANDIDATES.join(", ")
                ));
            }
            // The first match, or its twin that differs only in cleaning
            // up spaces when decoding, if the config asks for that.
            let behaviour = |name: &str| PreTokenizer::by_name(Some(name));
            let first = behaviour(matching[0].0);
            let twin = hints.clean_spaces.and_then(|clean| {
                matching.iter().position(|(name, _)| {
                    let (Some(p), Some(f)) = (behaviour(name), first) else {
                        return false;
                    };
                    p.rules == f.rules
                        && p.ignore_merges == f.ignore_merges
                        && p.clean_spaces == clean
                })
            });
            let pick = twin.unwrap_or(0);
            Ok(matching.swap_remove(pick).1)
        } else if byte_fallback {
            let scores = self.merge_scores(model, n)?;
            for prefix in [true, false] {
                let mut m = common.clone();
                m.push((
                    "tokenizer.ggml.model".into(),
                    MetaValue::Str("llama".into()),
                ));
                m.push((
                    "tokenizer.ggml.scores".into(),
                    MetaValue::Array(MetaArray::F32(scores.clone())),
                ));
                m.push((
                    "tokenizer.ggml.add_space_prefix".into(),
                    MetaValue::Bool(prefix),
                ));
                if self.reproduced_by(&m)? {
                    return Ok(m);
                }
            }
            Err(
                "the SentencePiece-style tokenizer of GGUF does not tokenize like this \
                 tokenizer.json (with or without a space prefix)"
                    .into(),
            )
        } else {
            Err("a BPE tokenizer.json without byte-level decoding or byte fallback has no GGUF form".into())
        }
    }

    /// Every id up to `n` with its text and GGUF token type; ids without a
    /// token are `[PAD{id}]`, unused, as llama.cpp's converter writes them.
    fn padded_vocab(&self, n: usize) -> (Vec<String>, Vec<i32>) {
        (0..n)
            .map(|id| match self.tokens.get(id) {
                Some(t) if t.attr != attr::UNUSED => (t.text.to_string(), token_type(t.attr)),
                _ => (format!("[PAD{id}]"), 5),
            })
            .unzip()
    }

    /// SentencePiece scores from BPE merges: a token made by an earlier
    /// merge scores higher, so merging by the highest score (llama.cpp's
    /// SPM algorithm) applies the merges in their order. Tokens no merge
    /// makes (characters, bytes, specials) score 0, as they never compete.
    fn merge_scores(&self, model: &Value, n: usize) -> Result<Vec<f32>, String> {
        let mut scores = vec![0f32; n];
        for (rank, line) in merges(model)?.iter().enumerate().rev() {
            let joined: String = line.splitn(2, ' ').collect();
            if let Some(id) = self.token_id(&joined) {
                scores[id as usize] = -(rank as f32) - 1.0;
            }
        }
        Ok(scores)
    }

    /// Whether the tokenizer `meta` describes encodes every probe as this
    /// one does.
    fn reproduced_by(&self, meta: &[(String, MetaValue)]) -> Result<bool, String> {
        let mut w = GgufWriter::new();
        for (k, v) in meta {
            w.meta(k, v.clone());
        }
        let file = GgufFile::from_bytes("(tokenizer being written)", &w.to_bytes())
            .map_err(|e| e.to_string())?;
        let Ok(candidate) = Tokenizer::from_gguf(&file) else {
            return Ok(false);
        };
        // Hugging Face's Metaspace puts no `▁` before a text that starts
        // with a space, where SentencePiece and llama.cpp add one anyway:
        // a difference of the formats that no name can mend, so texts
        // starting with white space are not asked of `llama` vocabularies.
        let spm = candidate.kind == TokenizerKind::Spm;
        Ok(PROBES.iter().all(|p| {
            let p = if spm { p.trim_start() } else { p };
            candidate.encode(p, false, false) == self.encode(p, false, false)
        }))
    }
}

/// The name a pre-tokenizer's definition suggests, tried first: on a small
/// vocabulary several names may reproduce every probe, and then the one
/// written should be the one the definition means.
fn likely_name(tokenizer_json: &Value) -> Option<&'static str> {
    let pre = tokenizer_json["pre_tokenizer"].to_string();
    if pre.contains("p{N}{1,3}") {
        Some("llama-bpe")
    } else if pre.contains("p{N}|") {
        Some("qwen2")
    } else if pre.contains("\"individual_digits\":true") {
        Some("smollm")
    } else if pre.contains("\"use_regex\":true") && !pre.contains("\"Split\"") {
        Some("gpt-2")
    } else {
        None
    }
}

/// GGUF's token type of an attribute set.
fn token_type(a: u16) -> i32 {
    if a & attr::UNKNOWN != 0 {
        2
    } else if a & attr::CONTROL != 0 {
        3
    } else if a & attr::USER_DEFINED != 0 {
        4
    } else if a & attr::BYTE != 0 {
        6
    } else {
        1
    }
}

/// The merges of a BPE model as `"left right"` lines, whichever of the
/// two forms tokenizer.json uses (strings, or pairs since tokenizers 0.20).
fn merges(model: &Value) -> Result<Vec<String>, String> {
    let list = model["merges"]
        .as_array()
        .ok_or("tokenizer.json has no `model.merges` list")?;
    list.iter()
        .map(|m| match m {
            Value::String(s) => Ok(s.clone()),
            Value::Array(pair) => match (
                pair.first().and_then(Value::as_str),
                pair.get(1).and_then(Value::as_str),
            ) {
                (Some(a), Some(b)) if pair.len() == 2 => Ok(format!("{a} {b}")),
                _ => Err(format!("merge {m} is not a pair of strings")),
            },
            _ => Err(format!("merge {m} is neither a string nor a pair")),
        })
        .collect()
}

fn meta_strs(key: &str, v: Vec<String>) -> (String, MetaValue) {
    (key.to_owned(), MetaValue::Array(MetaArray::Str(v)))
}
