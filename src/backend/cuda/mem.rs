//! Device memory: one allocation, returned when dropped, and the copies
//! in and out of it on the device's stream.

use super::driver::Driver;
use super::Failure;
use std::sync::Arc;

pub struct DevBuf {
    ptr: u64,
    bytes: usize,
    /// Keeps the device alive until the memory is returned to it.
    driver: Arc<Driver>,
}

fn as_bytes<T: Copy>(data: &[T]) -> &[u8] {
    // SAFETY: plain values (integers, floats) viewed as their bytes.
    unsafe { std::slice::from_raw_parts(data.as_ptr() as *const u8, std::mem::size_of_val(data)) }
}

fn as_bytes_mut<T: Copy>(data: &mut [T]) -> &mut [u8] {
    // SAFETY: as above; every bit pattern is a valid value of the plain
    // types this is used with.
    unsafe {
        std::slice::from_raw_parts_mut(data.as_mut_ptr() as *mut u8, std::mem::size_of_val(data))
    }
}

impl DevBuf {
    /// `bytes` of uninitialised device memory.
    pub fn alloc(driver: &Arc<Driver>, bytes: usize) -> Result<Self, Failure> {
        Ok(DevBuf {
            ptr: driver.alloc(bytes)?,
            bytes,
            driver: driver.clone(),
        })
    }

    /// `bytes` of zeroed device memory.
    pub fn zeroed(driver: &Arc<Driver>, bytes: usize) -> Result<Self, Failure> {
        let buf = Self::alloc(driver, bytes)?;
        driver.zero(buf.ptr, bytes)?;
        Ok(buf)
    }

    /// No memory: what a buffer is after its allocation failed (the
    /// backend has failed then, and no kernel reads it).
    pub fn null(driver: &Arc<Driver>) -> Self {
        DevBuf {
            ptr: 0,
            bytes: 0,
            driver: driver.clone(),
        }
    }

    pub fn ptr(&self) -> u64 {
        self.ptr
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Copies `data` to the start of the buffer, in stream order.
    pub fn upload<T: Copy>(&self, data: &[T]) -> Result<(), Failure> {
        self.upload_at(0, data)
    }

    /// Copies `data` to `offset` bytes into the buffer.
    pub fn upload_at<T: Copy>(&self, offset: usize, data: &[T]) -> Result<(), Failure> {
        let bytes = as_bytes(data);
        if offset + bytes.len() > self.bytes {
            return Err(Failure("an upload past the end of a device buffer".into()));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.driver.upload(self.ptr + offset as u64, bytes)
    }

    /// Copies the start of the buffer into `out`, once the stream is done.
    pub fn download<T: Copy>(&self, out: &mut [T]) -> Result<(), Failure> {
        let bytes = as_bytes_mut(out);
        if bytes.len() > self.bytes {
            return Err(Failure("a download past the end of a device buffer".into()));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.driver.download(self.ptr, bytes)
    }
}

impl Drop for DevBuf {
    fn drop(&mut self) {
        if self.ptr != 0 {
            self.driver.free(self.ptr, self.bytes);
        }
    }
}

/// Kernel arguments, each widened to 8 bytes: the driver reads as many
/// bytes of each as the parameter's type has, from the start of its slot,
/// which on a little-endian machine is the value itself.
pub trait KernelArg {
    fn bits(self) -> u64;
}

impl KernelArg for u64 {
    fn bits(self) -> u64 {
        self
    }
}
impl KernelArg for i32 {
    fn bits(self) -> u64 {
        self as u32 as u64
    }
}
impl KernelArg for u32 {
    fn bits(self) -> u64 {
        self as u64
    }
}
impl KernelArg for f32 {
    fn bits(self) -> u64 {
        self.to_bits() as u64
    }
}

/// `args![a, b, …]`: the slots of a kernel launch.
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        [$($crate::backend::cuda::mem::KernelArg::bits($a)),*]
    };
}
pub(crate) use args;

#[cfg(test)]
mod tests {
    #[test]
    fn arguments_keep_their_value_in_the_low_bytes() {
        let slots = args![7u64, -2i32, 3u32, 1.5f32];
        assert_eq!(slots[0], 7);
        assert_eq!(slots[1] as u32 as i32, -2);
        assert_eq!(slots[2], 3);
        assert_eq!(f32::from_bits(slots[3] as u32), 1.5);
    }
}
