//! Small handcrafted vocabularies, written as GGUF files and loaded back.

use super::split::{split, Rule};
use super::unicode::BYTE_TO_CHAR;
use super::{IncrementalDecoder, Tokenizer, TokenizerKind};
use crate::model::error::ModelError;
use crate::model::gguf::writer::GgufWriter;
use crate::model::gguf::{GgufFile, MetaArray, MetaValue};

const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER: i32 = 4;
const BYTE: i32 = 6;

struct Vocab {
    tokens: Vec<(String, i32, f32)>,
    /// `None`: no `tokenizer.ggml.merges` key.
    merges: Option<Vec<String>>,
    meta: Vec<(String, MetaValue)>,
}

impl Vocab {
    /// Byte-level BPE: the 256 byte characters are tokens 0..=255 in byte
    /// order (so a byte's token id is the byte).
    fn bpe(pre: &str, extra: &[(&str, i32)], merges: &[&str]) -> Vocab {
        let bytes = BYTE_TO_CHAR.iter().map(|c| (c.to_string(), NORMAL, 0.0));
        let extra = extra.iter().map(|&(t, ty)| (t.to_owned(), ty, 0.0));
        let mut v = Vocab {
            tokens: bytes.chain(extra).collect(),
            merges: Some(merges.iter().map(|m| m.to_string()).collect()),
            meta: Vec::new(),
        };
        v.meta("tokenizer.ggml.model", MetaValue::Str("gpt2".into()));
        v.meta("tokenizer.ggml.pre", MetaValue::Str(pre.into()));
        v
    }

