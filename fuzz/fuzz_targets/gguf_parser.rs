//! Arbitrary bytes as a GGUF file: opening it, reading its configuration,
//! tokenizer and every tensor's bytes answers Ok or an error, never a
//! panic or an out-of-bounds read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::model::config::ModelConfig;
use switchyard::model::gguf::GgufFile;
use switchyard::model::tokenizer::Tokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes("fuzz.gguf", data) else {
        return;
    };
    for (_, value) in file.metadata() {
        let _ = value.summary();
    }
    let mut total = 0usize;
    for info in file.tensors() {
        total = total.wrapping_add(file.tensor_bytes(info).len());
    }
    let _ = ModelConfig::from_gguf(&file);
    if let Ok(tokenizer) = Tokenizer::from_gguf(&file) {
        let ids = tokenizer.encode("Hello world, 123!", true, true);
        let _ = tokenizer.decode(&ids, false);
    }
    std::hint::black_box(total);
});
