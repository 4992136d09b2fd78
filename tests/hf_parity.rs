//! switchyard against Hugging Face transformers on tiny random checkpoints
//! of every supported architecture (tests/data/hf/, made by
//! tests/hf/make_fixtures.py): Llama with Llama-3 rope scaling and a
//! sharded checkpoint, Mistral with a byte-fallback SentencePiece-style
//! tokenizer, Qwen2 with q/k/v biases and tied embeddings, Qwen3 with q/k
//! norms and an explicit head size; each with f32 and bf16 weights.
//!
//! For every prompt: the same token ids (tokenizer.json through the
//! `tokenizers` crate, the chat template through minijinja), the same
//! prompt logprobs, and the same 16 greedy tokens with top-5 logprobs,
//! within 1e-3 of transformers' f32 computation. A greedy token may differ
//! only where transformers' own top-two margin is below that.

mod common;

use common::log_softmax;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use switchyard::backend::cpu::{ComputePool, CpuBackend, Isa};
use switchyard::model::loaded::load;
use switchyard::model::{Architecture, ModelSource};

const TOLERANCE: f64 = 1e-3;

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hf");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn every_architecture_and_dtype_has_a_fixture() {
    let names: Vec<String> = fixtures()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for arch in ["llama", "mistral", "qwen2", "qwen3"] {
        for dtype in ["f32", "bf16"] {
            let want = format!("{arch}-{dtype}");
            assert!(names.contains(&want), "missing fixture {want}: {names:?}");
        }
    }
}

#[test]
fn avx512_matches_transformers() {
    check(Isa::Avx512);
}

#[test]
fn avx2_matches_transformers() {
    check(Isa::Avx2);
}

fn check(isa: Isa) {
    let Some(backend) = CpuBackend::with_isa(Arc::new(ComputePool::new(2)), isa) else {
        eprintln!("this CPU has no {isa:?}; nothing to check on that path");
        return;
    };
    let mut failures = Vec::new();
    for dir in fixtures() {
        let fixture = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let m = load(&ModelSource::HuggingFace(dir.clone()), None, &backend)
            .unwrap_or_else(|e| panic!("{fixture}: {e}"));
        let arch = Architecture::from_name(expected["model_type"].as_str().unwrap());
        assert_eq!(Some(m.model.config.architecture), arch, "{fixture}");
        let mut worst = 0f64;
        for case in expected["cases"].as_array().unwrap() {
            let name = format!("{fixture}/{}", case["name"].as_str().unwrap());
            let text = case["text"].as_str().unwrap();
            let prompt = ids(&case["prompt_token_ids"]);
            if case["kind"] == "chat" {
                let tmpl = m.template.as_ref().expect("a chat template");
                let messages = case["messages"].as_array().unwrap();
                let rendered = tmpl.render(messages, true, &Default::default()).unwrap();
                if rendered != text {
                    failures.push(format!(
                        "{name}: template renders {rendered:?}, expected {text:?}"
                    ));
                }
            }
            let add_special = case["add_special_tokens"].as_bool().unwrap();
            let encoded = m.tokenizer.encode(text, add_special, true);
            if encoded != prompt {
                failures.push(format!(
                    "{name}: tokenized to {encoded:?}, expected {prompt:?}"
                ));
            }

            // Prompt logprobs: position i predicts token i + 1.
            let rows = common::score(&m.model, &backend, &prompt);
            for (i, want) in case["prompt_logprobs"]
                .as_array()
                .unwrap()
                .iter()
                .enumerate()
            {
                let got = log_softmax(&rows[i])[prompt[i + 1] as usize];
                let err = (got - want.as_f64().unwrap()).abs();
                worst = worst.max(err);
                if err > TOLERANCE {
                    failures.push(format!("{name}: prompt logprob {i} off by {err:.2e}"));
                }
            }

            // Greedy decoding, one token per step.
            let steps = case["steps"].as_array().unwrap();
            let ours = common::greedy(&m.model, &backend, &prompt, steps.len());
            for (j, (step, (logits, token))) in steps.iter().zip(&ours).enumerate() {
                let lp = log_softmax(logits);
                for pair in step["top"].as_array().unwrap() {
                    let (id, want) = (
                        pair[0].as_u64().unwrap() as usize,
                        pair[1].as_f64().unwrap(),
                    );
                    let err = (lp[id] - want).abs();
                    worst = worst.max(err);
                    if err > TOLERANCE {
                        failures.push(format!("{name}: step {j} logprob of {id} off by {err:.2e}"));
                    }
                }
                let theirs = step["token_id"].as_u64().unwrap() as u32;
                if *token != theirs {
                    let margin = step["margin"].as_f64().unwrap();
                    if margin >= TOLERANCE {
                        failures.push(format!(
                            "{name}: step {j} picks {token}, transformers {theirs} (margin {margin:.2e})"
                        ));
                    }
                    // The paths part here; later steps are not comparable.
                    break;
                }
            }
        }
        eprintln!("{fixture:>12} ({isa:?}): largest logprob difference {worst:.2e}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
