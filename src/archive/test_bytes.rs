//! Deterministic bytes for unit tests that no compressor shrinks, so their chunks are
//! stored raw and read back by pread like camera media. Shared by every layer's tests.

/// xorshift64 from `seed`, keeping bits 24..32 of each step.
pub(crate) fn noise(n: usize, seed: u64) -> Vec<u8> {
    xorshift(n, seed, 24)
}

/// xorshift64 from `seed`, keeping the low byte of each step (the older tests' bytes;
/// their chunk boundaries were chosen against these exact bytes).
pub(crate) fn noise_low(n: usize, seed: u64) -> Vec<u8> {
    xorshift(n, seed, 0)
}

fn xorshift(n: usize, seed: u64, shift: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> shift) as u8
        })
        .collect()
}