    /// SPM: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then `extra`.
    fn spm(extra: &[(&str, i32, f32)]) -> Vocab {
        let special = [("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL)];
        let special = special.iter().map(|&(t, ty)| (t.to_owned(), ty, 0.0));
        let bytes = (0..256).map(|b| (format!("<0x{b:02X}>"), BYTE, 0.0));
        let extra = extra.iter().map(|&(t, ty, s)| (t.to_owned(), ty, s));
        let mut v = Vocab {
            tokens: special.chain(bytes).chain(extra).collect(),
            merges: None,
            meta: Vec::new(),
        };
        v.meta("tokenizer.ggml.model", MetaValue::Str("llama".into()));
        v
    }

    fn meta(&mut self, key: &str, value: MetaValue) -> &mut Self {
        self.meta.push((key.to_owned(), value));
        self
    }

    fn write(&self, name: &str) -> GgufFile {
        let mut w = GgufWriter::new();
        for (k, v) in &self.meta {
            w.meta(k, v.clone());
        }
        let texts = self.tokens.iter().map(|t| t.0.clone()).collect();
        w.meta(
            "tokenizer.ggml.tokens",
            MetaValue::Array(MetaArray::Str(texts)),
        );
        let types = self.tokens.iter().map(|t| t.1).collect();
        w.meta(
            "tokenizer.ggml.token_type",
            MetaValue::Array(MetaArray::I32(types)),
        );
        let scores = self.tokens.iter().map(|t| t.2).collect();
        w.meta(
            "tokenizer.ggml.scores",
            MetaValue::Array(MetaArray::F32(scores)),
        );
        if let Some(m) = &self.merges {
            w.meta(
                "tokenizer.ggml.merges",
                MetaValue::Array(MetaArray::Str(m.clone())),
            );
        }
        let dir = std::env::temp_dir().join(format!("switchyard-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.gguf"));
        std::fs::write(&path, w.to_bytes()).unwrap();
        GgufFile::open(&path).unwrap()
    }

    fn load(&self, name: &str) -> Tokenizer {
        Tokenizer::from_gguf(&self.write(name)).unwrap_or_else(|e| panic!("{e}"))
    }
}

fn ids(tok: &Tokenizer, texts: &[&str]) -> Vec<u32> {
    texts
        .iter()
        .map(|t| tok.token_id(t).unwrap_or_else(|| panic!("no token {t:?}")))
        .collect()
}

fn pieces(text: &str, rules: &[Rule]) -> Vec<String> {
    let cpts: Vec<u32> = text.chars().map(|c| c as u32).collect();
    let mut at = 0;
    split(&cpts, rules)
        .into_iter()
        .map(|n| {
            let s: String = text.chars().skip(at).take(n).collect();
            at += n;
            s
        })
        .collect()
}

#[test]
fn gpt2_split_keeps_one_space_for_the_next_word() {
    let got = pieces("Hello world's  3333 !!\n\n  x", &[Rule::Gpt2]);
    assert_eq!(
        got,
        ["Hello", " world", "'s", " ", " 3333", " !!", "\n\n ", " x"]
    );
    // Contractions are case-sensitive in GPT-2's expression.
    assert_eq!(pieces("I'M", &[Rule::Gpt2]), ["I", "'", "M"]);
}

#[test]
fn llama3_split_groups_digits_and_newlines() {
    let llama3 = [Rule::Llama3 {
        max_digits: 3,
        marks: false,
    }];
    assert_eq!(pieces("1234567", &llama3), ["123", "456", "7"]);
    assert_eq!(
        pieces("I'M here,\n\n  ok", &llama3),
        ["I", "'M", " here", ",\n\n", " ", " ok"]
    );
    assert_eq!(pieces("a \n b", &llama3), ["a", " \n", " b"]);
    let qwen2 = [Rule::Llama3 {
        max_digits: 1,
        marks: false,
    }];
    assert_eq!(pieces("x123", &qwen2), ["x", "1", "2", "3"]);
}

#[test]
fn class_rules_split_around_their_matches() {
    assert_eq!(
        pieces("ab12c3", &[Rule::EachNumber]),
        ["ab", "1", "2", "c", "3"]
    );
    assert_eq!(
        pieces("12345a678", &[Rule::AsciiDigits3]),
        ["123", "45a", "678"]
    );
    let default = [
        Rule::PunctRun { backtick: false },
        Rule::Gpt2,
        Rule::NumberRun,
        Rule::AsciiDigits3,
    ];
    assert_eq!(
        pieces("a?!b 12345", &default),
        ["a", "?!", "b", " ", "123", "45"]
    );
}

#[test]
fn bpe_merges_lowest_rank_first() {
    let extra = [("ab", NORMAL), ("bc", NORMAL), ("abc", NORMAL)];
    let tok = Vocab::bpe("gpt-2", &extra, &["b c", "a b"]).load("rank1");
    assert_eq!(tok.encode("abc", false, false), ids(&tok, &["a", "bc"]));
    let tok = Vocab::bpe("gpt-2", &extra, &["a b", "b c"]).load("rank2");
    assert_eq!(tok.encode("abc", false, false), ids(&tok, &["ab", "c"]));
    let tok = Vocab::bpe("gpt-2", &extra, &["b c", "a b", "a bc"]).load("rank3");
    assert_eq!(tok.encode("abc", false, false), ids(&tok, &["abc"]));
}

#[test]
fn bpe_ties_merge_leftmost_and_words_stay_apart() {
    let tok = Vocab::bpe("gpt-2", &[("aa", NORMAL), ("Ġa", NORMAL)], &["a a", "Ġ a"]).load("ties");
    assert_eq!(
        tok.encode("aaaaa", false, false),
        ids(&tok, &["aa", "aa", "a"])
    );
    // " a" is a word of its own: "aa" never spans the space.
    assert_eq!(tok.encode("a a", false, false), ids(&tok, &["a", "Ġa"]));
    assert_eq!(tok.decode(&tok.encode("a a", false, false), false), "a a");
}

#[test]
fn bpe_bytes_round_trip_any_text() {
    let tok = Vocab::bpe("gpt-2", &[], &[]).load("bytes");
    let ids = tok.encode("é🦙\n", false, false);
    assert_eq!(ids, [0xC3, 0xA9, 0xF0, 0x9F, 0xA6, 0x99, 0x0A]);
    assert_eq!(tok.decode(&ids, false), "é🦙\n");
    assert_eq!(tok.token_text(0xC3), "Ã");
    assert_eq!(tok.token_bytes(0xC3), [0xC3]);
    assert_eq!(tok.token_bytes(9999), b"");
}

#[test]
fn special_tokens_are_parsed_only_when_asked() {
    let extra = [
        ("<|im_end|>", CONTROL),
        ("<tool>", USER),
        ("<|endoftext|>", CONTROL),
    ];
    let mut v = Vocab::bpe("gpt-2", &extra, &[]);
    v.meta("tokenizer.ggml.eos_token_id", MetaValue::U32(258));
    let tok = v.load("special");
    let im_end = tok.token_id("<|im_end|>").unwrap();
    assert_eq!(
        tok.encode("a<|im_end|>b", false, true),
        [b'a' as u32, im_end, b'b' as u32]
    );
    let plain = tok.encode("a<|im_end|>b", false, false);
    assert!(!plain.contains(&im_end));
    assert_eq!(tok.decode(&plain, false), "a<|im_end|>b");
    // User-defined tokens are always cut out.
    let tool = tok.token_id("<tool>").unwrap();
    assert_eq!(
        tok.encode("a<tool>b", false, false),
        [b'a' as u32, tool, b'b' as u32]
    );
    // Control tokens show only when special tokens are not skipped.
    assert_eq!(tok.decode(&[b'a' as u32, im_end], false), "a<|im_end|>");
    assert_eq!(tok.decode(&[b'a' as u32, im_end], true), "a");
    assert!(tok.is_special(im_end) && tok.is_special(tool) && !tok.is_special(b'a' as u32));
}

#[test]
fn end_of_generation_set_follows_llama_cpp() {
    let extra = [
        ("<|endoftext|>", CONTROL),
        ("<|im_end|>", CONTROL),
        ("<|eot_id|>", NORMAL),
        ("<|fim_pad|>", CONTROL),
        ("<|im_start|>", CONTROL),
    ];
    let mut v = Vocab::bpe("qwen2", &extra, &[]);
    v.meta("tokenizer.ggml.eos_token_id", MetaValue::U32(256));
    let tok = v.load("eog");
    assert_eq!(tok.eos_id(), Some(256));
    // `<|eot_id|>` comes before `<|im_end|>` in llama.cpp's list.
    assert_eq!(tok.eot_id(), Some(258));
    assert_eq!(tok.eog_ids(), [256, 257, 258, 259]);
    assert!(tok.is_eog(257) && !tok.is_eog(260) && !tok.is_eog(b'a' as u32));
    // A normal-typed EOG token is promoted to control, as llama.cpp does.
    assert!(tok.is_control(258));
    assert_eq!(tok.decode(&[258], true), "");
}

#[test]
fn add_bos_defaults_depend_on_the_model() {
    let tok = Vocab::bpe("gpt-2", &[], &[]).load("bos-gpt2");
    assert!(!tok.add_bos());
    let mut v = Vocab::bpe("llama-bpe", &[("<|begin_of_text|>", CONTROL)], &[]);
    v.meta("tokenizer.ggml.bos_token_id", MetaValue::U32(256));
    let tok = v.load("bos-llama3");
    assert!(tok.add_bos());
    assert_eq!(tok.encode("a", true, false), [256, b'a' as u32]);
    assert_eq!(tok.encode("a", false, false), [b'a' as u32]);
    v.meta("tokenizer.ggml.add_bos_token", MetaValue::Bool(false));
    v.meta("tokenizer.ggml.add_eos_token", MetaValue::Bool(true));
    v.meta("tokenizer.ggml.eos_token_id", MetaValue::U32(256));
    let tok = v.load("bos-off");
    assert_eq!(tok.encode("a", true, false), [b'a' as u32, 256]);
    let tok = Vocab::spm(&[]).load("bos-spm");
    assert!(tok.add_bos() && !tok.add_eos());
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.unk_id()),
        (Some(1), Some(2), Some(0))
    );
}

