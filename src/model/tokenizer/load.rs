//! Building a [`Tokenizer`] from GGUF metadata, following llama.cpp's
//! `llama_vocab::impl::load`: defaults per model type, special token ids,
//! the tokens found by their text (EOT, FIM, end-of-generation), and the
//! attribute fix-ups llama.cpp applies.

use super::by_text::find_by_text;
use super::fxhash::FxMap;
use super::ids::*;
use super::pre::PreTokenizer;
use super::{attr, bpe, decode, Token, Tokenizer, TokenizerKind};
use crate::model::error::{ModelError, Result};
use crate::model::gguf::{GgufFile, MetaArray};

/// Keys in llama.cpp's order; the last three are deprecated spellings of
/// the FIM prefix/suffix/middle ids and read after the others.
const SPECIAL_KEYS: &[(&str, usize)] = &[
    ("bos_token_id", BOS),
    ("eos_token_id", EOS),
    ("eot_token_id", EOT),
    ("eom_token_id", EOM),
    ("unknown_token_id", UNK),
    ("seperator_token_id", 5),
    ("padding_token_id", PAD),
    ("mask_token_id", 7),
    ("fim_pre_token_id", FIM_PRE),
    ("fim_suf_token_id", FIM_SUF),
    ("fim_mid_token_id", FIM_MID),
    ("fim_pad_token_id", FIM_PAD),
    ("fim_rep_token_id", FIM_REP),
    ("fim_sep_token_id", FIM_SEP),
    ("prefix_token_id", FIM_PRE),
    ("suffix_token_id", FIM_SUF),
    ("middle_token_id", FIM_MID),
];

