//! The GGUF path of every architecture against the safetensors path: each
//! Hugging Face fixture is written as llama.cpp's converter would write it
//! (Llama's q/k rows permuted for interleaved RoPE, Llama 3 scaling as a
//! `rope_freqs` tensor, Qwen's halves layout kept), and both files must
//! give the same logits.

use super::writer::GgufWriter;
use super::{tensor_name, GgmlType, GgufFile, MetaValue};
use crate::backend::cpu::{ComputePool, CpuBackend};
use crate::backend::{RopeStyle, WeightFormat};
use crate::model::config::{Architecture, ModelConfig};
use crate::model::hf::{self, safetensors::SafetensorsStore};
use crate::model::tensors::{LayerWeight as L, StoredType, TensorStore, Weight};
use crate::model::Transformer;
use std::path::Path;
use std::sync::Arc;

const LAYER_WEIGHTS: [L; 15] = [
    L::AttnNorm,
    L::Q,
    L::K,
    L::V,
    L::O,
    L::QBias,
    L::KBias,
    L::VBias,
    L::OBias,
    L::QNorm,
    L::KNorm,
    L::FfnNorm,
    L::Gate,
    L::Up,
    L::Down,
];

/// Rows of each head reordered from halves (x₀…x_{d/2-1}, x_{d/2}…) to
/// interleaved pairs, as convert_hf_to_gguf.py's `permute` does.
fn permute_heads(data: &[u8], rows: usize, row_bytes: usize, head_dim: usize) -> Vec<u8> {
    let mut out = vec![0u8; data.len()];
    let half = head_dim / 2;
    for r in 0..rows {
        let (h, within) = (r / head_dim, r % head_dim);
        let (i, j) = (within / 2, within % 2);
        let src = h * head_dim + j * half + i;
        out[r * row_bytes..(r + 1) * row_bytes]
            .copy_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
    }
    out
}

fn to_gguf(dir: &Path, out: &Path) -> ModelConfig {
    let cfg = hf::read_config(dir).unwrap().model;
    let store = SafetensorsStore::open(dir).unwrap();
    let arch = match cfg.architecture {
        Architecture::Mistral => "llama",
        a => a.name(),
    };
    let interleaved = arch == "llama";
    let key = |k: &str| format!("{arch}.{k}");
    let mut w = GgufWriter::new();
    w.meta("general.architecture", MetaValue::Str(arch.into()))
        .meta(&key("block_count"), MetaValue::U32(cfg.n_layers as u32))
        .meta(
            &key("context_length"),
            MetaValue::U32(cfg.context_length as u32),
        )
        .meta(&key("embedding_length"), MetaValue::U32(cfg.d_model as u32))
        .meta(
            &key("feed_forward_length"),
            MetaValue::U32(cfg.ffn_dim as u32),
        )
        .meta(
            &key("attention.head_count"),
            MetaValue::U32(cfg.heads.n_heads as u32),
        )
        .meta(
            &key("attention.head_count_kv"),
            MetaValue::U32(cfg.heads.n_kv_heads as u32),
        )
        .meta(
            &key("attention.key_length"),
            MetaValue::U32(cfg.heads.head_dim as u32),
        )
        .meta(&key("vocab_size"), MetaValue::U32(cfg.vocab_size as u32))
        .meta(
            &key("attention.layer_norm_rms_epsilon"),
            MetaValue::F32(cfg.rms_eps),
        );
    // The plain frequencies; scaling travels as per-pair divisors.
    let plain = crate::backend::Rope::new(RopeStyle::Halves, cfg.rope.dims, theta(dir));
    w.meta(&key("rope.freq_base"), MetaValue::F32(theta(dir)));
    let factors: Vec<f32> = plain
        .inv_freq
        .iter()
        .zip(&cfg.rope.inv_freq)
        .map(|(p, s)| p / s)
        .collect();
    if factors.iter().any(|&f| f != 1.0) {
        let bytes = factors.iter().flat_map(|f| f.to_le_bytes()).collect();
        w.tensor(
            &tensor_name(Weight::RopeFreqs),
            &[factors.len() as u64],
            GgmlType::F32,
            bytes,
        );
    }
    let mut weights = vec![Weight::Embedding, Weight::Output, Weight::OutputNorm];
    for l in 0..cfg.n_layers {
        weights.extend(LAYER_WEIGHTS.iter().map(|&lw| Weight::Layer(l, lw)));
    }
    for wt in weights {
        let Some(t) = store.get(wt).unwrap() else {
            continue;
        };
        let StoredType::Known(format) = t.ty else {
            panic!("{}: unexpected type", t.name)
        };
        let ty = match format {
            WeightFormat::F32 => GgmlType::F32,
            WeightFormat::Bf16 => GgmlType::Bf16,
            other => panic!("fixture in {other:?}"),
        };
        let mut data = t.data.to_vec();
        let is_qk = matches!(wt, Weight::Layer(_, L::Q | L::K | L::QBias | L::KBias));
        if interleaved && is_qk {
            let rows = t.shape[0];
            data = permute_heads(&data, rows, data.len() / rows, cfg.heads.head_dim);
        }
        let dims: Vec<u64> = t.shape.iter().rev().map(|&d| d as u64).collect();
        w.tensor(&tensor_name(wt), &dims, ty, data);
    }
    std::fs::write(out, w.to_bytes()).unwrap();
    cfg
}

fn theta(dir: &Path) -> f32 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    v["rope_parameters"]["rope_theta"]
        .as_f64()
        .or_else(|| v["rope_theta"].as_f64())
        .unwrap_or(10000.0) as f32
}

#[test]
fn every_architecture_computes_the_same_from_gguf_as_from_safetensors() {
    let b = CpuBackend::new(Arc::new(ComputePool::new(1)));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hf");
    let tmp = std::env::temp_dir().join(format!("switchyard-from-hf-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let ids = [5u32, 77, 120, 9, 300, 41, 250, 3];
    for name in ["llama-f32", "mistral-bf16", "qwen2-f32", "qwen3-bf16"] {
        let dir = root.join(name);
        let path = tmp.join(format!("{name}.gguf"));
        let cfg = to_gguf(&dir, &path);
        let file = GgufFile::open(&path).unwrap();
        let from_gguf = ModelConfig::from_gguf(&file).unwrap();
        assert_eq!(from_gguf.attention_bias, cfg.attention_bias, "{name}");
        assert_eq!(from_gguf.qk_norm, cfg.qk_norm, "{name}");
        let g = Transformer::load(&file, from_gguf, &b).unwrap();
        let store = SafetensorsStore::open(&dir).unwrap();
        let h = Transformer::load(&store, cfg, &b).unwrap();
        let (lg, lh) = (g.last_logits(&b, &ids), h.last_logits(&b, &ids));
        let diff = lg
            .iter()
            .zip(&lh)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            diff < 1e-4,
            "{name}: GGUF and safetensors logits differ by {diff}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
