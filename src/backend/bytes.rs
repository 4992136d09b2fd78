//! Shared, immutable weight bytes: a window into a memory-mapped file (the
//! usual case: quantized weights are used where they lie) or an owned
//! buffer (converted or generated weights).

use std::ops::Deref;
use std::sync::Arc;

#[derive(Clone)]
pub struct SharedBytes {
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
    start: usize,
    len: usize,
}

impl SharedBytes {
    /// A window `start..start+len` of `owner`; panics if out of range, which
    /// only a loader bug could cause (tensor extents are validated on open).
    pub fn window(owner: Arc<dyn AsRef<[u8]> + Send + Sync>, start: usize, len: usize) -> Self {
        assert!(
            start + len <= (*owner).as_ref().len(),
            "weight window out of range"
        );
        SharedBytes { owner, start, len }
    }

    pub fn owned(bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        SharedBytes {
            owner: Arc::new(bytes),
            start: 0,
            len,
        }
    }
}

impl Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &(*self.owner).as_ref()[self.start..self.start + self.len]
    }
}

impl std::fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedBytes({} bytes)", self.len)
    }
}
