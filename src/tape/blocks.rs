//! The large blocks the tape paths move bytes in: page-aligned, so a volume
//! can hand them to the disk with `O_DIRECT` (no copy into the page cache),
//! and reused, so the write and verify loops do not allocate, zero and fault
//! in a fresh 8 MiB buffer per block (a profile of `tape write` showed that,
//! and the page-cache copies, costing as much as the hashing under load).

use crossbeam_channel::{Receiver, Sender};

/// What `O_DIRECT` asks of a buffer's address and length on the filesystems
/// reelfs meets (4 KiB logical blocks; 512-byte devices accept it too).
pub const ALIGN: usize = 4096;

/// One block: `len` bytes at an aligned offset of its own buffer. Dropped, the
/// buffer goes back to the pool it came from (when that pool still exists).
pub struct Block {
    buf: Vec<u8>,
    start: usize,
    size: usize,
    len: usize,
    home: Option<Sender<Vec<u8>>>,
}

impl Block {
    /// The whole block, to read into.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.size]
    }

    /// Keep the first `n` bytes of `space()` as the block's contents.
    pub fn set_len(&mut self, n: usize) {
        self.len = n.min(self.size);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            let _ = home.try_send(std::mem::take(&mut self.buf));
        }
    }
}

/// Blocks of `size` bytes, at most `keep` of them kept for reuse.
pub struct Pool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    size: usize,
}

impl Pool {
    pub fn new(size: usize, keep: usize) -> Pool {
        let (tx, rx) = crossbeam_channel::bounded(keep.max(1));
        Pool { tx, rx, size }
    }

    /// A block to fill: a returned one when there is one, else a new one.
    pub fn take(&self) -> Block {
        let buf = self.rx.try_recv().unwrap_or_else(|_| vec![0u8; self.size + ALIGN]);
        // An allocator that cannot give an aligned offset within ALIGN bytes
        // (never seen) only costs the direct path: the volume then writes
        // through the page cache.
        let start = match buf.as_ptr().align_offset(ALIGN) {
            n if n < ALIGN => n,
            _ => 0,
        };
        Block { buf, start, size: self.size, len: 0, home: Some(self.tx.clone()) }
    }
}

/// True when `data` can go to an `O_DIRECT` file as it is.
pub fn is_aligned(data: &[u8]) -> bool {
    (data.as_ptr() as usize).is_multiple_of(ALIGN) && data.len().is_multiple_of(ALIGN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_and_their_buffers_come_back() {
        let pool = Pool::new(1 << 20, 2);
        let mut b = pool.take();
        assert!(is_aligned(b.space()));
        b.space()[..3].copy_from_slice(b"abc");
        b.set_len(3);
        assert_eq!(b.bytes(), b"abc");
        assert!(!is_aligned(b.bytes()), "a 3-byte tail is not a direct write");
        let addr = b.space().as_ptr() as usize;
        drop(b);
        let mut again = pool.take();
        assert_eq!(again.space().as_ptr() as usize, addr, "the buffer was reused");
        assert_eq!(again.bytes(), b"", "a reused block starts empty");
    }
}
