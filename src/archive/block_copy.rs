//! Restore's one hashing pass: a file's stored bytes copied to a new file and
//! checked against the file's BLAKE3 outboard (archive/outboard.rs), so every
//! byte is hashed once.
//!
//! The old path hashed every restored byte twice: once to verify its chunk
//! against the chunk id, once into the whole-file hash. Chunk ids are BLAKE3
//! at chunk offset 0, so their chaining values cannot be reused for the file
//! hash. The file's outboard can: its block CVs merge to the file id (what
//! `b3sum` prints; checked once with `outboard::matches`), and each block's CV
//! depends only on that block's bytes and offset. So the raw bytes are read
//! from the packs unverified, each 256 KiB block is hashed at its file offset
//! and compared with its CV, and only then written. A byte that does not
//! match fails the block; its chunks are then verified whole against their
//! ids, so the error names the damaged chunk and its pack.
//!
//! Loader threads read and check windows of blocks ahead of the writer, on
//! every core (hashing is the CPU cost; a window is checked as a whole by one
//! thread). The writer copies raw stored bytes pack -> file inside the kernel
//! (`copy_file_range`, the same bytes the loader just read and checked, from
//! the page cache) and writes the rest (decoded chunks) from the checked
//! buffer; zero runs become holes.
//!
//! Where the destination takes `O_DIRECT`, a window without zero runs is
//! written instead straight from the loader's checked buffer, around the page
//! cache: the disk reads it from our memory. The in-kernel copy above was still
//! a copy (page cache to page cache), a quarter of a restore's CPU on top of
//! the loaders' `pread` copy, so a restore cost twice `cp`'s CPU per byte.
//! Windows start at multiples of `WINDOW`, so a direct write is aligned; the
//! last one is padded with zeros to the alignment and the file cut to size.

use super::catalog::Catalog;
use super::chunk_buffers;
use super::error::{ArchiveError, IoContext, Result};
use super::objects::Hash;
use super::outboard::{self, Cv, MergeStack, BLOCK_LEN, PIECE_CVS};
use super::read::BlobReader;
use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Bytes one loader reads and checks at a time: 32 blocks (8 MiB), a few
/// preads of 4 MiB chunks.
const WINDOW: u64 = 32 * BLOCK_LEN;
/// Blocks in a window; a catalog piece holds a whole number of windows.
const WINDOW_BLOCKS: usize = (WINDOW / BLOCK_LEN) as usize;
/// Loader threads: one per core of this 2-core machine; the writer's work is
/// mostly the kernel's copy.
const LOADERS: u64 = 2;
/// Checked windows each loader may hold ahead of the writer.
const AHEAD: usize = 2;
/// Offsets, lengths and buffer addresses of direct writes are multiples of this.
const ALIGN: usize = super::read_at::DIRECT_ALIGN;

/// A loader's checked window, in a recycled buffer at an `ALIGN` boundary
/// with room to pad its end to the next one (what a direct write needs).
struct WindowBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl WindowBuf {
    fn take(len: usize) -> WindowBuf {
        let raw = chunk_buffers::take(len + 2 * ALIGN);
        let start = raw.as_ptr().align_offset(ALIGN);
        WindowBuf { raw, start, len }
    }
    fn bytes(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
    /// The window zero-padded to a whole number of `ALIGN` blocks.
    fn padded(&mut self) -> &[u8] {
        let end = self.start + self.len.next_multiple_of(ALIGN);
        self.raw[self.start + self.len..end].fill(0);
        &self.raw[self.start..end]
    }
}

/// A second descriptor of `out` with `O_DIRECT`, if its filesystem takes
/// it; None sends every window through the page cache.
fn direct_descriptor(out: &std::fs::File) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    super::read_at::reopen(out, std::fs::OpenOptions::new().write(true).custom_flags(libc::O_DIRECT)).ok()
}

/// A file's outboard, checked to merge to the file's id, read for the copy a
/// piece (1 MiB of CVs, 8 GiB of file) at a time: a 1 TiB file's whole
/// outboard is 128 MiB, which restore must not hold.
pub struct FileOutboard {
    blob: Hash,
    blocks: usize,
    /// CVs a piece: the catalog's `PIECE_CVS`; tests set fewer (a whole
    /// number of windows) to walk many pieces over a few MiB.
    piece_cvs: usize,
    /// An outboard of an earlier version: one catalog row, held whole (that
    /// version held it whole too).
    whole: Option<Vec<Cv>>,
}

