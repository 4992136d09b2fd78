//! Causal attention over the paged KV cache, one task per (row, KV head).
//! A row reads its own sequence's positions through its block table, in
//! position order, whatever else shares the step: the result of a row
//! never depends on its neighbours (batch invariance).

use super::disjoint::DisjointOut;
use super::isa::Isa;
use super::pool::ComputePool;
use super::reduce::dot_scalar;
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
/// The most query heads sharing one KV head that a task handles at once.
const MAX_GROUP: usize = 16;

/// One task per (row, KV head): the query heads of its group share each
/// key and value read, walked block by block through the row's table. Per
/// query head the operations and their order are fixed by the row alone.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    pool: &ComputePool,
    isa: Isa,
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
    let group = heads.n_heads / heads.n_kv_heads;
    assert!(hd <= MAX_HEAD_DIM, "head size {hd} above {MAX_HEAD_DIM}");
    assert!(
        group <= MAX_GROUP,
        "{group} query heads per KV head, above {MAX_GROUP}"
    );
    let scale = 1.0 / (hd as f32).sqrt();
    let bs = batch.block_size;
    let out_ptr = DisjointOut::new(out);
    let (keys, vals) = (&cache.k[layer], &cache.v[layer]);
    let simd = isa != Isa::Scalar && hd % 8 == 0;
    let dot = |a: &[f32], b: &[f32]| {
        if simd {
            // SAFETY: every non-portable ISA level includes AVX2 and FMA.
            unsafe { x86::dot(a, b) }
        } else {
            dot_scalar(a, b)
        }
    };
    let axpy = |acc: &mut [f32], w: f32, x: &[f32]| {
        if simd {
            // SAFETY: as above.
            unsafe { x86::axpy(acc, w, x) }
        } else {
            for (a, &v) in acc.iter_mut().zip(x) {
                *a += w * v;
            }
        }
    };
    pool.run(batch.rows() * heads.n_kv_heads, |task| {
        let (row, kvh) = (task / heads.n_kv_heads, task % heads.n_kv_heads);
        let n_ctx = batch.positions[row] as usize + 1;
        let table = batch.table(batch.row_seq[row] as usize);
        let kv_off = kvh * hd;
        let q_of = |g: usize| {
            let h = kvh * group + g;
            &q[row * qd + h * hd..row * qd + (h + 1) * hd]
        };
        // Slot of each position, block by block.
        let slots = (0..n_ctx).map(|p| table[p / bs] as usize * bs + p % bs);
        let mut buf = [0f32; MAX_HEAD_DIM];
        let buf = &mut buf[..hd];
        let mut scores = vec![0f32; group * n_ctx];
        for (p, slot) in slots.clone().enumerate() {
            let key = keys.read(slot * kvd + kv_off, buf);
            for g in 0..group {
                scores[g * n_ctx + p] = dot(q_of(g), key) * scale;
            }
        }
        let mut inv = [0f32; MAX_GROUP];
        for g in 0..group {
            let s = &mut scores[g * n_ctx..(g + 1) * n_ctx];
            let max = s.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            let mut sum = 0f64;
            for x in s.iter_mut() {
                *x = (*x - max).exp();
                sum += *x as f64;
            }
            inv[g] = (1.0 / sum) as f32;
        }
        let mut acc = [0f32; MAX_GROUP * MAX_HEAD_DIM];
        for (p, slot) in slots.enumerate() {
            let val = vals.read(slot * kvd + kv_off, buf);
            for g in 0..group {
                axpy(&mut acc[g * hd..(g + 1) * hd], scores[g * n_ctx + p], val);
            }
        }
        for g in 0..group {
            let h = kvh * group + g;
            // SAFETY: this task alone writes out[row, head h].
            let dst =
                unsafe { std::slice::from_raw_parts_mut(out_ptr.get().add(row * qd + h * hd), hd) };
            for (d, a) in dst.iter_mut().zip(&acc[g * hd..(g + 1) * hd]) {
                *d = a * inv[g];
            }
        }
    });
}

/// The two vector loops of attention on AVX2 + FMA, eight lanes in k
/// order with a fixed reduction: the same for a row whatever its batch.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// a · b; the length is a multiple of 8.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= n {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc);
            i += 8;
        }
        super::super::reduce::x86::hsum256(acc)
    }

    /// acc += w · x; the length is a multiple of 8.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy(acc: &mut [f32], w: f32, x: &[f32]) {
        let n = acc.len().min(x.len());
        let (pa, px) = (acc.as_mut_ptr(), x.as_ptr());
        let wv = _mm256_set1_ps(w);
        let mut i = 0;
        while i + 8 <= n {
            let v = _mm256_fmadd_ps(wv, _mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(pa.add(i)));
            _mm256_storeu_ps(pa.add(i), v);
            i += 8;
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_scalar(a, b)
    }
    pub unsafe fn axpy(acc: &mut [f32], w: f32, x: &[f32]) {
        for (a, &v) in acc.iter_mut().zip(x) {
            *a += w * v;
        }
    }
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
            kv_dim: 16,
            dtype,
        }
    }

    const HEADS: Heads = Heads {
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 8,
    };

    /// Runs `len` tokens of one sequence through attention as `batch`
    /// lays them out, after `before` tokens already cached.
    fn run(cache: &mut CpuKvCache, batch: &KvBatch, seed: u64) -> Vec<f32> {
        run_on(super::super::isa::isa(), cache, batch, seed)
    }

    fn run_on(isa: Isa, cache: &mut CpuKvCache, batch: &KvBatch, seed: u64) -> Vec<f32> {
        let pool = ComputePool::new(2);
        let t = batch.rows();
        let q = uniform(t * HEADS.q_dim(), seed, 1.0);
        let k = uniform(t * HEADS.kv_dim(), seed + 1, 1.0);
        let v = uniform(t * HEADS.kv_dim(), seed + 2, 1.0);
        let mut out = vec![0f32; t * HEADS.q_dim()];
        attention(&pool, isa, &q, &k, &v, cache, 0, batch, HEADS, &mut out);
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
    fn the_vector_path_agrees_with_the_portable_one() {
        let batch = KvBatch::contiguous(4, 0, 13);
        let mut a = CpuKvCache::new(shape(KvDtype::F32)).unwrap();
        let portable = run_on(Isa::Scalar, &mut a, &batch, 9);
        let mut b = CpuKvCache::new(shape(KvDtype::F32)).unwrap();
        let native = run_on(super::super::isa::isa(), &mut b, &batch, 9);
        let worst = portable
            .iter()
            .zip(&native)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "{worst}");
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
