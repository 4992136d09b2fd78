//! Causal attention over the paged KV cache, one task per (row, head).
//! A row reads its own sequence's positions through its block table, in
//! position order, whatever else shares the step: the result of a row
//! never depends on its neighbours (batch invariance).

use super::disjoint::DisjointOut;
use super::gemm::dot_scalar;
use super::pool::ComputePool;
use crate::backend::{BackendError, Heads, KvBatch, KvDtype, KvShape};
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use half::{bf16, f16};

/// One layer's keys or values, `block_size · kv_dim` elements per block.
/// Half-precision planes keep raw bits: `vec![0; n]` of a primitive is a
/// zeroed allocation the kernel backs lazily, so a pool costs resident
/// memory only as far as it is used.
enum Plane {
    F32(Vec<f32>),
    F16(Vec<u16>),
    Bf16(Vec<u16>),
}

impl Plane {
    fn zeroed(dtype: KvDtype, len: usize) -> Plane {
        match dtype {
            KvDtype::F32 => Plane::F32(vec![0f32; len]),
            KvDtype::F16 => Plane::F16(vec![0u16; len]),
            KvDtype::Bf16 => Plane::Bf16(vec![0u16; len]),
        }
    }

    fn write(&mut self, at: usize, values: &[f32]) {
        let end = at + values.len();
        match self {
            Plane::F32(p) => p[at..end].copy_from_slice(values),
            Plane::F16(p) => p[at..end]
                .reinterpret_cast_mut::<f16>()
                .convert_from_f32_slice(values),
            Plane::Bf16(p) => p[at..end]
                .reinterpret_cast_mut::<bf16>()
                .convert_from_f32_slice(values),
        }
    }

    /// The `len` values at `at` as f32: borrowed when stored as f32,
    /// converted into `buf` otherwise.
    fn read<'a>(&'a self, at: usize, buf: &'a mut [f32]) -> &'a [f32] {
        let len = buf.len();
        match self {
            Plane::F32(p) => &p[at..at + len],
            Plane::F16(p) => {
                p[at..at + len]
                    .reinterpret_cast::<f16>()
                    .convert_to_f32_slice(buf);
                buf
            }
            Plane::Bf16(p) => {
                p[at..at + len]
                    .reinterpret_cast::<bf16>()
                    .convert_to_f32_slice(buf);
                buf
            }
        }
    }
}

/// Every block of every layer: keys and values of `kv_dim` per slot.
pub struct CpuKvCache {
    shape: KvShape,
    k: Vec<Plane>,
    v: Vec<Plane>,
}

impl CpuKvCache {
    pub fn new(shape: KvShape) -> Result<Self, BackendError> {
        let len = shape
            .blocks
            .checked_mul(shape.block_size * shape.kv_dim)
            .filter(|&n| {
                n.checked_mul(4 * shape.layers)
                    .is_some_and(|b| b <= isize::MAX as usize)
            })
            .ok_or_else(|| BackendError::OutOfMemory {
                what: "the KV cache",
                detail: format!("{} blocks do not fit in the address space", shape.blocks),
            })?;
        let planes = || {
            (0..shape.layers)
                .map(|_| Plane::zeroed(shape.dtype, len))
                .collect::<Vec<_>>()
        };
        Ok(CpuKvCache {
            shape,
            k: planes(),
            v: planes(),
        })
    }

    pub fn shape(&self) -> KvShape {
        self.shape
    }

    fn store(&mut self, layer: usize, batch: &KvBatch, k: &[f32], v: &[f32]) {
        let d = self.shape.kv_dim;
        for row in 0..batch.rows() {
            let at = batch.slot(row) * d;
            self.k[layer].write(at, &k[row * d..(row + 1) * d]);
            self.v[layer].write(at, &v[row * d..(row + 1) * d]);
        }
    }
}

/// The largest head this kernel converts on the stack.
const MAX_HEAD_DIM: usize = 512;

