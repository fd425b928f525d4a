//! A cartridge mounted by any vendor's LTFS driver (`--ltfs-mount DIR`): to
//! reelfs, a folder. Tape rules still hold, so this writer only ever creates
//! new files and writes them front to back in large writes, never rewrites or
//! seeks, and sets the LTFS hash attributes once a file is complete.
//!
//! What the driver says maps to the workflow's cases: `ENOSPC` (the cartridge
//! is full, possibly mid-file) is end of medium; anything else (`EIO` after a
//! drive error, `EROFS` once the driver has locked the volume) is an I/O error.
//! Either way the workflow abandons the file and goes on with the next cartridge.

use super::volume::{FilePlacement, VolumeError, VolumeFile, VolumeReader, VolumeWriter};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// Check that `path` names something strictly inside the volume: relative,
/// plain names only (no `..`, `.`, empty or NUL). Paths come from the catalog,
/// which a user may have edited; nothing is written or read outside `root`.
pub fn inside(root: &Path, path: &str, barcode: &str) -> Result<PathBuf, VolumeError> {
    let bad = || VolumeError::Format {
        barcode: barcode.to_string(),
        message: format!(
            "refusing the path '{path}': a file on a tape is a relative path of plain names (no '..', '.', '/' at the start or NUL)"
        ),
    };
    if path.is_empty() || path.contains('\0') || path.starts_with('/') {
        return Err(bad());
    }
    if path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(bad());
    }
    let rel = Path::new(path);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad());
    }
    Ok(root.join(rel))
}

fn volume_io(barcode: &str, context: String, e: io::Error) -> VolumeError {
    if e.raw_os_error() == Some(libc::ENOSPC) {
        VolumeError::EndOfMedium { barcode: barcode.to_string() }
    } else {
        VolumeError::Io { barcode: barcode.to_string(), context, source: e }
    }
}

/// Refuse a folder on the way to a file that is a symlink (a link on the
/// volume must not send a write elsewhere): checked component by component
/// below the root.
fn no_links_below(root: &Path, path: &Path, barcode: &str) -> Result<(), VolumeError> {
    let mut cur = root.to_path_buf();
    if let Ok(rel) = path.strip_prefix(root) {
        for c in rel.components() {
            cur.push(c);
            if let Ok(m) = std::fs::symlink_metadata(&cur) {
                if m.file_type().is_symlink() {
                    return Err(VolumeError::Format {
                        barcode: barcode.to_string(),
                        message: format!("{} is a symbolic link; reelfs does not follow links on a tape volume", cur.display()),
                    });
                }
            }
        }
    }
    Ok(())
}

fn read_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::getxattr(path, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Where the driver placed a file, from the virtual attributes LTFS drivers
/// expose (`ltfs.partition`, `ltfs.startblock`); a plain folder standing in
/// for a mount has none, and gives partition b, block 0.
fn placement_of(path: &Path, bytes: u64) -> FilePlacement {
    let text = |n: &str| read_xattr(path, n).and_then(|v| String::from_utf8(v).ok()).map(|s| s.trim().to_string());
    let partition = text("user.ltfs.partition").and_then(|p| p.chars().next()).unwrap_or('b');
    let start_block = text("user.ltfs.startblock").and_then(|b| b.parse().ok()).unwrap_or(0);
    FilePlacement { partition, start_block, bytes }
}

/// Start writing `len` bytes at `offset` of `file` back to the disk without
/// waiting. Only a hint: `make_durable`'s fsync is what guarantees the bytes
/// are there.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor this function borrows.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Wait until `len` bytes at `offset` are written back (reporting a write
/// error the disk gave), then drop them from the page cache.
fn finish_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: a plain syscall on a descriptor this function borrows.
    if unsafe { libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if let Some(len) = std::num::NonZeroU64::new(len) {
        // Advice only: a filesystem that ignores it keeps the pages cached.
        let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::DontNeed);
    }
    Ok(())
}

