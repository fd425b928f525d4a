//! An append-only file written around the page cache (`O_DIRECT`): how a local
//! pack's bytes reach the disk, and an extracted pull's (commands/extract.rs).
//!
//! Why: a pack is written once and, for ingest and writes through the mount,
//! not read again soon, yet a buffered `write` copied every byte into the page
//! cache and left the kernel to write it back. Profiles of ingest (20% of its
//! samples) and of the mount's flusher (80% of its storing thread) were that
//! copy. With `O_DIRECT` the disk reads the bytes straight from our buffer.
//!
//! How: bytes are gathered into page-aligned buffers of `BLOCK` bytes; each full
//! buffer goes to one I/O thread, which writes it at its (aligned) offset while
//! the caller fills the next, so the disk and the pipeline overlap as they did
//! with the kernel's writeback. `finish` writes the last, partial block through
//! the page cache (its length is not a multiple of the alignment) after turning
//! `O_DIRECT` off on the descriptor.
//!
//! Durability is not this module's business: `finish` only returns once every
//! byte was handed to the kernel; the caller fsyncs as the archive's rule says
//! (archive/mod.rs). A direct write is not durable without that fsync either
//! (the disk's cache, the file's size and extents).
//!
//! Where the filesystem refuses `O_DIRECT` (`EINVAL`, when it is turned on
//! or at the first write), the same buffers are written through the page cache instead, with
//! writeback started after each one as before.

use crossbeam_channel::{bounded, Receiver, Sender};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Offsets, lengths and buffer addresses of direct writes are multiples of
/// this: the page size, which covers every logical block size up to 4 KiB.
const ALIGN: usize = super::read_at::DIRECT_ALIGN;

/// A transparent huge page.
const HUGE_PAGE: usize = 2 << 20;

/// Bytes per write: the device's largest request here (max_sectors_kb 4096),
/// and small enough that three of them (one filling, one being written, one
/// spare) add little to a mount's memory.
const BLOCK: usize = 4 << 20;

/// Free buffers kept for the next pack (the mount's flusher begins one per
/// 64 MiB segment): fresh ones cost a zero-fill and page faults, 6% of the
/// daemon's samples while `cp` wrote into the mount.
const KEEP: usize = 2 * BUFFERS;

static POOL: std::sync::Mutex<Vec<AlignedBuf>> = std::sync::Mutex::new(Vec::new());

/// Buffers per file: the one being filled, the one being written and one
/// queued, so the caller never waits for a write unless the disk is behind.
const BUFFERS: usize = 3;

/// A buffer whose usable part starts at an `ALIGN` boundary (over-allocated
/// by `ALIGN` and sliced: no unsafe allocation needed).
struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    /// Bytes of it in use, from the start.
    len: usize,
}

impl AlignedBuf {
    /// An empty buffer: a kept one, else a new one.
    fn take() -> AlignedBuf {
        let kept = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop();
        kept.unwrap_or_else(|| {
            // Started at a 2 MiB boundary, so the whole block is in 2 MiB
            // pages (chunk_buffers::huge_pages: the disk then takes each
            // block in one request). The spare part is never touched, so it
            // costs address space, not memory.
            let mut raw = vec![0u8; BLOCK + HUGE_PAGE];
            super::chunk_buffers::huge_pages(&mut raw);
            let start = raw.as_ptr().align_offset(HUGE_PAGE);
            AlignedBuf { raw, start, len: 0 }
        })
    }
    /// Keep `self` for the next pack, up to `KEEP` buffers.
    fn give_back(mut self) {
        self.len = 0;
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < KEEP {
            pool.push(self);
        }
    }
    fn filled(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
    fn room(&self) -> usize {
        BLOCK - self.len
    }
    fn push(&mut self, b: &[u8]) {
        let at = self.start + self.len;
        self.raw[at..at + b.len()].copy_from_slice(b);
        self.len += b.len();
    }
}

/// A block for the I/O thread: the buffer and the file offset of its first byte.
type Job = (AlignedBuf, u64);

/// An append-only file whose full blocks are written with `O_DIRECT` where the
/// filesystem allows it.
pub struct DirectAppend {
    file: Arc<File>,
    /// Whether the descriptor still has `O_DIRECT` (the I/O thread clears it
    /// if the filesystem refuses a direct write).
    direct: Arc<AtomicBool>,
    /// Set by tests only: direct writes fail as a filesystem that refuses them would.
    refuse: Arc<AtomicBool>,
    cur: AlignedBuf,
    /// File offset of `cur`'s first byte: a multiple of `BLOCK`.
    cur_at: u64,
    /// Buffers allocated so far (at most `BUFFERS`).
    allocated: usize,
    jobs: Option<Sender<Job>>,
    free: Receiver<AlignedBuf>,
    io: Option<JoinHandle<std::io::Result<()>>>,
}

/// Turn `O_DIRECT` on for `file`'s descriptor; false where the filesystem
/// refuses it (`EINVAL`, as tmpfs did before Linux 6.6).
pub(crate) fn set_direct(file: &File) -> std::io::Result<bool> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_GETFL/F_SETFL touch only its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_DIRECT) } < 0 {
        let e = std::io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EINVAL) { Ok(false) } else { Err(e) };
    }
    Ok(true)
}

