//! Pre-tokenizer splitting: the regular expressions of the byte-level BPE
//! pre-tokenizers, written out by hand the way llama.cpp's `unicode.cpp`
//! does (`unicode_regex_split_custom_gpt2`/`_llama3`/`_qwen2`/`_qwen35`),
//! plus the few simple character-class expressions llama.cpp runs through
//! `std::regex` on its "collapsed" text.
//!
//! Expressions apply in sequence: each one splits every piece the previous
//! ones produced, and the text between two matches is a piece of its own.
//! Positions count code points.

use super::unicode::Flags;

/// One expression of a pre-tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    Gpt2,
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`, with the digit
    /// group length (3 for llama3, 1 for qwen2) and, for qwen3.5, combining
    /// marks counted with letters (`[\p{L}\p{M}]+`).
    Llama3 { max_digits: usize, marks: bool },
    /// `\p{N}`: every digit alone.
    EachNumber,
    /// `\p{N}+`
    NumberRun,
    /// `[\p{P}\$\+<=>\^~\|]+`, and with `` ` `` added (falcon).
    PunctRun { backtick: bool },
    /// `[0-9][0-9][0-9]`
    AsciiDigits3,
}

/// Splits `cpts` by `rules`; returns the piece lengths in code points.
pub fn split(cpts: &[u32], rules: &[Rule]) -> Vec<usize> {
    let mut pieces = vec![cpts.len()];
    for rule in rules {
        let mut out = Vec::with_capacity(pieces.len() * 2);
        let mut start = 0;
        for &len in &pieces {
            let chunk = &cpts[start..start + len];
            start += len;
            match *rule {
                Rule::Gpt2 => gpt2(chunk, &mut out),
                Rule::Llama3 { max_digits, marks } => llama3(chunk, max_digits, marks, &mut out),
                Rule::EachNumber => class_split(chunk, is_number_collapsed, Some(1), &mut out),
                Rule::NumberRun => class_split(chunk, is_number_collapsed, None, &mut out),
                Rule::PunctRun { backtick } => {
                    let pred = if backtick {
                        is_punct_or_backtick
                    } else {
                        is_punct_collapsed
                    };
                    class_split(chunk, pred, None, &mut out)
                }
                Rule::AsciiDigits3 => exact3(
                    chunk,
                    |c| (b'0' as u32..=b'9' as u32).contains(&c),
                    &mut out,
                ),
            }
        }
        pieces = out;
    }
    pieces
}

// What a class means on llama.cpp's collapsed text: ASCII stays itself,
// anything else becomes one byte per category, or a white-space byte.

fn collapsed_category(c: u32, category: u8) -> bool {
    let f = Flags::of(c);
    (c < 128 || !f.is_whitespace()) && f.category() == category
}

fn is_number_collapsed(c: u32) -> bool {
    collapsed_category(c, super::unicode_data::NUMBER)
}

fn is_punct_collapsed(c: u32) -> bool {
    collapsed_category(c, super::unicode_data::PUNCTUATION)
        || matches!(
            char::from_u32(c),
            Some('$' | '+' | '<' | '=' | '>' | '^' | '~' | '|')
        )
}

fn is_punct_or_backtick(c: u32) -> bool {
    is_punct_collapsed(c) || c == '`' as u32
}

/// Matches of `class` (one at a time, or maximal runs) and the gaps between.
fn class_split(chunk: &[u32], class: fn(u32) -> bool, max: Option<usize>, out: &mut Vec<usize>) {
    let mut gap = 0;
    let mut i = 0;
    while i < chunk.len() {
        if !class(chunk[i]) {
            gap += 1;
            i += 1;
            continue;
        }
        if gap > 0 {
            out.push(gap);
            gap = 0;
        }
        let start = i;
        while i < chunk.len() && class(chunk[i]) && max.is_none_or(|m| i - start < m) {
            i += 1;
        }
        out.push(i - start);
    }
    if gap > 0 {
        out.push(gap);
    }
}

/// Leftmost matches of exactly three consecutive members of `class`.
fn exact3(chunk: &[u32], class: impl Fn(u32) -> bool, out: &mut Vec<usize>) {
    let mut gap = 0;
    let mut i = 0;
    while i < chunk.len() {
        if i + 3 <= chunk.len() && chunk[i..i + 3].iter().all(|&c| class(c)) {
            if gap > 0 {
                out.push(gap);
                gap = 0;
            }
            out.push(3);
            i += 3;
        } else {
            gap += 1;
            i += 1;
        }
    }
    if gap > 0 {
        out.push(gap);
    }
}

const OUT_OF_RANGE: u32 = u32::MAX;

/// A chunk with llama.cpp's accessors: outside the chunk a code point is
/// `OUT_OF_RANGE` and its flags are all clear.
struct Chunk<'a> {
    cpts: &'a [u32],
    flags: Vec<Flags>,
    prev_end: usize,
}

impl<'a> Chunk<'a> {
    fn new(cpts: &'a [u32]) -> Self {
        let flags = cpts.iter().map(|&c| Flags::of(c)).collect();
        Chunk {
            cpts,
            flags,
            prev_end: 0,
        }
    }

    fn cpt(&self, pos: usize) -> u32 {
        self.cpts.get(pos).copied().unwrap_or(OUT_OF_RANGE)
    }

    fn flags(&self, pos: usize) -> Flags {
        self.flags.get(pos).copied().unwrap_or(Flags::NONE)
    }

    /// Ends the current piece at `end`; returns its length.
    fn add(&mut self, end: usize, out: &mut Vec<usize>) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            out.push(len);
        }
        self.prev_end = end;
        len
    }
}

