//! From tokens back to text, as llama.cpp's `token_to_piece` and
//! `detokenize`: each token's bytes are concatenated, and the bytes become
//! text only at the end, so a character split across tokens survives.

use super::unicode::char_to_byte;
use super::{attr, Tokenizer, TokenizerKind};

/// The bytes of one token with special tokens shown: what llama.cpp caches
/// as `cache_token_to_piece`.
pub(super) fn piece(kind: TokenizerKind, text: &str, attr: u16) -> Vec<u8> {
    if attr & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
        return text.as_bytes().to_vec();
    }
    if attr & attr::NORMAL != 0 {
        return match kind {
            TokenizerKind::Spm => text.replace('▁', " ").into_bytes(),
            TokenizerKind::Bpe => byte_level_decode(text),
            TokenizerKind::HuggingFace | TokenizerKind::Bytes => text.as_bytes().to_vec(),
        };
    }
    if attr & attr::BYTE != 0 {
        return vec![hex_byte(text)];
    }
    Vec::new()
}

/// `<0xNN>` → NN, reading like `strtol(text.substr(3, 2), 16)`.
fn hex_byte(text: &str) -> u8 {
    let digits = text.get(3..).unwrap_or("").bytes().take(2);
    let mut v = 0u32;
    for d in digits {
        match (d as char).to_digit(16) {
            Some(x) => v = v * 16 + x,
            None => break,
        }
    }
    v as u8
}

/// Undoes the byte-level mapping; a character outside the 256 is written
/// as llama.cpp does, `[UNK_BYTE_0x<hex of its UTF-8>` + token text + `]`.
fn byte_level_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
    out
}

impl Tokenizer {
    /// A token's bytes; with `special` false, control and unknown tokens
    /// give nothing.
    pub fn piece(&self, id: u32, special: bool) -> &[u8] {
        let a = self.attr(id);
        if !special && a & (attr::UNKNOWN | attr::CONTROL) != 0 {
            return &[];
        }
        self.token_bytes(id)
    }

    /// llama.cpp's `llama_detokenize`, bytes in, bytes out: `remove_special`
    /// drops a leading BOS and trailing EOS the model adds itself;
    /// `unparse_special` shows control tokens as their text. With a space
    /// prefix (SPM), the first token loses one leading space unless a BOS
    /// was removed. BPE vocabularies that ask for it get
    /// `clean_up_tokenization_spaces`. Ids outside the vocabulary give
    /// nothing.
    pub fn detokenize(&self, ids: &[u32], remove_special: bool, unparse_special: bool) -> Vec<u8> {
        let mut ids = ids;
        let mut remove_space = self.add_space_prefix;
        if remove_special && self.add_bos && ids.first().is_some_and(|&t| Some(t) == self.bos) {
            remove_space = false;
            ids = &ids[1..];
        }
        if remove_special && self.add_eos && ids.last().is_some_and(|&t| Some(t) == self.eos) {
            ids = &ids[..ids.len() - 1];
        }
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let mut p = self.piece(id, unparse_special);
            if remove_space {
                p = p.strip_prefix(b" ").unwrap_or(p);
                remove_space = false;
            }
            out.extend_from_slice(p);
        }
        if self.clean_spaces {
            clean_up_spaces(&mut out);
        }
        out
    }

    /// Text of `ids`: [`Tokenizer::detokenize`] with nothing removed and
    /// control tokens shown unless `skip_special`, then UTF-8 decoded
    /// (invalid bytes become U+FFFD). `decode(encode(x))` gives `x` back for
    /// most text.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        let bytes = self.detokenize(ids, false, !skip_special);
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }
}

/// llama.cpp's three passes, kept byte for byte: drop the space before
/// `?!.,`; drop the spaces around a lone `'`; drop the space before `'s`,
/// `'m`, `'re`, `'ve`.
pub(super) fn clean_up_spaces(text: &mut Vec<u8>) {
    let n = text.len();
    let mut total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            total -= 1;
        }
        text[total] = x;
        total += 1;
    }

    let n = total;
    total = usize::from(n > 0);
    let mut i = 1;
    while i < n {
        let x = text[i];
        if x == b'\'' && i + 1 < n && text[i - 1] == b' ' && text[i + 1] == b' ' {
            total -= 1;
            i += 1;
            text[i] = 0;
        }
        text[total] = x;
        total += 1;
        i += 1;
    }

    let n = total;
    total = usize::from(n > 0);
    for i in 1..n {
        let x = text[i];
        if text[i - 1] == b' ' && x == b'\'' && i + 1 < n {
            let x1 = text[i + 1];
            if matches!(x1, b's' | b'm')
                || (i + 2 < n && matches!((x1, text[i + 2]), (b'r', b'e') | (b'v', b'e')))
            {
                total -= 1;
            }
        }
        text[total] = x;
        total += 1;
    }
    text.truncate(total);
}

/// Streaming detokenization: push tokens one at a time and get back the
/// text that is complete so far. Bytes of a character split across tokens
/// wait for the token that completes it; bytes that can never form a
/// character come out as U+FFFD.
///
/// Each token contributes [`Tokenizer::piece`], as llama.cpp's server
/// streams; `clean_up_tokenization_spaces` is not applied.
/// `T` is any handle to the tokenizer (a reference, an `Arc`).
#[derive(Debug)]
pub struct IncrementalDecoder<T: std::ops::Deref<Target = Tokenizer>> {
    tok: T,
    show_special: bool,
    strip_space: bool,
    pending: Vec<u8>,
}

impl<T: std::ops::Deref<Target = Tokenizer>> IncrementalDecoder<T> {
    /// For tokens that continue earlier text (generated after a prompt):
    /// every piece is taken whole.
    pub fn new(tok: T, skip_special: bool) -> Self {
        IncrementalDecoder {
            tok,
            show_special: !skip_special,
            strip_space: false,
            pending: Vec::new(),
        }
    }

    /// For tokens that start a text, as [`Tokenizer::decode`] reads them:
    /// with a space prefix (SPM), the first token loses one leading space.
    /// A BOS first keeps its own (empty or `<s>`) piece and the space of the
    /// token after it, as in llama.cpp.
    pub fn at_start(tok: T, skip_special: bool) -> Self {
        let strip_space = tok.add_space_prefix;
        IncrementalDecoder {
            strip_space,
            ..Self::new(tok, skip_special)
        }
    }

    /// Adds one token; returns the text it completes (often empty).
    pub fn push(&mut self, id: u32) -> String {
        let mut p = self.tok.piece(id, self.show_special);
        if self.strip_space {
            p = p.strip_prefix(b" ").unwrap_or(p);
            self.strip_space = false;
        }
        self.pending.extend_from_slice(p);
        self.take_complete()
    }

    /// Bytes held back waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Ends the stream: whatever is held back, invalid bytes as U+FFFD.
    pub fn flush(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }

    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: keep it.
                        None => {
                            rest = bad;
                            break;
                        }
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &bad[n..];
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let len = self.pending.len();
        self.pending.drain(..len - keep);
        out
    }
}