impl Tokenizer {
    /// Reads the tokenizer a GGUF file describes. Errors name the file and
    /// say what is wrong: an unsupported model or pre-tokenizer, missing
    /// tokens or merges, scores or types shorter than the vocabulary.
    pub fn from_gguf(f: &GgufFile) -> Result<Tokenizer> {
        let err = |detail: String| ModelError::Tokenizer {
            path: f.path().to_path_buf(),
            detail,
        };
        let model = f.get_str("tokenizer.ggml.model")?;
        let pre_name = f.get_str_opt("tokenizer.ggml.pre")?;
        let mut ids = Ids::default();
        let (kind, pre) = match model {
            "llama" => {
                ids.0[BOS] = Some(1);
                ids.0[EOS] = Some(2);
                ids.0[UNK] = Some(0);
                (TokenizerKind::Spm, None)
            }
            "gpt2" => {
                let pre = PreTokenizer::by_name(pre_name).ok_or_else(|| {
                    err(format!(
                        "pre-tokenizer `{}` is not supported (supported include default, gpt-2, llama-bpe, \
                         llama3, qwen2, qwen35, starcoder, smollm, falcon, mpt, refact, command-r)",
                        pre_name.unwrap_or_default()
                    ))
                })?;
                ids.0[BOS] = (!pre.no_bos).then_some(11);
                ids.0[EOS] = Some(11);
                (TokenizerKind::Bpe, Some(pre))
            }
            other => {
                return Err(err(format!(
                    "tokenizer model `{other}` is not supported (supported: gpt2, llama)"
                )))
            }
        };
        let spm = kind == TokenizerKind::Spm;
        let add_space_prefix = f.get_bool_or("tokenizer.ggml.add_space_prefix", spm)?;

        let texts = f.get_str_array("tokenizer.ggml.tokens")?;
        let n = texts.len();
        if n == 0 || n > i32::MAX as usize {
            return Err(err(format!("the vocabulary has {n} tokens")));
        }
        let scores = read_scores(f, n).map_err(err)?;
        let types = match f.get("tokenizer.ggml.token_type") {
            None => None,
            Some(_) => Some(f.get_int_array("tokenizer.ggml.token_type")?),
        };
        if let Some(t) = &types {
            if t.len() < n {
                return Err(err(format!("{} token types for {n} tokens", t.len())));
            }
        }
        let mut tokens = Vec::with_capacity(n);
        let mut token_to_id: FxMap<Box<str>, u32> = FxMap::default();
        token_to_id.reserve(n);
        for (i, text) in texts.iter().enumerate() {
            let text: Box<str> = if text.is_empty() {
                format!("[EMPTY_{i}]").into()
            } else {
                text.as_str().into()
            };
            token_to_id.insert(text.clone(), i as u32);
            tokens.push(Token {
                text,
                score: scores.as_ref().map_or(0.0, |s| s[i]),
                attr: types
                    .as_ref()
                    .map_or(attr::NORMAL, |t| attr::from_type(t[i])),
            });
        }

        // Special ids: defaults out of range are dropped; a file's id out of
        // range keeps the default.
        for id in ids.0.iter_mut() {
            if id.is_some_and(|v| v as usize >= n) {
                *id = None;
            }
        }
        for &(key, slot) in SPECIAL_KEYS {
            let v = f
                .get(&format!("tokenizer.ggml.{key}"))
                .and_then(|v| v.as_u64());
            if let Some(v) = v.filter(|&v| v < n as u64) {
                ids.0[slot] = Some(v as u32);
            }
        }
        let add_bos = f.get_bool_or(
            "tokenizer.ggml.add_bos_token",
            spm || pre.is_some_and(|p| p.add_bos),
        )?;
        let add_eos = f.get_bool_or("tokenizer.ggml.add_eos_token", false)?;

        let eog = find_by_text(&mut tokens, &token_to_id, &mut ids);
        let mut special_tokens: Vec<u32> = (0..n as u32)
            .filter(|&i| {
                tokens[i as usize].attr & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        special_tokens.sort_by_key(|&i| std::cmp::Reverse(tokens[i as usize].text.len()));
        let pieces: Vec<Box<[u8]>> = tokens
            .iter()
            .map(|t| decode::piece(kind, &t.text, t.attr).into_boxed_slice())
            .collect();
        per_model_attrs(f, &mut tokens, &token_to_id, &special_tokens);

        let merges = match kind {
            TokenizerKind::Bpe => {
                let lines = f
                    .get_str_array("tokenizer.ggml.merges")
                    .map_err(|e| err(format!("byte-level BPE needs merges: {e}")))?;
                Some(bpe::Merges::new(lines, &token_to_id, n as u32))
            }
            _ => None,
        };
        let byte_tokens = Box::new(std::array::from_fn(|b| {
            let hex = format!("<0x{b:02X}>");
            token_to_id
                .get(hex.as_str())
                .or_else(|| {
                    char::from_u32(b as u32)
                        .filter(|_| b < 128)
                        .and_then(|c| token_to_id.get(c.to_string().as_str()))
                })
                .copied()
                .or(ids.0[UNK])
        }));
        let pre_rules = pre.map_or(&[][..], |p| p.rules);
        Ok(Tokenizer {
            kind,
            pre_name: pre_name.map(str::to_owned),
            rules: pre_rules,
            longest_piece: super::longest_piece(&pieces),
            tokens,
            pieces,
            token_to_id,
            merges,
            byte_tokens,
            special_tokens,
            eog,
            bos: ids.0[BOS],
            eos: ids.0[EOS],
            eot: ids.0[EOT],
            eom: ids.0[EOM],
            unk: ids.0[UNK],
            pad: ids.0[PAD],
            add_bos,
            add_eos,
            add_space_prefix,
            ignore_merges: pre.is_some_and(|p| p.ignore_merges),
            clean_spaces: pre.is_some_and(|p| p.clean_spaces),
            hf: None,
        })
    }
}

fn read_scores(f: &GgufFile, n: usize) -> std::result::Result<Option<Vec<f32>>, String> {
    let Some(v) = f.get("tokenizer.ggml.scores") else {
        return Ok(None);
    };
    let scores: Vec<f32> = match v.as_array() {
        Some(MetaArray::F32(s)) => s.clone(),
        Some(MetaArray::I32(s)) => s.iter().map(|&x| x as f32).collect(),
        _ => return Err("tokenizer.ggml.scores is not an array of f32 or i32".into()),
    };
    if scores.len() < n {
        return Err(format!("{} scores for {n} tokens", scores.len()));
    }
    Ok(Some(scores))
}

/// llama.cpp's per-model attributes: phi-3's special tokens eat the white
/// space after them; some encoders' mask token the white space before.
fn per_model_attrs(
    f: &GgufFile,
    tokens: &mut [Token],
    token_to_id: &FxMap<Box<str>, u32>,
    special: &[u32],
) {
    let name = f
        .get_str_opt("general.name")
        .ok()
        .flatten()
        .unwrap_or("")
        .to_ascii_lowercase();
    let pre = f
        .get_str_opt("tokenizer.ggml.pre")
        .ok()
        .flatten()
        .unwrap_or("");
    let arch = f
        .get_str_opt("general.architecture")
        .ok()
        .flatten()
        .unwrap_or("");
    let set = |tokens: &mut [Token], text: &str, bit: u16, on: bool| {
        if let Some(&id) = token_to_id.get(text) {
            let a = &mut tokens[id as usize].attr;
            *a = if on { *a | bit } else { *a & !bit };
        }
    };
    let any = |s: &str, subs: &[&str]| subs.iter().any(|x| s.contains(x));
    if any(pre, &["jina-v2-de", "jina-v2-es", "jina-v2-code"])
        || any(arch, &["nomic-bert-moe", "jina-bert-v3"])
    {
        set(tokens, "<mask>", attr::LSTRIP, true);
    } else if any(&name, &["phi-3", "phi3"]) {
        for &id in special {
            tokens[id as usize].attr |= attr::RSTRIP;
        }
        set(tokens, "</s>", attr::RSTRIP, true);
        for t in ["<unk>", "<s>", "<|endoftext|>"] {
            set(tokens, t, attr::RSTRIP, false);
        }
    } else if name.contains("modern-bert") {
        set(tokens, "[MASK]", attr::LSTRIP, true);
    }
}
