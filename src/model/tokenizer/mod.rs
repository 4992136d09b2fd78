//! The tokenizer a GGUF file describes, behaving as llama.cpp's
//! `llama_vocab` does: byte-level BPE (`tokenizer.ggml.model = gpt2`) with
//! its pre-tokenizer (`tokenizer.ggml.pre`), and SentencePiece-style BPE
//! with scores and byte fallback (`llama`).
//!
//! Encoding first cuts special tokens out of the text (`special`), then
//! pre-tokenizes (`split`, `pre`) and tokenizes each remaining piece
//! (`bpe`, `spm`). Decoding concatenates each token's bytes and turns them
//! into text only at the end (`decode`), or as they complete
//! ([`IncrementalDecoder`]).

mod bpe;
mod by_text;
mod bytes;
mod decode;
mod export;
mod fxhash;
mod hf;
mod ids;
mod load;
mod pre;
mod special;
mod split;
mod spm;
mod unicode;
mod unicode_data;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vocab_vectors_test;

pub use bytes::{BOS_TEXT as BYTES_BOS_TEXT, EOS_TEXT as BYTES_EOS_TEXT};
pub use decode::IncrementalDecoder;
pub use export::ExportHints;
pub use hf::{special_text, HfSpecials};

use fxhash::FxMap;
use special::Fragment;
use split::Rule;

/// Token attributes, as llama.cpp's `llama_token_attr` bits.
pub(crate) mod attr {
    pub const UNDEFINED: u16 = 0;
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;
    pub const LSTRIP: u16 = 1 << 7;
    pub const RSTRIP: u16 = 1 << 8;

    /// From `tokenizer.ggml.token_type`.
    pub fn from_type(ty: i64) -> u16 {
        match ty {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => UNDEFINED,
        }
    }
}

/// Which algorithm turns text into tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// Byte-level BPE with merges (`tokenizer.ggml.model = gpt2`).
    Bpe,
    /// SentencePiece-style: scores, `▁` for spaces, `<0xNN>` byte
    /// fallback (`tokenizer.ggml.model = llama`).
    Spm,
    /// Hugging Face `tokenizer.json`, encoded by the `tokenizers` crate.
    HuggingFace,
    /// One token per byte (dummy models).
    Bytes,
}

#[derive(Clone, Debug)]
struct Token {
    text: Box<str>,
    score: f32,
    attr: u16,
}

fn longest_piece(pieces: &[Box<[u8]>]) -> usize {
    pieces.iter().map(|p| p.len()).max().unwrap_or(1)
}

/// A vocabulary and the rules to encode and decode with it. Immutable after
/// loading; share it freely between threads.
#[derive(Debug)]
pub struct Tokenizer {
    kind: TokenizerKind,
    pre_name: Option<String>,
    rules: &'static [Rule],
    tokens: Vec<Token>,
    /// Each token's bytes as it decodes with special tokens shown.
    pieces: Vec<Box<[u8]>>,
    /// The most bytes any token decodes to.
    longest_piece: usize,
    token_to_id: FxMap<Box<str>, u32>,
    merges: Option<bpe::Merges>,
    /// SPM byte fallback: the token of each byte, if any.
    byte_tokens: Box<[Option<u32>; 256]>,
    /// Control, user-defined and unknown tokens, longest text first.
    special_tokens: Vec<u32>,
    eog: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    eom: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    ignore_merges: bool,
    clean_spaces: bool,
    /// The `tokenizers` encoder of a `tokenizer.json`.
    hf: Option<Box<tokenizers::Tokenizer>>,
}

impl Tokenizer {
    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    /// `tokenizer.ggml.pre` as the file gives it.
    pub fn pre_tokenizer(&self) -> Option<&str> {
        self.pre_name.as_deref()
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// Whether `encode` with special tokens starts with BOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos && self.bos.is_some()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    pub fn eot_id(&self) -> Option<u32> {
        self.eot
    }

