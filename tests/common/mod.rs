//! Helpers shared by the Rust integration tests (each test file is its own
//! crate and uses only some of them).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Deterministic incompressible bytes (xorshift64), so chunking and dedup
/// results are the same on every run.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Write a file with a mode and an mtime carrying nanoseconds (an archive
/// must keep them exactly).
pub fn write(path: &Path, data: &[u8], mode: u32, mtime_s: i64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(mtime_s, 123_456_789)).unwrap();
}