/// Close `file` and report what the close said (dropping a `File` ignores it;
/// an LTFS driver may report a full cartridge only here).
fn close_checked(file: File) -> io::Result<()> {
    use std::os::fd::IntoRawFd;
    let fd = file.into_raw_fd();
    // SAFETY: `fd` was just taken out of the `File`, so it is open and closed once.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A file being written, through the page cache with write-behind: each
/// block's writeback starts as soon as it is written, and the block before it
/// is waited for and dropped from the cache. Not `O_DIRECT` (the previous
/// way): a direct write waits for the disk before the next one is issued, and
/// the disk sits idle while the next block is hashed. On the bench disk 1 GiB
/// took 4.9-5.3 s with `dd oflag=direct bs=8M` against 3.9-4.2 s buffered,
/// and copy A ran at 0.67x of `rsync -a`. At most two blocks of a file are in
/// the cache at once, so writing a show to tape still does not evict what the
/// archive server's other users read.
struct OpenFile {
    path: PathBuf,
    file: File,
    bytes: u64,
    /// The original's modification time, set after the last write (each
    /// write would move it to now).
    modified: SystemTime,
    /// The block written before the last one: (offset, length).
    behind: Option<(u64, u64)>,
}

pub struct LtfsMountWriter {
    root: PathBuf,
    barcode: String,
    open: Option<OpenFile>,
    warned_xattrs: bool,
    /// Files completed since the last durability point: their data is on its
    /// way to the disk but not yet known to be there.
    unsynced: Vec<PathBuf>,
}

impl LtfsMountWriter {
    pub fn open(root: &Path, barcode: &str) -> Result<LtfsMountWriter, VolumeError> {
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => Ok(LtfsMountWriter {
                root: root.to_path_buf(),
                barcode: barcode.into(),
                open: None,
                warned_xattrs: false,
                unsynced: Vec::new(),
            }),
            Ok(_) => Err(VolumeError::Format {
                barcode: barcode.into(),
                message: format!(
                    "{} is not a folder; give --ltfs-mount the folder the LTFS driver mounted the cartridge on",
                    root.display()
                ),
            }),
            Err(e) => Err(VolumeError::Io {
                barcode: barcode.into(),
                context: format!("{} (give --ltfs-mount the folder the LTFS driver mounted the cartridge on)", root.display()),
                source: e,
            }),
        }
    }

    fn io(&self, context: String, e: io::Error) -> VolumeError {
        volume_io(&self.barcode, context, e)
    }
}

impl VolumeWriter for LtfsMountWriter {
    fn barcode(&self) -> &str {
        &self.barcode
    }

    fn remaining(&self) -> u64 {
        rustix::fs::statvfs(&self.root).map(|s| s.f_bavail.saturating_mul(s.f_frsize)).unwrap_or(0)
    }

