//! Every Hugging Face fixture written as GGUF by `switchyard quantize`
//! computes and tokenizes as the checkpoint does: the same logits, the
//! same token ids for texts with and without special tokens, the same
//! special ids and chat template.

use crate::backend::cpu::{ComputePool, CpuBackend};
use crate::backend::WeightFormat;
use crate::model::config::ModelConfig;
use crate::model::gguf::GgufFile;
use crate::model::hf::{self, safetensors::SafetensorsStore};
use crate::model::text_side::TextSide;
use crate::model::Transformer;
use std::path::Path;
use std::sync::Arc;

const FIXTURES: [&str; 8] = [
    "llama-f32",
    "llama-bf16",
    "mistral-f32",
    "mistral-bf16",
    "qwen2-f32",
    "qwen2-bf16",
    "qwen3-f32",
    "qwen3-bf16",
];

const TEXTS: &[&str] = &[
    "The quick brown fox jumps over the lazy dog.",
    "  two leading spaces, 12345 digits and 3.14",
    "Ünïcödé: 日本語 and emoji 🎉\nnew line\n\n",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>",
    "<s>[INST] hello [/INST] hi</s>",
    "",
];

#[test]
fn every_fixture_written_as_gguf_computes_and_tokenizes_as_the_checkpoint() {
    let b = CpuBackend::new(Arc::new(ComputePool::new(1)));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hf");
    let tmp = std::env::temp_dir().join(format!("switchyard-export-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let ids = [5u32, 77, 120, 9, 300, 41, 250, 3];
    for name in FIXTURES {
        let dir = root.join(name);
        let path = tmp.join(format!("{name}.gguf"));
        let stored = if name.ends_with("bf16") {
            WeightFormat::Bf16
        } else {
            WeightFormat::F32
        };
        crate::model::quantize::quantize(&dir, stored, false, &path).unwrap();
        let file = GgufFile::open(&path).unwrap();

        let cfg = hf::read_config(&dir).unwrap();
        let from_gguf = ModelConfig::from_gguf(&file).unwrap();
        assert_eq!(from_gguf.attention_bias, cfg.model.attention_bias, "{name}");
        assert_eq!(from_gguf.qk_norm, cfg.model.qk_norm, "{name}");
        let g = Transformer::load(&file, from_gguf, &b).unwrap();
        let store = SafetensorsStore::open(&dir).unwrap();
        let h = Transformer::load(&store, cfg.model.clone(), &b).unwrap();
        let (lg, lh) = (g.last_logits(&b, &ids), h.last_logits(&b, &ids));
        let diff = lg
            .iter()
            .zip(&lh)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "{name}: logits differ by {diff}");

        let ours = TextSide::from_gguf(&file).unwrap();
        let theirs = hf::read_text_side(&dir, &cfg).unwrap();
        let (t, u) = (&ours.tokenizer, &theirs.tokenizer);
        assert_eq!(t.vocab_size(), cfg.model.vocab_size, "{name}");
        assert_eq!(
            (t.bos_id(), t.eos_id(), t.add_bos(), t.add_eos()),
            (u.bos_id(), u.eos_id(), u.add_bos(), u.add_eos()),
            "{name}"
        );
        for &eog in u.eog_ids() {
            assert!(t.is_eog(eog), "{name}: {eog} does not end generation");
        }
        for text in TEXTS {
            // Hugging Face's Metaspace adds `▁` to the text's first piece
            // only, unless it starts with a space; llama.cpp's SentencePiece
            // tokenizer adds it to every piece after a special token, and
            // before a space too. GGUF has no way to say otherwise.
            if name.starts_with("mistral") && (text.starts_with(' ') || text.contains("<s>")) {
                continue;
            }
            let (a, e) = (t.encode(text, true, true), u.encode(text, true, true));
            assert_eq!(a, e, "{name}: {text:?}");
            assert_eq!(t.decode(&a, false), u.decode(&e, false), "{name}: {text:?}");
        }
        assert_eq!(
            ours.template.as_ref().map(|c| c.source()),
            theirs.template.as_ref().map(|c| c.source()),
            "{name}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
