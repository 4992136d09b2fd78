//! Cutting special tokens out of the text before tokenizing, as llama.cpp's
//! `tokenizer_st_partition`: special tokens are tried longest first; each
//! one splits every text fragment at all its occurrences, left to right.
//! A token with the `lstrip` attribute eats the white space before it,
//! `rstrip` the white space after it.

use super::{attr, Tokenizer};
use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Bytes of the input still to tokenize.
    Text(Range<usize>),
    Token(u32),
}

/// C's `isspace` on one byte, which llama.cpp strips with.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

pub fn partition(tok: &Tokenizer, text: &str, parse_special: bool) -> Vec<Fragment> {
    let mut frags = Vec::new();
    if text.is_empty() {
        return frags;
    }
    frags.push(Fragment::Text(0..text.len()));
    let bytes = text.as_bytes();
    let pairs = BytePairs::of(bytes);
    let mut next = Vec::new();
    for &id in &tok.special_tokens {
        let t = &tok.tokens[id as usize];
        if !parse_special && t.attr & (attr::CONTROL | attr::UNKNOWN) != 0 {
            // Only user-defined tokens are cut out of plain text.
            continue;
        }
        let needle: &str = &t.text;
        if !pairs.may_contain(needle.as_bytes()) {
            continue;
        }
        let found = frags.iter().any(|f| match f {
            Fragment::Text(r) => text[r.clone()].contains(needle),
            Fragment::Token(_) => false,
        });
        if !found {
            continue;
        }
        next.clear();
        for f in frags.drain(..) {
            let Fragment::Text(r) = f else {
                next.push(f);
                continue;
            };
            let (mut start, end) = (r.start, r.end);
            while let Some(pos) = text[start..end].find(needle) {
                let at = start + pos;
                let mut left_end = at;
                if t.attr & attr::LSTRIP != 0 {
                    while left_end > start && is_c_space(bytes[left_end - 1]) {
                        left_end -= 1;
                    }
                }
                if left_end > start {
                    next.push(Fragment::Text(start..left_end));
                }
                next.push(Fragment::Token(id));
                start = at + needle.len();
                if t.attr & attr::RSTRIP != 0 {
                    while start < end && is_c_space(bytes[start]) {
                        start += 1;
                    }
                }
            }
            if start < end {
                next.push(Fragment::Text(start..end));
            }
        }
        std::mem::swap(&mut frags, &mut next);
    }
    frags
}

/// Which bytes and byte pairs occur in the text: a cheap first test that
/// spares scanning the text for the many special tokens it cannot contain.
struct BytePairs {
    bytes: [u64; 4],
    pairs: Vec<u64>,
}

impl BytePairs {
    fn of(text: &[u8]) -> Self {
        let mut bytes = [0u64; 4];
        let mut pairs = vec![0u64; 65536 / 64];
        for &b in text {
            bytes[b as usize / 64] |= 1 << (b % 64);
        }
        for w in text.windows(2) {
            let i = (w[0] as usize) << 8 | w[1] as usize;
            pairs[i / 64] |= 1 << (i % 64);
        }
        BytePairs { bytes, pairs }
    }

    fn may_contain(&self, needle: &[u8]) -> bool {
        let byte = |b: u8| self.bytes[b as usize / 64] & (1 << (b % 64)) != 0;
        let pair = |w: &[u8]| {
            let i = (w[0] as usize) << 8 | w[1] as usize;
            self.pairs[i / 64] & (1 << (i % 64)) != 0
        };
        needle.iter().all(|&b| byte(b)) && needle.windows(2).all(pair)
    }
}
