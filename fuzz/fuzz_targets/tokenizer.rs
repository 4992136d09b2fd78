//! Arbitrary text through the tokenizers switchyard implements itself
//! (byte-level BPE and SentencePiece-style, as GGUF describes them, built
//! from the repository's test vocabularies): encoding never panics, every
//! id is in the vocabulary, and byte-level BPE decodes back to the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use switchyard::model::gguf::writer::GgufWriter;
use switchyard::model::gguf::GgufFile;
use switchyard::model::tokenizer::{ExportHints, HfSpecials, Tokenizer};

/// (byte-level BPE, SentencePiece-style), each read back from GGUF.
fn tokenizers() -> &'static (Tokenizer, Tokenizer) {
    static T: OnceLock<(Tokenizer, Tokenizer)> = OnceLock::new();
    T.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/hf");
        let load = |name: &str| {
            let path = root.join(name).join("tokenizer.json");
            let hf = Tokenizer::from_hf(&path, &HfSpecials::default()).expect("fixture tokenizer");
            let json = serde_json_value(&path);
            let hints = ExportHints {
                n_vocab: hf.vocab_size(),
                clean_spaces: Some(false),
            };
            let mut w = GgufWriter::new();
            for (k, v) in hf.gguf_metadata(&json, &hints).expect("GGUF metadata") {
                w.meta(&k, v);
            }
            let file = GgufFile::from_bytes(name, &w.to_bytes()).expect("GGUF image");
            Tokenizer::from_gguf(&file).expect("GGUF tokenizer")
        };
        (load("qwen2-f32"), load("mistral-f32"))
    })
}

fn serde_json_value(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (bpe, spm) = tokenizers();
    for t in [bpe, spm] {
        for parse_special in [false, true] {
            let ids = t.encode(&text, false, parse_special);
            assert!(ids.iter().all(|&id| (id as usize) < t.vocab_size()));
            let decoded = t.decode(&ids, false);
            if std::ptr::eq(t, bpe) && !parse_special {
                assert_eq!(decoded, text, "byte-level BPE must decode back to its text");
            }
        }
    }
});
