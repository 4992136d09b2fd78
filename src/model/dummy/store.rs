//! Deterministic random weights, generated on request in the asked format:
//! the same configuration and format give the same bytes on every machine
//! and thread count (each row is seeded by its tensor and index).

use crate::backend::quant::encode;
use crate::backend::{SharedBytes, WeightFormat};
use crate::model::config::ModelConfig;
use crate::model::error::Result;
use crate::model::tensors::{LayerWeight, RawTensor, StoredType, TensorStore, Weight};
use std::path::{Path, PathBuf};

pub struct DummyStore {
    pub config: ModelConfig,
    pub format: WeightFormat,
    /// Named in errors: the preset or config file.
    pub origin: PathBuf,
    /// Matrices of zero bytes instead of random values: the shape only,
    /// for a backend that makes its own benchmark weights (`doctor`'s
    /// decode benchmark of billions of parameters).
    pub zero_matrices: bool,
}

impl TensorStore for DummyStore {
    fn origin(&self) -> &Path {
        &self.origin
    }

    fn name(&self, w: Weight) -> String {
        format!("{w:?}")
    }

    fn has(&self, w: Weight) -> Result<bool> {
        Ok(self.shape(w).is_some())
    }

    fn get(&self, w: Weight) -> Result<Option<RawTensor>> {
        let Some(shape) = self.shape(w) else {
            return Ok(None);
        };
        let seed = fnv1a(self.name(w).as_bytes());
        let (ty, data) = if shape.len() == 1 {
            let values = vector_values(w, shape[0], seed);
            (WeightFormat::F32, encode(WeightFormat::F32, &values))
        } else {
            // The format `--quantize` gives a stored matrix of this shape
            // and role (`convert::format_for`, K-quant width fallback).
            let is_output = match w {
                Weight::Output => true,
                Weight::Embedding => self.config.tied_embeddings,
                _ => false,
            };
            let format = crate::model::convert::format_for(is_output, self.format, false)
                .for_row_width(shape[1]);
            let bytes = if self.zero_matrices {
                // Zeroed pages are mapped lazily: no generation, no copy.
                vec![0u8; shape[0] * format.row_bytes(shape[1])]
            } else {
                matrix_bytes(format, shape[0], shape[1], seed)
            };
            (format, bytes)
        };
        Ok(Some(RawTensor {
            name: self.name(w),
            ty: StoredType::Known(ty),
            shape,
            data: SharedBytes::owned(data),
        }))
    }
}

impl DummyStore {
    /// The shape of `w` in this model; None for weights it does not have.
    fn shape(&self, w: Weight) -> Option<Vec<usize>> {
        use LayerWeight::*;
        let c = &self.config;
        let (d, kv, qd, hd, ffn) = (
            c.d_model,
            c.heads.kv_dim(),
            c.heads.q_dim(),
            c.heads.head_dim,
            c.ffn_dim,
        );
        Some(match w {
            Weight::Embedding => vec![c.vocab_size, d],
            Weight::Output if c.tied_embeddings => return None,
            Weight::Output => vec![c.vocab_size, d],
            Weight::OutputNorm => vec![d],
            Weight::RopeFreqs => return None,
            Weight::Layer(_, l) => match l {
                AttnNorm | FfnNorm => vec![d],
                Q => vec![qd, d],
                K | V => vec![kv, d],
                O => vec![d, qd],
                QBias | KBias | VBias if !c.attention_bias => return None,
                OBias => return None,
                QBias => vec![qd],
                KBias | VBias => vec![kv],
                QNorm | KNorm if !c.qk_norm => return None,
                QNorm | KNorm => vec![hd],
                Gate | Up => vec![ffn, d],
                Down => vec![d, ffn],
            },
        })
    }
}

/// Norm weights near one, biases near zero.
fn vector_values(w: Weight, len: usize, seed: u64) -> Vec<f32> {
    let is_bias = matches!(
        w,
        Weight::Layer(
            _,
            LayerWeight::QBias | LayerWeight::KBias | LayerWeight::VBias
        )
    );
    let mut rng = SplitMix(seed);
    (0..len)
        .map(|_| {
            let u = rng.uniform();
            if is_bias {
                0.02 * u
            } else {
                1.0 + 0.1 * u
            }
        })
        .collect()
}

/// Uniform values scaled so that a unit-variance input gives a
/// unit-variance output, generated on every core.
fn matrix_bytes(format: WeightFormat, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let row_bytes = format.row_bytes(cols);
    let scale = (3.0 / cols as f32).sqrt();
    let mut out = vec![0u8; rows * row_bytes];
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows_per = rows.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (chunk_index, chunk) in out.chunks_mut(rows_per * row_bytes).enumerate() {
            s.spawn(move || {
                let mut values = vec![0f32; cols];
                for (i, dst) in chunk.chunks_exact_mut(row_bytes).enumerate() {
                    let row = (chunk_index * rows_per + i) as u64;
                    let mut rng = SplitMix(seed ^ row.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    for v in &mut values {
                        *v = scale * rng.uniform();
                    }
                    dst.copy_from_slice(&encode(format, &values));
                }
            });
        }
    });
    out
}

/// SplitMix64: fast, and good enough for weights nobody reads.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
