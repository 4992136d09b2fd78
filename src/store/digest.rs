//! Streaming SHA-256 of a file, with optional progress.

use super::StoreError;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Hex digest of the file; `progress(done, total)` is called as it reads.
pub fn sha256_file(path: &Path, mut progress: impl FnMut(u64, u64)) -> Result<String, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let total = file.metadata().map_err(io)?.len();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done, total);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
