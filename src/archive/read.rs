//! Reading file contents back: extents -> chunks -> pack bytes.
//!
//! Every chunk is verified against its BLAKE3 id the first time it is read by
//! this process, so damage in a pack turns into an error naming the chunk, never
//! into wrong bytes. After that, raw (uncompressed) chunks are served by a plain
//! `pread` of just the requested range, which is what makes random access cheap.

use super::catalog::{Catalog, ChunkLoc};
use super::error::{ArchiveError, IoContext, Result};
use super::objects::{Extent, Hash};
use super::pack::{self, RecordLoc, CODEC_RAW, RECORD_HEADER_LEN};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Thread-safe access to chunk bytes in the packs. Shared by every reader of an
/// archive (the mount's worker threads, restore).
pub struct ChunkStore {
    packs_dir: PathBuf,
    pack_names: Mutex<HashMap<i64, String>>,
    files: Mutex<HashMap<i64, Arc<File>>>,
    verified: Mutex<HashSet<Hash>>,
    cache: Mutex<DecodedCache>,
}

/// A small LRU of whole decoded chunks, bounded in bytes. It holds compressed
/// chunks after decompression and raw chunks just after verification, so a
/// sequential reader does not read a chunk twice.
struct DecodedCache {
    cap: usize,
    used: usize,
    items: VecDeque<(Hash, Arc<Vec<u8>>)>,
}

