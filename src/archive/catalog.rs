//! catalog.db: the SQLite index over the packs. Everything in it except the
//! `sources` ingest cache can be rebuilt from the packs.
//!
//! WAL + synchronous=FULL: readers (the mount, `cat`) never block the writer,
//! and a committed ingest survives power loss.

use super::error::{ArchiveError, Result};
use super::objects::{EntryKind, Extent, Hash, TreeEntry};
use super::pack::RecordLoc;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

mod maintenance;
mod outboards;
mod resident;
mod staging;
mod tape;
mod tx;

pub use maintenance::{GcCounts, PackUsage, RecordRow};
pub use outboards::OUTBOARD_SCHEMA;
pub use staging::{Content, Staged, STAGING_SCHEMA};
pub use tape::{CartridgeRow, ItemWritten, TapeItemRow, TapePlanRow, TAPE_SCHEMA};
pub use tx::Savepoint;

pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packs (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, records INTEGER NOT NULL);
-- Data chunks, addressed by BLAKE3 of their raw bytes.
CREATE TABLE IF NOT EXISTS chunks (
  hash BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
  stored_len INTEGER NOT NULL, raw_len INTEGER NOT NULL, codec INTEGER NOT NULL) WITHOUT ROWID;
-- Metadata records (blob extent lists, trees, commits, refs, media facts) by id.
CREATE TABLE IF NOT EXISTS objects (
  id BLOB PRIMARY KEY, kind INTEGER NOT NULL, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
  stored_len INTEGER NOT NULL, raw_len INTEGER NOT NULL, codec INTEGER NOT NULL) WITHOUT ROWID;