    fn begin_file(&mut self, path: &str, modified: SystemTime) -> Result<(), VolumeError> {
        if self.open.is_some() {
            return Err(VolumeError::Format { barcode: self.barcode.clone(), message: "internal: a file is already open".into() });
        }
        let full = inside(&self.root, path, &self.barcode)?;
        if let Some(parent) = full.parent() {
            no_links_below(&self.root, parent, &self.barcode)?;
            std::fs::create_dir_all(parent).map_err(|e| self.io(format!("creating {}", parent.display()), e))?;
        }
        no_links_below(&self.root, &full, &self.barcode)?;
        // create_new: a tape is never rewritten in place; a name already on the
        // volume means this cartridge already holds something else there.
        let file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&full) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(VolumeError::Format {
                    barcode: self.barcode.clone(),
                    message: format!("{} is already on this volume; a tape is never rewritten: load a new cartridge", full.display()),
                })
            }
            Err(e) => return Err(self.io(format!("creating {}", full.display()), e)),
        };
        self.open = Some(OpenFile { path: full, file, bytes: 0, modified, behind: None });
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), VolumeError> {
        let barcode = self.barcode.clone();
        let Some(f) = self.open.as_mut() else {
            return Err(VolumeError::Format { barcode, message: "internal: write with no file open".into() });
        };
        let at = f.bytes;
        let written = f.file.write_all(data).and_then(|()| {
            start_writeback(&f.file, at, data.len() as u64);
            match f.behind.replace((at, data.len() as u64)) {
                Some((off, len)) => finish_writeback(&f.file, off, len),
                None => Ok(()),
            }
        });
        written.map_err(|e| volume_io(&barcode, format!("writing {}", f.path.display()), e))?;
        f.bytes += data.len() as u64;
        Ok(())
    }

    fn end_file(&mut self, xattrs: &[(String, Vec<u8>)]) -> Result<FilePlacement, VolumeError> {
        let Some(open) = self.open.take() else {
            return Err(VolumeError::Format { barcode: self.barcode.clone(), message: "internal: end_file with no file open".into() });
        };
        // No fsync per file: on a plain disk each one cost a journal commit
        // (409 per cartridge of the bench's set, mostly small sidecars), and on
        // a real LTFS mount it flushes the drive. Writeback starts now; the
        // workflow makes the batch durable (`make_durable`) before the tape
        // catalog records it. The driver reports a full cartridge at close as
        // often as at write, so the close is checked here.
        let OpenFile { path, file, bytes, modified, .. } = open;
        // A volume that keeps no times (some drivers refuse) still holds the
        // file: the time is not worth abandoning it for.
        if let Err(e) = file.set_modified(modified) {
            log::warn!("tape {}: could not set the modification time of {}: {e}", self.barcode, path.display());
        }
        if let Err(e) = close_checked(file) {
            // Abandoned here: the workflow's `abandon_file` finds no file open.
            if let Err(rm) = std::fs::remove_file(&path) {
                log::warn!("tape {}: could not remove the abandoned {}: {rm}", self.barcode, path.display());
            }
            return Err(self.io(format!("closing {}", path.display()), e));
        }
        for (name, value) in xattrs {
            let full_name = format!("user.{name}");
            match rustix::fs::setxattr(&path, full_name.as_str(), value, rustix::fs::XattrFlags::empty()) {
                Ok(()) => {}
                Err(e) if e == rustix::io::Errno::NOTSUP => {
                    if !self.warned_xattrs {
                        log::warn!(
                            "{}: this volume does not take extended attributes; the LTFS hash attributes are not set",
                            self.root.display()
                        );
                        self.warned_xattrs = true;
                    }
                }
                Err(e) => return Err(self.io(format!("setting {full_name} on {}", path.display()), e.into())),
            }
        }
        let placement = placement_of(&path, bytes);
        self.unsynced.push(path);
        Ok(placement)
    }

    fn abandon_file(&mut self) -> Result<(), VolumeError> {
        if let Some(OpenFile { path, file, .. }) = self.open.take() {
            drop(file);
            // On LTFS an unlink drops the name from the next index (the space
            // stays used, as on any tape). After a drive error the driver may
            // refuse even that; the workflow records the file as abandoned anyway.
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!("tape {}: could not remove the abandoned {}: {e}", self.barcode, path.display());
            }
        }
        Ok(())
    }

    fn remove_leftover(&mut self, path: &str) -> Result<Option<u64>, VolumeError> {
        let full = inside(&self.root, path, &self.barcode)?;
        no_links_below(&self.root, &full, &self.barcode)?;
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(format!("looking at {}", full.display()), e)),
        };
        if !meta.is_file() {
            return Err(VolumeError::Format {
                barcode: self.barcode.clone(),
                message: format!("{} is on this volume but is not a file; move it away by hand, then write again", full.display()),
            });
        }
        std::fs::remove_file(&full).map_err(|e| self.io(format!("removing the partial {}", full.display()), e))?;
        Ok(Some(meta.len()))
    }

    fn make_durable(&mut self) -> Result<(), VolumeError> {
        // One fsync per file, but the first commits the journal for the whole
        // batch (writeback began at each file's end), so the rest find little
        // left to do. Reopened read-only: the files were closed at their end.
        for path in std::mem::take(&mut self.unsynced) {
            // What write-behind left in the cache (the last block) goes once it
            // is on disk.
            let synced = File::open(&path).and_then(|f| {
                f.sync_all()?;
                let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
                Ok(())
            });
            if let Err(e) = synced {
                return Err(self.io(format!("flushing {}", path.display()), e));
            }
        }
        Ok(())
    }

    fn sync_index(&mut self) -> Result<(), VolumeError> {
        // LTFS drivers write an index when `ltfs.sync` is set on the volume root;
        // a plain folder does not know the attribute.
        match rustix::fs::setxattr(&self.root, "user.ltfs.sync", b"1", rustix::fs::XattrFlags::empty()) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::NODATA || e == rustix::io::Errno::PERM => {
                let dir = File::open(&self.root).map_err(|e| self.io(format!("opening {}", self.root.display()), e))?;
                rustix::fs::syncfs(&dir).map_err(|e| self.io(format!("syncing {}", self.root.display()), e.into()))?;
            }
            Err(e) => return Err(self.io(format!("writing the index of {}", self.root.display()), e.into())),
        }
        // An index (or a whole-filesystem sync) holds every file completed before it.
        self.unsynced.clear();
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), VolumeError> {
        self.abandon_file()?;
        self.sync_index()
    }
}