impl FileOutboard {
    /// How many pieces the outboard has.
    fn pieces(&self) -> usize {
        self.blocks.div_ceil(self.piece_cvs)
    }

    /// Piece `p`, None when the catalog's copy is missing or is not the
    /// right length (the outboard changed under the restore).
    fn piece(&self, cat: &Catalog, p: usize) -> Result<Option<Vec<Cv>>> {
        let n = self.piece_cvs;
        let want = (self.blocks - p * n).min(n);
        let cvs = match &self.whole {
            Some(all) => all.get(p * n..p * n + want).map(<[Cv]>::to_vec),
            None => cat.blob_outboard_piece(&self.blob, p)?,
        };
        Ok(cvs.filter(|c| c.len() == want))
    }
}

/// The file's outboard from the catalog, if it has one that merges to `id`
/// for `size` bytes (files of one block, layout ids and version-1 archives
/// have none: their restore hashes chunks and file as before). Checked by
/// merging its pieces in order (a merge stack: one CV per tree level), never
/// holding more than one piece.
pub fn checked_file_outboard(cat: &Catalog, id: &Hash, size: u64) -> Result<Option<FileOutboard>> {
    if !outboard::has_blocks(size) {
        return Ok(None);
    }
    let mut ob = FileOutboard { blob: *id, blocks: outboard::block_count(size), piece_cvs: PIECE_CVS, whole: None };
    if cat.blob_outboard_piece(id, 0)?.is_none() {
        match cat.blob_outboard(id)? {
            Some(all) => ob.whole = Some(all),
            None => return Ok(None),
        }
    }
    let mut merged = MergeStack::default();
    let mut complete = true;
    for p in 0..ob.pieces() {
        match ob.piece(cat, p)? {
            Some(cvs) => cvs.into_iter().for_each(|cv| merged.push(cv)),
            None => {
                complete = false;
                break;
            }
        }
    }
    let ok = complete && ob.whole.as_ref().is_none_or(|w| w.len() == ob.blocks) && merged.root() == Some(*id);
    if !ok {
        log::warn!("blob {}: its outboard in the catalog does not match its id; restoring it with whole-chunk checks", id.short());
        return Ok(None);
    }
    Ok(Some(ob))
}

/// The pieces of the outboard the loaders are checking against: the writer
/// (the only thread that may use the catalog) reads each piece before any
/// loader can reach it and drops those behind it, so two are held at most.
struct HeldPieces {
    held: Mutex<BTreeMap<usize, Arc<Vec<Cv>>>>,
    added: Condvar,
}

impl HeldPieces {
    /// The CVs of window `w`'s blocks, waiting for the writer to read their
    /// piece; None if the copy stops first.
    fn window(&self, w: u64, piece_cvs: usize, stop: &AtomicBool, interrupt: &AtomicBool) -> Option<(Arc<Vec<Cv>>, usize)> {
        let first = w as usize * WINDOW_BLOCKS;
        let p = first / piece_cvs;
        let mut g = self.held.lock().ok()?;
        loop {
            if let Some(piece) = g.get(&p) {
                return Some((piece.clone(), first - p * piece_cvs));
            }
            if stop.load(Ordering::Relaxed) || interrupt.load(Ordering::Relaxed) {
                return None;
            }
            g = self.added.wait_timeout(g, Duration::from_millis(50)).ok()?.0;
        }
    }

    /// Make sure pieces `from..=to` are held and none before `from`.
    fn keep(&self, cat: &Catalog, ob: &FileOutboard, from: usize, to: usize) -> Result<()> {
        let missing: Vec<usize> = {
            let g = self.held.lock().map_err(|_| poisoned())?;
            (from..=to).filter(|p| !g.contains_key(p)).collect()
        };
        let mut read = Vec::new();
        for p in missing {
            let cvs = ob.piece(cat, p)?.ok_or_else(|| {
                ArchiveError::Inconsistent(format!("blob {}: piece {p} of its outboard went missing during the restore", ob.blob.short()))
            })?;
            read.push((p, Arc::new(cvs)));
        }
        let mut g = self.held.lock().map_err(|_| poisoned())?;
        g.retain(|p, _| *p >= from);
        let added = !read.is_empty();
        g.extend(read);
        drop(g);
        if added {
            self.added.notify_all();
        }
        Ok(())
    }
}

