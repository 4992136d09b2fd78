use super::*;
use crate::model::error::ModelError;
use writer::GgufWriter;

fn write_tmp(bytes: &[u8], name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn sample() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.meta("general.architecture", MetaValue::Str("llama".into()))
        .meta("llama.block_count", MetaValue::U32(2))
        .meta("a.float", MetaValue::F32(1.5))
        .meta(
            "tokenizer.ggml.tokens",
            MetaValue::Array(MetaArray::Str(vec!["a".into(), "b".into()])),
        )
        .meta(
            "tokenizer.ggml.scores",
            MetaValue::Array(MetaArray::F32(vec![0.5, -1.0])),
        );
    let f32s: Vec<u8> = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
    w.tensor("t.f32", &[4, 2], GgmlType::F32, f32s);
    w.tensor("t.q8", &[32], GgmlType::Q8_0, vec![7u8; 34]);
    w
}

#[test]
fn round_trips_metadata_and_tensors() {
    let path = write_tmp(&sample().to_bytes(), "ok.gguf");
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_u64("llama.block_count").unwrap(), 2);
    assert_eq!(f.get_f64_or("a.float", 0.0).unwrap(), 1.5);
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap(),
        ["a", "b"]
    );
    assert_eq!(
        f.get_f32_array("tokenizer.ggml.scores").unwrap(),
        [0.5, -1.0]
    );
    let t = f.tensor_info("t.f32").unwrap();
    assert_eq!(t.dims, [4, 2]);
    let bytes = f.tensor_bytes(t);
    assert_eq!(f32::from_le_bytes(bytes[28..32].try_into().unwrap()), 7.0);
    let q = f.tensor_info("t.q8").unwrap();
    assert_eq!(f.tensor_bytes(q), &[7u8; 34][..]);
}

#[test]
fn wrong_key_type_and_missing_key_are_named() {
    let path = write_tmp(&sample().to_bytes(), "keys.gguf");
    let f = GgufFile::open(&path).unwrap();
    let e = f.get_u64("general.architecture").unwrap_err();
    assert!(matches!(e, ModelError::WrongKeyType { .. }), "{e}");
    let e = f.get_str("nope").unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("keys.gguf"), "{e}");
}

#[test]
fn every_truncation_is_a_clean_error() {
    let bytes = sample().to_bytes();
    for cut in 0..bytes.len() {
        let path = write_tmp(&bytes[..cut], "cut.gguf");
        match GgufFile::open(&path) {
            Err(ModelError::NotGguf { .. }) | Err(ModelError::Malformed { .. }) => {}
            Err(other) => panic!("cut at {cut}: unexpected error {other}"),
            // Cutting only the padding after the last tensor leaves a valid file.
            Ok(f) => assert!(
                f.tensors().iter().all(|t| t.n_bytes > 0),
                "cut at {cut} opened"
            ),
        }
    }
}

#[test]
fn bad_magic_and_version_are_named() {
    let path = write_tmp(b"GGML\x03\0\0\0", "magic.gguf");
    let e = GgufFile::open(&path).unwrap_err().to_string();
    assert!(e.contains("not a GGUF file"), "{e}");
    let mut bytes = sample().to_bytes();
    bytes[4] = 1;
    let path = write_tmp(&bytes, "v1.gguf");
    let e = GgufFile::open(&path).unwrap_err().to_string();
    assert!(e.contains("version 1"), "{e}");
}

#[test]
fn absurd_counts_do_not_allocate() {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&4u64.to_le_bytes());
    bytes.extend_from_slice(b"key!");
    bytes.extend_from_slice(&9u32.to_le_bytes());
    bytes.extend_from_slice(&8u32.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    let path = write_tmp(&bytes, "huge.gguf");
    let e = GgufFile::open(&path).unwrap_err().to_string();
    assert!(e.contains("more than the file holds"), "{e}");
}

#[test]
fn missing_file_names_the_path() {
    let e = GgufFile::open("/nonexistent/x.gguf")
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/x.gguf"), "{e}");
}
