//! SentencePiece-style BPE, as llama.cpp's `llm_tokenizer_spm_session`:
//! every character starts as a symbol; the adjacent pair whose concatenation
//! is the token with the highest score (leftmost on ties) merges, until no
//! pair forms a token. A symbol left that is no token is spelt in byte
//! tokens (`<0xNN>`).
//!
//! llama.cpp also keeps a map from merged strings back to their halves to
//! re-split symbols that are not tokens; every merged symbol is a token by
//! construction, so only single characters ever fall back, to bytes.

use super::Tokenizer;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug)]
struct Sym {
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
}

#[derive(Clone, Copy, Debug)]
struct Pair {
    score: f32,
    left: u32,
    right: u32,
    size: u32,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pair {}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pair {
    /// Greatest first: highest score, then leftmost.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

#[derive(Default)]
pub struct Scratch {
    syms: Vec<Sym>,
    heap: BinaryHeap<Pair>,
}

/// Appends the tokens of `text`, whose spaces are already `▁`.
pub fn encode(tok: &Tokenizer, text: &str, s: &mut Scratch, out: &mut Vec<u32>) {
    s.syms.clear();
    s.heap.clear();
    for (i, (start, c)) in text.char_indices().enumerate() {
        let end = start + c.len_utf8();
        s.syms.push(Sym {
            start: start as u32,
            len: c.len_utf8() as u32,
            prev: i as i32 - 1,
            next: if end == text.len() { -1 } else { i as i32 + 1 },
        });
    }
    for i in 1..s.syms.len() {
        push_pair(tok, text, s, i as i32 - 1, i as i32);
    }
    while let Some(p) = s.heap.pop() {
        let (l, r) = (p.left as usize, p.right as usize);
        let (left, right) = (s.syms[l], s.syms[r]);
        if left.len == 0 || right.len == 0 || left.len + right.len != p.size {
            continue;
        }
        s.syms[l].len += right.len;
        s.syms[l].next = right.next;
        s.syms[r].len = 0;
        if right.next >= 0 {
            s.syms[right.next as usize].prev = l as i32;
        }
        push_pair(tok, text, s, left.prev, l as i32);
        push_pair(tok, text, s, l as i32, right.next);
    }
    for sym in s.syms.iter().filter(|s| s.len > 0) {
        let piece = &text[sym.start as usize..(sym.start + sym.len) as usize];
        match tok.token_id(piece) {
            Some(id) => out.push(id),
            None => out.extend(piece.bytes().filter_map(|b| tok.byte_tokens[b as usize])),
        }
    }
}

fn push_pair(tok: &Tokenizer, text: &str, s: &mut Scratch, left: i32, right: i32) {
    if left < 0 || right < 0 {
        return;
    }
    let (l, r) = (s.syms[left as usize], s.syms[right as usize]);
    let start = l.start as usize;
    let size = l.len + r.len;
    let Some(id) = tok.token_id(&text[start..start + size as usize]) else {
        return;
    };
    s.heap.push(Pair {
        score: tok.tokens[id as usize].score,
        left: left as u32,
        right: right as u32,
        size,
    });
}
