//! Where sealed packs live: the `PackStore` seam, and `LocalPackStore`, the
//! archive's `packs/` folder.
//!
//! A store deals in named byte strings, not records: encoding them is
//! `pack.rs`, writing records `pack_writer.rs`. The trait is shaped so that an
//! object store can implement it (a pack is a multipart upload that becomes
//! visible only when completed; reads are ranged GETs) and so can tape: no
//! paths or files in its signatures, a pack is written once front to back and
//! never changed after it is sealed, and nothing is truncated or rewritten in
//! place. Errors are the archive's, with the pack named as `locate` says.

use super::error::{ArchiveError, IoContext, Result};
use super::read_at::ReadAt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where sealed packs live.
pub trait PackStore: Send + Sync {
    /// Start a new pack called `name` (which must not exist). Its bytes are
    /// appended through the returned upload; it is a sealed pack only once
    /// `PackUpload::seal` returns.
    fn begin(&self, name: &str) -> Result<Box<dyn PackUpload>>;
    /// Random access to a pack's bytes. A pack that is not there is an
    /// `ArchiveError::Io` of kind `NotFound` (readers look a chunk up again
    /// on that: gc may have moved it).
    fn open(&self, name: &str) -> Result<Arc<dyn ReadAt>>;
    /// A pack's size in bytes; `None` when the store has no pack by that name.
    fn size(&self, name: &str) -> Result<Option<u64>>;
    /// The names of every pack the store holds: sealed ones and, where the
    /// store can hold them (local files), the unsealed tail of a writer that
    /// was killed. The catalog decides which of them are referenced.
    fn list(&self) -> Result<Vec<String>>;
    /// Remove a pack; one that is already gone is not an error.
    fn delete(&self, name: &str) -> Result<()>;
    /// Where a pack is, as a user can act on it (a path, a URL): for messages.
    fn locate(&self, name: &str) -> String;
    /// Give up uploads that a killed writer left unfinished (an object
    /// store keeps their parts until they are aborted); returns the packs
    /// they were for. Only under the writer lock: a live writer's upload
    /// looks the same. Stores whose unfinished packs are listed (local
    /// files) have nothing to do here.
    fn abort_interrupted(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Where several hosts share the store (a bucket), the right to write
    /// it, held until the returned guard is dropped; `None` where the
    /// archive folder's own lock file is enough (local disk).
    fn writer_lease(&self) -> Result<Option<Box<dyn Send + Sync>>> {
        Ok(None)
    }
    /// Of packs the catalog does not know, those a writer may remove as
    /// left by an interrupted write of this archive folder. All of them on
    /// local disk; in a bucket shared by several hosts, only those written
    /// from here (another host's new packs are unknown here too).
    fn may_remove_uncommitted(&self, names: &[String]) -> Vec<String> {
        names.to_vec()
    }
}

/// A pack being written: appended to front to back, then sealed or aborted.
/// Dropped without either, it is aborted.
pub trait PackUpload: Send {
    /// Append bytes at the end of the pack.
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// Bytes appended so far.
    fn size(&self) -> u64;
    /// Make the pack durable and visible under its name; returns its size.
    /// When this returns the catalog may point into it (the rule in
    /// archive/mod.rs); if it fails, nothing of the pack may be referenced.
    fn seal(self: Box<Self>) -> Result<u64>;
    /// Give the pack up: nothing of it remains in the store.
    fn abort(self: Box<Self>) -> Result<()>;
}

/// The store of an archive on local disk: `ARCHIVE/packs/`.
pub fn local_store(archive_root: &Path) -> Arc<dyn PackStore> {
    Arc::new(LocalPackStore::new(archive_root.join("packs")))
}

/// Packs as files below one folder, `xx/NNNNNNNN.pack`.
pub struct LocalPackStore {
    dir: PathBuf,
}

impl LocalPackStore {
    pub fn new(dir: PathBuf) -> LocalPackStore {
        LocalPackStore { dir }
    }

    /// A pack's path. Names come from the catalog or from this store's own
    /// listing; one that would reach outside the folder is refused, so a
    /// damaged catalog cannot make a reader open (or gc delete) other files.
    fn path(&self, name: &str) -> Result<PathBuf> {
        let p = Path::new(name);
        let plain = !name.is_empty() && p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain {
            return Err(ArchiveError::Inconsistent(format!("pack name '{name}' is not a name inside {}", self.dir.display())));
        }
        Ok(self.dir.join(p))
    }
}

impl PackStore for LocalPackStore {
    fn begin(&self, name: &str) -> Result<Box<dyn PackUpload>> {
        let path = self.path(name)?;
        // Pack folders and packs take the archive's permission policy (the mode
        // of the folder above them), whatever the umask.
        let dir = path.parent().unwrap_or(&self.dir).to_path_buf();
        let new_dir = !dir.is_dir();
        let policy = super::perms::Policy::inherited(&dir)?;
        policy.create_dir_all(&dir)?;
        let file = policy.create_new_file(&path)?;
        let file = match super::pack_direct::DirectAppend::new(file) {
            Ok(f) => f,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(ArchiveError::Io { path, source: e });
            }
        };
        Ok(Box::new(LocalUpload { path, dir, new_dir, file: Some(file), pos: 0 }))
    }

