//! The paged KV cache on the device and the launches of attention over
//! it: the step's keys and values stored first, then one attention kernel
//! for decode and prefill rows alike (kernels/attention.cu).

use super::device::CudaDevice;
use super::mem::{args, DevBuf};
use super::{CudaBuffer, Failure};
use crate::backend::{BackendError, Heads, KvBatch, KvDtype, KvShape};

type Result<T = ()> = std::result::Result<T, Failure>;

/// Keys and values of every layer in one allocation: layer l's key plane,
/// then its value plane, each `blocks · block_size · kv_dim` elements.
pub struct CudaKvCache {
    pub shape: KvShape,
    pub mem: DevBuf,
}

impl CudaKvCache {
    pub fn new(dev: &CudaDevice, shape: KvShape) -> std::result::Result<Self, BackendError> {
        let bytes = shape.total_bytes();
        let mem = DevBuf::zeroed(&dev.driver, bytes).map_err(|e| BackendError::OutOfMemory {
            what: "the KV cache",
            detail: format!("{} MiB on the device: {e:?}", bytes >> 20),
        })?;
        Ok(CudaKvCache { shape, mem })
    }

    /// Bytes of one block in one plane (one layer's keys or values).
    pub fn block_bytes(&self) -> usize {
        let s = &self.shape;
        s.block_size * s.kv_dim * s.dtype.bytes()
    }

    pub fn plane_bytes(&self) -> usize {
        self.shape.blocks * self.block_bytes()
    }

    fn planes(&self, layer: usize) -> (u64, u64) {
        let base = self.mem.ptr() + (2 * layer * self.plane_bytes()) as u64;
        (base, base + self.plane_bytes() as u64)
    }
}

/// The number the CUDA program gives a KV element type (`KV_*`).
pub fn dtype_id(d: KvDtype) -> i32 {
    d as i32
}

/// Keys streamed through shared memory per pass (ATT_CHUNK).
const CHUNK: usize = 32;
/// Warps of an attention block (ATT_WARPS) and pairs each may hold
/// (MAX_PAIRS_PER_WARP): a tile holds at most 32 (row, head) pairs.
const MAX_PAIRS: usize = 4 * 8;
const MAX_HEAD_DIM: usize = 256;

/// Everything the attention kernel reads about a step, as one array of
/// u32 and the offsets of its parts.
pub struct StepLayout {
    pub data: Vec<u32>,
    pub positions: usize,
    pub row_seq: usize,
    pub tables: usize,
    pub starts: usize,
    pub tile_first: usize,
    pub tile_rows: usize,
    pub slots: usize,
    pub tiles: usize,
}

/// Cuts each sequence's rows into tiles of consecutive rows, at most
/// `per_tile`, and lays out the step's tables.
pub fn layout(batch: &KvBatch, per_tile: usize) -> StepLayout {
    let rows = batch.rows();
    let mut data = Vec::with_capacity(4 * rows + 64);
    let positions = data.len();
    data.extend_from_slice(&batch.positions);
    let row_seq = data.len();
    data.extend_from_slice(&batch.row_seq);
    let n_seq = batch.sequences();
    let mut starts_v = Vec::with_capacity(n_seq + 1);
    let tables = data.len();
    for s in 0..n_seq {
        starts_v.push((data.len() - tables) as u32);
        data.extend_from_slice(batch.table(s));
    }
    starts_v.push((data.len() - tables) as u32);
    let starts = data.len();
    data.extend_from_slice(&starts_v);
    let (mut first, mut count) = (Vec::new(), Vec::new());
    let mut r = 0;
    while r < rows {
        let mut n = 1;
        while r + n < rows
            && n < per_tile
            && batch.row_seq[r + n] == batch.row_seq[r]
            && batch.positions[r + n] == batch.positions[r + n - 1] + 1
        {
            n += 1;
        }
        first.push(r as u32);
        count.push(n as u32);
        r += n;
    }
    let tiles = first.len();
    let tile_first = data.len();
    data.extend_from_slice(&first);
    let tile_rows = data.len();
    data.extend_from_slice(&count);
    let slots = data.len();
    data.extend((0..rows).map(|row| batch.slot(row) as u32));
    StepLayout {
        data,
        positions,
        row_seq,
        tables,
        starts,
        tile_first,
        tile_rows,
        slots,
        tiles,
    }
}

/// Rows per tile for a head geometry: as many as keep a tile within
/// MAX_PAIRS (row, query head) pairs.
pub fn rows_per_tile(heads: Heads) -> usize {
    let group = heads.n_heads / heads.n_kv_heads;
    (MAX_PAIRS / group).max(1)
}

