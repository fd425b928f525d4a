//! What a URL serves: a resolved `view::Target` turned into a representation
//! with a size, validators, a media type, and a way to read its bytes.
//!
//! Every read goes through the archive's read layer: plain files and the
//! essence of zero-copy slices through one shared `Prefetcher` (the chunk
//! cache bounded by `--cache-size`, read-ahead for sequential bodies),
//! remuxed slices from their cache file. All of it is blocking I/O, called
//! from `spawn_blocking`.

use crate::archive::chunk_buffers::ChunkBuf;
use crate::archive::read::{ChunkStore, Prefetched, ReadBuf};
use crate::archive::read_pool::ReadPool;
use crate::archive::readahead::{Prefetcher, ReadAhead};
use crate::archive::{Archive, BlobReader, Hash};
use crate::media::slice::SlicePlan;
use crate::view::{self, Access, Target, ViewError};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// `view::Access` over the server's pool of read-only archive views: each
/// catalog read takes a view of its own, so requests never queue behind one
/// connection.
pub struct PoolAccess<'a>(pub &'a ReadPool);

impl Access for PoolAccess<'_> {
    fn read<T>(&self, f: impl FnOnce(&Archive) -> crate::archive::Result<T>) -> Result<T, ViewError> {
        self.0.with(f).map_err(ViewError::from)
    }
    fn heads(&self) -> Result<HashMap<String, Option<Hash>>, ViewError> {
        Ok(self.0.with(|a| a.branches())?.into_iter().collect())
    }
}

/// Where a representation's bytes come from.
pub enum Body {
    /// A stored file (original or proxy).
    Blob(Arc<BlobReader>),
    /// A virtual slice: its plan (opened for reading) over its clip.
    Slice { plan: Arc<SlicePlan>, reader: Arc<BlobReader> },
}

/// A file as the server serves it.
pub struct Entity {
    /// Mount-relative path (what log lines name).
    pub path: String,
    pub size: u64,
    /// Strong ETag, quoted.
    pub etag: String,
    pub mtime_secs: u64,
    pub content_type: &'static str,
    pub body: Body,
    /// The content hash of the media this is (the clip, for a slice): its facts.
    pub media: Hash,
}

/// Why a target cannot be served as bytes.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{0}: written through the mount and not committed yet; commit it (`reelfs commit ARCHIVE BRANCH`) to serve it")]
    Uncommitted(String),
    #[error("{0}: an image sequence; fetch its frames (listed in its folder) or its proxy under .proxy/")]
    Sequence(String),
    #[error("{0}: {1}")]
    Io(String, String),
}

impl Entity {
    /// The representation of a file-like target; None for folders.
    pub fn of(a: &PoolAccess, path: &str, target: &Target) -> Result<Option<Entity>, ContentError> {
        Ok(Some(match target {
            Target::File { entry, .. } => {
                let reader = a.read(|a| a.blob_reader_paged(&entry.hash)).map_err(|e| ContentError::Io(path.into(), e.to_string()))?;
                Entity {
                    path: path.to_string(),
                    size: entry.size,
                    etag: format!("\"{}\"", entry.hash.to_hex()),
                    mtime_secs: super::conditional::secs_of_ns(entry.mtime_ns),
                    content_type: content_type(&entry.name),
                    body: Body::Blob(Arc::new(reader)),
                    media: entry.hash,
                }
            }
            Target::Proxy(p) => {
                let reader = a.read(|a| a.blob_reader_paged(&p.rec.blob)).map_err(|e| ContentError::Io(path.into(), e.to_string()))?;
                Entity {
                    path: path.to_string(),
                    size: reader.size,
                    etag: format!("\"{}\"", p.rec.blob.to_hex()),
                    mtime_secs: super::conditional::secs_of_ns(p.source.mtime_ns),
                    content_type: content_type(&p.name),
                    body: Body::Blob(Arc::new(reader)),
                    media: p.rec.blob,
                }
            }
            Target::Slice(s) => {
                let plan = s.plan.for_reading().map_err(|e| ContentError::Io(path.into(), e.to_string()))?;
                // A slice's bytes are a function of its clip's content, the
                // range asked for and the timecode in force (a `reelfs tc set`
                // changes the slice's tmcd): those make its strong validator.
                let mut h = blake3::Hasher::new();
                h.update(s.source.hash.0.as_slice());
                for part in [&s.name, &plan.start_tc, &plan.in_tc, &plan.out_tc, &plan.rate, &plan.method] {
                    h.update(part.as_bytes());
                    h.update(&[0]);
                }
                h.update(&plan.size.to_le_bytes());
                let ctype = if plan.method == "remuxed" { "video/quicktime" } else { content_type(&s.spec.base_name) };
                Entity {
                    path: path.to_string(),
                    size: plan.size,
                    etag: format!("\"slice-{}\"", h.finalize().to_hex()),
                    mtime_secs: super::conditional::secs_of_ns(s.source.mtime_ns),
                    content_type: ctype,
                    body: Body::Slice { plan: Arc::new(plan), reader: s.reader.clone() },
                    media: s.source.hash,
                }
            }
            Target::Staged { .. } => return Err(ContentError::Uncommitted(path.to_string())),
            Target::Sequence(_) => return Err(ContentError::Sequence(path.to_string())),
            _ => return Ok(None),
        }))
    }
}

