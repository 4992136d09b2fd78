//! Loader errors and forward-pass invariants on small generated models.

use super::config::ModelConfig;
use super::error::ModelError;
use super::gguf::writer::GgufWriter;
use super::gguf::{GgmlType, GgufFile, MetaArray, MetaValue};
use super::transformer::{OneSequence, Transformer as Llama};
use crate::backend::cpu::{ComputePool, CpuBackend};
use crate::backend::quant::{quantize_q4_1, quantize_q8_0};
use std::sync::Arc;

const D: usize = 64;
const FFN: usize = 96;
const VOCAB: usize = 40;
const LAYERS: usize = 2;

fn values(n: usize, seed: u64) -> Vec<f32> {
    crate::backend::testing::uniform(n, seed, 0.4)
}

/// A 2-layer Llama with random weights: Q4_1 matrices, Q8_0 embedding,
/// optionally an untied output, minus the tensors named in `skip`.
fn tiny_llama(arch: &str, untied: bool, skip: &[&str]) -> GgufWriter {
    let mut w = GgufWriter::new();
    w.meta("general.architecture", MetaValue::Str(arch.into()))
        .meta("llama.block_count", MetaValue::U32(LAYERS as u32))
        .meta("llama.context_length", MetaValue::U32(128))
        .meta("llama.embedding_length", MetaValue::U32(D as u32))
        .meta("llama.feed_forward_length", MetaValue::U32(FFN as u32))
        .meta("llama.attention.head_count", MetaValue::U32(4))
        .meta("llama.attention.head_count_kv", MetaValue::U32(2))
        .meta("llama.rope.freq_base", MetaValue::F32(10000.0))
        .meta(
            "llama.attention.layer_norm_rms_epsilon",
            MetaValue::F32(1e-5),
        )
        .meta(
            "tokenizer.ggml.tokens",
            MetaValue::Array(MetaArray::Str(
                (0..VOCAB).map(|i| format!("t{i}")).collect(),
            )),
        );
    let mut seed = 1;
    let mut add = |w: &mut GgufWriter, name: &str, rows: usize, cols: usize, ty: GgmlType| {
        seed += 1;
        if skip.contains(&name) {
            return;
        }
        let v = values(rows * cols, seed);
        let (dims, data): (Vec<u64>, Vec<u8>) = match ty {
            GgmlType::F32 => {
                let v: Vec<f32> = v.iter().map(|x| 1.0 + x).collect();
                (
                    vec![cols as u64],
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                )
            }
            GgmlType::Q8_0 => (vec![cols as u64, rows as u64], quantize_q8_0(&v)),
            _ => (vec![cols as u64, rows as u64], quantize_q4_1(&v)),
        };
        w.tensor(name, &dims, ty, data);
    };
    add(&mut w, "token_embd.weight", VOCAB, D, GgmlType::Q8_0);
    add(&mut w, "output_norm.weight", 1, D, GgmlType::F32);
    if untied {
        add(&mut w, "output.weight", VOCAB, D, GgmlType::Q4_1);
    }
    for l in 0..LAYERS {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        add(&mut w, &n("attn_norm"), 1, D, GgmlType::F32);
        add(&mut w, &n("ffn_norm"), 1, D, GgmlType::F32);
        add(&mut w, &n("attn_q"), D, D, GgmlType::Q4_1);
        add(&mut w, &n("attn_k"), 32, D, GgmlType::Q4_1);
        add(&mut w, &n("attn_v"), 32, D, GgmlType::Q4_1);
        add(&mut w, &n("attn_output"), D, D, GgmlType::Q4_1);
        add(&mut w, &n("ffn_gate"), FFN, D, GgmlType::Q4_1);
        add(&mut w, &n("ffn_up"), FFN, D, GgmlType::Q4_1);
        add(&mut w, &n("ffn_down"), D, FFN, GgmlType::Q4_1);
    }
    w
}

fn write(w: &GgufWriter, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, w.to_bytes()).unwrap();
    p
}

fn backend() -> CpuBackend {
    CpuBackend::new(Arc::new(ComputePool::new(2)))
}

fn load(w: &GgufWriter, name: &str) -> Result<Llama<CpuBackend>, ModelError> {
    let f = GgufFile::open(write(w, name))?;
    let cfg = ModelConfig::from_gguf(&f)?;
    Llama::load(&f, cfg, &backend())
}