/// Whether the kernel serves this geometry, and why not.
pub fn check_heads(heads: Heads) -> Result {
    let group = heads.n_heads / heads.n_kv_heads.max(1);
    if heads.head_dim == 0 || heads.head_dim > MAX_HEAD_DIM {
        return Err(Failure(format!(
            "head size {}: the CUDA attention kernel takes 1 to {MAX_HEAD_DIM}",
            heads.head_dim
        )));
    }
    if group > MAX_PAIRS || !heads.n_heads.is_multiple_of(heads.n_kv_heads.max(1)) {
        return Err(Failure(format!(
            "{} query heads over {} KV heads: the CUDA attention kernel takes at most {MAX_PAIRS} per KV head",
            heads.n_heads, heads.n_kv_heads
        )));
    }
    Ok(())
}

/// Stores the step's keys and values, then attends. `meta` is the
/// device copy of `step.data`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    dev: &CudaDevice,
    q: &CudaBuffer,
    k: &CudaBuffer,
    v: &CudaBuffer,
    cache: &CudaKvCache,
    layer: usize,
    step: &StepLayout,
    meta: u64,
    heads: Heads,
    out: &CudaBuffer,
) -> Result {
    check_heads(heads)?;
    let rows = q.rows;
    let hd = heads.head_dim;
    let kv_dim = heads.kv_dim();
    let dtype = dtype_id(cache.shape.dtype);
    let (kp, vp) = cache.planes(layer);
    let at = |offset: usize| meta + (offset * 4) as u64;
    let kern = &dev.kernels;
    let mut a = args![
        k.mem.ptr(),
        v.mem.ptr(),
        at(step.slots),
        kv_dim as i32,
        dtype,
        kp,
        vp
    ];
    dev.driver
        .launch(&kern.kv_store, (rows as u32, 1, 1), 128, 0, &mut a)?;

    let shared = (CHUNK * hd + 2 * CHUNK * (hd + 1)) * 4;
    if shared > dev.max_shared {
        return Err(Failure(format!(
            "attention over head size {hd} needs {shared} bytes of shared memory; the device offers {}",
            dev.max_shared
        )));
    }
    let scale = 1.0 / (hd as f32).sqrt();
    let mut a = args![
        q.mem.ptr(),
        kp,
        vp,
        dtype,
        at(step.positions),
        at(step.row_seq),
        at(step.tables),
        at(step.starts),
        at(step.tile_first),
        at(step.tile_rows),
        cache.shape.block_size as i32,
        heads.n_heads as i32,
        heads.n_kv_heads as i32,
        hd as i32,
        scale,
        out.mem.ptr(),
    ];
    let grid = (heads.n_kv_heads as u32, step.tiles as u32, 1);
    dev.driver
        .launch(&kern.attention, grid, 128, shared as u32, &mut a)?;
    Ok(())
}

/// Copies blocks `src[i]` to `dst[i]` in every layer (`pairs` on the
/// device: the sources, then the destinations).
pub fn copy_blocks(dev: &CudaDevice, cache: &CudaKvCache, pairs: &DevBuf, n: usize) -> Result {
    let s = &cache.shape;
    let mut a = args![
        cache.mem.ptr(),
        pairs.ptr(),
        pairs.ptr() + (n * 4) as u64,
        cache.plane_bytes() as u64,
        cache.block_bytes() as u64
    ];
    dev.driver.launch(
        &dev.kernels.kv_copy_blocks,
        (n as u32, (2 * s.layers) as u32, 1),
        256,
        0,
        &mut a,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_hold_consecutive_rows_of_one_sequence() {
        let mut b = KvBatch::new(4);
        b.push_sequence(&[0, 1, 2], 0..9);
        b.push_sequence(&[5], 3..4);
        b.push_sequence(&[6, 7], 5..7);
        let l = layout(&b, 4);
        let first = &l.data[l.tile_first..l.tile_first + l.tiles];
        let rows = &l.data[l.tile_rows..l.tile_rows + l.tiles];
        assert_eq!(first, &[0, 4, 8, 9, 10]);
        assert_eq!(rows, &[4, 4, 1, 1, 2]);
        let starts = &l.data[l.starts..l.starts + 4];
        assert_eq!(starts, &[0, 3, 4, 6]);
        assert_eq!(&l.data[l.tables..l.tables + 6], &[0, 1, 2, 5, 6, 7]);
        // Row 9 is the second sequence's position 3: block 5, offset 3.
        assert_eq!(l.data[l.slots + 9], 5 * 4 + 3);
        assert_eq!(&l.data[l.positions..l.positions + 3], &[0, 1, 2]);
        assert_eq!(l.data[l.row_seq + 10], 2);
    }

    #[test]
    fn tiles_shrink_as_query_groups_grow() {
        let heads = |n_heads, n_kv_heads| Heads {
            n_heads,
            n_kv_heads,
            head_dim: 64,
        };
        assert_eq!(rows_per_tile(heads(32, 8)), 8);
        assert_eq!(rows_per_tile(heads(8, 8)), 32);
        assert_eq!(rows_per_tile(heads(32, 1)), 1);
        assert!(check_heads(heads(32, 8)).is_ok());
        assert!(check_heads(heads(64, 1)).is_err());
        assert!(check_heads(Heads {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 16
        })
        .is_ok());
        assert!(check_heads(Heads {
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 512
        })
        .is_err());
    }
}
