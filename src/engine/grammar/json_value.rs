//! JSON text as grammar pieces: whitespace, strings, numbers, objects and
//! arrays. `json_schema` decides what goes in them; this file decides how
//! the text is laid out.
//!
//! Every repetition a model could run on with (whitespace, digits) is
//! bounded: under a grammar a small model that starts writing spaces or
//! digits may never choose to stop, and only a bound makes it. Strings,
//! objects and arrays stay unbounded unless the schema bounds them, as
//! their content is the answer itself.
//!
//! The grammars are unambiguous wherever the layout allows it (no two
//! optional whitespaces side by side, optional properties chained so a
//! comma has one reading), because every reading is a stack the matcher
//! carries along.

use super::rules::{bytes, literal, seq, ByteSet, Element, GrammarBuilder, RuleId, Seq};

/// Spaces or tabs after a newline: indentation of pretty-printed JSON up
/// to 8 levels of 2 spaces (or 16 of tabs).
const MAX_INDENT: usize = 16;
/// Digits of an integer part and of a fraction: more than an f64 holds.
const MAX_INT_DIGITS: usize = 16;
const MAX_FRAC_DIGITS: usize = 16;
/// Exponent digits: f64 exponents go to 308.
const MAX_EXP_DIGITS: usize = 3;

#[path = "json_string.rs"]
mod string;

#[cfg(test)]
#[path = "json_value_tests.rs"]
mod tests;

/// One property of an object, in the order it must be written.
pub(super) struct Member {
    pub name: String,
    pub value: Seq,
    pub required: bool,
}

/// Builds JSON pieces into a grammar, sharing the common ones (whitespace,
/// a string character, any value) and counting the rules it adds so that a
/// schema can be refused before it grows without end.
pub(super) struct Json<'b> {
    b: &'b mut GrammarBuilder,
    added: usize,
    ws: Option<Seq>,
    value: Option<Seq>,
    chr: Option<Seq>,
    chars: Option<Seq>,
    int_part: Option<Seq>,
    frac_exp: Option<Seq>,
}

impl<'b> Json<'b> {
    pub fn new(b: &'b mut GrammarBuilder) -> Self {
        Json {
            b,
            added: 0,
            ws: None,
            value: None,
            chr: None,
            chars: None,
            int_part: None,
            frac_exp: None,
        }
    }

    /// Rules added so far.
    pub fn added(&self) -> usize {
        self.added
    }

    pub fn reserve(&mut self) -> RuleId {
        self.added += 1;
        self.b.reserve()
    }

    pub fn define(&mut self, id: RuleId, alternatives: Vec<Seq>) {
        self.b.define(id, alternatives);
    }

    pub fn rule(&mut self, alternatives: Vec<Seq>) -> RuleId {
        self.added += 1;
        self.b.rule(alternatives)
    }

    pub fn alt(&mut self, alternatives: Vec<Seq>) -> Seq {
        self.added += usize::from(alternatives.len() != 1);
        self.b.alt(alternatives)
    }

    fn optional(&mut self, x: Seq) -> Seq {
        self.added += 1;
        self.b.optional(x)
    }

    fn star(&mut self, x: Seq) -> Seq {
        self.added += 1;
        self.b.star(x)
    }

    /// Rules `repeat` adds (see `GrammarBuilder::repeat`).
    pub fn repeat_cost(min: usize, max: Option<usize>) -> usize {
        max.map_or(1, |max| max.saturating_sub(min))
    }

    /// `x` between `min` and `max` times; `x` is made one element first so
    /// that the copies stay small.
    fn repeat(&mut self, x: Seq, min: usize, max: Option<usize>) -> Seq {
        let x = self.one(x);
        self.added += Self::repeat_cost(min, max);
        self.b.repeat(x, min, max)
    }

    /// The same sequence as at most one element.
    fn one(&mut self, x: Seq) -> Seq {
        if x.len() <= 1 {
            return x;
        }
        vec![Element::Rule(self.rule(vec![x]))]
    }

    /// Between tokens: nothing, one space, or a newline and indentation.
    pub fn ws(&mut self) -> Seq {
        if let Some(ws) = &self.ws {
            return ws.clone();
        }
        let indent = self.repeat(bytes(ByteSet::of(b" \t")), 0, Some(MAX_INDENT));
        let ws = vec![Element::Rule(self.rule(vec![
            Seq::new(),
            literal(" "),
            seq([literal("\n"), indent]),
        ]))];
        self.ws = Some(ws.clone());
        ws
    }

    /// Any JSON value.
    pub fn value(&mut self) -> Seq {
        if let Some(v) = &self.value {
            return v.clone();
        }
        let id = self.reserve();
        let value = vec![Element::Rule(id)];
        self.value = Some(value.clone());
        let object = self.object(Vec::new(), Some(value.clone()));
        let array = self.array(Vec::new(), Some(value), 0, None);
        let alternatives = vec![
            object,
            array,
            self.string(0, None),
            self.number(false),
            literal("true"),
            literal("false"),
            literal("null"),
        ];
        self.define(id, alternatives);
        vec![Element::Rule(id)]
    }

    /// `0` or up to 16 digits without a leading zero.
    fn int_part(&mut self) -> Seq {
        if let Some(i) = &self.int_part {
            return i.clone();
        }
        let more = self.repeat(digits(), 0, Some(MAX_INT_DIGITS - 1));
        let i = self.alt(vec![
            literal("0"),
            seq([bytes(ByteSet::range(b'1', b'9')), more]),
        ]);
        self.int_part = Some(i.clone());
        i
    }

