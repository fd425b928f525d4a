//! A small pool of read-only views of one archive, for a server of many
//! concurrent requests (the mount). Each view has its own read-only SQLite
//! connection; they share the config and the chunk store (open packs, chunk
//! cache) of the archive they were made from. WAL lets all of them read while
//! one writer writes, so a slow query holds up only its own request.

use super::error::{ArchiveError, Result};
use super::repo::{Archive, ViewSource};
use std::sync::{Condvar, Mutex};

pub struct ReadPool {
    /// Views not in use, and how many exist in all.
    idle: Mutex<(Vec<Archive>, usize)>,
    returned: Condvar,
    max: usize,
    source: ViewSource,
}

impl ReadPool {
    /// A pool of up to `max` views (at least one) of `archive`. Views are
    /// opened on first need, so this cannot fail; a catalog that cannot be
    /// read fails the request that needed it.
    pub fn new(archive: &Archive, max: usize) -> ReadPool {
        ReadPool { idle: Mutex::new((Vec::new(), 0)), returned: Condvar::new(), max: max.max(1), source: archive.view_source() }
    }

    /// How many views may exist at once.
    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Run `f` on a view of its own, in one read transaction: everything `f`
    /// reads comes from the same moment of the catalog. Waits for a view when
    /// all `capacity` are busy.
    pub fn with<T>(&self, f: impl FnOnce(&Archive) -> Result<T>) -> Result<T> {
        let lease = self.take()?;
        match &lease.0 {
            Some(a) => a.catalog.read(|_| f(a)),
            None => Err(ArchiveError::Inconsistent("internal: read pool view missing".into())),
        }
    }

    fn open_view(&self) -> Result<Archive> {
        let a = self.source.open()?;
        // Without WAL a reader would block the writer (and the writer every
        // reader); every writer connection sets WAL, so this is a damaged setup.
        if !a.catalog.is_wal()? {
            return Err(ArchiveError::Inconsistent(format!(
                "{} is not in WAL mode; run `reelfs stats {}` once as a user who may write it (any command that opens the archive converts it)",
                a.catalog.path.display(),
                a.root().display()
            )));
        }
        Ok(a)
    }

    fn take(&self) -> Result<Lease<'_>> {
        let poisoned = || ArchiveError::Inconsistent("internal: read pool lock poisoned".into());
        let mut g = self.idle.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(a) = g.0.pop() {
                return Ok(Lease(Some(a), self));
            }
            if g.1 < self.max {
                g.1 += 1;
                drop(g);
                return match self.open_view() {
                    Ok(a) => Ok(Lease(Some(a), self)),
                    Err(e) => {
                        if let Ok(mut g) = self.idle.lock() {
                            g.1 -= 1;
                        }
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            g = self.returned.wait(g).map_err(|_| poisoned())?;
        }
    }
}

/// A view out of the pool; goes back on drop, even when `f` panicked.
struct Lease<'a>(Option<Archive>, &'a ReadPool);

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let (Some(a), Ok(mut g)) = (self.0.take(), self.1.idle.lock()) {
            g.0.push(a);
            self.1.returned.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::catalog::Staged;

    #[test]
    fn a_pool_read_proceeds_while_the_writer_holds_a_write_transaction_and_sees_only_committed_rows() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        drop(Archive::init(&root).unwrap());
        let writer = Archive::open(&root).unwrap();
        let pool = ReadPool::new(&writer, 2);
        writer
            .catalog
            .write(|c| {
                c.set_staged_row(
                    "main",
                    "new-folder",
                    &Staged::Dir { mode: 0o755, mtime_ns: 1, tree: None, owner: None, extra: Default::default() },
                )?;
                // The write transaction is open (and holds SQLite's write lock):
                // the pool's connection still reads, and sees the last commit.
                let seen = pool.with(|a| a.staging().get("main", "new-folder"))?;
                assert_eq!(seen, None, "an uncommitted row must not be visible to readers");
                assert_eq!(pool.with(|a| a.branches())?.len(), 1);
                Ok(())
            })
            .unwrap();
        let seen = pool.with(|a| a.staging().get("main", "new-folder")).unwrap();
        assert!(matches!(seen, Some(Staged::Dir { .. })), "{seen:?}");
    }

    #[test]
    fn views_are_read_only_and_come_back_after_use() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        drop(Archive::init(&root).unwrap());
        let writer = Archive::open(&root).unwrap();
        let pool = ReadPool::new(&writer, 1);
        let err = pool.with(|a| a.staging().stage("main", "x", &Staged::Deleted)).unwrap_err();
        assert!(
            err.to_string().contains("readonly") || err.to_string().contains("read-only") || err.to_string().contains("read only"),
            "{err}"
        );
        // With a capacity of one, a second use only works if the first view came back.
        assert_eq!(pool.with(|a| a.branches()).unwrap().len(), 1);
    }
}
