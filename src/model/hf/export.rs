//! A Hugging Face checkpoint directory as the contents of a GGUF file, laid
//! out as llama.cpp's `convert_hf_to_gguf.py` lays it out, so that
//! llama.cpp reads what `switchyard quantize` writes:
//! - hyper-parameters under `{arch}.*` keys; Mistral is written as `llama`;
//! - Llama's q/k rows permuted from the halves RoPE layout to interleaved
//!   pairs (Qwen files keep halves, read in llama.cpp's NEOX mode);
//! - linear RoPE scaling as `rope.scaling.*` keys, Llama 3's as a
//!   `rope_freqs` tensor of per-pair divisors;
//! - vectors (norms, biases) in f32, matrices as the checkpoint stores them
//!   (quantization re-encodes them afterwards);
//! - the tokenizer as `tokenizer.ggml.*` metadata, with the chat template.

use super::config::HfConfig;
use super::safetensors::SafetensorsStore;
use super::{read_config, read_json, read_text_side, template_source};
use crate::backend::{Rope, RopeStyle, SharedBytes, WeightFormat};
use crate::model::config::Architecture;
use crate::model::convert::reencode;
use crate::model::error::{ModelError, Result};
use crate::model::gguf::{tensor_name, GgmlType, GgufContents, MetaValue, TensorSource};
use crate::model::rope_scaling::RopeScaling;
use crate::model::tensors::{LayerWeight, StoredType, TensorStore, Weight};
use crate::model::tokenizer::ExportHints;
use std::path::Path;

pub fn to_gguf(dir: &Path) -> Result<GgufContents> {
    let cfg = read_config(dir)?;
    let bad = |detail: String| ModelError::Malformed {
        path: dir.to_path_buf(),
        detail,
    };
    let model = &cfg.model;
    let arch = match model.architecture {
        Architecture::Mistral => "llama",
        a => a.name(),
    };
    let interleaved = arch == "llama";
    let mut metadata = hparams(dir, arch, &cfg);
    let mut tensors = Vec::new();
    if let Some(factors) = rope_factors(&cfg, interleaved).map_err(bad)? {
        let bytes = factors.iter().flat_map(|f| f.to_le_bytes()).collect();
        tensors.push(TensorSource {
            name: tensor_name(Weight::RopeFreqs),
            dims: vec![factors.len() as u64],
            ty: GgmlType::F32,
            data: SharedBytes::owned(bytes),
        });
    }
    metadata.extend(tokenizer_metadata(dir, &cfg)?);

    let store = SafetensorsStore::open(dir)?;
    let mut weights = vec![Weight::Embedding, Weight::OutputNorm];
    if !model.tied_embeddings {
        weights.push(Weight::Output);
    }
    for l in 0..model.n_layers {
        weights.extend(LayerWeight::ALL.map(|lw| Weight::Layer(l, lw)));
    }
    for w in weights {
        let Some(t) = store.get(w)? else {
            continue;
        };
        let format = match t.ty {
            StoredType::Known(f @ (WeightFormat::F32 | WeightFormat::F16 | WeightFormat::Bf16)) => {
                f
            }
            StoredType::Known(f) => return Err(bad(format!("`{}` is {}", t.name, f.name()))),
            StoredType::Unsupported(ty) => {
                return Err(bad(format!("`{}` is {ty}, not f32, f16 or bf16", t.name)))
            }
        };
        let rows = t.shape.first().copied().unwrap_or(1);
        let mut data = t.data.clone();
        if interleaved
            && matches!(
                w,
                Weight::Layer(
                    _,
                    LayerWeight::Q | LayerWeight::K | LayerWeight::QBias | LayerWeight::KBias
                )
            )
        {
            data = SharedBytes::owned(interleave_heads(&data, rows, model.heads.head_dim));
        }
        let (ty, data) = if t.shape.len() == 1 && format != WeightFormat::F32 {
            let (_, f32s) =
                reencode(format, WeightFormat::F32, 1, rows, &data).ok_or_else(|| {
                    bad(format!(
                        "`{}` has {} bytes for {rows} values",
                        t.name,
                        data.len()
                    ))
                })?;
            (GgmlType::F32, SharedBytes::owned(f32s))
        } else {
            (GgmlType::of(format), data)
        };
        tensors.push(TensorSource {
            name: tensor_name(w),
            dims: t.shape.iter().rev().map(|&d| d as u64).collect(),
            ty,
            data,
        });
    }
    Ok(GgufContents { metadata, tensors })
}

