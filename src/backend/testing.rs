//! Deterministic test data shared by the kernel and model tests and by
//! doctor's checks of a device against the CPU.

/// `n` values spread uniformly over [-width/2, width/2), from `seed`
/// (xorshift64: the same on every machine).
pub fn uniform(n: usize, seed: u64, width: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5) * width
        })
        .collect()
}
