//! The local read cache in front of a remote pack store: fixed-size blocks of
//! packs as files under `ARCHIVE/cache/packs/`, least recently used evicted
//! past a size limit.
//!
//! - Survives restarts: the index is rebuilt from the folder at start, oldest
//!   use first (a hit touches the block file's mtime, so the order survives).
//! - Verified on read: each block file starts with the BLAKE3 hash of its
//!   bytes; a block that does not match (a torn write, a bad disk) is dropped
//!   and fetched again, never served.
//! - Disposable: losing the folder costs only refetches.

use hashlink::LinkedHashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A block of a pack: ranged GETs fetch whole blocks. 4 MiB is the archive's
/// average chunk: one request per chunk read, and few enough requests that a
/// sequential read keeps the connection busy.
pub const BLOCK: u64 = 4 << 20;

const HASH_LEN: usize = 32;

pub struct BlockCache {
    dir: PathBuf,
    limit: u64,
    lru: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    /// Block file -> its size on disk; front is the least recently used.
    files: LinkedHashMap<PathBuf, u64>,
    total: u64,
}

impl BlockCache {
    /// Open (or create) the cache in `dir`, keeping at most `limit` bytes.
    pub fn open(dir: PathBuf, limit: u64) -> std::io::Result<BlockCache> {
        // Nothing is created until a block is kept: opening the store of a
        // new archive must leave its (still empty) folder empty.
        let mut found: Vec<(std::time::SystemTime, PathBuf, u64)> = Vec::new();
        for e in walkdir::WalkDir::new(&dir).min_depth(1).into_iter().filter_map(|e| e.ok()) {
            if !e.file_type().is_file() {
                continue;
            }
            let p = e.path().to_path_buf();
            if p.extension().is_some_and(|x| x == "tmp") {
                // A block being written when a process died.
                let _ = std::fs::remove_file(&p);
                continue;
            }
            if p.extension().is_some_and(|x| x == "blk") {
                if let Ok(m) = e.metadata() {
                    found.push((m.modified().unwrap_or(std::time::UNIX_EPOCH), p, m.len()));
                }
            }
        }
        found.sort();
        let mut lru = Lru::default();
        for (_, p, len) in found {
            lru.total += len;
            lru.files.insert(p, len);
        }
        let cache = BlockCache { dir, limit, lru: Mutex::new(lru) };
        cache.evict();
        Ok(cache)
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The folder of one pack's blocks. Pack names are `xx/NNNNNNNN.pack`;
    /// '/' becomes '_' so every pack is one folder deep, whatever its name.
    pub fn pack_dir(&self, pack: &str) -> PathBuf {
        self.dir.join(pack.replace('/', "_"))
    }

    fn block_path(&self, pack: &str, block: u64) -> PathBuf {
        self.pack_dir(pack).join(format!("{block:08}.blk"))
    }

    /// A cached block's bytes, if present and intact (a view past the
    /// file's hash, not a copy).
    pub fn get(&self, pack: &str, block: u64) -> Option<bytes::Bytes> {
        let path = self.block_path(pack, block);
        let raw = std::fs::read(&path).ok()?;
        if raw.len() < HASH_LEN || blake3::hash(&raw[HASH_LEN..]).as_bytes() != &raw[..HASH_LEN] {
            log::warn!("cached block {} is damaged; fetching it again", path.display());
            self.forget(&path);
            return None;
        }
        {
            let mut lru = self.lru();
            if let Some(len) = lru.files.remove(&path) {
                lru.files.insert(path.clone(), len);
            }
        }
        // The use order outlives the process: the next start sorts by mtime.
        let _ = filetime::set_file_mtime(&path, filetime::FileTime::now());
        Some(bytes::Bytes::from(raw).slice(HASH_LEN..))
    }

    /// Keep a block fetched from the store. Failing to cache is not an error
    /// of the read that fetched it (a full cache disk only costs refetches).
    pub fn put(&self, pack: &str, block: u64, bytes: &[u8]) {
        let path = self.block_path(pack, block);
        let written = (|| -> std::io::Result<u64> {
            std::fs::create_dir_all(path.parent().unwrap_or(&self.dir))?;
            let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(blake3::hash(bytes).as_bytes())?;
            f.write_all(bytes)?;
            drop(f);
            std::fs::rename(&tmp, &path)?;
            Ok((HASH_LEN + bytes.len()) as u64)
        })();
        match written {
            Ok(len) => {
                let mut lru = self.lru();
                if let Some(old) = lru.files.remove(&path) {
                    lru.total -= old;
                }
                lru.files.insert(path, len);
                lru.total += len;
            }
            Err(e) => log::warn!("could not cache a block in {}: {e}", self.dir.display()),
        }
        self.evict();
    }

    /// Drop every cached block of a pack (it was deleted from the store).
    pub fn drop_pack(&self, pack: &str) {
        let dir = self.pack_dir(pack);
        let mut lru = self.lru();
        let gone: Vec<PathBuf> = lru.files.keys().filter(|p| p.starts_with(&dir)).cloned().collect();
        for p in gone {
            if let Some(len) = lru.files.remove(&p) {
                lru.total -= len;
            }
        }
        drop(lru);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn forget(&self, path: &Path) {
        let mut lru = self.lru();
        if let Some(len) = lru.files.remove(path) {
            lru.total -= len;
        }
        let _ = std::fs::remove_file(path);
    }

    fn evict(&self) {
        let mut lru = self.lru();
        while lru.total > self.limit {
            let Some((p, len)) = lru.files.pop_front() else { break };
            lru.total -= len;
            let _ = std::fs::remove_file(&p);
        }
    }

    /// Bytes the cache holds now.
    pub fn size(&self) -> u64 {
        self.lru().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_kept_verified_bounded_and_remembered_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let c = BlockCache::open(dir.path().join("c"), 3 * 1100).unwrap();
        for b in 0..3u64 {
            c.put("01/00000001.pack", b, &vec![b as u8; 1000]);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(c.get("01/00000001.pack", 1).unwrap(), vec![1u8; 1000]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        // A fourth block pushes out the least recently used (0, not 1 which was just read).
        c.put("01/00000001.pack", 3, &[3u8; 1000]);
        assert!(c.get("01/00000001.pack", 0).is_none());
        assert!(c.get("01/00000001.pack", 1).is_some());
        assert!(c.size() <= 3 * 1100);

        // A damaged block is not served, and is dropped.
        let victim = c.block_path("01/00000001.pack", 3);
        let mut raw = std::fs::read(&victim).unwrap();
        raw[100] ^= 1;
        std::fs::write(&victim, raw).unwrap();
        assert!(c.get("01/00000001.pack", 3).is_none());
        assert!(!victim.exists());

        // A restart finds what is there.
        drop(c);
        let c = BlockCache::open(dir.path().join("c"), 3 * 1100).unwrap();
        assert_eq!(c.get("01/00000001.pack", 2).unwrap(), vec![2u8; 1000]);
        c.drop_pack("01/00000001.pack");
        assert!(c.get("01/00000001.pack", 2).is_none());
        assert_eq!(c.size(), 0);
    }
}
