//! Which tokens may come next under a grammar. The vocabulary is laid out
//! as a trie of token bytes, walked depth-first beside the matcher: a
//! branch is cut at the first byte the grammar refuses, so a state that
//! allows little (between JSON values) costs little, and tokens sharing a
//! prefix are matched once. A state that allows much (inside a string)
//! costs a walk of most of the trie; `Constraint` remembers the answer for
//! each state it has seen, and JSON output revisits the same states over
//! and over.

use super::matcher::{Compiled, Matcher, State};
use crate::model::tokenizer::Tokenizer;
use std::collections::HashMap;
use std::sync::Arc;

/// The vocabulary's tokens by their bytes. Control tokens (`<|im_end|>`)
/// are not in it, whatever their text: they are not text the model writes.
/// End-of-generation tokens are allowed apart, when the grammar accepts.
pub struct TokenTrie {
    /// Node i's children are `edges[first_edge[i]..first_edge[i + 1]]`.
    first_edge: Vec<u32>,
    /// (byte, child node), ascending by byte within a node.
    edges: Vec<(u8, u32)>,
    /// Node i ends the tokens `ends[first_end[i]..first_end[i + 1]]`.
    first_end: Vec<u32>,
    ends: Vec<u32>,
    eog: Vec<u32>,
    vocab_size: usize,
}

impl TokenTrie {
    pub fn new(tokenizer: &Tokenizer) -> Self {
        let vocab_size = tokenizer.vocab_size();
        let mut words: Vec<(&[u8], u32)> = (0..vocab_size as u32)
            .filter(|&id| !tokenizer.is_control(id) && !tokenizer.is_eog(id))
            .map(|id| (tokenizer.token_bytes(id), id))
            .filter(|(b, _)| !b.is_empty())
            .collect();
        words.sort_unstable();
        Self::from_sorted(&words, tokenizer.eog_ids().to_vec(), vocab_size)
    }

    /// Builds from (bytes, token) sorted by bytes: each node's children
    /// are then met in byte order, so nodes can be numbered breadth-first
    /// from a plain tree first.
    fn from_sorted(words: &[(&[u8], u32)], eog: Vec<u32>, vocab_size: usize) -> Self {
        struct Tmp {
            children: Vec<(u8, u32)>,
            ends: Vec<u32>,
        }
        let mut tmp = vec![Tmp {
            children: Vec::new(),
            ends: Vec::new(),
        }];
        for &(bytes, id) in words {
            let mut node = 0usize;
            for &b in bytes {
                node = match tmp[node].children.last() {
                    Some(&(last, child)) if last == b => child as usize,
                    _ => {
                        tmp.push(Tmp {
                            children: Vec::new(),
                            ends: Vec::new(),
                        });
                        let child = (tmp.len() - 1) as u32;
                        tmp[node].children.push((b, child));
                        child as usize
                    }
                };
            }
            tmp[node].ends.push(id);
        }
        let mut first_edge = Vec::with_capacity(tmp.len() + 1);
        let mut first_end = Vec::with_capacity(tmp.len() + 1);
        let mut edges = Vec::new();
        let mut ends = Vec::new();
        for t in &tmp {
            first_edge.push(edges.len() as u32);
            first_end.push(ends.len() as u32);
            edges.extend_from_slice(&t.children);
            ends.extend_from_slice(&t.ends);
        }
        first_edge.push(edges.len() as u32);
        first_end.push(ends.len() as u32);
        TokenTrie {
            first_edge,
            edges,
            first_end,
            ends,
            eog,
            vocab_size,
        }
    }

    fn children(&self, node: u32) -> &[(u8, u32)] {
        let n = node as usize;
        &self.edges[self.first_edge[n] as usize..self.first_edge[n + 1] as usize]
    }

    fn tokens_ending(&self, node: u32) -> &[u32] {
        let n = node as usize;
        &self.ends[self.first_end[n] as usize..self.first_end[n + 1] as usize]
    }

    /// The tokens whose bytes can follow `state`, and the end-of-generation
    /// tokens when the input so far is a whole match.
    pub fn allowed(&self, matcher: &Matcher, state: &State) -> TokenMask {
        let mut mask = TokenMask::empty(self.vocab_size);
        if state.is_accepting() {
            self.eog.iter().for_each(|&t| mask.insert(t));
        }
        let mut todo = vec![(0u32, state.clone())];
        while let Some((node, st)) = todo.pop() {
            let next = matcher.next_bytes(&st);
            for &(byte, child) in self.children(node) {
                if !next.contains(byte) {
                    continue;
                }
                let after = matcher.step(&st, byte);
                if after.is_dead() {
                    continue;
                }
                self.tokens_ending(child)
                    .iter()
                    .for_each(|&t| mask.insert(t));
                if !self.children(child).is_empty() {
                    todo.push((child, after));
                }
            }
        }
        mask
    }
}

/// A set of token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenMask {
    bits: Vec<u64>,
}

impl TokenMask {
    pub fn empty(vocab_size: usize) -> Self {
        TokenMask {
            bits: vec![0; vocab_size.div_ceil(64)],
        }
    }

    pub fn insert(&mut self, id: u32) {
        if let Some(w) = self.bits.get_mut(id as usize / 64) {
            *w |= 1 << (id % 64);
        }
    }

    pub fn contains(&self, id: u32) -> bool {
        self.bits
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// The lowest id in the set.
    pub fn first(&self) -> Option<u32> {
        self.bits
            .iter()
            .enumerate()
            .find(|(_, &w)| w != 0)
            .map(|(i, w)| (i * 64) as u32 + w.trailing_zeros())
    }
}

/// Masks remembered per request; JSON output cycles through few states.
const MASK_CACHE_ENTRIES: usize = 512;

/// One request's grammar state as it generates.
pub struct Constraint {
    matcher: Matcher,
    trie: Arc<TokenTrie>,
    tokenizer: Arc<Tokenizer>,
    state: State,
    cache: HashMap<State, Arc<TokenMask>>,
}

impl Constraint {
    pub fn new(grammar: Arc<Compiled>, trie: Arc<TokenTrie>, tokenizer: Arc<Tokenizer>) -> Self {
        let matcher = Matcher::new(grammar);
        let state = matcher.start();
        Constraint {
            matcher,
            trie,
            tokenizer,
            state,
            cache: HashMap::new(),
        }
    }

    /// The tokens that may come next.
    pub fn allowed(&mut self) -> Arc<TokenMask> {
        if let Some(m) = self.cache.get(&self.state) {
            return m.clone();
        }
        let mask = Arc::new(self.trie.allowed(&self.matcher, &self.state));
        if self.cache.len() >= MASK_CACHE_ENTRIES {
            self.cache.clear();
        }
        self.cache.insert(self.state.clone(), mask.clone());
        mask
    }

    /// Moves past a chosen token. False if the grammar refuses it (the
    /// state is then left as it was).
    pub fn accept(&mut self, token: u32) -> bool {
        if self.tokenizer.is_eog(token) {
            return self.state.is_accepting();
        }
        let next = self
            .matcher
            .feed(&self.state, self.tokenizer.token_bytes(token));
        if next.is_dead() {
            return false;
        }
        self.state = next;
        true
    }

    /// The output is a whole match and nothing may follow it.
    pub fn is_complete(&self) -> bool {
        self.state.is_complete()
    }
}

#[cfg(test)]
#[path = "vocab_tests.rs"]
mod tests;