fn poisoned() -> ArchiveError {
    ArchiveError::Inconsistent("internal: a restore thread panicked".into())
}

/// Write every byte of `reader` to `out` (at its current position, the start
/// of an empty file), each checked against `cvs` (from
/// `checked_file_outboard`) before it is written. `advance` is told each
/// span written. Returns the number of bytes hashed (the file's size: each
/// byte once). On error, what was written is unverified-free but incomplete:
/// the caller removes the file.
#[allow(clippy::too_many_arguments)]
pub fn copy_checked(
    reader: &BlobReader,
    cat: &Catalog,
    ob: &FileOutboard,
    out: &std::fs::File,
    out_path: &Path,
    target: &Path,
    interrupt: &AtomicBool,
    advance: &mut dyn FnMut(u64),
) -> Result<u64> {
    let windows = reader.size.div_ceil(WINDOW);
    let stop = AtomicBool::new(false);
    let pieces = HeldPieces { held: Mutex::new(BTreeMap::new()), added: Condvar::new() };
    // Loaders wait for the writer to finish before they exit, so that no
    // thread ends in the middle of the writer's copy (tools that trace the
    // copy, as strace does, then see each call whole).
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
    std::thread::scope(|s| {
        let mut rxs = Vec::new();
        for j in 0..LOADERS.min(windows) {
            let (tx, rx) = crossbeam_channel::bounded::<Result<WindowBuf>>(AHEAD);
            rxs.push(rx);
            let stop = &stop;
            let pieces = &pieces;
            let done = done_rx.clone();
            s.spawn(move || {
                // Loader j checks windows j, j + LOADERS, ...: the writer takes
                // them in order from each loader's queue in turn.
                let mut w = j;
                while w < windows && !stop.load(Ordering::Relaxed) && !interrupt.load(Ordering::Relaxed) {
                    let a = w * WINDOW;
                    let b = (a + WINDOW).min(reader.size);
                    let Some((cvs, skip)) = pieces.window(w, ob.piece_cvs, stop, interrupt) else { break };
                    let r = load_checked(reader, cvs.get(skip..).unwrap_or_default(), a, b, target);
                    let failed = r.is_err();
                    if tx.send(r).is_err() || failed {
                        break;
                    }
                    w += LOADERS;
                }
                drop(tx);
                let _ = done.recv();
            });
        }
        let feed = |w: u64| {
            // The furthest window a loader can be at while the writer waits
            // for window `w`: AHEAD queued and one in hand per loader.
            let ahead = (w + LOADERS * (AHEAD as u64 + 2)).min(windows - 1);
            let piece = |w: u64| w as usize * WINDOW_BLOCKS / ob.piece_cvs;
            pieces.keep(cat, ob, piece(w), piece(ahead))
        };
        let result = write_in_order(reader, &rxs, windows, out, out_path, interrupt, advance, &feed);
        // Loaders blocked on a full queue see it closed and stop; those
        // waiting for a piece see `stop`.
        stop.store(true, Ordering::Relaxed);
        pieces.added.notify_all();
        drop(rxs);
        drop(done_tx);
        result
    })
}