impl DecodedCache {
    fn get(&mut self, h: &Hash) -> Option<Arc<Vec<u8>>> {
        let pos = self.items.iter().position(|(k, _)| k == h)?;
        let item = self.items.remove(pos)?;
        let v = item.1.clone();
        self.items.push_back(item);
        Some(v)
    }
    fn put(&mut self, h: Hash, v: Arc<Vec<u8>>) {
        if v.len() > self.cap {
            return;
        }
        self.used += v.len();
        self.items.push_back((h, v));
        while self.used > self.cap {
            match self.items.pop_front() {
                Some((_, old)) => self.used -= old.len(),
                None => break,
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResolvedExtent {
    pub extent: Extent,
    pub loc: ChunkLoc,
}

impl ChunkStore {
    pub fn new(packs_dir: PathBuf, cache_bytes: usize) -> ChunkStore {
        ChunkStore {
            packs_dir,
            pack_names: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashSet::new()),
            cache: Mutex::new(DecodedCache { cap: cache_bytes, used: 0, items: VecDeque::new() }),
        }
    }

    pub fn register_packs(&self, names: impl IntoIterator<Item = (i64, String)>) {
        if let Ok(mut m) = self.pack_names.lock() {
            m.extend(names);
        }
    }

    fn pack_path(&self, pack: i64) -> PathBuf {
        let name = self.pack_names.lock().ok().and_then(|m| m.get(&pack).cloned());
        self.packs_dir.join(name.unwrap_or_else(|| pack::pack_rel_path(pack)))
    }

    fn file(&self, pack: i64) -> Result<(Arc<File>, PathBuf)> {
        let path = self.pack_path(pack);
        if let Some(f) = self.files.lock().ok().and_then(|m| m.get(&pack).cloned()) {
            return Ok((f, path));
        }
        let f = Arc::new(File::open(&path).at(&path)?);
        if let Ok(mut m) = self.files.lock() {
            m.insert(pack, f.clone());
        }
        Ok((f, path))
    }

    fn is_verified(&self, h: &Hash) -> bool {
        self.verified.lock().map(|s| s.contains(h)).unwrap_or(false)
    }

    /// Read, decode and verify a whole chunk without keeping it in this store's
    /// cache: for callers (the mount's read-ahead) that manage their own memory.
    pub fn load_verified(&self, hash: &Hash, loc: &ChunkLoc) -> Result<Vec<u8>> {
        let (file, path) = self.file(loc.pack)?;
        let rl = RecordLoc {
            kind: super::objects::RecordKind::Chunk,
            codec: loc.codec,
            raw_len: loc.raw_len,
            stored_len: loc.stored_len,
            offset: loc.offset,
            id: *hash,
        };
        let data = pack::read_record(&file, &path, &rl)?;
        if let Ok(mut s) = self.verified.lock() {
            s.insert(*hash);
        }
        Ok(data)
    }

    /// True when a range of this chunk can be served by a plain pread: stored raw
    /// and already verified once by this process.
    pub fn can_pread(&self, hash: &Hash, loc: &ChunkLoc) -> bool {
        loc.codec == CODEC_RAW && self.is_verified(hash)
    }

    /// The whole chunk, decoded and verified.
    pub fn chunk(&self, hash: &Hash, loc: &ChunkLoc) -> Result<Arc<Vec<u8>>> {
        if let Some(v) = self.cache.lock().ok().and_then(|mut c| c.get(hash)) {
            return Ok(v);
        }
        let (file, path) = self.file(loc.pack)?;
        let rl = RecordLoc {
            kind: super::objects::RecordKind::Chunk,
            codec: loc.codec,
            raw_len: loc.raw_len,
            stored_len: loc.stored_len,
            offset: loc.offset,
            id: *hash,
        };
        let data = Arc::new(pack::read_record(&file, &path, &rl)?);
        if let Ok(mut s) = self.verified.lock() {
            s.insert(*hash);
        }
        if let Ok(mut c) = self.cache.lock() {
            c.put(*hash, data.clone());
        }
        Ok(data)
    }

    /// Copy `buf.len()` bytes of a chunk starting at `off` into `buf`.
    pub fn read_chunk_range(&self, hash: &Hash, loc: &ChunkLoc, off: u64, buf: &mut [u8]) -> Result<()> {
        if off + buf.len() as u64 > loc.raw_len as u64 {
            return Err(ArchiveError::Inconsistent(format!("extent past the end of chunk {}", hash.short())));
        }
        if loc.codec == CODEC_RAW && self.is_verified(hash) {
            let (file, path) = self.file(loc.pack)?;
            file.read_exact_at(buf, loc.offset + RECORD_HEADER_LEN + off).at(&path)?;
            return Ok(());
        }
        let data = self.chunk(hash, loc)?;
        buf.copy_from_slice(&data[off as usize..off as usize + buf.len()]);
        Ok(())
    }

    /// Make a file's extents readable: one JOIN instead of a query per chunk.
    pub fn resolve(cat: &Catalog, blob: &Hash) -> Result<Vec<ResolvedExtent>> {
        let mut st = cat
            .conn
            .prepare_cached(
                "SELECT e.file_offset, e.length, e.chunk, e.chunk_offset, c.pack, c.offset, c.stored_len, c.raw_len, c.codec
                 FROM extents e LEFT JOIN chunks c ON c.hash = e.chunk WHERE e.blob = ?1 ORDER BY e.file_offset",
            )
            .map_err(|e| cat.err(e))?;
        let rows = st
            .query_map([&blob.0[..]], |r| {
                let chunk: Vec<u8> = r.get(2)?;
                let pack: Option<i64> = r.get(4)?;
                Ok((
                    Extent {
                        file_offset: r.get::<_, i64>(0)? as u64,
                        length: r.get::<_, i64>(1)? as u64,
                        chunk: Hash::from_slice(&chunk).unwrap_or(Hash([0; 32])),
                        chunk_offset: r.get::<_, i64>(3)? as u64,
                    },
                    pack.map(|p| -> rusqlite::Result<ChunkLoc> {
                        Ok(ChunkLoc {
                            pack: p,
                            offset: r.get::<_, i64>(5)? as u64,
                            stored_len: r.get(6)?,
                            raw_len: r.get(7)?,
                            codec: r.get(8)?,
                        })
                    }),
                ))
            })
            .map_err(|e| cat.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (extent, loc) = row.map_err(|e| cat.err(e))?;
            let loc = match loc {
                Some(l) => l.map_err(|e| cat.err(e))?,
                None => {
                    return Err(ArchiveError::Inconsistent(format!(
                        "chunk {} of blob {} is not in the catalog",
                        extent.chunk.short(),
                        blob.short()
                    )))
                }
            };
            out.push(ResolvedExtent { extent, loc });
        }
        Ok(out)
    }
}

/// Random access to one file's content. Cheap to clone-share via Arc; `read_at`
/// takes `&self` so many threads can read one file at once.
pub struct BlobReader {
    pub hash: Hash,
    pub size: u64,
    extents: Vec<ResolvedExtent>,
    store: Arc<ChunkStore>,
}

impl BlobReader {
    pub fn new(hash: Hash, size: u64, extents: Vec<ResolvedExtent>, store: Arc<ChunkStore>) -> BlobReader {
        BlobReader { hash, size, extents, store }
    }

    pub fn extents(&self) -> &[ResolvedExtent] {
        &self.extents
    }

    /// Fill `buf` from `offset`; returns bytes read (short only at end of file).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min((self.size - offset) as usize);
        let mut done = 0usize;
        let mut idx = match self.extents.binary_search_by(|e| e.extent.file_offset.cmp(&offset)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        while done < want {
            let Some(re) = self.extents.get(idx) else {
                return Err(ArchiveError::Inconsistent(format!("blob {} has a gap at offset {}", self.hash.short(), offset + done as u64)));
            };
            let pos = offset + done as u64;
            let e = &re.extent;
            if pos < e.file_offset || pos >= e.file_offset + e.length {
                return Err(ArchiveError::Inconsistent(format!("blob {} has a gap at offset {}", self.hash.short(), pos)));
            }
            let in_ext = pos - e.file_offset;
            let n = ((e.length - in_ext) as usize).min(want - done);
            self.store.read_chunk_range(&e.chunk, &re.loc, e.chunk_offset + in_ext, &mut buf[done..done + n])?;
            done += n;
            idx += 1;
        }
        Ok(done)
    }

    /// The extents overlapping [offset, offset+len).
    pub fn extents_in(&self, offset: u64, len: u64) -> &[ResolvedExtent] {
        let end = offset.saturating_add(len);
        let start = match self.extents.binary_search_by(|e| e.extent.file_offset.cmp(&offset)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let stop = match self.extents.binary_search_by(|e| e.extent.file_offset.cmp(&end)) {
            Ok(i) | Err(i) => i,
        };
        &self.extents[start.min(self.extents.len())..stop.max(start).min(self.extents.len())]
    }

    /// The distinct chunks covering [offset, offset+len), for read-ahead.
    pub fn chunks_in(&self, offset: u64, len: u64) -> Vec<(Hash, ChunkLoc)> {
        let end = offset.saturating_add(len);
        let start = match self.extents.binary_search_by(|e| e.extent.file_offset.cmp(&offset)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let mut out: Vec<(Hash, ChunkLoc)> = Vec::new();
        for re in &self.extents[start.min(self.extents.len())..] {
            if re.extent.file_offset >= end {
                break;
            }
            if out.last().map(|(h, _)| h != &re.extent.chunk).unwrap_or(true) {
                out.push((re.extent.chunk, re.loc.clone()));
            }
        }
        out
    }

    pub fn store(&self) -> &Arc<ChunkStore> {
        &self.store
    }
}
