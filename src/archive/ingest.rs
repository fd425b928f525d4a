//! Ingest: read each source once, cut it into content-defined chunks, hash,
//! compress where it pays, and append new chunks to packs — the stages overlap
//! on threads joined by bounded channels, so memory stays flat whatever the file
//! size. Each ingest is one commit; nothing is visible until the pack is fsynced
//! and the catalog transaction commits.

use super::catalog::Catalog;
use super::config::{CompressionPolicy, Config};
use super::error::{ArchiveError, IoContext, Result};
use super::objects::{BlobRecord, EntryKind, Extent, Hash, MediaRecord, Owner, RecordKind, RefRecord, Tree, TreeEntry};
use super::pack::{RecordLoc, CODEC_RAW, CODEC_ZSTD};
use super::pack_store::PackStore;
use super::pack_writer::{PackWriter, WriterMark};
use super::repo::{make_commit, Archive};
use crossbeam_channel::bounded;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What the ingest pipeline asks of the media layer, kept as a function pointer
/// so `archive/` does not depend on FFmpeg: given a path, the facts as JSON or
/// the reason the file is damaged. `None` means "not media, nothing to record".
pub type Prober = fn(&Path) -> Option<std::result::Result<serde_json::Value, String>>;

pub struct IngestOptions {
    pub branch: String,
    /// Folder inside the branch to ingest into ("" for the root).
    pub dest: String,
    pub message: Option<String>,
    /// Bytes read so far, and the file being read.
    pub progress: super::progress::ProgressHandle,
    pub prober: Option<Prober>,
    /// Checked between chunks; set by the SIGINT handler.
    pub interrupt: Arc<AtomicBool>,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct IngestReport {
    pub files: u64,
    pub files_stored: u64,
    pub files_unchanged: u64,
    /// Symlinks, FIFOs, sockets and devices recorded.
    pub specials: u64,
    pub failed: Vec<(String, String)>,
    pub damaged: Vec<(String, String)>,
    pub bytes_read: u64,
    pub bytes_logical: u64,
    pub bytes_new_stored: u64,
    pub chunks_new: u64,
    pub chunks_dedup: u64,
    pub commit: Option<String>,
}

struct SourceFile {
    path: PathBuf,
    dest: Vec<String>,
    meta: std::fs::Metadata,
    /// Set when another name of this ingest is the same file (st_dev, st_ino):
    /// the names are stored as one hard-link group.
    link_group: Option<u64>,
}

/// A source folder: its place, mode, mtime, owner and user extended attributes.
type SourceDir = (Vec<String>, u32, i64, Owner, Option<super::xattrs::Xattrs>);

/// A symlink, FIFO, socket or device found by the walk: its place and its entry.
struct SourceSpecial {
    path: PathBuf,
    dest: Vec<String>,
    entry: TreeEntry,
}

/// The tree entry for a source that is neither a file nor a folder, read with
/// lstat (never followed). A symlink's target is kept as the link holds it; one
/// that is not UTF-8 is refused, as such names are.
fn special_entry(path: &Path, name: String, meta: &std::fs::Metadata) -> std::result::Result<TreeEntry, String> {
    use super::objects::{DeviceNumber, EntryExtra};
    use std::os::unix::fs::FileTypeExt;
    let ft = meta.file_type();
    let mut extra = EntryExtra::default();
    let kind = if ft.is_symlink() {
        let t = std::fs::read_link(path).map_err(|e| format!("cannot read the link: {e}"))?;
        let t =
            t.into_os_string().into_string().map_err(|_| "symlink target is not UTF-8; change the link before ingesting".to_string())?;
        extra.target = Some(t);
        EntryKind::Symlink
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_socket() {
        EntryKind::Socket
    } else if ft.is_char_device() || ft.is_block_device() {
        let rdev = meta.rdev();
        extra.rdev = Some(DeviceNumber { major: rustix::fs::major(rdev), minor: rustix::fs::minor(rdev) });
        if ft.is_char_device() {
            EntryKind::CharDevice
        } else {
            EntryKind::BlockDevice
        }
    } else {
        return Err("not a file, folder, symlink, FIFO, socket or device: skipped".into());
    };
    // A symlink's own mode means nothing on Linux (always 0777): keep it as lstat gives it.
    Ok(TreeEntry::special(name, kind, extra, meta.mode() & 0o7777, mtime_ns(meta), Some(Owner::of(meta))))
}

/// The hard-link group of names sharing an inode: derived from (st_dev,
/// st_ino, st_ctime) so that ingesting the same unchanged files again gives the
/// same tree (and no new commit), while an inode number reused later for
/// another file does not join an old group (its ctime differs).
fn link_group_of(meta: &std::fs::Metadata) -> u64 {
    let seed = format!("{}:{}:{}:{}", meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec());
    let h = blake3::hash(seed.as_bytes());
    // 53 bits: exact in JSON readers that use doubles.
    u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8])) & ((1 << 53) - 1)
}

/// Directory tree being edited: loaded lazily from the branch's current tree so
/// an ingest into one folder of a huge archive touches only that path.
struct DirNode {
    base: Option<Hash>,
    base_size: u64,
    loaded: bool,
    dirty: bool,
    mode: u32,
    mtime_ns: i64,
    /// The source folder's owner (None: made by the ingest, or not recorded).
    owner: Option<Owner>,
    /// The source folder's user extended attributes.
    xattrs: Option<super::xattrs::Xattrs>,
    entries: BTreeMap<String, Node>,
}

enum Node {
    File(TreeEntry),
    Dir(DirNode),
}

impl DirNode {
    fn new_empty(mode: u32, mtime_ns: i64) -> DirNode {
        DirNode { base: None, base_size: 0, loaded: true, dirty: true, mode, mtime_ns, owner: None, xattrs: None, entries: BTreeMap::new() }
    }
    fn from_entry(e: &TreeEntry) -> DirNode {
        DirNode {
            base: Some(e.hash),
            base_size: e.size,
            loaded: false,
            dirty: false,
            mode: e.mode,
            mtime_ns: e.mtime_ns,
            owner: e.owner,
            xattrs: e.extra.xattrs.clone(),
            entries: BTreeMap::new(),
        }
    }
    fn load(&mut self, cat: &Catalog) -> Result<()> {
        if self.loaded {
            return Ok(());
        }
        if let Some(b) = self.base {
            for e in cat.tree_entries(&b)? {
                let node = match e.kind {
                    EntryKind::Dir => Node::Dir(DirNode::from_entry(&e)),
                    // Files and special entries are leaves, kept as they are.
                    _ => Node::File(e.clone()),
                };
                self.entries.insert(e.name.clone(), node);
            }
        }
        self.loaded = true;
        Ok(())
    }

