//! The rows of the staging overlay (uncommitted changes made through a writable
//! mount): `staging`, one row per changed path of a branch, and
//! `staged_extents`, the extent lists of files written through the mount.
//! archive/staging.rs gives them meaning; this file only stores them.

use super::owner_of;
use super::Catalog;
use crate::archive::error::Result;
use crate::archive::objects::{EntryExtra, EntryKind, Extent, Hash, Owner};
use rusqlite::{params, OptionalExtension};

pub const STAGING_SCHEMA: &str = r#"
-- kind: 0 deleted (whiteout), 1 file, 2 directory, 3-7 a symlink, FIFO, socket,
-- char or block device made through the mount (EntryKind codes; what it holds,
-- a link target or device numbers, is the `extra` column added by catalog.rs). A file's content is either an
-- existing blob (rename, chmod) or a staged extent list; a directory may carry
-- the tree it was renamed from.
CREATE TABLE IF NOT EXISTS staging (
  branch TEXT NOT NULL, path TEXT NOT NULL, kind INTEGER NOT NULL,
  size INTEGER NOT NULL, mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
  blob BLOB, extents INTEGER, tree BLOB,
  PRIMARY KEY (branch, path)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS staged_extents (
  id INTEGER NOT NULL, file_offset INTEGER NOT NULL, length INTEGER NOT NULL,
  chunk BLOB NOT NULL, chunk_offset INTEGER NOT NULL,
  PRIMARY KEY (id, file_offset)) WITHOUT ROWID;
"#;

/// One staged change of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Staged {
    Deleted,
    /// `owner` None: not recorded (a row or tree from before owners were kept).
    File {
        size: u64,
        mode: u32,
        mtime_ns: i64,
        content: Content,
        owner: Option<Owner>,
        /// User xattrs and hard-link group: what a rename, chmod, chown or
        /// write must carry to the commit (kept in the `extra` column).
        extra: EntryExtra,
    },
    Dir {
        mode: u32,
        mtime_ns: i64,
        tree: Option<Hash>,
        owner: Option<Owner>,
        /// The folder's user xattrs.
        extra: EntryExtra,
    },
    /// A symlink, FIFO, socket or device node (`kind` is one of those).
    Special {
        kind: EntryKind,
        extra: EntryExtra,
        mode: u32,
        mtime_ns: i64,
        owner: Option<Owner>,
    },
}

/// Where a staged file's bytes are described.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// A committed blob (a rename or chmod of a file that was not rewritten).
    Blob(Hash),
    /// A staged extent list, by id.
    Extents(i64),
}

#[allow(clippy::too_many_arguments)]
fn row_to_staged(
    kind: i64,
    size: i64,
    mode: u32,
    mtime: i64,
    blob: Option<Vec<u8>>,
    ext: Option<i64>,
    tree: Option<Vec<u8>>,
    owner: Option<Owner>,
    extra: Option<String>,
) -> Staged {
    if let Some(k) = EntryKind::from_code(kind).filter(|k| k.is_special()) {
        return Staged::Special { kind: k, extra: EntryExtra::from_column(extra), mode, mtime_ns: mtime, owner };
    }
    match kind {
        1 => Staged::File {
            size: size as u64,
            mode,
            mtime_ns: mtime,
            content: match (ext, blob.and_then(|b| Hash::from_slice(&b))) {
                (Some(e), _) => Content::Extents(e),
                (None, Some(b)) => Content::Blob(b),
                _ => Content::Extents(-1),
            },
            owner,
            extra: EntryExtra::from_column(extra),
        },
        2 => Staged::Dir {
            mode,
            mtime_ns: mtime,
            tree: tree.and_then(|t| Hash::from_slice(&t)),
            owner,
            extra: EntryExtra::from_column(extra),
        },
        _ => Staged::Deleted,
    }
}

fn path_and_staged(r: &rusqlite::Row) -> rusqlite::Result<(String, Staged)> {
    Ok((r.get::<_, String>(0)?, staged_at(r, 1)?))
}