fn lower_ascii(c: u32) -> u32 {
    // llama.cpp lower-cases through its full table, but only the ASCII
    // capitals map onto the letters the contractions test.
    if (b'A' as u32..=b'Z' as u32).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d` at `pos`: the length matched, 0 if none.
fn contraction(ch: &Chunk, pos: usize, fold: bool) -> usize {
    let n = ch.cpts.len();
    if ch.cpt(pos) != '\'' as u32 || pos + 1 >= n {
        return 0;
    }
    let low = |c: u32| if fold { lower_ascii(c) } else { c };
    let is = |c: u32, x: char| c == x as u32;
    let next = low(ch.cpt(pos + 1));
    if is(next, 's') || is(next, 't') || is(next, 'm') || is(next, 'd') {
        return 2;
    }
    if pos + 2 < n {
        let next2 = low(ch.cpt(pos + 2));
        if (is(next, 'r') && is(next2, 'e'))
            || (is(next, 'v') && is(next2, 'e'))
            || (is(next, 'l') && is(next2, 'l'))
        {
            return 3;
        }
    }
    0
}

fn gpt2(cpts: &[u32], out: &mut Vec<usize>) {
    let mut ch = Chunk::new(cpts);
    let end = cpts.len();
    let mut pos = 0;
    while pos < end {
        let cpt = ch.cpt(pos);
        let flags = ch.flags(pos);
        let n = contraction(&ch, pos, false);
        if n > 0 {
            pos += ch.add(pos + n, out);
            continue;
        }
        let space = cpt == ' ' as u32;
        let mut flags2 = if space { ch.flags(pos + 1) } else { flags };
        // <space>?\p{L}+ | <space>?\p{N}+
        if let Some(class) = [Flags::is_letter, Flags::is_number]
            .into_iter()
            .find(|class| class(flags2))
        {
            pos += space as usize;
            while class(flags2) {
                pos += 1;
                flags2 = ch.flags(pos);
            }
            ch.add(pos, out);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+
        let other = |f: Flags| !(f.is_whitespace() || f.is_letter() || f.is_number()) && f.any();
        if other(flags2) {
            pos += space as usize;
            while other(flags2) {
                pos += 1;
                flags2 = ch.flags(pos);
            }
            ch.add(pos, out);
            continue;
        }
        let mut n_ws = 0;
        while ch.flags(pos + n_ws).is_whitespace() {
            n_ws += 1;
        }
        // \s+(?!\S)
        if n_ws > 1 && ch.cpt(pos + n_ws) != OUT_OF_RANGE {
            pos += n_ws - 1;
            ch.add(pos, out);
            continue;
        }
        // \s+
        if n_ws > 0 {
            pos += n_ws;
            ch.add(pos, out);
            continue;
        }
        // no match: one code point alone
        pos += 1;
        ch.add(pos, out);
    }
}

fn llama3(cpts: &[u32], max_digits: usize, marks: bool, out: &mut Vec<usize>) {
    let mut ch = Chunk::new(cpts);
    let end = cpts.len();
    let word = |f: Flags| f.is_letter() || (marks && f.is_accent_mark());
    let mut pos = 0;
    while pos < end {
        let cpt = ch.cpt(pos);
        let flags = ch.flags(pos);
        let n = contraction(&ch, pos, true);
        if n > 0 {
            pos += ch.add(pos + n, out);
            continue;
        }
        let cr_lf = |c: u32| c == '\r' as u32 || c == '\n' as u32;
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !(cr_lf(cpt) || flags.is_number()) && (word(flags) || word(ch.flags(pos + 1))) {
            pos += 1;
            while word(ch.flags(pos)) {
                pos += 1;
            }
            ch.add(pos, out);
            continue;
        }
        // \p{N}{1,max}
        if flags.is_number() {
            let mut ini = pos;
            while ch.flags(pos).is_number() {
                pos += 1;
                if pos - ini >= max_digits {
                    ch.add(pos, out);
                    ini = pos;
                }
            }
            ch.add(pos, out);
            continue;
        }
        // <space>?[^\s\p{L}\p{N}]+[\r\n]*
        let other = |f: Flags| !(f.is_whitespace() || word(f) || f.is_number());
        let space = cpt == ' ' as u32;
        let mut flags2 = if space { ch.flags(pos + 1) } else { flags };
        if other(flags2) && flags.any() {
            pos += space as usize;
            while other(flags2) && flags2.any() {
                pos += 1;
                flags2 = ch.flags(pos);
            }
            while cr_lf(ch.cpt(pos)) {
                pos += 1;
            }
            ch.add(pos, out);
            continue;
        }
        let mut n_ws = 0;
        let mut last_cr_lf_end = 0;
        while ch.flags(pos + n_ws).is_whitespace() {
            if cr_lf(ch.cpt(pos + n_ws)) {
                last_cr_lf_end = pos + n_ws + 1;
            }
            n_ws += 1;
        }
        // \s*[\r\n]+
        if last_cr_lf_end > 0 {
            pos = last_cr_lf_end;
            ch.add(pos, out);
            continue;
        }
        // \s+(?!\S)
        if n_ws > 1 && ch.cpt(pos + n_ws) != OUT_OF_RANGE {
            pos += n_ws - 1;
            ch.add(pos, out);
            continue;
        }
        // \s+
        if n_ws > 0 {
            pos += n_ws;
            ch.add(pos, out);
            continue;
        }
        pos += 1;
        ch.add(pos, out);
    }
}