    /// Descend to (creating) the directory at `path`, marking the way dirty.
    fn dir_mut(&mut self, cat: &Catalog, path: &[String], mode: u32, mtime_ns: i64) -> Result<&mut DirNode> {
        self.load(cat)?;
        self.dirty = true;
        let Some((first, rest)) = path.split_first() else { return Ok(self) };
        let node = self.entries.entry(first.clone()).or_insert_with(|| Node::Dir(DirNode::new_empty(mode, mtime_ns)));
        match node {
            Node::Dir(d) => d.dir_mut(cat, rest, mode, mtime_ns),
            Node::File(_) => Err(ArchiveError::Invalid(format!("'{first}' is a file in the archive, cannot put a folder there"))),
        }
    }

    /// Serialize dirty directories bottom-up, appending new tree objects.
    fn store(&mut self, cat: &Catalog, sink: &mut PackSink) -> Result<(Hash, u64)> {
        if !self.dirty {
            if let Some(b) = self.base {
                return Ok((b, self.base_size));
            }
        }
        let mut tree = Tree::default();
        for (name, node) in self.entries.iter_mut() {
            match node {
                Node::File(e) => tree.entries.push(e.clone()),
                Node::Dir(d) => {
                    let (hash, size) = d.store(cat, sink)?;
                    tree.entries.push(TreeEntry {
                        name: name.clone(),
                        kind: EntryKind::Dir,
                        hash,
                        size,
                        mode: d.mode,
                        mtime_ns: d.mtime_ns,
                        owner: d.owner,
                        extra: super::objects::EntryExtra { xattrs: d.xattrs.clone(), ..Default::default() },
                    });
                }
            }
        }
        let raw = tree.encode();
        let id = Hash::of(&raw);
        if !cat.has_tree(&id)? {
            sink.append_object(cat, RecordKind::Tree, &raw)?;
            cat.insert_tree(&id, &tree.entries)?;
        }
        Ok((id, tree.total_size()))
    }
}

/// The packs written by one ingest, through the archive's `PackWriter`
/// (rotated at the configured size, each sealed durably on a thread while
/// the pipeline goes on). A sealed pack's catalog row is written only when the
/// ingest finishes (`finish`): a file that fails is rolled back to its
/// savepoint, and that must not take with it the row of a pack that also holds
/// the files before it.
struct PackSink {
    packs_store: Arc<dyn PackStore>,
    writer: PackWriter,
    /// Catalogued packs by id: name and whether the store has it (looked up
    /// once per ingest). A chunk in a pack that is gone is not something to
    /// deduplicate against or to skip a source for.
    packs: std::collections::HashMap<i64, (String, Option<bool>)>,
    /// Catalogued packs found missing; `finish` drops the rows of those this
    /// ingest made unnecessary.
    missing_packs: std::collections::BTreeSet<i64>,
}

impl PackSink {
    /// A sink writing new packs after the archive's highest pack id.
    fn new(archive: &Archive, cat: &Catalog) -> Result<PackSink> {
        Ok(PackSink {
            packs_store: archive.pack_store().clone(),
            writer: archive.pack_writer()?,
            packs: cat.pack_names()?.into_iter().map(|(id, name, _)| (id, (name, None))).collect(),
            missing_packs: Default::default(),
        })
    }

    /// Is catalogued pack `id` in the store? Packs this ingest is writing are
    /// not in the table and count as present.
    fn pack_present(&mut self, id: i64) -> bool {
        let Some((name, known)) = self.packs.get_mut(&id) else { return true };
        let present = *known.get_or_insert_with(|| matches!(self.packs_store.size(name.as_str()), Ok(Some(_))));
        if !present {
            self.missing_packs.insert(id);
        }
        present
    }

    /// A chunk to deduplicate against: catalogued, not known damaged, and its pack on disk.
    fn has_usable_chunk(&mut self, cat: &Catalog, hash: &Hash) -> Result<bool> {
        if !cat.has_good_chunk(hash)? {
            return Ok(false);
        }
        Ok(match cat.chunk_loc(hash)? {
            Some(loc) => self.pack_present(loc.pack),
            None => false,
        })
    }

    /// May the skip cache vouch for this content: every chunk catalogued,
    /// undamaged and in a pack that is on disk?
    fn blob_is_whole(&mut self, cat: &Catalog, blob: &Hash) -> Result<bool> {
        if !cat.has_blob(blob)? {
            return Ok(false);
        }
        Ok(match cat.blob_chunk_packs(blob)? {
            Some(packs) => packs.into_iter().all(|p| self.pack_present(p)),
            None => false,
        })
    }

    /// Append a record and index it (in the catalog transaction).
    fn record(&mut self, cat: &Catalog, kind: RecordKind, codec: u8, id: Hash, raw_len: usize, stored: &[u8]) -> Result<RecordLoc> {
        let (pack, loc) = self.writer.append(kind, codec, id, raw_len, stored)?;
        cat.insert_record(pack, &loc)?;
        Ok(loc)
    }

    fn append_object(&mut self, cat: &Catalog, kind: RecordKind, raw: &[u8]) -> Result<RecordLoc> {
        let (pack, loc) = self.writer.append_object(kind, raw)?;
        cat.insert_record(pack, &loc)?;
        Ok(loc)
    }

    /// Seal the open pack, wait until every pack of this ingest is durable, and
    /// record them in the catalog transaction; called once, just before it commits.
    fn finish(&mut self, cat: &Catalog) -> Result<()> {
        for p in self.writer.finish()? {
            cat.insert_pack(p.id, &p.name, p.size, p.records.len())?;
        }
        for id in &self.missing_packs {
            if cat.forget_pack_if_unused(*id)? {
                log::info!("pack #{id} was missing; everything it held is stored again, its row is dropped");
            }
        }
        Ok(())
    }

    /// Where the sink stands as a file of `size` bytes begins.
    fn mark(&mut self, size: u64) -> Result<WriterMark> {
        self.writer.mark(size)
    }

    /// Forget what was written since `m` (the catalog side is rolled back to the
    /// file's savepoint by the caller): see `PackWriter::rollback_to`.
    fn rollback_to(&mut self, m: WriterMark) -> Result<()> {
        self.writer.rollback_to(m)
    }

    /// Remove every pack this ingest wrote: used when it fails or is interrupted.
    fn discard(&mut self) {
        self.writer.abort();
    }
}

/// A chunk on its way through the pipeline.
struct Cut {
    idx: u64,
    offset: u64,
    /// Shared with the whole-file hasher, so a chunk is copied once.
    data: Arc<Vec<u8>>,
}