pub struct LtfsMountReader {
    root: PathBuf,
    barcode: String,
}

impl LtfsMountReader {
    pub fn open(root: &Path, barcode: &str) -> Result<LtfsMountReader, VolumeError> {
        if !root.is_dir() {
            return Err(VolumeError::Format {
                barcode: barcode.into(),
                message: format!(
                    "{} is not a folder; give --ltfs-mount the folder the LTFS driver mounted the cartridge on",
                    root.display()
                ),
            });
        }
        Ok(LtfsMountReader { root: root.to_path_buf(), barcode: barcode.into() })
    }
}

impl VolumeReader for LtfsMountReader {
    fn barcode(&self) -> &str {
        &self.barcode
    }

    fn files(&mut self) -> Result<Vec<VolumeFile>, VolumeError> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&self.root).follow_links(false).sort_by_file_name() {
            let entry = entry.map_err(|e| VolumeError::Io {
                barcode: self.barcode.clone(),
                context: format!("listing {}", self.root.display()),
                source: e.into(),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else { continue };
            let Some(rel) = rel.to_str() else { continue };
            let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
            let xattrs = ["ltfs.hash.md5sum", "ltfs.hash.sha1sum"]
                .iter()
                .filter_map(|n| read_xattr(entry.path(), &format!("user.{n}")).map(|v| (n.to_string(), v)))
                .collect();
            out.push(VolumeFile { path: rel.to_string(), bytes, placement: placement_of(entry.path(), bytes), xattrs });
        }
        Ok(out)
    }

    fn open(&mut self, path: &str) -> Result<Box<dyn io::Read + '_>, VolumeError> {
        let full = inside(&self.root, path, &self.barcode)?;
        no_links_below(&self.root, &full, &self.barcode)?;
        let file = File::open(&full).map_err(|e| volume_io(&self.barcode, format!("opening {}", full.display()), e))?;
        Ok(Box::new(ColdRead::new(file)))
    }
}