#[allow(clippy::too_many_arguments)]
fn write_in_order(
    reader: &BlobReader,
    rxs: &[crossbeam_channel::Receiver<Result<WindowBuf>>],
    windows: u64,
    out: &std::fs::File,
    out_path: &Path,
    interrupt: &AtomicBool,
    advance: &mut dyn FnMut(u64),
    feed: &dyn Fn(u64) -> Result<()>,
) -> Result<u64> {
    let mut hashed = 0u64;
    let mut f = out;
    let base = f.stream_position().at(out_path)?;
    let mut direct = if base % ALIGN as u64 == 0 { direct_descriptor(out) } else { None };
    for w in 0..windows {
        if interrupt.load(Ordering::Relaxed) {
            return Err(ArchiveError::Interrupted);
        }
        feed(w)?;
        let rx = &rxs[(w % rxs.len() as u64) as usize];
        let mut win = match rx.recv() {
            Ok(r) => r?,
            Err(_) if interrupt.load(Ordering::Relaxed) => return Err(ArchiveError::Interrupted),
            Err(_) => return Err(ArchiveError::Invalid("internal: a restore loader stopped early".into())),
        };
        let a = w * WINDOW;
        let b = a + win.len as u64;
        hashed += win.len as u64;
        let extents = reader.extents_in(a, b - a);
        if let Some(d) = &direct {
            if !extents.iter().any(|re| re.extent.is_zero_run()) {
                use std::os::unix::fs::FileExt;
                match d.write_all_at(win.padded(), base + a) {
                    Ok(()) => {
                        advance(b - a);
                        chunk_buffers::give(win.raw);
                        continue;
                    }
                    // Refused after all (the open succeeded): the page cache
                    // from here on.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => direct = None,
                    Err(e) => return Err(e).at(out_path),
                }
            }
        }
        f.seek(SeekFrom::Start(base + a)).at(out_path)?;
        let buf = win.bytes();
        for re in &extents {
            let e = &re.extent;
            let (s, t) = (a.max(e.file_offset), b.min(e.end()));
            if s >= t {
                continue;
            }
            let n = (t - s) as usize;
            if e.is_zero_run() {
                f.seek(SeekFrom::Current(n as i64)).at(out_path)?;
                continue;
            }
            let in_chunk = e.chunk_offset + (s - e.file_offset);
            let copied = reader.store().copy_raw_range_to(&e.chunk, &re.loc, in_chunk, n, out)?;
            if copied < n {
                let from = (s - a) as usize + copied;
                f.write_all(&buf[from..(t - a) as usize]).at(out_path)?;
            }
        }
        advance(b - a);
        chunk_buffers::give(win.raw);
    }
    out.set_len(base + reader.size).at(out_path)?;
    Ok(hashed)
}

/// File bytes [a, b) (block-aligned `a`), read from the packs and checked
/// block by block against `cvs` (the CVs of the blocks from `a` on).
fn load_checked(reader: &BlobReader, cvs: &[Cv], a: u64, b: u64, target: &Path) -> Result<WindowBuf> {
    let gap = |at: u64| ArchiveError::Inconsistent(format!("blob {} has a gap at offset {at}", reader.hash.short()));
    let mut win = WindowBuf::take((b - a) as usize);
    let buf = win.bytes_mut();
    let mut pos = a;
    for re in reader.extents_in(a, b - a) {
        let e = &re.extent;
        let (s, t) = (pos.max(e.file_offset), b.min(e.end()));
        if s >= t {
            continue;
        }
        if s != pos {
            return Err(gap(pos));
        }
        let dst = &mut buf[(s - a) as usize..(t - a) as usize];
        if e.is_zero_run() {
            dst.fill(0);
        } else {
            let in_chunk = e.chunk_offset + (s - e.file_offset);
            if !reader.store().read_raw_unverified(&e.chunk, &re.loc, in_chunk, dst)? {
                // Compressed: decoded and verified whole (hashed twice; camera
                // media is stored raw, so this is the rare case).
                let chunk = reader.store().chunk(&e.chunk, &re.loc)?;
                let Some(src) = chunk.get(in_chunk as usize..in_chunk as usize + dst.len()) else {
                    return Err(ArchiveError::Inconsistent(format!("extent past the end of chunk {}", e.chunk.short())));
                };
                dst.copy_from_slice(src);
            }
        }
        pos = t;
    }
    if pos < b {
        return Err(gap(pos));
    }
    let mut at = a;
    while at < b {
        let end = (at + BLOCK_LEN).min(b);
        let k = (at / BLOCK_LEN) as usize;
        if cvs.get(((at - a) / BLOCK_LEN) as usize) != Some(&outboard::block_cv(&buf[(at - a) as usize..(end - a) as usize], at)) {
            return Err(name_damage(reader, k, at, end, target));
        }
        at = end;
    }
    Ok(win)
}