    /// A number; without a minus sign when `non_negative`.
    pub fn number(&mut self, non_negative: bool) -> Seq {
        let int_part = self.int_part();
        let frac_exp = match &self.frac_exp {
            Some(f) => f.clone(),
            None => {
                let frac = self.repeat(digits(), 1, Some(MAX_FRAC_DIGITS));
                let frac = self.optional(seq([literal("."), frac]));
                let sign = self.optional(bytes(ByteSet::of(b"+-")));
                let exp = self.repeat(digits(), 1, Some(MAX_EXP_DIGITS));
                let exp = self.optional(seq([bytes(ByteSet::of(b"eE")), sign, exp]));
                let f = self.one(seq([frac, exp]));
                self.frac_exp = Some(f.clone());
                f
            }
        };
        seq([self.sign(non_negative), int_part, frac_exp])
    }

    fn sign(&mut self, non_negative: bool) -> Seq {
        if non_negative {
            Seq::new()
        } else {
            self.optional(literal("-"))
        }
    }

    /// An integer, without fraction or exponent; at least `min` when given
    /// (which must be below 10^15).
    pub fn integer(&mut self, min: Option<u64>) -> Seq {
        let Some(min) = min.filter(|&m| m > 0) else {
            let sign = self.sign(min.is_some());
            return seq([sign, self.int_part()]);
        };
        // More digits than `min`, or as many and greater at the first
        // digit that differs, or `min` itself.
        let text = min.to_string();
        let len = text.len();
        let mut alternatives = vec![literal(&text)];
        if len < MAX_INT_DIGITS {
            let more = self.repeat(digits(), len, Some(MAX_INT_DIGITS - 1));
            alternatives.push(seq([bytes(ByteSet::range(b'1', b'9')), more]));
        }
        for (i, d) in text.bytes().enumerate() {
            if d < b'9' {
                let tail = self.repeat(digits(), len - i - 1, Some(len - i - 1));
                let higher = bytes(ByteSet::range(d + 1, b'9'));
                alternatives.push(seq([literal(&text[..i]), higher, tail]));
            }
        }
        self.alt(alternatives)
    }

    /// An object holding `members` in their order, the required ones
    /// always, then (given a value for them) any number of other keys.
    /// Built from the end: `after` is what may follow once something was
    /// written (each piece starting with a comma), `first` what may come
    /// when nothing was yet.
    pub fn object(&mut self, members: Vec<Member>, others: Option<Seq>) -> Seq {
        let ws = self.ws();
        let (mut after, mut first) = match others {
            None => (Seq::new(), Seq::new()),
            Some(value) => {
                let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                let key = self.string_not_in(&names);
                let member = self.one(seq([key, ws.clone(), literal(":"), ws.clone(), value]));
                let more = self.star(seq([literal(","), ws.clone(), member.clone(), ws.clone()]));
                let first = self.optional(seq([member, ws.clone(), more.clone()]));
                (more, first)
            }
        };
        for m in members.into_iter().rev() {
            let key = literal(&serde_json::Value::String(m.name).to_string());
            let kv = self.one(seq([
                key,
                ws.clone(),
                literal(":"),
                ws.clone(),
                m.value,
                ws.clone(),
            ]));
            let next = seq([literal(","), ws.clone(), kv.clone(), after.clone()]);
            let here = seq([kv, after.clone()]);
            (after, first) = if m.required {
                (self.one(next), self.one(here))
            } else {
                (self.alt(vec![next, after]), self.alt(vec![here, first]))
            };
        }
        seq([literal("{"), ws, first, literal("}")])
    }

    /// An array of `min` to `max` elements: `prefix` first, one each, then
    /// as many `items` as the bounds allow (none when `items` is None).
    /// The bounds must be consistent (min <= max, and min <= prefix length
    /// without items).
    pub fn array(
        &mut self,
        prefix: Vec<Seq>,
        items: Option<Seq>,
        min: usize,
        max: Option<usize>,
    ) -> Seq {
        let ws = self.ws();
        let max = if items.is_none() {
            Some(max.map_or(prefix.len(), |m| m.min(prefix.len())))
        } else {
            max
        };
        let items = items.map(|i| self.one(i));
        // Positions up to `chain` are spelled out one by one; after it only
        // `items` may come, and stopping is allowed.
        let chain = max.map_or(min.max(prefix.len()), |m| min.max(prefix.len()).min(m));
        let mut rest = match &items {
            Some(item) if max.is_none_or(|m| chain < m) => {
                let next = seq([literal(","), ws.clone(), item.clone(), ws.clone()]);
                if chain == 0 {
                    let more = self.repeat(next, 0, max.map(|m| m - 1));
                    self.optional(seq([item.clone(), ws.clone(), more]))
                } else {
                    self.repeat(next, 0, max.map(|m| m - chain))
                }
            }
            _ => Seq::new(),
        };
        for j in (0..chain).rev() {
            let element = match (prefix.get(j), &items) {
                (Some(p), _) => p.clone(),
                (None, Some(item)) => item.clone(),
                (None, None) => Seq::new(),
            };
            let comma = if j == 0 {
                Seq::new()
            } else {
                seq([literal(","), ws.clone()])
            };
            let here = seq([comma, element, ws.clone(), rest]);
            rest = if j >= min {
                self.optional(here)
            } else {
                self.one(here)
            };
        }
        seq([literal("["), ws, rest, literal("]")])
    }
}

fn digits() -> Seq {
    bytes(ByteSet::range(b'0', b'9'))
}
