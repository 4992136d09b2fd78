//! JSON strings: characters as exact UTF-8 byte ranges, and keys that
//! must differ from a set of names.

use super::Json;
use crate::engine::grammar::rules::{bytes, literal, seq, ByteSet, Element, RuleId, Seq};

impl Json<'_> {
    /// One character of a string: raw UTF-8 but for `"`, `\` and control
    /// bytes, or an escape. A `\u` escape of a UTF-16 surrogate must come
    /// as a high-low pair (parsers refuse a lone one), and a pair is one
    /// character, as a length counts code points.
    fn chr(&mut self) -> Seq {
        if let Some(c) = &self.chr {
            return c.clone();
        }
        let mut alternatives: Vec<Seq> = utf8_next(BOUNDARY)
            .into_iter()
            .map(|(set, next)| seq([bytes(set), utf8_rest(next)]))
            .collect();
        let hex = || bytes(hex_digits());
        let hex2 = || seq([hex(), hex()]);
        let not_d = ByteSet::range(b'0', b'9').union(ByteSet::of(b"abcefABCEF"));
        let d = || bytes(ByteSet::of(b"dD"));
        let code = self.alt(vec![
            seq([bytes(not_d), hex(), hex2()]),
            seq([d(), bytes(ByteSet::range(b'0', b'7')), hex2()]),
            seq([
                d(),
                bytes(ByteSet::of(b"89abAB")),
                hex2(),
                literal("\\u"),
                d(),
                bytes(ByteSet::range(b'c', b'f').union(ByteSet::range(b'C', b'F'))),
                hex2(),
            ]),
        ]);
        let escaped = self.alt(vec![
            bytes(ByteSet::of(b"\"\\/bfnrt")),
            seq([literal("u"), code]),
        ]);
        alternatives.push(seq([literal("\\"), escaped]));
        let c = vec![Element::Rule(self.rule(alternatives))];
        self.chr = Some(c.clone());
        c
    }

    /// Any number of string characters.
    fn chars(&mut self) -> Seq {
        if let Some(c) = &self.chars {
            return c.clone();
        }
        let chr = self.chr();
        let c = self.star(chr);
        self.chars = Some(c.clone());
        c
    }

    /// A string of `min` to `max` characters (no upper bound on None).
    pub fn string(&mut self, min: usize, max: Option<usize>) -> Seq {
        let body = if (min, max) == (0, None) {
            self.chars()
        } else {
            let chr = self.chr();
            self.repeat(chr, min, max)
        };
        seq([literal("\""), body, literal("\"")])
    }

    /// A string that is none of `names`. It is written without escapes
    /// until it differs from every name, as `\u0061` could spell one.
    /// Walks a trie of the names' bytes beside the UTF-8 decoder state, so
    /// that leaving the trie mid-character still completes the character.
    pub fn string_not_in(&mut self, names: &[&str]) -> Seq {
        if names.is_empty() {
            return self.string(0, None);
        }
        struct Node {
            children: Vec<(u8, usize)>,
            name: bool,
            state: u8,
        }
        let mut trie = vec![Node {
            children: Vec::new(),
            name: false,
            state: BOUNDARY,
        }];
        'names: for name in names.iter() {
            let mut at = 0;
            for &byte in name.as_bytes() {
                if let Some(&(_, child)) = trie[at].children.iter().find(|(b, _)| *b == byte) {
                    at = child;
                    continue;
                }
                let step = utf8_next(trie[at].state)
                    .into_iter()
                    .find(|(s, _)| s.contains(byte));
                // A name that needs an escape (a quote, a control byte)
                // cannot be written without one anyway.
                let Some((_, state)) = step else {
                    continue 'names;
                };
                trie.push(Node {
                    children: Vec::new(),
                    name: false,
                    state,
                });
                let child = trie.len() - 1;
                trie[at].children.push((byte, child));
                at = child;
            }
            trie[at].name = true;
        }
        let chars = self.chars();
        let rest = self.one(seq([chars, literal("\"")]));
        let mut rule_of: Vec<RuleId> = vec![0; trie.len()];
        // Children come after their parent, so backwards meets them first.
        for (i, node) in trie.iter().enumerate().rev() {
            let mut alternatives = Vec::new();
            if node.state == BOUNDARY && !node.name {
                alternatives.push(literal("\""));
            }
            for (set, next) in utf8_next(node.state) {
                let mut left = set;
                for &(byte, child) in &node.children {
                    if set.contains(byte) {
                        left = without(left, byte);
                        let on = vec![Element::Rule(rule_of[child])];
                        alternatives.push(seq([bytes(ByteSet::of(&[byte])), on]));
                    }
                }
                if !left.is_empty() {
                    alternatives.push(seq([bytes(left), utf8_rest(next), rest.clone()]));
                }
            }
            rule_of[i] = self.rule(alternatives);
        }
        seq([literal("\""), vec![Element::Rule(rule_of[0])]])
    }
}

fn hex_digits() -> ByteSet {
    ByteSet::range(b'0', b'9')
        .union(ByteSet::range(b'a', b'f'))
        .union(ByteSet::range(b'A', b'F'))
}

fn without(set: ByteSet, byte: u8) -> ByteSet {
    let mut out = ByteSet::default();
    (0..=255u8)
        .filter(|&b| b != byte && set.contains(b))
        .for_each(|b| out.insert(b));
    out
}

/// UTF-8 decoding states for raw string characters: 0 is a character
/// boundary, 1 to 3 need that many continuation bytes, 4 to 7 need a
/// restricted first continuation byte (after E0, ED, F0, F4: no overlong
/// forms, no surrogates, nothing past U+10FFFF).
const BOUNDARY: u8 = 0;

/// The bytes that may come in a state, each set with the state after it.
fn utf8_next(state: u8) -> Vec<(ByteSet, u8)> {
    let cont = ByteSet::range(0x80, 0xBF);
    match state {
        BOUNDARY => vec![
            // Printable ASCII and DEL, but for `"` and `\`.
            (
                ByteSet::range(0x20, 0x21)
                    .union(ByteSet::range(0x23, 0x5B))
                    .union(ByteSet::range(0x5D, 0x7F)),
                BOUNDARY,
            ),
            (ByteSet::range(0xC2, 0xDF), 1),
            (ByteSet::of(&[0xE0]), 4),
            (
                ByteSet::range(0xE1, 0xEC).union(ByteSet::range(0xEE, 0xEF)),
                2,
            ),
            (ByteSet::of(&[0xED]), 5),
            (ByteSet::of(&[0xF0]), 6),
            (ByteSet::range(0xF1, 0xF3), 3),
            (ByteSet::of(&[0xF4]), 7),
        ],
        1 => vec![(cont, BOUNDARY)],
        2 => vec![(cont, 1)],
        3 => vec![(cont, 2)],
        4 => vec![(ByteSet::range(0xA0, 0xBF), 1)],
        5 => vec![(ByteSet::range(0x80, 0x9F), 1)],
        6 => vec![(ByteSet::range(0x90, 0xBF), 2)],
        _ => vec![(ByteSet::range(0x80, 0x8F), 2)],
    }
}

/// The bytes that finish the character under way in `state`.
fn utf8_rest(mut state: u8) -> Seq {
    let mut out = Seq::new();
    while state != BOUNDARY {
        let Some(&(set, next)) = utf8_next(state).first() else {
            break;
        };
        out.extend(bytes(set));
        state = next;
    }
    out
}
