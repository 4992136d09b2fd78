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
    /// A window of a memory-mapped file (`window`), not an owned buffer.
    mapped: bool,
}

impl SharedBytes {
    /// A window `start..start+len` of `owner`; panics if out of range, which
    /// only a loader bug could cause (tensor extents are validated on open).
    pub fn window(owner: Arc<dyn AsRef<[u8]> + Send + Sync>, start: usize, len: usize) -> Self {
        assert!(
            start + len <= (*owner).as_ref().len(),
            "weight window out of range"
        );
        SharedBytes {
            owner,
            start,
            len,
            mapped: true,
        }
    }

    pub fn owned(bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        SharedBytes {
            owner: Arc::new(bytes),
            start: 0,
            len,
            mapped: false,
        }
    }

    /// Says the process no longer needs the file pages wholly inside this
    /// window, because their contents were copied elsewhere (a layout
    /// split, a re-encoding): they leave the resident set now instead of
    /// staying mapped while other tensors of the file keep the mapping
    /// alive. The bytes stay readable (a read faults them back in from
    /// the file). Owned buffers are left alone: for anonymous memory the
    /// same advice would discard their contents.
    pub fn release_pages(&self) {
        if !self.mapped || self.len == 0 {
            return;
        }
        #[cfg(unix)]
        {
            // SAFETY: sysconf has no preconditions.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
            let begin = self.as_ptr() as usize;
            let (first, last) = (
                begin.next_multiple_of(page),
                (begin + self.len) / page * page,
            );
            if last > first {
                // SAFETY: the range lies inside a live read-only file
                // mapping (held by `owner`); MADV_DONTNEED on a file
                // mapping drops this process's page mappings and nothing
                // else. The advice may fail harmlessly; it is only advice.
                unsafe {
                    libc::madvise(
                        first as *mut libc::c_void,
                        last - first,
                        libc::MADV_DONTNEED,
                    )
                };
            }
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