/// The error for a block that does not match the outboard: the chunk there
/// that fails its own id if there is one (damage in a pack), else the file.
fn name_damage(reader: &BlobReader, k: usize, at: u64, end: u64, target: &Path) -> ArchiveError {
    for re in reader.extents_in(at, end - at) {
        if re.extent.is_zero_run() || re.extent.end() <= at {
            continue;
        }
        if let Err(e) = reader.store().chunk(&re.extent.chunk, &re.loc) {
            return e;
        }
    }
    ArchiveError::Damaged {
        chunk: "(whole file)".into(),
        pack: "-".into(),
        offset: at,
        what: format!(
            "restored content of {} does not match its BLAKE3 {} (block {k}, bytes {at}..{end}; every chunk there matches its own id, so the file's extent list names the wrong chunks)",
            target.display(),
            reader.hash
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::pack::RECORD_HEADER_LEN;
    use crate::archive::restore::{restore, RestoreOptions};
    use crate::archive::test_support::{noise, put};
    use crate::archive::Archive;

    /// An archive holding `main/clip.mov`: `len` bytes in several raw chunks.
    fn archive_with_clip(dir: &Path, len: usize) -> (std::path::PathBuf, Vec<u8>) {
        let root = dir.join("a");
        let mut a = Archive::init(&root).unwrap();
        let bytes = noise(len, 11);
        put(&mut a, "main", dir, "clip.mov", &bytes);
        (root, bytes)
    }

    fn restore_clip(root: &Path, out: &Path) -> (Archive, crate::archive::restore::RestoreReport) {
        let a = Archive::open(root).unwrap();
        let stop = AtomicBool::new(false);
        let opts = RestoreOptions { progress: Default::default(), interrupt: &stop };
        let rep = restore(&a, &["main/clip.mov".to_string()], out, &opts).unwrap();
        (a, rep)
    }

    #[test]
    fn a_restore_with_the_files_outboard_hashes_each_byte_once_and_verifies_no_chunk_by_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let (root, bytes) = archive_with_clip(dir.path(), 24 << 20);
        let out = dir.path().join("clip.mov");
        let (a, rep) = restore_clip(&root, &out);
        assert!(rep.failed.is_empty(), "{:?}", rep.failed);
        assert!(std::fs::read(&out).unwrap() == bytes, "restored bytes differ");
        let blob = a.resolve("main/clip.mov").unwrap().entry.hash;
        assert!(a.catalog.extents(&blob).unwrap().len() >= 2, "want a multi-chunk file");
        // The chunk-id pass is gone: no chunk was verified whole...
        assert_eq!(a.store().verified_chunks(), 0, "restore verified chunks against their ids as well as the file's outboard");
        // ...and the outboard pass hashes every byte exactly once.
        let ob = checked_file_outboard(&a.catalog, &blob, bytes.len() as u64).unwrap().expect("the ingested file has an outboard");
        let r = a.blob_reader(&blob).unwrap();
        let copy = dir.path().join("copy");
        let f = std::fs::File::create(&copy).unwrap();
        let hashed = copy_checked(&r, &a.catalog, &ob, &f, &copy, &copy, &AtomicBool::new(false), &mut |_| {}).unwrap();
        assert_eq!(hashed, bytes.len() as u64);
        assert!(std::fs::read(&copy).unwrap() == bytes);
    }

    #[test]
    fn a_restore_writes_around_the_page_cache_where_the_disk_allows_and_pads_nothing_into_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // Two whole windows and a tail that is not a multiple of the alignment.
        let len = 2 * WINDOW as usize + 5 * ALIGN + 123;
        let (root, bytes) = archive_with_clip(dir.path(), len);
        let out = dir.path().join("clip.mov");
        let (_a, rep) = restore_clip(&root, &out);
        assert!(rep.failed.is_empty(), "{:?}", rep.failed);
        assert_eq!(std::fs::metadata(&out).unwrap().len(), len as u64, "the padded last write was not cut to size");
        let f = std::fs::File::open(&out).unwrap();
        if crate::archive::test_support::direct_io_here() {
            assert!(
                !crate::archive::pack_file::mostly_cached(&f, 0, 2 * WINDOW as usize),
                "the checked windows went through the page cache"
            );
        }
        assert!(std::fs::read(&out).unwrap() == bytes, "restored bytes differ");
    }

    /// The copy with pieces of one window each (8 MiB of file rather than
    /// 8 GiB), so a few MiB walk the piece hand-over a 1 TiB file uses.
    fn copy_in_small_pieces(a: &Archive, blob: &Hash, len: u64, out: &Path) -> Result<u64> {
        let mut ob = checked_file_outboard(&a.catalog, blob, len).unwrap().expect("the ingested file has an outboard");
        ob.whole = Some(a.catalog.blob_outboard(blob).unwrap().expect("the outboard reads whole"));
        ob.piece_cvs = WINDOW_BLOCKS;
        assert!(ob.pieces() >= 5, "want many pieces, got {}", ob.pieces());
        let r = a.blob_reader(blob).unwrap();
        let f = std::fs::File::create(out).unwrap();
        copy_checked(&r, &a.catalog, &ob, &f, out, out, &AtomicBool::new(false), &mut |_| {})
    }

    #[test]
    fn a_copy_over_many_outboard_pieces_checks_each_window_against_its_own_piece() {
        let dir = tempfile::tempdir().unwrap();
        // Not a whole number of windows: the last piece is short.
        let len = (44 << 20) + 1000;
        let (root, bytes) = archive_with_clip(dir.path(), len);
        let a = Archive::open(&root).unwrap();
        let blob = a.resolve("main/clip.mov").unwrap().entry.hash;
        let copy = dir.path().join("copy");
        assert_eq!(copy_in_small_pieces(&a, &blob, len as u64, &copy).unwrap(), len as u64);
        assert!(std::fs::read(&copy).unwrap() == bytes, "a many-piece copy differs");

        // A flipped byte in the fifth piece is caught, naming its chunk.
        let at: u64 = (4 * WINDOW) + 3 * BLOCK_LEN + 17;
        let e = *a.catalog.extents(&blob).unwrap().iter().find(|e| e.file_offset <= at && at < e.end()).unwrap();
        let loc = a.catalog.chunk_loc(&e.chunk).unwrap().unwrap();
        let path = root.join("packs").join(a.catalog.pack_name(loc.pack).unwrap().unwrap());
        let pos = loc.offset + RECORD_HEADER_LEN + e.chunk_offset + (at - e.file_offset);
        let mut b = std::fs::read(&path).unwrap();
        b[pos as usize] ^= 0x01;
        std::fs::write(&path, b).unwrap();
        let a = Archive::open(&root).unwrap();
        let err = copy_in_small_pieces(&a, &blob, len as u64, &copy).unwrap_err().to_string();
        assert!(err.contains(&e.chunk.to_hex()), "the error does not name the damaged chunk: {err}");
    }

    #[test]
    fn a_flipped_byte_fails_the_restore_naming_its_chunk_and_pack_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (root, bytes) = archive_with_clip(dir.path(), 24 << 20);
        let at = 13 << 20;
        let (chunk, pack) = {
            let a = Archive::open(&root).unwrap();
            let blob = a.resolve("main/clip.mov").unwrap().entry.hash;
            let ext = a.catalog.extents(&blob).unwrap();
            let e = *ext.iter().find(|e| e.file_offset <= at && at < e.end()).unwrap();
            let loc = a.catalog.chunk_loc(&e.chunk).unwrap().unwrap();
            let name = a.catalog.pack_name(loc.pack).unwrap().unwrap();
            let path = root.join("packs").join(&name);
            let pos = loc.offset + RECORD_HEADER_LEN + e.chunk_offset + (at - e.file_offset);
            let mut b = std::fs::read(&path).unwrap();
            b[pos as usize] ^= 0x01;
            std::fs::write(&path, b).unwrap();
            (e.chunk, name)
        };
        let out = dir.path().join("clip.mov");
        let (_a, rep) = restore_clip(&root, &out);
        assert_eq!(rep.failed.len(), 1, "{rep:?}");
        let why = &rep.failed[0].1;
        assert!(why.contains(&chunk.to_hex()) && why.contains(&pack), "the error names neither the chunk nor its pack: {why}");
        assert!(!out.exists(), "a damaged restore left a file under the name");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(!left.iter().any(|n| n.to_string_lossy().starts_with(".reelfs-restore-")), "{left:?}");
        assert_eq!(bytes.len(), 24 << 20);
    }

    #[test]
    fn a_file_without_an_outboard_restores_with_whole_chunk_checks() {
        let dir = tempfile::tempdir().unwrap();
        let (root, bytes) = archive_with_clip(dir.path(), 6 << 20);
        {
            let a = Archive::open_writer(&root).unwrap();
            let blob = a.resolve("main/clip.mov").unwrap().entry.hash;
            a.catalog.delete_outboards(&[(false, blob)]).unwrap();
        }
        let out = dir.path().join("clip.mov");
        let (a, rep) = restore_clip(&root, &out);
        assert!(rep.failed.is_empty(), "{:?}", rep.failed);
        assert!(std::fs::read(&out).unwrap() == bytes);
        assert!(a.store().verified_chunks() >= 1, "the version-1 path verifies chunks against their ids");
    }
}