struct Hashed {
    idx: u64,
    offset: u64,
    len: u64,
    hash: Hash,
    /// The chunk's block CVs (archive/outboard.rs), from the same pass as `hash`.
    cvs: Vec<super::outboard::Cv>,
    /// The proof of its head, for the chunk that begins the file (a server's
    /// first piece of it then reads 16 KiB, not a 256 KiB block); else empty.
    head: Vec<super::outboard::Cv>,
    codec: u8,
    /// Compressed bytes when compression paid, else the raw bytes.
    stored: Stored,
}

enum Stored {
    Raw(Arc<Vec<u8>>),
    Zstd(Vec<u8>),
}

impl std::ops::Deref for Stored {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Stored::Raw(v) => v,
            Stored::Zstd(v) => v,
        }
    }
}

/// Cut a file into content-defined chunks and hand each to `emit` with its
/// file offset. One buffer of twice the largest chunk is allocated per file and
/// refilled in place (the remainder moves to the front once per refill), rather
/// than shifting a buffer per chunk; files that fit in one chunk are read whole.
fn cut_file(
    mut file: File,
    size_hint: u64,
    c: &super::config::ChunkerConfig,
    interrupt: &AtomicBool,
    mut emit: impl FnMut(u64, &[u8]) -> bool,
) -> std::io::Result<()> {
    use std::io::Read;
    let cap = if size_hint <= c.max_size as u64 { size_hint as usize + 1 } else { 2 * c.max_size as usize };
    let mut buf = vec![0u8; cap.max(1)];
    let (mut len, mut base, mut eof) = (0usize, 0u64, false);
    loop {
        while len < buf.len() && !eof {
            if interrupt.load(Ordering::Relaxed) {
                return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"));
            }
            match file.read(&mut buf[len..]) {
                Ok(0) => eof = true,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if len == 0 {
            return Ok(());
        }
        let Some(consumed) = cut_buffer(&buf[..len], base, eof, c, &mut emit) else { return Ok(()) };
        if eof {
            return Ok(());
        }
        buf.copy_within(consumed..len, 0);
        len -= consumed;
        base += consumed as u64;
        if buf.len() < 2 * c.max_size as usize && !eof {
            // The file grew past its size at open; switch to the streaming buffer.
            buf.resize(2 * c.max_size as usize, 0);
        }
    }
}

/// Cut `buf` (file bytes from offset `base`) into chunks for `emit`. Returns
/// how many bytes were handed out: all of them at `eof`, else up to the start
/// of the last chunk, which may continue past the buffer. None: `emit` asked
/// to stop.
fn cut_buffer(
    buf: &[u8],
    base: u64,
    eof: bool,
    c: &super::config::ChunkerConfig,
    emit: &mut impl FnMut(u64, &[u8]) -> bool,
) -> Option<usize> {
    let mut consumed = 0usize;
    let cdc = fastcdc::v2020::FastCDC::with_level_and_seed(
        buf,
        c.min_size,
        c.avg_size,
        c.max_size,
        fastcdc::v2020::Normalization::Level1,
        c.seed,
    );
    for ch in cdc {
        // The last cut of a full buffer may belong to a longer chunk: keep it.
        if !eof && ch.offset + ch.length == buf.len() && consumed > 0 {
            break;
        }
        if !emit(base + ch.offset as u64, &buf[ch.offset..ch.offset + ch.length]) {
            return None;
        }
        consumed = ch.offset + ch.length;
    }
    Some(consumed)
}

/// Files smaller than this are read through the page cache: a few direct
/// reads gain nothing, and a folder of small sidecars is often read again soon.
const DIRECT_READ_MIN: u64 = 32 << 20;

/// Direct reads: buffer addresses, file offsets and lengths are multiples of this.
const DIRECT_ALIGN: usize = super::read_at::DIRECT_ALIGN;

/// The two read buffers of `cut_file_direct`, kept for the next file: a fresh
/// pair would cost a zero-fill of every page per file.
static DIRECT_READ_BUFFERS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// A read buffer of `cut_file_direct`: `reserve` bytes for the previous
/// block's unfinished chunk, then the read area, at an aligned address.
struct ReadBlock {
    raw: Vec<u8>,
    /// Index of the aligned start in `raw`.
    at: usize,
    /// Bytes read into the area.
    n: usize,
    eof: bool,
}

/// `cut_file` for a file whose descriptor has `O_DIRECT` on: read around the
/// page cache. The kernel's copy from the page cache into our buffer was half
/// of an ingest's CPU and what held its reader thread back; a direct read has
/// no copy, but no read-ahead either, so a thread of its own reads the next
/// block while this one cuts the last. Each block's area is read at an
/// aligned offset into an aligned address, and the unfinished chunk of the
/// block before is copied just in front of it, so a chunk is contiguous
/// whichever blocks it spans. A read the filesystem refuses (`EINVAL`) turns
/// direct I/O off for the rest of the file and is made again through the
/// page cache.
fn cut_file_direct(
    file: File,
    c: &super::config::ChunkerConfig,
    interrupt: &AtomicBool,
    mut emit: impl FnMut(u64, &[u8]) -> bool,
) -> std::io::Result<()> {
    use std::io::Read;
    let reserve = (c.max_size as usize).next_multiple_of(DIRECT_ALIGN);
    let area = reserve;
    let (free_tx, free_rx) = bounded::<ReadBlock>(2);
    let (full_tx, full_rx) = bounded::<std::io::Result<ReadBlock>>(2);
    {
        let mut kept = DIRECT_READ_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..2 {
            let raw = match kept.pop() {
                Some(b) if b.len() == reserve + area + DIRECT_ALIGN => b,
                _ => vec![0u8; reserve + area + DIRECT_ALIGN],
            };
            let at = raw.as_ptr().align_offset(DIRECT_ALIGN);
            let _ = free_tx.send(ReadBlock { raw, at, n: 0, eof: false });
        }
    }
    let mut held: Vec<ReadBlock> = Vec::new();
    let result = std::thread::scope(|s| {
        let file = &file;
        s.spawn(move || {
            let mut direct = true;
            let mut f = file;
            for mut b in free_rx {
                b.n = 0;
                b.eof = false;
                let r = loop {
                    if b.n == area {
                        break Ok(());
                    }
                    if interrupt.load(Ordering::Relaxed) {
                        break Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"));
                    }
                    let from = b.at + reserve + b.n;
                    match f.read(&mut b.raw[from..b.at + reserve + area]) {
                        Ok(0) => {
                            b.eof = true;
                            break Ok(());
                        }
                        Ok(n) => b.n += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                            if let Err(e) = super::pack_direct::clear_direct(file) {
                                break Err(e);
                            }
                            direct = false;
                        }
                        Err(e) => break Err(e),
                    }
                };
                let last = b.eof || r.is_err();
                if full_tx.send(r.map(|()| b)).is_err() || last {
                    break;
                }
            }
        });
        let mut prev: Option<ReadBlock> = None;
        let (mut rest_from, mut rest, mut base) = (0usize, 0usize, 0u64);
        let out = loop {
            let mut b = match full_rx.recv() {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => break Err(e),
                Err(_) => break Err(std::io::Error::other("internal: the ingest reader stopped early")),
            };
            if let Some(p) = prev.take() {
                let (dst, src) = (b.at + reserve - rest, rest_from);
                b.raw[dst..dst + rest].copy_from_slice(&p.raw[src..src + rest]);
                // The reader has stopped if this block was the last: keep it then.
                if let Err(e) = free_tx.send(p) {
                    held.push(e.into_inner());
                }
            }
            let (lo, hi) = (b.at + reserve - rest, b.at + reserve + b.n);
            let eof = b.eof;
            let step = if lo == hi { Some(0) } else { cut_buffer(&b.raw[lo..hi], base, eof, c, &mut emit) };
            match step {
                Some(consumed) if !eof => {
                    base += consumed as u64;
                    rest_from = lo + consumed;
                    rest = hi - lo - consumed;
                    prev = Some(b);
                }
                _ => {
                    held.push(b);
                    break Ok(());
                }
            }
        };
        drop(free_tx);
        drop(full_rx);
        out
    });
    let mut kept = DIRECT_READ_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
    for b in held.into_iter().take(2usize.saturating_sub(kept.len())) {
        kept.push(b.raw);
    }
    result
}

/// Chunk buffers handed down the ingest pipeline, reused once every stage
/// has dropped them. A fresh 1-16 MiB allocation per chunk came from mmap:
/// each 4 KiB page then cost a fault and a zero-fill before the copy, and a
/// munmap after the pack write (kernel time in the ingest profile).
#[derive(Default)]
struct ChunkBuffers {
    bufs: Vec<Arc<Vec<u8>>>,
}

impl ChunkBuffers {
    /// At most this many buffers are kept: more than the pipeline holds at
    /// once (bounded channels of 2, 2 and 4, two hashers, the writer), so a
    /// free one is nearly always found, and no more memory than it holds.
    const KEEP: usize = 12;

    /// A buffer holding a copy of `bytes`: a free kept one, else a new one.
    fn filled(&mut self, bytes: &[u8]) -> Arc<Vec<u8>> {
        for b in &mut self.bufs {
            if let Some(v) = Arc::get_mut(b) {
                v.clear();
                v.extend_from_slice(bytes);
                return b.clone();
            }
        }
        let b = Arc::new(bytes.to_vec());
        if self.bufs.len() < Self::KEEP {
            self.bufs.push(b.clone());
        }
        b
    }
}

/// Decide whether compressing a chunk pays by compressing three small samples
/// at the fastest level. Camera codecs (ProRes, DNx, H.264) fail this in
/// microseconds, so they are stored raw and read back with a plain pread.
pub(crate) fn compress_if_it_pays(data: &[u8], policy: CompressionPolicy, level: i32) -> Option<Vec<u8>> {
    match policy {
        CompressionPolicy::Never => return None,
        CompressionPolicy::Always => {}
        CompressionPolicy::Auto => {
            const S: usize = 16 << 10;
            let sample: Vec<u8> = if data.len() <= 3 * S {
                data.to_vec()
            } else {
                let mid = data.len() / 2 - S / 2;
                [&data[..S], &data[mid..mid + S], &data[data.len() - S..]].concat()
            };
            let c = zstd::bulk::compress(&sample, 1).ok()?;
            if c.len() * 10 > sample.len() * 9 {
                return None;
            }
        }
    }
    let c = zstd::bulk::compress(data, level).ok()?;
    if c.len() * 20 < data.len() * 19 {
        Some(c)
    } else {
        None
    }
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

fn name_of(p: &Path) -> Result<String> {
    let n = p.file_name().ok_or_else(|| ArchiveError::Invalid(format!("{}: has no file name", p.display())))?;
    n.to_str()
        .map(|s| s.to_string())
        .ok_or_else(|| ArchiveError::Invalid(format!("{}: file name is not UTF-8; rename it before ingesting", p.display())))
}

/// Expand the sources into files (and the folders that hold them).
fn enumerate(
    sources: &[PathBuf],
    dest: &[String],
    archive_root: &Path,
    failed: &mut Vec<(String, String)>,
    specials: &mut Vec<SourceSpecial>,
) -> Result<(Vec<SourceFile>, Vec<SourceDir>)> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    // Never ingest the archive into itself (a source folder that contains it).
    let own = std::fs::canonicalize(archive_root).unwrap_or_else(|_| archive_root.to_path_buf());
    for src in sources {
        // A source that is itself a symlink (or FIFO, socket, device) is stored as
        // what it is, under the name given: never followed.
        let lmeta = std::fs::symlink_metadata(src).map_err(|e| ArchiveError::Io {
            path: src.clone(),
            source: std::io::Error::new(e.kind(), format!("cannot read source: {e}")),
        })?;
        if !lmeta.is_file() && !lmeta.is_dir() {
            let name = name_of(src)?;
            let entry =
                special_entry(src, name.clone(), &lmeta).map_err(|why| ArchiveError::Invalid(format!("{}: {why}", src.display())))?;
            let mut d = dest.to_vec();
            d.push(name);
            specials.push(SourceSpecial { path: src.clone(), dest: d, entry });
            continue;
        }
        if std::fs::canonicalize(src).map(|c| c.starts_with(&own)).unwrap_or(false) {
            return Err(ArchiveError::Invalid(format!(
                "{}: is inside the archive itself; choose a source outside {}",
                src.display(),
                own.display()
            )));
        }
        let meta = std::fs::metadata(src).map_err(|e| ArchiveError::Io {
            path: src.clone(),
            source: std::io::Error::new(e.kind(), format!("cannot read source: {e}")),
        })?;
        let base = name_of(&std::fs::canonicalize(src).at(src)?)?;
        if meta.is_file() {
            let mut d = dest.to_vec();
            d.push(base);
            files.push(SourceFile { path: src.clone(), dest: d, meta, link_group: None });
            continue;
        }
        if !meta.is_dir() {
            return Err(ArchiveError::Invalid(format!("{}: not a regular file or folder", src.display())));
        }
        let walker = walkdir::WalkDir::new(src).sort_by_file_name().into_iter().filter_entry(|e| {
            let skip = e.file_type().is_dir() && std::fs::canonicalize(e.path()).map(|c| c == own).unwrap_or(false);
            if skip {
                log::warn!("{}: skipping the archive itself", e.path().display());
            }
            !skip
        });
        for entry in walker {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let p = e.path().map(|p| p.display().to_string()).unwrap_or_else(|| src.display().to_string());
                    failed.push((p, format!("cannot read: {e}")));
                    continue;
                }
            };
            let rel = entry.path().strip_prefix(src).unwrap_or(entry.path());
            let mut d = dest.to_vec();
            d.push(base.clone());
            let mut ok = true;
            for c in rel.components() {
                match c.as_os_str().to_str() {
                    Some(s) => d.push(s.to_string()),
                    None => ok = false,
                }
            }
            if !ok {
                failed.push((entry.path().display().to_string(), "file name is not UTF-8; rename it".into()));
                continue;
            }
            let ft = entry.file_type();
            let m = match entry.metadata() {
                Ok(m) => m,
                Err(e) => {
                    failed.push((entry.path().display().to_string(), e.to_string()));
                    continue;
                }
            };
            if ft.is_dir() {
                dirs.push((d, m.mode() & 0o7777, mtime_ns(&m), Owner::of(&m), super::xattrs::read(entry.path())));
            } else if ft.is_file() {
                files.push(SourceFile { path: entry.path().to_path_buf(), dest: d, meta: m, link_group: None });
            } else {
                let name = d.last().cloned().unwrap_or_default();
                match special_entry(entry.path(), name, &m) {
                    Ok(e) => specials.push(SourceSpecial { path: entry.path().to_path_buf(), dest: d, entry: e }),
                    Err(why) => failed.push((entry.path().display().to_string(), why)),
                }
            }
        }
    }
    mark_hard_links(&mut files);
    Ok((files, dirs))
}