-- File contents: content hash -> ordered extents (offset-in-chunk allows copy-on-write).
CREATE TABLE IF NOT EXISTS blobs (
  hash BLOB PRIMARY KEY, size INTEGER NOT NULL, record BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS extents (
  blob BLOB NOT NULL, file_offset INTEGER NOT NULL, length INTEGER NOT NULL,
  chunk BLOB NOT NULL, chunk_offset INTEGER NOT NULL,
  PRIMARY KEY (blob, file_offset)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS extents_by_chunk ON extents(chunk);
-- Merkle trees, one row per name so a lookup is one index probe.
CREATE TABLE IF NOT EXISTS tree_entries (
  tree BLOB NOT NULL, name TEXT NOT NULL, kind INTEGER NOT NULL, hash BLOB NOT NULL,
  size INTEGER NOT NULL, mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
  PRIMARY KEY (tree, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS trees (hash BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (
  hash BLOB PRIMARY KEY, tree BLOB NOT NULL, parent1 BLOB, parent2 BLOB,
  time_ns INTEGER NOT NULL, author TEXT NOT NULL, message TEXT NOT NULL, branch TEXT NOT NULL) WITHOUT ROWID;
-- A branch is one row (its head commit); its uncommitted writes through the mount are
-- the staging overlay, in the staging tables (STAGING_SCHEMA in staging.rs).
CREATE TABLE IF NOT EXISTS branches (
  name TEXT PRIMARY KEY, head BLOB, seq INTEGER NOT NULL, created_ns INTEGER NOT NULL);
-- Ingest skip cache: a source path unchanged in (size, mtime, inode) is not re-read.
CREATE TABLE IF NOT EXISTS sources (
  path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
  blob BLOB NOT NULL);
-- Probed media facts, once per content hash.
CREATE TABLE IF NOT EXISTS media (blob BLOB PRIMARY KEY, facts TEXT, error TEXT) WITHOUT ROWID;
-- Chunks `check --deep` found damaged: ingest stores a fresh copy of such a chunk
-- instead of deduplicating against it, so re-ingesting the original repairs it.
CREATE TABLE IF NOT EXISTS damaged_chunks (hash BLOB PRIMARY KEY) WITHOUT ROWID;
-- Rendered proxies, keyed by the source's content hash (so copies and branches
-- share them), the profile and its settings version. A row exists only once the
-- proxy's blob is committed: a proxy is never visible half-written.
CREATE TABLE IF NOT EXISTS proxies (
  source BLOB NOT NULL, profile TEXT NOT NULL, settings_version INTEGER NOT NULL,
  blob BLOB NOT NULL, partial_at INTEGER NULL, note TEXT,
  PRIMARY KEY (source, profile, settings_version)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS proxies_by_blob ON proxies(blob);
-- A proxy's held (damaged) frame ranges, JSON, one row per `proxies` row that has
-- any: a table of its own so archives made before it need no migration.
CREATE TABLE IF NOT EXISTS proxy_damage (
  source BLOB NOT NULL, profile TEXT NOT NULL, settings_version INTEGER NOT NULL, ranges TEXT NOT NULL,
  PRIMARY KEY (source, profile, settings_version)) WITHOUT ROWID;
-- Objects that a catalog rebuild found referenced but in no pack (a pack was lost):
-- a read that reaches one says what is lost instead of asking for another rebuild.
CREATE TABLE IF NOT EXISTS lost_objects (id BLOB PRIMARY KEY, kind TEXT NOT NULL, what TEXT NOT NULL) WITHOUT ROWID;
"#;

/// Whether two rows of one query hold the same values after the first
/// column (compared raw, nothing decoded).
fn same_row(p: &rusqlite::Row, q: &rusqlite::Row) -> rusqlite::Result<bool> {
    for i in 1..p.as_ref().column_count() {
        if p.get_ref(i)? != q.get_ref(i)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// User timecode facts (`reelfs tc set/clear`): one row per (commit that set or cleared
/// it, path in the branch). `timecode` NULL is a clear. `blob` is the content the fact was
/// recorded for. See archive/tcfacts.rs for why facts hang off commits.
pub const TC_FACTS_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tc_facts (
  commit_id BLOB NOT NULL, path TEXT NOT NULL, blob BLOB NOT NULL,
  timecode TEXT, reel TEXT, rate TEXT,
  PRIMARY KEY (commit_id, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tc_facts_by_path ON tc_facts(path);
"#;

/// One row of `tc_facts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcFactRow {
    pub blob: Hash,
    pub timecode: Option<String>,
    pub reel: Option<String>,
    pub rate: Option<String>,
}

impl From<&super::objects::TcFactRecord> for TcFactRow {
    fn from(r: &super::objects::TcFactRecord) -> TcFactRow {
        TcFactRow { blob: r.blob, timecode: r.timecode.clone(), reel: r.reel.clone(), rate: r.rate.clone() }
    }
}

/// The catalog: typed reads and writes over one SQLite connection. The
/// connection is private so that SQL lives in this module only; callers group
/// statements with `read`/`write` (catalog/tx.rs).
pub struct Catalog {
    conn: Connection,
    pub path: PathBuf,
    /// Whether tree_entries and staging have the owner columns (see
    /// `ensure_owner_columns`); false only for an old catalog opened read-only.
    owner_columns: bool,
    /// Whether tree_entries has the `extra` column (see `ensure_extra_column`).
    extra_column: bool,
}

#[derive(Debug, Clone)]
pub struct ChunkLoc {
    pub pack: i64,
    pub offset: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    pub codec: u8,
}

#[derive(Debug, Clone)]
pub struct CommitRow {
    pub hash: Hash,
    pub tree: Hash,
    pub parents: Vec<Hash>,
    pub time_ns: i64,
    pub author: String,
    pub message: String,
    pub branch: String,
}

fn h(b: Vec<u8>) -> Hash {
    Hash::from_slice(&b).unwrap_or(Hash([0; 32]))
}

/// SQLite's ways of saying the file itself is damaged (as opposed to busy, full
/// or unreadable): a bad header gives "not a database" or "unsupported file
/// format", a bad page "malformed".
fn is_damage(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            matches!(f.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
                || (f.code == rusqlite::ErrorCode::Unknown && msg.as_deref().is_some_and(|m| m.contains("unsupported file format")))
        }
        _ => false,
    }
}

/// The error for a failed catalog operation; damage gets its own error, which
/// says how to rebuild.
pub fn catalog_error(path: &Path, e: rusqlite::Error) -> ArchiveError {
    if is_damage(&e) {
        ArchiveError::CatalogDamaged { path: path.into(), archive: archive_of(path), detail: e.to_string() }
    } else {
        ArchiveError::Catalog { path: path.into(), source: e }
    }
}

/// The chunk id a zero-run extent carries (a hole: no chunk stored), as raw bytes
/// for SQL parameters: the integrity queries below must not count it as a missing chunk.
pub const ZERO_RUN_ID: &[u8; 32] = &super::objects::ZERO_RUN.0;

fn archive_of(catalog: &Path) -> PathBuf {
    match catalog.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl Catalog {
    pub fn open(path: &Path, create: bool) -> Result<Catalog> {
        let err = |e| catalog_error(path, e);
        let flags = if create {
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
        } else {
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
        } | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create && !path.exists() {
            // SQLite would create it with 0644 less the umask; start it with the
            // archive's policy instead (SQLite gives -wal/-shm the same mode).
            let dir = path.parent().unwrap_or(Path::new("."));
            drop(super::perms::Policy::inherited(dir)?.create_new_file(path)?);
        }
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "OFF").map_err(err)?;
        if create {
            conn.execute_batch(SCHEMA).map_err(err)?;
            conn.execute_batch(TC_FACTS_SCHEMA).map_err(err)?;
        }
        let owner_columns = ensure_owner_columns(&conn).map_err(err)?;
        let extra_column = ensure_extra_column(&conn).map_err(err)?;
        match conn.execute_batch(OUTBOARD_SCHEMA) {
            Ok(()) => {}
            // A catalog this process may not write keeps no outboards: readers
            // then verify whole chunks, as with a version-1 archive.
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ReadOnly => {}
            Err(e) => return Err(err(e)),
        }
        Ok(Catalog { conn, path: path.into(), owner_columns, extra_column })
    }

    /// Open a read-only connection to an existing catalog (the mount's read
    /// pool). WAL lets any number of these read while one writer writes; they
    /// never change the journal mode or the schema.
    pub fn open_read_only(path: &Path) -> Result<Catalog> {
        let err = |e| catalog_error(path, e);
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(err)?;
        let owner_columns = owner_columns_present(&conn).map_err(err)?;
        let extra_column = extra_column_present(&conn).map_err(err)?;
        Ok(Catalog { conn, path: path.into(), owner_columns, extra_column })
    }

    /// Whether this connection is in WAL mode (what lets readers run beside the writer).
    pub fn is_wal(&self) -> Result<bool> {
        let mode: String = self.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        Ok(mode.eq_ignore_ascii_case("wal"))
    }

    /// SQLite's `PRAGMA data_version`: changes when any other connection (of
    /// any process) has committed since this connection last asked. `reelfs
    /// serve` keys its cache of resolved files on it.
    pub fn data_version(&self) -> Result<i64> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    pub fn err(&self, e: rusqlite::Error) -> ArchiveError {
        catalog_error(&self.path, e)
    }

    /// The archive folder this catalog belongs to (for messages naming commands).
    pub fn archive_dir(&self) -> PathBuf {
        archive_of(&self.path)
    }

    pub fn begin(&self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| self.err(e))
    }
    pub fn commit(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))
    }
    pub fn rollback(&self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }
    /// Let this connection keep up to `mib` MiB of catalog pages in memory
    /// (SQLite's default is 2 MiB). For bulk writers only: a batch of inserts
    /// at random keys into a catalog of millions of rows otherwise reads most
    /// pages back from the OS and spills dirty ones to the WAL mid-transaction.
    pub fn set_cache_mib(&self, mib: u32) -> Result<()> {
        self.conn.pragma_update(None, "cache_size", -(i64::from(mib) * 1024)).map_err(|e| self.err(e))
    }

    // ---- packs and chunks ----

    pub fn pack_names(&self) -> Result<Vec<(i64, String, u64)>> {
        let mut st = self.conn.prepare_cached("SELECT id, name, size FROM packs ORDER BY id").map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// The file name (relative to packs/) of one pack.
    pub fn pack_name(&self, id: i64) -> Result<Option<String>> {
        let mut st = self.conn.prepare_cached("SELECT name FROM packs WHERE id = ?1").map_err(|e| self.err(e))?;
        st.query_row([id], |r| r.get(0)).optional().map_err(|e| self.err(e))
    }

    /// Which of `ids` the packs table still holds (point lookups: the caller
    /// asks about the few packs it has open, not the whole table).
    pub fn existing_packs(&self, ids: &[i64]) -> Result<std::collections::HashSet<i64>> {
        let mut st = self.conn.prepare_cached("SELECT 1 FROM packs WHERE id = ?1").map_err(|e| self.err(e))?;
        let mut live = std::collections::HashSet::new();
        for &id in ids {
            if st.exists([id]).map_err(|e| self.err(e))? {
                live.insert(id);
            }
        }
        Ok(live)
    }

    /// The highest pack number ever used. `gc` removes packs, so this also reads
    /// the high-water mark it leaves in `meta`: a pack number is never reused, and
    /// a reader that still holds an old pack open by number never sees new bytes
    /// under it.
    pub fn max_pack_id(&self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT MAX(COALESCE((SELECT MAX(id) FROM packs), 0),
                            COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'pack_id_high_water'), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Remember `id` as used (see `max_pack_id`).
    pub fn set_pack_high_water(&self, id: i64) -> Result<()> {
        let cur = self.max_pack_id()?;
        self.conn
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('pack_id_high_water', ?1)", [cur.max(id).to_string()])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn insert_pack(&self, id: i64, name: &str, size: u64, records: usize) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO packs (id, name, size, records) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, size as i64, records as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn has_chunk(&self, hash: &Hash) -> Result<bool> {
        let mut st = self.conn.prepare_cached("SELECT 1 FROM chunks WHERE hash = ?1").map_err(|e| self.err(e))?;
        st.exists([&hash.0[..]]).map_err(|e| self.err(e))
    }

    pub fn insert_record(&self, pack: i64, loc: &RecordLoc) -> Result<()> {
        use super::objects::RecordKind;
        let sql = if loc.kind == RecordKind::Chunk {
            // A second copy of a chunk replaces the first only when the first is
            // known to be damaged (see `damaged_chunks`).
            "INSERT INTO chunks (hash, pack, offset, stored_len, raw_len, codec) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(hash) DO UPDATE SET pack = excluded.pack, offset = excluded.offset,
               stored_len = excluded.stored_len, raw_len = excluded.raw_len, codec = excluded.codec
             WHERE chunks.hash IN (SELECT hash FROM damaged_chunks)"
        } else {
            "INSERT OR IGNORE INTO objects (id, pack, offset, stored_len, raw_len, codec, kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        };
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let kind = loc.kind as i64;
        let res = if loc.kind == RecordKind::Chunk {
            st.execute(params![&loc.id.0[..], pack, loc.offset as i64, loc.stored_len, loc.raw_len, loc.codec])
        } else {
            st.execute(params![&loc.id.0[..], pack, loc.offset as i64, loc.stored_len, loc.raw_len, loc.codec, kind])
        };
        res.map(|_| ()).map_err(|e| self.err(e))
    }

    /// Remember chunks found damaged (by `check --deep`).
    pub fn mark_damaged(&self, hashes: &[Hash]) -> Result<()> {
        let mut st = self.conn.prepare_cached("INSERT OR IGNORE INTO damaged_chunks (hash) VALUES (?1)").map_err(|e| self.err(e))?;
        for h in hashes {
            st.execute([&h.0[..]]).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// A chunk ingest can deduplicate against: catalogued and not known damaged.
    pub fn has_good_chunk(&self, hash: &Hash) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM chunks WHERE hash = ?1 AND hash NOT IN (SELECT hash FROM damaged_chunks)")
            .map_err(|e| self.err(e))?;
        st.exists([&hash.0[..]]).map_err(|e| self.err(e))
    }

    /// A fresh copy of a damaged chunk was stored: it is no longer damaged.
    pub fn clear_damaged(&self, hash: &Hash) -> Result<()> {
        self.conn.execute("DELETE FROM damaged_chunks WHERE hash = ?1", [&hash.0[..]]).map(|_| ()).map_err(|e| self.err(e))
    }

    pub fn chunk_loc(&self, hash: &Hash) -> Result<Option<ChunkLoc>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT pack, offset, stored_len, raw_len, codec FROM chunks WHERE hash = ?1")
            .map_err(|e| self.err(e))?;
        st.query_row([&hash.0[..]], |r| {
            Ok(ChunkLoc {
                pack: r.get(0)?,
                offset: r.get::<_, i64>(1)? as u64,
                stored_len: r.get(2)?,
                raw_len: r.get(3)?,
                codec: r.get(4)?,
            })
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    // ---- blobs ----

    pub fn has_blob(&self, hash: &Hash) -> Result<bool> {
        let mut st = self.conn.prepare_cached("SELECT 1 FROM blobs WHERE hash = ?1").map_err(|e| self.err(e))?;
        st.exists([&hash.0[..]]).map_err(|e| self.err(e))
    }

    pub fn insert_blob(&self, hash: &Hash, size: u64, record: &Hash, extents: &[Extent]) -> Result<()> {
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO blobs (hash, size, record) VALUES (?1, ?2, ?3)",
                params![&hash.0[..], size as i64, &record.0[..]],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Ok(());
        }
        let mut st = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO extents (blob, file_offset, length, chunk, chunk_offset) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(|e| self.err(e))?;
        for e in extents {
            st.execute(params![&hash.0[..], e.file_offset as i64, e.length as i64, &e.chunk.0[..], e.chunk_offset as i64])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    pub fn blob_size(&self, hash: &Hash) -> Result<Option<u64>> {
        self.conn
            .query_row("SELECT size FROM blobs WHERE hash = ?1", [&hash.0[..]], |r| r.get::<_, i64>(0))
            .optional()
            .map(|o| o.map(|v| v as u64))
            .map_err(|e| self.err(e))
    }

    pub fn extents(&self, blob: &Hash) -> Result<Vec<Extent>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT file_offset, length, chunk, chunk_offset FROM extents WHERE blob = ?1 ORDER BY file_offset")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([&blob.0[..]], |r| {
                Ok(Extent {
                    file_offset: r.get::<_, i64>(0)? as u64,
                    length: r.get::<_, i64>(1)? as u64,
                    chunk: h(r.get(2)?),
                    chunk_offset: r.get::<_, i64>(3)? as u64,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Bytes stored for a blob: the stored length of each distinct chunk it uses.
    pub fn blob_stored_bytes(&self, blob: &Hash) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(c.stored_len), 0) FROM (SELECT DISTINCT chunk FROM extents WHERE blob = ?1) e JOIN chunks c ON c.hash = e.chunk",
                [&blob.0[..]],
                |r| r.get::<_, i64>(0),
            )
            .map(|v| v as u64)
            .map_err(|e| self.err(e))
    }

    // ---- trees ----

    pub fn has_tree(&self, hash: &Hash) -> Result<bool> {
        let mut st = self.conn.prepare_cached("SELECT 1 FROM trees WHERE hash = ?1").map_err(|e| self.err(e))?;
        st.exists([&hash.0[..]]).map_err(|e| self.err(e))
    }

    pub fn insert_tree(&self, hash: &Hash, entries: &[TreeEntry]) -> Result<()> {
        let n = self.conn.execute("INSERT OR IGNORE INTO trees (hash) VALUES (?1)", [&hash.0[..]]).map_err(|e| self.err(e))?;
        if n == 0 {
            return Ok(());
        }
        let mut st = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO tree_entries (tree, name, kind, hash, size, mode, mtime_ns, uid, gid, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
            .map_err(|e| self.err(e))?;
        for e in entries {
            let (uid, gid) = (e.owner.map(|o| o.uid), e.owner.map(|o| o.gid));
            st.execute(params![
                &hash.0[..],
                e.name,
                e.kind.code(),
                &e.hash.0[..],
                e.size as i64,
                e.mode,
                e.mtime_ns,
                uid,
                gid,
                e.extra.to_column()
            ])
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn entry_row(r: &rusqlite::Row) -> rusqlite::Result<TreeEntry> {
        Ok(TreeEntry {
            name: r.get(0)?,
            kind: EntryKind::from_code(r.get(1)?).unwrap_or(EntryKind::File),
            hash: h(r.get(2)?),
            size: r.get::<_, i64>(3)? as u64,
            mode: r.get(4)?,
            mtime_ns: r.get(5)?,
            owner: owner_of(r.get(6)?, r.get(7)?),
            extra: super::objects::EntryExtra::from_column(r.get(8)?),
        })
    }

    pub fn tree_entries(&self, tree: &Hash) -> Result<Vec<TreeEntry>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {} FROM tree_entries WHERE tree = ?1 ORDER BY name", self.entry_columns()))
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([&tree.0[..]], Self::entry_row).map_err(|e| self.err(e))?;
        let entries: Vec<TreeEntry> = rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))?;
        // No rows is an empty folder only if the tree is known: a tree that is
        // not in the catalog must not list as an empty folder (data would vanish
        // silently). The empty tree of a branch without commits is never stored.
        if entries.is_empty() && *tree != super::objects::Tree::default().id() && !self.has_tree(tree)? {
            return Err(self.missing("folder listing", tree)?);
        }
        Ok(entries)
    }

    /// The entries of folders `a` and `b` that are not the same row in both
    /// (by name; the same kind, content, size, mode, time, owner and extras),
    /// each list sorted by name: the only entries a diff of the two folders
    /// can report. Both listings are read side by side and compared as raw
    /// column values, so an unchanged entry (nearly all of them when two
    /// branches differ in ten files) is never decoded: decoding every row of
    /// every folder on a changed path was most of a diff's time.
    pub fn tree_entries_differing(&self, a: &Hash, b: &Hash) -> Result<(Vec<TreeEntry>, Vec<TreeEntry>)> {
        let err = |e| self.err(e);
        let sql = format!("SELECT {} FROM tree_entries WHERE tree = ?1 ORDER BY name", self.entry_columns());
        // Two statements of the same text: the cache hands out one and
        // prepares the other (both stay cached for the next folder pair).
        let (mut sa, mut sb) = (self.conn.prepare_cached(&sql).map_err(err)?, self.conn.prepare_cached(&sql).map_err(err)?);
        let (mut ra, mut rb) = (sa.query([&a.0[..]]).map_err(err)?, sb.query([&b.0[..]]).map_err(err)?);
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        let (mut x, mut y) = (ra.next().map_err(err)?, rb.next().map_err(err)?);
        let seen = (x.is_some(), y.is_some());
        loop {
            use std::cmp::Ordering::{Equal, Greater, Less};
            let ord = match (x, y) {
                (None, None) => break,
                (Some(_), None) => Less,
                (None, Some(_)) => Greater,
                (Some(p), Some(q)) => p.get_ref(0).map_err(err)?.as_bytes().ok().cmp(&q.get_ref(0).map_err(err)?.as_bytes().ok()),
            };
            match (ord, x, y) {
                (Equal, Some(p), Some(q)) if !same_row(p, q).map_err(err)? => {
                    xs.push(Self::entry_row(p).map_err(err)?);
                    ys.push(Self::entry_row(q).map_err(err)?);
                }
                (Equal, ..) => {}
                (Less, Some(p), _) => xs.push(Self::entry_row(p).map_err(err)?),
                (_, _, Some(q)) => ys.push(Self::entry_row(q).map_err(err)?),
                _ => {}
            }
            if ord != Greater {
                x = ra.next().map_err(err)?;
            }
            if ord != Less {
                y = rb.next().map_err(err)?;
            }
        }
        // As `tree_entries`: a folder the catalog does not have is an error,
        // not an empty folder.
        for (t, seen) in [(a, seen.0), (b, seen.1)] {
            if !seen && *t != super::objects::Tree::default().id() && !self.has_tree(t)? {
                return Err(self.missing("folder listing", t)?);
            }
        }
        Ok((xs, ys))
    }

    /// The error for an object the catalog should have and does not: lost with a
    /// pack (recorded by the rebuild that found it missing), or a catalog to rebuild.
    pub fn missing(&self, kind: &str, id: &Hash) -> Result<ArchiveError> {
        Ok(match self.lost(id)? {
            Some(what) => ArchiveError::Lost { what, archive: self.archive_dir() },
            None => ArchiveError::Inconsistent(format!("{kind} {} is not in the catalog", id.short())),
        })
    }

    /// What a lost object was (see `lost_objects`), if it is one.
    pub fn lost(&self, id: &Hash) -> Result<Option<String>> {
        let mut st = self.conn.prepare_cached("SELECT what FROM lost_objects WHERE id = ?1").map_err(|e| self.err(e))?;
        st.query_row([&id.0[..]], |r| r.get(0)).optional().map_err(|e| self.err(e))
    }

    pub fn mark_lost(&self, id: &Hash, kind: &str, what: &str) -> Result<()> {
        self.conn
            .execute("INSERT OR IGNORE INTO lost_objects (id, kind, what) VALUES (?1, ?2, ?3)", params![&id.0[..], kind, what])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn tree_lookup(&self, tree: &Hash, name: &str) -> Result<Option<TreeEntry>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {} FROM tree_entries WHERE tree = ?1 AND name = ?2", self.entry_columns()))
            .map_err(|e| self.err(e))?;
        st.query_row(params![&tree.0[..], name], Self::entry_row).optional().map_err(|e| self.err(e))
    }

    /// `name` in folder `tree`, where a folder whose listing is gone (lost with
    /// a pack, or a catalog to rebuild) is that error, not a folder without the name.
    pub fn tree_child(&self, tree: &Hash, name: &str) -> Result<Option<TreeEntry>> {
        match self.tree_lookup(tree, name)? {
            Some(e) => Ok(Some(e)),
            None if *tree != super::objects::Tree::default().id() && !self.has_tree(tree)? => Err(self.missing("folder listing", tree)?),
            None => Ok(None),
        }
    }

    // ---- commits and branches ----

    pub fn insert_commit(&self, hash: &Hash, c: &super::objects::Commit) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO commits (hash, tree, parent1, parent2, time_ns, author, message, branch) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    &hash.0[..],
                    &c.tree.0[..],
                    c.parents.first().map(|p| p.0.to_vec()),
                    c.parents.get(1).map(|p| p.0.to_vec()),
                    c.time_ns,
                    c.author,
                    c.message,
                    c.branch
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn commit_row(&self, hash: &Hash) -> Result<Option<CommitRow>> {
        self.conn
            .query_row(
                "SELECT hash, tree, parent1, parent2, time_ns, author, message, branch FROM commits WHERE hash = ?1",
                [&hash.0[..]],
                Self::commit_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn commit_from_row(r: &rusqlite::Row) -> rusqlite::Result<CommitRow> {
        let mut parents = Vec::new();
        if let Some(p) = r.get::<_, Option<Vec<u8>>>(2)? {
            parents.push(h(p));
        }
        if let Some(p) = r.get::<_, Option<Vec<u8>>>(3)? {
            parents.push(h(p));
        }
        Ok(CommitRow {
            hash: h(r.get(0)?),
            tree: h(r.get(1)?),
            parents,
            time_ns: r.get(4)?,
            author: r.get(5)?,
            message: r.get(6)?,
            branch: r.get(7)?,
        })
    }

    /// Commits whose id starts with a hex prefix (for `branch@abc123` forms).
    pub fn commits_with_prefix(&self, prefix: &str) -> Result<Vec<Hash>> {
        let mut st = self.conn.prepare_cached("SELECT hash FROM commits").map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let hsh = h(r.map_err(|e| self.err(e))?);
            if hsh.to_hex().starts_with(prefix) {
                out.push(hsh);
            }
        }
        Ok(out)
    }

    pub fn branches(&self) -> Result<Vec<(String, Option<Hash>)>> {
        let mut st = self.conn.prepare_cached("SELECT name, head FROM branches ORDER BY name").map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<Vec<u8>>>(1)?.map(h)))).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn branch_head(&self, name: &str) -> Result<Option<Option<Hash>>> {
        self.conn
            .query_row("SELECT head FROM branches WHERE name = ?1", [name], |r| Ok(r.get::<_, Option<Vec<u8>>>(0)?.map(h)))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn branch_seq(&self, name: &str) -> Result<Option<i64>> {
        self.conn.query_row("SELECT seq FROM branches WHERE name = ?1", [name], |r| r.get(0)).optional().map_err(|e| self.err(e))
    }

    pub fn next_ref_seq(&self) -> Result<i64> {
        self.conn
            .query_row(
                // Deleted branches leave no row; the high-water mark keeps their
                // sequence numbers from being reused (a rebuild orders refs by them).
                "SELECT MAX(COALESCE((SELECT MAX(seq) FROM branches), 0),
                            COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'ref_seq_high_water'), 0)) + 1",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Remember `seq` as used by a ref record (see `next_ref_seq`).
    pub fn note_ref_seq(&self, seq: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES ('ref_seq_high_water', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                [seq],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn set_branch(&self, name: &str, head: Option<&Hash>, seq: i64, created_ns: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO branches (name, head, seq, created_ns) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET head = excluded.head, seq = excluded.seq",
                params![name, head.map(|h| h.0.to_vec()), seq, created_ns],
            )
            .map_err(|e| self.err(e))?;
        self.note_ref_seq(seq)
    }

    pub fn delete_branch(&self, name: &str) -> Result<()> {
        self.conn.execute("DELETE FROM branches WHERE name = ?1", [name]).map(|_| ()).map_err(|e| self.err(e))
    }

    // ---- sources and media ----

    pub fn source(&self, path: &str) -> Result<Option<(u64, i64, u64, Hash)>> {
        let mut st =
            self.conn.prepare_cached("SELECT size, mtime_ns, inode, blob FROM sources WHERE path = ?1").map_err(|e| self.err(e))?;
        st.query_row([path], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get::<_, i64>(2)? as u64, h(r.get(3)?))))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_source(&self, path: &str, size: u64, mtime_ns: i64, inode: u64, blob: &Hash) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO sources (path, size, mtime_ns, inode, blob) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(|e| self.err(e))?;
        st.execute(params![path, size as i64, mtime_ns, inode as i64, &blob.0[..]]).map(|_| ()).map_err(|e| self.err(e))
    }

    /// The packs holding a blob's chunks, or None when one of its chunks is not
    /// catalogued or is known damaged: the ingest skip cache must not vouch for it.
    pub fn blob_chunk_packs(&self, blob: &Hash) -> Result<Option<Vec<i64>>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM extents e WHERE e.blob = ?1 AND e.chunk IS NOT NULL AND e.chunk != ?2
                   AND (NOT EXISTS (SELECT 1 FROM chunks c WHERE c.hash = e.chunk)
                        OR EXISTS (SELECT 1 FROM damaged_chunks d WHERE d.hash = e.chunk))",
            )
            .map_err(|e| self.err(e))?;
        let bad: i64 = st.query_row(params![&blob.0[..], &ZERO_RUN_ID[..]], |r| r.get(0)).map_err(|e| self.err(e))?;
        if bad > 0 {
            return Ok(None);
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT DISTINCT c.pack FROM extents e JOIN chunks c ON c.hash = e.chunk WHERE e.blob = ?1")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([&blob.0[..]], |r| r.get::<_, i64>(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map(Some).map_err(|e| self.err(e))
    }

    /// Forget the skip-cache entries of sources whose content uses any of these
    /// chunks, so the next ingest of the original reads and stores it again.
    pub fn forget_sources_using(&self, chunks: &[Hash]) -> Result<u64> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM sources WHERE blob IN (SELECT DISTINCT blob FROM extents WHERE chunk = ?1)")
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        for c in chunks {
            n += st.execute([&c.0[..]]).map_err(|e| self.err(e))? as u64;
        }
        Ok(n)
    }

    /// Drop the row of a pack that is gone from disk once no chunk or record row
    /// points into it any more (its contents were stored again elsewhere). Its
    /// number stays used (see `max_pack_id`).
    pub fn forget_pack_if_unused(&self, id: i64) -> Result<bool> {
        let used: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM chunks WHERE pack = ?1) OR EXISTS (SELECT 1 FROM objects WHERE pack = ?1)",
                [id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        if used {
            return Ok(false);
        }
        self.set_pack_high_water(id)?;
        self.conn.execute("DELETE FROM packs WHERE id = ?1", [id]).map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Where a metadata record is: (pack, location), from its `objects` row.
    pub fn object_loc(&self, id: &Hash) -> Result<Option<(i64, RecordLoc)>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT kind, pack, offset, stored_len, raw_len, codec FROM objects WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        st.query_row([&id.0[..]], |r| {
            let kind = super::objects::RecordKind::from_u8(r.get::<_, i64>(0)? as u8).unwrap_or(super::objects::RecordKind::Chunk);
            Ok((
                r.get::<_, i64>(1)?,
                RecordLoc {
                    kind,
                    codec: r.get(5)?,
                    raw_len: r.get(4)?,
                    stored_len: r.get(3)?,
                    offset: r.get::<_, i64>(2)? as u64,
                    id: *id,
                },
            ))
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    /// The ids a one-column query returns, for the verification passes; `sql` is
    /// this crate's own text, never input.
    fn ids(&self, sql: &str, arg: Option<i64>) -> Result<Vec<Hash>> {
        let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let map = |r: &rusqlite::Row| r.get::<_, Vec<u8>>(0);
        let rows: Vec<Vec<u8>> = match arg {
            Some(a) => st.query_map([a], map).map_err(|e| self.err(e))?.collect::<rusqlite::Result<_>>(),
            None => st.query_map([], map).map_err(|e| self.err(e))?.collect::<rusqlite::Result<_>>(),
        }
        .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(h).collect())
    }

    /// A blob's row: (size, id of the record it was indexed from).
    pub fn blob_row(&self, hash: &Hash) -> Result<Option<(u64, Option<Hash>)>> {
        let mut st = self.conn.prepare_cached("SELECT size, record FROM blobs WHERE hash = ?1").map_err(|e| self.err(e))?;
        st.query_row([&hash.0[..]], |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Option<Vec<u8>>>(1)?.map(h))))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// A tree's entries as stored, without `tree_entries`' missing-tree check.
    pub fn tree_rows(&self, tree: &Hash) -> Result<Vec<TreeEntry>> {
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {} FROM tree_entries WHERE tree = ?1 ORDER BY name", self.entry_columns()))
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([&tree.0[..]], Self::entry_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Chunks a blob's extents name that the catalog does not have.
    pub fn missing_chunks_of(&self, blob: &Hash) -> Result<Vec<Hash>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT e.chunk FROM extents e WHERE e.blob = ?1 AND e.chunk IS NOT NULL AND e.chunk != ?2
                   AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.hash = e.chunk)",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map(params![&blob.0[..], &ZERO_RUN_ID[..]], |r| r.get::<_, Vec<u8>>(0)).map_err(|e| self.err(e))?;
        rows.map(|r| r.map(h)).collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Metadata records (id, kind code) catalogued in one pack.
    pub fn objects_in_pack(&self, pack: i64) -> Result<Vec<(Hash, u8)>> {
        let mut st = self.conn.prepare_cached("SELECT id, kind FROM objects WHERE pack = ?1").map_err(|e| self.err(e))?;
        let rows = st.query_map([pack], |r| Ok((h(r.get(0)?), r.get::<_, i64>(1)? as u8))).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Content hashes of the blobs indexed from records in one pack, by record id.
    pub fn blobs_recorded_in_pack(&self, pack: i64) -> Result<std::collections::HashMap<Hash, Hash>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT record, hash FROM blobs WHERE record IN (SELECT id FROM objects WHERE pack = ?1)")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([pack], |r| Ok((h(r.get(0)?), h(r.get(1)?)))).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Every media row as its record: (blob, facts JSON text, error).
    pub fn media_rows(&self) -> Result<Vec<(Hash, Option<String>, Option<String>)>> {
        let mut st = self.conn.prepare_cached("SELECT blob, facts, error FROM media").map_err(|e| self.err(e))?;
        let rows = st.query_map([], |r| Ok((h(r.get(0)?), r.get(1)?, r.get(2)?))).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn all_proxies(&self) -> Result<Vec<super::objects::ProxyRecord>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT source, profile, settings_version, blob, partial_at, note FROM proxies")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([], Self::proxy_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn delete_object_row(&self, id: &Hash) -> Result<()> {
        self.conn.execute("DELETE FROM objects WHERE id = ?1", [&id.0[..]]).map(|_| ()).map_err(|e| self.err(e))
    }

    pub fn has_media(&self, blob: &Hash) -> Result<bool> {
        let mut st = self.conn.prepare_cached("SELECT 1 FROM media WHERE blob = ?1").map_err(|e| self.err(e))?;
        st.exists([&blob.0[..]]).map_err(|e| self.err(e))
    }

    pub fn set_media(&self, blob: &Hash, facts: Option<&str>, error: Option<&str>) -> Result<()> {
        self.conn
            .execute("INSERT OR REPLACE INTO media (blob, facts, error) VALUES (?1, ?2, ?3)", params![&blob.0[..], facts, error])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn media(&self, blob: &Hash) -> Result<Option<(Option<String>, Option<String>)>> {
        let mut st = self.conn.prepare_cached("SELECT facts, error FROM media WHERE blob = ?1").map_err(|e| self.err(e))?;
        st.query_row([&blob.0[..]], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(|e| self.err(e))
    }

    // ---- proxies ----

    pub fn set_proxy(&self, p: &super::objects::ProxyRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO proxies (source, profile, settings_version, blob, partial_at, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![&p.source.0[..], p.profile, p.settings_version, &p.blob.0[..], p.partial_at, p.note],
            )
            .map_err(|e| self.err(e))?;
        let key = params![&p.source.0[..], p.profile, p.settings_version];
        self.conn
            .execute("DELETE FROM proxy_damage WHERE source = ?1 AND profile = ?2 AND settings_version = ?3", key)
            .map_err(|e| self.err(e))?;
        if !p.damaged.is_empty() {
            let ranges = serde_json::to_string(&p.damaged).unwrap_or_else(|_| "[]".into());
            self.conn
                .execute(
                    "INSERT INTO proxy_damage (source, profile, settings_version, ranges) VALUES (?1, ?2, ?3, ?4)",
                    params![&p.source.0[..], p.profile, p.settings_version, ranges],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn proxy_row(r: &rusqlite::Row) -> rusqlite::Result<super::objects::ProxyRecord> {
        Ok(super::objects::ProxyRecord {
            source: h(r.get(0)?),
            profile: r.get(1)?,
            settings_version: r.get(2)?,
            blob: h(r.get(3)?),
            partial_at: r.get(4)?,
            note: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            damaged: r.get::<_, Option<String>>(6)?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default(),
        })
    }

    /// Every proxy of a source, all profiles and settings versions.
    pub fn proxies_of(&self, source: &Hash) -> Result<Vec<super::objects::ProxyRecord>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT source, profile, settings_version, blob, partial_at, note, (SELECT d.ranges FROM proxy_damage d WHERE d.source = proxies.source AND d.profile = proxies.profile AND d.settings_version = proxies.settings_version) FROM proxies WHERE source = ?1 ORDER BY profile, settings_version DESC")
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([&source.0[..]], Self::proxy_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// The newest proxy of a source for a profile.
    pub fn proxy(&self, source: &Hash, profile: &str) -> Result<Option<super::objects::ProxyRecord>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT source, profile, settings_version, blob, partial_at, note, (SELECT d.ranges FROM proxy_damage d WHERE d.source = proxies.source AND d.profile = proxies.profile AND d.settings_version = proxies.settings_version) FROM proxies WHERE source = ?1 AND profile = ?2 ORDER BY settings_version DESC LIMIT 1")
            .map_err(|e| self.err(e))?;
        st.query_row(params![&source.0[..], profile], Self::proxy_row).optional().map_err(|e| self.err(e))
    }

    pub fn has_proxy(&self, source: &Hash, profile: &str, settings_version: i64) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM proxies WHERE source = ?1 AND profile = ?2 AND settings_version = ?3")
            .map_err(|e| self.err(e))?;
        st.exists(params![&source.0[..], profile, settings_version]).map_err(|e| self.err(e))
    }

    /// Profiles with at least one proxy of a file directly in `tree` (one indexed
    /// join; `.proxy/` shows only when this is not empty).
    pub fn proxy_profiles_in_tree(&self, tree: &Hash) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT p.profile FROM tree_entries t JOIN proxies p ON p.source = t.hash WHERE t.tree = ?1 AND t.kind = 1 ORDER BY p.profile",
            )
            .map_err(|e| self.err(e))?;
        let rows = st.query_map([&tree.0[..]], |r| r.get::<_, String>(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    /// Profiles stored for one source (an image sequence's key).
    pub fn proxy_profiles_of(&self, source: &Hash) -> Result<Vec<String>> {
        let mut st =
            self.conn.prepare_cached("SELECT DISTINCT profile FROM proxies WHERE source = ?1 ORDER BY profile").map_err(|e| self.err(e))?;
        let rows = st.query_map([&source.0[..]], |r| r.get::<_, String>(0)).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }

    pub fn count(&self, table: &str) -> Result<u64> {
        // Table names come from this module's own constants, never from input.
        self.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0)).map(|v| v as u64).map_err(|e| self.err(e))
    }

    fn scalar_u64(&self, sql: &str) -> Result<u64> {
        self.conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)).map(|v| v.unwrap_or(0) as u64).map_err(|e| self.err(e))
    }
}

/// User timecode facts. Archives made before the table existed get it on the first
/// `tc set`; until then every lookup finds nothing.
impl Catalog {
    pub fn ensure_tc_facts(&self) -> Result<()> {
        self.conn.execute_batch(TC_FACTS_SCHEMA).map_err(|e| self.err(e))
    }

    fn has_tc_facts_table(&self) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tc_facts'", [], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    /// Whether any commit ever set or cleared a fact for `path` (a cheap test before
    /// walking history).
    pub fn tc_facts_exist(&self, path: &str) -> Result<bool> {
        if !self.has_tc_facts_table()? {
            return Ok(false);
        }
        self.conn
            .query_row("SELECT 1 FROM tc_facts WHERE path = ?1 LIMIT 1", params![path], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| self.err(e))
    }

    pub fn tc_fact(&self, commit: &Hash, path: &str) -> Result<Option<TcFactRow>> {
        self.conn
            .query_row(
                "SELECT blob, timecode, reel, rate FROM tc_facts WHERE commit_id = ?1 AND path = ?2",
                params![commit.0.to_vec(), path],
                |r| Ok(TcFactRow { blob: h(r.get(0)?), timecode: r.get(1)?, reel: r.get(2)?, rate: r.get(3)? }),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_tc_fact(&self, commit: &Hash, path: &str, f: &TcFactRow) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO tc_facts (commit_id, path, blob, timecode, reel, rate) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![commit.0.to_vec(), path, f.blob.0.to_vec(), f.timecode, f.reel, f.rate],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

/// Timecode facts as records, for writing them to packs and verifying rows against them.
impl Catalog {
    /// Whether a metadata record with this id is indexed.
    pub fn has_object(&self, id: &Hash) -> Result<bool> {
        let mut st = self.conn.prepare_cached("SELECT 1 FROM objects WHERE id = ?1").map_err(|e| self.err(e))?;
        st.exists([&id.0[..]]).map_err(|e| self.err(e))
    }

    /// Every `tc_facts` row, as the record it indexes (none before the table exists).
    pub fn all_tc_facts(&self) -> Result<Vec<super::objects::TcFactRecord>> {
        if !self.has_tc_facts_table()? {
            return Ok(Vec::new());
        }
        let mut st = self
            .conn
            .prepare_cached("SELECT commit_id, path, blob, timecode, reel, rate FROM tc_facts ORDER BY commit_id, path")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(super::objects::TcFactRecord {
                    commit: h(r.get(0)?),
                    path: r.get(1)?,
                    blob: h(r.get(2)?),
                    timecode: r.get(3)?,
                    reel: r.get(4)?,
                    rate: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.err(e))
    }
}

/// Owners (uid, gid) of tree entries and staged files: two nullable columns
/// added to catalogs made before owners were recorded. NULL is "not recorded"
/// (an entry from an old tree), so old rows keep meaning what they meant.
/// Returns whether the catalog has them now (`owner_columns_present`).
fn ensure_owner_columns(conn: &Connection) -> rusqlite::Result<bool> {
    // The staging table may not exist yet in an old catalog; it is made here
    // so both tables get their columns in one place (a connection that may
    // not write leaves it missing: it is then read as empty).
    let _ = conn.execute_batch(staging::STAGING_SCHEMA);
    for table in ["tree_entries", "staging"] {
        if !table_exists(conn, table)? || has_owner_column(conn, table)? {
            continue;
        }
        match conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN uid INTEGER; ALTER TABLE {table} ADD COLUMN gid INTEGER;")) {
            Ok(()) => {}
            // An old catalog this user may only read (a shared archive's member
            // before its owner ran this version): owners read as not recorded.
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ReadOnly => {}
            Err(e) => return Err(e),
        }
    }
    owner_columns_present(conn)
}

/// Whether tree_entries and staging (where it exists) have the owner columns.
/// Only looks: a read-only connection (the mount's read pool, or a user who
/// may only read an old shared archive) reads owners as not recorded when
/// they are missing.
fn owner_columns_present(conn: &Connection) -> rusqlite::Result<bool> {
    for table in ["tree_entries", "staging"] {
        if table_exists(conn, table)? && !has_owner_column(conn, table)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn table_exists(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |_| Ok(())).optional().map(|r| r.is_some())
}

fn has_owner_column(conn: &Connection, table: &str) -> rusqlite::Result<bool> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let cols = st.query_map([], |r| r.get::<_, String>(1))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(cols.iter().any(|c| c == "uid"))
}

/// Symlink targets, device numbers and hard-link groups of tree entries
/// (`EntryExtra` as JSON, NULL when none): one nullable column added to
/// catalogs made before special files were kept, so their rows read unchanged.
/// Returns whether the column is there now (a read-only connection to an old
/// catalog reads every entry as having none, which is what its trees hold).
fn ensure_extra_column(conn: &Connection) -> rusqlite::Result<bool> {
    for table in ["tree_entries", "staging"] {
        if !table_exists(conn, table)? || has_column(conn, table, "extra")? {
            continue;
        }
        match conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN extra TEXT;")) {
            Ok(()) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ReadOnly => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    extra_column_present(conn)
}

/// Whether tree_entries and staging (where they exist) have the `extra` column.
fn extra_column_present(conn: &Connection) -> rusqlite::Result<bool> {
    for table in ["tree_entries", "staging"] {
        if table_exists(conn, table)? && !has_column(conn, table, "extra")? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut st = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let cols = st.query_map([], |r| r.get::<_, String>(1))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(cols.iter().any(|c| c == column))
}

/// An owner from its two columns: recorded only when both are.
pub fn owner_of(uid: Option<i64>, gid: Option<i64>) -> Option<super::objects::Owner> {
    match (uid.and_then(|u| u32::try_from(u).ok()), gid.and_then(|g| u32::try_from(g).ok())) {
        (Some(uid), Some(gid)) => Some(super::objects::Owner { uid, gid }),
        _ => None,
    }
}

impl Catalog {
    /// The tree_entries columns `entry_row` reads (owners as NULL where the
    /// catalog has no owner columns).
    fn entry_columns(&self) -> &'static str {
        match (self.owner_columns, self.extra_column) {
            (true, true) => "name, kind, hash, size, mode, mtime_ns, uid, gid, extra",
            (true, false) => "name, kind, hash, size, mode, mtime_ns, uid, gid, NULL",
            (false, true) => "name, kind, hash, size, mode, mtime_ns, NULL, NULL, extra",
            (false, false) => "name, kind, hash, size, mode, mtime_ns, NULL, NULL, NULL",
        }
    }
}

#[cfg(test)]
mod owner_column_tests {
    use super::*;
    use crate::archive::objects::Owner;

    /// tree_entries and staging as archives made before owners were recorded have them.
    const OLD_TABLES: &str = "
        CREATE TABLE tree_entries (
          tree BLOB NOT NULL, name TEXT NOT NULL, kind INTEGER NOT NULL, hash BLOB NOT NULL,
          size INTEGER NOT NULL, mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
          PRIMARY KEY (tree, name)) WITHOUT ROWID;
        CREATE TABLE staging (
          branch TEXT NOT NULL, path TEXT NOT NULL, kind INTEGER NOT NULL,
          size INTEGER NOT NULL, mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
          blob BLOB, extents INTEGER, tree BLOB,
          PRIMARY KEY (branch, path)) WITHOUT ROWID;";

    fn old_catalog(path: &Path) -> (Hash, Hash) {
        let c = Connection::open(path).unwrap();
        c.execute_batch(OLD_TABLES).unwrap();
        let (tree, blob) = (Hash::of(b"tree"), Hash::of(b"blob"));
        c.execute(
            "INSERT INTO tree_entries (tree, name, kind, hash, size, mode, mtime_ns) VALUES (?1, 'a.mov', 1, ?2, 5, 420, 7)",
            params![&tree.0[..], &blob.0[..]],
        )
        .unwrap();
        (tree, blob)
    }

    /// A catalog from before special files (no `extra` columns): its rows read
    /// as plain entries, and once opened by a writer it records links, device
    /// numbers and staged special entries.
    #[test]
    fn an_old_catalog_gets_the_extra_column_and_keeps_special_entries() {
        use crate::archive::objects::{DeviceNumber, EntryExtra};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let (tree, _) = old_catalog(&path);
        let cat = Catalog::open(&path, true).unwrap();
        assert!(cat.extra_column);
        assert_eq!(cat.tree_lookup(&tree, "a.mov").unwrap().unwrap().extra, EntryExtra::default());
        let link = TreeEntry::special(
            "l".into(),
            EntryKind::Symlink,
            EntryExtra { target: Some("../../etc/passwd".into()), ..Default::default() },
            0o777,
            3,
            None,
        );
        let dev = TreeEntry::special(
            "null".into(),
            EntryKind::CharDevice,
            EntryExtra { rdev: Some(DeviceNumber { major: 1, minor: 3 }), ..Default::default() },
            0o666,
            3,
            Some(Owner { uid: 0, gid: 0 }),
        );
        let t2 = Hash::of(b"tree-special");
        cat.insert_tree(&t2, &[link.clone(), dev.clone()]).unwrap();
        assert_eq!(cat.tree_rows(&t2).unwrap(), vec![link.clone(), dev]);
        let staged = Staged::Special { kind: EntryKind::Symlink, extra: link.extra.clone(), mode: 0o777, mtime_ns: 9, owner: None };
        cat.set_staged_row("main", "card/l", &staged).unwrap();
        assert_eq!(cat.staged_row("main", "card/l").unwrap(), Some(staged));
    }

    #[test]
    fn an_old_catalog_reads_unchanged_and_then_records_owners() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let (tree, blob) = old_catalog(&path);
        let cat = Catalog::open(&path, true).unwrap();
        assert!(cat.owner_columns);
        let e = cat.tree_lookup(&tree, "a.mov").unwrap().unwrap();
        assert_eq!((e.hash, e.size, e.mode, e.mtime_ns, e.owner), (blob, 5, 420, 7, None));
        let owned = TreeEntry { name: "b.mov".into(), owner: Some(Owner { uid: 1000, gid: 44 }), ..e.clone() };
        let t2 = Hash::of(b"tree2");
        cat.insert_tree(&t2, &[e.clone(), owned.clone()]).unwrap();
        assert_eq!(cat.tree_rows(&t2).unwrap(), vec![e, owned]);
        drop(cat);
        // Opening again finds the columns and adds nothing.
        assert!(Catalog::open(&path, true).unwrap().owner_columns);
    }

    #[test]
    fn an_old_catalog_opened_read_only_reads_owners_as_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let (tree, _) = old_catalog(&path);
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        assert!(!ensure_owner_columns(&conn).unwrap());
        let cat = Catalog { conn, path: path.clone(), owner_columns: false, extra_column: false };
        assert_eq!(cat.tree_lookup(&tree, "a.mov").unwrap().unwrap().owner, None);
    }

    /// The mount's read pool opens read-only connections (`open_read_only`):
    /// they only detect the owner columns, so an old catalog still reads there
    /// (owners as not recorded), and a migrated one reads its owners.
    #[test]
    fn read_only_connections_detect_the_owner_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let (tree, _) = old_catalog(&path);
        Connection::open(&path)
            .unwrap()
            .execute("INSERT INTO staging (branch, path, kind, size, mode, mtime_ns, tree) VALUES ('main', 'd', 2, 0, 493, 1, NULL)", [])
            .unwrap();
        let ro = Catalog::open_read_only(&path).unwrap();
        assert!(!ro.owner_columns);
        assert_eq!(ro.tree_lookup(&tree, "a.mov").unwrap().unwrap().owner, None);
        assert_eq!(
            ro.staged_row("main", "d").unwrap(),
            Some(Staged::Dir { mode: 0o755, mtime_ns: 1, tree: None, owner: None, extra: Default::default() })
        );
        assert_eq!(ro.staged_rows("main").unwrap().len(), 1);
        drop(ro);
        let rw = Catalog::open(&path, true).unwrap();
        let owner = Some(Owner { uid: 1000, gid: 44 });
        rw.set_staged_row("main", "d", &Staged::Dir { mode: 0o700, mtime_ns: 2, tree: None, owner, extra: Default::default() }).unwrap();
        let ro = Catalog::open_read_only(&path).unwrap();
        assert!(ro.owner_columns);
        assert_eq!(
            ro.staged_row("main", "d").unwrap(),
            Some(Staged::Dir { mode: 0o700, mtime_ns: 2, tree: None, owner, extra: Default::default() })
        );
        assert_eq!(
            ro.staged_rows_under("main", "").unwrap()[0].1,
            Staged::Dir { mode: 0o700, mtime_ns: 2, tree: None, owner, extra: Default::default() }
        );
    }
}
