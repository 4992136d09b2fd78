//! A context-free grammar over bytes, the form every constraint (JSON,
//! a JSON Schema, a tool-call envelope) is compiled to before decoding.
//!
//! A grammar is a list of rules; a rule is a list of alternatives; an
//! alternative is a sequence of elements, each either a set of bytes (one
//! byte of input) or a reference to a rule. Working on bytes rather than
//! characters matches how tokens are stored (a byte-level BPE token may
//! hold half a character) and lets the grammar itself require valid UTF-8.
//!
//! Repetition is written as right recursion (`r ::= x r | ε`), which the
//! matcher runs in constant stack depth; left recursion would never end
//! and `build` refuses it.

use std::fmt;

pub type RuleId = u32;

/// A set of byte values: one byte of input matches if it is in the set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    pub fn of(bytes: &[u8]) -> Self {
        let mut s = ByteSet::default();
        bytes.iter().for_each(|&b| s.insert(b));
        s
    }

    /// Every byte from `lo` to `hi`, both included.
    pub fn range(lo: u8, hi: u8) -> Self {
        let mut s = ByteSet::default();
        (lo..=hi).for_each(|b| s.insert(b));
        s
    }

    pub fn insert(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1 << (b & 63);
    }

    pub fn contains(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1 << (b & 63)) != 0
    }

    pub fn union(mut self, other: ByteSet) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }

    /// Every byte not in the set.
    pub fn complement(self) -> Self {
        ByteSet(self.0.map(|w| !w))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }
}

impl fmt::Debug for ByteSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for b in 0..=255u8 {
            if self.contains(b) {
                write!(f, "{}", std::ascii::escape_default(b))?;
            }
        }
        write!(f, "]")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Element {
    /// One byte from the set.
    Bytes(ByteSet),
    /// Whatever the rule matches.
    Rule(RuleId),
}

/// A sequence of elements: one alternative of a rule, or a piece of one.
pub type Seq = Vec<Element>;

/// The sequence matching exactly these bytes.
pub fn literal(s: &str) -> Seq {
    s.bytes()
        .map(|b| Element::Bytes(ByteSet::of(&[b])))
        .collect()
}

/// One byte from the set.
pub fn bytes(set: ByteSet) -> Seq {
    vec![Element::Bytes(set)]
}

/// Concatenation.
pub fn seq<const N: usize>(parts: [Seq; N]) -> Seq {
    parts.into_iter().flatten().collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    #[error("rule {0} was reserved but never defined")]
    Undefined(RuleId),
    #[error("rule {0} has no alternative")]
    Empty(RuleId),
    #[error("rule {0} is left-recursive")]
    LeftRecursive(RuleId),
}

/// A finished grammar: rules checked, root chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grammar {
    pub(super) rules: Vec<Vec<Seq>>,
    pub(super) root: RuleId,
}

impl Grammar {
    pub fn root(&self) -> RuleId {
        self.root
    }