impl Entity {
    /// The response's first bytes are read: a long file's reader loads the
    /// rest of its extent list from now on (`BlobReader::load_rest_now`),
    /// rather than beside that read or some time after it.
    pub fn first_bytes_read(&self) {
        match &self.body {
            Body::Blob(r) | Body::Slice { reader: r, .. } => r.load_rest_now(),
        }
    }
}

/// A response with less than this left to read starts no read-ahead.
const MIN_READAHEAD: u64 = 4 << 20;

/// A reader of one entity for one response: reads in order, with read-ahead
/// over the shared prefetcher for what it will read next.
///
/// Read-ahead starts at the second read, not at once: the first piece is
/// answered from the one chunk it needs, where a read-ahead started with it
/// would have its window's loads compete with that chunk for the disk (a cold
/// time to first byte of 190 ms against nginx's 19 in `scripts/bench serve`).
/// A request that fits in one piece (a player's small range) never starts
/// one, nor does one with less than `MIN_READAHEAD` left at its second read.
pub struct EntityReader {
    body: ReadBody,
    prefetch: Arc<Prefetcher<ChunkStore>>,
    readahead: Mutex<Lazy>,
}

enum Lazy {
    /// The source chunks a read-ahead would load, and the source range they cover.
    NotYet(Arc<BlobReader>, u64, u64),
    /// Reading ahead `window` bytes; the window last grew when the reader was at `grown_at`.
    Running {
        ra: ReadAhead<ChunkStore>,
        reader: Arc<BlobReader>,
        to: u64,
        window: u64,
        grown_at: u64,
    },
    Never,
}

/// A response's first read-ahead window. It doubles, up to the prefetcher's
/// `max_window`, each time the reader has moved through half of it, as the
/// kernel's read-ahead grows: a client that only probes the start (ffmpeg
/// reads a clip's first few KiB, then seeks to its `moov`) leaves a few chunks
/// loading behind it, not the whole window (128 MiB for a 1 GiB cache), whose
/// loads went on after it left and competed for the disk with the requests
/// its first frame waited for.
const FIRST_WINDOW: u64 = 8 << 20;

enum ReadBody {
    Blob(Prefetched),
    Slice { plan: Arc<SlicePlan>, src: Prefetched },
}

impl EntityReader {
    /// A reader of `e` that will read [from, to) in order.
    pub fn new(e: &Entity, prefetch: &Arc<Prefetcher<ChunkStore>>, from: u64, to: u64) -> EntityReader {
        let (body, lazy) = match &e.body {
            Body::Blob(r) => {
                (ReadBody::Blob(Prefetched { prefetch: prefetch.clone(), reader: r.clone() }), Lazy::NotYet(r.clone(), from, to))
            }
            Body::Slice { plan, reader } => {
                // Read-ahead over the clip's bytes the slice reads in place.
                let (a, b, head) = plan.source_span();
                let lazy =
                    if b > a && plan.file.is_some() { Lazy::NotYet(reader.clone(), a + from.saturating_sub(head), b) } else { Lazy::Never };
                (ReadBody::Slice { plan: plan.clone(), src: Prefetched { prefetch: prefetch.clone(), reader: reader.clone() } }, lazy)
            }
        };
        EntityReader { body, prefetch: prefetch.clone(), readahead: Mutex::new(lazy) }
    }

    /// Where in the source a read of the entity at `offset` is (the slice's
    /// offsets map onto its clip's bytes in order, after the new header).
    fn source_offset(&self, offset: u64) -> u64 {
        match &self.body {
            ReadBody::Blob(_) => offset,
            ReadBody::Slice { plan, .. } => {
                let (a, _, head) = plan.source_span();
                a + offset.saturating_sub(head)
            }
        }
    }

