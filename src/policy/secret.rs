//! Key secrets: `sy-` and 48 hex digits (192 random bits from the
//! operating system), stored only as their SHA-256, compared in constant
//! time.

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "sy-";
const RANDOM_BYTES: usize = 24;

/// A new secret and its hash.
pub fn generate() -> Result<(String, [u8; 32]), String> {
    let mut bytes = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the system: {e}"))?;
    let secret = format!("{PREFIX}{}", hex(&bytes));
    let h = hash(&secret);
    Ok((secret, h))
}

/// A public identifier for a key: shown in lists, logs and the audit
/// trail, and useless for authenticating.
pub fn new_id() -> Result<String, String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the system: {e}"))?;
    Ok(format!("key_{}", hex(&bytes)))
}

pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the fold from being turned into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// The first 8 bytes of a hash: where a key is filed in the index.
pub fn tag(hash: &[u8; 32]) -> u64 {
    u64::from_le_bytes([
        hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7],
    ])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hash_to_what_is_stored() {
        let (a, ha) = generate().unwrap();
        let (b, hb) = generate().unwrap();
        assert!(a.starts_with("sy-") && a.len() == 3 + 2 * RANDOM_BYTES);
        assert_ne!(a, b);
        assert_eq!(hash(&a), ha);
        assert!(constant_time_eq(&ha, &hash(&a)));
        assert!(!constant_time_eq(&ha, &hb));
        let mut near = ha;
        near[31] ^= 1;
        assert!(!constant_time_eq(&ha, &near));
    }
}