#[test]
fn unsupported_models_and_pre_tokenizers_are_named() {
    let e =
        Tokenizer::from_gguf(&Vocab::bpe("no-such-pre", &[], &[]).write("bad-pre")).unwrap_err();
    assert!(matches!(e, ModelError::Tokenizer { .. }));
    assert!(e.to_string().contains("`no-such-pre`"), "{e}");
    let mut v = Vocab::spm(&[]);
    v.meta[0].1 = MetaValue::Str("bert".into());
    let e = Tokenizer::from_gguf(&v.write("bad-model"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`bert`") && e.contains("bad-model.gguf"), "{e}");
    let mut v = Vocab::bpe("gpt-2", &[], &[]);
    v.merges = None;
    let e = Tokenizer::from_gguf(&v.write("no-merges"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("merges"), "{e}");
}

fn spm_vocab() -> Vocab {
    Vocab::spm(&[
        ("▁", NORMAL, -1.0),
        ("a", NORMAL, -3.0),
        ("b", NORMAL, -3.0),
        ("▁a", NORMAL, -2.0),
        ("ab", NORMAL, -1.5),
        ("<|end|>", CONTROL, 0.0),
    ])
}

#[test]
fn spm_merges_highest_score_first_with_space_prefix() {
    let tok = spm_vocab().load("spm");
    assert_eq!(tok.kind(), TokenizerKind::Spm);
    // "▁a▁ab": "ab" (-1.5) beats "▁a" (-2), so the second "▁a" never forms.
    assert_eq!(
        tok.encode("a ab", false, false),
        ids(&tok, &["▁a", "▁", "ab"])
    );
    assert_eq!(
        tok.encode("a", true, false),
        [1, tok.token_id("▁a").unwrap()]
    );
    // Unknown characters fall back to byte tokens.
    let e = tok.encode("é", false, false);
    assert_eq!(e, [tok.token_id("▁").unwrap(), 3 + 0xC3, 3 + 0xA9]);
    // The leading space the prefix added is dropped again.
    assert_eq!(tok.decode(&e, false), "é");
    assert_eq!(tok.decode(&tok.encode("a ab", false, false), false), "a ab");
    assert_eq!(tok.token_bytes(3 + 0x41), b"A");
}

#[test]
fn phi3_special_tokens_eat_following_space() {
    let mut v = spm_vocab();
    let plain = v.load("spm-plain");
    v.meta("general.name", MetaValue::Str("Phi3".into()));
    let phi3 = v.load("spm-phi3");
    let end = phi3.token_id("<|end|>").unwrap();
    let a = phi3.token_id("▁a").unwrap();
    assert_eq!(phi3.encode("<|end|>\n a", false, true), [end, a]);
    assert_ne!(plain.encode("<|end|>\n a", false, true), [end, a]);
}

#[test]
fn bpe_decode_cleans_spaces_when_the_vocabulary_asks() {
    let gpt2 = Vocab::bpe("gpt-2", &[], &[]).load("clean");
    let ids = gpt2.encode("a , b 's", false, false);
    assert_eq!(gpt2.decode(&ids, false), "a, b's");
    let qwen = Vocab::bpe("qwen2", &[], &[]).load("unclean");
    let ids = qwen.encode("a , b 's", false, false);
    assert_eq!(qwen.decode(&ids, false), "a , b 's");
}

#[test]
fn incremental_decoder_holds_back_split_characters() {
    let tok = Vocab::bpe("gpt-2", &[], &[]).load("incr");
    let mut d = IncrementalDecoder::new(&tok, false);
    let mut out = String::new();
    for &b in "a🦙é".as_bytes() {
        let piece = d.push(b as u32);
        assert!(d.pending().len() < 4);
        out.push_str(&piece);
    }
    assert_eq!(out, "a🦙é");
    assert_eq!(d.push(0xF0), "");
    assert_eq!(d.push(0x9F), "");
    assert_eq!(d.flush(), "\u{FFFD}");
    // A byte that can never start a character comes out at once.
    assert_eq!(d.push(0xFF), "\u{FFFD}");
    assert_eq!(d.push(b'x' as u32), "x");
}

#[test]
fn incremental_decoder_and_the_spm_leading_space() {
    let tok = spm_vocab().load("spm-incr");
    let e = tok.encode("a ab", false, false);
    let mut start = IncrementalDecoder::at_start(&tok, true);
    let text: String = e.iter().map(|&id| start.push(id)).collect();
    assert_eq!(text, "a ab");
    let mut cont = IncrementalDecoder::new(&tok, true);
    let text: String = e.iter().map(|&id| cont.push(id)).collect();
    assert_eq!(text, " a ab");
    // After BOS the space stays, as in llama.cpp's detokenize.
    let with_bos = tok.encode("a", true, false);
    let mut d = IncrementalDecoder::at_start(&tok, true);
    let text: String = with_bos.iter().map(|&id| d.push(id)).collect();
    assert_eq!(text, tok.decode(&with_bos, true));
    assert_eq!(text, " a");
}