/// Names of this ingest that are one file (same st_dev and st_ino, nlink > 1)
/// get one link group, as tar and restic track hard links by inode. A file
/// with other links outside what is ingested stays a plain file.
fn mark_hard_links(files: &mut [SourceFile]) {
    let mut seen: HashMap<(u64, u64), usize> = HashMap::new();
    for f in files.iter().filter(|f| f.meta.nlink() > 1) {
        *seen.entry((f.meta.dev(), f.meta.ino())).or_default() += 1;
    }
    for f in files.iter_mut() {
        if f.meta.nlink() > 1 && seen.get(&(f.meta.dev(), f.meta.ino())).is_some_and(|n| *n > 1) {
            f.link_group = Some(link_group_of(&f.meta));
        }
    }
}

pub fn ingest(archive: &mut Archive, sources: &[PathBuf], opts: &IngestOptions) -> Result<IngestReport> {
    archive.require_writer()?;
    let mut report = IngestReport::default();
    let dest: Vec<String> = opts.dest.split('/').filter(|s| !s.is_empty() && *s != ".").map(String::from).collect();
    if dest.iter().any(|s| s == "..") {
        return Err(ArchiveError::Invalid("--to must not contain '..'".into()));
    }
    let head = archive.catalog.branch_head(&opts.branch)?.ok_or_else(|| ArchiveError::NoSuchBranch(opts.branch.clone()))?;
    let mut specials = Vec::new();
    let (files, dirs) = enumerate(sources, &dest, archive.root(), &mut report.failed, &mut specials)?;
    let total: u64 = files.iter().map(|f| f.meta.len()).sum();

    let pb = &opts.progress;
    pb.begin("ingest", super::progress::Unit::Bytes, total);

    let cat = &archive.catalog;
    let root_tree = match head {
        Some(c) => Some(archive.commit(&c)?.tree),
        None => None,
    };
    let mut root = match root_tree {
        Some(t) => DirNode {
            base: Some(t),
            base_size: 0,
            loaded: false,
            dirty: false,
            mode: 0o755,
            mtime_ns: 0,
            owner: None,
            xattrs: None,
            entries: BTreeMap::new(),
        },
        None => DirNode::new_empty(0o755, 0),
    };
    let mut sink = PackSink::new(archive, cat)?;
    cat.begin()?;
    let result = (|| -> Result<Option<Hash>> {
        rewrite_records_of_missing_packs(cat, &mut sink)?;
        let now = super::objects::now_ns();
        for (d, mode, mt, owner, xattrs) in &dirs {
            let node = root.dir_mut(cat, d, 0o755, now)?;
            node.mode = *mode;
            node.mtime_ns = *mt;
            node.owner = Some(*owner);
            node.xattrs = xattrs.clone();
        }
        for sp in &specials {
            let (parent, name) = sp.dest.split_at(sp.dest.len() - 1);
            let dir = root.dir_mut(cat, parent, 0o755, now)?;
            if let Some(Node::Dir(_)) = dir.entries.get(&name[0]) {
                report.failed.push((
                    sp.path.display().to_string(),
                    format!("'{}' is a folder in the archive; a {} cannot replace it", sp.dest.join("/"), sp.entry.kind.word()),
                ));
                continue;
            }
            dir.entries.insert(name[0].clone(), Node::File(sp.entry.clone()));
            report.specials += 1;
        }
        let mut sources_seen = Vec::new();
        // A hard-link group's content is read once, for its first name.
        let mut group_blobs: HashMap<u64, Hash> = HashMap::new();
        for f in &files {
            if opts.interrupt.load(Ordering::Relaxed) {
                return Err(ArchiveError::Interrupted);
            }
            report.files += 1;
            let display = f.path.display().to_string();
            pb.message(&display);
            let canon = std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone()).display().to_string();
            let (size, mt, ino) = (f.meta.len(), mtime_ns(&f.meta), f.meta.ino());
            let cached = match cat.source(&canon)? {
                Some((s, m, i, b)) if s == size && m == mt && i == ino && sink.blob_is_whole(cat, &b)? => Some((s, m, i, b)),
                _ => None,
            };
            let blob = if let Some(b) = f.link_group.and_then(|g| group_blobs.get(&g).copied()) {
                report.files_unchanged += 1;
                pb.advance(size);
                b
            } else if let Some((_, _, _, b)) = cached {
                report.files_unchanged += 1;
                pb.advance(size);
                b
            } else {
                let savepoint = cat.savepoint()?;
                let mark = sink.mark(size)?;
                match store_file(&archive.config, cat, &mut sink, f, opts, &mut report, pb) {
                    Ok(b) => {
                        savepoint.release()?;
                        report.files_stored += 1;
                        b
                    }
                    Err(e) if matches!(e, ArchiveError::Interrupted) || e.is_disk_full() => return Err(e),
                    // A source that cannot be read or changed under us fails alone;
                    // trouble writing the archive stops the whole ingest.
                    Err(e)
                        if matches!(&e, ArchiveError::SourceChanged { .. })
                            || matches!(&e, ArchiveError::Io { path, .. } if path == &f.path) =>
                    {
                        savepoint.rollback()?;
                        sink.rollback_to(mark)?;
                        report.failed.push((display, e.to_string()));
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            };
            sources_seen.push((canon, size, mt, ino, blob));
            if let Some(g) = f.link_group {
                group_blobs.insert(g, blob);
            }
            let (parent, name) = f.dest.split_at(f.dest.len() - 1);
            let dir = root.dir_mut(cat, parent, 0o755, now)?;
            if let Some(Node::Dir(_)) = dir.entries.get(&name[0]) {
                report.failed.push((display, format!("'{}' is a folder in the archive; a file cannot replace it", f.dest.join("/"))));
                continue;
            }
            dir.entries.insert(
                name[0].clone(),
                Node::File(TreeEntry {
                    name: name[0].clone(),
                    kind: EntryKind::File,
                    hash: blob,
                    size,
                    mode: f.meta.mode() & 0o7777,
                    mtime_ns: mt,
                    owner: Some(Owner::of(&f.meta)),
                    extra: super::objects::EntryExtra {
                        link_group: f.link_group,
                        xattrs: super::xattrs::read(&f.path),
                        ..Default::default()
                    },
                }),
            );
            report.bytes_logical += size;
        }
        let (tree, _) = root.store(cat, &mut sink)?;
        if root_tree == Some(tree) {
            // Nothing changed: no commit, but remember the sources we verified.
            sink.finish(cat)?;
            for (p, s, m, i, b) in &sources_seen {
                cat.set_source(p, *s, *m, *i, b)?;
            }
            return Ok(None);
        }
        let message = opts.message.clone().unwrap_or_else(|| {
            let names: Vec<String> = sources.iter().map(|s| s.display().to_string()).collect();
            format!("ingest {}", names.join(" "))
        });
        let commit = make_commit(tree, head.into_iter().collect(), &opts.branch, &message);
        let raw = commit.encode();
        let id = Hash::of(&raw);
        sink.append_object(cat, RecordKind::Commit, &raw)?;
        cat.insert_commit(&id, &commit)?;
        let seq = cat.next_ref_seq()?;
        let r = RefRecord { branch: opts.branch.clone(), head: Some(id), seq, time_ns: commit.time_ns };
        sink.append_object(cat, RecordKind::Ref, &serde_json::to_vec(&r).unwrap_or_default())?;
        cat.set_branch(&opts.branch, Some(&id), seq, commit.time_ns)?;
        for (p, s, m, i, b) in &sources_seen {
            cat.set_source(p, *s, *m, *i, b)?;
        }
        // The rule of the archive: pack fsync (in seal) before the catalog commit.
        sink.finish(cat)?;
        Ok(Some(id))
    })();
    pb.finish();
    match result.and_then(|c| cat.commit().map(|_| c)) {
        Ok(c) => {
            report.commit = c.map(|h| h.to_hex());
            archive.store().register_packs(archive.catalog.pack_names()?.into_iter().map(|(i, n, _)| (i, n)));
            Ok(report)
        }
        Err(e) => {
            archive.catalog.rollback();
            sink.discard();
            Err(e)
        }
    }
}

/// A pack can vanish from disk (deleted, a failed disk) while the catalog still
/// indexes it. Its metadata records whose catalog rows are intact — re-encoded
/// from the rows, they hash to their ids — are written again to this ingest's
/// packs, so the packs once more hold everything the catalog names (a rebuild
/// would otherwise lose them). Its chunks come back when the originals are
/// re-ingested; then `PackSink::finish` drops the pack's row.
fn rewrite_records_of_missing_packs(cat: &Catalog, sink: &mut PackSink) -> Result<()> {
    let mut ids: Vec<i64> = sink.packs.keys().copied().collect();
    ids.sort();
    let mut refs_lost = false;
    // Media and proxy records are keyed by content, not by id: encode the rows
    // once, only if a missing pack holds such a record.
    let mut by_content: Option<HashMap<Hash, Vec<u8>>> = None;
    for pack in ids {
        if sink.pack_present(pack) {
            continue;
        }
        let blobs = cat.blobs_recorded_in_pack(pack)?;
        let (mut rewritten, mut kept) = (0u64, 0u64);
        for (id, code) in cat.objects_in_pack(pack)? {
            let Some(kind) = RecordKind::from_u8(code) else { continue };
            let raw = match kind {
                RecordKind::Tree => super::verify::tree_from_rows(cat, &id)?.map(|t| t.encode()),
                RecordKind::Commit => super::verify::commit_from_rows(cat, &id)?.map(|c| c.encode()),
                RecordKind::Blob => match blobs.get(&id) {
                    Some(b) => super::verify::blob_from_rows(cat, b)?.and_then(|(rec, _)| serde_json::to_vec(&rec).ok()),
                    None => None,
                },
                RecordKind::Media | RecordKind::Proxy => {
                    if by_content.is_none() {
                        let mut m = HashMap::new();
                        for (blob, facts, error) in cat.media_rows()? {
                            let facts = facts.and_then(|f| serde_json::from_str(&f).ok());
                            let raw = serde_json::to_vec(&MediaRecord { blob, facts, error }).unwrap_or_default();
                            m.insert(Hash::of(&raw), raw);
                        }
                        for p in cat.all_proxies()? {
                            let raw = serde_json::to_vec(&p).unwrap_or_default();
                            m.insert(Hash::of(&raw), raw);
                        }
                        by_content = Some(m);
                    }
                    by_content.as_ref().and_then(|m| m.get(&id).cloned())
                }
                RecordKind::Ref => {
                    // Branch rows are written again below, as fresh ref records.
                    refs_lost = true;
                    cat.delete_object_row(&id)?;
                    continue;
                }
                RecordKind::TcFact => cat.all_tc_facts()?.into_iter().find(|f| f.id() == id).map(|f| f.encode()),
                RecordKind::Chunk => None,
            };
            match raw {
                Some(raw) if Hash::of(&raw) == id => {
                    cat.delete_object_row(&id)?;
                    sink.append_object(cat, kind, &raw)?;
                    rewritten += 1;
                }
                _ => kept += 1,
            }
        }
        log::warn!(
            "pack #{pack} is missing: {rewritten} of its records were written again from the catalog{}; \
             re-ingest the originals to store its data again",
            if kept > 0 { format!(" ({kept} could not be)") } else { String::new() }
        );
    }
    if refs_lost {
        for (branch, head) in cat.branches()? {
            let seq = cat.branch_seq(&branch)?.unwrap_or(0);
            let r = RefRecord { branch, head, seq, time_ns: super::objects::now_ns() };
            sink.append_object(cat, RecordKind::Ref, &serde_json::to_vec(&r).unwrap_or_default())?;
        }
    }
    Ok(())
}

/// Appends metadata records to the packs of a `store_local_files` call and indexes
/// them in its catalog transaction.
pub struct ObjectSink<'a> {
    cat: &'a Catalog,
    sink: &'a mut PackSink,
}

