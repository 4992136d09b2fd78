//! Runs a grammar over input bytes, one byte at a time, keeping every way
//! the input so far can be read (a set of stacks, as in llama.cpp's
//! grammar engine), so alternatives that share a prefix (`anyOf` of two
//! objects, optional properties) need no look-ahead.
//!
//! A stack holds positions in the flattened grammar: the top is the byte
//! set to match next, the entries below are where to continue once the
//! rule above them ends. Every stack is kept "settled": its top is a byte
//! set, or the stack is empty, meaning the whole grammar has matched.

use super::rules::{ByteSet, Element, Grammar, RuleId};
use std::sync::Arc;

/// A grammar laid out for matching: every alternative's elements in one
/// array, each alternative ended by `End`.
pub struct Compiled {
    elems: Vec<Flat>,
    /// Start position of each alternative of each rule.
    alts: Vec<Vec<u32>>,
    root: RuleId,
}

#[derive(Debug, Clone, Copy)]
enum Flat {
    Bytes(ByteSet),
    Rule(RuleId),
    End,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Compiled({} rules)", self.alts.len())
    }
}

impl Compiled {
    pub fn new(g: &Grammar) -> Arc<Self> {
        let mut elems = Vec::new();
        let mut alts = Vec::with_capacity(g.len());
        for id in 0..g.len() as RuleId {
            let mut starts = Vec::new();
            for a in g.rule(id) {
                starts.push(elems.len() as u32);
                elems.extend(a.iter().map(|e| match *e {
                    Element::Bytes(s) => Flat::Bytes(s),
                    Element::Rule(r) => Flat::Rule(r),
                }));
                elems.push(Flat::End);
            }
            alts.push(starts);
        }
        Arc::new(Compiled {
            elems,
            alts,
            root: g.root(),
        })
    }

    /// Settles `stack` and pushes every settled form of it to `out`:
    /// finished alternatives are popped, rule references are expanded into
    /// one stack per alternative.
    fn settle(&self, mut stack: Vec<u32>, out: &mut Vec<Vec<u32>>) {
        loop {
            let Some(&top) = stack.last() else {
                out.push(stack);
                return;
            };
            match self.elems[top as usize] {
                Flat::Bytes(_) => {
                    out.push(stack);
                    return;
                }
                Flat::End => {
                    stack.pop();
                }
                Flat::Rule(r) => {
                    stack.pop();
                    // Where to go on once the rule has matched; nothing
                    // when the rule ends this alternative (a tail call, so
                    // right recursion does not deepen the stack).
                    if !matches!(self.elems[top as usize + 1], Flat::End) {
                        stack.push(top + 1);
                    }
                    let alts = &self.alts[r as usize];
                    for (i, &start) in alts.iter().enumerate() {
                        let mut s = if i + 1 == alts.len() {
                            std::mem::take(&mut stack)
                        } else {
                            stack.clone()
                        };
                        s.push(start);
                        self.settle(s, out);
                    }
                    return;
                }
            }
        }
    }
}

/// Where matching stands: every reading of the input so far.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct State {
    stacks: Vec<Vec<u32>>,
}

impl State {
    /// No reading is left: the input so far is not a prefix of anything
    /// the grammar matches.
    pub fn is_dead(&self) -> bool {
        self.stacks.is_empty()
    }

    /// The input so far is a whole match.
    pub fn is_accepting(&self) -> bool {
        self.stacks.iter().any(|s| s.is_empty())
    }

    /// The input so far is a whole match and nothing may follow it.
    pub fn is_complete(&self) -> bool {
        !self.stacks.is_empty() && self.stacks.iter().all(|s| s.is_empty())
    }
}

/// Steps a grammar's states.
#[derive(Debug, Clone)]
pub struct Matcher {
    grammar: Arc<Compiled>,
}

impl Matcher {
    pub fn new(grammar: Arc<Compiled>) -> Self {
        Matcher { grammar }
    }

    /// The state before any input.
    pub fn start(&self) -> State {
        let mut stacks = Vec::new();
        let g = &self.grammar;
        for &start in &g.alts[g.root as usize] {
            g.settle(vec![start], &mut stacks);
        }
        normalize(&mut stacks);
        State { stacks }
    }

    /// The state after one more byte; dead if the byte cannot come next.
    pub fn step(&self, state: &State, byte: u8) -> State {
        let g = &self.grammar;
        let mut stacks = Vec::new();
        for s in &state.stacks {
            let Some(&top) = s.last() else { continue };
            if let Flat::Bytes(set) = g.elems[top as usize] {
                if set.contains(byte) {
                    let mut next = s.clone();
                    next.pop();
                    next.push(top + 1);
                    g.settle(next, &mut stacks);
                }
            }
        }
        normalize(&mut stacks);
        State { stacks }
    }

    /// The state after `bytes`; dead as soon as one cannot come next.
    pub fn feed(&self, state: &State, bytes: &[u8]) -> State {
        let mut s = state.clone();
        for &b in bytes {
            if s.is_dead() {
                break;
            }
            s = self.step(&s, b);
        }
        s
    }

    /// Whether the grammar matches exactly these bytes.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        self.feed(&self.start(), bytes).is_accepting()
    }

    /// Bytes that may come next.
    pub fn next_bytes(&self, state: &State) -> ByteSet {
        let mut set = ByteSet::default();
        for s in &state.stacks {
            if let Some(&top) = s.last() {
                if let Flat::Bytes(b) = self.grammar.elems[top as usize] {
                    set = set.union(b);
                }
            }
        }
        set
    }
}

/// One copy of each reading, in a fixed order, so equal states compare
/// (and hash) equal.
fn normalize(stacks: &mut Vec<Vec<u32>>) {
    stacks.sort_unstable();
    stacks.dedup();
}