    /// Start (on the second read) or move the read-ahead.
    fn read_ahead(&self, offset: u64, first: bool) {
        let Ok(mut ra) = self.readahead.lock() else { return };
        let pos = self.source_offset(offset);
        let max = self.prefetch.max_window;
        match &mut *ra {
            Lazy::Running { ra, reader, to, window, grown_at } => {
                if *window < max && pos >= *grown_at + *window / 2 {
                    *window = (*window * 2).min(max);
                    *grown_at = pos;
                    let chunks = reader.chunk_offsets_in(pos, to.saturating_sub(pos));
                    // Chunks the old one queued are in flight or cached: not loaded twice.
                    *ra = ReadAhead::new(self.prefetch.clone(), chunks, *window, pos);
                } else {
                    ra.advance(pos);
                }
            }
            // A short rest (a player's 1 MiB range) is read block by block: a
            // read-ahead would load (and hash) the whole 4-16 MiB chunks under
            // it, competing for the disk with the very reads it serves
            // (`scripts/bench serve`: cold 1 MiB range p99 35 ms vs nginx's 4).
            Lazy::NotYet(_, _, to) if !first && to.saturating_sub(pos) < MIN_READAHEAD => *ra = Lazy::Never,
            Lazy::NotYet(reader, from, to) if !first => {
                let chunks = reader.chunk_offsets_in(*from, to.saturating_sub(*from));
                let window = FIRST_WINDOW.min(max);
                let (reader, to) = (reader.clone(), *to);
                *ra = Lazy::Running { ra: ReadAhead::new(self.prefetch.clone(), chunks, window, pos), reader, to, window, grown_at: pos };
            }
            _ => {}
        }
    }

    /// Fill `buf` from `offset`; short only at the end, or, for the
    /// response's first read (`first`), where the file's first chunk's head
    /// ends (`Prefetched::read_soon`).
    pub fn read(&self, offset: u64, buf: &mut [u8], first: bool) -> Result<usize, String> {
        self.read_ahead(offset, first);
        match &self.body {
            // The first piece waits for no more than the blocks it returns.
            ReadBody::Blob(p) if first => p.read_soon(offset, buf),
            ReadBody::Blob(p) => p.read(offset, buf),
            ReadBody::Slice { plan, src } => match &plan.file {
                Some(vf) => fill(|o, b| vf.read_at(src, o, b).map_err(|e| e.to_string()), offset, buf),
                None => fill(|o, b| plan.read_at(&src.reader, o, b).map_err(|e| e.to_string()), offset, buf),
            },
        }
    }
}

/// A range of a chunk the shared cache holds, lent to a response body as
/// `Bytes` (hyper writes it to the socket from the chunk's own memory).
struct Lent {
    /// Always `Some` until dropped.
    chunk: Option<Arc<ChunkBuf>>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        self.chunk.as_deref().map_or(&[], |c| &c[self.start..self.start + self.len])
    }
}

impl Drop for Lent {
    /// A stream's read-ahead lets a chunk go from the cache while pieces of
    /// it may still wait in the socket's queue: the last piece sent gives the
    /// chunk's buffer back for the next load.
    fn drop(&mut self) {
        if let Some(c) = self.chunk.take() {
            crate::archive::chunk_buffers::recycle(c);
        }
    }
}

impl EntityReader {
    /// The next pieces of [offset, end), at most `piece` bytes each and
    /// `batch` bytes together: several pieces per call while they are lent
    /// from chunks the read-ahead holds in memory (`Lent`: no copy, no
    /// allocation, so a fast client costs one trip to the blocking pool per
    /// `batch`, not per piece); a piece that had to be read (from the disk,
    /// or across chunks) is copied into a buffer of its own and ends the
    /// batch, so a response never holds more than one such piece beyond its
    /// queue. A piece is short only at the end of the entity.
    pub fn read_pieces(&self, offset: u64, end: u64, piece: usize, batch: usize) -> Result<Vec<Bytes>, String> {
        let mut out = Vec::new();
        let mut pos = offset;
        let mut taken = 0usize;
        while pos < end && taken < batch {
            let want = ((end - pos) as usize).min(piece).min(batch - taken);
            let (b, lent) = match &self.body {
                ReadBody::Blob(p) => {
                    self.read_ahead(pos, false);
                    match p.read_buf(pos, within_extent(&p.reader, pos, want as u64))? {
                        ReadBuf::Chunk { chunk, start, len } => (Bytes::from_owner(Lent { chunk: Some(chunk), start, len }), true),
                        ReadBuf::Owned(v) => (Bytes::from(v), false),
                    }
                }
                ReadBody::Slice { .. } => {
                    let mut buf = vec![0u8; want];
                    let n = self.read(pos, &mut buf, false)?;
                    buf.truncate(n);
                    (Bytes::from(buf), false)
                }
            };
            if b.is_empty() {
                break;
            }
            pos += b.len() as u64;
            taken += b.len();
            out.push(b);
            if !lent {
                break;
            }
        }
        Ok(out)
    }
}

