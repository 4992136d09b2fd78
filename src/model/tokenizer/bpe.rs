//! Byte-level BPE over one pre-tokenized word, as llama.cpp's
//! `llm_tokenizer_bpe_session`: every byte starts as its own symbol, and the
//! adjacent pair with the lowest merge rank (leftmost on ties) merges until
//! no pair has a rank.
//!
//! Strings are interned at load time: every token and every string a merge
//! names or produces gets an id (tokens keep their own), so merging needs
//! no string hashing at all.

use super::fxhash::FxMap;
use super::unicode::BYTE_TO_CHAR;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A symbol whose string is neither a token nor in any merge.
const NO_ID: u32 = u32::MAX;

#[derive(Debug)]
pub struct Merges {
    /// `(left << 32 | right)` → (rank, id of the merged string).
    ranks: FxMap<u64, (u32, u32)>,
    /// Interned id of each byte's one-character string.
    byte_ids: [u32; 256],
    /// For the rare symbol that is no token: the token of each printable
    /// ASCII byte, which llama.cpp looks up byte by byte.
    ascii_tokens: [u32; 256],
    n_tokens: u32,
}

fn key(left: u32, right: u32) -> u64 {
    (left as u64) << 32 | right as u64
}

impl Merges {
    /// `merges` as in `tokenizer.ggml.merges` ("left right", rank = index;
    /// the first occurrence of a pair wins).
    pub fn new(merges: &[String], token_to_id: &FxMap<Box<str>, u32>, n_tokens: u32) -> Merges {
        let mut extra: FxMap<String, u32> = FxMap::default();
        let mut intern = |s: &str| -> u32 {
            if let Some(&id) = token_to_id.get(s) {
                return id;
            }
            if let Some(&id) = extra.get(s) {
                return id;
            }
            let id = n_tokens + extra.len() as u32;
            extra.insert(s.to_owned(), id);
            id
        };
        let mut ranks = FxMap::default();
        ranks.reserve(merges.len());
        let mut joined = String::new();
        for (rank, line) in merges.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte; a
            // line without one pairs two empty strings.
            let (first, second) = match line.as_bytes().iter().skip(1).position(|&b| b == b' ') {
                Some(p) => (&line[..p + 1], &line[p + 2..]),
                None => ("", ""),
            };
            let (a, b) = (intern(first), intern(second));
            joined.clear();
            joined.push_str(first);
            joined.push_str(second);
            let merged = intern(&joined);
            ranks.entry(key(a, b)).or_insert((rank as u32, merged));
        }
        let mut byte_ids = [NO_ID; 256];
        let mut ascii_tokens = [NO_ID; 256];
        let mut buf = [0u8; 4];
        for b in 0..256 {
            let s = BYTE_TO_CHAR[b].encode_utf8(&mut buf);
            byte_ids[b] = token_to_id
                .get(&*s)
                .or_else(|| extra.get(&*s))
                .copied()
                .unwrap_or(NO_ID);
            if (0x21..=0x7E).contains(&b) {
                ascii_tokens[b] = token_to_id.get(&*s).copied().unwrap_or(NO_ID);
            }
        }
        Merges {
            ranks,
            byte_ids,
            ascii_tokens,
            n_tokens,
        }
    }

    /// Appends the tokens of one word (its original bytes).
    pub fn encode_word(&self, word: &[u8], s: &mut Scratch, out: &mut Vec<u32>) {
        s.syms.clear();
        s.heap.clear();
        let n = word.len();
        for (i, &b) in word.iter().enumerate() {
            s.syms.push(Sym {
                start: i as u32,
                len: 1,
                prev: i as i32 - 1,
                next: if i + 1 == n { -1 } else { i as i32 + 1 },
                id: self.byte_ids[b as usize],
            });
        }
        for i in 1..n {
            self.push_pair(s, i as i32 - 1, i as i32);
        }
        while let Some(Reverse(p)) = s.heap.pop() {
            let (l, r) = (p.left as usize, p.right as usize);
            let (left, right) = (s.syms[l], s.syms[r]);
            if left.len == 0 || right.len == 0 || left.len + right.len != p.size {
                continue; // one side already merged elsewhere
            }
            s.syms[l].len += right.len;
            s.syms[l].id = p.merged;
            s.syms[l].next = right.next;
            s.syms[r].len = 0;
            if right.next >= 0 {
                s.syms[right.next as usize].prev = l as i32;
            }
            self.push_pair(s, left.prev, l as i32);
            self.push_pair(s, l as i32, right.next);
        }
        for sym in s.syms.iter().filter(|s| s.len > 0) {
            if sym.id < self.n_tokens {
                out.push(sym.id);
                continue;
            }
            let bytes = &word[sym.start as usize..(sym.start + sym.len) as usize];
            out.extend(
                bytes
                    .iter()
                    .map(|&b| self.ascii_tokens[b as usize])
                    .filter(|&t| t != NO_ID),
            );
        }
    }

    fn push_pair(&self, s: &mut Scratch, left: i32, right: i32) {
        if left < 0 || right < 0 {
            return;
        }
        let (l, r) = (s.syms[left as usize], s.syms[right as usize]);
        if l.id == NO_ID || r.id == NO_ID {
            return;
        }
        if let Some(&(rank, merged)) = self.ranks.get(&key(l.id, r.id)) {
            s.heap.push(Reverse(Pair {
                rank,
                left: left as u32,
                right: right as u32,
                size: l.len + r.len,
                merged,
            }));
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Sym {
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
    id: u32,
}

/// Field order is the priority: lowest rank, then leftmost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pair {
    rank: u32,
    left: u32,
    right: u32,
    size: u32,
    merged: u32,
}

/// Buffers reused across the words of one `encode` call.
#[derive(Default)]
pub struct Scratch {
    syms: Vec<Sym>,
    heap: BinaryHeap<Reverse<Pair>>,
    pub text: String,
}