/// Reads for verify and recall that come from the disk, not from a copy a
/// write left in memory, and leave nothing behind in the page cache: what the
/// file has cached is dropped before the first read (`POSIX_FADV_DONTNEED`,
/// which drops clean pages; reelfs syncs what it writes before recording it),
/// and each block once it is read. Buffered, not `O_DIRECT`: on the bench
/// machine a cold buffered read with the kernel's read-ahead ran at 3.3 GB/s
/// and `O_DIRECT` at 1.2 GB/s whatever the block size or the number of
/// readers, which made verify 3x slower than `cat`.
struct ColdRead {
    file: File,
    /// Bytes read so far (and dropped from the cache).
    pos: u64,
}

impl ColdRead {
    fn new(file: File) -> ColdRead {
        // Advice only: a filesystem that ignores it still reads the same bytes.
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
        ColdRead { file, pos: 0 }
    }
}

impl io::Read for ColdRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if let Some(len) = std::num::NonZeroU64::new(n as u64) {
            let _ = rustix::fs::fadvise(&self.file, self.pos, Some(len), rustix::fs::Advice::DontNeed);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Drop for ColdRead {
    /// What read-ahead brought in past the last read.
    fn drop(&mut self) {
        let _ = rustix::fs::fadvise(&self.file, 0, None, rustix::fs::Advice::DontNeed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn paths_that_would_leave_the_volume_are_refused() {
        let root = Path::new("/mnt/ltfs");
        for bad in ["../x", "a/../../x", "/etc/passwd", "", "a//b", "./a", "a/.", "a\0b"] {
            assert!(inside(root, bad, "A00001L8").is_err(), "{bad:?} accepted");
        }
        assert_eq!(inside(root, "Day01/A001/clip.mov", "A00001L8").unwrap(), root.join("Day01/A001/clip.mov"));
    }

    #[test]
    fn a_file_is_never_rewritten_and_an_abandoned_one_is_gone() {
        let d = tempfile::tempdir().unwrap();
        let mut w = LtfsMountWriter::open(d.path(), "A00001L8").unwrap();
        w.begin_file("a/b.mov", SystemTime::now()).unwrap();
        w.write(b"abc").unwrap();
        let p = w.end_file(&[]).unwrap();
        assert_eq!(p.bytes, 3);
        assert!(matches!(w.begin_file("a/b.mov", SystemTime::now()), Err(VolumeError::Format { .. })));
        w.begin_file("a/c.mov", SystemTime::now()).unwrap();
        w.write(b"half").unwrap();
        w.abandon_file().unwrap();
        assert!(!d.path().join("a/c.mov").exists());
        assert_eq!(std::fs::read(d.path().join("a/b.mov")).unwrap(), b"abc");
    }

    #[test]
    fn aligned_blocks_and_a_tail_read_back_as_written() {
        let d = tempfile::tempdir().unwrap();
        let pool = crate::tape::blocks::Pool::new(1 << 16, 2);
        let mut block = pool.take();
        for (i, b) in block.space().iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        block.set_len(1 << 16);
        let mut w = LtfsMountWriter::open(d.path(), "A00001L8").unwrap();
        w.begin_file("x.mov", SystemTime::now()).unwrap();
        w.write(block.bytes()).unwrap();
        w.write(b"tail").unwrap();
        w.write(block.bytes()).unwrap();
        w.end_file(&[]).unwrap();
        let mut want = block.bytes().to_vec();
        want.extend_from_slice(b"tail");
        want.extend_from_slice(block.bytes());
        assert_eq!(std::fs::read(d.path().join("x.mov")).unwrap(), want);
        // Read back through the volume reader in aligned blocks, then unaligned.
        let mut r = LtfsMountReader::open(d.path(), "A00001L8").unwrap();
        let mut got = Vec::new();
        let mut f = r.open("x.mov").unwrap();
        loop {
            let n = f.read(block.space()).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&block.space()[..n]);
        }
        drop(f);
        assert_eq!(got, want);
        let mut again = Vec::new();
        r.open("x.mov").unwrap().read_to_end(&mut again).unwrap();
        assert_eq!(again, want);
    }
}