    fn open(&self, name: &str) -> Result<Arc<dyn ReadAt>> {
        let path = self.path(name)?;
        Ok(Arc::new(super::pack_file::PackFile::new(File::open(&path).at(&path)?)))
    }

    fn size(&self, name: &str) -> Result<Option<u64>> {
        let path = self.path(name)?;
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ArchiveError::Io { path, source: e }),
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for e in walkdir::WalkDir::new(&self.dir).min_depth(1).sort_by_file_name() {
            let e = e.map_err(|e| ArchiveError::Io { path: self.dir.clone(), source: e.into() })?;
            if e.file_type().is_file() {
                out.push(e.path().strip_prefix(&self.dir).unwrap_or(e.path()).to_string_lossy().to_string());
            }
        }
        Ok(out)
    }

    fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ArchiveError::Io { path, source: e }),
        }
        // The removal is durable before a caller counts the space as freed.
        match path.parent() {
            Some(d) => fsync_dir(d),
            None => Ok(()),
        }
    }

    fn locate(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

struct LocalUpload {
    path: PathBuf,
    dir: PathBuf,
    /// The pack's folder was made for it: its own entry in `packs/` is fsynced too.
    new_dir: bool,
    /// Written around the page cache where the filesystem allows it
    /// (archive/pack_direct.rs). `None` once sealed or aborted.
    file: Option<super::pack_direct::DirectAppend>,
    pos: u64,
}

impl PackUpload for LocalUpload {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        let f = self.file.as_mut().ok_or_else(|| ArchiveError::Invalid("internal: write to a sealed pack".into()))?;
        f.write(b).at(&self.path)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.pos
    }

    /// The file, then its directory entry (and the folder's, if it is new).
    fn seal(mut self: Box<Self>) -> Result<u64> {
        let mut w = self.file.take().ok_or_else(|| ArchiveError::Invalid("internal: pack sealed twice".into()))?;
        let r = (|| {
            // Direct writes are not durable without this either: the disk's
            // cache, the file's size and its extents.
            w.finish().and_then(|f| f.sync_all()).at(&self.path)?;
            fsync_dir(&self.dir)?;
            if self.new_dir {
                if let Some(up) = self.dir.parent() {
                    fsync_dir(up)?;
                }
            }
            Ok(self.pos)
        })();
        drop(w);
        if r.is_err() {
            // Not sealed: it must not stay behind looking like a pack.
            let _ = std::fs::remove_file(&self.path);
        }
        r
    }

    fn abort(mut self: Box<Self>) -> Result<()> {
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ArchiveError::Io { path: self.path.clone(), source: e }),
        }
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_is_readable_once_sealed_and_gone_once_aborted() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalPackStore::new(dir.path().join("packs"));
        let mut u = s.begin("01/00000001.pack").unwrap();
        u.write(b"hello ").unwrap();
        u.write(b"world").unwrap();
        assert_eq!(u.seal().unwrap(), 11);
        let r = s.open("01/00000001.pack").unwrap();
        let mut buf = [0u8; 5];
        r.read_exact_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"world");
        assert_eq!(s.size("01/00000001.pack").unwrap(), Some(11));

        let mut u = s.begin("02/00000002.pack").unwrap();
        u.write(b"half").unwrap();
        u.abort().unwrap();
        drop(s.begin("03/00000003.pack").unwrap()); // dropped: aborted too
        assert_eq!(s.list().unwrap(), vec!["01/00000001.pack".to_string()]);
        s.delete("01/00000001.pack").unwrap();
        s.delete("01/00000001.pack").unwrap();
        assert_eq!(s.size("01/00000001.pack").unwrap(), None);
        let missing = s.open("01/00000001.pack").err().unwrap();
        assert!(matches!(&missing, ArchiveError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), b"x").unwrap();
        let s = LocalPackStore::new(dir.path().join("packs"));
        for name in ["../secret", "/etc/passwd", "", "01/../../secret"] {
            assert!(s.open(name).is_err(), "{name}");
            assert!(s.delete(name).is_err(), "{name}");
            assert!(s.begin(name).is_err(), "{name}");
        }
        assert!(dir.path().join("secret").exists());
    }
}
