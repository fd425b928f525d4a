//! Buffers for chunk loads, recycled instead of allocated per load.
//!
//! A chunk load (`pack::read_record`) used to allocate a fresh zero-filled
//! buffer of 1-16 MiB and then overwrite it with the pack's bytes: the kernel
//! faulted in and zeroed every page of it (~11% of a cold `cat` through the
//! mount, ~15% of serve's whole-file profile). The caches that hold loaded
//! chunks (the mount's and serve's prefetcher, the chunk store's own) hand a
//! chunk they drop back here when nobody else holds it, and the next load takes
//! it: its pages are already resident and are overwritten, not zeroed.
//!
//! One pool per process, shared by every reader (the mount, serve, restore,
//! `cat`, tape), bounded in bytes: a buffer that does not fit is freed. The
//! mount's write path keeps a pool of its own, of whole 64 MiB segments
//! (`fs::write::SEGMENT_BUFFERS`).

use std::sync::{Arc, Mutex};

/// Bytes of idle buffers kept: four of the largest chunks (16 MiB). In a
/// steady sequential read each load takes the buffer the previous one's
/// eviction gave back, so the pool rarely holds more than one or two.
const POOL_BYTES: usize = 64 << 20;

/// A buffer is only taken for a load of at least half its capacity: a 16 MiB
/// buffer is not tied up by a 1 MiB chunk. The caches count a chunk by its
/// buffer's capacity (its pages stay resident), so a loose fit would shrink
/// what they hold.
const MIN_FILL_SHIFT: u32 = 1;

/// Smaller buffers are not kept: malloc serves them from its arenas without a
/// mapping of their own, and a pool of many small ones would only be scanned.
const MIN_POOLED: usize = 64 << 10;

struct Pool {
    free: Vec<Vec<u8>>,
    bytes: usize,
    /// Loads served by a recycled buffer / by a new allocation.
    reused: u64,
    allocated: u64,
}

/// A bounded pool of idle chunk buffers.
pub struct ChunkBuffers {
    pool: Mutex<Pool>,
    cap: usize,
}

/// The process's pool, shared by every reader.
static SHARED: ChunkBuffers = ChunkBuffers::new(POOL_BYTES);

impl ChunkBuffers {
    pub const fn new(cap: usize) -> ChunkBuffers {
        ChunkBuffers { pool: Mutex::new(Pool { free: Vec::new(), bytes: 0, reused: 0, allocated: 0 }), cap }
    }

    /// A buffer of exactly `len` bytes whose contents are unspecified (they
    /// are about to be overwritten by a read): a recycled one when one fits,
    /// else a new one.
    pub fn take(&self, len: usize) -> Vec<u8> {
        let recycled = self.pool.lock().ok().and_then(|mut p| {
            let best = p
                .free
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= len && (v.capacity() >> MIN_FILL_SHIFT) <= len)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            match best {
                Some(i) => {
                    let v = p.free.swap_remove(i);
                    p.bytes -= v.capacity();
                    p.reused += 1;
                    Some(v)
                }
                None => {
                    p.allocated += 1;
                    None
                }
            }
        });
        match recycled {
            Some(mut v) => {
                // Only bytes past the old length are written (zeroed); the
                // rest keep an earlier chunk's bytes until the read overwrites them.
                v.resize(len, 0);
                v.truncate(len);
                v
            }
            None => {
                own_mappings_for_large_buffers();
                let mut v = vec![0u8; len];
                huge_pages(&mut v);
                v
            }
        }
    }

    /// Give a buffer back for a later `take` (freed if it does not fit, or if
    /// it is small enough for malloc's arenas to serve without a mapping).
    pub fn give(&self, v: Vec<u8>) {
        if v.capacity() < MIN_POOLED || v.capacity() > self.cap {
            return;
        }
        let Ok(mut p) = self.pool.lock() else { return };
        // Keep the newest: a full pool frees its oldest buffers first.
        while p.bytes + v.capacity() > self.cap && !p.free.is_empty() {
            let old = p.free.remove(0);
            p.bytes -= old.capacity();
        }
        p.bytes += v.capacity();
        p.free.push(v);
    }

    /// (loads served by a recycled buffer, loads that allocated) so far.
    pub fn stats(&self) -> (u64, u64) {
        self.pool.lock().map(|p| (p.reused, p.allocated)).unwrap_or((0, 0))
    }

    /// Free every idle buffer.
    pub fn trim(&self) {
        let freed = self.pool.lock().map(|mut p| {
            p.bytes = 0;
            std::mem::take(&mut p.free)
        });
        drop(freed);
    }

    /// Bytes of idle buffers held now (never more than the bound).
    pub fn idle_bytes(&self) -> usize {
        self.pool.lock().map(|p| p.bytes).unwrap_or(0)
    }
}

