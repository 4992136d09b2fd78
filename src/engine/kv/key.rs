//! The identity of a full block of tokens for the prefix cache: a digest
//! of its tokens and of the whole chain of blocks before it, so two blocks
//! match only when the entire prefix up to their end is the same.
//! SHA-256 (cut to 128 bits) rather than a fast 64-bit hash: a collision
//! would hand one request another's keys and values, and the cost is a
//! few hundred nanoseconds per 16 tokens.

use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockKey([u8; 16]);

impl BlockKey {
    /// The key of the block holding `tokens`, after the block `parent`
    /// (None for the first block of a sequence).
    pub fn chain(parent: Option<&BlockKey>, tokens: &[u32]) -> BlockKey {
        let mut h = Sha256::new();
        match parent {
            Some(p) => {
                h.update([1u8]);
                h.update(p.0);
            }
            None => h.update([0u8]),
        }
        for t in tokens {
            h.update(t.to_le_bytes());
        }
        let digest = h.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        BlockKey(key)
    }
}

/// The keys of every full block of `tokens`, in order.
pub fn chain_keys(tokens: &[u32], block_size: usize) -> Vec<BlockKey> {
    let mut keys: Vec<BlockKey> = Vec::with_capacity(tokens.len() / block_size);
    for block in tokens.chunks_exact(block_size) {
        let key = BlockKey::chain(keys.last(), block);
        keys.push(key);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_matches_only_after_the_same_prefix() {
        let a = chain_keys(&[1, 2, 3, 4, 5, 6, 7, 8], 4);
        let b = chain_keys(&[1, 2, 3, 4, 5, 6, 7, 8, 9], 4);
        let c = chain_keys(&[0, 2, 3, 4, 5, 6, 7, 8], 4);
        assert_eq!(a, b, "a partial block has no key");
        assert_eq!(a.len(), 2);
        assert_ne!(a[1], c[1], "same tokens after a different prefix");
        assert_ne!(a[0], a[1]);
    }
}