impl ObjectSink<'_> {
    pub fn catalog(&self) -> &Catalog {
        self.cat
    }
    pub fn append(&mut self, kind: RecordKind, raw: &[u8]) -> Result<Hash> {
        Ok(self.sink.append_object(self.cat, kind, raw)?.id)
    }
}

/// Store local files (e.g. rendered proxies) as blobs through the ingest
/// pipeline — same chunker, dedup, compression and packs — without naming them
/// in any tree. `then` gets the content hash and size of each file and may
/// append records and catalog rows that point at them; it runs inside the same
/// transaction. Packs are fsynced before the catalog commits; on any error (or
/// interrupt) nothing is committed and the new packs are removed.
pub fn store_local_files<T>(
    archive: &mut Archive,
    paths: &[PathBuf],
    interrupt: Arc<AtomicBool>,
    then: impl FnOnce(&mut ObjectSink, &[(Hash, u64)]) -> Result<T>,
) -> Result<T> {
    archive.require_writer()?;
    let opts =
        IngestOptions { branch: String::new(), dest: String::new(), message: None, progress: Default::default(), prober: None, interrupt };
    let mut report = IngestReport::default();
    let cat = &archive.catalog;
    let mut sink = PackSink::new(archive, cat)?;
    cat.begin()?;
    let result = (|| -> Result<T> {
        let mut stored = Vec::with_capacity(paths.len());
        for p in paths {
            let meta = std::fs::metadata(p).at(p)?;
            let f = SourceFile { path: p.clone(), dest: Vec::new(), meta, link_group: None };
            let hash = store_file(&archive.config, cat, &mut sink, &f, &opts, &mut report, &opts.progress)?;
            stored.push((hash, f.meta.len()));
        }
        let out = then(&mut ObjectSink { cat, sink: &mut sink }, &stored)?;
        // The rule of the archive: pack fsync (in seal) before the catalog commit.
        sink.finish(cat)?;
        Ok(out)
    })();
    match result.and_then(|v| cat.commit().map(|_| v)) {
        Ok(v) => {
            archive.store().register_packs(archive.catalog.pack_names()?.into_iter().map(|(i, n, _)| (i, n)));
            Ok(v)
        }
        Err(e) => {
            archive.catalog.rollback();
            sink.discard();
            Err(e)
        }
    }
}

