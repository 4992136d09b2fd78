//! The byte tokenizer of dummy models: token i is byte i; a vocabulary
//! larger than 256 adds `<|begin_of_text|>` and `<|end_of_text|>` (BOS and
//! EOS, never added on their own) and reserved tokens after them. Prompts
//! cost one token per byte, which makes load tests easy to size.

use super::fxhash::FxMap;
use super::{attr, unicode, Token, Tokenizer, TokenizerKind};

pub const BOS_TEXT: &str = "<|begin_of_text|>";
pub const EOS_TEXT: &str = "<|end_of_text|>";

impl Tokenizer {
    /// A byte tokenizer of `vocab_size` tokens (at least 256).
    pub fn bytes(vocab_size: usize) -> Tokenizer {
        let n = vocab_size.max(256);
        let text_of = |i: usize| -> Box<str> {
            match i {
                0..=255 => {
                    let c = unicode::BYTE_TO_CHAR[i];
                    c.to_string().into()
                }
                256 => BOS_TEXT.into(),
                257 => EOS_TEXT.into(),
                _ => format!("<|reserved_{}|>", i - 258).into(),
            }
        };
        let tokens: Vec<Token> = (0..n)
            .map(|i| Token {
                text: text_of(i),
                score: 0.0,
                attr: if i < 256 { attr::BYTE } else { attr::CONTROL },
            })
            .collect();
        let pieces: Vec<Box<[u8]>> = (0..n)
            .map(|i| match i {
                0..=255 => vec![i as u8].into_boxed_slice(),
                _ => tokens[i].text.as_bytes().into(),
            })
            .collect();
        let token_to_id: FxMap<Box<str>, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.text.clone(), i as u32))
            .collect();
        let mut special_tokens: Vec<u32> = (256..n as u32).collect();
        special_tokens.sort_by_key(|&i| std::cmp::Reverse(tokens[i as usize].text.len()));
        let (bos, eos) = if n > 257 {
            (Some(256), Some(257))
        } else {
            (None, None)
        };
        Tokenizer {
            kind: TokenizerKind::Bytes,
            pre_name: None,
            rules: &[],
            longest_piece: super::longest_piece(&pieces),
            tokens,
            pieces,
            token_to_id,
            merges: None,
            byte_tokens: Box::new(std::array::from_fn(|b| Some(b as u32))),
            special_tokens,
            eog: eos.into_iter().collect(),
            bos,
            eos,
            eot: None,
            eom: None,
            unk: None,
            pad: None,
            add_bos: false,
            add_eos: false,
            add_space_prefix: false,
            ignore_merges: false,
            clean_spaces: false,
            hf: None,
        }
    }
}
