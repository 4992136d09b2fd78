//! Dummy weights: every preset is a valid model; weights are the same on
//! every load; the tiny preset runs.

use super::presets::PRESETS;
use crate::backend::cpu::{ComputePool, CpuBackend};
use crate::backend::WeightFormat;
use crate::model::loaded::{load, ModelSource};
use std::path::Path;
use std::sync::Arc;

fn backend() -> CpuBackend {
    CpuBackend::new(Arc::new(ComputePool::new(1)))
}

#[test]
fn every_preset_is_a_valid_configuration() {
    for p in PRESETS {
        p.config().validate(Path::new(p.name)).unwrap();
    }
    let tiny = super::presets::find("tiny").unwrap().config();
    assert_eq!((tiny.n_layers, tiny.d_model, tiny.vocab_size), (2, 64, 256));
}

fn logits_of(source: &ModelSource, dtype: Option<WeightFormat>) -> Vec<f32> {
    let b = backend();
    let m = load(source, dtype, &b).unwrap();
    let ids = m.tokenizer.encode("dummy weights", false, false);
    m.model.last_logits(&b, &ids)
}

#[test]
fn the_same_preset_gives_the_same_model_and_formats_differ() {
    let tiny = ModelSource::dummy("tiny").unwrap();
    let a = logits_of(&tiny, None);
    assert_eq!(a, logits_of(&tiny, None));
    assert!(a.iter().all(|x| x.is_finite()));
    let q4 = logits_of(&tiny, Some(WeightFormat::Q4_0));
    assert_ne!(a, q4);
}

#[test]
fn a_config_json_gives_its_architecture_and_its_tokenizer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hf/qwen2-f32");
    let source = ModelSource::dummy(dir.join("config.json").to_str().unwrap()).unwrap();
    let m = load(&source, None, &backend()).unwrap();
    assert_eq!(
        m.model.config.architecture,
        crate::model::Architecture::Qwen2
    );
    assert!(m.model.config.attention_bias);
    // The directory's tokenizer.json, not the byte tokenizer.
    assert!(m.tokenizer.encode("hello", false, true).len() < 5);
    assert_eq!(m.weights, "dummy f32");
}

#[test]
fn an_unknown_spec_lists_the_presets() {
    let e = ModelSource::dummy("no-such-model").unwrap_err().to_string();
    assert!(e.contains("tiny") && e.contains("llama-3.1-8b"), "{e}");
}

#[test]
fn the_byte_tokenizer_is_one_token_per_byte() {
    let t = crate::model::tokenizer::Tokenizer::bytes(256);
    let ids = t.encode("é!", true, true);
    assert_eq!(ids, vec![0xC3, 0xA9, b'!' as u32]);
    assert_eq!(t.decode(&ids, true), "é!");
    assert_eq!(t.eos_id(), None);
    let big = crate::model::tokenizer::Tokenizer::bytes(1000);
    let ids = big.encode("<|end_of_text|>x", false, true);
    assert_eq!(ids, vec![257, b'x' as u32]);
    assert!(big.is_eog(257));
    assert_eq!(big.decode(&ids, true), "x");
}
