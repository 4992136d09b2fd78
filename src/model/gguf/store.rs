//! GGUF tensors by role, under llama.cpp's names.

use super::GgufFile;
use crate::model::error::Result;
use crate::model::tensors::{LayerWeight, RawTensor, StoredType, TensorStore, Weight};
use std::path::Path;

impl TensorStore for GgufFile {
    fn origin(&self) -> &Path {
        self.path()
    }

    fn name(&self, w: Weight) -> String {
        tensor_name(w)
    }

    fn get(&self, w: Weight) -> Result<Option<RawTensor>> {
        let name = self.name(w);
        let Some(info) = self.tensor_info(&name) else {
            return Ok(None);
        };
        Ok(Some(RawTensor {
            ty: match info.ty.weight_format() {
                Some(f) => StoredType::Known(f),
                None => StoredType::Unsupported(info.ty.name().to_owned()),
            },
            // ggml lists the innermost dimension first.
            shape: info.dims.iter().rev().map(|&d| d as usize).collect(),
            data: self.tensor_data(info),
            name,
        }))
    }
}

/// llama.cpp's name for a weight.
pub fn tensor_name(w: Weight) -> String {
    use LayerWeight::*;
    let layer = match w {
        Weight::Embedding => return "token_embd.weight".into(),
        Weight::Output => return "output.weight".into(),
        Weight::OutputNorm => return "output_norm.weight".into(),
        Weight::RopeFreqs => return "rope_freqs.weight".into(),
        Weight::Layer(i, l) => (i, l),
    };
    let suffix = match layer.1 {
        AttnNorm => "attn_norm.weight",
        Q => "attn_q.weight",
        K => "attn_k.weight",
        V => "attn_v.weight",
        O => "attn_output.weight",
        QBias => "attn_q.bias",
        OBias => "attn_output.bias",
        KBias => "attn_k.bias",
        VBias => "attn_v.bias",
        QNorm => "attn_q_norm.weight",
        KNorm => "attn_k_norm.weight",
        FfnNorm => "ffn_norm.weight",
        Gate => "ffn_gate.weight",
        Up => "ffn_up.weight",
        Down => "ffn_down.weight",
    };
    format!("blk.{}.{suffix}", layer.0)
}
