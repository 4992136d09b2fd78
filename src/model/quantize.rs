//! `switchyard quantize`: a GGUF file or a Hugging Face checkpoint with its
//! weight matrices re-encoded in another format, written as a GGUF v3 file
//! llama.cpp also reads.
//! Metadata is carried over as it is, but for `general.file_type` (set to
//! llama.cpp's code for the format) and `general.quantization_version`.
//! Vectors (norms, biases, RoPE factors) stay as they are, as llama.cpp's
//! quantizer keeps them, and the output projection keeps at least Q6_K
//! unless `pure` (`convert::format_for`).

use super::convert::{format_for, reencode};
use super::gguf::writer::GgufWriter;
use super::gguf::{tensor_name, GgmlType, GgufContents, GgufFile, MetaValue};
use super::hf::export;
use super::tensors::Weight;
use crate::backend::WeightFormat;
use std::io::Write;
use std::path::Path;

/// What one tensor became.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TensorOutcome {
    pub name: String,
    pub from: String,
    pub to: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub tensors: Vec<TensorOutcome>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The version of ggml's block layouts that files written here follow.
const QUANTIZATION_VERSION: u32 = 2;

/// Re-encodes every weight matrix of `input` (a GGUF file, or a Hugging
/// Face checkpoint directory laid out as llama.cpp's converter would) in
/// `to` and writes `out` (through a temporary file beside it, renamed when
/// complete).
pub fn quantize(input: &Path, to: WeightFormat, pure: bool, out: &Path) -> Result<Outcome, String> {
    let source;
    let contents = if input.is_dir() {
        export::to_gguf(input).map_err(|e| e.to_string())?
    } else {
        source = GgufFile::open(input).map_err(|e| e.to_string())?;
        GgufContents::of_file(&source)
    };
    let has = |w: Weight| contents.tensors.iter().any(|t| t.name == tensor_name(w));
    let output = if has(Weight::Output) {
        tensor_name(Weight::Output)
    } else {
        tensor_name(Weight::Embedding)
    };
    let mut w = GgufWriter::new();
    for (key, value) in &contents.metadata {
        if key != "general.file_type" && key != "general.quantization_version" {
            w.meta(key, value.clone());
        }
    }
    w.meta("general.file_type", MetaValue::U32(to.describe().file_type));
    w.meta(
        "general.quantization_version",
        MetaValue::U32(QUANTIZATION_VERSION),
    );
    let mut tensors = Vec::new();
    let mut bytes_in = 0;
    for t in &contents.tensors {
        bytes_in += t.data.len() as u64;
        let (ty, data) = if t.is_matrix() {
            let from = t.ty.weight_format().ok_or_else(|| {
                format!(
                    "tensor `{}` is {}, which this build cannot read",
                    t.name, t.ty
                )
            })?;
            let (cols, rows) = (t.dims[0] as usize, t.dims[1] as usize);
            let target = format_for(t.name == output, to, pure);
            let (format, data) = reencode(from, target, rows, cols, &t.data).ok_or_else(|| {
                format!(
                    "tensor `{}` ({rows}×{cols} {}) cannot be re-encoded as {}",
                    t.name,
                    t.ty,
                    target.name()
                )
            })?;
            (GgmlType::of(format), data)
        } else {
            (t.ty, t.data.to_vec())
        };
        tensors.push(TensorOutcome {
            name: t.name.clone(),
            from: t.ty.name().to_owned(),
            to: ty.name().to_owned(),
            bytes: data.len() as u64,
        });
        w.tensor(&t.name, &t.dims, ty, data);
    }
    let tmp = out.with_extension("gguf.partial");
    let written = (|| -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        w.write(&mut f)?;
        f.flush()?;
        f.get_ref().sync_all()?;
        drop(f);
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("writing {}: {e}", out.display()));
    }
    let bytes_out = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(Outcome {
        tensors,
        bytes_in,
        bytes_out,
    })
}
