//! Hugging Face directories: what loads, and the errors for what does not.
//! Parity of the numbers with transformers is tests/hf_parity.rs.

use crate::backend::cpu::{ComputePool, CpuBackend};
use crate::model::loaded::{load, load_tokenizer, ModelSource};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/hf")
        .join(name)
}

fn backend() -> CpuBackend {
    CpuBackend::new(Arc::new(ComputePool::new(1)))
}

/// A copy of a fixture in a fresh temporary directory, to break; removed
/// when dropped.
struct Copy(PathBuf);

impl std::ops::Deref for Copy {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_of(name: &str, tag: &str) -> Copy {
    let dir = std::env::temp_dir().join(format!("switchyard-hf-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    Copy(dir)
}

fn load_error(dir: &Path) -> String {
    match load(
        &ModelSource::HuggingFace(dir.to_path_buf()),
        None,
        &backend(),
    ) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn end_of_sequence_ids_come_from_every_file_that_names_them() {
    // config.json says 383; generation_config.json says [380, 383].
    let tok = load_tokenizer(&ModelSource::HuggingFace(fixture("llama-f32"))).unwrap();
    assert_eq!(tok.eog_ids(), &[380, 383]);
    assert!(tok.add_bos(), "Llama 3's post-processor adds BOS");
    let tok = load_tokenizer(&ModelSource::HuggingFace(fixture("qwen2-f32"))).unwrap();
    assert!(!tok.add_bos());
    assert_eq!(tok.eog_ids().len(), 1);
}

#[test]
fn generation_config_gives_default_sampling() {
    let m = load(
        &ModelSource::HuggingFace(fixture("llama-bf16")),
        None,
        &backend(),
    )
    .unwrap();
    assert_eq!(m.defaults.temperature, Some(0.6));
    assert_eq!(m.defaults.top_p, Some(0.9));
    assert_eq!(m.defaults.top_k, None);
}

#[test]
fn tokens_decode_back_to_their_text() {
    for name in ["llama-f32", "mistral-f32", "qwen3-f32"] {
        let tok = load_tokenizer(&ModelSource::HuggingFace(fixture(name))).unwrap();
        let text = "The café ☕ opens at 7, doesn't it?";
        let ids = tok.encode(text, false, true);
        assert_eq!(tok.decode(&ids, true), text, "{name}");
    }
}

#[test]
fn a_missing_tensor_is_named_as_the_checkpoint_names_it() {
    let dir = copy_of("qwen2-f32", "missing");
    // Drop one tensor from the header by renaming it in place.
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = b"model.layers.1.mlp.up_proj.weight";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + 6] = b'X';
    std::fs::write(&path, bytes).unwrap();
    let e = load_error(&dir);
    assert!(
        e.contains("model.layers.1.mlp.up_proj.weight") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn a_truncated_safetensors_file_is_a_clean_error() {
    let dir = copy_of("mistral-bf16", "truncated");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let e = load_error(&dir);
        assert!(e.contains("model.safetensors"), "cut at {cut}: {e}");
    }
}

#[test]
fn unsupported_architectures_and_options_are_named() {
    let dir = copy_of("llama-bf16", "arch");
    let config = dir.join("config.json");
    edit_json(&config, |v| {
        v["model_type"] = "gpt2".into();
        v["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
    });
    let e = load_error(&dir);
    assert!(e.contains("GPT2LMHeadModel") && e.contains("qwen3"), "{e}");

    let dir = copy_of("llama-bf16", "scaling");
    edit_json(&dir.join("config.json"), |v| {
        v["rope_parameters"]["rope_type"] = "yarn".into();
    });
    let e = load_error(&dir);
    assert!(e.contains("rope scaling `yarn`"), "{e}");

    let dir = copy_of("llama-bf16", "quantized");
    edit_json(&dir.join("config.json"), |v| {
        v["quantization_config"] = serde_json::json!({"quant_method": "awq"});
    });
    let e = load_error(&dir);
    assert!(e.contains("awq"), "{e}");
}

#[test]
fn a_shard_index_may_not_point_outside_its_directory() {
    let dir = copy_of("llama-f32", "index");
    edit_json(&dir.join("model.safetensors.index.json"), |v| {
        v["weight_map"]["lm_head.weight"] = "../elsewhere.safetensors".into();
    });
    let e = load_error(&dir);
    assert!(e.contains("is not a file name"), "{e}");
}

#[test]
fn dtype_re_encodes_weights_and_stays_close() {
    let src = ModelSource::HuggingFace(fixture("qwen3-f32"));
    let b = backend();
    let exact = load(&src, None, &b).unwrap();
    let q8 = load(&src, Some(crate::backend::WeightFormat::Q8_0), &b).unwrap();
    let ids = exact.tokenizer.encode("Hello there", true, true);
    let (a, q) = (
        exact.model.last_logits(&b, &ids),
        q8.model.last_logits(&b, &ids),
    );
    let diff = a
        .iter()
        .zip(&q)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(
        diff > 0.0,
        "q8_0 changed nothing: the conversion did not happen"
    );
    assert!(diff < 0.5, "q8_0 logits moved by {diff}");
}

#[test]
fn f16_checkpoints_load_and_match_their_f32_source() {
    use ::safetensors::{serialize_to_file, tensor::TensorView, Dtype, SafeTensors};
    let dir = copy_of("qwen2-f32", "f16");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let f32_file = SafeTensors::deserialize(&bytes).unwrap();
    let halves: Vec<(String, Vec<usize>, Vec<u8>)> = f32_file
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let data = t
                .data()
                .chunks_exact(4)
                .flat_map(|c| {
                    let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    half::f16::from_f32(v).to_le_bytes()
                })
                .collect();
            (name, t.shape().to_vec(), data)
        })
        .collect();
    let views: Vec<(String, TensorView)> = halves
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F16, s.clone(), d).unwrap(),
            )
        })
        .collect();
    serialize_to_file(views, None, &path).unwrap();

    let b = backend();
    let f32_model = load(&ModelSource::HuggingFace(fixture("qwen2-f32")), None, &b).unwrap();
    let f16_model = load(&ModelSource::HuggingFace(dir.to_path_buf()), None, &b).unwrap();
    let ids = f32_model.tokenizer.encode("Hello there", true, true);
    let (a, h) = (
        f32_model.model.last_logits(&b, &ids),
        f16_model.model.last_logits(&b, &ids),
    );
    let diff = a
        .iter()
        .zip(&h)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(
        diff > 0.0,
        "the f16 file holds the same bits as the f32 one"
    );
    assert!(diff < 0.05, "f16 weights moved the logits by {diff}");
}
