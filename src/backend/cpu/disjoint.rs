//! An output pointer shared by the tasks of one parallel region, each of
//! which writes its own disjoint part of the buffer.

#[derive(Clone, Copy)]
pub(super) struct DisjointOut(*mut f32);

// SAFETY: tasks write disjoint elements, and the region ends before the
// buffer is read or freed (`ComputePool::run` returns only then).
unsafe impl Send for DisjointOut {}
unsafe impl Sync for DisjointOut {}

impl DisjointOut {
    pub fn new(out: &mut [f32]) -> Self {
        DisjointOut(out.as_mut_ptr())
    }

    /// Taking `self` makes closures capture the whole (Sync) wrapper.
    pub fn get(self) -> *mut f32 {
        self.0
    }
}
