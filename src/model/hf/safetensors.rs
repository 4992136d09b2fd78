//! The tensors of a Hugging Face checkpoint: one `model.safetensors`, or
//! shards listed by `model.safetensors.index.json`. Every file is
//! memory-mapped; f32, f16 and bf16 weights are used where they lie.

use crate::backend::{SharedBytes, WeightFormat};
use crate::model::error::{ModelError, Result};
use crate::model::tensors::{LayerWeight, RawTensor, StoredType, TensorStore, Weight};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Entry {
    file: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Absolute byte range in the file.
    start: usize,
    len: usize,
}

pub struct SafetensorsStore {
    dir: PathBuf,
    maps: Vec<Arc<Mmap>>,
    tensors: HashMap<String, Entry>,
}

impl SafetensorsStore {
    pub fn open(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        let files = if index.exists() {
            shard_names(&index)?
        } else {
            vec!["model.safetensors".to_owned()]
        };
        let mut store = SafetensorsStore {
            dir: dir.to_path_buf(),
            maps: Vec::new(),
            tensors: HashMap::new(),
        };
        for name in files {
            store.add_file(&dir.join(name))?;
        }
        Ok(store)
    }

    fn add_file(&mut self, path: &Path) -> Result<()> {
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        // SAFETY: read-only map; see GgufFile::open.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (header, meta) =
            SafeTensors::read_metadata(&map).map_err(|e| ModelError::Malformed {
                path: path.to_path_buf(),
                detail: format!("not a valid safetensors file: {e}"),
            })?;
        let data_start = 8 + header;
        let file_index = self.maps.len();
        for (name, info) in meta.tensors() {
            let (s, e) = info.data_offsets;
            self.tensors.insert(
                name,
                Entry {
                    file: file_index,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + s,
                    len: e - s,
                },
            );
        }
        self.maps.push(Arc::new(map));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// The distinct shard files of an index, in order.
fn shard_names(index: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|source| ModelError::Io {
        path: index.to_path_buf(),
        source,
    })?;
    let bad = |detail: String| ModelError::Malformed {
        path: index.to_path_buf(),
        detail,
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let map = v["weight_map"]
        .as_object()
        .ok_or_else(|| bad("no `weight_map` object".into()))?;
    let mut files: Vec<String> = Vec::new();
    for f in map.values() {
        let f = f
            .as_str()
            .ok_or_else(|| bad("a `weight_map` value is not a file name".into()))?;
        // A shard name is a plain file in the same directory.
        if f.contains('/') || f.contains('\\') || f.starts_with('.') {
            return Err(bad(format!("shard `{f}` is not a file name")));
        }
        if !files.iter().any(|x| x == f) {
            files.push(f.to_owned());
        }
    }
    files.sort();
    Ok(files)
}

impl TensorStore for SafetensorsStore {
    fn origin(&self) -> &Path {
        &self.dir
    }

    fn name(&self, w: Weight) -> String {
        use LayerWeight::*;
        let (i, l) = match w {
            Weight::Embedding => return "model.embed_tokens.weight".into(),
            Weight::Output => return "lm_head.weight".into(),
            Weight::OutputNorm => return "model.norm.weight".into(),
            // Hugging Face configs carry scaling as parameters instead.
            Weight::RopeFreqs => return "(rope frequency factors)".into(),
            Weight::Layer(i, l) => (i, l),
        };
        let suffix = match l {
            AttnNorm => "input_layernorm.weight",
            Q => "self_attn.q_proj.weight",
            K => "self_attn.k_proj.weight",
            V => "self_attn.v_proj.weight",
            O => "self_attn.o_proj.weight",
            QBias => "self_attn.q_proj.bias",
            OBias => "self_attn.o_proj.bias",
            KBias => "self_attn.k_proj.bias",
            VBias => "self_attn.v_proj.bias",
            QNorm => "self_attn.q_norm.weight",
            KNorm => "self_attn.k_norm.weight",
            FfnNorm => "post_attention_layernorm.weight",
            Gate => "mlp.gate_proj.weight",
            Up => "mlp.up_proj.weight",
            Down => "mlp.down_proj.weight",
        };
        format!("model.layers.{i}.{suffix}")
    }

    fn get(&self, w: Weight) -> Result<Option<RawTensor>> {
        if w == Weight::RopeFreqs {
            return Ok(None);
        }
        let name = self.name(w);
        let Some(e) = self.tensors.get(&name) else {
            return Ok(None);
        };
        let ty = match e.dtype {
            Dtype::F32 => StoredType::Known(WeightFormat::F32),
            Dtype::F16 => StoredType::Known(WeightFormat::F16),
            Dtype::BF16 => StoredType::Known(WeightFormat::Bf16),
            other => StoredType::Unsupported(format!("{other:?}")),
        };
        Ok(Some(RawTensor {
            name,
            ty,
            shape: e.shape.clone(),
            data: SharedBytes::window(self.maps[e.file].clone(), e.start, e.len),
        }))
    }
}
