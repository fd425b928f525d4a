//! A local pack opened for reading: buffered reads, and whole-chunk loads
//! around the page cache (`O_DIRECT`) when the pack's bytes are not cached.
//!
//! Why: a chunk load reads 1-16 MiB that the loader keeps in memory of its
//! own (the mount's and serve's read-ahead, the store's cache) and that the
//! mount's readers keep again in the kernel's cache of the file they read. A
//! buffered read went through a third copy, the pack's page cache, at about
//! 1 CPU-second per GiB here: 29% of a cold `cat` through the mount and most
//! of the archive reader's time in `tape write --device`. Read directly, the
//! disk writes into the loader's buffer and the CPU copies nothing
//! (`dd iflag=direct` of 4 GiB: 0.25 CPU-s against 3.3-7.0 buffered, at the
//! same speed).
//!
//! Where the pack's bytes are cached already (a pack read a moment ago by a
//! buffered path, or the tail its writer wrote through the page cache), the
//! buffered read is the cheaper one and is kept: `cachestat(2)` says how much
//! of the range is resident without touching it. Filesystems that refuse
//! `O_DIRECT` (tmpfs) are read buffered.

use super::read_at::ReadAt;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Loads smaller than this stay buffered: a sidecar's chunk of a few KiB is
/// cheap to copy, and a direct read gets no read-ahead from the kernel.
const DIRECT_FROM: usize = 256 << 10;

/// A pack file, open for reading.
pub struct PackFile {
    file: File,
    /// The same file opened with `O_DIRECT`, on the first load that wants it
    /// (`None` where the filesystem refuses it).
    direct: OnceLock<Option<File>>,
    /// A direct read failed with `EINVAL` (a filesystem that accepts the flag
    /// at open but not the read): every later read is buffered.
    refused: AtomicBool,
}

impl PackFile {
    pub fn new(file: File) -> PackFile {
        PackFile { file, direct: OnceLock::new(), refused: AtomicBool::new(false) }
    }

    /// Reopened through `/proc/self/fd`, so that it is the same file even if
    /// the pack was removed (gc) since it was opened.
    fn direct(&self) -> Option<&File> {
        self.direct
            .get_or_init(|| {
                let path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path).ok()
            })
            .as_ref()
    }
}

impl ReadAt for PackFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        FileExt::read_at(&self.file, buf, offset)
    }
    fn len(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn as_file(&self) -> Option<&File> {
        Some(&self.file)
    }
    fn prefers_direct(&self, offset: u64, len: usize) -> bool {
        len >= DIRECT_FROM && !self.refused.load(Ordering::Relaxed) && !mostly_cached(&self.file, offset, len) && self.direct().is_some()
    }
    fn read_direct_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Some(d) = self.direct() else {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        };
        let r = FileExt::read_at(d, buf, offset);
        if let Err(e) = &r {
            if e.raw_os_error() == Some(libc::EINVAL) {
                self.refused.store(true, Ordering::Relaxed);
            }
        }
        r
    }
}

/// The kernel has no `cachestat` (before 6.5): ranges count as not cached.
static NO_CACHESTAT: AtomicBool = AtomicBool::new(false);

/// Whether at least half of `len` bytes at `offset` are in the page cache.
pub(crate) fn mostly_cached(file: &File, offset: u64, len: usize) -> bool {
    if NO_CACHESTAT.load(Ordering::Relaxed) {
        return false;
    }
    // struct cachestat_range and struct cachestat (include/uapi/linux/mman.h).
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    // One number on every architecture (the unified table from 424 on).
    const SYS_CACHESTAT: libc::c_long = 451;
    let range = Range { off: offset, len: len as u64 };
    let mut st = Stat::default();
    // SAFETY: the kernel reads `range` and writes one `Stat`, both live and of
    // the layout it defines; flags must be 0.
    let rc = unsafe { libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range as *const Range, &mut st as *mut Stat, 0u32) };
    if rc != 0 {
        if io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            NO_CACHESTAT.store(true, Ordering::Relaxed);
        }
        return false;
    }
    st.nr_cache.saturating_mul(4096) >= (len as u64) / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::read_at::DIRECT_ALIGN;

    #[test]
    fn a_pack_read_a_moment_ago_stays_buffered_and_a_cold_one_is_read_direct() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = File::open(&path).unwrap();
        // Just written through the page cache: cached.
        assert!(mostly_cached(&f, 0, data.len()) || NO_CACHESTAT.load(Ordering::Relaxed));
        let p = PackFile::new(f);
        assert!(!p.prefers_direct(0, 4096), "a small read stays buffered");
        // Evict it (written back first), then it is read direct where the
        // filesystem allows it.
        p.file.sync_all().unwrap();
        // SAFETY: advice only; any range is valid.
        unsafe { libc::posix_fadvise(p.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        if p.direct().is_some() {
            assert!(p.prefers_direct(0, data.len()));
            let mut raw = vec![0u8; data.len() + DIRECT_ALIGN];
            let base = raw.as_ptr().align_offset(DIRECT_ALIGN);
            let n = p.read_direct_at(0, &mut raw[base..base + data.len()]).unwrap();
            assert_eq!(n, data.len());
            assert_eq!(&raw[base..base + n], &data[..]);
        }
    }
}