/// Turn `O_DIRECT` off on `file`'s descriptor (shared by every handle of it).
pub(crate) fn clear_direct(file: &File) -> std::io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; F_GETFL/F_SETFL touch only its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Start writeback of a range written through the page cache (the fallback),
/// so the fsync that seals the pack finds little left to do.
fn start_writeback(file: &File, at: u64, len: usize) {
    // SAFETY: an asynchronous writeback request on our own descriptor; it
    // changes no data and its failure only costs speed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), at as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Write one block; on the first `EINVAL` from a direct write, turn
/// `O_DIRECT` off and write it (and every later one) through the page cache.
fn write_block(file: &File, direct: &AtomicBool, refuse: &AtomicBool, buf: &[u8], at: u64) -> std::io::Result<()> {
    if direct.load(Ordering::Relaxed) {
        let r =
            if refuse.load(Ordering::Relaxed) { Err(std::io::Error::from_raw_os_error(libc::EINVAL)) } else { file.write_all_at(buf, at) };
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                clear_direct(file)?;
                direct.store(false, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    file.write_all_at(buf, at)?;
    start_writeback(file, at, buf.len());
    Ok(())
}

impl DirectAppend {
    /// Append to `file`, new and empty, opened for writing.
    pub fn new(file: File) -> std::io::Result<DirectAppend> {
        let direct = set_direct(&file)?;
        DirectAppend::start(file, direct)
    }

    fn start(file: File, direct: bool) -> std::io::Result<DirectAppend> {
        let file = Arc::new(file);
        let direct = Arc::new(AtomicBool::new(direct));
        let (jobs, job_rx) = bounded::<Job>(1);
        let (free_tx, free) = bounded::<AlignedBuf>(BUFFERS);
        let refuse = Arc::new(AtomicBool::new(false));
        let (f, d, r) = (file.clone(), direct.clone(), refuse.clone());
        let io = std::thread::Builder::new().name("reelfs-pack-io".into()).spawn(move || -> std::io::Result<()> {
            for (mut buf, at) in job_rx {
                write_block(&f, &d, &r, buf.filled(), at)?;
                buf.len = 0;
                // The writer may be gone (finishing): then the buffer is simply freed.
                let _ = free_tx.send(buf);
            }
            Ok(())
        });
        Ok(DirectAppend { file, direct, refuse, cur: AlignedBuf::take(), cur_at: 0, allocated: 1, jobs: Some(jobs), free, io: Some(io?) })
    }

    /// Whether full blocks still go around the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct.load(Ordering::Relaxed)
    }

    /// Append `b`.
    pub fn write(&mut self, mut b: &[u8]) -> std::io::Result<()> {
        while !b.is_empty() {
            let n = self.cur.room().min(b.len());
            self.cur.push(&b[..n]);
            b = &b[n..];
            if self.cur.room() == 0 {
                self.hand_over()?;
            }
        }
        Ok(())
    }

    /// Give the full current buffer to the I/O thread and take a free one.
    fn hand_over(&mut self) -> std::io::Result<()> {
        let next = match self.free.try_recv() {
            Ok(b) => b,
            Err(_) if self.allocated < BUFFERS => {
                self.allocated += 1;
                AlignedBuf::take()
            }
            Err(_) => match self.free.recv() {
                Ok(b) => b,
                Err(_) => return Err(self.io_error()),
            },
        };
        let full = std::mem::replace(&mut self.cur, next);
        let at = self.cur_at;
        self.cur_at += BLOCK as u64;
        let sent = self.jobs.as_ref().is_some_and(|j| j.send((full, at)).is_ok());
        if !sent {
            return Err(self.io_error());
        }
        Ok(())
    }

    /// The I/O thread stopped: its error.
    fn io_error(&mut self) -> std::io::Error {
        self.jobs = None;
        match self.io.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => e,
            _ => std::io::Error::other("the pack's I/O thread stopped"),
        }
    }

    /// Write what is left and wait for every block: the aligned part of the
    /// last buffer directly, its unaligned tail through the page cache. The
    /// file is complete (not yet durable) when this returns.
    pub fn finish(&mut self) -> std::io::Result<&File> {
        self.jobs = None;
        if let Some(h) = self.io.take() {
            h.join().map_err(|_| std::io::Error::other("the pack's I/O thread panicked"))??;
        }
        let aligned = self.cur.len / ALIGN * ALIGN;
        let at = self.cur_at;
        if aligned > 0 {
            write_block(&self.file, &self.direct, &self.refuse, &self.cur.filled()[..aligned], at)?;
        }
        if self.cur.len > aligned {
            if self.direct.load(Ordering::Relaxed) {
                clear_direct(&self.file)?;
                self.direct.store(false, Ordering::Relaxed);
            }
            self.file.write_all_at(&self.cur.filled()[aligned..], at + aligned as u64)?;
        }
        self.cur.len = 0;
        Ok(&self.file)
    }
}

impl Drop for DirectAppend {
    /// Let the I/O thread end before the file goes (the caller removes it).
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(h) = self.io.take() {
            let _ = h.join();
        }
        // The I/O thread has ended: every buffer is here or in `free`.
        std::mem::replace(&mut self.cur, AlignedBuf { raw: Vec::new(), start: 0, len: 0 }).give_back();
        while let Ok(b) = self.free.try_recv() {
            b.give_back();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    fn new_file(path: &Path) -> File {
        std::fs::OpenOptions::new().write(true).create_new(true).open(path).unwrap()
    }

    /// The descriptor's status flags as the kernel reports them.
    fn fd_flags(f: &File) -> u32 {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", f.as_raw_fd())).unwrap();
        let line = info.lines().find(|l| l.starts_with("flags:")).unwrap();
        u32::from_str_radix(line.trim_start_matches("flags:").trim(), 8).unwrap()
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    /// Write `data` in uneven pieces, as records arrive.
    fn write_in_pieces(w: &mut DirectAppend, data: &[u8]) {
        let mut rest = data;
        let mut step = 1usize;
        while !rest.is_empty() {
            let n = step.min(rest.len());
            w.write(&rest[..n]).unwrap();
            rest = &rest[n..];
            step = step * 3 + 17;
        }
    }

    #[test]
    fn full_blocks_go_around_the_page_cache_and_the_file_has_every_byte() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("p");
        let data = pattern(3 * BLOCK + BLOCK / 2 + 123);
        let mut w = DirectAppend::new(new_file(&path)).unwrap();
        assert_ne!(fd_flags(&w.file) & libc::O_DIRECT as u32, 0, "the pack is opened with O_DIRECT");
        write_in_pieces(&mut w, &data);
        assert!(w.is_direct(), "every full block was written directly");
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn a_filesystem_that_refuses_o_direct_at_open_gets_the_same_bytes_through_the_page_cache() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("p");
        let data = pattern(2 * BLOCK + 5);
        // As `new` does when fcntl(F_SETFL, O_DIRECT) gives EINVAL.
        let mut w = DirectAppend::start(new_file(&path), false).unwrap();
        assert_eq!(fd_flags(&w.file) & libc::O_DIRECT as u32, 0);
        assert!(!w.is_direct());
        write_in_pieces(&mut w, &data);
        w.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn a_filesystem_that_refuses_a_direct_write_gets_the_same_bytes_through_the_page_cache() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("p");
        let data = pattern(2 * BLOCK + ALIGN + 9);
        let mut w = DirectAppend::new(new_file(&path)).unwrap();
        w.refuse.store(true, Ordering::Relaxed);
        write_in_pieces(&mut w, &data);
        w.finish().unwrap();
        assert!(!w.is_direct());
        assert_eq!(fd_flags(&w.file) & libc::O_DIRECT as u32, 0, "O_DIRECT was turned off on the descriptor");
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn a_file_shorter_than_the_alignment_is_written_whole() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        for n in [0usize, 1, ALIGN - 1, ALIGN, ALIGN + 1, BLOCK, BLOCK + 1] {
            let path = dir.path().join(format!("p{n}"));
            let data = pattern(n);
            let mut w = DirectAppend::new(new_file(&path)).unwrap();
            w.write(&data).unwrap();
            w.finish().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data, "{n} bytes");
        }
    }
}