/// A staging row's columns (kind, size, mode, mtime_ns, blob, extents, tree,
/// uid, gid, extra) read from column `at` on.
fn staged_at(r: &rusqlite::Row, at: usize) -> rusqlite::Result<Staged> {
    Ok(row_to_staged(
        r.get(at)?,
        r.get(at + 1)?,
        r.get(at + 2)?,
        r.get(at + 3)?,
        r.get(at + 4)?,
        r.get(at + 5)?,
        r.get(at + 6)?,
        owner_of(r.get(at + 7)?, r.get(at + 8)?),
        r.get(at + 9)?,
    ))
}

impl Catalog {
    /// The staging owner columns to select (NULLs where an old catalog opened
    /// read-only has none).
    fn staged_owner_columns(&self) -> &'static str {
        match (self.owner_columns, self.extra_column) {
            (true, true) => "uid, gid, extra",
            (true, false) => "uid, gid, NULL",
            (false, true) => "NULL, NULL, extra",
            (false, false) => "NULL, NULL, NULL",
        }
    }

    /// Create the staging tables if this catalog predates them (a writer only).
    pub fn ensure_staging_schema(&self) -> Result<()> {
        self.conn.execute_batch(STAGING_SCHEMA).map_err(|e| self.err(e))
    }

    /// Whether the staging tables exist (catalogs older than writable mounts lack them).
    pub fn has_staging_table(&self) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'staging'", [], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    pub fn staged_row(&self, branch: &str, path: &str) -> Result<Option<Staged>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT kind, size, mode, mtime_ns, blob, extents, tree, {} FROM staging WHERE branch = ?1 AND path = ?2",
                self.staged_owner_columns()
            ))
            .map_err(|e| self.err(e))?;
        st.query_row(params![branch, path], |r| staged_at(r, 0)).optional().map_err(|e| self.err(e))
    }

    /// Staged rows whose path starts with `prefix` ("" or "dir/"), at any depth.
    pub fn staged_rows_under(&self, branch: &str, prefix: &str) -> Result<Vec<(String, Staged)>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT path, kind, size, mode, mtime_ns, blob, extents, tree, {} FROM staging WHERE branch = ?1 AND path > ?2 AND path < ?3",
                self.staged_owner_columns()
            ))
            .map_err(|e| self.err(e))?;
        // Paths under `prefix` sort between "prefix" and "prefix\u{10FFFF}".
        let hi = format!("{prefix}\u{10FFFF}");
        let rows = st.query_map(params![branch, prefix, hi], path_and_staged).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Whether a branch has any staged change.
    pub fn has_staged_rows(&self, branch: &str) -> Result<bool> {
        let mut st = self.conn.prepare_cached("SELECT 1 FROM staging WHERE branch = ?1 LIMIT 1").map_err(|e| self.err(e))?;
        st.exists([branch]).map_err(|e| self.err(e))
    }

    /// Every staged row of a branch, sorted by path.
    pub fn staged_rows(&self, branch: &str) -> Result<Vec<(String, Staged)>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT path, kind, size, mode, mtime_ns, blob, extents, tree, {} FROM staging WHERE branch = ?1 ORDER BY path",
                self.staged_owner_columns()
            ))
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([branch], path_and_staged).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Record one staged change (replacing the path's previous one).
    pub fn set_staged_row(&self, branch: &str, path: &str, s: &Staged) -> Result<()> {
        let (kind, size, mode, mtime, blob, ext, tree) = match s {
            Staged::Deleted => (0, 0u64, 0u32, 0i64, None, None, None),
            Staged::File { size, mode, mtime_ns, content, .. } => match content {
                Content::Blob(b) => (1, *size, *mode, *mtime_ns, Some(b.0.to_vec()), None, None),
                Content::Extents(e) => (1, *size, *mode, *mtime_ns, None, Some(*e), None),
            },
            Staged::Dir { mode, mtime_ns, tree, .. } => (2, 0, *mode, *mtime_ns, None, None, tree.map(|t| t.0.to_vec())),
            Staged::Special { kind, extra, mode, mtime_ns, .. } => {
                (kind.code(), extra.target.as_ref().map_or(0, |t| t.len() as u64), *mode, *mtime_ns, None, None, None)
            }
        };
        let owner = match s {
            Staged::File { owner, .. } | Staged::Dir { owner, .. } | Staged::Special { owner, .. } => *owner,
            Staged::Deleted => None,
        };
        let extra = match s {
            Staged::Special { extra, .. } | Staged::File { extra, .. } | Staged::Dir { extra, .. } => extra.to_column(),
            Staged::Deleted => None,
        };
        let (uid, gid) = (owner.map(|o| o.uid), owner.map(|o| o.gid));
        self.conn
            .execute(
                "INSERT OR REPLACE INTO staging (branch, path, kind, size, mode, mtime_ns, blob, extents, tree, uid, gid, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![branch, path, kind, size as i64, mode, mtime, blob, ext, tree, uid, gid, extra],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Remove the staged rows at and below `path`.
    pub fn delete_staged_below(&self, branch: &str, path: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM staging WHERE branch = ?1 AND (path = ?2 OR (path > ?3 AND path < ?4))",
                params![branch, path, format!("{path}/"), format!("{path}/\u{10FFFF}")],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Remove every staged row of a branch; how many there were.
    pub fn delete_staged_rows(&self, branch: &str) -> Result<u64> {
        self.conn.execute("DELETE FROM staging WHERE branch = ?1", [branch]).map(|n| n as u64).map_err(|e| self.err(e))
    }

    /// The extent list a path's staged row points at, if it has one.
    pub fn staged_extents_id(&self, branch: &str, path: &str) -> Result<Option<i64>> {
        self.conn
            .query_row("SELECT extents FROM staging WHERE branch = ?1 AND path = ?2", params![branch, path], |r| r.get(0))
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    pub fn staged_extents(&self, id: i64) -> Result<Vec<Extent>> {
        // A malformed chunk id is damage: it must not read as some other chunk
        // (or as a zero run), so it becomes an error here.
        let bad = |i: usize| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, "staged extent chunk id is not 32 bytes".into())
        };
        let mut st = self
            .conn
            .prepare_cached("SELECT file_offset, length, chunk, chunk_offset FROM staged_extents WHERE id = ?1 ORDER BY file_offset")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([id], |r| {
                Ok(Extent {
                    file_offset: r.get::<_, i64>(0)? as u64,
                    length: r.get::<_, i64>(1)? as u64,
                    chunk: Hash::from_slice(&r.get::<_, Vec<u8>>(2)?).ok_or_else(|| bad(2))?,
                    chunk_offset: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Store a new staged extent list; returns its id.
    pub fn insert_staged_extents(&self, extents: &[Extent]) -> Result<i64> {
        let id: i64 =
            self.conn.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM staged_extents", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        let mut st = self
            .conn
            .prepare_cached("INSERT INTO staged_extents (id, file_offset, length, chunk, chunk_offset) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(|e| self.err(e))?;
        for e in extents {
            st.execute(params![id, e.file_offset as i64, e.length as i64, &e.chunk.0[..], e.chunk_offset as i64])
                .map_err(|e| self.err(e))?;
        }
        Ok(id)
    }

    /// Drop a staged extent list no staged row points at any more (a rename may
    /// have left another path pointing at it: then it stays).
    pub fn delete_staged_extents_if_unused(&self, id: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM staged_extents WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM staging WHERE extents = ?1)", [id])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Drop every staged extent list no staged row points at.
    pub fn delete_unused_staged_extents(&self) -> Result<()> {
        self.conn
            .execute("DELETE FROM staged_extents WHERE id NOT IN (SELECT extents FROM staging WHERE extents IS NOT NULL)", [])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