    pub fn rule(&self, id: RuleId) -> &[Seq] {
        &self.rules[id as usize]
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Builds a grammar rule by rule. Rules that refer to themselves (JSON
/// values inside arrays, `$ref` cycles) are `reserve`d first and
/// `define`d later.
#[derive(Default)]
pub struct GrammarBuilder {
    rules: Vec<Option<Vec<Seq>>>,
}

impl GrammarBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A rule id to refer to before the rule is defined.
    pub fn reserve(&mut self) -> RuleId {
        self.rules.push(None);
        (self.rules.len() - 1) as RuleId
    }

    pub fn define(&mut self, id: RuleId, alternatives: Vec<Seq>) {
        self.rules[id as usize] = Some(alternatives);
    }

    /// A new rule with these alternatives.
    pub fn rule(&mut self, alternatives: Vec<Seq>) -> RuleId {
        let id = self.reserve();
        self.define(id, alternatives);
        id
    }

    /// One element matching any of the alternatives.
    pub fn alt(&mut self, alternatives: Vec<Seq>) -> Seq {
        if alternatives.len() == 1 {
            return alternatives.into_iter().flatten().collect();
        }
        vec![Element::Rule(self.rule(alternatives))]
    }

    /// `x` or nothing.
    pub fn optional(&mut self, x: Seq) -> Seq {
        self.alt(vec![x, Vec::new()])
    }

    /// `x` any number of times, none included.
    pub fn star(&mut self, x: Seq) -> Seq {
        let id = self.reserve();
        let mut again = x;
        again.push(Element::Rule(id));
        self.define(id, vec![again, Vec::new()]);
        vec![Element::Rule(id)]
    }

    /// `x` between `min` and `max` times (no upper bound when `max` is
    /// None). A bounded tail is nested optionals, `(x (x (x)?)?)?`, so
    /// that the matcher never holds more than one way to count.
    pub fn repeat(&mut self, x: Seq, min: usize, max: Option<usize>) -> Seq {
        let mut out: Seq = (0..min).flat_map(|_| x.iter().copied()).collect();
        match max {
            None => out.extend(self.star(x)),
            Some(max) => {
                let mut tail = Seq::new();
                for _ in min..max {
                    let mut inner = x.clone();
                    inner.extend(tail);
                    tail = self.optional(inner);
                }
                out.extend(tail);
            }
        }
        out
    }

    /// Checks every rule is defined, non-empty and not left-recursive.
    pub fn build(self, root: RuleId) -> Result<Grammar, GrammarError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (id, r) in self.rules.into_iter().enumerate() {
            match r {
                None => return Err(GrammarError::Undefined(id as RuleId)),
                Some(alts) if alts.is_empty() => return Err(GrammarError::Empty(id as RuleId)),
                Some(alts) => rules.push(alts),
            }
        }
        let g = Grammar { rules, root };
        check_left_recursion(&g)?;
        Ok(g)
    }
}

/// Rules that can match the empty input, to a fixed point.
fn nullable(g: &Grammar) -> Vec<bool> {
    let mut null = vec![false; g.rules.len()];
    loop {
        let mut changed = false;
        for (id, alts) in g.rules.iter().enumerate() {
            if null[id] {
                continue;
            }
            let n = alts.iter().any(|a| {
                a.iter().all(|e| match e {
                    Element::Bytes(_) => false,
                    Element::Rule(r) => null[*r as usize],
                })
            });
            if n {
                null[id] = true;
                changed = true;
            }
        }
        if !changed {
            return null;
        }
    }
}

/// A rule that can reach itself without consuming a byte would send the
/// matcher round forever: refuse it.
fn check_left_recursion(g: &Grammar) -> Result<(), GrammarError> {
    let null = nullable(g);
    // Rules each rule can start with (directly, after nullable prefixes).
    let first: Vec<Vec<RuleId>> = g
        .rules
        .iter()
        .map(|alts| {
            let mut out = Vec::new();
            for a in alts {
                for e in a {
                    match e {
                        Element::Bytes(_) => break,
                        Element::Rule(r) => {
                            out.push(*r);
                            if !null[*r as usize] {
                                break;
                            }
                        }
                    }
                }
            }
            out
        })
        .collect();
    // Depth-first search for a cycle: 0 unseen, 1 on the path, 2 done.
    let mut mark = vec![0u8; g.rules.len()];
    for start in 0..g.rules.len() {
        if mark[start] != 0 {
            continue;
        }
        let mut path = vec![(start, 0usize)];
        mark[start] = 1;
        while let Some((node, i)) = path.last_mut() {
            let node = *node;
            if let Some(&next) = first[node].get(*i) {
                *i += 1;
                match mark[next as usize] {
                    1 => return Err(GrammarError::LeftRecursive(next)),
                    0 => {
                        mark[next as usize] = 1;
                        path.push((next as usize, 0));
                    }
                    _ => {}
                }
            } else {
                mark[node] = 2;
                path.pop();
            }
        }
    }
    Ok(())
}