    pub fn eom_id(&self) -> Option<u32> {
        self.eom
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Whether `encode(.., add_special = true, ..)` puts BOS first.
    pub fn add_bos(&self) -> bool {
        self.add_bos && self.bos.is_some()
    }

    /// Whether `encode(.., add_special = true, ..)` puts EOS last.
    pub fn add_eos(&self) -> bool {
        self.add_eos && self.eos.is_some()
    }

    /// SPM: text gets a leading space before tokenizing.
    pub fn add_space_prefix(&self) -> bool {
        self.add_space_prefix
    }

    /// Whether generating `id` ends generation.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The end-of-generation tokens, ascending.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// Control or user-defined token.
    pub fn is_special(&self, id: u32) -> bool {
        self.attr(id) & (attr::CONTROL | attr::USER_DEFINED) != 0
    }

    /// Control token: decodes to nothing unless special tokens are shown.
    pub fn is_control(&self, id: u32) -> bool {
        self.attr(id) & attr::CONTROL != 0
    }

    fn attr(&self, id: u32) -> u16 {
        self.tokens
            .get(id as usize)
            .map_or(attr::UNDEFINED, |t| t.attr)
    }

    /// The vocabulary string of a token (`▁Hello`, `ĠHello`, `<s>`); empty
    /// for an id outside the vocabulary.
    pub fn token_text(&self, id: u32) -> &str {
        self.tokens.get(id as usize).map_or("", |t| &t.text)
    }

    /// The bytes a token stands for (byte-level mapping undone, `▁` as
    /// space, `<0xNN>` as its byte; special tokens as their text). Empty for
    /// an id outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.pieces.get(id as usize).map_or(&[], |p| p)
    }

    /// At least how many tokens a text of `text_bytes` bytes encodes to,
    /// known without encoding it: a token covers at most the bytes it decodes to (an
    /// unknown character at most 4), and a `tokenizer.json` normalizer
    /// may fold up to 4 bytes into one. A prompt far past any context
    /// window is refused on this before its tokenization costs anything.
    pub fn min_tokens(&self, text_bytes: usize) -> usize {
        let per_token = self.longest_piece.max(4);
        let per_token = if self.hf.is_some() {
            per_token * 4
        } else {
            per_token
        };
        text_bytes.div_ceil(per_token)
    }

    /// The token whose vocabulary string is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    /// Tokenizes `text`. `add_special` adds BOS/EOS as the model asks;
    /// `parse_special` lets control tokens written in the text (`<|im_end|>`)
    /// become those tokens (user-defined tokens always do).
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        if let Some(hf) = &self.hf {
            return hf::encode(hf, text, add_special);
        }
        let fragments = special::partition(self, text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        match self.kind {
            TokenizerKind::Bpe => {
                let mut scratch = bpe::Scratch::default();
                for f in &fragments {
                    match *f {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(ref r) => {
                            self.encode_bpe(&text[r.clone()], &mut scratch, &mut out)
                        }
                    }
                }
            }
            TokenizerKind::Spm => {
                let mut scratch = spm::Scratch::default();
                let mut prev_special = true;
                let mut buf = String::new();
                for f in &fragments {
                    match *f {
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Fragment::Text(ref r) => {
                            buf.clear();
                            if self.add_space_prefix && prev_special {
                                buf.push('▁');
                            }
                            for c in text[r.clone()].chars() {
                                buf.push(if c == ' ' { '▁' } else { c });
                            }
                            spm::encode(self, &buf, &mut scratch, &mut out);
                            prev_special = false;
                        }
                    }
                }
            }
            TokenizerKind::Bytes => {
                for f in &fragments {
                    match *f {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(ref r) => {
                            out.extend(text.as_bytes()[r.clone()].iter().map(|&b| b as u32))
                        }
                    }
                }
            }
            // Encoded by `hf` above.
            TokenizerKind::HuggingFace => {}
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    fn encode_bpe(&self, text: &str, scratch: &mut bpe::Scratch, out: &mut Vec<u32>) {
        let Some(merges) = &self.merges else { return };
        let cpts: Vec<u32> = text.chars().map(|c| c as u32).collect();
        let mut at = 0;
        let mut cpt_at = 0;
        for len in split::split(&cpts, self.rules) {
            let bytes: usize = cpts[cpt_at..cpt_at + len]
                .iter()
                .map(|&c| char::from_u32(c).map_or(1, char::len_utf8))
                .sum();
            let word = &text.as_bytes()[at..at + bytes];
            at += bytes;
            cpt_at += len;
            if self.ignore_merges {
                if let Some(id) = self.byte_level_token(word, scratch) {
                    out.push(id);
                    continue;
                }
            }
            merges.encode_word(word, scratch, out);
        }
    }

    /// The token whose text is `word` in the byte-level alphabet.
    fn byte_level_token(&self, word: &[u8], scratch: &mut bpe::Scratch) -> Option<u32> {
        scratch.text.clear();
        scratch
            .text
            .extend(word.iter().map(|&b| unicode::BYTE_TO_CHAR[b as usize]));
        self.token_id(&scratch.text)
    }
}