#[allow(clippy::too_many_arguments)]
pub fn attention(
    pool: &ComputePool,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    cache: &mut CpuKvCache,
    layer: usize,
    batch: &KvBatch,
    heads: Heads,
    out: &mut [f32],
) {
    cache.store(layer, batch, k, v);
    let cache = &*cache;
    let (hd, qd, kvd) = (heads.head_dim, heads.q_dim(), heads.kv_dim());
    assert!(hd <= MAX_HEAD_DIM, "head size {hd} above {MAX_HEAD_DIM}");
    let group = heads.n_heads / heads.n_kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let out_ptr = DisjointOut::new(out);
    let (keys, vals) = (&cache.k[layer], &cache.v[layer]);
    pool.run(batch.rows() * heads.n_heads, |task| {
        let (row, h) = (task / heads.n_heads, task % heads.n_heads);
        let kv_off = (h / group) * hd;
        let n_ctx = batch.positions[row] as usize + 1;
        let qh = &q[row * qd + h * hd..row * qd + (h + 1) * hd];
        let mut buf = [0f32; MAX_HEAD_DIM];
        let buf = &mut buf[..hd];
        let mut scores: Vec<f32> = (0..n_ctx)
            .map(|p| {
                let at = batch.slot_of(row, p) * kvd + kv_off;
                dot_scalar(qh, keys.read(at, buf)) * scale
            })
            .collect();
        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
        let mut sum = 0f64;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s as f64;
        }
        let inv = (1.0 / sum) as f32;
        let mut acc = [0f32; MAX_HEAD_DIM];
        let acc = &mut acc[..hd];
        for (p, &w) in scores.iter().enumerate() {
            let at = batch.slot_of(row, p) * kvd + kv_off;
            for (a, &x) in acc.iter_mut().zip(vals.read(at, buf)) {
                *a += w * x;
            }
        }
        // SAFETY: this task alone writes out[row, head h].
        let dst =
            unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(row * qd + h * hd), hd) };
        for (d, a) in dst.iter_mut().zip(acc.iter()) {
            *d = a * inv;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::testing::uniform;

    fn shape(dtype: KvDtype) -> KvShape {
        KvShape {
            layers: 1,
            blocks: 8,
            block_size: 4,
            kv_dim: 8,
            dtype,
        }
    }

    const HEADS: Heads = Heads {
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 4,
    };

    /// Runs `len` tokens of one sequence through attention as `batch`
    /// lays them out, after `before` tokens already cached.
    fn run(cache: &mut CpuKvCache, batch: &KvBatch, seed: u64) -> Vec<f32> {
        let pool = ComputePool::new(2);
        let t = batch.rows();
        let q = uniform(t * HEADS.q_dim(), seed, 1.0);
        let k = uniform(t * HEADS.kv_dim(), seed + 1, 1.0);
        let v = uniform(t * HEADS.kv_dim(), seed + 2, 1.0);
        let mut out = vec![0f32; t * HEADS.q_dim()];
        attention(&pool, &q, &k, &v, cache, 0, batch, HEADS, &mut out);
        out
    }

    #[test]
    fn scattered_blocks_give_the_same_result_as_contiguous_ones() {
        for dtype in [KvDtype::F32, KvDtype::F16, KvDtype::Bf16] {
            let mut a = CpuKvCache::new(shape(dtype)).unwrap();
            let contiguous = run(&mut a, &KvBatch::contiguous(4, 0, 10), 1);
            let mut b = CpuKvCache::new(shape(dtype)).unwrap();
            let mut scattered = KvBatch::new(4);
            scattered.push_sequence(&[6, 1, 4], 0..10);
            let paged = run(&mut b, &scattered, 1);
            assert_eq!(contiguous, paged, "{dtype:?}");
        }
    }

    #[test]
    fn a_row_does_not_depend_on_the_other_sequences_of_its_step() {
        let mut alone_cache = CpuKvCache::new(shape(KvDtype::F32)).unwrap();
        let mut alone = KvBatch::new(4);
        alone.push_sequence(&[2, 5], 0..6);
        let alone_out = run(&mut alone_cache, &alone, 7);

        // The same sequence (same inputs: its rows come last, so give the
        // other sequence no rows) beside another sequence's table.
        let mut shared_cache = CpuKvCache::new(shape(KvDtype::F32)).unwrap();
        let mut shared = KvBatch::new(4);
        shared.push_sequence(&[0], 0..0);
        shared.push_sequence(&[2, 5], 0..6);
        let shared_out = run(&mut shared_cache, &shared, 7);
        assert_eq!(alone_out, shared_out);
    }

    #[test]
    fn half_precision_caches_stay_close_to_f32() {
        let mut exact = CpuKvCache::new(shape(KvDtype::F32)).unwrap();
        let want = run(&mut exact, &KvBatch::contiguous(4, 0, 12), 3);
        for (dtype, tol) in [(KvDtype::F16, 2e-3), (KvDtype::Bf16, 2e-2)] {
            let mut c = CpuKvCache::new(shape(dtype)).unwrap();
            let got = run(&mut c, &KvBatch::contiguous(4, 0, 12), 3);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < tol, "{dtype:?}: {worst}");
        }
    }
}