/// Large buffers get mappings of their own, not space in malloc's arenas.
///
/// glibc raises its mmap threshold to the size of the largest buffer freed
/// (up to 32 MiB), so after the first chunk is dropped every 1-16 MiB chunk is
/// carved out of one of up to 8 x cores 64 MiB arena heaps, and what those
/// heaps free stays resident: the mount with a 1 GiB cache measured 1.26 GiB
/// resident in twenty ~62 MiB heaps after one cold 2 GiB `cat`. A fixed
/// threshold keeps each chunk buffer a mapping of its own, returned to the
/// system when freed, so resident memory follows what the caches count; the
/// pool above is what makes reuse cheap, not the arenas.
fn own_mappings_for_large_buffers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes a malloc tuning parameter; any value is valid.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    });
}

/// Ask for a new buffer's memory in 2 MiB pages (`MADV_HUGEPAGE`; this
/// machine's THP setting is `madvise`), before anything touches it.
///
/// Why: a direct read (archive/pack_file.rs) or write (pack_direct.rs) hands
/// the disk the buffer's pages as a scatter list, and this virtio disk takes
/// at most 254 segments per request: in 4 KiB pages a request carries under
/// 1 MiB, in 2 MiB pages 4 MiB. Reading a cold 4 GiB file with `O_DIRECT` in
/// 6 MiB pieces, four at a time: 870 MiB/s into 4 KiB pages, 1,970 MiB/s into
/// 2 MiB pages (2,400-2,700 one at a time), where a buffered `cat` of it
/// took 0.5-1.9 GiB/s. Fewer faults and TLB misses for the hash and the
/// copies that read the chunk afterwards, too. Only whole 2 MiB pages inside
/// the buffer are asked for, so resident memory stays what the caches count.
pub fn huge_pages(v: &mut [u8]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = v.as_mut_ptr() as usize;
        let first = start.next_multiple_of(HUGE);
        let end = (start + v.len()) / HUGE * HUGE;
        if end > first {
            // SAFETY: [first, end) lies inside `v`'s allocation and is page
            // aligned; the advice changes how its pages are backed, not its
            // contents. A kernel without THP refuses it, which is harmless.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
}

/// Allocations from this size up are mmapped (see `own_mappings_for_large_buffers`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// `take` from the process's pool.
pub fn take(len: usize) -> Vec<u8> {
    SHARED.take(len)
}

/// `give` to the process's pool.
pub fn give(v: Vec<u8>) {
    SHARED.give(v)
}

/// A holder of this chunk let it go (a cache dropped it, a reply was sent):
/// the last holder gives its buffer back. `Arc::into_inner`, not
/// `try_unwrap`: of holders letting go at the same moment exactly one gets
/// the buffer, where each `try_unwrap` could see the other and neither would.
pub fn recycle(chunk: Arc<ChunkBuf>) {
    if let Some(c) = Arc::into_inner(chunk) {
        give(c.buf);
    }
}

/// A loaded chunk's bytes: a range of a buffer, not always from its start.
///
/// Why not a plain `Vec`: a chunk read around the page cache (`O_DIRECT`,
/// archive/pack.rs) lands at the buffer's first 4 KiB boundary, plus where
/// the record starts inside its disk block; moving it down to the buffer's
/// start would be the very copy the direct read saves.
pub struct ChunkBuf {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl ChunkBuf {
    /// All of `v`.
    pub fn whole(v: Vec<u8>) -> ChunkBuf {
        let len = v.len();
        ChunkBuf { buf: v, start: 0, len }
    }

    /// `buf[start..start + len]`; the caller has checked that it is inside.
    pub(crate) fn part(buf: Vec<u8>, start: usize, len: usize) -> ChunkBuf {
        debug_assert!(start + len <= buf.len());
        ChunkBuf { buf, start, len }
    }

    /// Memory the buffer holds (what a cache counts: its pages stay resident).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The whole buffer back, for the pool.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }
}

impl std::ops::Deref for ChunkBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl std::fmt::Debug for ChunkBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkBuf({} bytes)", self.len)
    }
}

/// The process pool's `stats`.
pub fn stats() -> (u64, u64) {
    SHARED.stats()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_back_buffer_is_reused_and_a_much_larger_one_is_not_tied_up() {
        let pool = ChunkBuffers::new(8 << 20);
        let len = 3 << 20;
        let v = pool.take(len);
        assert_eq!(v.len(), len);
        let ptr = v.as_ptr();
        pool.give(v);
        let again = pool.take(len - 4096);
        assert_eq!(again.as_ptr(), ptr, "a buffer given back is taken again, not a new allocation");
        assert_eq!(again.len(), len - 4096);
        pool.give(again);
        // A 3 MiB buffer is not handed out for a 1 MiB load.
        let small = pool.take(1 << 20);
        assert_ne!(small.as_ptr(), ptr);
        assert_eq!(pool.stats(), (1, 2));
        // The bound holds: the oldest buffers go first, and one larger than
        // the whole pool is never kept.
        pool.give(vec![0u8; 6 << 20]);
        assert!(pool.idle_bytes() <= 8 << 20, "{}", pool.idle_bytes());
        pool.give(vec![0u8; 9 << 20]);
        assert!(pool.idle_bytes() <= 8 << 20, "{}", pool.idle_bytes());
        pool.trim();
        assert_eq!(pool.idle_bytes(), 0);
    }
}