/// Store one file through the pipeline; returns its content hash.
fn store_file(
    cfg: &Config,
    cat: &Catalog,
    sink: &mut PackSink,
    f: &SourceFile,
    opts: &IngestOptions,
    report: &mut IngestReport,
    pb: &super::progress::ProgressHandle,
) -> Result<Hash> {
    let path = f.path.clone();
    let file = File::open(&path).at(&path)?;
    let before = file.metadata().at(&path)?;
    // Probe concurrently with chunking: it reads headers through the page cache
    // while the chunker streams the essence, so media costs no second pass.
    let probe = opts.prober.map(|p| {
        let pp = path.clone();
        std::thread::spawn(move || p(&pp))
    });
    let (cut_tx, cut_rx) = bounded::<Cut>(2);
    let (hash_tx, hash_rx) = bounded::<Hashed>(2);
    let c = cfg.chunker.clone();
    let interrupt = opts.interrupt.clone();
    let read_bytes = Arc::new(AtomicU64::new(0));
    let rb = read_bytes.clone();
    // The whole-file BLAKE3 runs on its own thread, fed the same chunks in
    // order; it keeps the file's block CVs (its outboard) as it goes.
    let (file_tx, file_rx) = bounded::<Arc<Vec<u8>>>(4);
    let spill_dir = cat.outboard_spill_dir();
    let spill_at = spill_dir.clone().unwrap_or_default();
    let file_hasher = std::thread::spawn(move || {
        // Bounded memory at any file size: CVs past 1 MiB spill to the archive's disk.
        let mut hasher = super::outboard::StreamingOutboard::spilling_to(spill_dir);
        for d in file_rx {
            hasher.update(&d);
        }
        hasher.finish()
    });
    let size_hint = before.len();
    let reader = std::thread::spawn(move || -> std::result::Result<(), std::io::Error> {
        let mut idx = 0u64;
        let mut pool = ChunkBuffers::default();
        let cut = |offset: u64, bytes: &[u8]| {
            let data = pool.filled(bytes);
            rb.fetch_add(data.len() as u64, Ordering::Relaxed);
            if file_tx.send(data.clone()).is_err() {
                return false;
            }
            let ok = cut_tx.send(Cut { idx, offset, data }).is_ok();
            idx += 1;
            ok
        };
        // Large files are read around the page cache where their filesystem allows it.
        if size_hint >= DIRECT_READ_MIN && super::pack_direct::set_direct(&file).unwrap_or(false) {
            cut_file_direct(file, &c, &interrupt, cut)
        } else {
            cut_file(file, size_hint, &c, &interrupt, cut)
        }
    });
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let rx = cut_rx.clone();
            let tx = hash_tx.clone();
            let (policy, level) = (cfg.compression.policy, cfg.compression.level);
            std::thread::spawn(move || {
                for cut in rx {
                    // The id and the block CVs from one pass over the chunk.
                    let (hash, cvs) = super::outboard::hash_with_outboard(&cut.data);
                    let head = if cut.offset == 0 { super::outboard::head_proof(&cut.data, &cvs) } else { Vec::new() };
                    let len = cut.data.len() as u64;
                    let (codec, stored) = match compress_if_it_pays(&cut.data, policy, level) {
                        Some(c) => (CODEC_ZSTD, Stored::Zstd(c)),
                        None => (CODEC_RAW, Stored::Raw(cut.data)),
                    };
                    if tx.send(Hashed { idx: cut.idx, offset: cut.offset, len, hash, cvs, head, codec, stored }).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    drop(cut_rx);
    drop(hash_tx);

    let mut pieces: BTreeMap<u64, (u64, u64, Hash)> = BTreeMap::new();
    let mut write_err = None;
    for h in hash_rx.iter() {
        if write_err.is_some() {
            continue; // drain so the pipeline threads can finish
        }
        pb.advance(h.len);
        let r: Result<()> = (|| {
            if sink.has_usable_chunk(cat, &h.hash)? {
                report.chunks_dedup += 1;
            } else {
                let repair = cat.has_chunk(&h.hash)?; // stored, but damaged or its pack is gone
                if repair {
                    // So that `insert_record` moves the row to the new copy.
                    cat.mark_damaged(&[h.hash])?;
                }
                let loc = sink.record(cat, RecordKind::Chunk, h.codec, h.hash, h.len as usize, &h.stored)?;
                cat.put_chunk_outboard(&h.hash, &h.cvs)?;
                if repair {
                    cat.clear_damaged(&h.hash)?;
                }
                report.chunks_new += 1;
                report.bytes_new_stored += loc.stored_len as u64;
            }
            // Also for a chunk stored before (at another offset of another
            // file, or by a version without heads): it begins this file.
            cat.put_chunk_head(&h.hash, &h.head)?;
            Ok(())
        })();
        if let Err(e) = r {
            write_err = Some(e);
            opts.interrupt.store(true, Ordering::Relaxed);
            continue;
        }
        pieces.insert(h.idx, (h.offset, h.len, h.hash));
    }
    for w in workers {
        let _ = w.join();
    }
    let content = reader.join().map_err(|_| ArchiveError::Invalid("internal: reader thread panicked".into()))?;
    let (file_hash, mut file_cvs) =
        file_hasher.join().map_err(|_| ArchiveError::Invalid("internal: hasher thread panicked".into()))?.at(&spill_at)?;
    let content = content.map(|()| file_hash);
    report.bytes_read += read_bytes.load(Ordering::Relaxed);
    if let Some(e) = write_err {
        return Err(e);
    }
    let content = match content {
        Ok(h) => h,
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(ArchiveError::Interrupted),
        Err(e) => return Err(ArchiveError::Io { path: path.clone(), source: e }),
    };
    // A file that changed while we read it would be stored as a mix of versions.
    let after = std::fs::metadata(&path).at(&path)?;
    let read_total: u64 = pieces.values().map(|p| p.1).sum();
    if after.len() != before.len() || mtime_ns(&after) != mtime_ns(&before) || read_total != before.len() {
        let _ = probe.map(|p| p.join());
        return Err(ArchiveError::SourceChanged {
            path: path.clone(),
            what: format!("size {} -> {}, read {} bytes", before.len(), after.len(), read_total),
        });
    }
    let mut extents = Vec::with_capacity(pieces.len());
    for (offset, len, hash) in pieces.values() {
        extents.push(Extent { file_offset: *offset, length: *len, chunk: *hash, chunk_offset: 0 });
    }
    if !cat.has_blob(&content)? {
        let rec = BlobRecord { hash: content, size: read_total, extents };
        let raw = serde_json::to_vec(&rec).unwrap_or_default();
        let loc = sink.append_object(cat, RecordKind::Blob, &raw)?;
        cat.insert_blob(&content, read_total, &loc.id, &rec.extents)?;
        cat.put_blob_outboard_spooled(&content, &mut file_cvs)?;
    }
    if let Some(p) = probe {
        let outcome = p.join().ok().flatten();
        if let Some(outcome) = outcome {
            if !cat.has_media(&content)? {
                let (facts, error) = match outcome {
                    Ok(v) => (Some(v), None),
                    Err(e) => (None, Some(e)),
                };
                if let Some(e) = &error {
                    report.damaged.push((path.display().to_string(), e.clone()));
                }
                let rec = MediaRecord { blob: content, facts: facts.clone(), error: error.clone() };
                sink.append_object(cat, RecordKind::Media, &serde_json::to_vec(&rec).unwrap_or_default())?;
                let facts_s = facts.map(|f| f.to_string());
                cat.set_media(&content, facts_s.as_deref(), error.as_deref())?;
            }
        }
    }
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (offset, length, BLAKE3) of every chunk `cut` hands out of `path`.
    fn chunks_of(path: &Path, cut: impl Fn(File, &mut dyn FnMut(u64, &[u8]) -> bool) -> std::io::Result<()>) -> Vec<(u64, usize, Hash)> {
        let mut out = Vec::new();
        cut(File::open(path).unwrap(), &mut |off, b| {
            out.push((off, b.len(), Hash::of(b)));
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn a_file_read_around_the_page_cache_is_cut_exactly_as_one_read_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mov");
        // Small chunks, so blocks of one largest chunk each hand many unfinished chunks on; a tail off the alignment.
        let c = super::super::config::ChunkerConfig { min_size: 16 << 10, avg_size: 64 << 10, max_size: 256 << 10, seed: 7 };
        let bytes = crate::archive::test_support::noise((3 << 20) + 777, 5);
        std::fs::write(&path, &bytes).unwrap();
        let stop = AtomicBool::new(false);
        let buffered = chunks_of(&path, |f, emit| cut_file(f, bytes.len() as u64, &c, &stop, |o, b| emit(o, b)));
        let direct = chunks_of(&path, |f, emit| {
            let on = super::super::pack_direct::set_direct(&f).unwrap();
            assert_eq!(on, crate::archive::test_support::direct_io_here());
            cut_file_direct(f, &c, &stop, |o, b| emit(o, b))
        });
        assert!(buffered.len() > 20, "want many chunks, got {}", buffered.len());
        assert_eq!(direct, buffered, "the direct reader cut the file differently");
        assert_eq!(buffered.iter().map(|c| c.1).sum::<usize>(), bytes.len());

        // Asked to stop, it stops, and the next file still gets its buffers.
        let mut seen = 0;
        let f = File::open(&path).unwrap();
        super::super::pack_direct::set_direct(&f).unwrap();
        cut_file_direct(f, &c, &stop, |_, _| {
            seen += 1;
            seen < 3
        })
        .unwrap();
        assert_eq!(seen, 3);
        assert_eq!(chunks_of(&path, |f, emit| cut_file_direct(f, &c, &stop, |o, b| emit(o, b))), buffered);
    }

    #[test]
    fn random_bytes_are_not_compressed_and_text_is() {
        let mut x: u64 = 0x1234_5678;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(compress_if_it_pays(&noise, CompressionPolicy::Auto, 3).is_none());
        let text = b"INT. EDIT BAY - NIGHT. ".repeat(10_000);
        assert!(compress_if_it_pays(&text, CompressionPolicy::Auto, 3).is_some());
        assert!(compress_if_it_pays(&text, CompressionPolicy::Never, 3).is_none());
    }
}