fn hparams(dir: &Path, arch: &str, cfg: &HfConfig) -> Vec<(String, MetaValue)> {
    let m = &cfg.model;
    let key = |k: &str| format!("{arch}.{k}");
    let u = |v: usize| MetaValue::U32(v as u32);
    let name = dir
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    let mut meta = vec![
        ("general.architecture".into(), MetaValue::Str(arch.into())),
        ("general.name".into(), MetaValue::Str(name)),
        (key("block_count"), u(m.n_layers)),
        (key("context_length"), u(m.context_length)),
        (key("embedding_length"), u(m.d_model)),
        (key("feed_forward_length"), u(m.ffn_dim)),
        (key("attention.head_count"), u(m.heads.n_heads)),
        (key("attention.head_count_kv"), u(m.heads.n_kv_heads)),
        (key("attention.key_length"), u(m.heads.head_dim)),
        (key("attention.value_length"), u(m.heads.head_dim)),
        (key("rope.dimension_count"), u(m.rope.dims)),
        (key("rope.freq_base"), MetaValue::F32(cfg.rope_theta)),
        (
            key("attention.layer_norm_rms_epsilon"),
            MetaValue::F32(m.rms_eps),
        ),
        (key("vocab_size"), u(m.vocab_size)),
    ];
    if let Some(RopeScaling::Linear { factor }) = cfg.rope_scaling {
        meta.push((key("rope.scaling.type"), MetaValue::Str("linear".into())));
        meta.push((key("rope.scaling.factor"), MetaValue::F32(factor)));
    }
    meta
}

/// Llama 3's scaling as the per-pair divisors llama.cpp reads from
/// `rope_freqs`: the plain frequencies over the scaled ones.
fn rope_factors(
    cfg: &HfConfig,
    interleaved: bool,
) -> std::result::Result<Option<Vec<f32>>, String> {
    let Some(RopeScaling::Llama3 { .. }) = cfg.rope_scaling else {
        return Ok(None);
    };
    if !interleaved {
        return Err(format!(
            "llama3 RoPE scaling on a {} model has no GGUF form",
            cfg.model.architecture.name()
        ));
    }
    let plain = Rope::new(RopeStyle::Halves, cfg.model.rope.dims, cfg.rope_theta);
    Ok(Some(
        plain
            .inv_freq
            .iter()
            .zip(&cfg.model.rope.inv_freq)
            .map(|(p, s)| p / s)
            .collect(),
    ))
}

fn tokenizer_metadata(dir: &Path, cfg: &HfConfig) -> Result<Vec<(String, MetaValue)>> {
    let path = dir.join("tokenizer.json");
    let json = read_json(&path)?.ok_or_else(|| ModelError::Tokenizer {
        path: path.clone(),
        detail: "a GGUF file needs the tokenizer, and the directory has no tokenizer.json".into(),
    })?;
    let text = read_text_side(dir, cfg)?;
    let tokenizer_config = read_json(&dir.join("tokenizer_config.json"))?;
    let hints = ExportHints {
        n_vocab: cfg.model.vocab_size,
        clean_spaces: tokenizer_config
            .as_ref()
            .and_then(|c| c["clean_up_tokenization_spaces"].as_bool()),
    };
    if text.tokenizer.vocab_size() > hints.n_vocab {
        return Err(ModelError::Tokenizer {
            path,
            detail: format!(
                "{} tokens for an embedding of {} rows",
                text.tokenizer.vocab_size(),
                hints.n_vocab
            ),
        });
    }
    let mut meta = text
        .tokenizer
        .gguf_metadata(&json, &hints)
        .map_err(|detail| ModelError::Tokenizer {
            path: path.clone(),
            detail,
        })?;
    if let Some(template) = template_source(dir, tokenizer_config.as_ref())? {
        meta.push(("tokenizer.chat_template".into(), MetaValue::Str(template)));
    }
    Ok(meta)
}

/// Each head's rows reordered from halves (x₀…x_{d/2−1}, x_{d/2}…) to
/// interleaved pairs (x₀, x_{d/2}, x₁, …), as the converter's `permute`;
/// rows of one value each for a bias.
fn interleave_heads(data: &[u8], rows: usize, head_dim: usize) -> Vec<u8> {
    let row_bytes = data.len() / rows.max(1);
    let half = head_dim / 2;
    let mut out = vec![0u8; data.len()];
    for (r, dst) in out.chunks_exact_mut(row_bytes).enumerate() {
        let (head, within) = (r / head_dim, r % head_dim);
        let src = head * head_dim + (within % 2) * half + within / 2;
        dst.copy_from_slice(&data[src * row_bytes..(src + 1) * row_bytes]);
    }
    out
}
