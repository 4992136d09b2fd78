//! Quantized activations regrouped for the AVX-512 nibble kernels: four
//! blocks a step. Sixteen bytes of Q4 quants hold values 0..16 of a block
//! in their low nibbles and 16..32 in their high ones, so one 64-byte load
//! covers four blocks; with the activations laid out the same way (the
//! first halves of four blocks, then their second halves), two `vpdpbusd`
//! give each block four i32 lanes of its own, and the float steps that
//! scale block sums run once per four blocks instead of once per two.
//!
//! Rows are padded to whole groups with zero blocks (d = 0), so the last
//! group of a row is computed like the others; nothing depends on T.

use super::q8_act::QuantActs;
use crate::backend::quant::BLOCK;

/// Blocks per group.
pub const GROUP: usize = 4;

#[derive(Default)]
pub struct Groups {
    /// Groups per row.
    pub ng: usize,
    /// Per group: four first halves, then four second halves (128 bytes).
    pub qs: Vec<i8>,
    /// d per block, GROUP per group.
    pub d: Vec<f32>,
    /// −8·Σq of each block (Q4_0's offset) in the first of its four
    /// lanes, zeros in the others: 16 per group, loaded as they are.
    pub bias: Vec<i32>,
}

impl Groups {
    /// Regroups every row of `qa`.
    pub fn build(&mut self, qa: &QuantActs) {
        let nb = qa.nb;
        let ng = nb.div_ceil(GROUP);
        let blocks = qa.rows * ng * GROUP;
        self.ng = ng;
        self.qs.clear();
        self.qs.resize(blocks * BLOCK, 0);
        self.d.clear();
        self.d.resize(blocks, 0.0);
        self.bias.clear();
        self.bias.resize(blocks * 4, 0);
        for i in 0..qa.rows {
            for b in 0..nb {
                let (g, j) = (b / GROUP, b % GROUP);
                let at = (i * ng + g) * GROUP;
                let src = &qa.qs[(i * nb + b) * BLOCK..][..BLOCK];
                let dst = &mut self.qs[at * BLOCK..][..GROUP * BLOCK];
                dst[j * 16..j * 16 + 16].copy_from_slice(&src[..16]);
                dst[64 + j * 16..64 + j * 16 + 16].copy_from_slice(&src[16..]);
                self.d[at + j] = qa.d[i * nb + b];
                self.bias[(at + j) * 4] = -8 * qa.isum[i * nb + b];
            }
        }
    }
}
