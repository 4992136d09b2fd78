//! The paged KV cache as backends see it: a pool of fixed-size blocks per
//! layer, and for each step the block table of every sequence in it. Which
//! block holds what is the engine's business; a backend only stores keys
//! and values where the tables say and reads them back for attention.

/// Element type of cached keys and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvDtype {
    F32,
    F16,
    Bf16,
}

impl KvDtype {
    /// Every type, numbered as the CUDA program numbers them (`KV_*`).
    pub const ALL: [KvDtype; 3] = [KvDtype::F32, KvDtype::F16, KvDtype::Bf16];

    pub fn bytes(self) -> usize {
        match self {
            KvDtype::F32 => 4,
            KvDtype::F16 | KvDtype::Bf16 => 2,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "f32" | "float32" => Some(KvDtype::F32),
            "f16" | "float16" | "half" => Some(KvDtype::F16),
            "bf16" | "bfloat16" => Some(KvDtype::Bf16),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KvDtype::F32 => "f32",
            KvDtype::F16 => "f16",
            KvDtype::Bf16 => "bf16",
        }
    }
}

/// The geometry of a block pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvShape {
    pub layers: usize,
    pub blocks: usize,
    /// Token positions per block.
    pub block_size: usize,
    /// Floats of one position's keys (and of its values) in one layer.
    pub kv_dim: usize,
    pub dtype: KvDtype,
}

impl KvShape {
    /// Bytes one block takes over all layers, keys and values.
    pub fn block_bytes(&self) -> usize {
        2 * self.layers * self.block_size * self.kv_dim * self.dtype.bytes()
    }

    pub fn total_bytes(&self) -> usize {
        self.blocks * self.block_bytes()
    }
}

/// What one step's rows need to find their keys and values: each row's
/// position, the sequence it belongs to, and each sequence's block table
/// (the block of positions 0..block_size, then the next …).
#[derive(Clone, Debug, Default)]
pub struct KvBatch {
    pub block_size: usize,
    pub positions: Vec<u32>,
    /// Per row: the index of its sequence's table.
    pub row_seq: Vec<u32>,
    tables: Vec<u32>,
    /// Start of each table in `tables`, plus the end of the last.
    starts: Vec<usize>,
}

impl KvBatch {
    pub fn new(block_size: usize) -> Self {
        KvBatch {
            block_size,
            starts: vec![0],
            ..KvBatch::default()
        }
    }

    /// Empties the batch, keeping its allocations for the next step.
    pub fn clear(&mut self) {
        self.positions.clear();
        self.row_seq.clear();
        self.tables.clear();
        self.starts.clear();
        self.starts.push(0);
    }

    /// Adds a sequence with its block table and the positions of its rows
    /// in this step.
    pub fn push_sequence(&mut self, table: &[u32], positions: std::ops::Range<usize>) {
        let seq = (self.starts.len() - 1) as u32;
        self.tables.extend_from_slice(table);
        self.starts.push(self.tables.len());
        for p in positions {
            self.positions.push(p as u32);
            self.row_seq.push(seq);
        }
    }

    pub fn rows(&self) -> usize {
        self.positions.len()
    }

    /// Sequences in the step.
    pub fn sequences(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn table(&self, seq: usize) -> &[u32] {
        &self.tables[self.starts[seq]..self.starts[seq + 1]]
    }

    /// The cache slot (block · block_size + offset) of a row's position.
    pub fn slot(&self, row: usize) -> usize {
        self.slot_of(row, self.positions[row] as usize)
    }

    /// The cache slot of position `pos` of `row`'s sequence.
    pub fn slot_of(&self, row: usize, pos: usize) -> usize {
        let table = self.table(self.row_seq[row] as usize);
        table[pos / self.block_size] as usize * self.block_size + pos % self.block_size
    }

    /// One sequence at positions `start..start+len`, its blocks numbered
    /// 0, 1, 2 … (tests and single-sequence tools).
    pub fn contiguous(block_size: usize, start: usize, len: usize) -> Self {
        let mut b = KvBatch::new(block_size);
        let blocks: Vec<u32> = (0..(start + len).div_ceil(block_size) as u32).collect();
        b.push_sequence(&blocks, start..start + len);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_find_their_slots_through_their_own_table() {
        let mut b = KvBatch::new(4);
        b.push_sequence(&[7, 2], 5..6);
        b.push_sequence(&[3], 0..3);
        assert_eq!(b.rows(), 4);
        assert_eq!(b.slot(0), 2 * 4 + 1);
        assert_eq!(b.slot(1), 3 * 4);
        assert_eq!(b.slot(3), 3 * 4 + 2);
        assert_eq!(b.slot_of(0, 2), 7 * 4 + 2);
        b.clear();
        assert_eq!(b.rows(), 0);
        b.push_sequence(&[1], 0..1);
        assert_eq!(b.slot(0), 4);
    }
}
