//! Character classes for the pre-tokenizers, and GPT-2's byte-level mapping
//! of bytes to printable characters.

use super::unicode_data::{self as data, RANGE_CATEGORIES, RANGE_STARTS, WHITESPACE};

/// What llama.cpp's `unicode_cpt_flags` says about one code point: its
/// category bit, plus white space. All zero means "past the end of the
/// text", which is how the hand-written splitters mark a missing neighbour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags(u16);

const WHITESPACE_BIT: u16 = 0x100;

impl Flags {
    /// Flags of a position outside the text.
    pub const NONE: Flags = Flags(0);

    pub fn of(c: u32) -> Flags {
        if c < 128 {
            return Flags(ASCII[c as usize]);
        }
        if c >= data::MAX_CODEPOINT {
            return Flags(data::UNDEFINED as u16);
        }
        let i = RANGE_STARTS.partition_point(|&s| s <= c) - 1;
        let mut f = RANGE_CATEGORIES[i] as u16;
        if WHITESPACE.binary_search(&c).is_ok() {
            f |= WHITESPACE_BIT;
        }
        Flags(f)
    }

    /// Any flag at all: true for every code point inside the text.
    pub fn any(self) -> bool {
        self.0 != 0
    }

    pub fn category(self) -> u8 {
        self.0 as u8
    }

    pub fn is_letter(self) -> bool {
        self.0 & data::LETTER as u16 != 0
    }

    pub fn is_number(self) -> bool {
        self.0 & data::NUMBER as u16 != 0
    }

    pub fn is_accent_mark(self) -> bool {
        self.0 & data::ACCENT_MARK as u16 != 0
    }

    pub fn is_whitespace(self) -> bool {
        self.0 & WHITESPACE_BIT != 0
    }
}

/// The flags of the 128 ASCII code points, computed from the same tables at
/// compile time.
const ASCII: [u16; 128] = ascii_flags();

const fn ascii_flags() -> [u16; 128] {
    let mut out = [0u16; 128];
    let mut c = 0;
    while c < 128 {
        let mut i = 0;
        while i + 1 < RANGE_STARTS.len() && RANGE_STARTS[i + 1] <= c as u32 {
            i += 1;
        }
        let mut f = RANGE_CATEGORIES[i] as u16;
        let mut w = 0;
        while w < WHITESPACE.len() {
            if WHITESPACE[w] == c as u32 {
                f |= WHITESPACE_BIT;
            }
            w += 1;
        }
        out[c] = f;
        c += 1;
    }
    out
}

/// GPT-2's byte-level alphabet: printable Latin-1 bytes stand for
/// themselves, the other 68 take the code points from U+0100 on, in byte
/// order.
pub const BYTE_TO_CHAR: [char; 256] = byte_to_char();

const fn printable(b: usize) -> bool {
    (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
}

const fn byte_to_char() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    let mut b = 0;
    while b < 256 {
        let cp = if printable(b) {
            b as u32
        } else {
            n += 1;
            255 + n
        };
        out[b] = match char::from_u32(cp) {
            Some(c) => c,
            None => '\0',
        };
        b += 1;
    }
    out
}

/// The byte a byte-level character stands for, if it is one of the 256.
pub fn char_to_byte(c: char) -> Option<u8> {
    let v = *CHAR_TO_BYTE.get(c as usize)?;
    (v >= 0).then_some(v as u8)
}

/// Inverse of [`BYTE_TO_CHAR`] over the code points it uses (all below
/// U+0144); -1 where a code point stands for no byte.
const CHAR_TO_BYTE: [i16; 324] = char_to_byte_table();

const fn char_to_byte_table() -> [i16; 324] {
    let mut out = [-1i16; 324];
    let mut b = 0;
    while b < 256 {
        out[BYTE_TO_CHAR[b] as usize] = b as i16;
        b += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_round_trips() {
        assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
        assert_eq!(BYTE_TO_CHAR[b'a' as usize], 'a');
        assert_eq!(BYTE_TO_CHAR[0xAD], 'Ń');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(BYTE_TO_CHAR[b as usize]), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
    }

    #[test]
    fn flags_follow_llama_cpp_tables() {
        let f = |c: char| Flags::of(c as u32);
        assert!(f('a').is_letter() && f('Ж').is_letter() && f('我').is_letter());
        assert!(f('7').is_number() && f('½').is_number() && f('٣').is_number());
        assert!(
            f(' ').is_whitespace() && f('\u{3000}').is_whitespace() && f('\u{85}').is_whitespace()
        );
        assert!(!f('\u{200B}').is_whitespace());
        assert!(f('!').category() == data::PUNCTUATION && f('$').category() != data::PUNCTUATION);
        assert!(f('\u{301}').is_accent_mark());
        assert!(f('\u{378}').category() == data::UNDEFINED);
        assert!(f('\u{10FFFF}').any());
        assert!(!Flags::NONE.any());
    }
}