#[test]
fn missing_tensor_is_named_with_the_file() {
    let e = load(
        &tiny_llama("llama", false, &["blk.1.ffn_up.weight"]),
        "missing.gguf",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("missing.gguf") && e.contains("blk.1.ffn_up.weight") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn unknown_architecture_is_named() {
    let e = load(&tiny_llama("mamba", false, &[]), "arch.gguf")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("architecture `mamba`") && e.contains("arch.gguf"),
        "{e}"
    );
}

#[test]
fn unsupported_tensor_type_is_named() {
    let mut w = tiny_llama("llama", false, &["blk.0.attn_q.weight"]);
    // Q3_K blocks hold 256 values: 64×256 is a whole number of them.
    w.tensor(
        "blk.0.attn_q.weight",
        &[D as u64, D as u64],
        GgmlType::Q3K,
        vec![0u8; D * D / 256 * 110],
    );
    let e = load(&w, "q3k.gguf").err().unwrap().to_string();
    assert!(
        e.contains("blk.0.attn_q.weight") && e.contains("Q3_K") && e.contains("not supported"),
        "{e}"
    );
}

#[test]
fn wrong_shape_is_named() {
    let mut w = tiny_llama("llama", false, &["blk.0.attn_k.weight"]);
    w.tensor(
        "blk.0.attn_k.weight",
        &[D as u64, 64],
        GgmlType::Q8_0,
        quantize_q8_0(&values(64 * D, 9)),
    );
    let e = load(&w, "shape.gguf").err().unwrap().to_string();
    assert!(
        e.contains("blk.0.attn_k.weight") && e.contains("shape"),
        "{e}"
    );
}

fn logits_all_at_once(m: &Llama<CpuBackend>, b: &CpuBackend, ids: &[u32]) -> Vec<f32> {
    let mut one = OneSequence::new(m, b, ids.len()).unwrap();
    let rows: Vec<usize> = (0..ids.len()).collect();
    one.push(m, b, ids, &rows)
}

#[test]
fn cached_decoding_equals_the_full_pass_bit_for_bit() {
    for untied in [false, true] {
        let m = load(
            &tiny_llama("llama", untied, &[]),
            &format!("inv-{untied}.gguf"),
        )
        .unwrap();
        let b = backend();
        let ids: Vec<u32> = vec![3, 17, 5, 39, 0, 22, 8, 8, 11];
        let full = logits_all_at_once(&m, &b, &ids);
        let mut one = OneSequence::new(&m, &b, ids.len()).unwrap();
        // A 4-token chunk, then one token at a time.
        let mut stepwise = one.push(&m, &b, &ids[..4], &[0, 1, 2, 3]);
        for &id in &ids[4..] {
            stepwise.extend(one.push(&m, &b, &[id], &[0]));
        }
        assert_eq!(full.len(), ids.len() * VOCAB);
        let same = full
            .iter()
            .zip(&stepwise)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "untied={untied}: logits depend on how the sequence was batched"
        );
        assert!(full.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn tied_and_untied_heads_differ() {
    let b = backend();
    let tied = load(&tiny_llama("llama", false, &[]), "tied.gguf").unwrap();
    let untied = load(&tiny_llama("llama", true, &[]), "untied.gguf").unwrap();
    assert_ne!(
        logits_all_at_once(&tied, &b, &[1, 2]),
        logits_all_at_once(&untied, &b, &[1, 2])
    );
}

#[test]
fn every_instruction_set_computes_the_same_logits_up_to_rounding() {
    use crate::backend::cpu::Isa;
    let w = tiny_llama("llama", true, &[]);
    let path = write(&w, "isa.gguf");
    let ids = [4u32, 9, 33, 1, 27];
    let per_isa: Vec<(Isa, Vec<f32>)> = [Isa::Avx512, Isa::Avx2, Isa::Scalar]
        .into_iter()
        .filter_map(|isa| {
            let b = CpuBackend::with_isa(Arc::new(ComputePool::new(2)), isa)?;
            let f = GgufFile::open(&path).unwrap();
            let m = Llama::load(&f, ModelConfig::from_gguf(&f).unwrap(), &b).unwrap();
            Some((isa, logits_all_at_once(&m, &b, &ids)))
        })
        .collect();
    assert!(per_isa.iter().any(|(isa, _)| *isa == Isa::Scalar));
    let (_, reference) = &per_isa[per_isa.len() - 1];
    for (isa, logits) in &per_isa {
        let worst = logits
            .iter()
            .zip(reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-4,
            "{isa:?} differs from the portable path by {worst}"
        );
    }
}
