use super::*;
use crate::engine::grammar::{bytes, literal, seq, ByteSet, GrammarBuilder};

/// A vocabulary with shared prefixes, multi-byte pieces and half
/// characters, as byte-level BPE has them.
fn words() -> Vec<Vec<u8>> {
    let mut w: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
    for s in [
        "{", "{\"", "\"", "\":", "\": ", "true", "tr", "tru", "truth", "12", "123", " ", "  ",
        "\n", "ab", "abc", "abd", "é", "日本", "\"}", "}", "a\"", "x\"}",
    ] {
        w.push(s.as_bytes().to_vec());
    }
    w.push(vec![0xE6]); // the first byte of 日
    w.push(vec![0x97, 0xA5]); // the rest of 日
    w
}

fn trie(words: &[Vec<u8>], eog: u32) -> TokenTrie {
    let mut sorted: Vec<(&[u8], u32)> = words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_slice(), i as u32))
        .collect();
    sorted.sort_unstable();
    TokenTrie::from_sorted(&sorted, vec![eog], words.len() + 1)
}

/// `{"k": "<letters, é or 日本>"}` or `true` / `123`.
fn grammar() -> Matcher {
    let mut b = GrammarBuilder::new();
    let letter = bytes(ByteSet::range(b'a', b'z'));
    let chars = b.alt(vec![letter, literal("é"), literal("日本")]);
    let body = b.star(chars);
    let object = seq([literal("{\"k\": \""), body, literal("\"}")]);
    let root = b.rule(vec![object, literal("true"), literal("123")]);
    Matcher::new(Compiled::new(&b.build(root).unwrap()))
}

#[test]
fn the_trie_walk_allows_exactly_what_feeding_each_token_allows() {
    let words = words();
    let eog = words.len() as u32;
    let t = trie(&words, eog);
    let m = grammar();
    let prefixes = [
        "",
        "{",
        "{\"k",
        "{\"k\": \"",
        "{\"k\": \"ab",
        "{\"k\": \"é",
        "tr",
        "12",
        "{\"k\": \"x\"}",
        "true",
    ];
    for prefix in prefixes {
        let state = m.feed(&m.start(), prefix.as_bytes());
        assert!(!state.is_dead(), "{prefix}");
        let mask = t.allowed(&m, &state);
        for (id, w) in words.iter().enumerate() {
            let brute = !m.feed(&state, w).is_dead();
            assert_eq!(
                mask.contains(id as u32),
                brute,
                "after {prefix:?}, token {:?}",
                String::from_utf8_lossy(w)
            );
        }
        assert_eq!(
            mask.contains(eog),
            state.is_accepting(),
            "eog after {prefix:?}"
        );
    }
    // Inside the string, half of 日 is allowed (its rest may follow).
    let inside = m.feed(&m.start(), "{\"k\": \"".as_bytes());
    let mask = t.allowed(&m, &inside);
    let half = words.iter().position(|w| w == &[0xE6]).unwrap() as u32;
    assert!(mask.contains(half));
}

#[test]
fn masks_count_and_find_their_members() {
    let mut m = TokenMask::empty(130);
    assert!(m.is_empty() && m.first().is_none());
    for id in [129, 64, 3] {
        m.insert(id);
    }
    m.insert(500); // outside: ignored
    assert_eq!((m.len(), m.first()), (3, Some(3)));
    assert!(m.contains(64) && !m.contains(65) && !m.contains(500));
}

#[test]
fn a_constraint_follows_tokens_and_remembers_masks() {
    let tok = Arc::new(crate::model::tokenizer::Tokenizer::bytes(300));
    let t = Arc::new(TokenTrie::new(&tok));
    let mut c = Constraint::new(
        Compiled::new(&{
            let mut b = GrammarBuilder::new();
            let r = b.rule(vec![literal("true"), literal("123")]);
            b.build(r).unwrap()
        }),
        t,
        tok.clone(),
    );
    let first = c.allowed();
    // The byte tokenizer's first 256 ids are the bytes themselves.
    let byte_token = |b: u8| b as u32;
    assert!(first.contains(byte_token(b't')) && first.contains(byte_token(b'1')));
    assert_eq!(first.len(), 2);
    assert!(
        !c.accept(byte_token(b'x')),
        "refused tokens leave the state alone"
    );
    for b in *b"tru" {
        assert!(c.accept(byte_token(b)));
        assert!(!c.is_complete());
    }
    assert!(c.accept(byte_token(b'e')));
    assert!(c.is_complete());
    assert!(
        Arc::ptr_eq(&c.allowed(), &c.allowed()),
        "a state's mask is computed once"
    );
}
