//! One sequence as the scheduler sees it: its tokens, how many of them
//! have keys and values in the cache, and the blocks that hold them.

use crate::engine::kv::{BlockId, BlockKey};

pub type SeqId = u64;

#[derive(Debug)]
pub struct Sequence {
    #[cfg_attr(not(test), allow(dead_code))]
    pub id: SeqId,
    /// Lower runs first.
    pub priority: i32,
    /// Arrival order: among equals, the earlier runs first and is the last
    /// to be preempted.
    pub(super) arrival: u64,
    /// Prompt and every token generated so far.
    pub tokens: Vec<u32>,
    /// Leading tokens whose keys and values are in the cache.
    pub computed: usize,
    /// The block table: block i holds positions i·block_size….
    pub blocks: Vec<BlockId>,
    /// Keys of the first full blocks, as far as they are known.
    pub(super) keys: Vec<BlockKey>,
    /// Full blocks already published to the prefix cache.
    pub(super) published: usize,
    /// May start from blocks others computed (false when every prompt
    /// position's logits are wanted).
    pub(super) reuses_cache: bool,
    /// Times this sequence lost its blocks and started over.
    pub preemptions: u32,
}

impl Sequence {
    /// Tokens not yet in the cache.
    pub fn pending(&self) -> usize {
        self.tokens.len() - self.computed
    }

    /// True while more than the last sampled token is pending: the
    /// sequence is still reading its prompt (or re-reading it after a
    /// preemption).
    pub fn prefilling(&self) -> bool {
        self.pending() > 1
    }
}
