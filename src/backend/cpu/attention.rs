//! Causal attention over a sequence's cached keys and values, one task per
//! (token, head). The cache grows with the sequence; the batching engine
//! replaces it with paged blocks.

use super::disjoint::DisjointOut;
use super::gemm::dot_scalar;
use super::pool::ComputePool;
use crate::backend::Heads;

/// Keys and values of one sequence, per layer, `kv_dim` floats per position.
pub struct CpuKvCache {
    pub(crate) k: Vec<Vec<f32>>,
    pub(crate) v: Vec<Vec<f32>>,
    pub(crate) kv_dim: usize,
    pub(crate) capacity: usize,
}

impl CpuKvCache {
    pub fn new(layers: usize, capacity: usize, kv_dim: usize) -> Self {
        CpuKvCache {
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
            kv_dim,
            capacity,
        }
    }

    /// Positions stored for `layer`.
    pub fn len(&self, layer: usize) -> usize {
        self.k[layer].len() / self.kv_dim
    }

    pub fn is_empty(&self) -> bool {
        self.k.first().is_none_or(|k| k.is_empty())
    }

    /// Forgets every position from `pos` on (all layers).
    pub fn truncate(&mut self, pos: usize) {
        let n = pos * self.kv_dim;
        for l in 0..self.k.len() {
            self.k[l].truncate(n);
            self.v[l].truncate(n);
        }
    }

    fn store(&mut self, layer: usize, positions: &[u32], k: &[f32], v: &[f32]) {
        let d = self.kv_dim;
        for (i, &p) in positions.iter().enumerate() {
            let p = p as usize;
            assert!(
                p < self.capacity,
                "position {p} beyond the cache capacity {}",
                self.capacity
            );
            let need = (p + 1) * d;
            if self.k[layer].len() < need {
                self.k[layer].resize(need, 0.0);
                self.v[layer].resize(need, 0.0);
            }
            self.k[layer][p * d..need].copy_from_slice(&k[i * d..(i + 1) * d]);
            self.v[layer][p * d..need].copy_from_slice(&v[i * d..(i + 1) * d]);
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn attention(
    pool: &ComputePool,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    cache: &mut CpuKvCache,
    layer: usize,
    positions: &[u32],
    heads: Heads,
    out: &mut [f32],
) {
    cache.store(layer, positions, k, v);
    let cache = &*cache;
    let (hd, qd, kvd) = (heads.head_dim, heads.q_dim(), heads.kv_dim());
    let group = heads.n_heads / heads.n_kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let out_ptr = DisjointOut::new(out);
    let t = positions.len();
    pool.run(t * heads.n_heads, |task| {
        let (row, h) = (task / heads.n_heads, task % heads.n_heads);
        let kvh = h / group;
        let n_ctx = positions[row] as usize + 1;
        let qh = &q[row * qd + h * hd..row * qd + (h + 1) * hd];
        let keys = &cache.k[layer];
        let vals = &cache.v[layer];
        let mut scores: Vec<f32> = (0..n_ctx)
            .map(|p| dot_scalar(qh, &keys[p * kvd + kvh * hd..p * kvd + (kvh + 1) * hd]) * scale)
            .collect();
        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
        let mut sum = 0f64;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s as f64;
        }
        let inv = (1.0 / sum) as f32;
        let mut acc = vec![0f32; hd];
        for (p, &w) in scores.iter().enumerate() {
            let vp = &vals[p * kvd + kvh * hd..p * kvd + (kvh + 1) * hd];
            for (a, &x) in acc.iter_mut().zip(vp) {
                *a += w * x;
            }
        }
        // SAFETY: this task alone writes out[row, head h].
        let dst =
            unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(row * qd + h * hd), hd) };
        for (d, a) in dst.iter_mut().zip(&acc) {
            *d = a * inv;
        }
    });
}
