//! What every layer's unit tests set up: deterministic bytes no compressor shrinks (so
//! their chunks are stored raw and read back by pread like camera media), and one file
//! ingested into a branch.

use super::ingest::{ingest, IngestOptions};
use super::repo::Archive;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Ingest `data` as `name` at the root of `branch`, from a source folder made under `dir`.
pub(crate) fn put(a: &mut Archive, branch: &str, dir: &Path, name: &str, data: &[u8]) {
    let d = dir.join(format!("src-{branch}-{name}"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), data).unwrap();
    let opts = IngestOptions {
        branch: branch.into(),
        dest: String::new(),
        message: None,
        progress: Default::default(),
        prober: None,
        interrupt: Arc::new(AtomicBool::new(false)),
    };
    ingest(a, &[d.join(name)], &opts).unwrap();
}

/// A new archive at `dir/arch` holding `data` as `main/f.bin`; its root.
pub(crate) fn archive_with_file(dir: &Path, data: &[u8]) -> PathBuf {
    let root = dir.join("arch");
    let mut a = Archive::init(&root).unwrap();
    put(&mut a, "main", dir, "f.bin", data);
    root
}

/// Flip the bits of one byte of a file in place, as a bad sector would.
pub(crate) fn flip_byte(path: impl AsRef<Path>, at: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x55], at).unwrap();
}

/// Write a file's dirty pages back and drop its cached ones, as a pack is
/// after a reboot or under memory pressure.
pub(crate) fn evict(path: impl AsRef<Path>) {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(path).unwrap();
    f.sync_all().unwrap();
    // SAFETY: advice only; any range is valid.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

/// Whether this test machine's temporary folder takes `O_DIRECT` (tmpfs does not).
pub(crate) fn direct_io_here() -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("probe");
    std::fs::write(&p, [0u8; 4096]).unwrap();
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&p).is_ok()
}

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
