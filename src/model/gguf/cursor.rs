//! A bounds-checked little-endian reader over the mapped file. Every read
//! that would run past the end is an error naming the offset, so a
//! truncated or hostile file can never make the loader panic or allocate
//! more than the file could hold.

pub(super) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

pub(super) type CursorResult<T> = Result<T, String>;

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &str) -> CursorResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(format!(
                "truncated: {what} needs {n} bytes at offset {} but the file ends at {}",
                self.pos,
                self.bytes.len()
            ));
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> CursorResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &str) -> CursorResult<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u16(&mut self, what: &str) -> CursorResult<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub fn u32(&mut self, what: &str) -> CursorResult<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &str) -> CursorResult<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn f32(&mut self, what: &str) -> CursorResult<f32> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }
    pub fn f64(&mut self, what: &str) -> CursorResult<f64> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// A count that must be backed by at least `min_elem_bytes` per element
    /// in what is left of the file.
    pub fn count(&mut self, min_elem_bytes: usize, what: &str) -> CursorResult<usize> {
        let at = self.pos;
        let n = self.u64(what)?;
        let need = n.checked_mul(min_elem_bytes.max(1) as u64);
        match need {
            Some(need) if need <= self.remaining() as u64 => Ok(n as usize),
            _ => Err(format!(
                "{what} at offset {at} claims {n} elements, more than the file holds"
            )),
        }
    }

    pub fn string(&mut self, what: &str) -> CursorResult<String> {
        let len = self.count(1, what)?;
        let at = self.pos;
        let raw = self.take(len, what)?;
        // Vocabularies hold arbitrary bytes in rare tokens; keep them lossily
        // rather than refusing the whole file.
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) if what.starts_with("array") => Ok(String::from_utf8_lossy(raw).into_owned()),
            Err(e) => Err(format!("{what} at offset {at} is not UTF-8: {e}")),
        }
    }
}