/// `len` cut at the end of the extent `offset` is in, so a piece inside one
/// cached chunk can be lent rather than copied (a piece across two is read
/// into a buffer of its own).
fn within_extent(r: &BlobReader, offset: u64, len: u64) -> u64 {
    match r.extents_in(offset, 1).first() {
        Some(re) if re.extent.file_offset <= offset && offset < re.extent.end() => len.min(re.extent.end() - offset),
        _ => len,
    }
}

/// Read on after short reads until `buf` is full or the source ends.
fn fill(mut f: impl FnMut(u64, &mut [u8]) -> Result<usize, String>, offset: u64, buf: &mut [u8]) -> Result<usize, String> {
    let mut done = 0;
    while done < buf.len() {
        let n = f(offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

/// The media type of a file, by its name's extension.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "mov" | "qt" => "video/quicktime",
        "mp4" | "m4v" => "video/mp4",
        "m4a" => "audio/mp4",
        "mxf" => "application/mxf",
        "wav" | "bwf" => "audio/wav",
        "dpx" => "image/x-dpx",
        "exr" => "image/x-exr",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "tif" | "tiff" => "image/tiff",
        "json" => "application/json",
        "txt" | "md" | "edl" | "ale" => "text/plain; charset=utf-8",
        "xml" | "otio" | "mhl" => "application/xml",
        "m3u8" => "application/vnd.apple.mpegurl",
        _ => "application/octet-stream",
    }
}

/// Resolve a mount-relative path with the mount's resolver.
pub fn resolve(a: &PoolAccess, path: &str) -> Result<view::Resolved, ViewError> {
    view::resolve(a, path)
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn media_types_the_issue_names() {
        assert_eq!(content_type("A001C003.mov"), "video/quicktime");
        assert_eq!(content_type("a.MP4"), "video/mp4");
        assert_eq!(content_type("a.mxf"), "application/mxf");
        assert_eq!(content_type("a.wav"), "audio/wav");
        assert_eq!(content_type("a.0000001.dpx"), "image/x-dpx");
        assert_eq!(content_type("a.jpg"), "image/jpeg");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    use super::{Body, Entity, EntityReader};
    use crate::archive::readahead::{Prefetcher, ReadAheadConfig};
    use crate::archive::{Archive, Hash};
    use std::sync::Arc;

    use crate::archive::test_support::noise;

    /// An archive holding `bytes` committed as main/clip.mov, and a reader of it.
    fn one_clip(bytes: Vec<u8>) -> (tempfile::TempDir, Archive, Arc<crate::archive::BlobReader>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        drop(Archive::init(&root).unwrap());
        {
            let a = Archive::open(&root).unwrap();
            a.stage_write("main", "clip.mov", &[], &[(0, &bytes)], bytes.len() as u64, 0o644, 1, None, &Default::default()).unwrap();
        }
        let mut w = Archive::open_writer(&root).unwrap();
        w.commit_staging("main", "test").unwrap().unwrap();
        let hash = w.resolve("main/clip.mov").unwrap().entry.hash;
        drop(w);
        let a = Archive::open(&root).unwrap();
        let reader = Arc::new(a.blob_reader(&hash).unwrap());
        (dir, a, reader, bytes)
    }

    #[test]
    fn pieces_of_cached_chunks_are_lent_from_them_several_per_call_and_read_right() {
        // Over twice the chunker's 16 MiB maximum: several chunks whatever the
        // archive's random chunker seed (9 MiB was one chunk now and then).
        let (_dir, a, reader, bytes) = one_clip(noise(40 << 20, 14));
        let config = ReadAheadConfig { cache_bytes: 64 << 20, workers: 1, queue: 8, max_window: 64 << 20 };
        let prefetch = Prefetcher::new(a.store().clone(), config);
        // Every chunk in the shared cache, as a read-ahead leaves them.
        let chunks: Vec<_> = reader.chunk_offsets_in(0, reader.size).into_iter().map(|(_, h, loc)| (h, loc)).collect();
        let cached: Vec<Arc<crate::archive::chunk_buffers::ChunkBuf>> =
            chunks.iter().map(|(h, loc)| prefetch.get(h, loc).unwrap()).collect();
        assert!(cached.len() >= 3, "a 40 MiB file is three chunks or more");
        let size = bytes.len() as u64;
        let e = Entity {
            path: "main/clip.mov".into(),
            size,
            etag: String::new(),
            mtime_secs: 0,
            content_type: "video/quicktime",
            body: Body::Blob(reader),
            media: Hash::of(b""),
        };
        let rd = EntityReader::new(&e, &prefetch, 0, size);
        let (piece, batch) = (512 << 10, 2 << 20);
        let mut pos = 0u64;
        let mut calls = 0;
        while pos < size {
            let pieces = rd.read_pieces(pos, size, piece, batch).unwrap();
            calls += 1;
            assert!(!pieces.is_empty(), "nothing read at {pos}");
            assert!(pieces.iter().map(|p| p.len()).sum::<usize>() <= batch);
            for p in pieces {
                assert!(p.len() <= piece);
                assert_eq!(&p[..], &bytes[pos as usize..pos as usize + p.len()], "bytes at {pos}");
                // Lent: the piece is the cached chunk's memory, not a copy of it.
                let inside = cached.iter().any(|c| {
                    let r = c.as_ptr_range();
                    r.contains(&p.as_ptr()) && p.as_ptr_range().end <= r.end
                });
                assert!(inside, "the piece at {pos} ({} bytes) was copied out of its cached chunk", p.len());
                pos += p.len() as u64;
            }
        }
        assert_eq!(pos, size);
        // Several pieces per call: a hop to the blocking pool per batch, not per piece.
        assert!(calls <= (size as usize).div_ceil(batch) + chunks.len(), "{calls} calls for {size} bytes");
    }

    /// A response's read-ahead starts with a small window that grows as the
    /// client reads on: ffmpeg probes a clip's first bytes and disconnects to
    /// seek to its `moov` at the end; a read-ahead of the prefetcher's whole
    /// window (128 MiB for a 1 GiB cache) started by that probe went on loading
    /// chunks after it, competing for the disk with the requests the first
    /// frame waits for (`scripts/bench serve`: first frame 1.24x nginx's).
    #[test]
    fn a_response_reads_ahead_a_small_window_first_and_grows_it_as_the_client_reads() {
        let (_dir, a, reader, bytes) = one_clip(noise(48 << 20, 21));
        let size = bytes.len() as u64;
        let chunks: Vec<_> = reader.chunk_offsets_in(0, size);
        let config = ReadAheadConfig { cache_bytes: 512 << 20, workers: 1, queue: 64, max_window: 128 << 20 };
        let prefetch = Prefetcher::new(a.store().clone(), config);
        let e = Entity {
            path: "main/clip.mov".into(),
            size,
            etag: String::new(),
            mtime_secs: 0,
            content_type: "video/quicktime",
            body: Body::Blob(reader),
            media: Hash::of(b""),
        };
        let rd = EntityReader::new(&e, &prefetch, 0, size);
        // A probe: the first piece, then one batch (the second read starts the read-ahead).
        let mut first = vec![0u8; 256 << 10];
        // Short at the end of the first chunk's head, which is read on its own.
        let n = rd.read(0, &mut first, true).unwrap();
        assert_eq!(n as u64, crate::archive::outboard::HEAD_LEN);
        assert_eq!(&first[..n], &bytes[..n]);
        first.truncate(n);
        let pieces = rd.read_pieces(first.len() as u64, size, 512 << 10, 2 << 20).unwrap();
        assert!(!pieces.is_empty());
        // The old whole window loaded every chunk of the file: wait for its last one.
        let (_, last, _) = chunks.last().unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while prefetch.cached(last).is_none() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let far: Vec<_> = chunks.iter().filter(|(off, _, _)| *off > 24 << 20).collect();
        assert!(!far.is_empty(), "a 48 MiB file has chunks past 24 MiB");
        let loaded = far.iter().filter(|(_, h, _)| prefetch.cached(h).is_some()).count();
        assert_eq!(loaded, 0, "a probe's read-ahead loaded {loaded} chunks past 24 MiB");
        // Read on to the end: the window grows with the reader; bytes right.
        let mut pos = first.len() as u64 + pieces.iter().map(|p| p.len() as u64).sum::<u64>();
        while pos < size {
            for p in rd.read_pieces(pos, size, 512 << 10, 2 << 20).unwrap() {
                assert_eq!(&p[..], &bytes[pos as usize..pos as usize + p.len()], "bytes at {pos}");
                pos += p.len() as u64;
            }
        }
    }
}
