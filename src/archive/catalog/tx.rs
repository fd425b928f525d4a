//! Transactions and connection-level maintenance. Callers never write BEGIN or
//! COMMIT: they hand a closure to `read` or `write`, and the outcome of the
//! closure decides commit or rollback, with every error checked.

use super::Catalog;
use crate::archive::error::Result;

impl Catalog {
    /// Run `f` in one read transaction, so every query in it sees the catalog at
    /// the same moment (a commit by another process in between is not half
    /// seen). Inside a transaction already open on this connection, `f` simply
    /// runs in that one: it gives the same guarantee.
    pub fn read<T>(&self, f: impl FnOnce(&Catalog) -> Result<T>) -> Result<T> {
        if !self.conn.is_autocommit() {
            return f(self);
        }
        self.conn.execute_batch("BEGIN DEFERRED").map_err(|e| self.err(e))?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))?;
                Ok(v)
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Run `f` in one write transaction (taken at once, BEGIN IMMEDIATE, so two
    /// writers never deadlock on an upgrade): committed if `f` returns Ok,
    /// rolled back otherwise. Pack bytes the rows point into must be sealed
    /// before this is called (the crash-safety rule in archive/mod.rs).
    pub fn write<T>(&self, f: impl FnOnce(&Catalog) -> Result<T>) -> Result<T> {
        self.begin()?;
        match f(self) {
            Ok(v) => {
                self.commit()?;
                Ok(v)
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// Start a savepoint inside the open write transaction: the rows written
    /// after it can be undone alone (ingest undoes one failed file this way).
    /// Ended by `Savepoint::release` or `Savepoint::rollback`; dropped without
    /// either, it stays part of the transaction (the caller's rollback or
    /// commit then covers it).
    pub fn savepoint(&self) -> Result<Savepoint<'_>> {
        self.conn.execute_batch("SAVEPOINT file").map_err(|e| self.err(e))?;
        Ok(Savepoint { cat: self })
    }

    /// Fold the write-ahead log into the database file (before the file is
    /// copied or renamed, so it is one self-contained file).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").map_err(|e| self.err(e))
    }

    /// Record the archive format this catalog was written for.
    pub fn set_format_version(&self, version: u32) -> Result<()> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('format_version', ?1)", [version.to_string()])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// An open savepoint (see `Catalog::savepoint`).
pub struct Savepoint<'a> {
    cat: &'a Catalog,
}

impl Savepoint<'_> {
    /// Keep what was written since the savepoint (it commits with the transaction).
    pub fn release(self) -> Result<()> {
        self.cat.conn.execute_batch("RELEASE file").map_err(|e| self.cat.err(e))
    }

    /// Undo what was written since the savepoint; the transaction stays open.
    pub fn rollback(self) -> Result<()> {
        self.cat.conn.execute_batch("ROLLBACK TO file; RELEASE file").map_err(|e| self.cat.err(e))
    }
}

#[cfg(test)]
mod tests {
    use crate::archive::catalog::{Catalog, Staged};
    use crate::archive::error::ArchiveError;

    fn catalog() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::open(&dir.path().join("catalog.db"), true).unwrap();
        cat.ensure_staging_schema().unwrap();
        (dir, cat)
    }

    fn deleted() -> Staged {
        Staged::Deleted
    }

    #[test]
    fn write_commits_on_ok_and_rolls_back_on_err() {
        let (_d, cat) = catalog();
        cat.write(|c| c.set_staged_row("main", "kept", &deleted())).unwrap();
        let err = cat
            .write(|c| {
                c.set_staged_row("main", "undone", &deleted())?;
                Err::<(), _>(ArchiveError::Invalid("stop".into()))
            })
            .unwrap_err();
        assert!(matches!(err, ArchiveError::Invalid(_)));
        let rows: Vec<String> = cat.staged_rows("main").unwrap().into_iter().map(|(p, _)| p).collect();
        assert_eq!(rows, vec!["kept".to_string()]);
        // The connection is usable again: no transaction was left open.
        cat.write(|c| c.set_staged_row("main", "after", &deleted())).unwrap();
        assert_eq!(cat.staged_rows("main").unwrap().len(), 2);
    }

    #[test]
    fn a_savepoint_undoes_only_what_came_after_it() {
        let (_d, cat) = catalog();
        cat.write(|c| {
            c.set_staged_row("main", "first", &deleted())?;
            let sp = c.savepoint()?;
            c.set_staged_row("main", "second", &deleted())?;
            sp.rollback()?;
            let sp = c.savepoint()?;
            c.set_staged_row("main", "third", &deleted())?;
            sp.release()
        })
        .unwrap();
        let rows: Vec<String> = cat.staged_rows("main").unwrap().into_iter().map(|(p, _)| p).collect();
        assert_eq!(rows, vec!["first".to_string(), "third".to_string()]);
    }

    #[test]
    fn a_read_inside_a_write_sees_the_write_and_a_failed_read_leaves_no_transaction() {
        let (_d, cat) = catalog();
        cat.write(|c| {
            c.set_staged_row("main", "x", &deleted())?;
            // Nested: runs in the open transaction, so it sees the uncommitted row.
            assert!(c.read(|r| r.has_staged_rows("main"))?);
            Ok(())
        })
        .unwrap();
        assert!(cat.read(|_| Err::<(), _>(ArchiveError::Invalid("stop".into()))).is_err());
        // A leftover open transaction would make this BEGIN IMMEDIATE fail.
        cat.write(|c| c.delete_staged_rows("main")).unwrap();
        assert!(!cat.read(|r| r.has_staged_rows("main")).unwrap());
    }
}
