//! The block allocator and prefix cache of one engine. A block is held by
//! the sequences whose tables name it (reference-counted); a full block
//! whose content is known is also published under its `BlockKey`, so a
//! later sequence with the same prefix takes it instead of recomputing it.
//! A published block nobody holds stays cached until space is needed: the
//! least recently released goes first.

use super::key::BlockKey;
use std::collections::{BTreeMap, HashMap};

pub type BlockId = u32;

pub struct BlockPool {
    block_size: usize,
    refs: Vec<u32>,
    key_of: Vec<Option<BlockKey>>,
    /// Blocks nobody holds and nothing is cached in.
    free: Vec<BlockId>,
    /// Published blocks by key, held or not.
    cached: HashMap<BlockKey, BlockId>,
    /// Published blocks nobody holds, by the tick of their release:
    /// the first is evicted first.
    evictable: BTreeMap<u64, BlockId>,
    /// The tick under which each evictable block sits in `evictable`.
    released_at: Vec<u64>,
    tick: u64,
}

impl BlockPool {
    pub fn new(blocks: usize, block_size: usize) -> Self {
        BlockPool {
            block_size,
            refs: vec![0; blocks],
            key_of: vec![None; blocks],
            // Popped from the end: block 0 is handed out first.
            free: (0..blocks as BlockId).rev().collect(),
            cached: HashMap::new(),
            evictable: BTreeMap::new(),
            released_at: vec![0; blocks],
            tick: 0,
        }
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    pub fn total(&self) -> usize {
        self.refs.len()
    }

    /// Blocks that can be handed out now (free, or cached and unheld).
    pub fn available(&self) -> usize {
        self.free.len() + self.evictable.len()
    }

    /// Blocks held by some sequence.
    pub fn in_use(&self) -> usize {
        self.total() - self.available()
    }

    /// Blocks needed for `tokens` positions.
    pub fn blocks_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.block_size)
    }

    /// A block for one holder: a free one, else the least recently
    /// released cached one, whose cached content is forgotten.
    pub fn allocate(&mut self) -> Option<BlockId> {
        let block = match self.free.pop() {
            Some(b) => b,
            None => {
                let (_, b) = self.evictable.pop_first()?;
                if let Some(key) = self.key_of[b as usize].take() {
                    self.cached.remove(&key);
                }
                b
            }
        };
        self.refs[block as usize] = 1;
        Some(block)
    }

    /// The cached block with this content, now held once more.
    pub fn hit(&mut self, key: &BlockKey) -> Option<BlockId> {
        let block = *self.cached.get(key)?;
        let i = block as usize;
        if self.refs[i] == 0 {
            self.evictable.remove(&self.released_at[i]);
        }
        self.refs[i] += 1;
        Some(block)
    }

    /// Records that a held, full block holds the content `key`. If another
    /// block already holds it, that one stays the cached copy.
    pub fn publish(&mut self, block: BlockId, key: BlockKey) {
        let i = block as usize;
        if self.key_of[i].is_some() || self.cached.contains_key(&key) {
            return;
        }
        self.cached.insert(key, block);
        self.key_of[i] = Some(key);
    }

    /// Drops one hold on `block`. Release a sequence's blocks last first, so
    /// that the ends of prefixes are evicted before their beginnings.
    pub fn release(&mut self, block: BlockId) {
        let i = block as usize;
        debug_assert!(self.refs[i] > 0, "block {block} released more than held");
        self.refs[i] = self.refs[i].saturating_sub(1);
        if self.refs[i] > 0 {
            return;
        }
        if self.key_of[i].is_some() {
            self.tick += 1;
            self.released_at[i] = self.tick;
            self.evictable.insert(self.tick, block);
        } else {
            self.free.push(block);
        }
    }

    #[cfg(test)]
    /// Checks the allocator against the block tables of every holder: each
    /// block's count equals the tables naming it; every block is exactly
    /// one of held, free or evictable; the cache index matches the blocks.
    pub fn check(&self, tables: &[&[BlockId]]) -> Result<(), String> {
        let n = self.total();
        let mut holders = vec![0u32; n];
        for table in tables {
            for &b in *table {
                *holders
                    .get_mut(b as usize)
                    .ok_or(format!("table names block {b} of {n}"))? += 1;
            }
        }
        if holders != self.refs {
            let b = (0..n).find(|&b| holders[b] != self.refs[b]).unwrap_or(0);
            return Err(format!(
                "block {b}: {} holder(s) but a count of {}",
                holders[b], self.refs[b]
            ));
        }
        let mut seen = vec![0u8; n];
        for &b in &self.free {
            seen[b as usize] += 1;
            if self.refs[b as usize] != 0 || self.key_of[b as usize].is_some() {
                return Err(format!("free block {b} is held or cached"));
            }
        }
        for (&tick, &b) in &self.evictable {
            seen[b as usize] += 1;
            let i = b as usize;
            if self.refs[i] != 0 || self.key_of[i].is_none() || self.released_at[i] != tick {
                return Err(format!("evictable block {b} is held, uncached or misfiled"));
            }
        }
        for (b, (&times, &refs)) in seen.iter().zip(&self.refs).enumerate() {
            if times != u8::from(refs == 0) {
                return Err(format!(
                    "block {b} is listed {times} time(s) among free and evictable blocks"
                ));
            }
        }
        for (key, &b) in &self.cached {
            if self.key_of[b as usize] != Some(*key) {
                return Err(format!("cache index names block {b} under another key"));
            }
        }
        let keyed = self.key_of.iter().filter(|k| k.is_some()).count();
        if keyed != self.cached.len() {
            return Err(format!(
                "{keyed} blocks carry keys, the index holds {}",
                self.cached.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> BlockKey {
        BlockKey::chain(None, &[n])
    }

    #[test]
    fn blocks_are_handed_out_until_none_is_left_and_come_back() {
        let mut p = BlockPool::new(3, 16);
        let got: Vec<_> = (0..3).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(p.allocate(), None);
        p.check(&[&got]).unwrap();
        p.release(1);
        assert_eq!(p.available(), 1);
        assert_eq!(p.allocate(), Some(1));
    }

    #[test]
    fn a_published_block_is_shared_and_outlives_its_holders_until_evicted() {
        let mut p = BlockPool::new(2, 16);
        let a = p.allocate().unwrap();
        p.publish(a, key(7));
        assert_eq!(p.hit(&key(7)), Some(a));
        p.check(&[&[a], &[a]]).unwrap();
        p.release(a);
        p.release(a);
        // Unheld but cached: still found, and available for reuse.
        assert_eq!(p.available(), 2);
        p.check(&[]).unwrap();
        assert_eq!(p.hit(&key(7)), Some(a));
        p.release(a);
        // Space is needed: the free block goes first, then the cached one.
        let b = p.allocate().unwrap();
        assert_ne!(b, a);
        assert_eq!(p.allocate(), Some(a));
        assert_eq!(p.hit(&key(7)), None, "evicted content is forgotten");
        p.check(&[&[a, b]]).unwrap();
    }

    #[test]
    fn the_least_recently_released_block_is_evicted_first() {
        let mut p = BlockPool::new(3, 16);
        let blocks: Vec<_> = (0..3).map(|_| p.allocate().unwrap()).collect();
        for (i, &b) in blocks.iter().enumerate() {
            p.publish(b, key(i as u32));
        }
        // Released last first, as a finished sequence releases.
        for &b in blocks.iter().rev() {
            p.release(b);
        }
        // Block 1 is touched again: it becomes the most recent.
        assert_eq!(p.hit(&key(1)), Some(blocks[1]));
        p.release(blocks[1]);
        assert_eq!(p.allocate(), Some(blocks[2]));
        assert_eq!(p.allocate(), Some(blocks[0]));
        assert_eq!(p.allocate(), Some(blocks[1]));
    }

    #[test]
    fn a_second_copy_of_cached_content_is_not_published() {
        let mut p = BlockPool::new(2, 16);
        let (a, b) = (p.allocate().unwrap(), p.allocate().unwrap());
        p.publish(a, key(1));
        p.publish(b, key(1));
        p.release(b);
        assert_eq!(p.available(), 1);
        p.check(&[&[a]]).unwrap();
        assert_eq!(p.hit(&key(1)), Some(a));
    }

    #[test]
    fn the_check_finds_a_miscount() {
        let mut p = BlockPool::new(2, 16);
        let a = p.allocate().unwrap();
        assert!(p.check(&[]).is_err());
        assert!(p.check(&[&[a], &[a]]).is_err());
        p.check(&[&[a]]).unwrap();
    }
}
